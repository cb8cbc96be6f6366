package cli

import (
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"
)

// The -o/--output flag, spelled the same on every verb that has one (as in
// kubectl and kind): json for scripts, or the verb's human format, which is
// the first in the list and the default.

// addOutputFlag adds -o/--output to cmd, storing into value, with shell
// completion of the formats.
func addOutputFlag(cmd *cobra.Command, value *string, formats ...string) {
	cmd.Flags().StringVarP(value, "output", "o", formats[0], "output format: "+strings.Join(formats, " or "))
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(formats, cobra.ShellCompDirectiveNoFileComp))
}

// checkOutput returns a usage error when value is none of formats.
func checkOutput(cmd *cobra.Command, value string, formats ...string) error {
	if slices.Contains(formats, value) {
		return nil
	}
	return &usageError{cmd: cmd.CommandPath(), err: fmt.Errorf("--output %q: expected %s", value, strings.Join(formats, " or "))}
}
