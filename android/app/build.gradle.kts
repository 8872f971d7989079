import org.jetbrains.kotlin.gradle.dsl.JvmTarget

plugins {
    alias(libs.plugins.android.application)
    alias(libs.plugins.kotlin.android)
}

android {
    namespace = "org.peerns.app"
    compileSdk = libs.versions.compileSdk.get().toInt()

    defaultConfig {
        applicationId = "org.peerns.app"
        minSdk = libs.versions.minSdk.get().toInt()
        targetSdk = libs.versions.targetSdk.get().toInt()
        versionCode = 1
        versionName = "0.1.0"
        ndk { abiFilters += listOf("arm64-v8a", "armeabi-v7a", "x86_64") }
    }
    buildTypes {
        release {
            isMinifyEnabled = true
            proguardFiles(getDefaultProguardFile("proguard-android-optimize.txt"))
        }
    }
    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }
    // Native libraries stored uncompressed and 16 KB-aligned in the APK, loaded in place.
    packaging { jniLibs { useLegacyPackaging = false } }
    // src/test: JVM view-model tests and Robolectric tests, against the host build of the
    // library (`cargo build -p peerns-ffi`) and a signaling server (`peerns signal`) at
    // PEERNS_SIGNAL_URL, as android/check.sh runs them.
    testOptions {
        unitTests {
            isIncludeAndroidResources = true
            all {
                val target = System.getenv("CARGO_TARGET_DIR") ?: "${rootProject.projectDir.parent}/target"
                it.systemProperty("jna.library.path", "$target/debug")
            }
        }
    }
}

kotlin {
    compilerOptions { jvmTarget.set(JvmTarget.JVM_17) }
}

dependencies {
    implementation(project(":peerns-android"))
    implementation(libs.coroutines.android)
    testImplementation(libs.junit)
    testImplementation(libs.robolectric)
    testImplementation(libs.coroutines.test)
    testImplementation(kotlin("test-junit"))
    // The JVM flavour of JNA, which loads the host library.
    testImplementation(libs.jna)
}
