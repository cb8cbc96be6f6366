#!/usr/bin/env bash
# A second, current Docker engine (Engine 29 on containerd 2) beside the
# machine's own, for the TestIntegrationEngine29 smoke test (issue #12: users
# run Engine 25-29; Debian's docker.io is 20.10). Everything is built from Go
# module sources and runs as root, on its own sockets, folders and network
# namespace, so the first engine (/var/run/docker.sock) is never touched.
#
#   scripts/engine29.sh build    dockerd, docker-proxy, containerd, the runc shim and the docker CLI
#                                into $DEVENV_CACHE/engine29/<versions>/bin (skipped when present)
#   scripts/engine29.sh start    containerd + dockerd on /run/devenv-engine29/docker.sock (idempotent);
#                                prints the client's and the server's versions
#   scripts/engine29.sh stop     stops both (images and containers stay in the data-root)
#   scripts/engine29.sh env      the exports a test needs: eval "$(scripts/engine29.sh env)"
#   scripts/engine29.sh bundle FILE   a bundle of the stand-ins (kind node, Kafka, registry) made from the
#                                first engine (docker save only); TestIntegrationEngine29 loads it into this one
#   scripts/engine29.sh exec CMD...   runs CMD in the engine's network namespace with the env above
#
# What this VM does not allow a second engine, and the workaround (each harmless for the test):
# - iptables: the first engine owns the host's iptables (FORWARD policy DROP,
#   its DOCKER chains) and bridge-nf-call-iptables is on, so a second engine in
#   the host's network namespace either rewrites those chains (with iptables)
#   or has its bridged traffic dropped (without). The engine runs in a network
#   namespace of its own (ip netns $NETNS): its own iptables, bridges and
#   routes, iptables left on as users have it, and no subnet (IPv4 or kind's
#   IPv6 ULA) can clash with the first engine's. The price: its published
#   ports (127.0.0.1:PORT) are only reachable inside that namespace, so
#   whatever talks to the cluster or Kafka runs through `exec` (nsenter
#   --net, which keeps the host's mount namespace, /sys and cgroups; `ip netns
#   exec` would remount /sys and hide the cgroup v1 mounts).
# - No network leaves the namespace (no veth to the host): nothing is pulled;
#   the images come from the bundle.
# - cgroup v1 (this kernel mounts v1 controllers, v2 only in "unified"):
#   Engine 29 and containerd 2 still run on it (deprecated); dockerd gets
#   --exec-opt native.cgroupdriver=cgroupfs, as there is no systemd.
# - runc: Debian's 1.1.5 does not know the time namespace, which Engine 29
#   gives every container when the kernel has it ("runc create failed:
#   namespace {"time" ""} does not exist"); --feature time-namespaces=false
#   is the engine's own switch back to the host's time namespace (the
#   behaviour before Engine 29). Docker's packages ship a newer runc.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH

# Versions (Go module proxy). github.com/moby/moby/v2 publishes the engine as
# v2.0.0-beta.N; beta.24 (2026-09-15) is Engine 29.8 (its
# releases/versions.yaml: last 29.8.0, next 29.8.1), the newest served.
MOBY=${ENGINE29_MOBY:-v2.0.0-beta.24}
ENGINE_VERSION=${ENGINE29_VERSION:-29.8.1-dev}
CONTAINERD=${ENGINE29_CONTAINERD:-v2.4.2}
CLI=${ENGINE29_CLI:-v29.9.3}

CACHE_ROOT=${DEVENV_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/devenv}
BIN=$CACHE_ROOT/engine29/moby-$MOBY-containerd-$CONTAINERD-cli-$CLI/bin
NETNS=${ENGINE29_NETNS:-devenv-engine29}
RUN=${ENGINE29_RUN:-/run/devenv-engine29}          # sockets, exec-root, pidfiles, containerd state
STATE=${ENGINE29_STATE:-/var/lib/devenv-engine29}  # data-root, containerd root, logs
SOCK=$RUN/docker.sock
LOGS=$STATE/logs
# The engine's own address pool; in its own namespace it cannot clash, and it
# is far from Docker's 172.17-31 defaults all the same.
POOL=${ENGINE29_POOL:-base=10.229.0.0/16,size=24}

say() { echo "engine29: $*" >&2; }

# engine_env is the environment every program run against this engine gets:
# the v29 CLI and its shim first on PATH (kind shells out to `docker`), runc
# and docker-init from Debian behind them.
engine_env() {
  echo "PATH=$BIN:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
  echo "DOCKER_HOST=unix://$SOCK"
  echo "DEVENV_ENGINE29_HOST=unix://$SOCK"
  echo "DEVENV_ENGINE29_NETNS=$NETNS"
}

# in_netns runs a command in the engine's network namespace, keeping the
# host's mount namespace (see above).
in_netns() { nsenter --net="/run/netns/$NETNS" -- "$@"; }

# daemon PIDFILE LOG CMD... starts CMD in the namespace, in a session of its
# own (a Ctrl-C of make does not reach it), in the background; PIDFILE gets
# the daemon's own pid (the shell writes its pid, then execs into it).
daemon() {
  local pidfile=$1 log=$2; shift 2
  local -a envs; mapfile -t envs < <(engine_env)
  setsid -f bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$pidfile" \
    nsenter --net="/run/netns/$NETNS" -- env "${envs[@]}" "$@" >>"$log" 2>&1 </dev/null
  for _ in $(seq 1 20); do [ -s "$pidfile" ] && return; sleep 0.1; done
}

build() {
  local want=(dockerd docker-proxy containerd containerd-shim-runc-v2 docker) missing=()
  for b in "${want[@]}"; do [ -x "$BIN/$b" ] || missing+=("$b"); done
  if [ ${#missing[@]} -eq 0 ]; then
    say "binaries present in $BIN"
    return
  fi
  say "building ${missing[*]} into $BIN (from Go module sources; the first time takes a while on 2 cores)"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  mkdir -p "$tmp/bin" "$BIN"
  local gobuild=(nice -n 10 env CGO_ENABLED=0 GOBIN="$tmp/bin" GOFLAGS=-mod=mod go)

  # dockerd and docker-proxy (Engine 29 needs the proxy for published ports
  # with the default userland-proxy=true). No replace directives in moby's
  # go.mod, so `go install pkg@version` works; tags as moby's hack/make.sh
  # (static, no btrfs headers, no wasm NRI plugins).
  if [[ " ${missing[*]} " == *" dockerd "* || " ${missing[*]} " == *" docker-proxy "* ]]; then
    "${gobuild[@]}" install \
      -tags 'netgo osusergo static_build exclude_graphdriver_btrfs nri_no_wasm' \
      -ldflags "-w -X github.com/moby/moby/v2/dockerversion.Version=$ENGINE_VERSION -X github.com/moby/moby/v2/dockerversion.GitCommit=moby-$MOBY" \
      "github.com/moby/moby/v2/cmd/dockerd@$MOBY" "github.com/moby/moby/v2/cmd/docker-proxy@$MOBY"
  fi

  # containerd and its runc shim, with containerd's Makefile tags (the shim
  # without gRPC). The shim must come first on containerd's PATH: Debian's
  # /usr/bin/containerd-shim-runc-v2 belongs to the first engine.
  if [[ " ${missing[*]} " == *" containerd "* ]]; then
    "${gobuild[@]}" install -trimpath -tags 'urfave_cli_no_docs osusergo netgo static_build no_btrfs' \
      -ldflags "-w -X github.com/containerd/containerd/v2/version.Version=$CONTAINERD" \
      "github.com/containerd/containerd/v2/cmd/containerd@$CONTAINERD"
  fi
  if [[ " ${missing[*]} " == *" containerd-shim-runc-v2 "* ]]; then
    "${gobuild[@]}" install -trimpath -tags 'urfave_cli_no_docs osusergo netgo static_build no_btrfs no_grpc' \
      -ldflags "-w -X github.com/containerd/containerd/v2/version.Version=$CONTAINERD" \
      "github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2@$CONTAINERD"
  fi

  # The docker CLI has no go.mod (CalVer, served as +incompatible): its
  # dependencies are pinned in vendor.mod/vendor.sum. Build a copy of the
  # module with those as go.mod/go.sum, so the versions are the CLI's own.
  if [[ " ${missing[*]} " == *" docker "* ]]; then
    local src
    src=$(cd "$tmp" && GOFLAGS=-mod=mod go mod download -json "github.com/docker/cli@$CLI+incompatible" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
    [ -n "$src" ] || { say "cannot download github.com/docker/cli@$CLI+incompatible"; exit 1; }
    cp -r "$src" "$tmp/cli" && chmod -R u+w "$tmp/cli"
    rm -rf "$tmp/cli/vendor"
    cp "$tmp/cli/vendor.mod" "$tmp/cli/go.mod"
    cp "$tmp/cli/vendor.sum" "$tmp/cli/go.sum"
    # The proxy serves swarmkit v2.1.3's go.mod but refuses its zip ("403
    # Forbidden: This module version is not available"); the CLI gets the
    # commit before that tag, the one moby's go.mod pins (the CLI uses only
    # swarmkit's API types).
    (cd "$tmp/cli" && go mod edit -replace \
      github.com/moby/swarmkit/v2@v2.1.3=github.com/moby/swarmkit/v2@v2.1.3-0.20260828175525-ad0357aedfca)
    (cd "$tmp/cli" && "${gobuild[@]}" build -trimpath -tags 'osusergo netgo grpcnotrace' \
      -ldflags "-w -X github.com/docker/cli/cli/version.Version=${CLI#v} -X github.com/docker/cli/cli/version.GitCommit=cli-$CLI" \
      -o "$tmp/bin/docker" ./cmd/docker)
  fi
  for b in "${missing[@]}"; do mv -f "$tmp/bin/$b" "$BIN/$b"; done
  say "built ${missing[*]}"
}

running() { [ -f "$RUN/$1.pid" ] && kill -0 "$(cat "$RUN/$1.pid")" 2>/dev/null; }

start() {
  build
  command -v runc >/dev/null || [ -x /usr/sbin/runc ] || { say "runc not found (Debian package runc)"; exit 1; }
  [ -x /usr/bin/docker-init ] || { say "/usr/bin/docker-init not found (Debian package tini)"; exit 1; }
  mkdir -p "$RUN/containerd" "$RUN/exec" "$STATE/docker" "$STATE/containerd" "$LOGS"
  chmod 0700 "$RUN" "$STATE"

  # The network namespace: loopback only (see the top of this file).
  if [ ! -e "/run/netns/$NETNS" ]; then
    ip netns add "$NETNS"
    say "created network namespace $NETNS"
  fi
  ip -n "$NETNS" link set lo up

  if ! running containerd; then
    # Its own root and state, no CRI (dockerd needs none), its gRPC and
    # ttrpc sockets under $RUN.
    cat >"$RUN/containerd.toml" <<EOF
version = 3
root = "$STATE/containerd"
state = "$RUN/containerd"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.cri.v1.images", "io.containerd.cri.v1.runtime"]
[grpc]
  address = "$RUN/containerd/containerd.sock"
[ttrpc]
  address = "$RUN/containerd/containerd.sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
EOF
    say "starting containerd $CONTAINERD (log: $LOGS/containerd.log)"
    rm -f "$RUN/containerd.pid"
    daemon "$RUN/containerd.pid" "$LOGS/containerd.log" "$BIN/containerd" --config "$RUN/containerd.toml"
    for _ in $(seq 1 60); do [ -S "$RUN/containerd/containerd.sock" ] && break; sleep 0.5; done
    [ -S "$RUN/containerd/containerd.sock" ] || { say "containerd did not start:"; tail -20 "$LOGS/containerd.log" >&2; exit 1; }
  fi

  if ! running dockerd; then
    # Default image store (containerd snapshotters, as Engine 29 users get);
    # --iptables stays on inside the namespace.
    say "starting dockerd $ENGINE_VERSION (log: $LOGS/dockerd.log)"
    rm -f "$RUN/dockerd.pid"
    daemon "$RUN/dockerd.pid" "$LOGS/dockerd.log" "$BIN/dockerd" \
      --host "unix://$SOCK" \
      --data-root "$STATE/docker" \
      --exec-root "$RUN/exec" \
      --pidfile "$RUN/docker.pid" \
      --containerd "$RUN/containerd/containerd.sock" \
      --default-address-pool "$POOL" \
      --exec-opt native.cgroupdriver=cgroupfs \
      --feature time-namespaces=false
  fi
  say "waiting up to 60s for dockerd on $SOCK"
  local ok=
  for _ in $(seq 1 120); do
    if DOCKER_HOST="unix://$SOCK" "$BIN/docker" version >/dev/null 2>&1; then ok=1; break; fi
    running dockerd || break
    sleep 0.5
  done
  if [ -z "$ok" ]; then
    say "dockerd did not answer on $SOCK:"
    tail -30 "$LOGS/dockerd.log" >&2
    exit 1
  fi
  DOCKER_HOST="unix://$SOCK" "$BIN/docker" version --format \
    'engine29: client {{.Client.Version}} (API {{.Client.APIVersion}}), server {{.Server.Version}} (API {{.Server.APIVersion}}, minimum {{.Server.MinAPIVersion}})' >&2
  DOCKER_HOST="unix://$SOCK" "$BIN/docker" info --format \
    'engine29: {{.Driver}} storage, cgroup v{{.CgroupVersion}} ({{.CgroupDriver}}), containerd image store: {{.DriverStatus}}' >&2
}

# stop_one sends SIGTERM to a daemon started above and waits up to 30s.
stop_one() {
  local name=$1
  if ! running "$name"; then
    rm -f "$RUN/$name.pid"
    return
  fi
  local pid; pid=$(cat "$RUN/$name.pid")
  say "stopping $name (pid $pid)"
  kill -TERM "$pid"
  for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  if kill -0 "$pid" 2>/dev/null; then
    say "$name did not stop in 30s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$RUN/$name.pid"
}

stop() {
  stop_one dockerd
  stop_one containerd
}

# bundle FILE: issue #16's "bundle into a fresh engine". A project with no
# services (the kind node, Kafka and the local registry's stand-ins) is
# bundled from the first engine, which it only reads (docker save; nothing
# to build); devenv prints the size and how long it took. The test loads it
# into this engine (`devenv images load`) and prints the load and cold up
# times.
bundle() {
  local file=${1:?usage: engine29.sh bundle FILE}
  [ -x bin/devenv ] || go build -o bin/devenv ./cmd/devenv
  local proj="$STATE/bundle-project"
  mkdir -p "$proj"
  cat >"$proj/devenv.yaml" <<'EOF'
# The images a small project needs on a fresh engine: kind node, Kafka, registry.
name: engine29-bundle
kafka: {topics: [messages]}
services: {}
EOF
  say "bundling from the first engine into $file"
  (unset DOCKER_HOST; bin/devenv bundle -f "$proj/devenv.yaml" "$file")
}

case "${1:-}" in
  build) build ;;
  start) start ;;
  stop) stop ;;
  env) engine_env | sed 's/^/export /' ; echo "# run what reaches published ports in the namespace: nsenter --net=/run/netns/$NETNS" ;;
  bundle) shift; bundle "$@" ;;
  exec)
    shift
    mapfile -t envs < <(engine_env)
    in_netns env "${envs[@]}" "$@"
    ;;
  *) echo "usage: $0 build|start|stop|env|bundle FILE|exec CMD..." >&2; exit 2 ;;
esac
