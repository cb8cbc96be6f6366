package devenv

import (
	"context"
	"fmt"

	"github.com/devenv-tool/devenv/cluster"
	"github.com/devenv-tool/devenv/internal/config"
	"github.com/devenv-tool/devenv/project"
)

// ProjectID is the identity of cfg's environment: the project name on
// devenv's own kind cluster; name + context + namespace on a cluster devenv
// did not create, so two namespaces running the same project never share a
// container, a lock or a record.
func ProjectID(cfg *config.Config) project.ID {
	return project.ID{Name: cfg.Name, Context: cfg.Cluster.Context, Namespace: cfg.Namespace}
}

// projectKey is ProjectID(cfg).Key(): what the kafka and h2 packages, the
// lock and devenv's records are keyed on.
func projectKey(cfg *config.Config) string { return ProjectID(cfg).Key() }

// existing says cfg's environment runs on a cluster devenv did not create.
func existing(cfg *config.Config) bool { return cfg.Cluster.Context != "" }

// kubeconfigOf is the kubeconfig file for cfg: --kubeconfig (opts) first,
// then devenv.yaml's cluster.kubeconfig, else the default one.
func kubeconfigOf(cfg *config.Config, opts Options) string {
	if opts.Kubeconfig != "" {
		return opts.Kubeconfig
	}
	return cfg.Cluster.Kubeconfig
}

// clusterName names cfg's cluster in messages: the kind cluster, or the
// context of a cluster devenv did not create.
func clusterName(cfg *config.Config) string {
	if existing(cfg) {
		return "context " + cfg.Cluster.Context
	}
	return cfg.Cluster.Name
}

// clusterContext is the kubeconfig context of cfg's cluster.
func clusterContext(cfg *config.Config) string {
	if existing(cfg) {
		return cfg.Cluster.Context
	}
	return "kind-" + cfg.Cluster.Name
}

// connectCluster connects to cfg's cluster without creating anything: the
// kind cluster devenv made (cluster.Connect), or the cluster of
// cluster.context (cluster.ConnectExisting).
func connectCluster(ctx context.Context, cfg *config.Config, opts Options) (*cluster.Cluster, error) {
	if existing(cfg) {
		c, err := cluster.ConnectExisting(ctx, cfg.Cluster.Context, kubeconfigOf(cfg, opts), cluster.Options{Log: opts.logger().Slog()})
		if err != nil {
			return nil, fmt.Errorf("cluster.context: %w", err)
		}
		return c, nil
	}
	return cluster.Connect(ctx, cfg.Cluster.Name, opts.Kubeconfig)
}

// externalKafka says whether the broker is one devenv does not run.
func externalKafka(cfg *config.Config) bool { return cfg.Kafka != nil && cfg.Kafka.External != "" }

// externalH2 says whether the H2 server is one devenv does not run.
func externalH2(cfg *config.Config) bool { return cfg.H2.External != "" }

// runsContainers says whether devenv runs a container for cfg (its own
// Kafka broker or H2 server).
func runsContainers(cfg *config.Config) bool {
	return (cfg.Kafka != nil && !externalKafka(cfg)) || (cfg.H2.Mode == config.H2Server && !externalH2(cfg))
}

// CheckCluster says, for cfg on a cluster devenv did not create
// (cluster.context), what devenv.yaml lacks to run there: a registry for a
// cluster that is not kind on this Docker engine (unless it names one in
// its KEP-1755 ConfigMap), kafka.external or h2.external for a cluster that
// cannot reach devenv's containers. reached is false (with the reason in
// err) when the cluster could not be asked; a nil err with reached true
// means cfg fits. It changes nothing.
func CheckCluster(ctx context.Context, cfg *config.Config, opts Options) (reached bool, err error) {
	if !existing(cfg) {
		return false, nil
	}
	// Not connectCluster: validate names the field itself.
	c, err := cluster.ConnectExisting(ctx, cfg.Cluster.Context, kubeconfigOf(cfg, opts), cluster.Options{Log: opts.logger().Slog()})
	if err != nil {
		return false, err
	}
	return true, existingFits(withHostedRegistry(ctx, cfg, c, opts.logger()), c)
}

// effective is cfg with its registry as devenv uses it: on the kind cluster
// devenv creates, no registry: means registry: local (measured faster than
// loading into the node: README "How fast"); registry: none means none.
// cfg itself is not changed.
func effective(cfg *config.Config) *config.Config {
	r := cfg.Registry
	switch {
	case r == nil && !existing(cfg):
		cp := *cfg
		cp.Registry = &config.Registry{Local: true, Default: true}
		return &cp
	case r != nil && r.None:
		cp := *cfg
		cp.Registry = nil
		return &cp
	}
	return cfg
}
