package cluster

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sync"

	"github.com/moby/moby/client"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/devenv-tool/devenv/internal/dockerx"
	"github.com/devenv-tool/devenv/internal/supervise"
)

// LiveNode, the fast way on kind: docker exec into the node, nsenter into
// the container, run "supervise update" there as root. While devenv
// watches, one exec stays open per node, running devenv's supervisor as
// an agent that does the same for each update (nodeagent.go).
//
// Root on the node must never run a file the container can write: an
// image running as root could replace its /.devenv/supervise and get the
// node at the next save. So the program run is devenv's own supervisor,
// copied onto the node once (nodeSupervisorDir, root's, 0755, named by its
// hash), and nothing on the way to it is looked up in the container's
// file system:
//
//   - nsenter enters the container's UTS, IPC, network and PID namespaces
//     but not its mount namespace (no -m) and does not chroot (no -r, -w).
//     With -p it forks; the child, in the container's PID namespace, execs
//     the supervisor's path as the node resolves it: the node's copy.
//   - The supervisor is told the container's root as the node sees it
//     (-root /proc/PID/root, PID from containerd's init.pid, a node file;
//     /proc there is the node's procfs, whose PIDs are the node's) and
//     enters it itself (chroot) before it looks at anything else, so the
//     files land where they would with nsenter -m -r, and /proc inside is
//     the container's (for its PID 1 checks). It runs no program after
//     that: it writes files, signals PID 1 and dials the pod's port.
//
// Executing /proc/self/fd/N of a node file opened before nsenter -m -r
// would work too, but /proc/self is then looked up through the
// container's /proc mount; this way no path the container controls is
// resolved before the exec. What remains is what the old way also had: a
// root process with the node's capabilities writes into the container's
// file system, following the container's symlinks within its root, and
// is visible in its PID namespace (the container cannot ptrace it without
// CAP_SYS_PTRACE, which pods lack unless privileged).
const nodeUpdateScript = `p=$(cat /run/containerd/io.containerd.runtime.v2.task/k8s.io/"$1"/init.pid 2>/dev/null) ||
p=$(crictl inspect -o go-template --template '{{.info.pid}}' "$1" 2>/dev/null) || { echo "container $1 is not running on this node"; exit 10; }
s=$2
[ -x "$s" ] || { echo "devenv's supervisor is not on this node ($s)"; exit 15; }
shift 2
exec nsenter -t "$p" -u -i -n -p "$s" update -root "/proc/$p/root" "$@"`

// nodeInstallScript puts the supervisor on its standard input at $1 on the
// node, unless it is there, checking it against its sha256 ($2).
const nodeInstallScript = `set -e
f=$1
[ -f "$f" ] && exit 0
umask 022
mkdir -p "${f%/*}"
t="$f.new.$$"
cat > "$t"
echo "$2  $t" | sha256sum -c --status || { rm -f "$t"; echo "the copy of devenv's supervisor for $f arrived damaged"; exit 1; }
chmod 0755 "$t"
mv -f "$t" "$f"`

// nodeSupervisorDir is the folder on kind nodes that holds devenv's
// supervisor copies.
const nodeSupervisorDir = "/usr/local/lib/devenv"

// nodeCopies is what a Cluster remembers about its nodes for LiveUpdate.
type nodeCopies struct {
	mu    sync.Mutex
	via   map[string]LiveVia // node -> the way LiveAuto takes
	paths map[string]string  // node -> devenv's supervisor there
	// agents are the open agent sessions (nodeagent.go); noAgent the
	// nodes where one did not work.
	agents  map[string]*nodeAgent
	noAgent map[string]bool
	// starting is held while an agent starts: one per node, whoever asks.
	starting sync.Mutex
}

// liveVia is the way LiveAuto takes to node's containers: LiveNode when
// docker runs node as a kind node container, else LiveExec.
func (c *Cluster) liveVia(ctx context.Context, docker *client.Client, node string) LiveVia {
	if docker == nil || node == "" {
		return LiveExec
	}
	c.nodes.mu.Lock()
	via, ok := c.nodes.via[node]
	c.nodes.mu.Unlock()
	if ok {
		return via
	}
	in, err := docker.ContainerInspect(ctx, node, client.ContainerInspectOptions{})
	if err != nil {
		return LiveExec // not a container of this engine (or it did not answer): not remembered
	}
	via = LiveExec
	if in.Container.Config != nil && in.Container.Config.Labels[kindClusterLabel] != "" {
		via = LiveNode
	}
	c.nodes.mu.Lock()
	if c.nodes.via == nil {
		c.nodes.via = map[string]LiveVia{}
	}
	c.nodes.via[node] = via
	c.nodes.mu.Unlock()
	return via
}

// liveNode runs "supervise update args..." with files on its standard
// input in t's container from its node, with devenv's own supervisor.
func (c *Cluster) liveNode(ctx context.Context, docker *client.Client, t LiveTarget, args []string, files []byte) (string, int, error) {
	for attempt := 0; ; attempt++ {
		sup, err := c.nodeSupervisor(ctx, docker, t.Node)
		if err != nil {
			return "", 0, err
		}
		if out, code, err, ok := c.viaAgent(ctx, docker, t, sup, args, files); ok {
			return out, code, err
		}
		cmd := append([]string{"sh", "-c", nodeUpdateScript, "sh", t.ContainerID, sup}, args...)
		out, code, err := dockerx.Exec(ctx, docker, t.Node, cmd, files, nil)
		if err == nil && code == 15 && attempt == 0 {
			// The node lost it (recreated under the same name): copy again.
			c.nodes.mu.Lock()
			delete(c.nodes.paths, t.Node)
			delete(c.nodes.noAgent, t.Node) // an agent may work with the new copy
			c.nodes.mu.Unlock()
			continue
		}
		return out, code, err
	}
}

// nodeSupervisor copies devenv's supervisor for node's architecture onto
// node, once per node, and returns its path there. An architecture devenv
// has no supervisor for gives an error wrapping ErrNoLive.
func (c *Cluster) nodeSupervisor(ctx context.Context, docker *client.Client, node string) (string, error) {
	c.nodes.mu.Lock()
	p, ok := c.nodes.paths[node]
	c.nodes.mu.Unlock()
	if ok {
		return p, nil
	}
	n, err := c.Client.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("finding node %s's architecture: %w", node, err)
	}
	bin, err := supervise.Binary(ctx, n.Status.NodeInfo.Architecture)
	if err != nil {
		return "", fmt.Errorf("%w: node %s: %w", ErrNoLive, node, err)
	}
	sum := sha256.Sum256(bin)
	hash := hex.EncodeToString(sum[:])
	p = nodeSupervisorPath(hash)
	out, code, err := dockerx.Exec(ctx, docker, node, []string{"sh", "-c", nodeInstallScript, "sh", p, hash}, bin, nil)
	if err != nil {
		return "", fmt.Errorf("copying devenv's supervisor onto node %s: %w", node, err)
	}
	if code != 0 {
		return "", fmt.Errorf("copying devenv's supervisor onto node %s: %s (exit code %d)", node, lastLines(out, 1), code)
	}
	c.nodes.mu.Lock()
	if c.nodes.paths == nil {
		c.nodes.paths = map[string]string{}
	}
	c.nodes.paths[node] = p
	c.nodes.mu.Unlock()
	return p, nil
}

// nodeSupervisorPath is where the supervisor whose sha256 is hash lives
// on a node: a new devenv with another supervisor puts it beside.
func nodeSupervisorPath(hash string) string {
	return nodeSupervisorDir + "/supervise-" + hash[:16]
}
