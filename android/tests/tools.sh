# Sourced by android/check.sh after bindings/tests/kotlin/tools.sh. Fetches the jars pinned in
# android/tests/maven.lock from Maven Central into the same cache, checked against their SHA-256
# (an .aar's classes.jar is unpacked beside it), and the ktlint jar pinned below. Defines
# android_test_jar, android_test_classpath and ktlint_jar.

android_lock="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/maven.lock"
# Where Robolectric's offline mode finds the Android framework jar (android_test_classpath fills it).
ROBOLECTRIC_DEPS="$maven_cache/robolectric-offline"

# android_test_jar GROUP:ARTIFACT:VERSION[:CLASSIFIER][@aar] SHA256 -> the path of a jar to put on
# a classpath.
android_test_jar() {
    local coords="$1" sha="$2" ext=jar group artifact version classifier="" path file
    case "$coords" in *@aar) ext=aar; coords="${coords%@aar}" ;; esac
    group="${coords%%:*}"
    artifact="${coords#*:}"
    version="${artifact#*:}"
    artifact="${artifact%%:*}"
    case "$version" in *:*) classifier="-${version#*:}"; version="${version%%:*}" ;; esac
    path="${group//.//}/$artifact/$version/$artifact-$version$classifier.$ext"
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
    if [ "$ext" = aar ]; then
        if [ ! -f "${file%.aar}-classes.jar" ]; then
            unzip -p "$file" classes.jar >"${file%.aar}-classes.jar.part"
            mv "${file%.aar}-classes.jar.part" "${file%.aar}-classes.jar"
        fi
        file="${file%.aar}-classes.jar"
    fi
    echo "$file"
}

# android_test_classpath -> every pinned jar but the Android framework, joined with ':'.
# Links the framework jar into $ROBOLECTRIC_DEPS under the name Robolectric's offline mode
# looks for.
android_test_classpath() {
    local coords sha jar cp=""
    mkdir -p "$ROBOLECTRIC_DEPS"
    while read -r coords sha; do
        case "$coords" in '' | '#'*) continue ;; esac
        jar="$(android_test_jar "$coords" "$sha")"
        case "$coords" in
            org.robolectric:android-all-instrumented:*) ln -sf "$jar" "$ROBOLECTRIC_DEPS/$(basename "$jar")" ;;
            *) cp="$cp${cp:+:}$jar" ;;
        esac
    done <"$android_lock"
    echo "$cp"
}

# ktlint, the Kotlin linter android/check.sh runs over android/**/*.kt (its style: android/.editorconfig):
# ktlint-cli's runnable jar with its dependencies ("-all"), from Maven Central.
KTLINT_VERSION=1.8.0
KTLINT_SHA256=369ad2b789f95a011f807e1fcb690ccef80bd7cd014fd139e73ae82dcc0baeab

# ktlint_jar -> the path of the pinned ktlint jar (java -jar it), downloaded and verified on first use.
ktlint_jar() {
    android_test_jar "com.pinterest.ktlint:ktlint-cli:$KTLINT_VERSION:all" "$KTLINT_SHA256"
}
