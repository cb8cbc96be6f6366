package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// externalProject writes devenv.yaml with service a into a new folder.
func externalProject(t *testing.T, yaml string) string {
	t.Helper()
	dir := t.TempDir()
	_ = os.MkdirAll(filepath.Join(dir, "a"), 0o755)
	_ = os.WriteFile(filepath.Join(dir, "a", "Dockerfile"), []byte("FROM scratch\n"), 0o644)
	f := filepath.Join(dir, "devenv.yaml")
	if err := os.WriteFile(f, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestBadExternalConfigExitsTwo: the settings for an existing cluster,
// registry, broker and H2 server, and the namespace's references, are
// refused with exit 2 and FILE:LINE: FIELD by validate and render.
func TestBadExternalConfigExitsTwo(t *testing.T) {
	head := "name: x\nservices:\n  a:\n    port: 1\n"
	tests := []struct {
		name, yaml string
		want       string // after the file name
	}{
		{"cluster name and context", head + "cluster:\n  name: x\n  context: dev\n", ":7: cluster.context: cluster.name is set too ("},
		{"cluster image and context", head + "cluster:\n  context: dev\n  image: kindest/node:v1\n", ":7: cluster.image: devenv does not create the cluster"},
		{"registry prefix", head + "registry: localhost:5001/Team\n", `:5: registry: "localhost:5001/Team": prefix "Team" is not a repository path`},
		{"registry scheme", head + "registry: {address: \"https://r.example.com\"}\n", `:5: registry.address: "https://r.example.com": write the address without a scheme`},
		{"kafka image with external", head + "kafka:\n  external: 10.0.0.5:9092\n  image: apache/kafka:4.1.0\n",
			":7: kafka.image: devenv does not run the broker of kafka.external ("},
		{"kafka hostPort with external", head + "kafka:\n  external: 10.0.0.5:9092\n  hostPort: 29092\n", ":7: kafka.hostPort: devenv does not run the broker"},
		{"kafka port with a DNS name", head + "kafka:\n  external: kafka.example.com:9094\n  port: 9092\n",
			":7: kafka.port: kafka.external ("},
		{"kafka loopback", head + "kafka: {external: 127.0.0.1:9092}\n", `:5: kafka.external: "127.0.0.1:9092": 127.0.0.1 is this machine's own`},
		{"h2 memory with external", head + "h2:\n  external: 10.0.0.6:9092\n  mode: memory\n", ":7: h2.mode: h2.external ("},
		{"namespace env unset", head + "namespace: x-${env.DEVENV_TEST_UNSET_VAR}\n",
			":5: namespace: ${env.DEVENV_TEST_UNSET_VAR}: the environment variable DEVENV_TEST_UNSET_VAR is not set"},
		{"namespace expands badly", head + "namespace: x-${env.DEVENV_TEST_BRANCH}\n",
			`:5: namespace: "x-${env.DEVENV_TEST_BRANCH}" expands to "x-Feature/1", which is not a valid namespace`},
	}
	unsetEnv(t, "DEVENV_TEST_UNSET_VAR")
	t.Setenv("DEVENV_TEST_BRANCH", "Feature/1")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := externalProject(t, tt.yaml)
			for _, verb := range [][]string{{"validate"}, {"render", "--docker=false"}} {
				code, out, errOut := run(t, append(verb, "-f", f)...)
				if code != ExitConfig || out != "" || !strings.Contains(errOut, f+tt.want) {
					t.Errorf("%s: exit %d, stdout %q, stderr %q\nwant exit 2 and %q", verb[0], code, out, errOut, f+tt.want)
				}
			}
		})
	}
}

func TestValidateExternalSummary(t *testing.T) {
	t.Setenv("DEVENV_USER", "Jane.Doe")
	f := externalProject(t, "name: x\nnamespace: x-${user}\ncluster: {context: dev}\nregistry: localhost:5001/team\n"+
		"kafka: {external: kafka.example.com:9094}\nh2: {external: 10.0.0.6:9092}\nservices:\n  a:\n    port: 1\n")
	// A kubeconfig with the context, whose API server does not answer:
	// validate notes that it could not ask the cluster and checks the rest.
	kc := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kc, []byte("apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: \"https://127.0.0.1:1\"}}]\nusers: [{name: u}]\ncontexts: [{name: dev, context: {cluster: c, user: u}}]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := run(t, "validate", "-f", f, "--kubeconfig", kc)
	want := f + ": ok (1 service, kafka external kafka.example.com:9094, h2 external 10.0.0.6:9092, cluster context dev, registry localhost:5001/team (plain HTTP))\n"
	if code != ExitOK || out != want || !strings.Contains(errOut, "note: context dev was not checked") {
		t.Errorf("exit %d, stdout %q, stderr %q\nwant %q", code, out, errOut, want)
	}
}

// TestRenderExternal: devenv render of a file with kafka.external shows the
// selector-less Service and its EndpointSlice at the external IP (or the
// ExternalName Service for a DNS name), with no placeholder and without
// asking Docker.
func TestRenderExternal(t *testing.T) {
	t.Setenv("DEVENV_USER", "Jane.Doe")
	tests := []struct {
		name, kafka string
		want        []string
	}{
		{"IP", "kafka: {external: 172.30.1.90:9092, endpoints: classic}\n", []string{
			"kind: EndpointSlice", "- 172.30.1.90", "kind: Endpoints", "- ip: 172.30.1.90", "targetPort: 9092", "namespace: x-jane-doe"}},
		{"DNS name", "kafka: {external: kafka.example.com:9094}\n", []string{
			"type: ExternalName", "externalName: kafka.example.com", "port: 9094"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := externalProject(t, "name: x\nnamespace: x-${user}\n"+tt.kafka+"services:\n  a:\n    port: 1\n    config: {broker: \"${kafka.address}\"}\n")
			code, out, errOut := run(t, "render", "-f", f)
			if code != ExitOK {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("render lacks %q:\n%s", w, out)
				}
			}
			if strings.Contains(out, "placeholder") || strings.Contains(out, "192.0.2.1") {
				t.Errorf("render has a placeholder for an external broker:\n%s", out)
			}
			if tt.name == "DNS name" && strings.Contains(out, "kind: EndpointSlice") {
				t.Errorf("an ExternalName Service got endpoints:\n%s", out)
			}
			code, _, errOut = run(t, "render", "--docker=false", "-f", f, "--external-ip", "kafka=172.18.0.250")
			if code != ExitConfig || !strings.Contains(errOut, "--external-ip kafka: devenv runs no kafka container here: its address is kafka.external in the config") {
				t.Errorf("--external-ip for an external broker: exit %d, stderr %q", code, errOut)
			}
		})
	}
}
