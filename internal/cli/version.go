package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

func init() { commands = append(commands, newVersionCmd) }

// versionInfo is what devenv version prints.
type versionInfo struct {
	Version   string `json:"version"`
	GoVersion string `json:"goVersion"`
	Platform  string `json:"platform"`
	Commit    string `json:"commit,omitempty"`
	Time      string `json:"commitTime,omitempty"`
	Modified  bool   `json:"modified,omitempty"`
}

func newVersionCmd(g *globals) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print devenv's version",
		Long: `Print devenv's module version, the Go version it was built with and, when known, the commit.

With -o json (--output json), one JSON object with the fields version,
goVersion, platform, commit, commitTime and modified.`,
		Example: `  devenv version
  devenv version -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(cmd, output, "text", "json"); err != nil {
				return err
			}
			return runVersion(output, g.streams.Out)
		},
	}
	addOutputFlag(cmd, &output, "text", "json")
	return cmd
}

func buildVersion() versionInfo {
	v := versionInfo{Version: "unknown", GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	if bi.Main.Version != "" {
		v.Version = bi.Main.Version
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Commit = s.Value
		case "vcs.time":
			v.Time = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	return v
}

func runVersion(output string, out io.Writer) error {
	v := buildVersion()
	switch output {
	case "json":
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return fmt.Errorf("writing version: %w", err)
		}
		_, err = fmt.Fprintf(out, "%s\n", b)
		return err
	case "text", "":
		line := fmt.Sprintf("devenv %s (%s, %s", v.Version, v.GoVersion, v.Platform)
		if v.Commit != "" {
			line += ", commit " + short(v.Commit)
			if v.Modified {
				line += "+modified"
			}
		}
		_, err := fmt.Fprintln(out, line+")")
		return err
	}
	return fmt.Errorf("%w: -o %q: expected text or json", ErrUsage, output)
}

func short(commit string) string {
	if len(commit) > 12 {
		return commit[:12]
	}
	return commit
}
