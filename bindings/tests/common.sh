# Sourced by run_python.sh and run_kotlin.sh: builds what the binding tests need, makes a
# scratch folder ($out, removed on exit) and starts the embedded signaling server on a free
# loopback port (start_signal, which exports PEERNS_SIGNAL_URL; stopped on exit).
# Expects $root (the repository) and sets $target (the cargo target folder).

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

start_signal() {
    local port
    port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
    "$target/debug/peerns" signal --host 127.0.0.1 --port "$port" >"$out/signal.log" 2>&1 &
    server_pid=$!
    for _ in $(seq 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
        sleep 0.1
    done
    export PEERNS_SIGNAL_URL="ws://127.0.0.1:$port/"
    # Tests that start their own server (e.g. to show a node starting offline) run this binary.
    export PEERNS_BIN="$target/debug/peerns"
}
