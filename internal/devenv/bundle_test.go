package devenv

import (
	"fmt"
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

// TestDecideBundled: whether up uses a bundled image instead of running a
// service's prebuild, for the toolchain present or not, a loaded bundle's
// record that matches the sources, differs or is absent, and its image
// present in Docker or not.
func TestDecideBundled(t *testing.T) {
	const image = "devenv.local/shop-publisher:0123456789ab"
	type record int
	const (
		matches record = iota
		differs
		absent
	)
	for _, toolFound := range []bool{true, false} {
		for _, rec := range []record{matches, differs, absent} {
			for _, inDocker := range []bool{true, false} {
				f := bundleFacts{Service: "publisher", Command: "./build.sh", Tool: "go", ToolFound: toolFound}
				switch rec {
				case matches:
					f.Recorded, f.Matching = true, []string{image}
					if inDocker {
						f.Present = image
					}
				case differs:
					f.Recorded = true
				}
				name := fmt.Sprintf("tool=%v/record=%v/image=%v", toolFound, []string{"matches", "differs", "absent"}[rec], inDocker)
				t.Run(name, func(t *testing.T) {
					ref, err := decideBundled(f)
					var want []string // in the error; nil: no error
					switch {
					case toolFound:
						// Up as always: the prebuild runs.
					case rec == absent:
						want = []string{"`./build.sh` needs go, which is not installed", "no bundle loaded", "install Go, or load a bundle made from these sources", "devenv images load FILE"}
					case rec == differs:
						want = []string{"`./build.sh` needs go, which is not installed", "sources of publisher are not those", "install Go, or load a bundle made from these sources", "devenv images load FILE"}
					case !inDocker:
						want = []string{"`./build.sh` needs go", image + " is not in Docker", "devenv images load FILE", "install Go"}
					}
					if want == nil {
						wantRef := ""
						if !toolFound {
							wantRef = image
						}
						if err != nil || ref != wantRef {
							t.Fatalf("decideBundled = %q, %v; want %q, nil", ref, err, wantRef)
						}
						return
					}
					if err == nil {
						t.Fatalf("decideBundled = %q, nil; want an error", ref)
					}
					for _, w := range want {
						if !strings.Contains(err.Error(), w) {
							t.Errorf("error %q does not say %q", err, w)
						}
					}
				})
			}
		}
	}
}

func TestDecideBundledUnknownToolchain(t *testing.T) {
	// A prebuild whose toolchain devenv cannot name runs as always.
	if ref, err := decideBundled(bundleFacts{Service: "a", Command: "./build.sh"}); ref != "" || err != nil {
		t.Fatalf("decideBundled = %q, %v; want the prebuild to run", ref, err)
	}
}

func TestBundledNote(t *testing.T) {
	got := bundledNote(bundleFacts{Service: "publisher", Tool: "go"})
	want := "publisher: `go` is not installed: using the image from the bundle (its sources are unchanged); a saved change needs go"
	if got != want {
		t.Fatalf("note = %q, want %q", got, want)
	}
}
