package devenv

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/devenv-tool/devenv/cluster"
	"github.com/devenv-tool/devenv/internal/config"
	"github.com/devenv-tool/devenv/templates"
)

// colours for service prefixes on a terminal.
var colours = []string{"\x1b[36m", "\x1b[33m", "\x1b[35m", "\x1b[32m", "\x1b[34m", "\x1b[31m"}

// prefixWriter writes whole lines with a service's prefix; it is shared by
// the goroutines of every pod so lines never interleave.
type prefixWriter struct {
	mu    *sync.Mutex
	w     io.Writer
	color bool
	each  func(service, text string) // LogOptions.Line
}

func (p prefixWriter) line(i int, service, text string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.each != nil {
		p.each(service, text)
	}
	if p.color {
		fmt.Fprintf(p.w, "%s[%s]\x1b[0m %s\n", colours[i%len(colours)], service, text)
		return
	}
	fmt.Fprintf(p.w, "[%s] %s\n", service, text)
}

// LogOptions tune Logs.
type LogOptions struct {
	Follow bool      // keep streaming, following new pods and restarted containers, until ctx ends
	Color  bool      // colour the prefixes (on a terminal)
	Out    io.Writer // where the lines go; nil for nowhere
	// Line, when set, gets every line too, without its prefix.
	Line func(service, text string)
}

// Logs prints the logs of the services' pods (all services when names is
// empty), each line prefixed with its service's name.
func Logs(ctx context.Context, cfg *config.Config, opts Options, names []string, lo LogOptions) error {
	for _, n := range names {
		if cfg.Service(n) == nil {
			return fmt.Errorf("no service %q in %s: %w", n, cfg.Files[0], config.ErrInvalid)
		}
	}
	if len(names) == 0 {
		for _, s := range cfg.Services {
			names = append(names, s.Name)
		}
	}
	c, err := connectCluster(ctx, cfg, opts)
	if err != nil {
		return fmt.Errorf("%w: run devenv up first", err)
	}
	streamLogs(ctx, c, cfg, names, lo)
	return nil
}

// streamLogs prints the pods' logs; with Follow it returns only when ctx ends.
func streamLogs(ctx context.Context, c *cluster.Cluster, cfg *config.Config, names []string, lo LogOptions) {
	out := lo.Out
	if out == nil {
		out = io.Discard
	}
	pw := prefixWriter{mu: &sync.Mutex{}, w: out, color: lo.Color, each: lo.Line}
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			followService(ctx, c, cfg.Namespace, i, name, lo.Follow, pw)
		}()
	}
	wg.Wait()
}

// followService streams the logs of each container of the service's pods;
// with follow, it looks for new containers every second, so a rollout's new
// pods and a container restarted in its pod (an image swap, a crash) are
// picked up.
func followService(ctx context.Context, c *cluster.Cluster, ns string, i int, name string, follow bool, pw prefixWriter) {
	seen := map[string]bool{} // container IDs
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		list, err := c.PodContainers(ctx, ns, templates.LabelApp+"="+name)
		if err == nil {
			for _, pc := range list {
				if pc.ID == "" || seen[pc.ID] || !pc.Started {
					continue
				}
				seen[pc.ID] = true
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := c.StreamLogs(ctx, ns, pc.Pod, pc.Container, follow, func(line string) { pw.line(i, name, line) }); err != nil && ctx.Err() == nil {
						pw.line(i, name, "(logs of pod "+pc.Pod+": "+err.Error()+")")
					}
				}()
			}
		}
		if !follow {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}
