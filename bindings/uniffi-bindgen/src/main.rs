//! `uniffi-bindgen`: generates Kotlin, Swift and Python bindings from the built `peerns-ffi`
//! library, e.g. `uniffi-bindgen generate target/debug/libpeerns_ffi.so --language python
//! --out-dir out`.

fn main() {
    uniffi::uniffi_bindgen_main()
}
