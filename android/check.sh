#!/usr/bin/env bash
# Everything of the Android shell this machine can check (no Android SDK, NDK or device here):
#  1. android/check_compile.sh: the pinned versions match the Gradle catalog, and every Kotlin
#     file of both modules compiles with -Werror against the Android 16 framework jar;
#  2. JVM unit tests of the view models and state holders (android/app/src/test, classes named
#     *Test; kotlinx-coroutines-test) against the host build of the real UniFFI library;
#  3. Robolectric 4.17 tests (classes named *RoboTest) of the services, notification builders and
#     the activity, on the real Android 16 framework on the JVM, against the same library, with
#     the app's merged manifest.
# Both test runs use the embedded signaling server (`peerns signal`) on loopback. Installs what it
# needs (Kotlin compiler from npm, jars from Maven Central, pinned in bindings/tests/kotlin and
# android/tests/maven.lock). Ends with "android: N passed, N failed".
# Usage: android/check.sh   (CARGO_FLAGS="-j 1" to limit the cargo build)
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
. bindings/tests/kotlin/tools.sh
. android/tests/tools.sh
. bindings/tests/common.sh

passed=0
failed=0

# --- 1. versions and compile check ---------------------------------------------------------------
set +e
ANDROID_CLASSES="$out/main" android/check_compile.sh 2>&1 | tee "$out/compile.txt" | grep -v '^android: '
compile_status=${PIPESTATUS[0]}
set -e
counts="$(grep -E '^android: [0-9]+ passed, [0-9]+ failed$' "$out/compile.txt" | tail -1 | grep -Eo '[0-9]+' | tr '\n' ' ')"
read -r compile_passed compile_failed <<<"${counts:-0 1}"
passed=$((passed + compile_passed))
failed=$((failed + compile_failed))
if [ "$compile_status" -ne 0 ]; then
    echo "android: ${passed} passed, $((failed > 0 ? failed : 1)) failed"
    exit 1
fi

# --- 2./3. the tests -----------------------------------------------------------------------------
android_jar="$(maven_jar org.robolectric:android-all)"
jna="$(maven_jar net.java.dev.jna:jna)"
coroutines="$(maven_jar org.jetbrains.kotlinx:kotlinx-coroutines-core-jvm)"
junit="$(maven_jar org.junit.platform:junit-platform-console-standalone)"
test_cp="$(android_test_classpath)"
kotlin_rt="$KOTLIN_LIB/kotlin-stdlib.jar:$KOTLIN_LIB/kotlin-test.jar:$KOTLIN_LIB/kotlin-test-junit.jar"
main="$out/main/bindings:$out/main/classes"

echo "kotlinc: tests of peerns-android and app"
"$KOTLINC" -jvm-target 17 -Werror -cp "$android_jar:$main:$jna:$coroutines:$test_cp:$kotlin_rt" \
    -d "$out/tests" android/peerns-android/src/test/kotlin android/app/src/test/kotlin

# Robolectric reads the build system's test config from the classpath: the manifest it runs
# the app with is the app's merged with the library's, as the Android Gradle Plugin would.
mkdir -p "$out/config/com/android/tools"
python3 android/tests/merge_manifest.py android/app/src/main/AndroidManifest.xml \
    android/peerns-android/src/main/AndroidManifest.xml android/gradle/libs.versions.toml >"$out/AndroidManifest.xml"
echo "android_merged_manifest=$out/AndroidManifest.xml" >"$out/config/com/android/tools/test_config.properties"

start_signal

# run_junit NAME CLASSPATH PATTERN-OPTION... : one JVM, counted into passed/failed.
run_junit() {
    local name="$1" cp="$2" status ok bad
    shift 2
    echo "--- $name"
    set +e
    java -Djna.library.path="$target/debug" -Drobolectric.offline=true \
        -Drobolectric.dependency.dir="$ROBOLECTRIC_DEPS" -Djava.io.tmpdir="$out" \
        -jar "$junit" execute --class-path "$cp" "$@" \
        --fail-if-no-tests --disable-banner --disable-ansi-colors --details=tree \
        >"$out/$name.txt" 2>"$out/$name.err"
    status=$?
    set -e
    cat "$out/$name.txt"
    ok="$(grep -Eo '[0-9]+ tests successful' "$out/$name.txt" | grep -Eo '[0-9]+' || echo 0)"
    bad="$(grep -Eo '[0-9]+ tests failed' "$out/$name.txt" | grep -Eo '[0-9]+' || echo 0)"
    if [ "$status" -ne 0 ]; then
        [ "$bad" -eq 0 ] && bad=1
        echo "--- $name: JVM stderr (last 60 lines)"
        tail -n 60 "$out/$name.err"
    fi
    passed=$((passed + ok))
    failed=$((failed + bad))
}

# View models on a plain JVM: no Android classes on the classpath.
run_junit jvm "$out/tests:$main:$jna:$coroutines:$test_cp:$kotlin_rt" \
    --scan-class-path "$out/tests" --exclude-classname '.*RoboTest$'
run_junit robolectric "$out/config:$out/tests:$main:$jna:$coroutines:$test_cp:$kotlin_rt" \
    --scan-class-path "$out/tests" --include-classname '.*RoboTest$'

echo "android: ${passed} passed, ${failed} failed"
[ "$failed" -eq 0 ]
