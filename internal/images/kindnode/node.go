package kindnode

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/devenv-tool/devenv/internal/dockerx"
	"github.com/devenv-tool/devenv/internal/execx"
	"github.com/devenv-tool/devenv/internal/images/debian"
)

// buildContainer is the name of the container the node image is assembled in.
const buildContainer = "devenv-build-kind-node"

// kindFiles returns the files of kind's node base image (images/base/files
// in the sigs.k8s.io/kind module) with the modes kind's Dockerfile gives
// them and devenv's changes applied.
func kindFiles(kindDir string, pauseRef string) ([]tarEntry, error) {
	root := filepath.Join(kindDir, "images", "base", "files")
	var out []tarEntry
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		mode := int64(0o644)
		if strings.HasPrefix(rel, "usr/local/bin/") || strings.HasPrefix(rel, "kind/bin/") {
			mode = 0o755
		}
		switch rel {
		case "usr/local/bin/entrypoint":
			// kind's entrypoint runs after devenv's prelude, which takes its name.
			rel = "usr/local/bin/entrypoint-kind"
		case "etc/containerd/config.toml":
			if data, err = containerdConfig(data, pauseRef); err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
		case "etc/default/kubelet":
			if data, err = kubeletDefaults(data); err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
		}
		out = append(out, tarEntry{name: rel, mode: mode, data: data})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading kind's node files in %s: %w", root, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no files in %s: is %s the sigs.k8s.io/kind %s module?", root, kindDir, KindVersion)
	}
	return out, nil
}

// containerdConfig points the sandbox image at the pause image kubeadm wants
// (the only one preloaded under its own name besides pause:3.10) and sets
// restrict_oom_score_adj, because a node without CAP_SYS_RESOURCE cannot
// lower oom_score_adj.
func containerdConfig(data []byte, pauseRef string) ([]byte, error) {
	return replaceLines(data, map[string]string{
		"sandbox_image = ":          `sandbox_image = "` + pauseRef + `"`,
		"restrict_oom_score_adj = ": "restrict_oom_score_adj = true",
	})
}

// kubeletDefaults adds --fail-cgroupv1=false: kubelet >= 1.35 refuses to run
// on a cgroup v1 host otherwise, and the flag overrides kubeadm's config.
func kubeletDefaults(data []byte) ([]byte, error) {
	return replaceLines(data, map[string]string{
		"KUBELET_EXTRA_ARGS=": "",
	}, func(line string) string { return strings.TrimRight(line, "\n") + " --fail-cgroupv1=false" })
}

// replaceLines rewrites every line whose trimmed text starts with a key of
// repl: with edit when given, else with repl's value (indentation kept). Each
// key must match at least once.
func replaceLines(data []byte, repl map[string]string, edit ...func(string) string) ([]byte, error) {
	lines := strings.Split(string(data), "\n")
	seen := map[string]bool{}
	for i, line := range lines {
		trimmed := strings.TrimLeft(line, " \t")
		for key, val := range repl {
			if !strings.HasPrefix(trimmed, key) {
				continue
			}
			seen[key] = true
			if len(edit) > 0 {
				lines[i] = edit[0](line)
			} else {
				lines[i] = line[:len(line)-len(trimmed)] + val
			}
		}
	}
	var missing []string
	for key := range repl {
		if !seen[key] {
			missing = append(missing, strings.TrimSpace(key))
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return nil, fmt.Errorf("no line starting with %q: kind's file changed, update devenv's kindnode builder", missing)
	}
	return []byte(strings.Join(lines, "\n")), nil
}

// nodeFiles is everything copied into the build container: kind's files,
// devenv's files and the binaries.
func (b *builder) nodeFiles(kindDir, pauseRef string) ([]tarEntry, error) {
	files, err := kindFiles(kindDir, pauseRef)
	if err != nil {
		return nil, err
	}
	own := []tarEntry{
		{name: "usr/local/bin/entrypoint", mode: 0o755, data: mustFile("entrypoint")},
		{name: "etc/cni/net.d/10-devenv-bridge.conflist", mode: 0o644, data: mustFile("10-devenv-bridge.conflist")},
		{name: "kind/manifests/default-cni.yaml", mode: 0o644, data: mustFile("default-cni.yaml")},
		{name: "kind/manifests/default-storage.yaml", mode: 0o644, data: mustFile("default-storage.yaml")},
		{name: "kind/version", mode: 0o644, data: []byte(KubernetesVersion)},
	}
	files = append(files, own...)
	rb, kb := b.dir("rt-bin"), b.dir("k8s-bin")
	bins := map[string]string{
		"usr/local/bin/containerd":              filepath.Join(rb, "containerd", "containerd"),
		"usr/local/bin/ctr":                     filepath.Join(rb, "containerd", "ctr"),
		"usr/local/bin/containerd-shim-runc-v2": filepath.Join(rb, "containerd", "containerd-shim-runc-v2"),
		"usr/local/bin/crictl":                  filepath.Join(rb, "crictl", "crictl"),
		"usr/local/sbin/runc":                   filepath.Join(rb, "runc", "runc"),
		"usr/bin/kubeadm":                       filepath.Join(kb, "kubeadm"),
		"usr/bin/kubelet":                       filepath.Join(kb, "kubelet"),
		"usr/bin/kubectl":                       filepath.Join(kb, "kubectl"),
	}
	for _, p := range []string{"host-local", "loopback", "ptp", "bridge", "portmap"} {
		bins["opt/cni/bin/"+p] = filepath.Join(rb, "cni", p)
	}
	names := make([]string, 0, len(bins))
	for n := range bins {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if _, err := os.Stat(bins[n]); err != nil {
			return nil, fmt.Errorf("binary for /%s missing: %w", n, err)
		}
		files = append(files, tarEntry{name: n, mode: 0o755, src: bins[n]})
	}
	return files, nil
}

// assemble builds the node image the way `kind build node-image` does, offline:
// a container from the Debian base gets kind's files, the binaries and
// devenv's files, runs kind's systemd setup, imports the control-plane images
// into its containerd, and is committed as Ref.
func (b *builder) assemble(ctx context.Context, labels map[string]string) error {
	b.step("assembling the node image " + Ref)
	kind, err := b.moduleDir(ctx, "sigs.k8s.io/kind@"+KindVersion)
	if err != nil {
		return err
	}
	refs, err := b.kubeadmImages(ctx)
	if err != nil {
		return err
	}
	pauseRef := ""
	for _, r := range refs {
		if imageName(r) == "pause" {
			pauseRef = r
		}
	}
	if pauseRef == "" {
		return fmt.Errorf("kubeadm %s asks for no pause image", KubernetesVersion)
	}
	files, err := b.nodeFiles(kind.Dir, pauseRef)
	if err != nil {
		return err
	}
	docker := b.env.Docker
	_, _ = docker.ContainerRemove(ctx, buildContainer, client.ContainerRemoveOptions{Force: true})
	created, err := docker.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name: buildContainer,
		Config: &container.Config{
			Image:      debian.Ref,
			Entrypoint: []string{"sleep", "infinity"},
			// Commit cannot set STOPSIGNAL; the container's own is kept. systemd stops on SIGRTMIN+3.
			StopSignal: "SIGRTMIN+3",
		},
		HostConfig: &container.HostConfig{NetworkMode: "none"},
	})
	if err != nil {
		return fmt.Errorf("creating the build container from %s: %w", debian.Ref, err)
	}
	id := created.ID
	defer func() {
		// A fresh context: the build's may be cancelled already.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if _, err := docker.ContainerRemove(rctx, id, client.ContainerRemoveOptions{Force: true}); err != nil {
			b.warnf("removing the build container %s: %v", buildContainer, err)
		}
	}()
	if _, err := docker.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
		return fmt.Errorf("starting the build container: %w", err)
	}
	if err := b.copyIn(ctx, id, files); err != nil {
		return err
	}
	if _, err := b.exec(ctx, id, "bash", "-c", string(mustFile("setup.sh"))); err != nil {
		return fmt.Errorf("setting up the node: %w", err)
	}

	b.step("preloading the control-plane images into the node's containerd")
	if err := b.preload(ctx, id, refs); err != nil {
		return err
	}

	b.step("committing " + Ref)
	changes := append([]string{
		`ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]`,
		"ENV container=docker",
	}, debian.LabelChanges(labels)...)
	if _, err := docker.ContainerCommit(ctx, id, client.ContainerCommitOptions{
		Reference: Ref, Changes: changes, Comment: "devenv kind node stand-in, Kubernetes " + KubernetesVersion,
	}); err != nil {
		return fmt.Errorf("committing %s: %w", Ref, err)
	}
	return nil
}

// preload starts containerd in the build container, imports every saved image
// into the k8s.io namespace (pinned, like kind does), gives them their
// registry.k8s.io names, checks that kubeadm's images are all there and
// stops containerd again.
func (b *builder) preload(ctx context.Context, id string, refs []string) error {
	tarDir := b.dir("image-tars")
	entries, err := os.ReadDir(tarDir)
	if err != nil {
		return fmt.Errorf("reading %s: %w", tarDir, err)
	}
	var tars []tarEntry
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".tar") {
			tars = append(tars, tarEntry{name: "tmp/devenv-images/" + e.Name(), mode: 0o644, src: filepath.Join(tarDir, e.Name())})
		}
	}
	if err := b.copyIn(ctx, id, tars); err != nil {
		return err
	}
	// containerd runs detached until the stop script below ends it.
	started, err := b.env.Docker.ExecCreate(ctx, id, client.ExecCreateOptions{
		Cmd: []string{"bash", "-c", "exec containerd >/tmp/devenv-containerd.log 2>&1"},
	})
	if err != nil {
		return fmt.Errorf("starting containerd in the build container: %w", err)
	}
	if _, err := b.env.Docker.ExecStart(ctx, started.ID, client.ExecStartOptions{Detach: true}); err != nil {
		return fmt.Errorf("starting containerd in the build container: %w", err)
	}
	script := `set -eu
for i in $(seq 1 60); do ctr version >/dev/null 2>&1 && break; sleep 0.5; done
ctr version >/dev/null || { cat /tmp/devenv-containerd.log; exit 1; }
for f in /tmp/devenv-images/*.tar; do
  ctr --namespace=k8s.io images import --label=io.cri-containerd.pinned=pinned --all-platforms --no-unpack --digests "$f" >/dev/null
done
# In the Docker engine the images were named ` + imagePrefix + `<real name>; the node uses the real names.
for i in $(ctr -n k8s.io images list -q | grep '^` + imagePrefix + `'); do
  ctr -n k8s.io images tag --force "$i" "${i#` + imagePrefix + `}" >/dev/null
  ctr -n k8s.io images rm "$i" >/dev/null
done
# kind's stock containerd config names pause:3.10; keep that name working too.
ctr -n k8s.io images tag --force "$1" registry.k8s.io/pause:3.10 >/dev/null
ctr -n k8s.io images list -q
`
	var pauseRef string
	for _, r := range refs {
		if imageName(r) == "pause" {
			pauseRef = r
		}
	}
	out, err := b.exec(ctx, id, "bash", "-c", script, "preload", pauseRef)
	if err != nil {
		return fmt.Errorf("importing images into the node's containerd: %w", err)
	}
	have := strings.Fields(out)
	for _, r := range append(refs, "registry.k8s.io/pause:3.10") {
		found := false
		for _, h := range have {
			found = found || h == r
		}
		if !found {
			return fmt.Errorf("image %s is missing in the node's containerd after the import (it has %q)", r, have)
		}
	}
	stop := `pkill -x containerd || true
for i in $(seq 1 40); do pgrep -x containerd >/dev/null || break; sleep 0.25; done
if pgrep -x containerd >/dev/null; then echo "containerd did not stop" >&2; exit 1; fi
rm -rf /tmp/devenv-images /tmp/devenv-containerd.log /run/containerd`
	if _, err := b.exec(ctx, id, "bash", "-c", stop); err != nil {
		return fmt.Errorf("stopping containerd in the build container: %w", err)
	}
	return nil
}

// copyIn copies files into the container's root, owned by root.
func (b *builder) copyIn(ctx context.Context, id string, files []tarEntry) error {
	body := tarStream(files)
	defer body.Close()
	if _, err := b.env.Docker.CopyToContainer(ctx, id, client.CopyToContainerOptions{DestinationPath: "/", Content: body}); err != nil {
		return fmt.Errorf("copying files into the build container: %w", err)
	}
	return nil
}

// exec runs a command in the container and returns its combined output; a
// non-zero exit is an *execx.RunError carrying the output.
func (b *builder) exec(ctx context.Context, id string, cmd ...string) (string, error) {
	out, code, err := dockerx.Exec(ctx, b.env.Docker, id, cmd, nil, b.output())
	if err != nil {
		return out, fmt.Errorf("exec in the build container: %w", err)
	}
	if code != 0 {
		return out, &execx.RunError{Command: cmd, Output: []byte(out), Err: fmt.Errorf("exit status %d", code)}
	}
	return out, nil
}

func (b *builder) warnf(format string, args ...any) {
	if b.env.Log != nil {
		b.env.Log.Warnf(format, args...)
	}
}
