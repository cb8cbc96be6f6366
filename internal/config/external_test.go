package config

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"
)

func TestLoadKafkaExternal(t *testing.T) {
	head := "name: shop\nservices: {a: {port: 1}}\n"
	tests := []struct {
		name, yaml string
		want       Kafka  // compared: External, Service, Port, Endpoints, Image, HostPort
		wantIP     string // "" = not an IP
		wantErr    string // after the file name
	}{
		{"IP", head + "kafka: {external: 10.0.0.5:9093}\n",
			Kafka{External: "10.0.0.5:9093", Service: "kafka", Port: 9092, Endpoints: EndpointsSlice}, "10.0.0.5", ""},
		{"IP classic with own port", head + "kafka: {external: 172.30.1.90:9092, port: 19092, endpoints: classic, topics: [t]}\n",
			Kafka{External: "172.30.1.90:9092", Service: "kafka", Port: 19092, Endpoints: EndpointsClassic}, "172.30.1.90", ""},
		{"DNS name", head + "kafka: {external: kafka.example.com:9094, service: broker}\n",
			Kafka{External: "kafka.example.com:9094", Service: "broker", Port: 9094, Endpoints: EndpointsSlice}, "", ""},
		{"DNS name with the same port", head + "kafka: {external: \"kafka.example.com.:9094\", port: 9094}\n",
			Kafka{External: "kafka.example.com:9094", Service: "kafka", Port: 9094, Endpoints: EndpointsSlice}, "", ""},
		{"DNS name with another port", head + "kafka:\n  external: kafka.example.com:9094\n  port: 9092\n", Kafka{}, "",
			":5: kafka.port: kafka.external ("},
		{"image", head + "kafka:\n  external: 10.0.0.5:9092\n  image: apache/kafka:4.1.0\n", Kafka{}, "",
			":5: kafka.image: devenv does not run the broker of kafka.external ("},
		{"env", head + "kafka:\n  external: 10.0.0.5:9092\n  env: {A: b}\n", Kafka{}, "", ":5: kafka.env: devenv does not run the broker"},
		{"resources", head + "kafka:\n  external: 10.0.0.5:9092\n  resources: {cpu: \"1\"}\n", Kafka{}, "", ":5: kafka.resources: devenv does not run the broker"},
		{"hostPort", head + "kafka:\n  external: 10.0.0.5:9092\n  hostPort: 0\n", Kafka{}, "", ":5: kafka.hostPort: devenv does not run the broker"},
		{"endpoints with a DNS name", head + "kafka:\n  external: kafka.example.com:9092\n  endpoints: classic\n", Kafka{}, "",
			":5: kafka.endpoints: devenv does not run the broker"},
		{"loopback", head + "kafka: {external: 127.0.0.1:9092}\n", Kafka{}, "",
			`:3: kafka.external: "127.0.0.1:9092": 127.0.0.1 is this machine's own (loopback or unspecified) address, which pods cannot reach`},
		{"IPv6 loopback", head + "kafka: {external: \"[::1]:9092\"}\n", Kafka{}, "", `:3: kafka.external: "[::1]:9092": ::1 is this machine's own`},
		{"mapped loopback", head + "kafka: {external: \"[::ffff:127.0.0.2]:9092\"}\n", Kafka{}, "", `:3: kafka.external: "[::ffff:127.0.0.2]:9092": 127.0.0.2 is this machine's own`},
		{"unspecified", head + "kafka: {external: 0.0.0.0:9092}\n", Kafka{}, "", `:3: kafka.external: "0.0.0.0:9092": 0.0.0.0 is this machine's own`},
		{"localhost", head + "kafka: {external: localhost:9092}\n", Kafka{}, "", `:3: kafka.external: "localhost:9092": localhost is, inside a pod, the pod itself`},
		{"link-local", head + "kafka: {external: 169.254.1.1:9092}\n", Kafka{}, "", `:3: kafka.external: "169.254.1.1:9092": 169.254.1.1 is a link-local or multicast address`},
		{"IPv6", head + "kafka: {external: \"[fd00::1]:9092\"}\n", Kafka{}, "", `:3: kafka.external: "[fd00::1]:9092": IPv6 addresses are not supported here yet`},
		{"no port", head + "kafka: {external: kafka.example.com}\n", Kafka{}, "", `:3: kafka.external: "kafka.example.com": expected HOST:PORT`},
		{"bad port", head + "kafka: {external: \"kafka:0\"}\n", Kafka{}, "", `:3: kafka.external: "kafka:0": port "0" is not a number from 1 to 65535`},
		{"bad name", head + "kafka: {external: Kafka_1:9092}\n", Kafka{}, "", `:3: kafka.external: "Kafka_1:9092": "Kafka_1" is neither an IPv4 address nor a DNS name`},
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
			k := cfg.Kafka
			type fields struct {
				External, Service, Endpoints, Image string
				Port, HostPort                      int
			}
			got := fields{k.External, k.Service, k.Endpoints, k.Image, k.Port, k.HostPort}
			want := fields{tt.want.External, tt.want.Service, tt.want.Endpoints, tt.want.Image, tt.want.Port, tt.want.HostPort}
			if got != want {
				t.Errorf("kafka = %+v, want %+v", got, tt.want)
			}
			if len(k.Env) != 0 || k.Resources != (Resources{}) {
				t.Errorf("env %v, resources %v; want none with external", k.Env, k.Resources)
			}
			ip, isIP := k.ExternalIP()
			if want := tt.wantIP; isIP != (want != "") || isIP && ip != netip.MustParseAddr(want) {
				t.Errorf("ExternalIP() = %v, %v; want %q", ip, isIP, want)
			}
			if got, want := k.Address(), k.Service+":"+itoa(tt.want.Port); got != want {
				t.Errorf("Address() = %q, want %q", got, want)
			}
		})
	}
}

func TestLoadExternalNamesBothLines(t *testing.T) {
	_, f, err := loadOne(t, "name: shop\nkafka:\n  external: kafka.example.com:9094\n  port: 9092\nservices: {a: {port: 1}}\n")
	wantLoadError(t, err, f, ":4: kafka.port: kafka.external ("+f+":3) is a DNS name, so the Service is of type ExternalName, which does not remap ports: pods connect to port 9094")
	_, f, err = loadOne(t, "name: shop\nkafka:\n  external: 10.0.0.5:9092\n  image: apache/kafka:4.1.0\nservices: {a: {port: 1}}\n")
	wantLoadError(t, err, f, ":4: kafka.image: devenv does not run the broker of kafka.external ("+f+":3), so kafka.image has no effect; remove it")
}

func TestLoadH2External(t *testing.T) {
	head := "name: shop\nservices: {a: {port: 1}}\n"
	tests := []struct {
		name, yaml string
		want       H2 // Pos not compared
		wantErr    string
	}{
		{"IP implies server", head + "h2: {external: 10.0.0.6:9092}\n",
			H2{Mode: H2Server, External: "10.0.0.6:9092", Service: "h2", Port: 9092}, ""},
		{"IP with mode server and port", head + "h2: {external: 10.0.0.6:1521, mode: server, port: 9092}\n",
			H2{Mode: H2Server, External: "10.0.0.6:1521", Service: "h2", Port: 9092}, ""},
		{"DNS name", head + "h2: {external: db.example.com:9123, service: db}\n",
			H2{Mode: H2Server, External: "db.example.com:9123", Service: "db", Port: 9123}, ""},
		{"mode memory", head + "h2:\n  external: 10.0.0.6:9092\n  mode: memory\n", H2{}, ":5: h2.mode: h2.external ("},
		{"image", head + "h2:\n  external: 10.0.0.6:9092\n  image: devenv.local/h2:2.1.214\n", H2{},
			":5: h2.image: devenv does not run the H2 server of h2.external ("},
		{"DNS name with another port", head + "h2:\n  external: db.example.com:9123\n  port: 9092\n", H2{}, ":5: h2.port: h2.external ("},
		{"loopback", head + "h2: {external: 127.0.0.1:9092}\n", H2{}, `:3: h2.external: "127.0.0.1:9092": 127.0.0.1 is this machine's own`},
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
			got := cfg.H2
			got.Pos = Pos{}
			if got != tt.want {
				t.Errorf("h2 = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// An override file that sets external replaces the broker and the H2 server
// the first file has devenv run.
func TestLoadExternalOverride(t *testing.T) {
	dir := t.TempDir()
	_ = os.MkdirAll(filepath.Join(dir, "a"), 0o755)
	write(t, filepath.Join(dir, "a"), "Dockerfile", "FROM scratch\n")
	base := write(t, dir, "devenv.yaml", "name: shop\nkafka:\n  image: apache/kafka:4.1.0\n  port: 9092\n  hostPort: 29092\n"+
		"  endpoints: classic\n  env: {A: b}\n  resources: {cpu: \"1\"}\n  topics: [t]\nh2: {mode: memory, image: x}\nservices: {a: {port: 1}}\n")
	shared := write(t, dir, "shared.yaml", "kafka: {external: kafka.example.com:9094}\nh2: {external: 10.0.0.6:9092}\n")
	cfg, err := Load(base, shared)
	if err != nil {
		t.Fatal(err)
	}
	k := cfg.Kafka
	if k.External != "kafka.example.com:9094" || k.Port != 9094 || k.Image != "" || k.HostPort != 0 || k.Endpoints != EndpointsSlice ||
		len(k.Env) != 0 || k.Resources != (Resources{}) || len(k.Topics) != 1 {
		t.Errorf("kafka = %+v", k)
	}
	if h := cfg.H2; h.Mode != H2Server || h.External != "10.0.0.6:9092" || h.Image != "" {
		t.Errorf("h2 = %+v", h)
	}
	later := write(t, dir, "later.yaml", "kafka:\n  image: apache/kafka:4.0.0\n")
	_, err = Load(base, shared, later)
	wantLoadError(t, err, later, ":2: kafka.image: devenv does not run the broker of kafka.external ("+shared+":1)")
}
