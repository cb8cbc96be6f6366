package cli

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestValidateAsksTheCluster: with cluster.context, validate asks the
// cluster whether the file can run there. The API server here is a stand-in
// that answers /version and nothing else (no kind node on this engine
// serves its port): a cluster that is not kind here, so images need a
// registry and pods cannot reach devenv's broker.
func TestValidateAsksTheCluster(t *testing.T) {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/version" {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"gitVersion":"v1.37.2"}`))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","code":404}`))
	}))
	defer api.Close()
	dir := t.TempDir()
	kc := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(kc, []byte(`apiVersion: v1
kind: Config
clusters: [{name: team, cluster: {server: "`+api.URL+`"}}]
users: [{name: me, user: {token: x}}]
contexts: [{name: team-dev, context: {cluster: team, user: me}}]
`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM scratch\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	write := func(extra string) string {
		f := filepath.Join(dir, "devenv.yaml")
		y := "name: shop\ncluster: {context: team-dev}\nkafka: {topics: [orders]}\nservices:\n  api: {context: ., port: 8080}\n" + extra
		if err := os.WriteFile(f, []byte(y), 0o644); err != nil {
			t.Fatal(err)
		}
		return f
	}

	code, _, stderr := run(t, "validate", "-f", write(""), "--kubeconfig", kc)
	if code != 2 || !strings.Contains(stderr, "devenv.yaml:2: cluster.context") || !strings.Contains(stderr, "registry:") || !strings.Contains(stderr, "kafka.external") {
		t.Errorf("a remote cluster without registry and with devenv's broker: exit %d\n%s", code, stderr)
	}
	code, stdout, stderr := run(t, "validate", "-f", write("registry: registry.example.com/team\n"), "--kubeconfig", kc)
	if code != 2 || strings.Contains(stderr, "registry:") || !strings.Contains(stderr, "kafka.external") {
		t.Errorf("with a registry, only the broker is missing: exit %d\n%s%s", code, stdout, stderr)
	}
	f := filepath.Join(dir, "devenv.yaml")
	if err := os.WriteFile(f, []byte("name: shop\ncluster: {context: team-dev}\nregistry: registry.example.com/team\nkafka: {external: 10.0.0.5:9092}\nservices:\n  api: {context: ., port: 8080}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, stdout, stderr := run(t, "validate", "-f", f, "--kubeconfig", kc); code != 0 || !strings.Contains(stdout, "ok") {
		t.Errorf("a file that fits: exit %d\n%s%s", code, stdout, stderr)
	}
	if code, _, stderr := run(t, "validate", "-f", write("registry: r.example.com\n"), "--kubeconfig", filepath.Join(dir, "nope")); code != 2 || !strings.Contains(stderr, "cluster.context") {
		t.Errorf("a kubeconfig without the context: exit %d\n%s", code, stderr)
	}
}
