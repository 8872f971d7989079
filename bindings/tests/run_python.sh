#!/usr/bin/env bash
# Builds peerns-ffi, generates its Python bindings with uniffi-bindgen, starts the embedded
# signaling server (`peerns signal`) on a free loopback port and runs the pytest suite against
# the cdylib. Usage: bindings/tests/run_python.sh [pytest args...]   (CARGO_FLAGS="-j 1" to limit)
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
target="${CARGO_TARGET_DIR:-$root/target}"

# One package per build, so each keeps its own feature set (and its cached artifacts).
for pkg in peerns-ffi uniffi-bindgen peerns-cli; do
    # shellcheck disable=SC2086
    cargo build ${CARGO_FLAGS:-} -p "$pkg"
done

out="$(mktemp -d)"
server_pid=""
cleanup() {
    if [ -n "$server_pid" ]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$out"
}
trap cleanup EXIT

"$target/debug/uniffi-bindgen" generate "$target/debug/libpeerns_ffi.so" \
    --language python --out-dir "$out" --no-format
cp "$target/debug/libpeerns_ffi.so" "$out/"

port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
"$target/debug/peerns" signal --host 127.0.0.1 --port "$port" >"$out/signal.log" 2>&1 &
server_pid=$!
for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
    sleep 0.1
done

export PEERNS_SIGNAL_URL="ws://127.0.0.1:$port/"
PYTHONPATH="$out${PYTHONPATH:+:$PYTHONPATH}" python3 -m pytest -q -p no:cacheprovider \
    "$root/bindings/tests/python" "$@"
