package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/devenv-tool/devenv/internal/config"
	"github.com/devenv-tool/devenv/internal/devenv"
	"github.com/devenv-tool/devenv/internal/termx"
	"github.com/devenv-tool/devenv/internal/ui"
	"github.com/devenv-tool/devenv/kafka"
)

func init() { commands = append(commands, newUpCmd, newDownCmd) }

// envFlags are the flags of verbs that reach the cluster.
type envFlags struct {
	kubeconfig string
}

func (f *envFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig file to write the kind-<name> context into (default: $KUBECONFIG or ~/.kube/config, as kind does)")
}

type upFlags struct {
	envFlags
	noWatch bool
	noLive  bool
	retain  bool
	timeout time.Duration
	ui      bool
	uiPort  int
}

func newUpCmd(g *globals) *cobra.Command {
	f := &upFlags{}
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Create or update the environment and wait until it is ready",
		Long: `Create (or reuse) the kind cluster, start Kafka (and an H2 server) beside it on
the kind Docker network, wire them in with selector-less Services and
EndpointSlices, build every service's image, load it into the cluster, apply
the Namespace, ConfigMaps, Secrets, Deployments and Services, and wait until
every service is ready. The cluster boots while the rest starts.

Running it again is cheap: what is current is left alone, what changed is
updated, and objects removed from devenv.yaml are pruned. Only one up runs per
project at a time.

On a machine that cannot pull images, devenv uses its stand-ins (see
devenv images build) and says so.

While watching, a save rebuilds what changed. When a service's Dockerfile is
simple (one FROM, then only COPY, ENV, LABEL, WORKDIR, USER, EXPOSE,
ENTRYPOINT, CMD), devenv assembles its image itself with a small supervisor
as the first process, and a save that changes only files writes them into the
running containers and restarts the program there: no new pod, no new
container (live update; it needs the go command to compile the supervisor
once). Other changes swap the image into the running pods, or roll out.

While it watches, up serves a read-only page on 127.0.0.1 (the URL is
printed at the start; --ui-port, or the next free port when it is taken):
the cluster, Kafka and H2 with their addresses, each service's state and
last update, the saves' steps, the pods' logs, Kafka's topics with a live
tail of the records of one, and the declared tests' results, updated live.
It shows secrets by name only. --ui=false turns it off.`,
		Example: `  devenv up --no-watch            # make everything ready, then exit 0
  devenv up -f devenv.yaml -f ci.yaml --kubeconfig /tmp/kc
  devenv up -v                    # with debug output and build logs
  devenv up --no-live             # replace containers on every save
  devenv up --ui-port 8090        # the browser view on http://127.0.0.1:8090/`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runUp(cmd.Context(), g, f)
		},
	}
	f.add(cmd)
	cmd.Flags().BoolVar(&f.noWatch, "no-watch", false, "exit once everything is ready instead of watching the sources")
	cmd.Flags().BoolVar(&f.noLive, "no-live", false, "build images without the live-update supervisor: every save replaces the containers")
	cmd.Flags().BoolVar(&f.retain, "retain", false, "keep a cluster whose creation failed, for debugging")
	cmd.Flags().DurationVar(&f.timeout, "rollout-timeout", devenv.DefaultRolloutTimeout, "how long to wait for each service to become ready")
	cmd.Flags().BoolVar(&f.ui, "ui", true, "serve the read-only browser view on 127.0.0.1 while watching")
	cmd.Flags().IntVar(&f.uiPort, "ui-port", ui.DefaultPort, "port of the browser view on 127.0.0.1 (taken: the next free one)")
	return cmd
}

func runUp(ctx context.Context, g *globals, f *upFlags) error {
	if f.uiPort < 1 || f.uiPort > 65535 {
		return fmt.Errorf("%w: --ui-port %d: want a port from 1 to 65535", ErrUsage, f.uiPort)
	}
	cfg, err := config.Load(g.configFiles()...)
	if err != nil {
		return err
	}
	lg := g.logger()
	// The two process-wide settings the library leaves to the program: the
	// testcontainers-go configuration for the Kafka container, and the docker
	// shim in PATH on engines that refuse --privileged.
	if cfg.Kafka != nil {
		if err := kafka.ConfigureTestcontainers(); err != nil {
			return err
		}
	}
	opts := devenv.Options{Kubeconfig: f.kubeconfig, Retain: f.retain, RolloutTimeout: f.timeout, Log: lg, PrivilegedShim: true}
	if g.verbose {
		opts.BuildOutput = g.streams.Err
	}
	// With or without watching, so that `up --no-watch` and `up` build
	// the same images and switching between them rolls nothing out.
	opts.Live = !f.noLive
	if !f.noWatch {
		opts.PodLogs, opts.Color = g.streams.Out, termx.Color(g.streams.Out)
	}
	var view *ui.Server
	if f.ui && !f.noWatch {
		hub := ui.NewHub()
		view, err = ui.Listen(hub, ui.Options{Port: f.uiPort, Log: lg})
		if err != nil {
			// The environment does not need the page: up goes on without it.
			lg.Warnf("%v; going on without the browser view", err)
		}
	}
	if view != nil {
		opts.Observer = view.Hub()
		uiCtx, stopUI := context.WithCancel(ctx)
		served := make(chan error, 1)
		go func() { served <- view.Serve(uiCtx) }()
		defer func() {
			stopUI()
			if err := <-served; err != nil {
				lg.Warnf("%v", err)
			}
		}()
		note := ""
		if view.Port() != f.uiPort {
			note = fmt.Sprintf(" (port %d is taken)", f.uiPort)
		}
		lg.Infof("browser view: %s%s", view.URL(), note)
	}
	start := time.Now()
	env, err := devenv.Up(ctx, cfg, opts)
	if err != nil {
		return err
	}
	defer env.Close()
	if view != nil {
		view.SetKafka(env.KafkaView())
	}
	lg.Infof("✓ %s is ready in %s (kubectl --context %s -n %s get pods)", cfg.Name, time.Since(start).Round(100*time.Millisecond), env.Cluster.Context, cfg.Namespace)
	if f.noWatch {
		return nil
	}
	if view != nil {
		lg.Infof("browser view: %s", view.URL())
	}
	return env.Watch(ctx, g.configFiles())
}

type downFlags struct {
	envFlags
	keepCluster bool
}

func newDownCmd(g *globals) *cobra.Command {
	f := &downFlags{}
	cmd := &cobra.Command{
		Use:   "down",
		Short: "Delete the environment: cluster, containers, volumes",
		Long: `Delete the project's kind cluster and every container, volume and network devenv
created for this project. They are found by their labels, so down also cleans up
what a crashed run left behind. Nothing devenv did not create is touched; the
kind network is removed only if devenv created it and nothing else uses it.`,
		Example: `  devenv down
  devenv down --keep-cluster      # keep the cluster, remove the project's objects and containers`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(g.configFiles()...)
			if err != nil {
				return err
			}
			return devenv.Down(cmd.Context(), cfg, devenv.DownOptions{
				Options: devenv.Options{Kubeconfig: f.kubeconfig, Log: g.logger()}, KeepCluster: f.keepCluster,
			})
		},
	}
	f.add(cmd)
	cmd.Flags().BoolVar(&f.keepCluster, "keep-cluster", false, "keep the cluster; remove only the project's objects in it")
	return cmd
}
