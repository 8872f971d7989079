//! One grid for periodic work: heartbeats, state announcements and link checks fall on points
//! of the wall clock (multiples of their period since the Unix epoch), so timers of the same
//! period in every part of the node — and in every process on the device, whose clocks agree —
//! fire in one wake-up instead of one each. A period that divides a minute shares its points
//! with the connections' keepalive grid (`third_party/rtc-ice`, PATCH(ice-keepalive-grid)).
//!
//! Pure arithmetic on a clock the caller anchors, so sans-IO engines stay deterministic.
//! This module uses nothing else of the crate, so every layer may call it.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Maps monotonic instants to wall-clock milliseconds from one anchor.
#[derive(Debug, Clone, Copy)]
pub struct WallClock {
    epoch: Instant,
    epoch_unix_ms: u64,
}

impl WallClock {
    /// A clock on which `now` is `unix_ms` milliseconds after the Unix epoch.
    pub fn new(now: Instant, unix_ms: u64) -> Self {
        Self {
            epoch: now,
            epoch_unix_ms: unix_ms,
        }
    }

    /// The system's clock, read now.
    pub fn system() -> Self {
        let unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        Self::new(Instant::now(), unix_ms)
    }

    /// Milliseconds since the Unix epoch at `at` (instants before the anchor count as it).
    pub fn unix_ms(&self, at: Instant) -> u64 {
        let since = at.saturating_duration_since(self.epoch).as_millis();
        self.epoch_unix_ms
            .saturating_add(u64::try_from(since).unwrap_or(u64::MAX))
    }

    /// The grid point for periodic work of `period` due at `due`: the first point at or after
    /// `due - period / 4`. A timer that fires a little late therefore keeps its place (the
    /// next one is still a whole period later, not a period plus the delay), and work paced
    /// every `period` from a point lands on the next point.
    pub fn align(&self, due: Instant, period: Duration) -> Instant {
        let period_ms = u64::try_from(period.as_millis()).unwrap_or(u64::MAX);
        if period_ms == 0 {
            return due;
        }
        let unix_due = self.unix_ms(due);
        let from = unix_due.saturating_sub(period_ms / 4);
        let point = from.div_ceil(period_ms).saturating_mul(period_ms);
        if point >= unix_due {
            due + Duration::from_millis(point - unix_due)
        } else {
            due.checked_sub(Duration::from_millis(unix_due - point))
                .unwrap_or(due)
        }
    }

    /// The next point of `period` at least `period * 3 / 4` after `now`: when work repeated
    /// every `period` and done at `now` should run again.
    pub fn next_after(&self, now: Instant, period: Duration) -> Instant {
        self.align(now + period, period)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: Duration = Duration::from_millis(800);

    #[test]
    fn points_are_multiples_of_the_period_on_the_wall_clock() {
        let now = Instant::now();
        let clock = WallClock::new(now, 1_000_000_123);
        for step in [0u64, 1, 77, 399, 401, 799, 5_000] {
            let at = clock.next_after(now + Duration::from_millis(step), P);
            assert_eq!(clock.unix_ms(at) % 800, 0, "step {step}");
            let wait = at - (now + Duration::from_millis(step));
            assert!(
                wait >= P * 3 / 4 && wait < P * 7 / 4,
                "step {step}: {wait:?}"
            );
        }
    }

    #[test]
    fn a_timer_that_fired_late_keeps_its_place_on_the_grid() {
        let now = Instant::now();
        // Anchored on a point: 1_000_000_000 is a multiple of 800.
        let clock = WallClock::new(now, 1_000_000_000);
        for late in [0u64, 5, 150, 190] {
            let at = clock.next_after(now + Duration::from_millis(late), P);
            assert_eq!(at, now + P, "late by {late} ms");
        }
    }

    #[test]
    fn two_clocks_read_at_different_times_share_the_points() {
        let t0 = Instant::now();
        let a = WallClock::new(t0, 2_000_000_000);
        let b = WallClock::new(t0 + Duration::from_millis(333), 2_000_000_333);
        let due = t0 + Duration::from_millis(1_234);
        assert_eq!(a.align(due, P), b.align(due, P));
        assert_eq!(
            a.align(due, Duration::from_secs(5)),
            b.align(due, Duration::from_secs(5))
        );
    }

    #[test]
    fn a_zero_period_is_not_aligned() {
        let now = Instant::now();
        let clock = WallClock::new(now, 42);
        assert_eq!(clock.align(now, Duration::ZERO), now);
    }
}
