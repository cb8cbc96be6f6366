package registry

import (
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
	corev1 "k8s.io/api/core/v1"
)

func TestKindContainerd(t *testing.T) {
	cfg, err := KindContainerd("localhost:5001", "devenv-registry:5000")
	if err != nil {
		t.Fatal(err)
	}
	// One patch per containerd config version, each pointing the CRI
	// plugin's registry at CertsDir.
	wantPlugin := map[int64]string{2: "io.containerd.grpc.v1.cri", 3: "io.containerd.cri.v1.images"}
	if len(cfg.ContainerdConfigPatches) != len(wantPlugin) {
		t.Fatalf("patches = %q", cfg.ContainerdConfigPatches)
	}
	for _, p := range cfg.ContainerdConfigPatches {
		var doc struct {
			Version int64
			Plugins map[string]struct {
				Registry struct {
					ConfigPath string `toml:"config_path"`
				}
			}
		}
		if _, err := toml.Decode(p, &doc); err != nil {
			t.Fatalf("patch %q: %v", p, err)
		}
		plugin, ok := wantPlugin[doc.Version]
		if !ok {
			t.Fatalf("patch %q: version %d", p, doc.Version)
		}
		if got := doc.Plugins[plugin].Registry.ConfigPath; got != "/etc/containerd/certs.d" || len(doc.Plugins) != 1 {
			t.Errorf("patch for version %d: %+v", doc.Version, doc.Plugins)
		}
		delete(wantPlugin, doc.Version)
	}
	for _, name := range []string{"/etc/containerd/certs.d/localhost:5001/hosts.toml", "/etc/containerd/certs.d/devenv-registry:5000/hosts.toml"} {
		b, ok := cfg.Files[name]
		if !ok {
			t.Errorf("no %s in %v", name, cfg.Files)
			continue
		}
		var hosts struct {
			Host map[string]struct{ Capabilities []string }
		}
		if _, err := toml.Decode(string(b), &hosts); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		h, ok := hosts.Host["http://devenv-registry:5000"]
		if len(hosts.Host) != 1 || !ok || strings.Join(h.Capabilities, ",") != "pull,resolve" {
			t.Errorf("%s = %+v", name, hosts)
		}
	}
	if len(cfg.Files) != 2 {
		t.Errorf("files = %v", cfg.Files)
	}
}

func TestKindContainerdRefusesBadAddresses(t *testing.T) {
	for _, tc := range []struct{ host, endpoint string }{
		{"localhost", "devenv-registry:5000"},
		{"http://localhost:5001", "devenv-registry:5000"},
		{"localhost:5001", "devenv-registry:5000/x"},
		{"localhost:5001", ""},
		{`a"b:1`, "devenv-registry:5000"},
	} {
		if _, err := KindContainerd(tc.host, tc.endpoint); err == nil || !strings.Contains(err.Error(), "HOST:PORT") {
			t.Errorf("KindContainerd(%q, %q) err = %v", tc.host, tc.endpoint, err)
		}
	}
}

func TestHostingConfigMapRoundTrip(t *testing.T) {
	cm := HostingConfigMap("localhost:5001", "devenv-registry:5000")
	if cm.Namespace != "kube-public" || cm.Name != "local-registry-hosting" || cm.Kind != "ConfigMap" || cm.APIVersion != "v1" {
		t.Errorf("ConfigMap = %s %s/%s", cm.Kind, cm.Namespace, cm.Name)
	}
	data := cm.Data["localRegistryHosting.v1"]
	for _, want := range []string{"host: localhost:5001\n", "hostFromClusterNetwork: devenv-registry:5000\n", "hostFromContainerRuntime: devenv-registry:5000\n", "help: https://kind.sigs.k8s.io/docs/user/local-registry/\n"} {
		if !strings.Contains(data, want) {
			t.Errorf("data lacks %q:\n%s", want, data)
		}
	}
	h, err := ParseHostingConfigMap(cm)
	if err != nil {
		t.Fatal(err)
	}
	if h.Host != "localhost:5001" || h.HostFromClusterNetwork != "devenv-registry:5000" {
		t.Errorf("parsed %+v", h)
	}
}

func TestParseHostingConfigMap(t *testing.T) {
	mk := func(v string) *corev1.ConfigMap {
		cm := HostingConfigMap("x:1", "y:2")
		cm.Data = map[string]string{HostingKey: v}
		return cm
	}
	tests := []struct {
		name    string
		cm      *corev1.ConfigMap
		host    string
		wantErr string
	}{
		// What kind's local-registry script writes.
		{"kind's script", mk("host: \"localhost:5001\"\nhelp: \"https://kind.sigs.k8s.io/docs/user/local-registry/\"\n"), "localhost:5001", ""},
		{"no key", &corev1.ConfigMap{}, "", "has no localRegistryHosting.v1"},
		{"no host", mk("help: x\n"), "", "names no host"},
		{"not yaml", mk("host: [\n"), "", "reading localRegistryHosting.v1"},
		{"nil", nil, "", "no local-registry-hosting"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, err := ParseHostingConfigMap(tc.cm)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || h.Host != tc.host {
				t.Errorf("got %+v, %v", h, err)
			}
		})
	}
}
