package devenv

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/devenv-tool/devenv/internal/config"
)

// TestWantedImages: what goes into a bundle besides the service images,
// for configs with and without Kafka and H2, with build args, shared and
// multi-stage Dockerfiles, and disabled services.
func TestWantedImages(t *testing.T) {
	node := config.DefaultNodeImage()
	tests := []struct {
		name  string
		yaml  string
		files map[string]string
		want  []WantedImage
	}{{
		name:  "one service, no Kafka (and the default local registry)",
		yaml:  "name: p\nservices:\n  a: {port: 8080}\n",
		files: map[string]string{"a/Dockerfile": "FROM alpine:3.20\nCOPY x /x\n"},
		want: []WantedImage{
			{Role: RoleNode, Ref: node},
			{Role: RoleRegistry, Ref: LocalRegistryImage},
			{Role: RoleBase, Ref: "alpine:3.20", Service: "a"},
		},
	}, {
		name: "Kafka, H2 server and a custom node image",
		yaml: "name: p\ncluster: {image: kindest/node:v1.37.0}\nkafka: {image: apache/kafka:4.1.0}\nh2: {mode: server}\n" +
			"services:\n  a: {port: 8080}\n",
		files: map[string]string{"a/Dockerfile": "FROM scratch\nCOPY x /x\n"},
		want: []WantedImage{
			{Role: RoleNode, Ref: "kindest/node:v1.37.0"},
			{Role: RoleKafka, Ref: "apache/kafka:4.1.0"},
			{Role: RoleRegistry, Ref: LocalRegistryImage},
			{Role: RoleH2, Ref: config.DefaultH2Image},
		},
	}, {
		name:  "H2 in memory is no image; a build arg picks the base",
		yaml:  "name: p\nkafka: {}\nh2: {mode: memory}\nservices:\n  a:\n    port: 8080\n    args: {JRE_IMAGE: eclipse-temurin:17-jre}\n",
		files: map[string]string{"a/Dockerfile": "ARG JRE_IMAGE=eclipse-temurin:21-jre\nFROM ${JRE_IMAGE}\nCOPY x /x\n"},
		want: []WantedImage{
			{Role: RoleNode, Ref: node},
			{Role: RoleKafka, Ref: config.DefaultKafkaImage},
			{Role: RoleRegistry, Ref: LocalRegistryImage},
			{Role: RoleBase, Ref: "eclipse-temurin:17-jre", Service: "a"},
		},
	}, {
		name: "a base two services share is listed once, for the first",
		yaml: "name: p\nservices:\n  a: {port: 8080}\n  b: {port: 8080}\n",
		files: map[string]string{
			"a/Dockerfile": "FROM golang:1.26 AS build\nRUN true\nFROM debian:bookworm-slim\nCOPY --from=build /x /x\n",
			"b/Dockerfile": "FROM debian:bookworm-slim\nCOPY x /x\n",
		},
		want: []WantedImage{
			{Role: RoleNode, Ref: node},
			{Role: RoleRegistry, Ref: LocalRegistryImage},
			{Role: RoleBase, Ref: "golang:1.26", Service: "a"},
			{Role: RoleBase, Ref: "debian:bookworm-slim", Service: "a"},
		},
	}, {
		name:  "registry: none loads into the node: no registry image",
		yaml:  "name: p\nregistry: none\nservices:\n  a: {port: 8080}\n",
		files: map[string]string{"a/Dockerfile": "FROM alpine:3.20\nCOPY x /x\n"},
		want: []WantedImage{
			{Role: RoleNode, Ref: node},
			{Role: RoleBase, Ref: "alpine:3.20", Service: "a"},
		},
	}, {
		name: "a disabled service's base is not needed",
		yaml: "name: p\nservices:\n  a: {port: 8080}\n  b: {port: 8080, enabled: false}\n",
		files: map[string]string{
			"a/Dockerfile": "FROM alpine:3.20\n",
			"b/Dockerfile": "FROM busybox:1\n",
		},
		want: []WantedImage{
			{Role: RoleNode, Ref: node},
			{Role: RoleRegistry, Ref: LocalRegistryImage},
			{Role: RoleBase, Ref: "alpine:3.20", Service: "a"},
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			file := filepath.Join(dir, "devenv.yaml")
			writeBundleFile(t, file, tt.yaml)
			for p, body := range tt.files {
				writeBundleFile(t, filepath.Join(dir, p), body)
			}
			cfg, err := config.Load(file)
			if err != nil {
				t.Fatal(err)
			}
			got, err := WantedImages(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// TestWantedImagesErrors: a Dockerfile that cannot be read or whose FROM
// cannot be expanded names the service.
func TestWantedImagesErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "devenv.yaml")
	writeBundleFile(t, file, "name: p\nservices:\n  a: {port: 8080}\n")
	writeBundleFile(t, filepath.Join(dir, "a/Dockerfile"), "FROM ${NOPE}\n")
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := WantedImages(cfg); err == nil || !strings.Contains(err.Error(), "service a") || !strings.Contains(err.Error(), "NOPE") {
		t.Errorf("unexpandable FROM: %v", err)
	}
	if err := os.Remove(filepath.Join(dir, "a/Dockerfile")); err != nil {
		t.Fatal(err)
	}
	if _, err := WantedImages(cfg); err == nil || !strings.Contains(err.Error(), "Dockerfile of service a") {
		t.Errorf("missing Dockerfile: %v", err)
	}
}

func writeBundleFile(t *testing.T, path, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}
