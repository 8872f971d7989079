//! Rate limit of incoming contact requests (sans-IO: time is an input). A source is both the
//! requester's fingerprint and the PeerJS ID it connected from: a new key on the same ID, or
//! the same key on new IDs, counts against the same budget. The limiter remembers only the
//! requests it let through in the last window, so its memory is bounded by the global cap.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::identity::Fingerprint;

/// Requests let through per source (fingerprint or PeerJS ID) per window.
pub const PER_SOURCE: usize = 3;
/// Requests let through from everyone together per window.
pub const GLOBAL: usize = 30;
/// The window.
pub const WINDOW: Duration = Duration::from_secs(60);

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Limited {
    /// This fingerprint or PeerJS ID asked too often.
    #[error("too many contact requests from you; try again in a minute")]
    Source,
    /// Too many requests from everyone.
    #[error("too many contact requests right now; try again in a minute")]
    Busy,
}

/// Sliding-window limiter of incoming contact requests.
#[derive(Debug)]
pub struct RequestLimiter {
    per_source: usize,
    global: usize,
    window: Duration,
    /// Requests let through within the window, oldest first (at most `global`).
    recent: VecDeque<(Instant, Fingerprint, String)>,
}

impl Default for RequestLimiter {
    fn default() -> Self {
        Self::new(PER_SOURCE, GLOBAL, WINDOW)
    }
}

impl RequestLimiter {
    /// A limiter letting `per_source` requests per source and `global` in all through per
    /// `window`.
    pub fn new(per_source: usize, global: usize, window: Duration) -> Self {
        Self {
            per_source,
            global,
            window,
            recent: VecDeque::with_capacity(global),
        }
    }

    /// Whether a request from `fp` arriving over `peer` at `now` may be handled; if so it is
    /// counted.
    pub fn check(&mut self, now: Instant, fp: &Fingerprint, peer: &str) -> Result<(), Limited> {
        while self
            .recent
            .front()
            .is_some_and(|(t, ..)| now.saturating_duration_since(*t) >= self.window)
        {
            self.recent.pop_front();
        }
        let from_source = self
            .recent
            .iter()
            .filter(|(_, f, p)| f == fp || p == peer)
            .count();
        if from_source >= self.per_source {
            return Err(Limited::Source);
        }
        if self.recent.len() >= self.global {
            return Err(Limited::Busy);
        }
        self.recent.push_back((now, *fp, peer.to_owned()));
        Ok(())
    }

    /// Requests remembered (for tests of the bound).
    pub fn len(&self) -> usize {
        self.recent.len()
    }

    /// Nothing remembered.
    pub fn is_empty(&self) -> bool {
        self.recent.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(n: u8) -> Fingerprint {
        Fingerprint([n; 32])
    }

    #[test]
    fn each_source_gets_a_few_per_window() {
        let mut l = RequestLimiter::default();
        let t0 = Instant::now();
        for _ in 0..PER_SOURCE {
            assert_eq!(l.check(t0, &fp(1), "id-1"), Ok(()));
        }
        assert_eq!(l.check(t0, &fp(1), "id-1"), Err(Limited::Source));
        // The same key from a new ID, or a new key from the same ID: the same source.
        assert_eq!(l.check(t0, &fp(1), "id-2"), Err(Limited::Source));
        assert_eq!(l.check(t0, &fp(2), "id-1"), Err(Limited::Source));
        // Others are not affected.
        assert_eq!(l.check(t0, &fp(3), "id-3"), Ok(()));
        // Refusals are not remembered; the window slides.
        assert_eq!(l.len(), PER_SOURCE + 1);
        let later = t0 + WINDOW;
        assert_eq!(l.check(later, &fp(1), "id-1"), Ok(()));
        assert_eq!(l.len(), 1);
    }

    #[test]
    fn many_sources_hit_the_global_cap_and_memory_stays_bounded() {
        let mut l = RequestLimiter::default();
        let t0 = Instant::now();
        let mut refused = 0;
        for i in 0..10_000u32 {
            let key = Fingerprint(*blake3::hash(&i.to_be_bytes()).as_bytes());
            match l.check(t0, &key, &format!("id-{i}")) {
                Ok(()) => {}
                Err(e) => {
                    assert_eq!(e, Limited::Busy);
                    refused += 1;
                }
            }
            assert!(l.len() <= GLOBAL);
        }
        assert_eq!(refused, 10_000 - GLOBAL);
        assert_eq!(
            l.check(t0 + WINDOW, &fp(9), "id-9"),
            Ok(()),
            "a new window lets requests through again"
        );
    }
}
