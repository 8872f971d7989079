#!/usr/bin/env bash
# The one test command: installs whatever is missing on a fresh Debian machine, starts nothing by
# hand (the tests start their own servers), then runs every check and test and prints a summary.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

log() { printf '\n== %s  (%s s in)\n' "$*" "$SECONDS"; }
# A clean checkout gains nothing from incremental caches (GBs on disk); report the disk as we go,
# since a full run needs several GB free.
export CARGO_INCREMENTAL=0
disk() { df -h "$ROOT" | awk 'NR == 2 {print "disk: " $4 " free of " $2}'; }

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
# libopus-dev: Opus for media-desktop; ffmpeg: ffprobe checks call recordings (media_real).
apt_install pkg-config chromium coturn iproute2 util-linux procps libopus-dev ffmpeg
if ! command -v cargo >/dev/null; then
  [ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
fi
if ! command -v cargo >/dev/null; then
  echo "cargo is missing: install Rust with rustup (https://rustup.rs) and re-run" >&2
  exit 1
fi
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy rustfmt
python3 -m pytest --version >/dev/null 2>&1 || python3 -m pip install --quiet pytest
# Kotlin/JVM tests and the Android checks (kotlinc runs on a JRE; jars come with curl, aars are
# unpacked with unzip);
# clang for the Swift header check.
command -v java >/dev/null || apt_install openjdk-17-jre-headless
command -v curl >/dev/null || apt_install curl
command -v unzip >/dev/null || apt_install unzip
apt_install clang

# --- pinned real PeerJS components (server `peer`, browser client `peerjs`) ----------------------
disk
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
log "Python tests through the UniFFI bindings (bindings/tests/run_python.sh)"
bindings/tests/run_python.sh 2>&1 | tee target/python-output.txt
py_status=${PIPESTATUS[0]}
log "Kotlin/JVM tests through the UniFFI bindings (bindings/tests/run_kotlin.sh)"
bindings/tests/run_kotlin.sh 2>&1 | tee target/kotlin-output.txt
kt_status=${PIPESTATUS[0]}
log "Android: compile check, JVM view-model tests, Robolectric tests (android/check.sh)"
android/check.sh 2>&1 | tee target/android-output.txt
android_status=${PIPESTATUS[0]}
log "Swift bindings' C header check (bindings/tests/check_swift_header.sh)"
bindings/tests/check_swift_header.sh 2>&1 | tee target/swift-output.txt
swift_status=${PIPESTATUS[0]}
# Unoptimised: the build takes half the time of an optimised one (2.5 against 5 minutes here),
# and 2 s of each target is a check that they build and their seeds pass, not a fuzzing run.
log "Fuzz targets, 2 s each from the checked-in seeds, unoptimised (FUZZ_BUILD=dev tests/fuzz.sh)"
FUZZ_BUILD=dev tests/fuzz.sh 2 2>&1 | tee target/fuzz-output.txt
fuzz_status=${PIPESTATUS[0]}
passed=$(grep -Eo '^test result: .* ([0-9]+) passed' target/test-output.txt | grep -Eo '[0-9]+ passed' | awk '{s+=$1} END {print s+0}')
failed=$(grep -Eo '[0-9]+ failed;' target/test-output.txt | awk '{s+=$1} END {print s+0}')
py_passed=$(grep -Eo '[0-9]+ passed' target/python-output.txt | tail -1 | awk '{print $1+0}')
py_failed=$(grep -Eo '[0-9]+ (failed|error)' target/python-output.txt | tail -1 | awk '{print $1+0}')
passed=$((passed + ${py_passed:-0}))
failed=$((failed + ${py_failed:-0}))
if [ "$py_status" -ne 0 ] && [ "${py_failed:-0}" -eq 0 ]; then failed=$((failed + 1)); fi
# These end with "<name>: N passed, N failed"; a failure that printed no count counts one.
for step in "kotlin $kt_status" "android $android_status" "swift $swift_status" "fuzz $fuzz_status"; do
  read -r name step_status <<<"$step"
  counts=$(grep -E "^$name: [0-9]+ passed, [0-9]+ failed$" "target/$name-output.txt" | tail -1 | grep -Eo '[0-9]+' | tr '\n' ' ')
  read -r step_passed step_failed <<<"${counts:-0 0}"
  passed=$((passed + step_passed))
  failed=$((failed + step_failed))
  if [ "$step_status" -ne 0 ] && [ "$step_failed" -eq 0 ]; then failed=$((failed + 1)); fi
done
set -e
disk
echo
echo "took ${SECONDS} s"
echo "tests: ${passed} passed, ${failed} failed"
for s in "$status" "$py_status" "$kt_status" "$android_status" "$swift_status" "$fuzz_status"; do
  if [ "$s" -ne 0 ]; then exit "$s"; fi
done
