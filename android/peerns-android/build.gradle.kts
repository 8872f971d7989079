import org.jetbrains.kotlin.gradle.dsl.JvmTarget

plugins {
    alias(libs.plugins.android.library)
    alias(libs.plugins.kotlin.android)
}

// This Gradle project lives in the android/ folder of the Cargo workspace.
val workspace: File = rootProject.projectDir.parentFile
val cargoTarget = File(System.getenv("CARGO_TARGET_DIR") ?: "$workspace/target")
val minSdkLevel = libs.versions.minSdk.get().toInt()
val abis = listOf("arm64-v8a", "armeabi-v7a", "x86_64")
val rustProfile = "small-release"
val jniLibsDir = layout.buildDirectory.dir("rust/jniLibs").get().asFile
val bindingsDir = layout.buildDirectory.dir("generated/uniffi/kotlin").get().asFile

android {
    namespace = "org.peerns.android"
    compileSdk = libs.versions.compileSdk.get().toInt()
    ndkVersion = libs.versions.ndk.get()

    defaultConfig {
        minSdk = minSdkLevel
        consumerProguardFiles("consumer-rules.pro")
    }
    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }
    sourceSets["main"].apply {
        kotlin.srcDir(bindingsDir)
        jniLibs.srcDir(jniLibsDir)
    }
}

kotlin {
    compilerOptions { jvmTarget.set(JvmTarget.JVM_17) }
}

dependencies {
    // The generated bindings expose JNA types; the AAR carries libjnidispatch.so for each ABI.
    api("net.java.dev.jna:jna:${libs.versions.jna.get()}@aar")
    api(libs.coroutines.core)
    implementation(libs.coroutines.android)
    testImplementation(libs.junit)
    testImplementation(kotlin("test-junit"))
}

val rustSources = fileTree(workspace) {
    include("Cargo.toml", "Cargo.lock", "core/**", "bindings/Cargo.toml", "bindings/src/**")
}

// libpeerns_ffi.so for every ABI into build/rust/jniLibs/<abi>/. Runs in android/ so that cargo
// reads android/.cargo/config.toml (16 KB page alignment); needs cargo-ndk and the NDK above.
val cargoNdk by tasks.registering(Exec::class) {
    group = "rust"
    description = "Builds the native library for $abis with cargo-ndk."
    val ndk = androidComponents.sdkComponents.ndkDirectory
    inputs.files(rustSources, rootProject.file(".cargo/config.toml"))
    outputs.dir(jniLibsDir)
    workingDir = rootProject.projectDir
    commandLine(
        listOf("cargo", "ndk", "--platform", "$minSdkLevel", "--output-dir", jniLibsDir.path) +
            abis.flatMap { listOf("--target", it) } +
            listOf("build", "--package", "peerns-ffi", "--profile", rustProfile),
    )
    doFirst { environment("ANDROID_NDK_HOME", ndk.get().asFile.path) }
}

// Kotlin bindings generated from the static library of the same build (unstripped, so it still
// holds the UniFFI metadata), so they always match the shipped .so: UniFFI checks every
// function's checksum when the library loads.
val uniffiBindings by tasks.registering(Exec::class) {
    group = "rust"
    description = "Generates the Kotlin bindings (package org.peerns.ffi) with uniffi-bindgen."
    dependsOn(cargoNdk)
    inputs.files(rustSources, rootProject.file("uniffi.toml"))
    outputs.dir(bindingsDir)
    workingDir = workspace
    commandLine(
        "cargo", "run", "--quiet", "--package", "uniffi-bindgen", "--",
        "generate", "$cargoTarget/aarch64-linux-android/$rustProfile/libpeerns_ffi.a",
        "--language", "kotlin", "--config", rootProject.file("uniffi.toml").path,
        "--no-format", "--out-dir", bindingsDir.path,
    )
    doFirst { bindingsDir.deleteRecursively() }
}

tasks.named("preBuild") { dependsOn(uniffiBindings) }
