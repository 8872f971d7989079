//! How a data connection is opened, and the marker of native↔native connections.

use serde_json::{Value, json};

use super::payload::Serialization;

/// Metadata key that marks a connection between two PeerNS native nodes.
pub const NATIVE_MARKER: &str = "peerns";
/// Version of the native connection protocol announced in the metadata.
pub const NATIVE_VERSION: u64 = 1;
/// Remote ICE candidates taken per connection; more are ignored (a browser sends a handful).
pub const MAX_REMOTE_CANDIDATES: usize = 32;

/// How to open a data connection.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectOptions {
    /// Message encoding.
    pub serialization: Serialization,
    /// Ordered, reliable channel (PeerJS's default is `false`: unordered).
    pub reliable: bool,
    /// Data channel label; defaults to the connection id as in PeerJS.
    pub label: Option<String>,
    /// Metadata sent with the offer.
    pub metadata: Value,
}

impl ConnectOptions {
    /// Native↔native: raw envelope, reliable, marked so glare resolves deterministically.
    pub fn native() -> Self {
        Self {
            serialization: Serialization::Raw,
            reliable: true,
            label: None,
            metadata: json!({ NATIVE_MARKER: NATIVE_VERSION }),
        }
    }

    /// To a PeerJS browser peer with the given serialization, reliable.
    pub fn peerjs(serialization: Serialization) -> Self {
        Self {
            serialization,
            reliable: true,
            label: None,
            metadata: Value::Null,
        }
    }
}

/// Whether `metadata` marks a native↔native connection.
pub(super) fn is_native(metadata: &Value) -> bool {
    metadata.get(NATIVE_MARKER).is_some()
}
