#!/usr/bin/env bash
# Builds peerns-ffi, generates its Kotlin bindings (android/uniffi.toml: package org.peerns.ffi),
# compiles them with the pure-Kotlin wrapper of android/peerns-android (package org.peerns) and
# the JUnit 5 tests in bindings/tests/kotlin, starts the embedded signaling server (`peerns
# signal`) on a free loopback port and runs the tests on the JVM against the host cdylib through
# JNA. Ends with "kotlin: N passed, N failed". Tools: bindings/tests/kotlin/tools.sh.
# Usage: bindings/tests/run_kotlin.sh   (CARGO_FLAGS="-j 1" to limit)
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
. bindings/tests/kotlin/tools.sh
. bindings/tests/common.sh

"$target/debug/uniffi-bindgen" generate "$target/debug/libpeerns_ffi.so" \
    --language kotlin --config android/uniffi.toml --out-dir "$out/generated" --no-format

wrapper=(android/peerns-android/src/main/kotlin/org/peerns/*.kt)
if grep -n '^import android\.' "${wrapper[@]}"; then
    echo "the wrapper in org/peerns/ must stay pure Kotlin (no android.*): it runs on the JVM here" >&2
    exit 1
fi

deps="$(maven_jar net.java.dev.jna:jna):$(maven_jar org.jetbrains.kotlinx:kotlinx-coroutines-core-jvm)"
junit="$(maven_jar org.junit.platform:junit-platform-console-standalone)"
kotlin_test="$KOTLIN_LIB/kotlin-test.jar:$KOTLIN_LIB/kotlin-test-junit5.jar"
echo "kotlinc: bindings + wrapper + tests"
"$KOTLINC" -jvm-target 17 -cp "$deps:$junit:$kotlin_test" -d "$out/classes" \
    "$out/generated" "${wrapper[@]}" bindings/tests/kotlin/*.kt

start_signal

# The JVM's stderr (the core's log lines on the host) goes to a file the log-level test reads.
export PEERNS_STDERR="$out/stderr.log"
set +e
java -Djna.library.path="$target/debug" -jar "$junit" execute \
    --class-path "$out/classes:$deps:$KOTLIN_LIB/kotlin-stdlib.jar:$kotlin_test" \
    --select-package org.peerns.test --fail-if-no-tests --disable-banner --disable-ansi-colors \
    --details=tree 2>"$PEERNS_STDERR" | tee "$out/junit.txt"
status=${PIPESTATUS[0]}
set -e
passed="$(grep -Eo '[0-9]+ tests successful' "$out/junit.txt" | grep -Eo '[0-9]+' || echo 0)"
failed="$(grep -Eo '[0-9]+ tests failed' "$out/junit.txt" | grep -Eo '[0-9]+' || echo 0)"
if [ "$status" -ne 0 ]; then
    echo "--- JVM stderr (last 60 lines)"
    tail -n 60 "$PEERNS_STDERR"
fi
echo "kotlin: ${passed} passed, ${failed} failed"
exit "$status"
