//! How many refused requests the audit log takes per sender, sans-IO (time is an input): a
//! token bucket of [`BURST`] rows refilled at [`PER_S`] a second. A refusal beyond it is only
//! counted; the sender's next refusal written says how many were not. So a contact (a Trusted
//! one refused every request, or any sender of malformed frames) cannot flood the log, which
//! keeps its last rows only, and push out what was served.

use std::collections::HashMap;

use super::guard::Bucket;
use crate::identity::Fingerprint;

/// Refusals written at once per sender.
pub const BURST: u32 = 20;
/// Refusals written per second per sender on average.
pub const PER_S: u32 = 1;
/// Senders tracked at once (the least recently refused is forgotten).
const MAX_SENDERS: usize = 64;

#[derive(Debug, Clone, Copy)]
struct Sender {
    bucket: Bucket,
    /// When it was last refused (the least recent is forgotten first).
    refused_ms: u64,
    not_written: u64,
}

/// The refusals of all senders.
#[derive(Debug, Default)]
pub struct Refusals {
    senders: HashMap<Fingerprint, Sender>,
}

impl Refusals {
    /// A refusal from `from` at `now_ms`: `Some(n)` to write it (after `n` that were not),
    /// `None` to count it only.
    pub fn admit(&mut self, from: &Fingerprint, now_ms: u64) -> Option<u64> {
        if !self.senders.contains_key(from) && self.senders.len() >= MAX_SENDERS {
            let oldest = self
                .senders
                .iter()
                .min_by_key(|(_, s)| s.refused_ms)
                .map(|(k, _)| *k);
            if let Some(k) = oldest {
                self.senders.remove(&k);
            }
        }
        let s = self.senders.entry(*from).or_insert(Sender {
            bucket: Bucket::full(BURST, now_ms),
            refused_ms: now_ms,
            not_written: 0,
        });
        s.refused_ms = s.refused_ms.max(now_ms);
        if !s.bucket.refill(now_ms, PER_S, BURST) {
            s.not_written += 1;
            return None;
        }
        s.bucket.take();
        Some(std::mem::take(&mut s.not_written))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_beyond_the_burst_are_counted_and_told_with_the_next_written() {
        let mut r = Refusals::default();
        let (a, b) = (Fingerprint([1; 32]), Fingerprint([2; 32]));
        let now = 1_000_000;
        for _ in 0..BURST {
            assert_eq!(r.admit(&a, now), Some(0));
        }
        for _ in 0..500 {
            assert_eq!(r.admit(&a, now), None);
        }
        // Another sender is not held back.
        assert_eq!(r.admit(&b, now), Some(0));
        // A second later one more is written, saying how many were not.
        assert_eq!(r.admit(&a, now + 1000), Some(500));
        assert_eq!(r.admit(&a, now + 1000), None);
        assert_eq!(r.admit(&a, now + 2000), Some(1));
    }

    #[test]
    fn memory_is_bounded() {
        let mut r = Refusals::default();
        for i in 0..200u8 {
            r.admit(&Fingerprint([i; 32]), u64::from(i));
        }
        assert_eq!(r.senders.len(), MAX_SENDERS);
    }
}
