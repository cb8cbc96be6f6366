package config

import "testing"

func TestLoadRegistry(t *testing.T) {
	head := "name: shop\nservices: {a: {port: 1}}\n"
	tests := []struct {
		name, yaml string
		want       *Registry // Pos not compared
		plainHTTP  bool
		wantErr    string // after the file name
	}{
		{"absent", head, nil, false, ""},
		{"null", head + "registry:\n", nil, false, ""},
		{"localhost with port", head + "registry: localhost:5001\n", &Registry{Host: "localhost:5001"}, true, ""},
		{"loopback IP", head + "registry: 127.0.0.1:5000/dev\n", &Registry{Host: "127.0.0.1:5000", Prefix: "dev"}, true, ""},
		{"IPv6 loopback", head + "registry: \"[::1]:5000\"\n", &Registry{Host: "[::1]:5000"}, true, ""},
		{"DNS name with prefix", head + "registry: registry.example.com/team/dev-env\n",
			&Registry{Host: "registry.example.com", Prefix: "team/dev-env"}, false, ""},
		{"IP on the network", head + "registry: 10.0.0.5:5000\n", &Registry{Host: "10.0.0.5:5000"}, false, ""},
		{"mapping insecure", head + "registry: {address: kind-registry:5000/x, insecure: true}\n",
			&Registry{Host: "kind-registry:5000", Prefix: "x", Insecure: true}, true, ""},
		{"mapping secure", head + "registry:\n  address: ghcr.io/acme\n", &Registry{Host: "ghcr.io", Prefix: "acme"}, false, ""},
		{"scheme", head + "registry: http://localhost:5000\n", nil, false, `:3: registry: "http://localhost:5000": write the address without a scheme`},
		{"uppercase prefix", head + "registry: localhost:5000/Team\n", nil, false, `:3: registry: "localhost:5000/Team": prefix "Team" is not a repository path`},
		{"trailing slash", head + "registry: localhost:5000/\n", nil, false, `:3: registry: "localhost:5000/": prefix "" is not a repository path`},
		{"bad port", head + "registry: localhost:99999\n", nil, false, `:3: registry: "localhost:99999": port "99999" is not a number`},
		{"bad host", head + "registry: reg_istry.example.com\n", nil, false, `:3: registry: "reg_istry.example.com": host "reg_istry.example.com" is neither a DNS name nor an IP address`},
		{"IPv6 without brackets", head + "registry: \"fd00::1\"\n", nil, false, `:3: registry: "fd00::1": an IPv6 address needs brackets`},
		{"no host", head + "registry: /team\n", nil, false, `:3: registry: "/team": no host`},
		{"mapping without address", head + "registry:\n  insecure: true\n", nil, false, ":3: registry.address: missing"},
		{"bad address in mapping", head + "registry:\n  address: a..b\n", nil, false, `:4: registry.address: "a..b": host`},
		{"unknown field", head + "registry: {adress: x}\n", nil, false, `:3: registry.adress: unknown field; did you mean "address"?`},
		{"list", head + "registry: [a]\n", nil, false, ":3: registry: expected HOST[:PORT][/PREFIX]"},
		{"local", head + "registry: local\n", &Registry{Local: true}, false, ""},
		{"none", head + "registry: none\n", &Registry{None: true}, false, ""},
		{"local with a context", head + "cluster: {context: team}\nregistry: local\n", nil, false, ":4: registry: local is a registry devenv runs beside the kind cluster it creates"},
		{"local is not an address in a mapping", head + "registry: {address: local}\n", &Registry{Host: "local"}, false, ""},
		{"insecure not a bool", head + "registry: {address: x, insecure: yes please}\n", nil, false, ":3: registry.insecure: expected true or false"},
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
			got := cfg.Registry
			if (got == nil) != (tt.want == nil) {
				t.Fatalf("registry = %+v, want %+v", got, tt.want)
			}
			if got == nil {
				return
			}
			if got.Pos.Line != 3 && got.Pos.Line != 4 {
				t.Errorf("Pos = %+v, want line 3", got.Pos)
			}
			got2 := *got
			got2.Pos = Pos{}
			if got2 != *tt.want {
				t.Errorf("registry = %+v, want %+v", got2, *tt.want)
			}
			if got.PlainHTTP() != tt.plainHTTP {
				t.Errorf("PlainHTTP() = %v, want %v", got.PlainHTTP(), tt.plainHTTP)
			}
		})
	}
}

func TestRegistryRef(t *testing.T) {
	tests := []struct {
		r               Registry
		repo, tag, want string
	}{
		{Registry{Host: "localhost:5001"}, "cosmos-account", "d30a082a2332", "localhost:5001/cosmos-account:d30a082a2332"},
		{Registry{Host: "registry.example.com", Prefix: "team/dev"}, "cosmos-account", "abc", "registry.example.com/team/dev/cosmos-account:abc"},
		{Registry{Host: "[::1]:5000"}, "x", "", "[::1]:5000/x"},
	}
	for _, tt := range tests {
		if got := tt.r.Ref(tt.repo, tt.tag); got != tt.want {
			t.Errorf("%+v.Ref(%q, %q) = %q, want %q", tt.r, tt.repo, tt.tag, got, tt.want)
		}
	}
}
