//! Reconnect backoff and network-change debounce: pure functions of time, no I/O.

use std::time::{Duration, Instant};

use rand::Rng;

/// Exponential reconnect backoff: `min(base · 2^attempt, max)` plus up to 25 % random jitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Delay before the first retry.
    pub base: Duration,
    /// Ceiling of the exponential part.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(1),
            max: Duration::from_secs(30),
        }
    }
}

impl Backoff {
    /// The exponential part of the delay for retry number `attempt` (0-based), without jitter.
    pub fn nominal(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.max)
    }

    /// The delay for retry number `attempt`, with jitter drawn from `rng`.
    pub fn delay(&self, attempt: u32, rng: &mut impl Rng) -> Duration {
        let nominal = self.nominal(attempt);
        let jitter_ms = (nominal.as_millis() / 4) as u64;
        nominal + Duration::from_millis(rng.random_range(0..=jitter_ms))
    }
}

/// Coalesces bursts of triggers (a phone flapping between Wi-Fi and cellular) into one firing,
/// `delay` after the last trigger.
#[derive(Debug, Clone)]
pub struct Debounce {
    delay: Duration,
    deadline: Option<Instant>,
}

impl Debounce {
    /// A debouncer that fires `delay` after the most recent trigger.
    pub fn new(delay: Duration) -> Self {
        Self {
            delay,
            deadline: None,
        }
    }

    /// Records a trigger at `now`, pushing the deadline back.
    pub fn trigger(&mut self, now: Instant) {
        self.deadline = Some(now + self.delay);
    }

    /// When the pending firing is due, if any.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// True exactly once when the deadline has passed.
    pub fn fire(&mut self, now: Instant) -> bool {
        match self.deadline {
            Some(d) if now >= d => {
                self.deadline = None;
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{SeedableRng, rngs::SmallRng};

    #[test]
    fn backoff_doubles_and_caps_with_bounded_jitter() {
        let b = Backoff::default();
        let secs: Vec<u64> = (0..7).map(|n| b.nominal(n).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 30, 30]);
        assert_eq!(b.nominal(200), Duration::from_secs(30));
        let mut rng = SmallRng::seed_from_u64(7);
        for n in 0..10 {
            let d = b.delay(n, &mut rng);
            assert!(
                d >= b.nominal(n) && d <= b.nominal(n) * 5 / 4,
                "attempt {n}: {d:?}"
            );
        }
    }

    #[test]
    fn debounce_fires_once_after_the_last_trigger() {
        let t0 = Instant::now();
        let mut d = Debounce::new(Duration::from_millis(300));
        d.trigger(t0);
        d.trigger(t0 + Duration::from_millis(200));
        assert!(
            !d.fire(t0 + Duration::from_millis(350)),
            "second trigger pushed it back"
        );
        assert_eq!(d.deadline(), Some(t0 + Duration::from_millis(500)));
        assert!(d.fire(t0 + Duration::from_millis(500)));
        assert!(!d.fire(t0 + Duration::from_millis(900)), "fires only once");
    }
}
