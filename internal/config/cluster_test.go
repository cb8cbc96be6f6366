package config

import (
	"os"
	"path/filepath"
	"testing"
)

func TestLoadClusterContext(t *testing.T) {
	home, err := os.UserHomeDir()
	if err != nil {
		t.Skip(err)
	}
	head := "name: shop\nservices: {a: {port: 1}}\n"
	tests := []struct {
		name, yaml string
		want       Cluster // Pos and a relative Kubeconfig are checked apart
		wantErr    string  // after the file name
	}{
		{"kind by default", head, Cluster{Name: "shop", Image: DefaultNodeImage()}, ""},
		{"kind named", head + "cluster: {name: k, image: img:1}\n", Cluster{Name: "k", Image: "img:1"}, ""},
		{"context", head + "cluster: {context: dev-eu}\n", Cluster{Context: "dev-eu"}, ""},
		{"kubeconfig in home", head + "cluster: {kubeconfig: ~/.kube/other}\n",
			Cluster{Name: "shop", Image: DefaultNodeImage(), Kubeconfig: filepath.Join(home, ".kube/other")}, ""},
		{"kubeconfig absolute", head + "cluster: {kubeconfig: /etc/kube.conf}\n",
			Cluster{Name: "shop", Image: DefaultNodeImage(), Kubeconfig: "/etc/kube.conf"}, ""},
		{"name and context", head + "cluster:\n  name: shop\n  context: dev-eu\n", Cluster{},
			":5: cluster.context: cluster.name is set too ("},
		{"image and context", head + "cluster:\n  context: dev-eu\n  image: kindest/node:v1\n", Cluster{},
			":5: cluster.image: devenv does not create the cluster of cluster.context ("},
		{"empty context", head + "cluster: {context: \"\"}\n", Cluster{}, ":3: cluster.context: empty; name a context"},
		{"kubeconfig of another user", head + "cluster: {kubeconfig: ~bob/.kube/config}\n", Cluster{},
			`:3: cluster.kubeconfig: "~bob/.kube/config": only ~ and ~/...`},
		{"missing kubeconfig with context", head + "cluster:\n  context: dev\n  kubeconfig: ./nope\n", Cluster{},
			":5: cluster.kubeconfig: "},
		{"unknown field", head + "cluster: {contxt: dev}\n", Cluster{}, `:3: cluster.contxt: unknown field; did you mean "context"?`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, f, err := loadOne(t, tt.yaml)
			if tt.wantErr != "" {
				wantLoadError(t, err, f, tt.wantErr)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := cfg.Cluster
			got.Pos = Pos{}
			if got != tt.want {
				t.Errorf("cluster = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestLoadClusterContextNamesBothLines(t *testing.T) {
	_, f, err := loadOne(t, "name: shop\ncluster:\n  name: shop\n  context: dev-eu\nservices: {a: {port: 1}}\n")
	wantLoadError(t, err, f, ":4: cluster.context: cluster.name is set too ("+f+":3)")
}

// An override file that sets context: replaces the kind cluster the first
// file names; a name set beside context, or after it, is refused.
func TestLoadClusterContextOverride(t *testing.T) {
	dir := t.TempDir()
	_ = os.MkdirAll(filepath.Join(dir, "a"), 0o755)
	write(t, filepath.Join(dir, "a"), "Dockerfile", "FROM scratch\n")
	write(t, dir, "kubeconfig", "apiVersion: v1\nkind: Config\n")
	base := write(t, dir, "devenv.yaml", "name: shop\ncluster: {name: shop, image: kindest/node:v1.37.0}\nservices: {a: {port: 1}}\n")
	sub := filepath.Join(dir, "ci")
	_ = os.MkdirAll(sub, 0o755)
	shared := write(t, sub, "shared.yaml", "cluster:\n  context: dev-eu\n  kubeconfig: ../kubeconfig\n")
	cfg, err := Load(base, shared)
	if err != nil {
		t.Fatal(err)
	}
	want := Cluster{Context: "dev-eu", Kubeconfig: filepath.Join(dir, "kubeconfig"), Pos: Pos{base, 2}}
	if cfg.Cluster != want {
		t.Errorf("cluster = %+v, want %+v", cfg.Cluster, want)
	}
	later := write(t, dir, "later.yaml", "cluster: {name: other}\n")
	_, err = Load(base, shared, later)
	wantLoadError(t, err, shared, ":2: cluster.context: cluster.name is set too ("+later+":1)")
}
