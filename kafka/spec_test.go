package kafka

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
)

func baseSpec(t *testing.T) Spec {
	t.Helper()
	s, err := Spec{
		Project: "cosmos", Network: "kind", IP: "172.18.0.50", HostPort: 29092,
		NanoCPUs: 1_500_000_000, Memory: 512 << 20,
		Labels: map[string]string{"team": "payments"},
	}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestContainerSpecKfake(t *testing.T) {
	r, err := containerSpec(baseSpec(t), KindKfake)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"DEVENV_KAFKA_LISTEN":              "0.0.0.0:9092",
		"DEVENV_KAFKA_ADVERTISED":          "172.18.0.50:9092",
		"DEVENV_KAFKA_EXTERNAL_LISTEN":     "0.0.0.0:19092",
		"DEVENV_KAFKA_EXTERNAL_ADVERTISED": "127.0.0.1:29092",
		"DEVENV_KAFKA_DATA_DIR":            "/data",
		"DEVENV_KAFKA_CLUSTER_ID":          "devenv-cosmos",
	}
	if len(r.Env) != len(want) {
		t.Errorf("env = %v", r.Env)
	}
	for k, v := range want {
		if r.Env[k] != v {
			t.Errorf("env %s = %q, want %q", k, r.Env[k], v)
		}
	}
	if r.Name != "devenv-cosmos-kafka" || r.Image != DefaultImage || r.Network != "kind" || r.IP != "172.18.0.50" ||
		r.HostPort != 29092 || r.Volume != "devenv-cosmos-kafka-data" || r.DataDir != "/data" ||
		r.NanoCPUs != 1_500_000_000 || r.Memory != 512<<20 {
		t.Errorf("request = %+v", r)
	}
	for k, v := range map[string]string{LabelProject: "cosmos", LabelComponent: "kafka", labelKind: "kfake", labelPort: "9092", labelNetwork: "kind", "team": "payments"} {
		if r.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, r.Labels[k], v)
		}
	}

	// Without a fixed IP the broker advertises its own address.
	s := baseSpec(t)
	s.IP = ""
	r, _ = containerSpec(s, KindKfake)
	if r.Env["DEVENV_KAFKA_ADVERTISED"] != "auto" {
		t.Errorf("dynamic IP: advertised = %q, want auto", r.Env["DEVENV_KAFKA_ADVERTISED"])
	}
}

func TestContainerSpecApache(t *testing.T) {
	s := baseSpec(t)
	s.Image = "apache/kafka:4.1.0"
	s.Env = map[string]string{"KAFKA_HEAP_OPTS": "-Xmx256m", "KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS": "100"}
	r, err := containerSpec(s, KindApache)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"KAFKA_NODE_ID":                                  "1",
		"KAFKA_PROCESS_ROLES":                            "broker,controller",
		"KAFKA_LISTENERS":                                "INTERNAL://0.0.0.0:9092,HOST://0.0.0.0:19092,CONTROLLER://0.0.0.0:9093",
		"KAFKA_ADVERTISED_LISTENERS":                     "INTERNAL://172.18.0.50:9092,HOST://127.0.0.1:29092",
		"KAFKA_LISTENER_SECURITY_PROTOCOL_MAP":           "INTERNAL:PLAINTEXT,HOST:PLAINTEXT,CONTROLLER:PLAINTEXT",
		"KAFKA_CONTROLLER_QUORUM_VOTERS":                 "1@localhost:9093",
		"KAFKA_CONTROLLER_LISTENER_NAMES":                "CONTROLLER",
		"KAFKA_INTER_BROKER_LISTENER_NAME":               "INTERNAL",
		"KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR":         "1",
		"KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
		"KAFKA_TRANSACTION_STATE_LOG_MIN_ISR":            "1",
		"KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS":         "100", // the user's value wins
		"KAFKA_LOG_DIRS":                                 "/var/lib/kafka/data",
		"KAFKA_HEAP_OPTS":                                "-Xmx256m",
	}
	for k, v := range want {
		if r.Env[k] != v {
			t.Errorf("env %s = %q, want %q", k, r.Env[k], v)
		}
	}
	id := r.Env["CLUSTER_ID"]
	if b, err := base64.RawURLEncoding.DecodeString(id); err != nil || len(b) != 16 {
		t.Errorf("CLUSTER_ID %q is not 16 bytes of URL-safe base64", id)
	}
	if id != clusterID("cosmos") || id == clusterID("other") {
		t.Error("CLUSTER_ID must be fixed per project and differ between projects")
	}
	if r.DataDir != "/var/lib/kafka/data" || r.Labels[labelKind] != "apache" {
		t.Errorf("data dir %q, kind label %q", r.DataDir, r.Labels[labelKind])
	}

	s.IP = ""
	r, _ = containerSpec(s, KindApache)
	if got := r.Env["KAFKA_ADVERTISED_LISTENERS"]; got != "INTERNAL://devenv-cosmos-kafka:9092,HOST://127.0.0.1:29092" {
		t.Errorf("dynamic IP: advertised = %q", got)
	}
}

func TestGenericRequest(t *testing.T) {
	r, err := containerSpec(baseSpec(t), KindKfake)
	if err != nil {
		t.Fatal(err)
	}
	req := r.generic()
	if len(req.ExposedPorts) != 1 || req.ExposedPorts[0] != "19092/tcp" {
		t.Errorf("exposed = %v; only the host listener may be published", req.ExposedPorts)
	}
	if len(req.Networks) != 1 || req.Networks[0] != "kind" || req.Name != "devenv-cosmos-kafka" {
		t.Errorf("networks %v name %q", req.Networks, req.Name)
	}
	var hc container.HostConfig
	req.HostConfigModifier(&hc)
	b := hc.PortBindings[hostListener]
	if len(b) != 1 || b[0].HostIP.String() != "127.0.0.1" || b[0].HostPort != "29092" {
		t.Errorf("port bindings = %v", hc.PortBindings)
	}
	if hc.Resources.NanoCPUs != 1_500_000_000 || hc.Resources.Memory != 512<<20 || hc.NetworkMode != "kind" ||
		hc.RestartPolicy.Name != container.RestartPolicyUnlessStopped {
		t.Errorf("host config = %+v", hc)
	}
	if len(hc.Mounts) != 1 || hc.Mounts[0].Source != "devenv-cosmos-kafka-data" || hc.Mounts[0].Target != "/data" ||
		hc.Mounts[0].VolumeOptions.Labels[LabelProject] != "cosmos" {
		t.Errorf("mounts = %+v", hc.Mounts)
	}
	eps := map[string]*network.EndpointSettings{"kind": {Aliases: []string{"kafka"}}}
	req.EndpointSettingsModifier(eps)
	if got := eps["kind"].IPAMConfig.IPv4Address.String(); got != "172.18.0.50" {
		t.Errorf("fixed IP = %s", got)
	}
}

func TestSpecValidation(t *testing.T) {
	tests := map[string]struct {
		spec Spec
		want string
	}{
		"no project":      {Spec{}, "project name is empty"},
		"ip without net":  {Spec{Project: "p", IP: "10.0.0.2"}, "needs a network"},
		"bad ip":          {Spec{Project: "p", Network: "kind", IP: "10.0.0"}, "not an IPv4 address"},
		"port clash":      {Spec{Project: "p", Port: 19092}, "taken by the broker's own listeners"},
		"bad host port":   {Spec{Project: "p", HostPort: 70000}, "host port 70000"},
		"negative memory": {Spec{Project: "p", Memory: -1}, "must not be negative"},
		"unnamed topic":   {Spec{Project: "p", Topics: []Topic{{Name: "a"}, {Name: " "}}}, "topic 2 has no name"},
	}
	for name, tt := range tests {
		if _, err := tt.spec.withDefaults(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want %q", name, err, tt.want)
		}
	}
}

func TestSpecHash(t *testing.T) {
	a := baseSpec(t)
	h := a.hash("sha256:1", KindKfake)
	b := baseSpec(t)
	b.Topics = []Topic{{Name: "orders", Partitions: 3}}
	b.ReadyTimeout = 1
	if b.hash("sha256:1", KindKfake) != h {
		t.Error("topics and timeouts must not change the container hash")
	}
	for name, change := range map[string]func(s *Spec){
		"env":    func(s *Spec) { s.Env = map[string]string{"DEVENV_KAFKA_LOG": "debug"} },
		"ip":     func(s *Spec) { s.IP = "172.18.0.51" },
		"memory": func(s *Spec) { s.Memory = 1 },
		"label":  func(s *Spec) { s.Labels = map[string]string{"team": "x"} },
	} {
		c := baseSpec(t)
		change(&c)
		if c.hash("sha256:1", KindKfake) == h {
			t.Errorf("changing %s keeps the hash", name)
		}
	}
	if a.hash("sha256:2", KindKfake) == h {
		t.Error("a new image ID keeps the hash")
	}
}
