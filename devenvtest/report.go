package devenvtest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/devenv-tool/devenv/internal/config"
	"github.com/devenv-tool/devenv/internal/devenv"
)

// reportTimeout bounds the collection of a failed Start's artifacts.
const reportTimeout = 2 * time.Minute

// tailLines is how many last lines of each relevant log a failed Start
// prints.
const tailLines = 20

// failureReport collects the environment's artifacts (devenv.CollectArtifacts)
// into a new folder that outlives the test, and returns, to append to
// Start's failure: the folder, a line per part of the environment, and the
// last lines of the logs of the parts that are not ready.
func failureReport(cfg *config.Config, opts devenv.Options) string {
	dir, err := os.MkdirTemp("", "devenvtest-"+cfg.Name+"-")
	if err != nil {
		return fmt.Sprintf("\n(no artifacts: %v)", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), reportTimeout)
	defer cancel()
	opts.Log = nil // the failure says enough; collection is best effort
	written, _ := devenv.CollectArtifacts(ctx, cfg, opts, dir)
	return summarize(dir, written)
}

// summarize formats what CollectArtifacts wrote into dir.
func summarize(dir string, written []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\nartifacts (status, events, pods, logs): %s", dir)
	raw, err := os.ReadFile(filepath.Join(dir, "status.json"))
	if err != nil {
		return b.String()
	}
	var r devenv.Report
	if err := json.Unmarshal(raw, &r); err != nil {
		return b.String()
	}
	mark := func(ok bool) string {
		if ok {
			return "✓"
		}
		return "✗"
	}
	var tails []string // files whose last lines to show
	fmt.Fprintf(&b, "\n%s cluster  %s %s", mark(r.Cluster.Ready), r.Cluster.Name, r.Cluster.Message)
	for _, x := range r.External {
		fmt.Fprintf(&b, "\n%s %-8s %s %s", mark(x.Ready), x.Component, x.Container, x.Message)
		if !x.Ready {
			tails = append(tails, filepath.Join(dir, x.Component+".log"))
		}
	}
	for _, s := range r.Services {
		fmt.Fprintf(&b, "\n%s service  %s %d/%d ready %s", mark(s.OK), s.Name, s.Ready, s.Desired, s.Message)
		if s.OK {
			continue
		}
		prefix := filepath.Join(dir, "pods", s.Name) + string(filepath.Separator)
		for _, w := range written {
			if strings.HasPrefix(w, prefix) && strings.HasSuffix(w, ".log") {
				tails = append(tails, w)
			}
		}
	}
	sort.Strings(tails)
	for _, f := range tails {
		data, err := os.ReadFile(f)
		if err != nil || len(data) == 0 {
			continue
		}
		rel, _ := filepath.Rel(dir, f)
		fmt.Fprintf(&b, "\n--- last lines of %s:\n%s", rel, lastLines(string(data), tailLines))
	}
	return strings.TrimRight(b.String(), "\n ")
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
