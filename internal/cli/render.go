package cli

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/devenv-tool/devenv/h2"
	"github.com/devenv-tool/devenv/internal/config"
	"github.com/devenv-tool/devenv/internal/devenv"
	"github.com/devenv-tool/devenv/internal/dirs"
	"github.com/devenv-tool/devenv/internal/dockerx"
	"github.com/devenv-tool/devenv/internal/log"
	"github.com/devenv-tool/devenv/internal/render"
	"github.com/devenv-tool/devenv/kafka"
)

func init() { commands = append(commands, newRenderCmd) }

type renderFlags struct {
	showSecrets bool
	externalIPs []string // component=IPv4
	images      []string // service=image
	docker      bool     // ask Docker for the addresses of running devenv containers
}

func newRenderCmd(g *globals) *cobra.Command {
	f := &renderFlags{}
	cmd := &cobra.Command{
		Use:   "render",
		Short: "Print the Kubernetes objects devenv would apply",
		Long: `Print, as one YAML stream, the objects devenv applies for devenv.yaml: the
Namespace, ConfigMaps, Secrets, the Services and endpoints of Kafka (and an H2
server), and each service's Service and Deployment, in the order they are applied.

Secret values, and the pods' devenv.dev/config-hash annotation (a keyed hash
of the ConfigMap and Secret values that restarts the pods when one changes), are
masked unless --show-secrets is given. The address of a
container outside the cluster is written by devenv up; without --external-ip it
is taken from the running devenv container when Docker answers, and otherwise is
the placeholder 192.0.2.1 (a documentation address that no network routes, which
the API server accepts in endpoints), marked with the annotation
devenv.dev/placeholder and a comment at the top of the output. A broker or H2
server devenv does not run (kafka.external, h2.external) is rendered from the
config: at an IP, the same Service and endpoints with its address and port; by
DNS name, a Service of type ExternalName.`,
		Example: `  devenv render
  devenv render --show-secrets --external-ip kafka=172.18.0.250
  devenv render --image account=devenv.local/cosmos-account:1a2b3c | kubectl diff -f -`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runRender(cmd.Context(), g, f)
		},
	}
	cmd.Flags().BoolVar(&f.showSecrets, "show-secrets", false, "print the real Secret values instead of a mask")
	cmd.Flags().StringArrayVar(&f.externalIPs, "external-ip", nil, "address of an external container, COMPONENT=IPv4 (kafka, h2; repeatable)")
	cmd.Flags().BoolVar(&f.docker, "docker", true, "ask Docker for the addresses of running devenv containers not given by --external-ip")
	cmd.Flags().StringArrayVar(&f.images, "image", nil, "image of a service, SERVICE=REF (repeatable; default devenv.local/<project>-<service>:dev)")
	return cmd
}

func runRender(ctx context.Context, g *globals, f *renderFlags) error {
	files, out, logger := g.configFiles(), g.streams.Out, g.logger()
	ips, err := parsePairs("--external-ip", f.externalIPs, func(k, v string) error {
		if k != render.ComponentKafka && k != render.ComponentH2 {
			return fmt.Errorf("unknown component %q; expected kafka or h2", k)
		}
		if a, err := netip.ParseAddr(v); err != nil || !a.Is4() {
			return fmt.Errorf("%q is not an IPv4 address", v)
		}
		return nil
	})
	if err != nil {
		return err
	}
	images, err := parsePairs("--image", f.images, func(string, string) error { return nil })
	if err != nil {
		return err
	}
	cfg, err := config.Load(files...)
	if err != nil {
		return err
	}
	for name := range images {
		if cfg.Service(name) == nil {
			return fmt.Errorf("%w: --image %s: there is no enabled service %q", ErrUsage, name, name)
		}
	}
	var need []string // external components whose address render must write
	if cfg.Kafka != nil && cfg.Kafka.External == "" {
		need = append(need, render.ComponentKafka)
	}
	if cfg.H2.Mode == config.H2Server && cfg.H2.External == "" {
		need = append(need, render.ComponentH2)
	}
	for c, ext := range map[string]bool{render.ComponentKafka: cfg.Kafka != nil && cfg.Kafka.External != "", render.ComponentH2: cfg.H2.External != ""} {
		if _, given := ips[c]; given && ext {
			return fmt.Errorf("%w: --external-ip %s: devenv runs no %s container here: its address is %s.external in the config", ErrUsage, c, c, c)
		}
	}
	var missing []string
	for _, c := range need {
		if ips[c] == "" {
			missing = append(missing, c)
		}
	}
	if f.docker && len(missing) > 0 {
		found := containerIPs(ctx, devenv.ProjectID(cfg).Key(), missing, logger)
		missing = slices.DeleteFunc(missing, func(c string) bool {
			if ip, ok := found[c]; ok {
				ips[c] = ip
				logger.Debugf("%s: using the address %s of its running container", c, ip)
				return true
			}
			return false
		})
	}
	var hashKey []byte
	if f.showSecrets {
		// The pods' config hash is shown only with the secrets: it is an
		// HMAC under the user's own key, the one up uses.
		if hashKey, err = dirs.Key(render.ConfigHashKeyName); err != nil {
			return err
		}
	}
	objs, err := render.Objects(cfg, render.Options{ExternalIPs: ips, Images: images, ShowSecrets: f.showSecrets,
		HashKey: hashKey, LookupEnv: os.LookupEnv})
	if err != nil {
		return err
	}
	text, err := render.YAML(objs)
	if err != nil {
		return err
	}
	for _, c := range missing {
		fmt.Fprintf(out, "# %s: address not known here; %s is a placeholder (a documentation address nothing answers) that devenv up replaces with the container's IP (or pass --external-ip %s=IP)\n", c, render.PlaceholderIP, c)
	}
	_, err = out.Write(text)
	return err
}

// parsePairs parses repeated KEY=VALUE flags, checking each with check.
func parsePairs(flag string, values []string, check func(k, v string) error) (map[string]string, error) {
	out := map[string]string{}
	for _, kv := range values {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" || v == "" {
			return nil, fmt.Errorf("%w: %s %q: expected KEY=VALUE", ErrUsage, flag, kv)
		}
		if err := check(k, v); err != nil {
			return nil, fmt.Errorf("%w: %s %s: %v", ErrUsage, flag, kv, err)
		}
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("%w: %s %s given twice", ErrUsage, flag, k)
		}
		out[k] = v
	}
	return out, nil
}

// containerIPs asks Docker, briefly, for the addresses of the project's
// running containers of the given components, through kafka.Find and
// h2.Find. Any failure just leaves an address unknown: render works
// without Docker.
func containerIPs(ctx context.Context, name string, components []string, logger *log.Logger) map[string]string {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	found := map[string]string{}
	cli, err := dockerx.Connect(ctx)
	if err != nil {
		logger.Debugf("not asking Docker for container addresses: %v", err)
		return found
	}
	defer cli.Close()
	for _, comp := range components {
		var ip string
		var err error
		switch comp {
		case render.ComponentKafka:
			var ep kafka.Endpoint
			ep, _, err = kafka.Find(ctx, cli, name)
			ip = ep.IP // "" unless the broker runs
		case render.ComponentH2:
			var ep h2.Endpoint
			ep, _, err = h2.Find(ctx, cli, name)
			if ep.Running {
				ip = ep.IP
			}
		}
		switch {
		case err != nil:
			logger.Debugf("finding the %s container: %v", comp, err)
		case ip != "":
			found[comp] = ip
		}
	}
	return found
}
