#!/usr/bin/env bash
# Everything of the Android shell this machine can check (no Android SDK, NDK or device here):
#  1. android/check_compile.sh: the pinned versions match the Gradle catalog, and every Kotlin
#     file of both modules compiles with -Werror against the Android 16 framework jar;
#  2. JVM unit tests of the view models and state holders (android/app/src/test, classes named
#     *Test; kotlinx-coroutines-test) against the host build of the real UniFFI library;
#  3. Robolectric 4.17 tests (classes named *RoboTest) of the services, notification builders and
#     the activity, on the real Android 16 framework on the JVM (Java 21+), against the same library;
#  4. ktlint over every Kotlin file of android/ (style in android/.editorconfig), one check.
# Both test runs use the embedded signaling server (`peerns signal`) on loopback. Installs what it
# needs (Kotlin compiler from npm, jars from Maven Central, pinned in bindings/tests/kotlin,
# android/tests/maven.lock and android/tests/tools.sh). Ends with "android: N passed, N failed".
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

# The test versions the Gradle build declares are the ones pinned here.
test_versions_match() {
    local ok=0 name coords pinned catalog
    for pair in robolectric:org.robolectric:robolectric junit:junit:junit; do
        name="${pair%%:*}"
        coords="${pair#*:}"
        pinned="$(awk -v a="$coords" 'index($1, a ":") == 1 { split($1, p, ":"); print p[3] }' android/tests/maven.lock)"
        catalog="$(sed -n "s/^$name = \"\(.*\)\"/\1/p" android/gradle/libs.versions.toml)"
        [ -n "$pinned" ] && [ "$pinned" = "$catalog" ] || { echo "$name: catalog $catalog, android/tests/maven.lock $pinned"; ok=1; }
    done
    return $ok
}
if test_versions_match; then
    echo "ok: test versions in gradle/libs.versions.toml match android/tests/maven.lock"
    passed=$((passed + 1))
else
    echo "FAILED: test versions in gradle/libs.versions.toml match android/tests/maven.lock"
    failed=$((failed + 1))
fi

# --- 4. ktlint (run before the tests, so that it counts also when they fail) --------------------
# Alone, once this script has fetched it: java -jar ~/.cache/peerns/maven/com/pinterest/ktlint/
# ktlint-cli/1.8.0/ktlint-cli-1.8.0-all.jar "android/**/*.kt" (add -F to format the files in place).
# The output of a Gradle build is left out.
if ktlint="$(ktlint_jar)" &&
    java -jar "$ktlint" --relative "android/**/*.kt" '!android/**/build/**' >"$out/ktlint.txt" 2>&1; then
    echo "ok: ktlint $KTLINT_VERSION finds nothing in android/**/*.kt"
    passed=$((passed + 1))
else
    cat "$out/ktlint.txt" 2>/dev/null || true
    echo "FAILED: ktlint $KTLINT_VERSION finds nothing in android/**/*.kt (java -jar ktlint -F formats)"
    failed=$((failed + 1))
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

# Robolectric runs Android 16, whose classes are Java 21 bytecode: it needs a Java 21 or newer
# (JAVA_HOME, else one under /usr/lib/jvm, e.g. the Temurin 25 of the CI machines).
robolectric_java=""
for home in "${JAVA_HOME:-}" /usr/lib/jvm/temurin-25-jdk-amd64 /usr/lib/jvm/*; do
    [ -x "$home/bin/java" ] || continue
    feature="$("$home/bin/java" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p')"
    if [ "${feature:-0}" -ge 21 ]; then
        robolectric_java="$home/bin/java"
        break
    fi
done

start_signal

# run_junit NAME JAVA CLASSPATH OPTION... : one JVM, counted into passed/failed.
run_junit() {
    local name="$1" java="$2" cp="$3" status ok bad
    shift 3
    echo "--- $name"
    set +e
    # The opens/exports are the ones Robolectric needs on Java 17+.
    "$java" --add-exports=java.base/jdk.internal.access=ALL-UNNAMED --add-opens=java.base/java.io=ALL-UNNAMED \
        --add-opens=java.base/java.lang=ALL-UNNAMED -Djna.library.path="$target/debug" \
        -Drobolectric.offline=true -Drobolectric.dependency.dir="$ROBOLECTRIC_DEPS" -Djava.io.tmpdir="$out" \
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
run_junit jvm java "$out/tests:$main:$jna:$coroutines:$test_cp:$kotlin_rt" \
    --scan-class-path "$out/tests" --exclude-classname '.*RoboTest$'
if [ -n "$robolectric_java" ]; then
    # The framework jar is on the classpath for the runner's reflection, as in a Gradle build;
    # the tests themselves run on Robolectric's instrumented copy.
    run_junit robolectric "$robolectric_java" "$out/tests:$main:$jna:$coroutines:$test_cp:$kotlin_rt:$android_jar" \
        --scan-class-path "$out/tests" --include-classname '.*RoboTest$'
else
    echo "FAILED: the Robolectric tests need Java 21 or newer (set JAVA_HOME)"
    failed=$((failed + 1))
fi

echo "android: ${passed} passed, ${failed} failed"
[ "$failed" -eq 0 ]
