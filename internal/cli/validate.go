package cli

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/devenv-tool/devenv/internal/config"
	"github.com/devenv-tool/devenv/internal/render"
)

func init() { commands = append(commands, newValidateCmd) }

func newValidateCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "validate",
		Short: "Check devenv.yaml and say what it describes",
		Long: `Check devenv.yaml (and any -f override files): unknown or misspelt fields,
wrong types, bad ports and quantities, missing build folders and Dockerfiles,
unknown ${...} references and secrets with no value. Each problem is printed as
FILE:LINE: FIELD: what is wrong. Exit code 2 when the configuration is bad.`,
		Example: `  devenv validate
  devenv validate -f devenv.yaml -f devenv.local.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runValidate(g.configFiles(), g.streams.Out)
		},
	}
}

// runValidate loads the files and renders them (without showing secrets) so
// reference and secret problems surface too.
func runValidate(files []string, out io.Writer) error {
	cfg, err := config.Load(files...)
	if err != nil {
		return err
	}
	if _, err := render.Objects(cfg, render.Options{LookupEnv: os.LookupEnv}); err != nil {
		return err
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

// summary is e.g. "2 services, kafka, h2 memory".
func summary(cfg *config.Config) string {
	parts := []string{plural(len(cfg.Services), "service")}
	if cfg.Kafka != nil {
		parts = append(parts, "kafka")
	} else {
		parts = append(parts, "no kafka")
	}
	parts = append(parts, "h2 "+cfg.H2.Mode)
	return strings.Join(parts, ", ")
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
