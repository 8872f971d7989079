#!/usr/bin/env bash
# macOS with Xcode only. Builds peerns-ffi as static libraries with the small-release profile for
# devices (aarch64-apple-ios) and the simulator (aarch64-apple-ios-sim + x86_64-apple-ios, merged
# with lipo), generates the Swift bindings with uniffi-bindgen from the device library (C header,
# module map, peerns_ffi.swift) and assembles what ios/PeernsKit needs:
#   PeernsKit/Frameworks/peerns_ffiFFI.xcframework
#   PeernsKit/Sources/PeernsKit/Generated/peerns_ffi.swift
# Usage: ios/build-xcframework.sh
set -euo pipefail

if [ "$(uname -s)" != Darwin ] || ! command -v xcodebuild >/dev/null; then
    echo "needs macOS with Xcode (xcodebuild, lipo, the iOS SDKs)" >&2
    exit 1
fi

ios="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$ios")"
cd "$root"
target="${CARGO_TARGET_DIR:-$root/target}"
profile=small-release
device=aarch64-apple-ios
simulators=(aarch64-apple-ios-sim x86_64-apple-ios)
# C code (SQLite, ring, oslog) is built for the same minimum as the package (Package.swift).
export IPHONEOS_DEPLOYMENT_TARGET=15.0

rustup target add "$device" "${simulators[@]}"
for t in "$device" "${simulators[@]}"; do
    # Only the static library: iOS apps link Rust statically.
    cargo rustc --package peerns-ffi --lib --crate-type staticlib --profile "$profile" --target "$t"
done

work="$target/ios-xcframework"
rm -rf "$work"
mkdir -p "$work/headers" "$work/simulator"

# The static library still holds the UniFFI metadata (strip applies to linked binaries only).
cargo run --quiet --package uniffi-bindgen -- generate "$target/$device/$profile/libpeerns_ffi.a" \
    --language swift --out-dir "$work/bindings" --no-format
cp "$work/bindings/peerns_ffiFFI.h" "$work/headers/"
cp "$work/bindings/peerns_ffiFFI.modulemap" "$work/headers/module.modulemap"

simulator_libs=()
for t in "${simulators[@]}"; do simulator_libs+=("$target/$t/$profile/libpeerns_ffi.a"); done
lipo -create "${simulator_libs[@]}" -output "$work/simulator/libpeerns_ffi.a"

framework="$ios/PeernsKit/Frameworks/peerns_ffiFFI.xcframework"
rm -rf "$framework"
xcodebuild -create-xcframework \
    -library "$target/$device/$profile/libpeerns_ffi.a" -headers "$work/headers" \
    -library "$work/simulator/libpeerns_ffi.a" -headers "$work/headers" \
    -output "$framework"

generated="$ios/PeernsKit/Sources/PeernsKit/Generated"
mkdir -p "$generated"
cp "$work/bindings/peerns_ffi.swift" "$generated/"
echo "built $framework and $generated/peerns_ffi.swift"
