package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/devenv-tool/devenv/cluster"
	"github.com/devenv-tool/devenv/internal/config"
	"github.com/devenv-tool/devenv/internal/devenv"
	"github.com/devenv-tool/devenv/internal/render"
)

func init() { commands = append(commands, newValidateCmd) }

func newValidateCmd(g *globals) *cobra.Command {
	var kubeconfig string
	cmd := &cobra.Command{
		Use:   "validate",
		Short: "Check devenv.yaml and say what it describes",
		Long: `Check devenv.yaml (and any -f override files): unknown or misspelt fields,
wrong types, bad ports and quantities, missing build folders and Dockerfiles,
unknown ${...} references and secrets with no value. Each problem is printed as
FILE:LINE: FIELD: what is wrong. Exit code 2 when the configuration is bad.

With cluster.context (a cluster devenv did not create), validate also asks
that cluster whether the file can run there: a cluster that is not kind on
this Docker engine needs registry:, and one that cannot reach devenv's
containers needs kafka.external (h2.external). When the cluster does not
answer, it says so and checks the rest.`,
		Example: `  devenv validate
  devenv validate -f devenv.yaml -f devenv.local.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runValidate(g.configFiles(), kubeconfig, g.streams.Out, g.streams.Err)
		},
	}
	cmd.Flags().StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig file for cluster.context (default: cluster.kubeconfig, else $KUBECONFIG, else ~/.kube/config)")
	return cmd
}

// runValidate loads the files and renders them (without showing secrets) so
// reference and secret problems surface too.
func runValidate(files []string, kubeconfig string, out, notes io.Writer) error {
	cfg, err := config.Load(files...)
	if err != nil {
		return err
	}
	if _, err := render.Objects(cfg, render.Options{LookupEnv: os.LookupEnv}); err != nil {
		return err
	}
	if cfg.Cluster.Context != "" {
		// The one question validate asks a cluster: can this file run
		// there at all (a registry, an external broker)?
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		reached, err := devenv.CheckCluster(ctx, cfg, devenv.Options{Kubeconfig: kubeconfig})
		cancel()
		switch {
		case errors.Is(err, cluster.ErrNoCluster):
			// A context the kubeconfig lacks: a typo, or the wrong file.
			return cfg.Cluster.Pos.Errorf("cluster.context", "%v", err)
		case reached && err != nil:
			return cfg.Cluster.Pos.Errorf("cluster.context", "%v", err)
		case !reached && err != nil:
			fmt.Fprintf(notes, "note: context %s was not checked (%v): devenv up checks it before anything\n", cfg.Cluster.Context, err)
		}
	}
	fmt.Fprintf(out, "%s: ok (%s)\n", strings.Join(files, ", "), summary(cfg))
	for _, t := range cfg.Tests {
		fmt.Fprintf(out, "  test %s\n", testSummary(cfg, t))
	}
	return nil
}

// testSummary is e.g. "e2e: go test ./e2e in examples/cosmos (after account,
// transfermoney; timeout 2m0s)".
func testSummary(cfg *config.Config, t *config.Test) string {
	cmd := strings.Join(t.Command, " ")
	if t.Shell {
		cmd = "sh -c " + strconv.Quote(t.Command[0])
	}
	dir := t.Dir
	if rel, err := filepath.Rel(cfg.Dir, t.Dir); err == nil && !strings.HasPrefix(rel, "..") {
		dir = rel
	}
	after := "after " + strings.Join(t.Services, ", ")
	switch {
	case len(t.Services) == 0:
		after = "devenv test only"
	case len(t.Services) == len(cfg.Services):
		after = "after any service"
	}
	return fmt.Sprintf("%s: %s in %s (%s; timeout %s)", t.Name, cmd, dir, after, t.Timeout)
}

// summary is e.g. "2 services, kafka, h2 memory", or for a project on an
// existing cluster "2 services, kafka external kafka.example.com:9092, h2
// memory, cluster context dev, registry registry.example.com/team".
func summary(cfg *config.Config) string {
	parts := []string{plural(len(cfg.Services), "service")}
	switch {
	case cfg.Kafka == nil:
		parts = append(parts, "no kafka")
	case cfg.Kafka.External != "":
		parts = append(parts, "kafka external "+cfg.Kafka.External)
	default:
		parts = append(parts, "kafka")
	}
	if cfg.H2.External != "" {
		parts = append(parts, "h2 external "+cfg.H2.External)
	} else {
		parts = append(parts, "h2 "+cfg.H2.Mode)
	}
	if cfg.Cluster.Context != "" {
		parts = append(parts, "cluster context "+cfg.Cluster.Context)
	}
	switch r := cfg.Registry; {
	case r != nil && r.Local:
		parts = append(parts, "registry local")
	case r != nil && r.None:
		parts = append(parts, "images loaded into the node")
	case r != nil:
		reg := "registry " + strings.TrimSuffix(r.Host+"/"+r.Prefix, "/")
		if r.PlainHTTP() {
			reg += " (plain HTTP)"
		}
		parts = append(parts, reg)
	}
	return strings.Join(parts, ", ")
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
