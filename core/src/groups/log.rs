//! The membership log: a signed, hash-chained, append-only list of entries. Entry 0 creates
//! the group (self-signed by the creator); every later entry names the hash of the one before
//! it and is signed by an admin of the state it applies to (a `Leave` by the leaver itself).
//! Replaying the log from the start yields the current [`GroupState`]; nothing else does.

use std::collections::{BTreeMap, BTreeSet};

use ed25519_dalek::{Signature, VerifyingKey};

use super::GroupId;
use crate::crypto::sha256;
use crate::discovery::wire::{Reader, WireError, Writer};
use crate::identity::{Fingerprint, Identity};
use crate::text;

/// Domain of an entry's signature.
const ENTRY_DOMAIN: &[u8] = b"peerns2/group-entry/v1\0";
/// Domain of an entry's hash.
const HASH_DOMAIN: &[u8] = b"peerns2/group-entry-hash/v1\0";
/// Longest group name, in bytes.
pub const MAX_GROUP_NAME: usize = 128;
/// Most entries a log may hold.
pub const MAX_LOG_ENTRIES: usize = 1024;
/// Most members a group may have at once.
pub const MAX_MEMBERS: usize = 256;
/// Longest encoded entry, in bytes.
pub const MAX_ENTRY_BYTES: usize = 512;

/// A 32-byte entry hash.
pub type Hash = [u8; 32];

/// What an entry does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogOp {
    /// Creates the group; the signer is the creator and first admin.
    Create {
        /// Display name of the group.
        name: String,
    },
    /// Adds a member.
    Invite(Fingerprint),
    /// Removes a member; its messages after `cutoff` (its own seq) are refused and purged.
    Remove {
        /// Who.
        member: Fingerprint,
        /// Its last message that stays.
        cutoff: u64,
    },
    /// Makes a member an admin.
    Promote(Fingerprint),
    /// Makes an admin a plain member.
    Demote(Fingerprint),
    /// The signer leaves; its messages after `cutoff` are refused and purged.
    Leave {
        /// Its last message that stays.
        cutoff: u64,
    },
}

mod op_tag {
    pub const CREATE: u8 = 1;
    pub const INVITE: u8 = 2;
    pub const REMOVE: u8 = 3;
    pub const PROMOTE: u8 = 4;
    pub const DEMOTE: u8 = 5;
    pub const LEAVE: u8 = 6;
}

impl LogOp {
    fn encode(&self, w: &mut Writer) {
        match self {
            LogOp::Create { name } => w.u8(op_tag::CREATE).str(name),
            LogOp::Invite(fp) => w.u8(op_tag::INVITE).raw(&fp.0),
            LogOp::Remove { member, cutoff } => w.u8(op_tag::REMOVE).raw(&member.0).u64(*cutoff),
            LogOp::Promote(fp) => w.u8(op_tag::PROMOTE).raw(&fp.0),
            LogOp::Demote(fp) => w.u8(op_tag::DEMOTE).raw(&fp.0),
            LogOp::Leave { cutoff } => w.u8(op_tag::LEAVE).u64(*cutoff),
        };
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, WireError> {
        Ok(match r.u8()? {
            op_tag::CREATE => LogOp::Create {
                name: text::display_name(r.str(MAX_GROUP_NAME, "group name")?),
            },
            op_tag::INVITE => LogOp::Invite(Fingerprint(r.array()?)),
            op_tag::REMOVE => LogOp::Remove {
                member: Fingerprint(r.array()?),
                cutoff: r.u64()?,
            },
            op_tag::PROMOTE => LogOp::Promote(Fingerprint(r.array()?)),
            op_tag::DEMOTE => LogOp::Demote(Fingerprint(r.array()?)),
            op_tag::LEAVE => LogOp::Leave { cutoff: r.u64()? },
            _ => return Err(WireError::Unknown("log op")),
        })
    }
}

/// The signed part of an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The group.
    pub group: GroupId,
    /// Position in the log, from 0.
    pub index: u32,
    /// Hash of entry `index - 1` (zeros for entry 0).
    pub prev: Hash,
    /// Signer's clock, Unix ms (informational).
    pub time_ms: u64,
    /// What it does.
    pub op: LogOp,
}

impl Entry {
    fn encode(&self, w: &mut Writer) {
        w.raw(&self.group.0)
            .u64(u64::from(self.index))
            .raw(&self.prev)
            .u64(self.time_ms);
        self.op.encode(w);
    }

    fn signed_bytes(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.raw(ENTRY_DOMAIN);
        self.encode(&mut w);
        w.0
    }
}

/// An entry with its signer's public key and signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedEntry {
    /// The entry.
    pub entry: Entry,
    /// The signer's Ed25519 public key.
    pub signer: [u8; 32],
    /// Signature over the domain and the encoded entry.
    pub sig: [u8; 64],
}

impl SignedEntry {
    /// Signs `entry` with `identity`.
    pub fn sign(identity: &Identity, entry: Entry) -> Self {
        let sig = identity.sign(&entry.signed_bytes()).to_bytes();
        Self {
            entry,
            signer: identity.public_key().to_bytes(),
            sig,
        }
    }

    /// The signer's fingerprint.
    pub fn signer_fp(&self) -> Fingerprint {
        Fingerprint(sha256(&self.signer))
    }

    /// Whether the signature verifies under the signer's key (strict Ed25519).
    pub fn signature_ok(&self) -> bool {
        let Ok(key) = VerifyingKey::from_bytes(&self.signer) else {
            return false;
        };
        key.verify_strict(
            &self.entry.signed_bytes(),
            &Signature::from_bytes(&self.sig),
        )
        .is_ok()
    }

    /// The hash the next entry must name.
    pub fn hash(&self) -> Hash {
        let mut w = Writer::default();
        w.raw(HASH_DOMAIN);
        self.entry.encode(&mut w);
        w.raw(&self.signer).raw(&self.sig);
        sha256(&w.0)
    }

    /// Appends the encoding.
    pub(crate) fn encode_into(&self, w: &mut Writer) {
        self.entry.encode(w);
        w.raw(&self.signer).raw(&self.sig);
    }

    /// The encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        self.encode_into(&mut w);
        w.0
    }

    /// Reads one entry.
    pub(crate) fn decode_from(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let group = GroupId(r.array()?);
        let index = u32::try_from(r.u64()?).map_err(|_| WireError::TooLong("entry index"))?;
        let prev = r.array()?;
        let time_ms = r.u64()?;
        let op = LogOp::decode(r)?;
        Ok(Self {
            entry: Entry {
                group,
                index,
                prev,
                time_ms,
                op,
            },
            signer: r.array()?,
            sig: r.array()?,
        })
    }

    /// Decodes one entry (the whole input).
    pub fn decode(b: &[u8]) -> Result<Self, WireError> {
        if b.len() > MAX_ENTRY_BYTES {
            return Err(WireError::TooLong("entry"));
        }
        let mut r = Reader::new(b);
        let e = Self::decode_from(&mut r)?;
        r.finish()?;
        Ok(e)
    }
}

/// Why an entry was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogError {
    /// The signature does not verify.
    #[error("bad signature")]
    BadSignature,
    /// The entry belongs to another group.
    #[error("entry of another group")]
    WrongGroup,
    /// The entry is not at the log's next position or does not name its head.
    #[error("entry does not chain on the head (index {index}, log length {len})")]
    NotOnHead {
        /// The entry's index.
        index: u32,
        /// Our log length.
        len: usize,
    },
    /// The first entry must be a `Create` by its signer (and only the first).
    #[error("bad create entry")]
    BadCreate,
    /// The signer may not do this.
    #[error("signer is not allowed to do this")]
    NotAllowed,
    /// The op does not fit the state (inviting a member, removing a stranger, …).
    #[error("entry does not apply: {0}")]
    Invalid(&'static str),
    /// A bound was hit.
    #[error("log full")]
    Full,
}

/// Membership after some prefix of the log.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GroupState {
    /// Group name.
    pub name: String,
    /// The creator.
    pub creator: Option<Fingerprint>,
    /// Current members with the log index they joined at (the creator: 0).
    pub members: BTreeMap<Fingerprint, u32>,
    /// Current admins (all members).
    pub admins: BTreeSet<Fingerprint>,
    /// Former members (removed or left) with the cutoff of their messages.
    pub gone: BTreeMap<Fingerprint, u64>,
    /// An open room ([`Log::open_room`]): everyone is a member, nobody an admin, and the log
    /// never grows.
    pub open: bool,
}

impl GroupState {
    /// Whether `fp` is a current member.
    pub fn is_member(&self, fp: &Fingerprint) -> bool {
        self.open || self.members.contains_key(fp)
    }

    /// Whether `fp` is a current admin.
    pub fn is_admin(&self, fp: &Fingerprint) -> bool {
        self.admins.contains(fp)
    }

    /// Whether message `seq` of `author` is allowed: the author is a member, or was one and
    /// `seq` is within its cutoff.
    pub fn may_author(&self, author: &Fingerprint, seq: u64) -> bool {
        self.is_member(author) || self.gone.get(author).is_some_and(|c| seq <= *c)
    }

    /// Applies one verified entry by `signer` at `index`.
    fn apply(&mut self, signer: Fingerprint, index: u32, op: &LogOp) -> Result<(), LogError> {
        if self.open {
            return Err(LogError::Invalid("an open room has no membership entries"));
        }
        let admin = self.is_admin(&signer);
        match op {
            LogOp::Create { .. } => return Err(LogError::BadCreate),
            LogOp::Invite(fp) => {
                if !admin {
                    return Err(LogError::NotAllowed);
                }
                if self.is_member(fp) || self.gone.contains_key(fp) {
                    return Err(LogError::Invalid("already a member or a former member"));
                }
                if self.members.len() >= MAX_MEMBERS {
                    return Err(LogError::Full);
                }
                self.members.insert(*fp, index);
            }
            LogOp::Remove { member, cutoff } => {
                if !admin {
                    return Err(LogError::NotAllowed);
                }
                if !self.is_member(member) || *member == signer {
                    return Err(LogError::Invalid("remove of a non-member or of oneself"));
                }
                self.depart(*member, *cutoff);
            }
            LogOp::Promote(fp) => {
                if !admin {
                    return Err(LogError::NotAllowed);
                }
                if !self.is_member(fp) || self.is_admin(fp) {
                    return Err(LogError::Invalid("promote of a non-member or an admin"));
                }
                self.admins.insert(*fp);
            }
            LogOp::Demote(fp) => {
                if !admin {
                    return Err(LogError::NotAllowed);
                }
                if !self.is_admin(fp) || self.admins.len() == 1 {
                    return Err(LogError::Invalid("demote of a non-admin or the last admin"));
                }
                self.admins.remove(fp);
            }
            LogOp::Leave { cutoff } => {
                if !self.is_member(&signer) {
                    return Err(LogError::NotAllowed);
                }
                self.depart(signer, *cutoff);
            }
        }
        Ok(())
    }

    /// `fp` leaves; if no admin is left, the earliest-joined remaining member becomes one.
    fn depart(&mut self, fp: Fingerprint, cutoff: u64) {
        self.members.remove(&fp);
        self.admins.remove(&fp);
        self.gone.insert(fp, cutoff);
        if self.admins.is_empty()
            && let Some((next, _)) = self.members.iter().min_by_key(|(fp, at)| (**at, **fp))
        {
            self.admins.insert(*next);
        }
    }
}

/// A verified log and the state it yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Log {
    group: GroupId,
    entries: Vec<SignedEntry>,
    hashes: Vec<Hash>,
    state: GroupState,
}

impl Log {
    /// Starts a new group: a fresh random ID and the `Create` entry signed by `creator`.
    pub fn create(creator: &Identity, name: &str, now_ms: u64) -> Self {
        Self::create_with_id(GroupId::random(), creator, name, now_ms)
    }

    /// Like [`Log::create`] with a given ID (simulator, tests).
    pub fn create_with_id(group: GroupId, creator: &Identity, name: &str, now_ms: u64) -> Self {
        let entry = SignedEntry::sign(
            creator,
            Entry {
                group,
                index: 0,
                prev: [0; 32],
                time_ms: now_ms,
                op: LogOp::Create {
                    name: text::display_name(name),
                },
            },
        );
        Self::from_create(entry).expect("a fresh create entry verifies")
    }

    /// The log of an open room (the meeting room for everyone nearby): one entry that every
    /// node computes from the ID alone (no signer: an all-zero key and signature, never
    /// verified), so nobody can hand out another first entry for the same room. Everyone is a
    /// member; [`Log::append`] refuses every entry. Never stored, never sent as a whole log
    /// (engines of open rooms refuse log pages).
    pub fn open_room(group: GroupId) -> Self {
        let entry = SignedEntry {
            entry: Entry {
                group,
                index: 0,
                prev: [0; 32],
                time_ms: 0,
                op: LogOp::Create {
                    name: String::new(),
                },
            },
            signer: [0; 32],
            sig: [0; 64],
        };
        Self {
            group,
            hashes: vec![entry.hash()],
            entries: vec![entry],
            state: GroupState {
                open: true,
                ..GroupState::default()
            },
        }
    }

    /// Whether this is an open room's log.
    pub fn is_open(&self) -> bool {
        self.state.open
    }

    /// A log from its verified first entry.
    pub fn from_create(entry: SignedEntry) -> Result<Self, LogError> {
        let LogOp::Create { name } = &entry.entry.op else {
            return Err(LogError::BadCreate);
        };
        if entry.entry.index != 0 || entry.entry.prev != [0; 32] {
            return Err(LogError::BadCreate);
        }
        if !entry.signature_ok() {
            return Err(LogError::BadSignature);
        }
        let creator = entry.signer_fp();
        let state = GroupState {
            name: name.clone(),
            creator: Some(creator),
            members: BTreeMap::from([(creator, 0)]),
            admins: BTreeSet::from([creator]),
            gone: BTreeMap::new(),
            open: false,
        };
        Ok(Self {
            group: entry.entry.group,
            hashes: vec![entry.hash()],
            entries: vec![entry],
            state,
        })
    }

    /// Verifies a whole log from its first entry.
    pub fn from_entries(entries: &[SignedEntry]) -> Result<Self, LogError> {
        let (first, rest) = entries.split_first().ok_or(LogError::BadCreate)?;
        let mut log = Self::from_create(first.clone())?;
        for e in rest {
            log.append(e.clone())?;
        }
        Ok(log)
    }

    /// Verifies `entry` on the head and appends it.
    pub fn append(&mut self, entry: SignedEntry) -> Result<(), LogError> {
        let e = &entry.entry;
        if e.group != self.group {
            return Err(LogError::WrongGroup);
        }
        if self.state.open {
            return Err(LogError::Invalid("an open room has no membership entries"));
        }
        if usize::try_from(e.index).ok() != Some(self.entries.len()) || e.prev != self.head() {
            return Err(LogError::NotOnHead {
                index: e.index,
                len: self.entries.len(),
            });
        }
        if self.entries.len() >= MAX_LOG_ENTRIES {
            return Err(LogError::Full);
        }
        if !entry.signature_ok() {
            return Err(LogError::BadSignature);
        }
        let mut state = self.state.clone();
        state.apply(entry.signer_fp(), e.index, &e.op)?;
        self.state = state;
        self.hashes.push(entry.hash());
        self.entries.push(entry);
        Ok(())
    }

    /// Signs `op` with `identity` on the current head (not appended).
    pub fn sign_next(&self, identity: &Identity, op: LogOp, now_ms: u64) -> SignedEntry {
        SignedEntry::sign(
            identity,
            Entry {
                group: self.group,
                index: u32::try_from(self.entries.len()).unwrap_or(u32::MAX),
                prev: self.head(),
                time_ms: now_ms,
                op,
            },
        )
    }

    /// The group.
    pub fn group(&self) -> GroupId {
        self.group
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Never true: a log holds at least its `Create` entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Hash of the last entry.
    pub fn head(&self) -> Hash {
        *self.hashes.last().expect("a log holds its create entry")
    }

    /// Hash of entry `index`.
    pub fn hash_at(&self, index: usize) -> Option<Hash> {
        self.hashes.get(index).copied()
    }

    /// The entries.
    pub fn entries(&self) -> &[SignedEntry] {
        &self.entries
    }

    /// The membership the log yields.
    pub fn state(&self) -> &GroupState {
        &self.state
    }

    /// Whether this log should replace `other` of the same group when they fork: the longer
    /// wins, then the lower head hash (every node decides the same).
    pub fn beats(&self, other: &Log) -> bool {
        (self.len(), std::cmp::Reverse(self.head()))
            > (other.len(), std::cmp::Reverse(other.head()))
    }
}

#[cfg(test)]
#[path = "log_tests.rs"]
mod tests;
