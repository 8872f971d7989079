#!/usr/bin/env bash
# The one test command: installs whatever is missing on a fresh Debian machine, starts nothing by
# hand (the tests start their own servers), then runs every check and test and prints a summary.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

log() { printf '\n== %s\n' "$*"; }

apt_install() {
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  if ((${#missing[@]})); then
    log "apt-get install ${missing[*]}"
    if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
  fi
}

# --- toolchains --------------------------------------------------------------------------------
command -v node >/dev/null && command -v npm >/dev/null || apt_install nodejs npm
# chromium: browser interop (peerjs in headless Chromium); coturn: TURN tests;
# iproute2/util-linux: loopback-only network namespaces for the browser tests.
apt_install pkg-config chromium coturn iproute2 util-linux procps
if ! command -v cargo >/dev/null; then
  [ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
fi
if ! command -v cargo >/dev/null; then
  echo "cargo is missing: install Rust with rustup (https://rustup.rs) and re-run" >&2
  exit 1
fi
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy rustfmt

# --- pinned real PeerJS components (server `peer`, browser client `peerjs`) ----------------------
log "npm ci (tests/peerjs)"
(cd tests/peerjs && npm ci --no-audit --no-fund --loglevel=error)

# --- static checks -------------------------------------------------------------------------------
log "cargo fmt --check"
cargo fmt --all -- --check
log "cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings

# --- tests ---------------------------------------------------------------------------------------
log "cargo build (binaries used by the tests)"
cargo build --workspace --bins --quiet
log "cargo test"
export PEERNS_BIN="$ROOT/target/debug/peerns"
set +e
cargo test --workspace --no-fail-fast 2>&1 | tee target/test-output.txt
status=${PIPESTATUS[0]}
set -e
passed=$(grep -Eo '^test result: .* ([0-9]+) passed' target/test-output.txt | grep -Eo '[0-9]+ passed' | awk '{s+=$1} END {print s+0}')
failed=$(grep -Eo '[0-9]+ failed;' target/test-output.txt | awk '{s+=$1} END {print s+0}')
echo
echo "tests: ${passed} passed, ${failed} failed"
exit "$status"
