package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/devenv-tool/devenv/internal/config"
	"github.com/devenv-tool/devenv/internal/devenv"
)

func init() { commands = append(commands, newStatusCmd) }

var statusFormats = []string{"text", "json"}

type statusFlags struct {
	envFlags
	output string
}

func newStatusCmd(g *globals) *cobra.Command {
	f := &statusFlags{}
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show each part of the environment and whether it is ready",
		Long: `Show one line per part: the cluster, each container outside it (with its IP on
the kind network, its host address, and where the Service's endpoints point),
and each service (image and ready pods).

Exit code 0 when everything is ready, 1 when something is not, 2 for a bad
config. With -o json (--output json) the report is one JSON object with these
stable fields: project, namespace,
ready, cluster{name,context,ready,message}, external[]{component,container,image,
running,ip,port,hostAddress,service,endpoints,current,topics,ready,message},
services[]{name,image,desired,readyPods,ready,message},
forwards[]{service,port,hostPort,hostAddress,forwarding,message} (the ports:
devenv up forwards to 127.0.0.1 while it watches; they do not count for ready).`,
		Example: `  devenv status
  devenv status -o json | jq -r '.external[] | select(.component=="kafka") | .hostAddress'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(cmd, f.output, statusFormats...); err != nil {
				return err
			}
			return runStatus(cmd.Context(), g, f)
		},
	}
	f.add(cmd)
	addOutputFlag(cmd, &f.output, statusFormats...)
	return cmd
}

func runStatus(ctx context.Context, g *globals, f *statusFlags) error {
	cfg, err := config.Load(g.configFiles()...)
	if err != nil {
		return err
	}
	r, err := devenv.Status(ctx, cfg, devenv.Options{Kubeconfig: f.kubeconfig, Log: g.logger()})
	if err != nil {
		return err
	}
	if f.output == "json" {
		enc := json.NewEncoder(g.streams.Out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(r); err != nil {
			return err
		}
	} else {
		printStatus(g.streams.Out, r)
	}
	if !r.Ready {
		return exitError{code: ExitFailure}
	}
	return nil
}

func mark(ok bool) string {
	if ok {
		return "✓"
	}
	return "✗"
}

func printStatus(w io.Writer, r *devenv.Report) {
	c := r.Cluster
	fmt.Fprintf(w, "%s cluster   %-14s context %s%s\n", mark(c.Ready), c.Name, c.Context, note(c.Message))
	for _, e := range r.External {
		fmt.Fprintf(w, "%s %-9s %-14s ip %s port %d host %s -> %s endpoints [%s]",
			mark(e.Ready), e.Component, e.Container, orDash(e.IP), e.Port, orDash(e.HostAddress), e.Service, strings.Join(e.Endpoints, " "))
		if len(e.Topics) > 0 {
			fmt.Fprintf(w, " topics %s", strings.Join(e.Topics, ","))
		}
		fmt.Fprintf(w, "%s\n", note(e.Message))
	}
	for _, s := range r.Services {
		fmt.Fprintf(w, "%s service   %-14s %d/%d ready  %s%s\n", mark(s.OK), s.Name, s.Ready, s.Desired, orDash(s.Image), note(s.Message))
	}
	for _, f := range r.Forwards {
		m := "-"
		if f.Forwarding {
			m = "✓"
		}
		fmt.Fprintf(w, "%s forward   %-14s %s -> %s:%d%s\n", m, f.Service, orDash(f.HostAddress), f.Service, f.Port, note(f.Message))
	}
}

func note(msg string) string {
	if msg == "" {
		return ""
	}
	return "  (" + msg + ")"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
