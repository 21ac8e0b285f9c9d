#!/usr/bin/env bash
# Machine setup for the QA sandbox tests (tests/sandbox/), run as root on a fresh Debian 12
# machine before `make test`. Idempotent and cached: a second run takes about a second.
#   - bubblewrap (+ setpriv from util-linux) for the `bwrap` backend;
#   - zsh, for the shell integration test of zsh (tests/client/recorder/test_shell.py);
#   - a Docker engine, started in the background when none answers;
#   - the offline test image: no registry is reachable, so a Debian minbase root file
#     system with python3 (+ pip for dependency preparation) and the build toolchain the
#     bwrap backend sees on the host (a C compiler, Python headers, gettext, git: TOOLCHAIN)
#     is made with debootstrap and imported. pytest itself is not in the image: the sandbox binds the project's own
#     pytest read-only (prtrace.qa.runner_site), so both backends run the same pytest.
#   - headless Chromium and its WebDriver (Debian's chromium, chromium-driver) for the trace
#     viewer's browser test (tests/e2e/test_viewer_browser.py, driven by Selenium).
set -euo pipefail

IMAGE="${PRTRACE_QA_DOCKER_IMAGE:-prtrace-qa-python:bookworm-tools}"
# What QA's dependency step may need to build a project (compiled extensions, message
# catalogues, versions from git): on the host for bwrap, in the image for docker.
TOOLCHAIN=(gcc g++ make libc6-dev python3-dev gettext git)
CACHE="${PRTRACE_QA_SETUP_CACHE:-/var/cache/prtrace/setup}"
SUITE="${PRTRACE_QA_DEBIAN_SUITE:-bookworm}"

if [[ $(id -u) -ne 0 ]]; then
  echo "sandbox-setup: must run as root (installs packages, starts dockerd)" >&2
  exit 1
fi

log() { echo "sandbox-setup: $*" >&2; }

# ---- packages: install only what is missing (apt-get update is the slow part) ----------
packages=(bubblewrap util-linux docker.io debootstrap python3 python3-pip ca-certificates zsh
  chromium chromium-driver "${TOOLCHAIN[@]}")
missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# ---- Docker engine ---------------------------------------------------------------------
DOCKER=/usr/bin/docker
[[ -x $DOCKER ]] || DOCKER=$(command -v docker)
if ! "$DOCKER" info >/dev/null 2>&1; then
  log "starting dockerd"
  mkdir -p /var/log
  nohup /usr/sbin/dockerd >/var/log/prtrace-dockerd.log 2>&1 &
  for _ in $(seq 1 60); do
    "$DOCKER" info >/dev/null 2>&1 && break
    sleep 0.5
  done
  "$DOCKER" info >/dev/null 2>&1 || { log "dockerd did not start; see /var/log/prtrace-dockerd.log"; exit 1; }
fi

# ---- offline test image ----------------------------------------------------------------
if ! "$DOCKER" image inspect "$IMAGE" >/dev/null 2>&1; then
  mkdir -p "$CACHE"
  rootfs_tar="$CACHE/rootfs-$SUITE-python3-tools.tar"
  if [[ ! -s $rootfs_tar ]]; then
    log "building a $SUITE minbase root file system with python3 and its toolchain (a few minutes)"
    work=$(mktemp -d "$CACHE/rootfs.XXXXXX")
    trap 'rm -rf "$work"' EXIT
    include=$(IFS=,; echo "python3,python3-pip,ca-certificates,${TOOLCHAIN[*]}")
    debootstrap --variant=minbase --include="$include" "$SUITE" "$work/root" \
      >"$CACHE/debootstrap.log" 2>&1 || { log "debootstrap failed; see $CACHE/debootstrap.log"; exit 1; }
    rm -rf "$work/root/var/cache/apt/archives/"*.deb "$work/root/var/lib/apt/lists/"*
    tar -C "$work/root" -cf "$rootfs_tar.partial" .
    mv "$rootfs_tar.partial" "$rootfs_tar"
  fi
  log "importing $IMAGE"
  "$DOCKER" import -c 'CMD ["python3"]' "$rootfs_tar" "$IMAGE" >/dev/null
fi

log "ready: bwrap $(bwrap --version | cut -d' ' -f2), docker $("$DOCKER" version -f '{{.Server.Version}}'), image $IMAGE"
