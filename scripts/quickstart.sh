#!/usr/bin/env bash
# One entry point for a fresh Debian 12 machine (as root) and for CI:
#   bash scripts/quickstart.sh demo   install everything, build, run the demo
#   bash scripts/quickstart.sh test   install everything, build, lint, typecheck, run every test
#   bash scripts/quickstart.sh setup  install and build only
# Every step is idempotent and skips work that is already done, so a second run is fast.
set -euo pipefail

cd "$(dirname "$0")/.."
readonly PNPM_VERSION=12.21.0
# Debian packages the project needs at run and test time (QEMU under TCG, test-VM build, FUSE, deltas).
readonly APT_PACKAGES=(
  qemu-system-x86 qemu-utils busybox-static e2fsprogs cpio util-linux
  libfuse2 fuse3 pkg-config xdelta3 xz-utils zstd ca-certificates
  # the libvirt backend: daemons + virsh, and libvirt-dev to build @unraid/libvirt (pkg-config above)
  libvirt-daemon-system libvirt-clients libvirt-dev
  # libvirt on a remote host (qemu+ssh://): the ssh client; the tests' loopback "remote host" runs sshd
  openssh-client openssh-server
)

log() { printf '\033[1m==> %s\033[0m\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

require_root_debian() {
  [ "$(id -u)" -eq 0 ] || die "run as root (apt-get installs QEMU and friends)"
  command -v apt-get >/dev/null || die "this script needs Debian's apt-get (Debian 12 expected)"
}

install_apt_packages() {
  local missing=()
  for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  if [ ${#missing[@]} -eq 0 ]; then log "apt packages present"; return; fi
  log "apt-get install ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

install_pnpm() {
  if [ "$(pnpm --version 2>/dev/null || true)" = "$PNPM_VERSION" ]; then log "pnpm $PNPM_VERSION present"; return; fi
  # corepack cannot verify signatures against the registry reachable here; npm can install pnpm directly.
  log "npm install -g pnpm@$PNPM_VERSION"
  npm install -g --no-fund --no-audit "pnpm@$PNPM_VERSION" >/dev/null
}

install_node_modules() {
  log "pnpm install"
  # pnpm's bundled node-gyp ignores the global npmrc; without this every native build tries to download headers.
  export npm_config_nodedir=/usr
  # One retry: a native build (better-sqlite3, zstd-napi) failed once here for no reproducible reason.
  CI=true pnpm install --frozen-lockfile --reporter=append-only ||
    CI=true pnpm install --frozen-lockfile --reporter=append-only
}

build_all() {
  log "build (tsc -b for types, tsup for JS)"
  pnpm run --silent build >/dev/null
  log "test VMs"
  bash test-vms/tiny/build.sh
}

setup() {
  require_root_debian
  install_apt_packages
  install_pnpm
  install_node_modules
  build_all
}

run_tests() {
  log "lint"
  pnpm run --silent lint
  log "typecheck (sources and tests)"
  pnpm run --silent typecheck
  log "tests (unit + real VMs)"
  bash scripts/run-tests.sh
}

case "${1:-}" in
  setup) setup ;;
  demo) setup; log "demo"; pnpm run --silent demo ;;
  test) setup; run_tests ;;
  *) die "usage: bash scripts/quickstart.sh demo|test|setup" ;;
esac
