package cluster

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/moby/moby/client"

	"github.com/devenv-tool/devenv/internal/dirs"
	"github.com/devenv-tool/devenv/internal/log"
)

// The creation record: kind's create is many steps (node container, kubeadm
// init, CNI, storage class, removing the control-plane taint, kubeconfig),
// and a devenv killed in the middle leaves a node container whose API server
// may even answer while pods can never be scheduled. Only kind's create
// returning proves a cluster complete, so Ensure writes "creating" before it
// and "complete" after it, in devenv's private state folder, and treats a
// cluster whose record still says "creating" as half-created. A cluster with
// no record is one devenv did not create (the user's own kind cluster): it is
// reused as before.

// The states a record can hold.
const (
	recCreating = "creating" // kind's create was called and has not returned
	recComplete = "complete" // kind's create returned without error
	recFailed   = "failed"   // kind's create failed; the nodes were kept (Retain)
)

// record is what devenv remembers about one cluster it created on one engine.
type record struct {
	Cluster    string    `json:"cluster"`
	Engine     string    `json:"engine"` // the Docker engine's ID
	State      string    `json:"state"`
	Node       string    `json:"node,omitempty"` // the control-plane node container's ID, once it exists
	Kubeconfig string    `json:"kubeconfig,omitempty"`
	PID        int       `json:"pid"`                // the process that called kind's create
	PIDStart   string    `json:"pidStart,omitempty"` // its start time (Linux), against PID reuse
	Started    time.Time `json:"started"`
}

// records reads and writes the records under a state folder.
type records struct{ dir string }

func newRecords(stateDir string) records {
	return records{dir: filepath.Join(stateDir, "clusters")}
}

// path is the record's file: the cluster name for people reading the folder,
// and a hash of engine and name so two engines (or odd names) never share one.
func (r records) path(engine, name string) string {
	safe := strings.Map(func(c rune) rune {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' {
			return c
		}
		return '_'
	}, name)
	sum := sha256.Sum256([]byte(engine + "\x00" + name))
	return filepath.Join(r.dir, safe+"-"+hex.EncodeToString(sum[:6])+".json")
}

// read returns the record of cluster name on engine, or nil when there is none.
func (r records) read(engine, name string) (*record, error) {
	b, err := os.ReadFile(r.path(engine, name))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the creation record of cluster %q: %w", name, err)
	}
	var rec record
	if err := json.Unmarshal(b, &rec); err != nil || rec.Cluster != name || rec.Engine != engine {
		// A damaged record says nothing reliable; treating the cluster as
		// half-created would delete what may be a working cluster, so
		// treat it as unknown and let the next create write a good one.
		return nil, nil
	}
	return &rec, nil
}

// write replaces the record atomically (a reader sees the old or the new one).
func (r records) write(rec record) error {
	if err := os.MkdirAll(r.dir, 0o700); err != nil {
		return fmt.Errorf("recording cluster %q: %w", rec.Cluster, err)
	}
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return fmt.Errorf("recording cluster %q: %w", rec.Cluster, err)
	}
	tmp, err := os.CreateTemp(r.dir, ".record-*")
	if err != nil {
		return fmt.Errorf("recording cluster %q: %w", rec.Cluster, err)
	}
	_, werr := tmp.Write(append(b, '\n'))
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("recording cluster %q: %w", rec.Cluster, err)
	}
	if err := os.Rename(tmp.Name(), r.path(rec.Engine, rec.Cluster)); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("recording cluster %q: %w", rec.Cluster, err)
	}
	return nil
}

// remove deletes the record; a missing one is not an error.
func (r records) remove(engine, name string) error {
	if err := os.Remove(r.path(engine, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing the creation record of cluster %q: %w", name, err)
	}
	return nil
}

// verdict is what a record says about the node containers found now.
type verdict int

const (
	// notOurs: no record, or a record about other node containers (the
	// cluster was deleted and made again by someone else): judge the
	// cluster by its health alone, as for a user's own kind cluster.
	notOurs verdict = iota
	// completed: devenv's create of these nodes finished.
	completed
	// halfCreated: devenv's create of these nodes was stopped (devenv was
	// killed, or the machine went down) before kind's create returned.
	halfCreated
	// failedKept: kind's create failed and the nodes were kept (Retain).
	failedKept
	// creatingNow: another live process is in kind's create right now.
	creatingNow
)

// judge decides what the record says about a cluster whose node containers
// are nodeIDs. alive reports whether the process that wrote the record still
// runs.
func judge(rec *record, nodeIDs []string, alive func(pid int, start string) bool) verdict {
	if rec == nil {
		return notOurs
	}
	// Checked before the nodes: kind makes the node container a few
	// seconds into its create.
	if rec.State == recCreating && alive(rec.PID, rec.PIDStart) {
		return creatingNow
	}
	if len(nodeIDs) == 0 {
		return notOurs
	}
	// A record names the node container once it has seen it; other nodes
	// under the same name are someone else's cluster, made after ours.
	if rec.Node != "" && !slices.Contains(nodeIDs, rec.Node) {
		return notOurs
	}
	switch rec.State {
	case recComplete:
		return completed
	case recFailed:
		return failedKept
	case recCreating:
		return halfCreated
	}
	return notOurs
}

// processAlive reports whether process pid runs and, where the start time is
// known (Linux /proc), is the same process that wrote the record rather than
// a later one given the same number.
func processAlive(pid int, start string) bool {
	if pid <= 0 {
		return false
	}
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	now, zombie, ok := procStat(pid)
	if !ok {
		return true // no /proc: the signal check is all there is
	}
	// A zombie (killed, not yet reaped by its parent) runs no more.
	return !zombie && (start == "" || now == start)
}

// processStart returns the start time of process pid in clock ticks since
// boot (field 22 of /proc/<pid>/stat), or false where there is no /proc.
func processStart(pid int) (string, bool) {
	start, _, ok := procStat(pid)
	return start, ok
}

// procStat reads the start time and whether the process is a zombie from
// /proc/<pid>/stat.
func procStat(pid int) (start string, zombie, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", false, false
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return "", false, false
	}
	fields := strings.Fields(s[i+1:])
	// fields[0] is field 3 (state), so field 22 is fields[19].
	if len(fields) < 20 {
		return "", false, false
	}
	return fields[19], fields[0] == "Z" || fields[0] == "X", true
}

// records returns the records under Options.StateDir, or under devenv's state
// folder when it is "".
func (o Options) records() (records, error) {
	if o.StateDir != "" {
		return newRecords(o.StateDir), nil
	}
	dir, err := dirs.State()
	if err != nil {
		return records{}, err
	}
	return newRecords(dir), nil
}

// engineID names the Docker engine the records are about: its ID, else (an
// engine that does not say) its address.
func engineID(ctx context.Context, docker *client.Client) (string, error) {
	info, err := engineInfo(ctx, docker)
	if err != nil {
		return "", fmt.Errorf("asking Docker who it is: %w", err)
	}
	if info.ID != "" {
		return info.ID, nil
	}
	return docker.DaemonHost(), nil
}

// engineSelf is what an engine says of itself that this package uses.
type engineSelf struct{ ID, ServerVersion, KernelVersion string }

// engineInfos keeps each Docker host's engineSelf for the process: docker
// info takes tens of milliseconds, and one up asks for it twice (the
// privileged probe's file and the creation records). An engine keeps its ID
// when it is restarted.
var engineInfos sync.Map // DaemonHost -> engineSelf

// engineInfo asks the engine who it is, once per process and Docker host.
func engineInfo(ctx context.Context, docker *client.Client) (engineSelf, error) {
	host := docker.DaemonHost()
	if v, ok := engineInfos.Load(host); ok {
		return v.(engineSelf), nil
	}
	info, err := docker.Info(ctx, client.InfoOptions{})
	if err != nil {
		return engineSelf{}, err
	}
	self := engineSelf{ID: info.Info.ID, ServerVersion: info.Info.ServerVersion, KernelVersion: info.Info.KernelVersion}
	engineInfos.Store(host, self)
	return self, nil
}

// nodeIDs returns the IDs of cluster name's node containers, running or
// not, the external load balancer's too.
func nodeIDs(ctx context.Context, docker *client.Client, name string) ([]string, error) {
	nodes, err := listNodes(ctx, docker, name)
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(nodes))
	for _, n := range nodes {
		ids = append(ids, n.id)
	}
	return ids, nil
}

// noteNode waits for kind to make the cluster's node container and writes its
// ID into rec. It returns when it has, or when ctx ends (kind's create
// returned).
func noteNode(ctx context.Context, docker *client.Client, recs records, rec record, lg *log.Logger) {
	tick := time.NewTicker(300 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		ids, err := nodeIDs(ctx, docker, rec.Cluster)
		if err != nil || len(ids) == 0 {
			continue
		}
		rec.Node = ids[0]
		if err := recs.write(rec); err != nil {
			lg.Debugf("noting the node of cluster %q: %v", rec.Cluster, err)
		}
		return
	}
}
