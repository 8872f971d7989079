#!/usr/bin/env bash
# What of the Android project can be checked on a machine without the Android SDK or NDK:
#  1. the versions CI pins (bindings/tests/kotlin: Kotlin compiler, JNA, kotlinx-coroutines, the
#     Android framework jar) are the ones gradle/libs.versions.toml builds with;
#  2. kotlinc compiles the Kotlin bindings generated from the host library, then (warnings as
#     errors) the wrapper, every adapter of peerns-android and the app, against the Android
#     framework jar (android-all from Maven Central, the release of compileSdk), JNA and
#     kotlinx-coroutines.
# Ends with "android: N passed, N failed". Usage: android/check_compile.sh (CARGO_FLAGS="-j 1");
# with ANDROID_CLASSES=DIR the generated bindings' sources and classes and the app's classes are
# kept in DIR/generated, DIR/bindings and DIR/classes (android/check.sh runs its tests on them).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
target="${CARGO_TARGET_DIR:-$root/target}"
. bindings/tests/kotlin/tools.sh

passed=0
failed=0
check() {
    local what="$1"
    shift
    if "$@"; then
        echo "ok: $what"
        passed=$((passed + 1))
    else
        echo "FAILED: $what"
        failed=$((failed + 1))
    fi
}

catalog() { sed -n "s/^$1 = \"\\(.*\\)\"/\\1/p" android/gradle/libs.versions.toml; }

versions_match() {
    local ok=0 kotlin jna coroutines sdk android
    kotlin="$(node -p 'require("./bindings/tests/kotlin/package.json").dependencies["kotlin-compiler"]')"
    jna="$(maven_version net.java.dev.jna:jna)"
    coroutines="$(maven_version org.jetbrains.kotlinx:kotlinx-coroutines-core-jvm)"
    android="$(maven_version org.robolectric:android-all)"
    sdk="$(catalog compileSdk)"
    [ "$(catalog kotlin)" = "$kotlin" ] || { echo "kotlin: catalog $(catalog kotlin), CI $kotlin"; ok=1; }
    [ "$(catalog jna)" = "$jna" ] || { echo "jna: catalog $(catalog jna), CI $jna"; ok=1; }
    [ "$(catalog coroutines)" = "$coroutines" ] || { echo "coroutines: catalog $(catalog coroutines), CI $coroutines"; ok=1; }
    # API level 36 is Android 16, 35 is Android 15, ...
    [ "${android%%-*}" = "$((sdk - 20))" ] || { echo "compileSdk $sdk, but CI compiles against android-all $android"; ok=1; }
    return $ok
}

if [ -n "${ANDROID_CLASSES:-}" ]; then
    out="$ANDROID_CLASSES"
    mkdir -p "$out"
else
    out="$(mktemp -d)"
    trap 'rm -rf "$out"' EXIT
fi

for pkg in peerns-ffi uniffi-bindgen; do
    # shellcheck disable=SC2086
    cargo build ${CARGO_FLAGS:-} -p "$pkg"
done
"$target/debug/uniffi-bindgen" generate "$target/debug/libpeerns_ffi.so" \
    --language kotlin --config android/uniffi.toml --out-dir "$out/generated" --no-format
cp="$(maven_jar org.robolectric:android-all):$(maven_jar net.java.dev.jna:jna):$(maven_jar org.jetbrains.kotlinx:kotlinx-coroutines-core-jvm)"

compiles() {
    echo "kotlinc: generated bindings, then peerns-android + app (-Werror) against android-all $(maven_version org.robolectric:android-all)"
    # Generated code is not ours to keep warning-free; the hand-written code is.
    "$KOTLINC" -jvm-target 17 -cp "$cp" -d "$out/bindings" "$out/generated" &&
        "$KOTLINC" -jvm-target 17 -Werror -cp "$cp:$out/bindings" -d "$out/classes" \
            android/peerns-android/src/main/kotlin android/app/src/main/kotlin
}

check "versions in gradle/libs.versions.toml match the ones CI pins" versions_match
check "peerns-android and app compile against the Android framework" compiles
echo "android: ${passed} passed, ${failed} failed"
[ "$failed" -eq 0 ]
