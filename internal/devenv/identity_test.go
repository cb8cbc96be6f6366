package devenv

import (
	"context"
	"strings"
	"testing"

	"k8s.io/client-go/kubernetes/fake"

	"github.com/devenv-tool/devenv/cluster"
	"github.com/devenv-tool/devenv/internal/config"
	"github.com/devenv-tool/devenv/internal/log"
	"github.com/devenv-tool/devenv/registry"
)

func TestHostedRegistry(t *testing.T) {
	lg := log.New(&strings.Builder{}, true)
	none := &cluster.Cluster{Client: fake.NewClientset()}
	if r := hostedRegistry(context.Background(), none, lg); r != nil {
		t.Errorf("no ConfigMap: %+v", r)
	}
	with := &cluster.Cluster{Client: fake.NewClientset(registry.HostingConfigMap("localhost:5001", "registry:5000"))}
	r := hostedRegistry(context.Background(), with, lg)
	if r == nil || r.Host != "localhost:5001" || !r.PlainHTTP() {
		t.Errorf("from the ConfigMap: %+v", r)
	}
}

func TestExistingFits(t *testing.T) {
	cfg := &config.Config{Files: []string{"devenv.yaml"}, Cluster: config.Cluster{Context: "team"}, Kafka: &config.Kafka{Service: "kafka", Port: 9092}}
	remote := &cluster.Cluster{Context: "team"}
	err := existingFits(cfg, remote)
	if err == nil || !strings.Contains(err.Error(), "registry:") || !strings.Contains(err.Error(), "kafka.external") {
		t.Errorf("a remote cluster without registry and with devenv's broker: %v", err)
	}
	cfg.Registry = &config.Registry{Host: "registry.example.com"}
	cfg.Kafka.External = "10.0.0.5:9092"
	if err := existingFits(cfg, remote); err != nil {
		t.Errorf("with registry and kafka.external: %v", err)
	}
	cfg.Registry, cfg.Kafka.External = nil, ""
	if err := existingFits(cfg, &cluster.Cluster{Kind: true}); err != nil {
		t.Errorf("someone else's kind cluster on this engine: %v", err)
	}
}

// TestExternalStatusKeepsWhatTheProbeLearns: the probe of kafka.external
// lists the topics; the status returned must carry them.
func TestExternalStatusKeepsWhatTheProbeLearns(t *testing.T) {
	es := externalStatus(context.Background(), nil, "ns", "kafka", "kafka.example.com:9094", ExternalStatus{Component: "kafka"},
		func(_ context.Context, es *ExternalStatus) error {
			es.Topics = []string{"transfers"}
			return nil
		})
	if len(es.Topics) != 1 || es.Topics[0] != "transfers" || !es.Running || es.Port != 9094 || es.HostAddress != "kafka.example.com:9094" {
		t.Errorf("status = %+v", es)
	}
}
