package cli

import (
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/devenv-tool/devenv/internal/config"
	"github.com/devenv-tool/devenv/internal/render"
)

func init() { commands = append(commands, newRenderCmd) }

type renderFlags struct {
	showSecrets bool
	externalIPs []string // component=IPv4
	images      []string // service=image
}

func newRenderCmd(g *globals) *cobra.Command {
	f := &renderFlags{}
	cmd := &cobra.Command{
		Use:   "render",
		Short: "Print the Kubernetes objects devenv would apply",
		Long: `Print, as one YAML stream, the objects devenv applies for devenv.yaml: the
Namespace, ConfigMaps, Secrets, the Services and endpoints of Kafka (and an H2
server), and each service's Service and Deployment, in the order they are applied.

Secret values are masked unless --show-secrets is given. The address of a
container outside the cluster is written by devenv up; without --external-ip it
is the placeholder 0.0.0.0, marked with the annotation devenv.dev/placeholder.`,
		Example: `  devenv render
  devenv render --show-secrets --external-ip kafka=172.18.0.250
  devenv render --image account=devenv.local/cosmos-account:1a2b3c | kubectl diff -f -`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runRender(g.configFiles(), f, g.streams.Out)
		},
	}
	cmd.Flags().BoolVar(&f.showSecrets, "show-secrets", false, "print the real Secret values instead of a mask")
	cmd.Flags().StringArrayVar(&f.externalIPs, "external-ip", nil, "address of an external container, COMPONENT=IPv4 (kafka, h2; repeatable)")
	cmd.Flags().StringArrayVar(&f.images, "image", nil, "image of a service, SERVICE=REF (repeatable; default devenv.local/<project>-<service>:dev)")
	return cmd
}

func runRender(files []string, f *renderFlags, out io.Writer) error {
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
	objs, err := render.Objects(cfg, render.Options{ExternalIPs: ips, Images: images, ShowSecrets: f.showSecrets,
		LookupEnv: os.LookupEnv, ReadFile: os.ReadFile})
	if err != nil {
		return err
	}
	text, err := render.YAML(objs)
	if err != nil {
		return err
	}
	var missing []string
	if cfg.Kafka != nil && ips[render.ComponentKafka] == "" {
		missing = append(missing, render.ComponentKafka)
	}
	if cfg.H2.Mode == config.H2Server && ips[render.ComponentH2] == "" {
		missing = append(missing, render.ComponentH2)
	}
	for _, c := range missing {
		fmt.Fprintf(out, "# %s: address not known here; %s is a placeholder that devenv up replaces with the container's IP (or pass --external-ip %s=IP)\n", c, render.PlaceholderIP, c)
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
