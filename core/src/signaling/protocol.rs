//! The PeerJS signaling wire protocol, shaped exactly as peerjs 1.5.5 and the `peer` 1.0.x server
//! send it (captured examples in `../shared/reference/toolchain.md` §7).
//!
//! Every frame is JSON text: `{"type": T, "src"?: ID, "dst"?: ID, "payload"?: ...}`. The server
//! rewrites `src` and relays OFFER/ANSWER/CANDIDATE/LEAVE/EXPIRE unchanged; HEARTBEAT is consumed
//! by the server. Parsing is size-bounded and never panics.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Largest signaling frame we accept or send (an SDP with many candidates is a few KiB).
pub const MAX_FRAME_BYTES: usize = 64 * 1024;
/// Longest PeerJS ID we accept.
pub const MAX_ID_LEN: usize = 128;
/// The PeerJS client version we announce in the `version=` query parameter.
pub const PEERJS_VERSION: &str = "1.5.5";

/// The `type` field of a signaling frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING-KEBAB-CASE")]
pub enum MessageType {
    /// Server → client: the ID is registered to this socket.
    Open,
    /// Server → client: another token holds the ID; the socket is closed after it.
    IdTaken,
    /// Server → client: `payload.msg` says what went wrong.
    Error,
    /// Server → client: the API key was refused.
    InvalidKey,
    /// Client → server keep-alive (every 5 s).
    Heartbeat,
    /// SDP offer, relayed.
    Offer,
    /// SDP answer, relayed.
    Answer,
    /// Trickled ICE candidate, relayed.
    Candidate,
    /// The peer left (or the server could not deliver to it).
    Leave,
    /// A queued message was not picked up in time: the destination is absent.
    Expire,
}

impl MessageType {
    /// True for the types the server relays from one client to another.
    pub fn is_relayed(self) -> bool {
        matches!(
            self,
            Self::Offer | Self::Answer | Self::Candidate | Self::Leave | Self::Expire
        )
    }
}

/// One signaling frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// The frame type.
    #[serde(rename = "type")]
    pub kind: MessageType,
    /// Sender ID (set by the server on relayed frames).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src: Option<String>,
    /// Destination ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dst: Option<String>,
    /// Type-specific payload, kept as JSON so relays stay byte-faithful.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<Value>,
}

/// Why a frame could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// The frame is larger than [`MAX_FRAME_BYTES`].
    #[error("frame of {0} bytes exceeds the {MAX_FRAME_BYTES}-byte limit")]
    TooLarge(usize),
    /// Not JSON, or not an object with a known `type`.
    #[error("malformed frame: {0}")]
    Malformed(String),
    /// A well-formed frame whose `type` we do not know.
    #[error("unknown message type {0:?}")]
    UnknownType(String),
    /// A field breaks a bound or a shape rule.
    #[error("invalid field: {0}")]
    Invalid(String),
}

impl Message {
    /// A frame with only a type.
    pub fn new(kind: MessageType) -> Self {
        Self {
            kind,
            src: None,
            dst: None,
            payload: None,
        }
    }

    /// A frame addressed to `dst` carrying `payload`.
    pub fn to(kind: MessageType, dst: impl Into<String>, payload: Option<Value>) -> Self {
        Self {
            kind,
            src: None,
            dst: Some(dst.into()),
            payload,
        }
    }

    /// `{"type":"ERROR","payload":{"msg":...}}`, as the server sends it.
    pub fn error(msg: &str) -> Self {
        Self {
            kind: MessageType::Error,
            src: None,
            dst: None,
            payload: Some(serde_json::json!({ "msg": msg })),
        }
    }

    /// `payload.msg` of an ERROR / ID-TAKEN frame, if present.
    pub fn error_msg(&self) -> Option<&str> {
        self.payload.as_ref()?.get("msg")?.as_str()
    }

    /// Parses one text frame, enforcing the size bound and the ID bounds.
    pub fn parse(text: &str) -> Result<Self, ProtocolError> {
        if text.len() > MAX_FRAME_BYTES {
            return Err(ProtocolError::TooLarge(text.len()));
        }
        let value: Value =
            serde_json::from_str(text).map_err(|e| ProtocolError::Malformed(e.to_string()))?;
        let kind = value
            .get("type")
            .and_then(Value::as_str)
            .ok_or_else(|| ProtocolError::Malformed("missing string field \"type\"".into()))?;
        let kind_owned = kind.to_owned();
        let msg: Message = serde_json::from_value(value).map_err(|e| {
            if e.to_string().contains("unknown variant") {
                ProtocolError::UnknownType(kind_owned)
            } else {
                ProtocolError::Malformed(e.to_string())
            }
        })?;
        for id in [&msg.src, &msg.dst].into_iter().flatten() {
            if !is_valid_id(id) {
                return Err(ProtocolError::Invalid(format!("bad peer id {id:?}")));
            }
        }
        Ok(msg)
    }

    /// Serializes to the JSON text sent on the wire.
    pub fn to_text(&self) -> String {
        serde_json::to_string(self).expect("a Message always serializes")
    }
}

/// PeerJS's ID rule (`/^[A-Za-z0-9]+(?:[ _-][A-Za-z0-9]+)*$/`) plus a length bound.
pub fn is_valid_id(id: &str) -> bool {
    if id.is_empty() || id.len() > MAX_ID_LEN {
        return false;
    }
    let mut prev_sep = true; // must start with an alphanumeric
    for c in id.chars() {
        let sep = matches!(c, ' ' | '_' | '-');
        if sep {
            if prev_sep {
                return false;
            }
        } else if !c.is_ascii_alphanumeric() {
            return false;
        }
        prev_sep = sep;
    }
    !prev_sep
}

/// Tells server-side throttling apart from other ERROR messages: the stock server says
/// "Server has reached its concurrent user limit"; hosted servers say "rate limit" and the like.
pub fn is_throttle_error(msg: &str) -> bool {
    let m = msg.to_ascii_lowercase();
    m.contains("limit") || m.contains("too many") || m.contains("throttl")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_captured_peerjs_frames() {
        let offer = r#"{"type":"OFFER","src":"abc","dst":"def","payload":{"sdp":{"type":"offer","sdp":"v=0"},"type":"data","connectionId":"dc_test123","metadata":null,"label":"dc_test123","reliable":true,"serialization":"binary"}}"#;
        let m = Message::parse(offer).unwrap();
        assert_eq!(m.kind, MessageType::Offer);
        assert_eq!(m.src.as_deref(), Some("abc"));
        assert_eq!(m.payload.as_ref().unwrap()["connectionId"], "dc_test123");
        // Relaying keeps the payload byte-for-byte equivalent.
        let back: Value = serde_json::from_str(&m.to_text()).unwrap();
        assert_eq!(back, serde_json::from_str::<Value>(offer).unwrap());

        let taken =
            Message::parse(r#"{"type":"ID-TAKEN","payload":{"msg":"ID is taken"}}"#).unwrap();
        assert_eq!(taken.kind, MessageType::IdTaken);
        assert_eq!(taken.error_msg(), Some("ID is taken"));
        assert_eq!(
            Message::parse(r#"{"type":"INVALID-KEY"}"#).unwrap().kind,
            MessageType::InvalidKey
        );
        assert_eq!(
            Message::new(MessageType::Heartbeat).to_text(),
            r#"{"type":"HEARTBEAT"}"#
        );
    }

    #[test]
    fn rejects_bad_frames_without_panicking() {
        assert!(matches!(
            Message::parse("not json"),
            Err(ProtocolError::Malformed(_))
        ));
        assert!(matches!(
            Message::parse("[1,2]"),
            Err(ProtocolError::Malformed(_))
        ));
        assert!(matches!(
            Message::parse(r#"{"type":7}"#),
            Err(ProtocolError::Malformed(_))
        ));
        assert_eq!(
            Message::parse(r#"{"type":"NOPE"}"#),
            Err(ProtocolError::UnknownType("NOPE".into()))
        );
        assert!(matches!(
            Message::parse(r#"{"type":"OFFER","dst":"a b  c"}"#),
            Err(ProtocolError::Invalid(_))
        ));
        let big = format!(
            r#"{{"type":"OFFER","payload":"{}"}}"#,
            "x".repeat(MAX_FRAME_BYTES)
        );
        assert!(matches!(
            Message::parse(&big),
            Err(ProtocolError::TooLarge(_))
        ));
    }

    #[test]
    fn id_rule_matches_peerjs() {
        for ok in ["abc", "peerns2-0123abcd", "a_b-c d", "X"] {
            assert!(is_valid_id(ok), "{ok}");
        }
        for bad in [
            "",
            "-a",
            "a-",
            "a--b",
            "a/b",
            "ä",
            &"a".repeat(MAX_ID_LEN + 1),
        ] {
            assert!(!is_valid_id(bad), "{bad}");
        }
    }

    #[test]
    fn throttle_errors_are_recognised() {
        assert!(is_throttle_error(
            "Server has reached its concurrent user limit"
        ));
        assert!(!is_throttle_error("Invalid key provided"));
    }
}
