package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/devenv-tool/devenv/internal/config"
	"github.com/devenv-tool/devenv/internal/devenv"
	"github.com/devenv-tool/devenv/internal/testrun"
)

func init() { commands = append(commands, newStatusCmd) }

var statusFormats = []string{"text", "json", "env"}

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
devenv up forwards to 127.0.0.1 while it watches; they do not count for ready).

With -o env, the variables devenv test gives its tests, as shell-quoted
export lines for eval "$(devenv status -o env)": DEVENV_KAFKA_BOOTSTRAP,
DEVENV_H2_JDBC_URL (h2 server mode), DEVENV_NAMESPACE, DEVENV_KUBE_CONTEXT,
KUBECONFIG (with --kubeconfig), and DEVENV_SERVICE_<NAME>_URL for each
service whose main port a devenv up that watches forwards now (ports: in
devenv.yaml; status forwards nothing itself). stderr says which services
have no URL and why.`,
		Example: `  devenv status
  eval "$(devenv status -o env)"; curl "$DEVENV_SERVICE_ACCOUNT_URL/health"
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
	switch f.output {
	case "json":
		enc := json.NewEncoder(g.streams.Out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(r); err != nil {
			return err
		}
	case "env":
		kc := f.kubeconfig
		if kc != "" {
			if abs, err := filepath.Abs(kc); err == nil {
				kc = abs // the exported KUBECONFIG works from any folder
			}
		}
		printStatusEnv(g.streams.Out, g.streams.Err, cfg, r, kc)
	default:
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

// statusVars are the variables devenv test gives its tests, as far as the
// report knows them: a service's URL only when a devenv up that watches
// forwards its main port now. noURL says, per service without one, why.
func statusVars(cfg *config.Config, r *devenv.Report, kubeconfig string) (vars testrun.Vars, noURL []string) {
	vars = testrun.Vars{Namespace: r.Namespace, Kubeconfig: kubeconfig, ServiceURLs: map[string]string{}}
	if r.Cluster.Ready {
		vars.KubeContext = r.Cluster.Context
	}
	for _, e := range r.External {
		if !e.Running || e.HostAddress == "" {
			continue
		}
		switch e.Component {
		case "kafka":
			vars.KafkaBootstrap = e.HostAddress
		case "h2":
			vars.H2JDBCURL = "jdbc:h2:tcp://" + e.HostAddress
		}
	}
	for _, s := range cfg.Services {
		var main *devenv.ForwardStatus
		declared := false
		for i, fw := range r.Forwards {
			if fw.Service != s.Name {
				continue
			}
			declared = true
			if fw.Port == s.Port {
				main = &r.Forwards[i]
			}
		}
		switch {
		case !declared:
			noURL = append(noURL, fmt.Sprintf("%s: no ports: declared in devenv.yaml (devenv test forwards every service itself)", s.Name))
		case main == nil:
			noURL = append(noURL, fmt.Sprintf("%s: its port %d is not among its ports:", s.Name, s.Port))
		case !main.Forwarding || main.HostAddress == "":
			why := main.Message
			if why == "" {
				why = "not forwarding"
			}
			noURL = append(noURL, fmt.Sprintf("%s: %s", s.Name, why))
		default:
			vars.ServiceURLs[s.Name] = "http://" + main.HostAddress
		}
	}
	return vars, noURL
}

// printStatusEnv writes the variables as export lines to w, and to errw a
// line per service without a URL.
func printStatusEnv(w, errw io.Writer, cfg *config.Config, r *devenv.Report, kubeconfig string) {
	vars, noURL := statusVars(cfg, r, kubeconfig)
	for _, kv := range vars.Environ() {
		name, value, _ := strings.Cut(kv, "=")
		fmt.Fprintf(w, "export %s=%s\n", name, shellQuote(value))
	}
	for _, n := range noURL {
		fmt.Fprintf(errw, "no URL for service %s\n", n)
	}
}

// shellQuote quotes s for a POSIX shell: as it is when it holds only
// characters no shell treats specially, else in single quotes.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.,:/@%+=") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
