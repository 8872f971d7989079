//! The baby monitor's sound alert (sans-IO): the armed device's shell reports its microphone's
//! level now and then; a level at or above the threshold that holds for [`HOLD_MS`] becomes an
//! alert, and after an alert nothing more is raised for [`COOLDOWN_MS`], so a crying child
//! wakes the parent once, not once per report.

/// How long the level must stay at or above the threshold.
pub const HOLD_MS: u64 = 300;
/// Quiet time after an alert.
pub const COOLDOWN_MS: u64 = 30_000;
/// Reports further apart than this do not make one continuous sound.
const GAP_MS: u64 = 1_000;

/// Decides when reported levels raise an alert.
#[derive(Debug, Clone, PartialEq)]
pub struct SoundAlert {
    threshold_dbfs: f32,
    loud_since: Option<u64>,
    last_report: u64,
    last_alert: Option<u64>,
}

impl SoundAlert {
    /// Alerts on levels at or above `threshold_dbfs` (dB below full scale, e.g. -30).
    pub fn new(threshold_dbfs: f32) -> SoundAlert {
        SoundAlert {
            threshold_dbfs,
            loud_since: None,
            last_report: 0,
            last_alert: None,
        }
    }

    /// A level report at `now_ms`; the level to announce when it raises an alert. Levels that
    /// are not numbers count as silence.
    pub fn level(&mut self, dbfs: f32, now_ms: u64) -> Option<f32> {
        let loud = dbfs >= self.threshold_dbfs;
        if !loud || now_ms.saturating_sub(self.last_report) > GAP_MS {
            self.loud_since = None;
        }
        self.last_report = now_ms;
        if !loud {
            return None;
        }
        let since = *self.loud_since.get_or_insert(now_ms);
        let cooling = self
            .last_alert
            .is_some_and(|t| now_ms.saturating_sub(t) < COOLDOWN_MS);
        if now_ms.saturating_sub(since) < HOLD_MS || cooling {
            return None;
        }
        self.last_alert = Some(now_ms);
        Some(dbfs.min(0.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_loud_sound_alerts_once_per_cooldown() {
        let mut a = SoundAlert::new(-30.0);
        // Quiet, then a short loud click: nothing.
        assert_eq!(a.level(-60.0, 1_000), None);
        assert_eq!(a.level(-10.0, 1_100), None);
        assert_eq!(a.level(-50.0, 1_200), None);
        assert_eq!(a.level(-10.0, 1_300), None);
        // Loud for 300 ms: one alert, then quiet for the cooldown however loud it stays.
        assert_eq!(a.level(-12.0, 1_500), None);
        assert_eq!(a.level(-11.0, 1_600), Some(-11.0));
        for t in (1_700..1_600 + COOLDOWN_MS).step_by(100) {
            assert_eq!(a.level(-5.0, t), None, "{t}");
        }
        assert_eq!(a.level(-5.0, 1_600 + COOLDOWN_MS), Some(-5.0));
        // Levels out of range or not numbers.
        assert_eq!(a.level(f32::NAN, 100_000), None);
        let mut b = SoundAlert::new(-30.0);
        b.level(3.0, 0);
        assert_eq!(b.level(3.0, 400), Some(0.0));
    }

    #[test]
    fn reports_far_apart_are_not_one_sound() {
        let mut a = SoundAlert::new(-30.0);
        assert_eq!(a.level(-10.0, 1_000), None);
        assert_eq!(a.level(-10.0, 3_000), None);
        assert_eq!(a.level(-10.0, 3_200), None);
        assert_eq!(a.level(-10.0, 3_300), Some(-10.0));
    }
}
