//! How a data connection is opened, and the marker of native↔native connections.

use serde_json::{Value, json};

use super::payload::Serialization;

/// Metadata key that marks a connection between two PeerNS native nodes.
pub const NATIVE_MARKER: &str = "peerns";
/// Version of the native connection protocol announced in the metadata.
pub const NATIVE_VERSION: u64 = 1;
/// Metadata key naming the offering transport's instance (random per start), so a peer can tell
/// an OFFER left at the server by a stopped instance of an ID from its live instance's.
pub const INSTANCE_KEY: &str = "instance";
/// Longest instance name taken from a peer.
const MAX_INSTANCE_LEN: usize = 32;
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

/// `metadata` with our `instance` added, if it marks a native connection.
pub(super) fn with_instance(mut metadata: Value, instance: &str) -> Value {
    if is_native(&metadata)
        && let Some(m) = metadata.as_object_mut()
    {
        m.insert(INSTANCE_KEY.into(), instance.into());
    }
    metadata
}

/// The offering instance a native `metadata` names (older versions name none).
pub(super) fn instance_of(metadata: &Value) -> Option<&str> {
    metadata
        .get(INSTANCE_KEY)?
        .as_str()
        .filter(|i| i.len() <= MAX_INSTANCE_LEN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_native_offers_name_their_instance() {
        let native = with_instance(ConnectOptions::native().metadata, "0123abcd");
        assert_eq!(instance_of(&native), Some("0123abcd"));
        assert!(is_native(&native));
        // A browser's metadata is passed on as given.
        let browser = with_instance(json!({"groupCall": true}), "0123abcd");
        assert_eq!(browser, json!({"groupCall": true}));
        assert_eq!(with_instance(Value::Null, "x"), Value::Null);
        // A peer's oversized or non-string instance is not taken.
        let long = json!({ NATIVE_MARKER: 1, INSTANCE_KEY: "x".repeat(33) });
        assert_eq!(instance_of(&long), None);
        assert_eq!(
            instance_of(&json!({ NATIVE_MARKER: 1, INSTANCE_KEY: 7 })),
            None
        );
    }
}
