//! Message encoding on a data connection, per [`Serialization`]: our versioned binary envelope
//! for native peers (`raw`), UTF-8 JSON in binary frames (`json`), and BinaryPack with PeerJS's
//! chunking (`binary`). Decoding is size-bounded and never panics.

use std::num::NonZeroU32;

use serde_json::Value;

use super::binarypack::{PackValue, pack, unpack};
use super::chunking::{Reassembler, ReassemblyLimits, chunk, is_close, needs_chunking};
use super::payload::Serialization;

/// Envelope version byte of `raw` frames.
pub const RAW_VERSION: u8 = 1;
const RAW_KIND_BYTES: u8 = 0;
const RAW_KIND_JSON: u8 = 1;
/// Largest message on a `raw` connection (one SCTP message; callers split larger data).
pub const MAX_RAW_MESSAGE: usize = 64 * 1024;
/// PeerJS refuses JSON messages of this size or more ("Message too big for JSON channel").
pub const MAX_JSON_MESSAGE: usize = 16_300;
/// Largest single frame accepted from a peer on any serialization.
pub const MAX_FRAME: usize = MAX_RAW_MESSAGE + 2;

/// An application message.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    /// Opaque bytes (ArrayBuffer / Uint8Array on the browser side).
    Bytes(Vec<u8>),
    /// A JSON value (object, string, number, ...).
    Json(Value),
}

/// Why a message could not be encoded or a frame decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// Larger than the serialization allows.
    #[error("message of {size} bytes exceeds the {limit}-byte limit of this connection")]
    TooBig {
        /// Message size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The serialization cannot carry this payload (bytes on a JSON connection).
    #[error("{0}")]
    Unsupported(&'static str),
    /// A malformed frame from the peer.
    #[error("malformed frame: {0}")]
    Malformed(String),
}

/// Encoder/decoder state of one connection.
pub struct Codec {
    serialization: Serialization,
    next_chunk_id: u32,
    reassembler: Reassembler,
    /// A lower bound on received frames and messages than the default (before authentication).
    limit: Option<usize>,
}

impl Codec {
    /// A codec for `serialization` (`binary-utf8` is refused at negotiation, not here).
    pub fn new(serialization: Serialization) -> Self {
        Self {
            serialization,
            next_chunk_id: 0,
            reassembler: Reassembler::new(ReassemblyLimits::default()),
            limit: None,
        }
    }

    /// Received frames and reassembled messages larger than `limit` bytes are refused (and
    /// at most one chunked message is in progress); `None` restores the defaults
    /// ([`MAX_FRAME`], [`ReassemblyLimits::default`]).
    pub fn set_limit(&mut self, limit: Option<usize>) {
        self.limit = limit;
        self.reassembler.set_limits(match limit {
            Some(max) => ReassemblyLimits {
                max_message_size: max,
                max_partials: 1,
            },
            None => ReassemblyLimits::default(),
        });
    }

    /// Encodes one message into the frames to send, in order.
    pub fn encode(&mut self, payload: &Payload) -> Result<Vec<Vec<u8>>, CodecError> {
        match self.serialization {
            Serialization::Raw => {
                let (kind, body) = match payload {
                    Payload::Bytes(b) => (RAW_KIND_BYTES, b.clone()),
                    Payload::Json(v) => (RAW_KIND_JSON, v.to_string().into_bytes()),
                };
                if body.len() > MAX_RAW_MESSAGE {
                    return Err(CodecError::TooBig {
                        size: body.len(),
                        limit: MAX_RAW_MESSAGE,
                    });
                }
                let mut frame = Vec::with_capacity(body.len() + 2);
                frame.extend_from_slice(&[RAW_VERSION, kind]);
                frame.extend_from_slice(&body);
                Ok(vec![frame])
            }
            Serialization::Json => {
                let Payload::Json(v) = payload else {
                    return Err(CodecError::Unsupported(
                        "a JSON connection cannot carry raw bytes",
                    ));
                };
                let text = v.to_string().into_bytes();
                if text.len() >= MAX_JSON_MESSAGE {
                    return Err(CodecError::TooBig {
                        size: text.len(),
                        limit: MAX_JSON_MESSAGE - 1,
                    });
                }
                Ok(vec![text])
            }
            Serialization::Binary | Serialization::BinaryUtf8 => {
                let value = match payload {
                    Payload::Bytes(b) => PackValue::Bin(b.clone()),
                    Payload::Json(v) => PackValue::from_json(v),
                };
                let packed = pack(&value);
                if !needs_chunking(packed.len()) {
                    return Ok(vec![packed]);
                }
                self.next_chunk_id = self.next_chunk_id.wrapping_add(1).max(1);
                let id = NonZeroU32::new(self.next_chunk_id).expect("never zero");
                Ok(chunk(id, &packed))
            }
        }
    }

    /// Decodes one received frame: `Ok(None)` while a chunked message is incomplete (or for a
    /// PeerJS close request, see [`Codec::is_close_request`]).
    pub fn decode(&mut self, frame: &[u8]) -> Result<Option<Payload>, CodecError> {
        let limit = self.limit.map_or(MAX_FRAME, |l| l.min(MAX_FRAME));
        if frame.len() > limit {
            return Err(CodecError::TooBig {
                size: frame.len(),
                limit,
            });
        }
        let malformed = |e: &dyn std::fmt::Display| CodecError::Malformed(e.to_string());
        match self.serialization {
            Serialization::Raw => match frame {
                [RAW_VERSION, RAW_KIND_BYTES, body @ ..] => Ok(Some(Payload::Bytes(body.to_vec()))),
                [RAW_VERSION, RAW_KIND_JSON, body @ ..] => serde_json::from_slice(body)
                    .map(|v| Some(Payload::Json(v)))
                    .map_err(|e| malformed(&e)),
                [v, k, ..] => Err(CodecError::Malformed(format!(
                    "unknown envelope version {v} kind {k}"
                ))),
                _ => Err(CodecError::Malformed(
                    "frame shorter than the envelope".into(),
                )),
            },
            Serialization::Json => serde_json::from_slice(frame)
                .map(|v| Some(Payload::Json(v)))
                .map_err(|e| malformed(&e)),
            Serialization::Binary | Serialization::BinaryUtf8 => {
                let value = unpack(frame).map_err(|e| malformed(&e))?;
                if is_close(&value) {
                    return Ok(None);
                }
                match self.reassembler.push(value).map_err(|e| malformed(&e))? {
                    None => Ok(None),
                    Some(PackValue::Bin(b)) => Ok(Some(Payload::Bytes(b))),
                    Some(v) => v
                        .to_json()
                        .map(|j| Some(Payload::Json(j)))
                        .map_err(|e| malformed(&e)),
                }
            }
        }
    }

    /// True if `frame` is PeerJS's in-band request to close the connection (binary only).
    pub fn is_close_request(&self, frame: &[u8]) -> bool {
        matches!(
            self.serialization,
            Serialization::Binary | Serialization::BinaryUtf8
        ) && unpack(frame).is_ok_and(|v| is_close(&v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn round_trip(ser: Serialization, p: Payload) {
        let (mut tx, mut rx) = (Codec::new(ser), Codec::new(ser));
        let frames = tx.encode(&p).unwrap();
        let mut out = None;
        for f in frames {
            out = rx.decode(&f).unwrap();
        }
        assert_eq!(out, Some(p), "{ser:?}");
    }

    #[test]
    fn every_serialization_round_trips() {
        let msg = json!({"seq": 7, "text": "héllo", "nested": [1, 2.5, null, true]});
        for ser in [
            Serialization::Raw,
            Serialization::Json,
            Serialization::Binary,
        ] {
            round_trip(ser, Payload::Json(msg.clone()));
        }
        round_trip(Serialization::Raw, Payload::Bytes(vec![0, 1, 2, 255]));
        round_trip(
            Serialization::Binary,
            Payload::Bytes((0..50_000u32).map(|i| i as u8).collect()),
        );
    }

    #[test]
    fn large_binary_messages_are_chunked_like_peerjs() {
        let mut c = Codec::new(Serialization::Binary);
        let frames = c.encode(&Payload::Bytes(vec![7; 40_000])).unwrap();
        assert_eq!(frames.len(), 3);
        assert!(frames.iter().all(|f| f.len() <= 16_300 + 64));
    }

    #[test]
    fn json_frames_are_bare_utf8_json() {
        let mut c = Codec::new(Serialization::Json);
        assert_eq!(
            c.encode(&Payload::Json(json!({"a":1}))).unwrap(),
            [br#"{"a":1}"#.to_vec()]
        );
        assert!(matches!(
            c.encode(&Payload::Bytes(vec![1])),
            Err(CodecError::Unsupported(_))
        ));
        let big = Payload::Json(json!("x".repeat(MAX_JSON_MESSAGE)));
        assert!(matches!(c.encode(&big), Err(CodecError::TooBig { .. })));
    }

    #[test]
    fn a_limit_bounds_frames_and_reassembly_until_lifted() {
        let small = Payload::Bytes(vec![4; 100]);
        for (ser, big) in [
            (Serialization::Raw, Payload::Bytes(vec![3; MAX_RAW_MESSAGE])),
            (Serialization::Binary, Payload::Bytes(vec![3; 40_000])),
        ] {
            let (mut tx, mut rx) = (Codec::new(ser), Codec::new(ser));
            rx.set_limit(Some(4096));
            for f in tx.encode(&big).unwrap() {
                assert!(
                    matches!(rx.decode(&f), Err(CodecError::TooBig { limit: 4096, .. })),
                    "{ser:?}"
                );
            }
            for f in tx.encode(&small).unwrap() {
                assert_eq!(rx.decode(&f).unwrap(), Some(small.clone()), "{ser:?}");
            }
            rx.set_limit(None);
            let mut out = None;
            for f in tx.encode(&big).unwrap() {
                out = rx.decode(&f).unwrap();
            }
            assert_eq!(out, Some(big), "{ser:?}");
        }
        // Small chunks that announce more than the limit are refused before they are kept.
        let mut rx = Codec::new(Serialization::Binary);
        rx.set_limit(Some(4096));
        let key = |k: &str| PackValue::Str(k.to_owned());
        let chunk = pack(&PackValue::Map(vec![
            (key("__peerData"), PackValue::Int(1)),
            (key("n"), PackValue::Int(0)),
            (key("data"), PackValue::Bin(vec![0; 1000])),
            (key("total"), PackValue::Int(4000)),
        ]));
        assert!(matches!(rx.decode(&chunk), Err(CodecError::Malformed(_))));
    }

    #[test]
    fn json_numbers_keep_their_exact_value() {
        // Found by the `codec` fuzz target (fuzz/corpus/codec/float-roundtrip): serde_json's
        // default float parsing is off by one ULP for some inputs, so a number as JS prints it
        // (shortest exact form) arrived changed, and re-serialized JSON did not parse back.
        let mut rx = Codec::new(Serialization::Json);
        let decoded = rx.decode(b"[9.111119111111119e37]").unwrap();
        assert_eq!(
            decoded,
            Some(Payload::Json(json!([9.111119111111119e37_f64])))
        );
        let first = rx
            .decode(b"91111191111111191911111911911111111111")
            .unwrap();
        let Some(payload) = first else {
            panic!("a JSON number decodes");
        };
        round_trip(Serialization::Json, payload);
    }

    #[test]
    fn bad_frames_are_errors_not_panics() {
        let mut raw = Codec::new(Serialization::Raw);
        assert!(raw.decode(&[]).is_err());
        assert!(raw.decode(&[9, 0, 1]).is_err());
        assert!(raw.decode(&[RAW_VERSION, RAW_KIND_JSON, b'{']).is_err());
        assert!(raw.decode(&vec![0; MAX_FRAME + 1]).is_err());
        assert!(
            raw.encode(&Payload::Bytes(vec![0; MAX_RAW_MESSAGE + 1]))
                .is_err()
        );
        let mut json = Codec::new(Serialization::Json);
        assert!(json.decode(b"\xff\xfe").is_err());
        let mut bin = Codec::new(Serialization::Binary);
        assert!(bin.decode(&[0xd9, 0xff, 0xff, 0xff, 0xff]).is_err());
    }
}
