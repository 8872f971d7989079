//! UniFFI adapter crate for PeerNS native.
//!
//! Placeholder until the FFI issue: it only re-exports the core version so the crate builds
//! and the workspace layout is final. It will hold adapters only, never logic.

/// Version of the core library these bindings wrap.
pub fn core_version() -> &'static str {
    peerns_core::VERSION
}
