//! The node-wide registration rate limiter. Every new WebSocket registration (persistent ID,
//! discovery IDs, router IDs) passes through one limiter, so a node never hammers a signaling
//! server — the public PeerJS cloud throttles clients that register too fast.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Limiter settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimiterConfig {
    /// Minimum time between two registrations while the server is happy.
    pub min_spacing: Duration,
    /// Spacing after the first throttle; each further throttle multiplies it by 3.
    pub throttle_base: Duration,
    /// Ceiling of the adaptive spacing.
    pub throttle_max: Duration,
    /// After this long without a throttle, the adaptive spacing is divided by 3 (step by step).
    pub decay_after: Duration,
    /// Hard cap of registrations in any sliding 60 s window.
    pub max_per_minute: usize,
}

impl Default for LimiterConfig {
    fn default() -> Self {
        Self {
            min_spacing: Duration::from_millis(250),
            throttle_base: Duration::from_secs(1),
            throttle_max: Duration::from_secs(15),
            decay_after: Duration::from_secs(60),
            max_per_minute: 20,
        }
    }
}

impl LimiterConfig {
    /// No spacing and a generous cap: for a local or self-hosted server.
    pub fn local() -> Self {
        Self {
            min_spacing: Duration::ZERO,
            max_per_minute: 6000,
            ..Self::default()
        }
    }
}

/// Why a registration has to wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Ordinary spacing between registrations.
    Spacing(Instant),
    /// The server throttled us; adaptive backoff until then.
    Throttled(Instant),
    /// The per-minute cap is used up until then.
    Capped(Instant),
}

impl Wait {
    /// When the wait ends.
    pub fn until(self) -> Instant {
        match self {
            Wait::Spacing(t) | Wait::Throttled(t) | Wait::Capped(t) => t,
        }
    }

    /// True when the UI should say "rate limited" rather than "connecting".
    pub fn is_rate_limit(self) -> bool {
        !matches!(self, Wait::Spacing(_))
    }
}

const WINDOW: Duration = Duration::from_secs(60);

/// Sliding-window registration limiter with adaptive backoff.
#[derive(Debug, Clone)]
pub struct RegistrationLimiter {
    config: LimiterConfig,
    recent: VecDeque<Instant>,
    /// Current adaptive spacing after throttles; zero when not throttled.
    penalty: Duration,
    throttled_until: Option<Instant>,
    last_penalty_change: Option<Instant>,
}

impl RegistrationLimiter {
    /// A limiter with the given settings.
    pub fn new(config: LimiterConfig) -> Self {
        Self {
            config,
            recent: VecDeque::new(),
            penalty: Duration::ZERO,
            throttled_until: None,
            last_penalty_change: None,
        }
    }

    /// The adaptive spacing in force (zero when the server has not throttled us lately).
    pub fn penalty(&self) -> Duration {
        self.penalty
    }

    fn decay(&mut self, now: Instant) {
        while self.penalty > Duration::ZERO {
            let Some(since) = self.last_penalty_change else {
                break;
            };
            if now < since + self.config.decay_after {
                break;
            }
            let next = self.penalty / 3;
            self.penalty = if next < self.config.throttle_base {
                Duration::ZERO
            } else {
                next
            };
            self.last_penalty_change = Some(since + self.config.decay_after);
        }
        while self.recent.front().is_some_and(|t| *t + WINDOW <= now) {
            self.recent.pop_front();
        }
    }

    /// `None` if a registration may start at `now`, else why and until when it must wait.
    pub fn check(&mut self, now: Instant) -> Option<Wait> {
        self.decay(now);
        if let Some(until) = self.throttled_until.filter(|u| *u > now) {
            return Some(Wait::Throttled(until));
        }
        if self.recent.len() >= self.config.max_per_minute {
            let oldest = self.recent[self.recent.len() - self.config.max_per_minute];
            return Some(Wait::Capped(oldest + WINDOW));
        }
        let spacing = self.config.min_spacing.max(self.penalty);
        match self.recent.back() {
            Some(last) if *last + spacing > now => {
                let until = *last + spacing;
                Some(if self.penalty > Duration::ZERO {
                    Wait::Throttled(until)
                } else {
                    Wait::Spacing(until)
                })
            }
            _ => None,
        }
    }

    /// Records that a registration started at `now` (call only after `check` returned `None`).
    pub fn record(&mut self, now: Instant) {
        self.recent.push_back(now);
    }

    /// The server throttled us at `now` (HTTP 429 or a limit ERROR): triple the spacing, up to
    /// the ceiling, and hold every registration back for that long. Returns the hold's end.
    pub fn throttled(&mut self, now: Instant) -> Instant {
        self.decay(now);
        self.penalty = if self.penalty.is_zero() {
            self.config.throttle_base
        } else {
            (self.penalty * 3).min(self.config.throttle_max)
        };
        self.last_penalty_change = Some(now);
        let until = now + self.penalty;
        self.throttled_until = Some(until);
        until
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn spacing_is_enforced() {
        let t0 = Instant::now();
        let mut l = RegistrationLimiter::new(LimiterConfig::default());
        assert_eq!(l.check(t0), None);
        l.record(t0);
        assert_eq!(l.check(t0 + ms(100)), Some(Wait::Spacing(t0 + ms(250))));
        assert_eq!(l.check(t0 + ms(250)), None);
    }

    #[test]
    fn hard_cap_per_minute_slides() {
        let t0 = Instant::now();
        let cfg = LimiterConfig {
            min_spacing: Duration::ZERO,
            ..LimiterConfig::default()
        };
        let mut l = RegistrationLimiter::new(cfg);
        for i in 0..20 {
            let t = t0 + ms(i * 10);
            assert_eq!(l.check(t), None, "registration {i}");
            l.record(t);
        }
        let w = l.check(t0 + ms(1000)).unwrap();
        assert_eq!(w, Wait::Capped(t0 + Duration::from_secs(60)));
        assert!(w.is_rate_limit());
        assert_eq!(
            l.check(t0 + Duration::from_secs(60)),
            None,
            "oldest left the window"
        );
    }

    #[test]
    fn throttle_triples_up_to_fifteen_seconds_then_decays() {
        let t0 = Instant::now();
        let mut l = RegistrationLimiter::new(LimiterConfig::default());
        let mut t = t0;
        let mut seen = vec![];
        for _ in 0..5 {
            let until = l.throttled(t);
            seen.push(l.penalty().as_secs());
            assert_eq!(l.check(t), Some(Wait::Throttled(until)));
            t = until;
        }
        assert_eq!(seen, [1, 3, 9, 15, 15]);
        // Quiet for a minute: 15 → 5; another minute: 5 → 1 (base); another: off.
        let quiet = t + Duration::from_secs(60);
        l.check(quiet);
        assert_eq!(l.penalty(), Duration::from_secs(5));
        l.check(quiet + Duration::from_secs(60));
        assert_eq!(l.penalty(), Duration::from_secs(5) / 3);
        l.check(quiet + Duration::from_secs(180));
        assert_eq!(l.penalty(), Duration::ZERO);
    }

    #[test]
    fn throttled_spacing_applies_between_registrations() {
        let t0 = Instant::now();
        let mut l = RegistrationLimiter::new(LimiterConfig::local());
        let until = l.throttled(t0);
        assert_eq!(l.check(until), None);
        l.record(until);
        assert_eq!(
            l.check(until + ms(10)),
            Some(Wait::Throttled(until + Duration::from_secs(1)))
        );
    }
}
