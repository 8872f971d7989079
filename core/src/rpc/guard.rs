//! Admission of signed requests per sender, sans-IO (time is an input): the request's clock
//! must be within [`GuardConfig::max_skew_ms`] of ours, its id must not have been seen in that
//! window (ids are remembered until their time leaves it, so the memory is bounded by the
//! rate limit times the window), and each sender has a token bucket.

use std::collections::{HashMap, VecDeque};

use super::RpcError;
use crate::identity::Fingerprint;

/// Limits of the guard.
#[derive(Debug, Clone, Copy)]
pub struct GuardConfig {
    /// How far a request's clock may be from ours, ms.
    pub max_skew_ms: u64,
    /// Requests per second a sender may make on average.
    pub rate_per_s: u32,
    /// Requests a sender may make at once.
    pub burst: u32,
    /// Ids remembered per sender (beyond it, requests wait: 429).
    pub max_ids: usize,
    /// Senders tracked at once (the least recently active is forgotten).
    pub max_senders: usize,
}

impl Default for GuardConfig {
    fn default() -> Self {
        GuardConfig {
            max_skew_ms: 60_000,
            rate_per_s: 2_000,
            burst: 4_000,
            max_ids: 200_000,
            max_senders: 64,
        }
    }
}

#[derive(Debug, Default)]
struct Sender {
    ids: HashMap<String, u64>,
    order: VecDeque<(u64, String)>,
    bucket: Bucket,
    active_ms: u64,
}

/// A token bucket on our clock in milliseconds: `burst` at most, refilled at `rate_per_s`.
/// The guard's requests and the audit log's refusals (`super::refusals`) each keep one per
/// sender.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Bucket {
    tokens: f64,
    refilled_ms: u64,
}

impl Bucket {
    /// A full bucket of `burst` tokens at `now_ms`.
    pub(super) fn full(burst: u32, now_ms: u64) -> Self {
        Self {
            tokens: f64::from(burst),
            refilled_ms: now_ms,
        }
    }

    /// Refills for the time since the last call; whether a token is there now.
    pub(super) fn refill(&mut self, now_ms: u64, rate_per_s: u32, burst: u32) -> bool {
        let elapsed = now_ms.saturating_sub(self.refilled_ms) as f64 / 1000.0;
        self.tokens = (self.tokens + elapsed * f64::from(rate_per_s)).min(f64::from(burst));
        self.refilled_ms = now_ms.max(self.refilled_ms);
        self.tokens >= 1.0
    }

    /// Takes the token [`Self::refill`] found.
    pub(super) fn take(&mut self) {
        self.tokens -= 1.0;
    }
}

/// The guard of one node.
#[derive(Debug)]
pub struct Guard {
    config: GuardConfig,
    senders: HashMap<Fingerprint, Sender>,
}

impl Guard {
    /// A guard with `config`.
    pub fn new(config: GuardConfig) -> Guard {
        Guard {
            config,
            senders: HashMap::new(),
        }
    }

    /// Admits request `id` signed at `ts_ms` from `from`, at our time `now_ms`.
    pub fn admit(
        &mut self,
        from: &Fingerprint,
        id: &str,
        ts_ms: u64,
        now_ms: u64,
    ) -> Result<(), RpcError> {
        let c = self.config;
        if ts_ms.abs_diff(now_ms) > c.max_skew_ms {
            return Err(RpcError::bad(
                "request time is outside the accepted window (check the clocks)",
            ));
        }
        if !self.senders.contains_key(from) && self.senders.len() >= c.max_senders {
            let oldest = self
                .senders
                .iter()
                .min_by_key(|(_, s)| s.active_ms)
                .map(|(k, _)| *k);
            if let Some(k) = oldest {
                self.senders.remove(&k);
            }
        }
        let s = self.senders.entry(*from).or_insert_with(|| Sender {
            bucket: Bucket::full(c.burst, now_ms),
            ..Default::default()
        });
        s.active_ms = now_ms;
        // Forget ids whose time has left the window: a replay of them is refused by time.
        let horizon = now_ms.saturating_sub(c.max_skew_ms);
        while let Some((t, _)) = s.order.front() {
            if *t >= horizon {
                break;
            }
            let (_, old) = s.order.pop_front().expect("front exists");
            s.ids.remove(&old);
        }
        if s.ids.contains_key(id) {
            return Err(RpcError::bad("replayed request id"));
        }
        if !s.bucket.refill(now_ms, c.rate_per_s, c.burst) || s.ids.len() >= c.max_ids {
            return Err(RpcError::throttled("too many requests; slow down"));
        }
        s.bucket.take();
        // Remember it until its own time leaves the window (ts may be ahead of ours).
        let keep_until = ts_ms.max(now_ms);
        s.ids.insert(id.to_owned(), keep_until);
        let pos = s.order.partition_point(|(t, _)| *t <= keep_until);
        s.order.insert(pos, (keep_until, id.to_owned()));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(n: u8) -> Fingerprint {
        Fingerprint([n; 32])
    }

    #[test]
    fn replays_old_and_future_requests_are_refused() {
        let mut g = Guard::new(GuardConfig::default());
        let now = 1_000_000;
        assert_eq!(g.admit(&fp(1), "a", now, now), Ok(()));
        assert_eq!(g.admit(&fp(1), "a", now, now + 10).unwrap_err().code, 400);
        // Another sender may use the same id.
        assert_eq!(g.admit(&fp(2), "a", now, now), Ok(()));
        assert_eq!(
            g.admit(&fp(1), "b", now - 60_001, now).unwrap_err().code,
            400
        );
        assert_eq!(
            g.admit(&fp(1), "c", now + 60_001, now).unwrap_err().code,
            400
        );
        // Still remembered just inside the window; refused by time just after.
        assert_eq!(
            g.admit(&fp(1), "a", now, now + 60_000).unwrap_err().message,
            "replayed request id"
        );
        assert_eq!(
            g.admit(&fp(1), "a", now, now + 60_001).unwrap_err().code,
            400
        );
        // A request from the future is remembered until its own time leaves the window.
        assert_eq!(g.admit(&fp(1), "f", now + 50_000, now), Ok(()));
        assert!(g.admit(&fp(1), "f", now + 50_000, now + 100_000).is_err());
    }

    #[test]
    fn the_rate_limit_is_per_sender_and_refills() {
        let config = GuardConfig {
            rate_per_s: 10,
            burst: 5,
            ..Default::default()
        };
        let mut g = Guard::new(config);
        let now = 5_000_000;
        for i in 0..5 {
            assert_eq!(g.admit(&fp(1), &format!("r{i}"), now, now), Ok(()));
        }
        assert_eq!(g.admit(&fp(1), "r5", now, now).unwrap_err().code, 429);
        assert_eq!(g.admit(&fp(2), "r5", now, now), Ok(()));
        // 100 ms later one token is back.
        assert_eq!(g.admit(&fp(1), "r6", now, now + 100), Ok(()));
        assert_eq!(g.admit(&fp(1), "r7", now, now + 100).unwrap_err().code, 429);
    }

    #[test]
    fn memory_is_bounded() {
        let config = GuardConfig {
            max_ids: 3,
            max_senders: 2,
            ..Default::default()
        };
        let mut g = Guard::new(config);
        let now = 9_000_000;
        for i in 0..3 {
            g.admit(&fp(1), &i.to_string(), now, now).unwrap();
        }
        assert_eq!(g.admit(&fp(1), "x", now, now).unwrap_err().code, 429);
        // Once the old ids leave the window there is room again.
        assert_eq!(g.admit(&fp(1), "x", now + 60_001, now + 60_001), Ok(()));
        g.admit(&fp(2), "a", now + 60_002, now + 60_002).unwrap();
        g.admit(&fp(3), "a", now + 60_003, now + 60_003).unwrap();
        assert_eq!(g.senders.len(), 2);
    }
}
