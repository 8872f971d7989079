//! Invite links: `peerns2-group:` followed by base64url (no padding) of the group's `Create`
//! entry and the admin-signed `Invite` entry naming the invitee. The entries carry the
//! signatures, so the link needs no other: whoever holds it learns the group's ID and name,
//! and only the named invitee can use it (a node refuses a link naming someone else, and a
//! router admits only fingerprints its log makes members).

use super::GroupId;
use super::log::{Log, LogError, LogOp, SignedEntry};
use crate::discovery::wire::{Reader, WireError, Writer};
use crate::identity::Fingerprint;

/// Scheme of an invite link.
pub const SCHEME: &str = "peerns2-group:";
/// Longest invite link, in characters.
pub const MAX_LINK_CHARS: usize = 2048;
const LINK_VERSION: u8 = 1;

/// Why an invite link was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InviteError {
    /// Not a `peerns2-group:` link, bad encoding, or too long.
    #[error("not a group invite link: {0}")]
    Malformed(String),
    /// An entry does not verify.
    #[error("invite does not verify: {0}")]
    Invalid(#[from] LogError),
    /// The link names someone else.
    #[error("this invite is for another person")]
    NotForUs,
}

impl From<WireError> for InviteError {
    fn from(e: WireError) -> Self {
        Self::Malformed(e.to_string())
    }
}

/// A decoded invite link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InviteLink {
    /// The group's first entry.
    pub create: SignedEntry,
    /// The `Invite` entry naming the invitee.
    pub invite: SignedEntry,
}

impl InviteLink {
    /// A link for entry `invite` of `log` (which must be an `Invite`).
    pub fn new(log: &Log, invite: &SignedEntry) -> Result<Self, InviteError> {
        if !matches!(invite.entry.op, LogOp::Invite(_)) {
            return Err(InviteError::Malformed("not an invite entry".into()));
        }
        Ok(Self {
            create: log.entries()[0].clone(),
            invite: invite.clone(),
        })
    }

    /// The group.
    pub fn group(&self) -> GroupId {
        self.create.entry.group
    }

    /// Who it invites.
    pub fn invitee(&self) -> Fingerprint {
        match self.invite.entry.op {
            LogOp::Invite(fp) => fp,
            _ => Fingerprint([0; 32]),
        }
    }

    /// Checks both signatures, that both entries are of one group, and that the link names
    /// `me`. Returns the group's one-entry log (the rest arrives when online).
    pub fn verify_for(&self, me: &Fingerprint) -> Result<Log, InviteError> {
        let log = Log::from_create(self.create.clone())?;
        let LogOp::Invite(invitee) = self.invite.entry.op else {
            return Err(InviteError::Malformed("not an invite entry".into()));
        };
        if self.invite.entry.group != log.group() || self.invite.entry.index == 0 {
            return Err(InviteError::Invalid(LogError::WrongGroup));
        }
        if !self.invite.signature_ok() {
            return Err(InviteError::Invalid(LogError::BadSignature));
        }
        if invitee != *me {
            return Err(InviteError::NotForUs);
        }
        Ok(log)
    }

    /// The link text.
    pub fn encode(&self) -> String {
        let mut w = Writer::default();
        w.u8(LINK_VERSION);
        self.create.encode_into(&mut w);
        self.invite.encode_into(&mut w);
        format!("{SCHEME}{}", b64url::encode(&w.0))
    }

    /// Parses a link (structure only; see [`InviteLink::verify_for`]).
    pub fn decode(s: &str) -> Result<Self, InviteError> {
        let s = s.trim();
        if s.len() > MAX_LINK_CHARS {
            return Err(InviteError::Malformed("too long".into()));
        }
        let body = s
            .strip_prefix(SCHEME)
            .ok_or_else(|| InviteError::Malformed("wrong scheme".into()))?;
        let bytes =
            b64url::decode(body).ok_or_else(|| InviteError::Malformed("bad base64".into()))?;
        let mut r = Reader::new(&bytes);
        if r.u8()? != LINK_VERSION {
            return Err(InviteError::Malformed("unknown version".into()));
        }
        let create = SignedEntry::decode_from(&mut r)?;
        let invite = SignedEntry::decode_from(&mut r)?;
        r.finish()?;
        Ok(Self { create, invite })
    }
}

/// Base64url without padding (RFC 4648 §5).
mod b64url {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

    pub fn encode(b: &[u8]) -> String {
        let mut out = String::with_capacity(b.len().div_ceil(3) * 4);
        for chunk in b.chunks(3) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |n, (i, v)| n | u32::from(*v) << (16 - 8 * i));
            for i in 0..=chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            }
        }
        out
    }

    fn value(c: u8) -> Option<u32> {
        ALPHABET.iter().position(|a| *a == c).map(|p| p as u32)
    }

    pub fn decode(s: &str) -> Option<Vec<u8>> {
        let s = s.as_bytes();
        if s.len() % 4 == 1 {
            return None;
        }
        let mut out = Vec::with_capacity(s.len() * 3 / 4);
        for chunk in s.chunks(4) {
            let mut n = 0u32;
            for (i, c) in chunk.iter().enumerate() {
                n |= value(*c)? << (18 - 6 * i);
            }
            let bytes = chunk.len() - 1;
            for i in 0..bytes {
                out.push((n >> (16 - 8 * i)) as u8);
            }
            // Canonical: bits below the last byte must be zero.
            if (n & ((1 << (24 - 8 * bytes)) - 1)) != 0 {
                return None;
            }
        }
        Some(out)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn known_vectors_and_round_trip() {
            assert_eq!(encode(b""), "");
            assert_eq!(encode(b"f"), "Zg");
            assert_eq!(encode(b"fo"), "Zm8");
            assert_eq!(encode(b"foo"), "Zm9v");
            assert_eq!(encode(&[0xfb, 0xff]), "-_8");
            for n in 0..40u8 {
                let b: Vec<u8> = (0..n).map(|i| i.wrapping_mul(37)).collect();
                assert_eq!(decode(&encode(&b)), Some(b));
            }
            assert_eq!(decode("Zh"), None, "non-canonical trailing bits");
            assert_eq!(decode("Z"), None);
            assert_eq!(decode("Zm9v+"), None);
        }
    }
}
