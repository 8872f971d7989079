# Sourced by bindings/tests/run_kotlin.sh, android/check_compile.sh and android/check.sh. Installs what the Kotlin
# checks need, idempotently: the pinned Kotlin compiler (npm ci from the package-lock.json beside
# this file, only when the lock changed) and the jars pinned in maven.lock, fetched once from
# Maven Central into ${PEERNS_CACHE:-~/.cache/peerns}/maven and checked against their SHA-256.
# Defines KOTLINC, KOTLIN_LIB (the compiler's stdlib and kotlin-test jars), maven_jar and
# maven_version.

kotlin_tools="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
KOTLINC="$kotlin_tools/node_modules/kotlin-compiler/bin/kotlinc"
KOTLIN_LIB="$kotlin_tools/node_modules/kotlin-compiler/lib"
maven_cache="${PEERNS_CACHE:-$HOME/.cache/peerns}/maven"

if ! cmp -s "$kotlin_tools/package-lock.json" "$kotlin_tools/node_modules/.installed-lock.json"; then
    (cd "$kotlin_tools" && npm ci --no-audit --no-fund --loglevel=error)
    chmod +x "$kotlin_tools"/node_modules/kotlin-compiler/bin/*
    cp "$kotlin_tools/package-lock.json" "$kotlin_tools/node_modules/.installed-lock.json"
fi

# maven_version GROUP:ARTIFACT -> the version pinned in maven.lock.
maven_version() {
    local coords
    coords="$(awk -v a="$1" 'index($1, a ":") == 1 { print $1 }' "$kotlin_tools/maven.lock")"
    if [ -z "$coords" ]; then
        echo "$1 is not pinned in $kotlin_tools/maven.lock" >&2
        return 1
    fi
    echo "${coords##*:}"
}

# maven_jar GROUP:ARTIFACT -> the path of the pinned jar, downloaded and verified on first use.
maven_jar() {
    local group="${1%%:*}" artifact="${1#*:}" version sha path file
    version="$(maven_version "$1")"
    sha="$(awk -v c="$1:$version" '$1 == c { print $2 }' "$kotlin_tools/maven.lock")"
    path="${group//.//}/$artifact/$version/$artifact-$version.jar"
    file="$maven_cache/$path"
    if [ ! -f "$file" ]; then
        mkdir -p "$(dirname "$file")"
        curl -fsSL --retry 3 -o "$file.part" "https://repo1.maven.org/maven2/$path"
        if [ "$(sha256sum "$file.part" | cut -d' ' -f1)" != "$sha" ]; then
            echo "SHA-256 mismatch for $path" >&2
            rm -f "$file.part"
            return 1
        fi
        mv "$file.part" "$file"
    fi
    echo "$file"
}
