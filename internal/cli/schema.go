package cli

import (
	"github.com/spf13/cobra"

	"github.com/devenv-tool/devenv/internal/config"
)

func init() { commands = append(commands, newSchemaCmd) }

func newSchemaCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "schema",
		Short: "Print the JSON Schema of devenv.yaml",
		Long: `Print the JSON Schema (draft 2020-12) of devenv.yaml, with a description of
every field. Editors with a YAML language server use it for completion and checks.`,
		Example: `  devenv schema > devenv.schema.json
  # then, first line of devenv.yaml:
  # yaml-language-server: $schema=./devenv.schema.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := g.streams.Out.Write(config.Schema())
			return err
		},
	}
}
