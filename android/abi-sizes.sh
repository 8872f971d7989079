#!/usr/bin/env bash
# The phone library's size per Android ABI (`small-release`, as the Gradle task `cargoNdk` builds
# it), measured where the Android NDK cannot be installed, as here:
#  - each target's Rust standard library comes from rustup (`rustup target add`);
#  - the C parts (SQLite, ring, BLAKE3) are compiled by clang for the Android target with glibc's
#    cross headers standing in for bionic's (Debian's libc6-dev-arm64-cross, -armel-cross; the
#    host's for x86_64);
#  - lld links the library against empty stand-ins for libc, libm, libdl and liblog (their symbols
#    stay undefined for the loader, as with the NDK's stubs) and without the NDK's static
#    libunwind and compiler builtins (a real build adds their code, about 0.1 MB).
# So the figures are the size of our code as the NDK would build it, to within about 1 %; the
# library itself is for measuring only (its C parts call glibc's names, not bionic's).
# Needs rustup, clang, lld, llvm-ar and those headers. Prints one JSON line per ABI:
#   {"abi":"arm64-v8a","bytes":N,"gzip_bytes":N}
# Usage: android/abi-sizes.sh [ABI...]   (default: arm64-v8a armeabi-v7a x86_64)
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

for tool in rustup clang ld.lld llvm-ar gzip; do
    command -v "$tool" >/dev/null || { echo "needs $tool" >&2; exit 1; }
done

# ABI → Rust target, clang target (API 26, the app's minimum), C headers standing in for bionic's.
spec() {
    case "$1" in
        arm64-v8a) echo "aarch64-linux-android aarch64-linux-android26 /usr/aarch64-linux-gnu/include" ;;
        armeabi-v7a) echo "armv7-linux-androideabi armv7a-linux-androideabi26 /usr/arm-linux-gnueabi/include" ;;
        x86_64) echo "x86_64-linux-android x86_64-linux-android26 /usr/include/x86_64-linux-gnu:/usr/include" ;;
        *) echo "unknown ABI $1" >&2; exit 1 ;;
    esac
}

abis=("$@")
[ ${#abis[@]} -gt 0 ] || abis=(arm64-v8a armeabi-v7a x86_64)
for abi in "${abis[@]}"; do
    line="$(spec "$abi")" # (an unknown ABI stops the script here)
    read -r rust clang_target headers <<<"$line"
    rustup target add "$rust" >/dev/null
    includes=""
    for dir in ${headers//:/ }; do
        [ -d "$dir" ] || { echo "needs the C headers in $dir" >&2; exit 1; }
        includes="$includes -isystem $dir"
    done
    stubs="$work/$abi"
    mkdir -p "$stubs"
    : >"$stubs/empty.c"
    for lib in c m dl log; do
        clang --target="$clang_target" -shared -nostdlib -fuse-ld=lld -o "$stubs/lib$lib.so" "$stubs/empty.c"
    done
    for lib in unwind gcc; do
        llvm-ar rc "$stubs/lib$lib.a"
    done
    linker="$work/link-$abi"
    printf '#!/bin/sh\nexec clang --target=%s -fuse-ld=lld -nostdlib -L%q "$@"\n' "$clang_target" "$stubs" >"$linker"
    chmod +x "$linker"
    env_target="$(echo "$rust" | tr 'a-z-' 'A-Z_')"
    cc_target="$(echo "$rust" | tr '-' '_')"
    # A RUSTFLAGS of the caller would replace the page-size flag: unset here.
    env -u RUSTFLAGS -u CARGO_ENCODED_RUSTFLAGS "CARGO_TARGET_${env_target}_LINKER=$linker" \
        "CARGO_TARGET_${env_target}_RUSTFLAGS=-C link-arg=-Wl,-z,max-page-size=16384" \
        "CC_${cc_target}=clang" "AR_${cc_target}=llvm-ar" \
        "CFLAGS_${cc_target}=--target=$clang_target$includes" \
        cargo build --quiet -p peerns-ffi --lib --profile small-release --target "$rust"
    lib="$target_dir/$rust/small-release/libpeerns_ffi.so"
    printf '{"abi":"%s","bytes":%d,"gzip_bytes":%d}\n' "$abi" "$(stat -c %s "$lib")" "$(gzip -9 -c "$lib" | wc -c)"
done
