package cli

import (
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/devenv-tool/devenv/internal/config"
	"github.com/devenv-tool/devenv/internal/images"
)

// Shell completion: cobra's `devenv completion bash|zsh|fish|powershell`
// writes the script; these functions give the dynamic part of it.

// completeServices completes the names of the services enabled in the
// config (the -f files, as the command line being completed gives them),
// leaving out those already on the line. A config that does not load
// completes nothing.
func completeServices(g *globals) cobra.CompletionFunc {
	return func(_ *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		cfg, err := config.Load(g.configFiles()...)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var names []cobra.Completion
		for _, s := range cfg.Services {
			if strings.HasPrefix(s.Name, toComplete) && !slices.Contains(args, s.Name) {
				names = append(names, s.Name)
			}
		}
		return names, cobra.ShellCompDirectiveNoFileComp
	}
}

// completeStandIns completes the names of the stand-in images.
func completeStandIns(_ *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	var names []cobra.Completion
	for _, s := range images.All() {
		if strings.HasPrefix(s.Name, toComplete) && !slices.Contains(args, s.Name) {
			names = append(names, s.Name)
		}
	}
	return names, cobra.ShellCompDirectiveNoFileComp
}
