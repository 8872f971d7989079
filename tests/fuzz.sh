#!/usr/bin/env bash
# Builds every fuzz target in fuzz/fuzz_targets/ (cargo-fuzz on the stable toolchain, see
# fuzz/README.md; optimised, or unoptimised with FUZZ_BUILD=dev: built in half the time, running
# several times fewer inputs a second, which suits the brief run of tests/run.sh) and runs each
# for SECONDS (default 10), starting from its checked-in seeds in
# fuzz/corpus/<target>/. Prints one JSON line per target to stdout,
#   {"target":"frame","execs":123456,"crashes":0}
# then "fuzz: N passed, N failed" (a target that crashed, hung or ran out of memory fails; its
# input is kept in fuzz/artifacts/<target>/ and the fuzzer's report goes to stderr). Everything
# else (build output) goes to stderr. New inputs the fuzzer finds stay in a temporary directory,
# so the checked-in corpus only changes by hand.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SECS=${1:-10}
CARGO_FUZZ_VERSION=0.13.2
# cargo-fuzz's default is one codegen unit; 16 build much faster for a small loss of speed.
BUILD_FLAGS=(--fuzz-dir fuzz --sanitizer none --codegen-units 16)
profile=release
case "${FUZZ_BUILD:-release}" in
  release) ;;
  dev) BUILD_FLAGS+=(--dev); profile=debug ;;
  *) echo "FUZZ_BUILD is release or dev" >&2; exit 2 ;;
esac

if ! cargo fuzz --version 2>/dev/null | grep -q " $CARGO_FUZZ_VERSION\$"; then
  echo "installing cargo-fuzz $CARGO_FUZZ_VERSION" >&2
  cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked --quiet >&2
fi

echo "building fuzz targets" >&2
cargo fuzz build "${BUILD_FLAGS[@]}" >&2
host=$(rustc -vV | sed -n 's/^host: //p')
bin_dir="$ROOT/fuzz/target/$host/$profile"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
passed=0
failed=0
for target in $(cargo fuzz list --fuzz-dir fuzz); do
  mkdir -p "$work/corpus/$target" "$work/artifacts/$target"
  log="$work/$target.log"
  set +e
  "$bin_dir/$target" -max_total_time="$SECS" -timeout=10 -print_final_stats=1 \
    -artifact_prefix="$work/artifacts/$target/" "$work/corpus/$target" "fuzz/corpus/$target" \
    >"$log" 2>&1
  status=$?
  set -e
  execs=$(grep -Eo 'stat::number_of_executed_units: [0-9]+' "$log" | tail -1 | grep -Eo '[0-9]+$' || true)
  if [ -z "$execs" ]; then
    # No final stats (the process died): the last status line "#N ..." has the count.
    execs=$(grep -Eo '^#[0-9]+' "$log" | tail -1 | tr -d '#' || true)
  fi
  crashes=$(find "$work/artifacts/$target" -type f | wc -l)
  if [ "$status" -ne 0 ] && [ "$crashes" -eq 0 ]; then crashes=1; fi
  printf '{"target":"%s","execs":%d,"crashes":%d}\n' "$target" "${execs:-0}" "$crashes"
  if [ "$crashes" -eq 0 ]; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    mkdir -p "fuzz/artifacts/$target"
    cp "$work/artifacts/$target"/* "fuzz/artifacts/$target/" 2>/dev/null || true
    {
      echo "== $target failed (exit $status); inputs kept in fuzz/artifacts/$target/"
      tail -n 40 "$log"
    } >&2
  fi
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
