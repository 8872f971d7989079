//! Per-connection abuse control, sans-IO: a token-bucket rate limit and an offence count.
//! A well-behaved PeerJS client never trips either.

use std::time::Instant;

/// Offences (bad frames, or frames dropped by the rate limit) after which a socket is closed.
pub(super) const MAX_OFFENCES: u32 = 10;

/// What to do with an incoming frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Process it.
    Pass,
    /// Ignore it silently.
    Drop,
    /// Ignore it and send the client an ERROR with this message.
    Warn(String),
    /// Send the client an ERROR with this message and close the socket.
    Close(String),
}

/// Refills `rate` tokens per second up to `burst`; one frame costs one token.
#[derive(Debug)]
struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Rate limit and offence bookkeeping for one socket.
#[derive(Debug)]
pub(super) struct Guard {
    bucket: Option<TokenBucket>,
    offences: u32,
    throttled: bool,
}

const RATE_LIMITED: &str = "Rate limit exceeded";

impl Guard {
    /// Allows `rate` frames per second with bursts of `burst` (at least 1); `rate` 0 disables
    /// the limit.
    pub fn new(rate: u32, burst: u32, now: Instant) -> Self {
        let bucket = (rate > 0).then(|| {
            let burst = f64::from(burst.max(1));
            TokenBucket {
                rate: f64::from(rate),
                burst,
                tokens: burst,
                last: now,
            }
        });
        Self {
            bucket,
            offences: 0,
            throttled: false,
        }
    }

    /// Charges one frame. Over the limit the frame is dropped, with one ERROR per episode and
    /// an offence per dropped frame.
    pub fn admit(&mut self, now: Instant) -> Verdict {
        let Some(bucket) = &mut self.bucket else {
            return Verdict::Pass;
        };
        if bucket.take(now) {
            self.throttled = false;
            return Verdict::Pass;
        }
        let first = !std::mem::replace(&mut self.throttled, true);
        match self.offence(RATE_LIMITED.into()) {
            Verdict::Warn(_) if !first => Verdict::Drop,
            verdict => verdict,
        }
    }

    /// Records a bad frame described by `msg`.
    pub fn offence(&mut self, msg: String) -> Verdict {
        self.offences += 1;
        if self.offences >= MAX_OFFENCES {
            Verdict::Close(msg)
        } else {
            Verdict::Warn(msg)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bucket_allows_burst_then_rate() {
        let t0 = Instant::now();
        let mut g = Guard::new(10, 5, t0);
        for _ in 0..5 {
            assert_eq!(g.admit(t0), Verdict::Pass);
        }
        assert_eq!(g.admit(t0), Verdict::Warn(RATE_LIMITED.into()));
        assert_eq!(g.admit(t0), Verdict::Drop);
        // 100 ms refills one token; passing ends the episode, so the next excess warns again.
        let t1 = t0 + Duration::from_millis(100);
        assert_eq!(g.admit(t1), Verdict::Pass);
        assert_eq!(g.admit(t1), Verdict::Warn(RATE_LIMITED.into()));
        // The bucket never holds more than `burst`.
        let later = t1 + Duration::from_secs(60);
        let passed = (0..20).filter(|_| g.admit(later) == Verdict::Pass).count();
        assert_eq!(passed, 5);
    }

    #[test]
    fn persistent_flooding_closes() {
        let t0 = Instant::now();
        let mut g = Guard::new(1, 1, t0);
        assert_eq!(g.admit(t0), Verdict::Pass);
        let verdicts: Vec<_> = (0..MAX_OFFENCES).map(|_| g.admit(t0)).collect();
        assert_eq!(verdicts[0], Verdict::Warn(RATE_LIMITED.into()));
        assert!(verdicts[1..9].iter().all(|v| *v == Verdict::Drop));
        assert_eq!(verdicts[9], Verdict::Close(RATE_LIMITED.into()));
    }

    #[test]
    fn offences_warn_then_close() {
        let mut g = Guard::new(0, 0, Instant::now());
        for _ in 1..MAX_OFFENCES {
            assert_eq!(g.offence("bad".into()), Verdict::Warn("bad".into()));
        }
        assert_eq!(g.offence("bad".into()), Verdict::Close("bad".into()));
        // Rate 0 means unlimited.
        assert!((0..10_000).all(|_| g.admit(Instant::now()) == Verdict::Pass));
    }
}
