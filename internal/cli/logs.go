package cli

import (
	"github.com/spf13/cobra"

	"github.com/devenv-tool/devenv/internal/config"
	"github.com/devenv-tool/devenv/internal/devenv"
	"github.com/devenv-tool/devenv/internal/termx"
)

func init() { commands = append(commands, newLogsCmd) }

type logsFlags struct {
	envFlags
	follow bool
}

func newLogsCmd(g *globals) *cobra.Command {
	f := &logsFlags{}
	cmd := &cobra.Command{
		Use:   "logs [SERVICE...]",
		Short: "Print the services' pod logs, each line prefixed with its service",
		Long: `Print the logs of the pods of the named services (all services when none is
named), each line prefixed with the service's name. With --follow, keep following
them, including the new pods of later rollouts, until Ctrl-C. devenv up prints
the same lines while it watches.`,
		Example: `  devenv logs account
  devenv logs --follow            # every service, following rollouts
  devenv logs <TAB>               # completes the services of devenv.yaml (see devenv completion --help)`,
		Args:              cobra.ArbitraryArgs, // service names; devenv.Logs says which is unknown
		ValidArgsFunction: completeServices(g),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := config.Load(g.configFiles()...)
			if err != nil {
				return err
			}
			return devenv.Logs(cmd.Context(), cfg, devenv.Options{Kubeconfig: f.kubeconfig, Log: g.logger()}, args,
				devenv.LogOptions{Follow: f.follow, Color: termx.Color(g.streams.Out), Out: g.streams.Out})
		},
	}
	f.add(cmd)
	// No -f: that is the config file on every verb.
	cmd.Flags().BoolVar(&f.follow, "follow", false, "keep following the logs until Ctrl-C")
	return cmd
}
