package cluster

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/moby/moby/client"

	"github.com/devenv-tool/devenv/internal/log"
)

// cgroupRoot is where the host's cgroup file systems are mounted.
var cgroupRoot = "/sys/fs/cgroup"

// thawNodes thaws every frozen cgroup below the cluster's node containers.
//
// runc freezes a container's cgroup while it sets the container up; when
// the node is stopped at that moment (a deletion in the middle of a
// rollout), the cgroup stays frozen, the processes in it can never take
// their SIGKILL, and Docker answers "tried to kill container, but did not
// receive an exit event" for as long as the engine runs. Thawing lets them
// die. It needs write access to the host's cgroup files (root); without it
// there is nothing devenv can do, and it says so in debug output only.
func thawNodes(ctx context.Context, docker *client.Client, name string, lg *log.Logger) int {
	nodes, err := docker.ContainerList(ctx, client.ContainerListOptions{
		All: true, Filters: client.Filters{}.Add("label", kindClusterLabel+"="+name)})
	if err != nil {
		lg.Debugf("not checking the nodes of cluster %q for frozen processes: %v", name, err)
		return 0
	}
	n := 0
	for _, node := range nodes.Items {
		n += thawContainer(cgroupRoot, node.ID, lg)
	}
	if n > 0 {
		lg.Infof("thawed %d frozen cgroup(s) in the nodes of cluster %q so that they can stop", n, name)
	}
	return n
}

// thawContainer thaws the frozen cgroups below one container's cgroup
// (cgroup v1 freezer or v2; cgroupfs or systemd driver) and returns how many
// it thawed.
func thawContainer(root, id string, lg *log.Logger) int {
	if id == "" || strings.ContainsAny(id, "/.") {
		return 0
	}
	var dirs []string
	for _, base := range []string{filepath.Join(root, "freezer"), root} {
		dirs = append(dirs,
			filepath.Join(base, "docker", id),
			filepath.Join(base, "system.slice", "docker-"+id+".scope"))
	}
	n := 0
	for _, dir := range dirs {
		_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return nil
			}
			var frozen bool
			var thawed []byte
			switch d.Name() {
			case "freezer.state": // v1
				b, err := os.ReadFile(path)
				frozen = err == nil && !bytes.HasPrefix(bytes.TrimSpace(b), []byte("THAWED"))
				thawed = []byte("THAWED")
			case "cgroup.freeze": // v2
				b, err := os.ReadFile(path)
				frozen = err == nil && bytes.Equal(bytes.TrimSpace(b), []byte("1"))
				thawed = []byte("0")
			default:
				return nil
			}
			if !frozen {
				return nil
			}
			if err := os.WriteFile(path, thawed, 0); err != nil {
				lg.Debugf("thawing %s: %v", filepath.Dir(path), err)
				return nil
			}
			n++
			return nil
		})
	}
	return n
}
