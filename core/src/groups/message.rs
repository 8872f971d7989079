//! Group messages: signed by their author, numbered per author without gaps, stamped with a
//! Lamport clock. Every member orders the same set of messages the same way (by
//! [`SignedMessage::order_key`]), whatever order the router delivered them in.

use super::GroupId;
use super::log::GroupState;
use crate::chat::wire::{MAX_MANIFEST, MAX_TEXT};
use crate::crypto::{self, SigItem, SigKey, sha256};
use crate::discovery::wire::{Reader, WireError, Writer};
use crate::identity::{Fingerprint, Identity};

/// Domain of a message signature.
const MSG_DOMAIN: &[u8] = b"peerns2/group-msg/v1\0";
/// Highest Lamport clock accepted (2^53: no overflow, exact in JSON numbers).
pub const MAX_LAMPORT: u64 = 1 << 53;
/// Longest encoded message, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 16 + 32 + 8 + 8 + 8 + 1 + 2 + MAX_TEXT + 64;

/// What a message carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// Text (UTF-8, at most [`MAX_TEXT`] bytes).
    Text(String),
    /// A signed file manifest (at most [`MAX_MANIFEST`] bytes).
    File(Vec<u8>),
}

/// The signed content of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMessage {
    /// The group.
    pub group: GroupId,
    /// The author's Ed25519 public key.
    pub author: [u8; 32],
    /// Position in the author's stream, from 1, without gaps.
    pub seq: u64,
    /// Lamport clock: above every message the author had seen, and above its previous one.
    pub lamport: u64,
    /// Author's clock, Unix ms (shown, never used for ordering).
    pub sent_ms: u64,
    /// Text or file.
    pub body: Body,
}

impl GroupMessage {
    fn encode(&self, w: &mut Writer) {
        w.raw(&self.group.0)
            .raw(&self.author)
            .u64(self.seq)
            .u64(self.lamport)
            .u64(self.sent_ms);
        match &self.body {
            Body::Text(t) => w.u8(1).str(t),
            Body::File(m) => w.u8(2).bytes(m),
        };
    }

    fn signed_bytes(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.raw(MSG_DOMAIN);
        self.encode(&mut w);
        w.0
    }
}

/// A message and its author's signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedMessage {
    /// The content.
    pub msg: GroupMessage,
    /// Ed25519 signature over the domain and the encoded content.
    pub sig: [u8; 64],
}

/// Why a message was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MsgError {
    /// The signature does not verify under the author key.
    #[error("bad signature")]
    BadSignature,
    /// The message names another group.
    #[error("message of another group")]
    WrongGroup,
    /// The author is not (or no longer) allowed to post this seq.
    #[error("author is not a member")]
    NotMember,
    /// Seq 0, or a Lamport clock out of range or not above the author's previous message.
    #[error("bad sequence or clock")]
    BadClock,
    /// A Lamport clock far above every message the receiving router holds (it would use up
    /// the clock's range for everyone).
    #[error("clock leaps too far ahead")]
    ClockLeap,
    /// Over a size bound.
    #[error("message too large")]
    TooLarge,
}

impl SignedMessage {
    /// Signs `msg` (its `author` must be `identity`'s key; it is set here).
    pub fn sign(identity: &Identity, mut msg: GroupMessage) -> Self {
        msg.author = identity.public_key().to_bytes();
        let sig = identity.sign(&msg.signed_bytes()).to_bytes();
        Self { msg, sig }
    }

    /// The author's fingerprint.
    pub fn author_fp(&self) -> Fingerprint {
        Fingerprint(sha256(&self.msg.author))
    }

    /// The message ID: the first 16 bytes of the hash of the signed bytes, as 32 hex
    /// characters. The same on every member.
    pub fn id(&self) -> String {
        let mut b = self.msg.signed_bytes();
        b.extend_from_slice(&self.sig);
        hex::encode(&sha256(&b)[..16])
    }

    /// The display order: by Lamport clock, then author, then seq.
    pub fn order_key(&self) -> (u64, Fingerprint, u64) {
        (self.msg.lamport, self.author_fp(), self.msg.seq)
    }

    /// Checks what does not depend on history and is not the signature: group, size, clock
    /// range and that the author may post this seq under `state`.
    pub fn check_fields(&self, group: &GroupId, state: &GroupState) -> Result<(), MsgError> {
        let m = &self.msg;
        if m.group != *group {
            return Err(MsgError::WrongGroup);
        }
        match &m.body {
            Body::Text(t) if t.len() > MAX_TEXT => return Err(MsgError::TooLarge),
            Body::File(b) if b.len() > MAX_MANIFEST => return Err(MsgError::TooLarge),
            _ => {}
        }
        if m.seq == 0 || m.lamport == 0 || m.lamport > MAX_LAMPORT {
            return Err(MsgError::BadClock);
        }
        if !state.may_author(&self.author_fp(), m.seq) {
            return Err(MsgError::NotMember);
        }
        Ok(())
    }

    /// The author's signature, by the rule every member applies alike, one at a time or in
    /// batches (decision 0017; `key` must be the decoding of `msg.author`).
    pub fn check_signature(&self, key: &SigKey) -> Result<(), MsgError> {
        debug_assert_eq!(key.as_bytes(), &self.msg.author);
        if crypto::verify(key, &self.msg.signed_bytes(), &self.sig) {
            Ok(())
        } else {
            Err(MsgError::BadSignature)
        }
    }

    /// Whether every signature of `msgs` (each with its author's decoded key) is good, in one
    /// batch check; `false` says only that one or more is not.
    pub fn signatures_hold(msgs: &[(&SignedMessage, &SigKey)]) -> bool {
        let bytes: Vec<Vec<u8>> = msgs.iter().map(|(m, _)| m.msg.signed_bytes()).collect();
        let items: Vec<SigItem<'_>> = msgs
            .iter()
            .zip(&bytes)
            .map(|((m, key), b)| SigItem {
                key,
                msg: b,
                sig: &m.sig,
            })
            .collect();
        crypto::verify_batch(&items)
    }

    /// Appends the encoding.
    pub(crate) fn encode_into(&self, w: &mut Writer) {
        self.msg.encode(w);
        w.raw(&self.sig);
    }

    /// The encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        self.encode_into(&mut w);
        w.0
    }

    /// Encoded size in bytes.
    pub fn encoded_len(&self) -> usize {
        let body = match &self.msg.body {
            Body::Text(t) => t.len(),
            Body::File(m) => m.len(),
        };
        16 + 32 + 24 + 1 + 2 + body + 64
    }

    /// Reads one message.
    pub(crate) fn decode_from(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let group = GroupId(r.array()?);
        let author = r.array()?;
        let seq = r.u64()?;
        let lamport = r.u64()?;
        let sent_ms = r.u64()?;
        let body = match r.u8()? {
            1 => Body::Text(r.str(MAX_TEXT, "text")?.to_owned()),
            2 => Body::File(r.bytes(MAX_MANIFEST, "manifest")?.to_vec()),
            _ => return Err(WireError::Unknown("body kind")),
        };
        Ok(Self {
            msg: GroupMessage {
                group,
                author,
                seq,
                lamport,
                sent_ms,
                body,
            },
            sig: r.array()?,
        })
    }

    /// Decodes one message (the whole input).
    pub fn decode(b: &[u8]) -> Result<Self, WireError> {
        if b.len() > MAX_MESSAGE_BYTES {
            return Err(WireError::TooLong("message"));
        }
        let mut r = Reader::new(b);
        let m = Self::decode_from(&mut r)?;
        r.finish()?;
        Ok(m)
    }
}
