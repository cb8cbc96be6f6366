#!/usr/bin/env bash
# Prepares a Debian/Ubuntu machine for devenv: the packages devenv and its tests
# need, a running Docker engine, and (on a machine that cannot pull images) the
# offline stand-in images. Safe to run again: it skips what is already there.
#
#   scripts/setup.sh            packages + Docker engine + stand-in images
#   SKIP_IMAGES=1 scripts/setup.sh   packages + Docker engine only
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH
export DEBIAN_FRONTEND=noninteractive

# Debian packages: Docker engine, the stand-in builders' tools (debootstrap,
# gcc + libseccomp for runc, jq), Java 17 + H2 for the Java example, Chromium
# for the browser view's test.
PKGS=(docker.io debootstrap jq ca-certificates gcc libc6-dev libseccomp-dev pkg-config make
      default-jdk-headless libh2-java chromium)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Docker engine: start dockerd in the background when none answers (PID 1 is
# not always systemd, e.g. in CI VMs and containers).
if ! docker info >/dev/null 2>&1; then
  if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    systemctl start docker || true
  fi
fi
if ! docker info >/dev/null 2>&1; then
  echo "setup: starting dockerd (log: /var/log/dockerd.log)"
  nohup dockerd >/var/log/dockerd.log 2>&1 &
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
fi
docker info --format 'setup: Docker engine {{.ServerVersion}} (cgroup v{{.CgroupVersion}}, {{.Driver}})'

go build -o bin/devenv ./cmd/devenv
if [ -z "${SKIP_IMAGES:-}" ]; then
  # Only the stand-ins for images devenv.yaml uses that are neither present
  # nor pullable; nothing on a machine that can pull. Seconds when current.
  echo "setup: checking which images need offline stand-ins (building them takes about 20 minutes the first time)"
  ./bin/devenv images build --needed
fi
