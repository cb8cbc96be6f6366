package devenv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/moby/moby/client"

	"github.com/devenv-tool/devenv/cluster"
	"github.com/devenv-tool/devenv/h2"
	"github.com/devenv-tool/devenv/internal/config"
	"github.com/devenv-tool/devenv/internal/dockerx"
	"github.com/devenv-tool/devenv/internal/log"
	"github.com/devenv-tool/devenv/kafka"
	"github.com/devenv-tool/devenv/templates"
)

// ContainerLogTail is how many of its last lines CollectArtifacts keeps of
// the Kafka and H2 containers' output.
const ContainerLogTail = 2000

// artifactPartTimeout bounds each part of CollectArtifacts, so that a
// cluster or engine that stopped answering cannot hold a failed CI run.
const artifactPartTimeout = time.Minute

// CollectArtifacts writes into dir (created, 0755, if missing) what a person
// needs to see why a run failed, as files:
//
//	status.json                             what `devenv status -o json` prints
//	events.txt                              the namespace's events, oldest first, one per line
//	pods.json                               the status of each service's pods, by service
//	pods/<service>/<pod>.<container>.log    each container's log
//	pods/<service>/<pod>.<container>.previous.log
//	                                        the log before its last restart (restarted containers only)
//	kafka.log, h2.log                       the last ContainerLogTail lines of the Kafka and
//	                                        H2 server containers (when the project has them)
//	topics.json                             every topic's partitions with their end offsets
//
// Each part is best effort: a part that fails leaves <part>.error.txt (for
// example events.error.txt, pods/<service>/<pod>.<container>.error.txt)
// holding the reason, beside what it wrote before failing, and collection goes
// on. written lists every file written, error files included, as paths
// joined to dir; err joins the failures of the parts. Nothing is written
// outside dir, and no Secret is read.
func CollectArtifacts(ctx context.Context, cfg *config.Config, opts Options, dir string) (written []string, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating the artifacts folder: %w", err)
	}
	src := connectEvidence(ctx, cfg, opts)
	defer src.close()
	return collectArtifacts(ctx, cfg, src, dir, opts.logger())
}

// evidence is what CollectArtifacts asks the peers for; liveEvidence asks
// the cluster and Docker, and the unit tests give a fake.
type evidence interface {
	Status(ctx context.Context) (*Report, error)
	Events(ctx context.Context, namespace string) ([]cluster.Event, error)
	PodStatuses(ctx context.Context, namespace, selector string) ([]cluster.PodStatus, error)
	CopyLogs(ctx context.Context, namespace, pod, container string, previous bool, w io.Writer) error
	KafkaLogs(ctx context.Context, tail int, w io.Writer) error
	H2Logs(ctx context.Context, tail int, w io.Writer) error
	EndOffsets(ctx context.Context) (map[string][]kafka.PartitionOffset, error)
}

// collectArtifacts writes each part from src into dir.
func collectArtifacts(ctx context.Context, cfg *config.Config, src evidence, dir string, lg *log.Logger) ([]string, error) {
	a := &artifactDir{dir: dir, lg: lg}
	ns := cfg.Namespace

	a.write(ctx, "status.json", func(ctx context.Context, w io.Writer) error {
		r, err := src.Status(ctx)
		if err != nil {
			return err
		}
		return writeJSON(w, r)
	})
	a.write(ctx, "events.txt", func(ctx context.Context, w io.Writer) error {
		evs, err := src.Events(ctx, ns)
		if err != nil {
			return err
		}
		return writeEvents(w, evs)
	})

	// pods.json first, then each listed pod's logs.
	pods := map[string][]cluster.PodStatus{}
	a.write(ctx, "pods.json", func(ctx context.Context, w io.Writer) error {
		var errs []error
		for _, s := range cfg.Services {
			list, err := src.PodStatuses(ctx, ns, templates.LabelApp+"="+s.Name)
			if err != nil {
				errs = append(errs, fmt.Errorf("service %s: %w", s.Name, err))
				continue
			}
			pods[s.Name] = list
		}
		if len(pods) > 0 || len(errs) == 0 {
			if err := writeJSON(w, pods); err != nil {
				return err
			}
		}
		return errors.Join(errs...)
	})
	for _, s := range cfg.Services {
		list, ok := pods[s.Name]
		if !ok {
			continue
		}
		if err := a.mkdir("pods/" + s.Name); err != nil {
			continue
		}
		for _, p := range list {
			for _, c := range slices.Concat(p.InitContainers, p.Containers) {
				base := "pods/" + s.Name + "/" + p.Name + "." + c.Name
				if c.HasRun() {
					a.write(ctx, base+".log", func(ctx context.Context, w io.Writer) error {
						return src.CopyLogs(ctx, ns, p.Name, c.Name, false, w)
					})
				}
				if c.RestartCount > 0 {
					a.write(ctx, base+".previous.log", func(ctx context.Context, w io.Writer) error {
						return src.CopyLogs(ctx, ns, p.Name, c.Name, true, w)
					})
				}
			}
		}
	}

	if cfg.Kafka != nil {
		a.write(ctx, "kafka.log", func(ctx context.Context, w io.Writer) error {
			return src.KafkaLogs(ctx, ContainerLogTail, w)
		})
		a.write(ctx, "topics.json", func(ctx context.Context, w io.Writer) error {
			offs, err := src.EndOffsets(ctx)
			if err != nil {
				return err
			}
			return writeJSON(w, offs)
		})
	}
	if cfg.H2.Mode == config.H2Server {
		a.write(ctx, "h2.log", func(ctx context.Context, w io.Writer) error {
			return src.H2Logs(ctx, ContainerLogTail, w)
		})
	}
	return a.written, errors.Join(a.errs...)
}

// artifactDir writes the parts' files and keeps the list of what it wrote
// and of the parts that failed.
type artifactDir struct {
	dir     string
	lg      *log.Logger
	written []string
	errs    []error
}

// write creates the file rel (a slash-separated path inside the folder) and
// fills it. When fill fails, a partly written file is kept, an empty one
// removed, and <part>.error.txt gets the reason; when it succeeds, a
// <part>.error.txt left by an earlier collection is removed.
func (a *artifactDir) write(ctx context.Context, rel string, fill func(ctx context.Context, w io.Writer) error) {
	err := a.fillFile(ctx, rel, fill)
	errFile := strings.TrimSuffix(rel, path.Ext(rel)) + ".error.txt"
	if err == nil {
		// An error file of an earlier collection into the folder is stale.
		if p, perr := a.path(errFile); perr == nil {
			if rerr := os.Remove(p); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
				a.errs = append(a.errs, rerr)
			}
		}
		return
	}
	err = fmt.Errorf("collecting %s: %w", rel, err)
	a.errs = append(a.errs, err)
	a.lg.Debugf("artifacts: %v", err)
	if ctx.Err() != nil {
		return // no error files for the parts an interrupt stopped
	}
	reason := err.Error() + "\n"
	if werr := a.fillFile(ctx, errFile, func(_ context.Context, w io.Writer) error {
		_, werr := io.WriteString(w, reason)
		return werr
	}); werr != nil {
		a.errs = append(a.errs, werr)
	}
}

func (a *artifactDir) fillFile(ctx context.Context, rel string, fill func(ctx context.Context, w io.Writer) error) error {
	file, err := a.path(rel)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	pctx, cancel := context.WithTimeout(ctx, artifactPartTimeout)
	defer cancel()
	ferr := fill(pctx, f)
	info, serr := f.Stat()
	cerr := f.Close()
	if ferr == nil {
		ferr = cerr
	}
	if ferr != nil && serr == nil && info.Size() == 0 {
		_ = os.Remove(file)
		return ferr
	}
	a.written = append(a.written, file)
	return ferr
}

// mkdir creates the folder rel inside the artifacts folder; a failure is the
// part's error.
func (a *artifactDir) mkdir(rel string) error {
	path, err := a.path(rel)
	if err == nil {
		err = os.MkdirAll(path, 0o755)
	}
	if err != nil {
		a.errs = append(a.errs, fmt.Errorf("collecting %s: %w", rel, err))
	}
	return err
}

// path joins rel, slash-separated, to the folder, refusing any part of it
// that is not a plain name, so that nothing lands outside the folder (the
// names come from the cluster: service, pod and container names, which are
// DNS labels and subdomains, never paths).
func (a *artifactDir) path(rel string) (string, error) {
	for _, part := range strings.Split(rel, "/") {
		if part == "" || part == "." || part == ".." || strings.ContainsAny(part, `\:`+"\x00") {
			return "", fmt.Errorf("refusing the artifact file name %q", rel)
		}
	}
	local := filepath.FromSlash(rel)
	if !filepath.IsLocal(local) {
		return "", fmt.Errorf("refusing the artifact file name %q", rel)
	}
	return filepath.Join(a.dir, local), nil
}

// writeJSON writes v as `devenv status -o json` does: indented by two
// spaces, with a final newline.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// writeEvents writes one line per event under a header: when it last
// happened (UTC), its type, reason, object and message, the message with
// "(xN)" when it happened N > 1 times.
func writeEvents(w io.Writer, evs []cluster.Event) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "LAST SEEN\tTYPE\tREASON\tOBJECT\tMESSAGE")
	for _, e := range evs {
		when := "-"
		if !e.Time.IsZero() {
			when = e.Time.UTC().Format(time.RFC3339)
		}
		msg := strings.Join(strings.Fields(e.Message), " ")
		if e.Count > 1 {
			msg += fmt.Sprintf(" (x%d)", e.Count)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", when, e.Type, e.Reason, e.Object, msg)
	}
	return tw.Flush()
}

// liveEvidence asks the project's cluster and Docker engine; a connection
// that failed makes every question that needs it fail with its error.
type liveEvidence struct {
	cfg     *config.Config
	opts    Options
	c       *cluster.Cluster
	cErr    error
	docker  *client.Client
	dockErr error
}

func connectEvidence(ctx context.Context, cfg *config.Config, opts Options) *liveEvidence {
	e := &liveEvidence{cfg: cfg, opts: opts}
	e.docker, e.dockErr = dockerx.Connect(ctx)
	e.c, e.cErr = connectCluster(ctx, cfg, opts)
	if e.cErr != nil {
		e.cErr = fmt.Errorf("connecting to cluster %s: %w", clusterName(cfg), e.cErr)
	}
	return e
}

func (e *liveEvidence) close() {
	if e.docker != nil {
		_ = e.docker.Close()
	}
}

func (e *liveEvidence) Status(ctx context.Context) (*Report, error) {
	return Status(ctx, e.cfg, e.opts)
}

func (e *liveEvidence) Events(ctx context.Context, namespace string) ([]cluster.Event, error) {
	if e.cErr != nil {
		return nil, e.cErr
	}
	return e.c.Events(ctx, namespace)
}

func (e *liveEvidence) PodStatuses(ctx context.Context, namespace, selector string) ([]cluster.PodStatus, error) {
	if e.cErr != nil {
		return nil, e.cErr
	}
	return e.c.PodStatuses(ctx, namespace, selector)
}

func (e *liveEvidence) CopyLogs(ctx context.Context, namespace, pod, container string, previous bool, w io.Writer) error {
	if e.cErr != nil {
		return e.cErr
	}
	return e.c.CopyLogs(ctx, namespace, pod, container, previous, w)
}

func (e *liveEvidence) KafkaLogs(ctx context.Context, tail int, w io.Writer) error {
	if e.dockErr != nil {
		return e.dockErr
	}
	return kafka.Logs(ctx, e.docker, e.cfg.Name, tail, w)
}

func (e *liveEvidence) H2Logs(ctx context.Context, tail int, w io.Writer) error {
	if e.dockErr != nil {
		return e.dockErr
	}
	return h2.Logs(ctx, e.docker, e.cfg.Name, tail, w)
}

func (e *liveEvidence) EndOffsets(ctx context.Context) (map[string][]kafka.PartitionOffset, error) {
	if e.dockErr != nil {
		return nil, e.dockErr
	}
	ep, found, err := kafka.Find(ctx, e.docker, projectKey(e.cfg))
	switch {
	case err != nil:
		return nil, err
	case !found:
		return nil, fmt.Errorf("project %s has no kafka container", e.cfg.Name)
	case ep.HostAddress == "" || ep.IP == "":
		return nil, fmt.Errorf("kafka container %s is not running", ep.Name)
	}
	return kafka.EndOffsets(ctx, ep.HostAddress)
}
