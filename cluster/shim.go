package cluster

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/devenv-tool/devenv/internal/log"
	"github.com/devenv-tool/devenv/project"
)

// shimScript is the docker shim kind runs instead of the real CLI when the
// engine refuses --privileged. It rewrites docker's own --privileged flag into
// the nearest set of options this kind of kernel accepts for run/create,
// drops it for exec, and passes everything else through to the first other
// docker in PATH. Only the flags before the image (run, create) or the
// container (exec) are docker's: what follows is the command run inside and
// is passed through untouched. To find where docker's flags end the script
// knows which of them take a value (kept in step with the docker CLI: a long
// flag takes one unless listed as a switch, and the short ones are listed).
const shimScript = `#!/bin/sh
# devenv docker shim (generated; safe to delete).
# Docker 20.10 refuses "--privileged" on kernels whose capability bounding set
# lacks CAP_SYS_RESOURCE (moby#42906). kind hard-codes "docker run --privileged"
# and "docker exec --privileged", so devenv puts this script first in PATH.
self=$(readlink -f "$0")
real=
oldifs=$IFS
IFS=:
for d in $PATH; do
  [ -n "$d" ] || continue
  c="$d/docker"
  [ -f "$c" ] && [ -x "$c" ] || continue
  [ "$(readlink -f "$c")" = "$self" ] && continue
  # Another devenv shim (an older folder still in PATH) would hand the call
  # back to this one, and the two would call each other for ever.
  grep -q '^# devenv docker shim' "$c" 2>/dev/null && continue
  real=$c
  break
done
IFS=$oldifs
if [ -z "$real" ]; then
  echo "devenv docker shim: no docker CLI found in PATH besides $self: install docker" >&2
  exit 127
fi
# takes_value ARG: whether docker's option ARG takes the next argument as its value.
takes_value() {
  case "$1" in
    --*=*) return 1 ;;
    --privileged|--detach|--interactive|--tty|--rm|--init|--read-only|--no-healthcheck|\
    --oom-kill-disable|--publish-all|--sig-proxy|--disable-content-trust|--help|--quiet|\
    --use-api-socket|--no-trunc) return 1 ;;
    --*) return 0 ;;
  esac
  # Bundled short options (-dit, -ePATH=x): the first one that takes a value
  # takes the rest of the word, or the next argument when it ends the word.
  rest=${1#-}
  while [ -n "$rest" ]; do
    c=${rest%"${rest#?}"}
    rest=${rest#?}
    case "$c" in
      [$valued]) [ -z "$rest" ]; return ;;
    esac
  done
  return 1
}
case "$1" in
  run|create|exec)
    sub=$1
    shift
    if [ "$sub" = exec ]; then valued=euw; else valued=acehlmpuvw; fi
    n=$#
    i=0
    opts=1
    value=0
    while [ "$i" -lt "$n" ]; do
      a=$1
      shift
      i=$((i + 1))
      if [ "$opts" = 0 ] || [ "$value" = 1 ]; then
        value=0
        set -- "$@" "$a"
        continue
      fi
      case "$a" in
        --privileged|--privileged=true)
          if [ "$sub" != exec ]; then
            set -- "$@" --cap-add=ALL --cap-drop=SYS_RESOURCE --security-opt=systempaths=unconfined "--device-cgroup-rule=a *:* rwm" --device=/dev/kmsg
          fi
          ;;
        --)
          opts=0
          set -- "$@" "$a"
          ;;
        -?*)
          if takes_value "$a"; then value=1; fi
          set -- "$@" "$a"
          ;;
        *)
          # The image (run, create) or the container (exec): the rest is
          # the command inside.
          opts=0
          set -- "$@" "$a"
          ;;
      esac
    done
    exec "$real" "$sub" "$@"
    ;;
esac
exec "$real" "$@"
`

// PrivilegedWorkaround describes what devenv did about --privileged.
type PrivilegedWorkaround struct {
	Supported bool   // the engine runs --privileged containers
	ShimDir   string // when not supported: the directory holding the docker shim, now first in PATH
}

// ErrShimNeeded is returned (wrapped) by the calls that run kind (Ensure,
// Preload, LoadImage, ...) when the engine refuses --privileged and the docker
// shim is not the first docker in PATH: call InstallPrivilegedShim first.
var ErrShimNeeded = errors.New("this Docker engine refuses --privileged containers (moby#42906) and devenv's docker shim is not first in PATH")

// privilegedCache remembers, per Docker host, whether --privileged works, so
// the probe container runs once per process (the answer only changes when the
// engine is upgraded).
var privilegedCache sync.Map // docker host -> bool

// shimPathMu serialises the PATH edit of InstallPrivilegedShim.
var shimPathMu sync.Mutex

// InstallPrivilegedShim makes kind work on this engine, for the rest of the
// process. It probes (once per process and Docker host, and remembered on
// disk per engine) whether a privileged container of image starts; if not, it
// writes the docker shim to the devenv cache directory and prepends that
// directory to the process's PATH. On an engine that runs privileged
// containers it changes nothing.
//
// kind runs the docker CLI from the process's PATH even when used as a
// library, so the workaround cannot be scoped to one call: the PATH change is
// process-wide and stays. Every docker CLI the process starts afterwards
// (kind's node containers, `docker exec` into nodes, and anything else) goes
// through the shim, which only rewrites --privileged and passes all else
// through. That is why this is a call of its own that a program makes on
// purpose (devenv's CLI does, before it touches the cluster); without it,
// Ensure and the image loads fail with ErrShimNeeded on such an engine
// instead of changing the caller's process.
//
// image must be present in Docker: the node image is the natural choice.
func InstallPrivilegedShim(ctx context.Context, image string, opts Options) (PrivilegedWorkaround, error) {
	lg := log.FromSlog(opts.Log)
	docker, done, err := opts.docker(ctx)
	if err != nil {
		return PrivilegedWorkaround{}, err
	}
	defer done()
	supported, err := privilegedSupported(ctx, docker, image, lg)
	if err != nil || supported {
		return PrivilegedWorkaround{Supported: supported}, err
	}
	dir, err := shimDir()
	if err != nil {
		return PrivilegedWorkaround{}, err
	}
	if err := installShim(dir); err != nil {
		return PrivilegedWorkaround{}, err
	}
	prependPath(dir)
	lg.Debugf("docker shim %s is first in PATH", filepath.Join(dir, "docker"))
	return PrivilegedWorkaround{ShimDir: dir}, nil
}

// ensurePrivileged checks that kind can work on this engine without changing
// anything: the engine runs privileged containers of image, or the docker
// shim is the docker that PATH finds. Otherwise it fails with ErrShimNeeded.
func ensurePrivileged(ctx context.Context, docker *client.Client, image string, lg *log.Logger) (PrivilegedWorkaround, error) {
	supported, err := privilegedSupported(ctx, docker, image, lg)
	if err != nil || supported {
		return PrivilegedWorkaround{Supported: supported}, err
	}
	dir, err := shimDir()
	if err != nil {
		return PrivilegedWorkaround{}, err
	}
	shim := filepath.Join(dir, "docker")
	if !shimInPath(shim) {
		return PrivilegedWorkaround{}, fmt.Errorf("%w: kind runs `docker` from the process's PATH, so call cluster.InstallPrivilegedShim once before creating or using a cluster (it writes %s and puts its folder first in PATH)", ErrShimNeeded, shim)
	}
	return PrivilegedWorkaround{ShimDir: dir}, nil
}

// shimInPath reports whether the docker found through PATH is the shim.
func shimInPath(shim string) bool {
	found, err := exec.LookPath("docker")
	if err != nil {
		return false
	}
	if a, err := filepath.EvalSymlinks(found); err == nil {
		found = a
	}
	if b, err := filepath.EvalSymlinks(shim); err == nil {
		shim = b
	}
	return filepath.Clean(found) == filepath.Clean(shim)
}

// privilegedSupported probes, once per process and Docker host (and
// remembered on disk per engine), whether a privileged container of image starts.
func privilegedSupported(ctx context.Context, docker *client.Client, image string, lg *log.Logger) (bool, error) {
	host := docker.DaemonHost()
	if supported, known := privilegedCache.Load(host); known {
		return supported.(bool), nil
	}
	// The answer is also kept on disk per engine (ID, version and
	// kernel), so later runs skip the probe container.
	var supported bool
	file := probeFile(ctx, docker)
	if b, err := os.ReadFile(file); file != "" && err == nil && (string(b) == "supported" || string(b) == "refused") {
		supported = string(b) == "supported"
		lg.Debugf("--privileged %s on this engine (remembered in %s)", b, file)
	} else {
		ok, err := probePrivileged(ctx, docker, image)
		if err != nil {
			return false, err
		}
		supported = ok
		if file != "" && os.MkdirAll(filepath.Dir(file), 0o755) == nil {
			_ = os.WriteFile(file, []byte(map[bool]string{true: "supported", false: "refused"}[ok]), 0o644)
		}
	}
	if _, loaded := privilegedCache.LoadOrStore(host, supported); !loaded && !supported {
		lg.Infof("this Docker engine refuses --privileged containers (moby#42906); using devenv's docker shim for kind")
	}
	return supported, nil
}

// probeFile is where the probe's answer for this engine is kept: a name
// derived from the engine's ID, version and kernel, so an upgrade probes
// again. It is "" when the engine does not say who it is.
func probeFile(ctx context.Context, docker *client.Client) string {
	info, err := engineInfo(ctx, docker)
	if err != nil || info.ID == "" {
		return ""
	}
	dir, err := shimDir()
	if err != nil {
		return ""
	}
	sum := sha256.Sum256([]byte(docker.DaemonHost() + "|" + info.ID + "|" + info.ServerVersion + "|" + info.KernelVersion))
	return filepath.Join(filepath.Dir(dir), "privileged-probe", hex.EncodeToString(sum[:8]))
}

// probePrivileged starts a short privileged container of image with entrypoint
// "true". An error about capabilities or "operation not permitted" means the
// engine cannot run privileged containers.
func probePrivileged(ctx context.Context, docker *client.Client, image string) (bool, error) {
	created, err := docker.ContainerCreate(ctx, client.ContainerCreateOptions{
		Config: &container.Config{
			Image:      image,
			Entrypoint: []string{"true"},
			Labels:     map[string]string{project.LabelProbe: "privileged"},
		},
		HostConfig: &container.HostConfig{Privileged: true},
	})
	if err != nil {
		return false, fmt.Errorf("probing --privileged with image %s: %w", image, err)
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_, _ = docker.ContainerRemove(rctx, created.ID, client.ContainerRemoveOptions{Force: true})
	}()
	if _, err := docker.ContainerStart(ctx, created.ID, client.ContainerStartOptions{}); err != nil {
		if privilegedRefused(err) {
			return false, nil
		}
		return false, fmt.Errorf("probing --privileged with image %s: %w", image, err)
	}
	return true, nil
}

// privilegedRefused reports whether a container start error is the engine
// refusing the capability set of a privileged container.
func privilegedRefused(err error) bool {
	if err == nil {
		return false
	}
	msg := strings.ToLower(err.Error())
	return strings.Contains(msg, "caps") || strings.Contains(msg, "operation not permitted")
}

// shimDir is $DEVENV_CACHE/docker-shim, or the user cache dir's devenv/docker-shim.
func shimDir() (string, error) {
	base := os.Getenv("DEVENV_CACHE")
	if base == "" {
		uc, err := os.UserCacheDir()
		if err != nil {
			return "", fmt.Errorf("finding a cache directory for the docker shim (set DEVENV_CACHE): %w", err)
		}
		base = filepath.Join(uc, "devenv")
	}
	return filepath.Join(base, "docker-shim"), nil
}

// installShim writes the shim as dir/docker unless it is already there unchanged.
func installShim(dir string) error {
	path := filepath.Join(dir, "docker")
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, []byte(shimScript)) {
		if st, err := os.Stat(path); err == nil && st.Mode()&0o111 != 0 {
			return nil
		}
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("reading docker shim %s: %w", path, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("creating docker shim directory: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".docker-*")
	if err != nil {
		return fmt.Errorf("writing docker shim: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(shimScript); err != nil {
		tmp.Close()
		return fmt.Errorf("writing docker shim: %w", err)
	}
	if err := tmp.Chmod(0o755); err != nil {
		tmp.Close()
		return fmt.Errorf("writing docker shim: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing docker shim: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("installing docker shim %s: %w", path, err)
	}
	return nil
}

// prependPath puts dir first in PATH (once).
func prependPath(dir string) {
	shimPathMu.Lock()
	defer shimPathMu.Unlock()
	old := os.Getenv("PATH")
	if first, _, _ := strings.Cut(old, string(os.PathListSeparator)); first == dir {
		return
	}
	var keep []string
	for _, d := range filepath.SplitList(old) {
		if d != dir {
			keep = append(keep, d)
		}
	}
	_ = os.Setenv("PATH", strings.Join(append([]string{dir}, keep...), string(os.PathListSeparator)))
}
