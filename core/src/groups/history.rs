//! Version vectors and the history the engine stores accepted messages in. The engine only
//! ever inserts an author's messages contiguously (seq `n` after `n - 1`), so a version vector
//! (author → highest seq) describes exactly what a node holds.

use std::collections::BTreeMap;

use super::log::MAX_LOG_ENTRIES;
use super::message::SignedMessage;
use crate::discovery::wire::{Reader, WireError, Writer};
use crate::identity::Fingerprint;

/// Most authors a version vector may name (every author was invited by a log entry).
pub const MAX_AUTHORS: usize = MAX_LOG_ENTRIES;

/// Author → highest contiguous seq held (absent = 0).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VersionVector(pub BTreeMap<Fingerprint, u64>);

impl VersionVector {
    /// The seq held for `author`.
    pub fn get(&self, author: &Fingerprint) -> u64 {
        self.0.get(author).copied().unwrap_or(0)
    }

    /// Sets the seq of `author` (0 removes it).
    pub fn set(&mut self, author: Fingerprint, seq: u64) {
        if seq == 0 {
            self.0.remove(&author);
        } else {
            self.0.insert(author, seq);
        }
    }

    /// Whether `other` holds something we do not.
    pub fn lacks_from(&self, other: &VersionVector) -> bool {
        other.0.iter().any(|(a, s)| *s > self.get(a))
    }

    /// Total messages described.
    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }

    pub(crate) fn encode_into(&self, w: &mut Writer) {
        let n = self.0.len().min(MAX_AUTHORS);
        w.u16(u16::try_from(n).unwrap_or(u16::MAX));
        for (a, s) in self.0.iter().take(n) {
            w.raw(&a.0).u64(*s);
        }
    }

    pub(crate) fn decode_from(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let n = usize::from(r.u16()?);
        if n > MAX_AUTHORS {
            return Err(WireError::TooLong("version vector"));
        }
        let mut vv = BTreeMap::new();
        for _ in 0..n {
            let a = Fingerprint(r.array()?);
            let s = r.u64()?;
            if s == 0 || vv.insert(a, s).is_some() {
                return Err(WireError::Unknown("version vector entry"));
            }
        }
        Ok(Self(vv))
    }
}

/// Where accepted messages live: memory in the simulator, SQLite in a node.
pub trait History {
    /// Stores a verified message; the engine guarantees it is the author's next seq.
    fn insert(&mut self, msg: &SignedMessage);
    /// The author's messages after seq `after`, in seq order, at most `limit`.
    fn range(&self, author: &Fingerprint, after: u64, limit: usize) -> Vec<SignedMessage>;
    /// Deletes the author's messages after `cutoff` (it was removed or left).
    fn purge_above(&mut self, author: &Fingerprint, cutoff: u64);
    /// Per author: highest seq held and that message's Lamport clock.
    fn heads(&self) -> Vec<(Fingerprint, u64, u64)>;
}

/// History in memory.
#[derive(Debug, Default, Clone)]
pub struct MemHistory {
    by_author: BTreeMap<Fingerprint, Vec<SignedMessage>>,
}

impl MemHistory {
    /// Every message in display order.
    pub fn ordered(&self) -> Vec<SignedMessage> {
        let mut all: Vec<SignedMessage> = self.by_author.values().flatten().cloned().collect();
        all.sort_by_key(SignedMessage::order_key);
        all
    }

    /// Number of messages held.
    pub fn len(&self) -> usize {
        self.by_author.values().map(Vec::len).sum()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl History for MemHistory {
    fn insert(&mut self, msg: &SignedMessage) {
        let v = self.by_author.entry(msg.author_fp()).or_default();
        debug_assert_eq!(v.len() as u64 + 1, msg.msg.seq);
        v.push(msg.clone());
    }

    fn range(&self, author: &Fingerprint, after: u64, limit: usize) -> Vec<SignedMessage> {
        let Some(v) = self.by_author.get(author) else {
            return vec![];
        };
        let start = usize::try_from(after).unwrap_or(usize::MAX).min(v.len());
        v[start..].iter().take(limit).cloned().collect()
    }

    fn purge_above(&mut self, author: &Fingerprint, cutoff: u64) {
        if let Some(v) = self.by_author.get_mut(author) {
            v.truncate(usize::try_from(cutoff).unwrap_or(usize::MAX));
        }
    }

    fn heads(&self) -> Vec<(Fingerprint, u64, u64)> {
        self.by_author
            .iter()
            .filter_map(|(a, v)| v.last().map(|m| (*a, m.msg.seq, m.msg.lamport)))
            .collect()
    }
}
