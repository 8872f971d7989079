#!/usr/bin/env bash
# The Swift side as far as it can be checked without a Swift compiler: generates the Swift
# bindings from the host library (as ios/build-xcframework.sh does from the iOS one) and checks
# with clang that
#  1. the generated C header compiles;
#  2. its module map imports as the module `peerns_ffiFFI` (Objective-C mode, like Swift's
#     importer);
#  3. every FFI function the generated Swift calls is declared in the header;
#  4. a C program linked against the library resolves every function the header declares and
#     gets the contract version and each API checksum that the Swift bindings expect (the check
#     Swift runs at load time);
#  5. every method the app's Swift (ios/) calls on the library's objects (named node, peerns,
#     call, groupCall, sinks, source, publisher) exists, in the generated bindings or in ios/'s
#     own Swift: a name the core renamed or dropped shows here (argument labels do not).
# Ends with "swift: N passed, N failed". Needs clang. Usage: bindings/tests/check_swift_header.sh
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
target="${CARGO_TARGET_DIR:-$root/target}"
command -v clang >/dev/null || { echo "clang is missing (apt-get install clang)" >&2; exit 1; }

for pkg in peerns-ffi uniffi-bindgen; do
    # shellcheck disable=SC2086
    cargo build ${CARGO_FLAGS:-} -p "$pkg"
done

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
"$target/debug/uniffi-bindgen" generate "$target/debug/libpeerns_ffi.so" \
    --language swift --out-dir "$out" --no-format
swift="$out/peerns_ffi.swift"
header="$out/peerns_ffiFFI.h"
mkdir "$out/include"
cp "$header" "$out/include/"
cp "$out/peerns_ffiFFI.modulemap" "$out/include/module.modulemap"

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

header_compiles() {
    clang -fsyntax-only -x c-header -std=c11 -Wall -Wextra -Werror "$header"
}

module_imports() {
    printf '@import peerns_ffiFFI;\nuint32_t v(void) { return ffi_peerns_ffi_uniffi_contract_version(); }\n' >"$out/import.m"
    clang -x objective-c -fmodules -fmodules-cache-path="$out/modules" -I "$out/include" \
        -fsyntax-only -Wall -Werror "$out/import.m"
}

ffi_functions() { grep -oE '\b(uniffi|ffi)_peerns_ffi_[a-z0-9_]+' "$1" | sort -u; }

swift_calls_are_declared() {
    local missing
    missing="$(comm -23 <(ffi_functions "$swift") <(grep -oE '\b(uniffi|ffi)_peerns_ffi_[a-z0-9_]+\(' "$header" | tr -d '(' | sort -u))"
    [ -z "$missing" ] || { echo "called by the Swift bindings but not declared: $missing"; return 1; }
}

library_matches_swift() {
    local contract
    contract="$(sed -n 's/.*let bindings_contract_version = \([0-9]*\).*/\1/p' "$swift")"
    {
        printf '#include <stdio.h>\n#include "peerns_ffiFFI.h"\n'
        printf 'typedef void (*fn)(void);\n/* Not static: emitted, so the linker must resolve every entry. */\nconst fn declared[] = {\n'
        grep -oE '\b(uniffi|ffi)_peerns_ffi_[a-z0-9_]+\(' "$header" | tr -d '(' | sort -u | sed 's/.*/    (fn)&,/'
        printf '};\nint main(void) {\n    int bad = 0;\n'
        printf '    if (ffi_peerns_ffi_uniffi_contract_version() != %s) { puts("contract version differs"); bad++; }\n' "$contract"
        sed -n 's/.*if (\(uniffi_peerns_ffi_checksum_[a-z0-9_]*\)() != \([0-9]*\)).*/    if (\1() != \2) { puts("checksum differs: \1"); bad++; }/p' "$swift"
        printf '    printf("%%zu functions linked, %%d checksums compared\\n", sizeof declared / sizeof *declared, %s);\n' \
            "$(grep -c 'if (uniffi_peerns_ffi_checksum_' "$swift")"
        printf '    return bad != 0;\n}\n'
    } >"$out/check.c"
    clang -std=c11 -Wall -Werror -I "$out/include" "$out/check.c" -L "$target/debug" -lpeerns_ffi -o "$out/check" &&
        LD_LIBRARY_PATH="$target/debug" "$out/check"
}

app_calls_exist() {
    local defined missing
    defined="$(grep -ohE 'func [A-Za-z0-9_]+' -r ios --include='*.swift' "$swift" | awk '{print $2}' | sort -u)"
    missing="$(grep -ohE '\b(node|peerns|call|groupCall|sinks|source|publisher)\??\.[A-Za-z0-9_]+\(' -r ios --include='*.swift' |
        sed -E 's/.*\.([A-Za-z0-9_]+)\(/\1/' | sort -u | comm -23 - <(echo "$defined"))"
    [ -z "$missing" ] || { echo "called by ios/ but defined nowhere: $missing"; return 1; }
}

check "the C header compiles" header_compiles
check "the module map imports as peerns_ffiFFI" module_imports
check "every FFI function the Swift bindings call is declared" swift_calls_are_declared
check "the library links every declared function and has the checksums Swift expects" library_matches_swift
check "every method ios/ calls on the library's objects exists" app_calls_exist
echo "swift: ${passed} passed, ${failed} failed"
[ "$failed" -eq 0 ]
