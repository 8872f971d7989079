#!/usr/bin/env bash
# Builds peerns-ffi, generates its Python bindings with uniffi-bindgen, starts the embedded
# signaling server (`peerns signal`) on a free loopback port and runs the pytest suite against
# the cdylib. Usage: bindings/tests/run_python.sh [pytest args...]   (CARGO_FLAGS="-j 1" to limit)
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
. bindings/tests/common.sh

"$target/debug/uniffi-bindgen" generate "$target/debug/libpeerns_ffi.so" \
    --language python --out-dir "$out" --no-format
cp "$target/debug/libpeerns_ffi.so" "$out/"

start_signal

PYTHONPATH="$out${PYTHONPATH:+:$PYTHONPATH}" python3 -m pytest -q -p no:cacheprovider \
    "$root/bindings/tests/python" "$@"
