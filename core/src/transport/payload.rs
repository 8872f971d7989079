//! The payloads of PeerJS's OFFER / ANSWER / CANDIDATE frames for data connections, shaped
//! exactly as peerjs 1.5.5 sends them, and the serializations a data connection may use.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Longest connection id we accept from a peer (`dc_` + random).
pub const MAX_CONNECTION_ID_LEN: usize = 64;
/// Longest data channel label we accept.
pub const MAX_LABEL_LEN: usize = 128;
/// Largest `metadata` value we accept, serialized.
pub const MAX_METADATA_BYTES: usize = 4096;

/// How messages on a data connection are encoded (PeerJS `serialization`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Serialization {
    /// Native↔native: our own versioned binary envelope, no base64.
    Raw,
    /// UTF-8 JSON in binary frames (PeerJS "json").
    Json,
    /// BinaryPack with PeerJS's 16,300-byte chunking (PeerJS "binary", its default).
    Binary,
    /// BinaryPack with UTF-8 strings (PeerJS "binary-utf8"); refused, it is deprecated.
    BinaryUtf8,
}

/// `payload.type`: a data connection or a media call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConnectionKind {
    /// DataConnection.
    Data,
    /// MediaConnection.
    Media,
}

/// `{type, sdp}` as `RTCSessionDescription` serializes in browsers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sdp {
    /// "offer" or "answer".
    #[serde(rename = "type")]
    pub kind: String,
    /// The session description.
    pub sdp: String,
}

/// OFFER payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OfferPayload {
    /// The offer.
    pub sdp: Sdp,
    /// Data or media.
    #[serde(rename = "type")]
    pub kind: ConnectionKind,
    /// `dc_…` for data, `mc_…` for media.
    pub connection_id: String,
    /// Application metadata (any JSON; `null` when absent).
    #[serde(default)]
    pub metadata: Value,
    /// Data channel label (defaults to the connection id in PeerJS).
    #[serde(default)]
    pub label: Option<String>,
    /// Ordered and reliable channel.
    #[serde(default)]
    pub reliable: Option<bool>,
    /// Message encoding.
    #[serde(default)]
    pub serialization: Option<Serialization>,
}

/// ANSWER payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AnswerPayload {
    /// The answer.
    pub sdp: Sdp,
    /// Data or media.
    #[serde(rename = "type")]
    pub kind: ConnectionKind,
    /// The connection this answers.
    pub connection_id: String,
}

/// A trickled ICE candidate as browsers serialize `RTCIceCandidateInit`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CandidateInit {
    /// `candidate:…` line (empty string = end of candidates).
    pub candidate: String,
    /// Media stream id.
    #[serde(default)]
    pub sdp_mid: Option<String>,
    /// Media line index.
    #[serde(default)]
    pub sdp_m_line_index: Option<u16>,
    /// ICE ufrag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username_fragment: Option<String>,
}

/// CANDIDATE payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CandidatePayload {
    /// The candidate.
    pub candidate: CandidateInit,
    /// Data or media.
    #[serde(rename = "type")]
    pub kind: ConnectionKind,
    /// The connection it belongs to.
    pub connection_id: String,
}

/// A payload that breaks a bound or a shape rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what}: {why}")]
pub struct PayloadError {
    what: &'static str,
    why: String,
}

fn invalid(what: &'static str, why: impl Into<String>) -> PayloadError {
    PayloadError {
        what,
        why: why.into(),
    }
}

pub(super) fn check_connection_id(id: &str) -> Result<(), PayloadError> {
    let ok = !id.is_empty()
        && id.len() <= MAX_CONNECTION_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(invalid("connectionId", format!("{id:?}")))
    }
}

/// Parses and bounds-checks a payload of type `T` from a signaling frame.
pub fn parse<T: serde::de::DeserializeOwned + Checked>(
    payload: Option<&Value>,
) -> Result<T, PayloadError> {
    let v = payload.ok_or_else(|| invalid("payload", "missing"))?;
    let parsed: T =
        serde_json::from_value(v.clone()).map_err(|e| invalid("payload", e.to_string()))?;
    parsed.check()?;
    Ok(parsed)
}

/// Bounds checks that serde cannot express.
pub trait Checked {
    /// Ok if every field is within bounds.
    fn check(&self) -> Result<(), PayloadError>;
}

impl Checked for OfferPayload {
    fn check(&self) -> Result<(), PayloadError> {
        check_connection_id(&self.connection_id)?;
        if self.sdp.kind != "offer" {
            return Err(invalid("sdp.type", &self.sdp.kind));
        }
        if self.label.as_ref().is_some_and(|l| l.len() > MAX_LABEL_LEN) {
            return Err(invalid("label", "too long"));
        }
        if self.metadata.to_string().len() > MAX_METADATA_BYTES {
            return Err(invalid("metadata", "too large"));
        }
        Ok(())
    }
}

impl Checked for AnswerPayload {
    fn check(&self) -> Result<(), PayloadError> {
        check_connection_id(&self.connection_id)?;
        if self.sdp.kind != "answer" {
            return Err(invalid("sdp.type", &self.sdp.kind));
        }
        Ok(())
    }
}

impl Checked for CandidatePayload {
    fn check(&self) -> Result<(), PayloadError> {
        check_connection_id(&self.connection_id)
    }
}

/// A fresh PeerJS-style data connection id: `dc_` + 10 random alphanumerics.
pub fn new_connection_id() -> String {
    connection_id_with("dc_")
}

/// A fresh PeerJS-style media connection id: `mc_` + 10 random alphanumerics.
pub fn new_media_connection_id() -> String {
    connection_id_with("mc_")
}

fn connection_id_with(prefix: &str) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let bytes = crate::crypto::random_bytes::<10>();
    let tail: String = bytes
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect();
    format!("{prefix}{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn captured_browser_offer_parses_and_round_trips() {
        let v = json!({"sdp":{"type":"offer","sdp":"v=0\r\n"},"type":"data","connectionId":"dc_test123",
            "metadata":null,"label":"dc_test123","reliable":true,"serialization":"binary"});
        let o: OfferPayload = parse(Some(&v)).unwrap();
        assert_eq!(o.serialization, Some(Serialization::Binary));
        assert_eq!(o.kind, ConnectionKind::Data);
        assert_eq!(serde_json::to_value(&o).unwrap(), v);
        let media = json!({"sdp":{"type":"offer","sdp":"v=0"},"type":"media","connectionId":"mc_x",
            "metadata":null,"label":null,"reliable":null,"serialization":null});
        assert_eq!(
            parse::<OfferPayload>(Some(&media)).unwrap().kind,
            ConnectionKind::Media
        );
        let cand = json!({"candidate":{"candidate":"candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host",
            "sdpMid":"0","sdpMLineIndex":0},"type":"data","connectionId":"dc_test123"});
        let c: CandidatePayload = parse(Some(&cand)).unwrap();
        assert_eq!(serde_json::to_value(&c).unwrap(), cand);
    }

    #[test]
    fn bad_payloads_are_refused() {
        let bad_id =
            json!({"sdp":{"type":"answer","sdp":""},"type":"data","connectionId":"dc_<script>"});
        assert!(parse::<AnswerPayload>(Some(&bad_id)).is_err());
        let wrong_kind =
            json!({"sdp":{"type":"offer","sdp":""},"type":"data","connectionId":"dc_a"});
        assert!(parse::<AnswerPayload>(Some(&wrong_kind)).is_err());
        assert!(parse::<AnswerPayload>(None).is_err());
        let big = json!({"sdp":{"type":"offer","sdp":""},"type":"data","connectionId":"dc_a",
            "metadata":"x".repeat(MAX_METADATA_BYTES)});
        assert!(parse::<OfferPayload>(Some(&big)).is_err());
    }

    #[test]
    fn connection_ids_look_like_peerjs() {
        let id = new_connection_id();
        assert!(id.starts_with("dc_") && id.len() == 13);
        assert!(check_connection_id(&id).is_ok());
        let mc = new_media_connection_id();
        assert!(mc.starts_with("mc_") && mc.len() == 13 && mc != id);
        assert!(check_connection_id(&mc).is_ok());
    }
}
