package kafka

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/devenv-tool/devenv/internal/dockerx"
	"github.com/devenv-tool/devenv/internal/log"
)

// waitReady polls the broker by the Kafka protocol until both listeners
// answer and advertise their own address, the container exits, or
// s.ReadyTimeout passes. Errors carry the last failure and the container's
// last log lines.
func waitReady(ctx context.Context, cli *client.Client, s Spec, ep Endpoint, lg *log.Logger) error {
	wantInternal := ep.InternalAddress
	if ep.Kind == KindApache && s.IP == "" {
		// apache/kafka with a dynamic IP advertises the container name.
		wantInternal = net.JoinHostPort(ep.Name, strconv.Itoa(ep.Port))
	}
	start := time.Now()
	lg.Infof("waiting up to %s for kafka at %s (in-network %s)", s.ReadyTimeout, ep.HostAddress, ep.InternalAddress)
	wctx, cancel := context.WithTimeout(ctx, s.ReadyTimeout)
	defer cancel()
	var last error
	for {
		if last = checkReady(wctx, ep, wantInternal); last == nil {
			lg.Debugf("kafka ready after %s", time.Since(start).Round(time.Millisecond))
			return nil
		}
		if st, err := cli.ContainerInspect(wctx, ep.ContainerID, client.ContainerInspectOptions{}); err == nil {
			if c := st.Container.State; c != nil && !c.Running && c.Status != container.StateCreated && c.Status != container.StateRestarting {
				return fmt.Errorf("kafka container %s exited with code %d; its last output:\n%s", ep.Name, c.ExitCode, lastLogs(ctx, cli, ep.ContainerID))
			}
		}
		select {
		case <-wctx.Done():
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("kafka in container %s not ready after %s: %w\nits last output:\n%s", ep.Name, s.ReadyTimeout, last, lastLogs(ctx, cli, ep.ContainerID))
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// checkReady asks each listener for ApiVersions and Metadata and checks the
// advertised broker address (on the in-network listener only when
// wantInternal is set).
func checkReady(ctx context.Context, ep Endpoint, wantInternal string) error {
	if err := checkListener(ctx, ep.HostAddress, ep.HostAddress); err != nil {
		return fmt.Errorf("host listener: %w", err)
	}
	if err := checkListener(ctx, ep.InternalAddress, wantInternal); err != nil {
		return fmt.Errorf("in-network listener: %w", err)
	}
	return nil
}

// checkListener asks addr for ApiVersions and Metadata; with want set, the
// advertised broker must be want.
func checkListener(ctx context.Context, addr, want string) error {
	actx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DialTimeout(2*time.Second), kgo.RequestRetries(0), kgo.RetryTimeout(2*time.Second))
	if err != nil {
		return fmt.Errorf("kafka client for %s: %w", addr, err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	vs, err := adm.ApiVersions(actx)
	if err != nil {
		return fmt.Errorf("ApiVersions from %s: %w", addr, err)
	}
	for _, v := range vs {
		if v.Err != nil {
			return fmt.Errorf("ApiVersions from %s: %w", addr, v.Err)
		}
	}
	md, err := adm.BrokerMetadata(actx)
	if err != nil {
		return fmt.Errorf("metadata from %s: %w", addr, err)
	}
	if len(md.Brokers) == 0 {
		return fmt.Errorf("metadata from %s lists no broker", addr)
	}
	if want != "" {
		b := md.Brokers[0]
		if got := net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port))); got != want {
			return fmt.Errorf("listener %s advertises %s, want %s", addr, got, want)
		}
	}
	return nil
}

// lastLogs returns the container's last 30 log lines, or why they are missing.
func lastLogs(ctx context.Context, cli *client.Client, id string) string {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	var b strings.Builder
	if err := dockerx.CopyLogs(ctx, cli, id, 30, &b); err != nil {
		return "(logs unavailable: " + err.Error() + ")"
	}
	if b.Len() == 0 {
		return "(no output)"
	}
	return strings.TrimRight(b.String(), "\n")
}
