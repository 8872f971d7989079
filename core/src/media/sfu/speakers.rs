//! Who is speaking, from the RFC 6464 audio levels publishers put on their audio packets, and
//! the order "most recently active speaker first" that Last-N selection uses.
//!
//! A participant counts as speaking once its smoothed loudness stayed above
//! [`SPEAKING_LOUDNESS`] for [`SPEAKER_HOLD`] (a cough or a door does not take a video slot)
//! and stops after [`SILENCE_HOLD`] below it.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::ParticipantId;

/// Smoothed loudness (127 − level, so 0 is silence) above which a participant is speaking:
/// louder than −50 dBov.
pub const SPEAKING_LOUDNESS: f32 = 77.0;
/// Loud for this long before counting as speaking.
pub const SPEAKER_HOLD: Duration = Duration::from_millis(200);
/// Quiet for this long before no longer counting as speaking.
pub const SILENCE_HOLD: Duration = Duration::from_millis(1000);
/// Weight of a new level in the loudness average (about 100 ms at 50 packets/s).
const SMOOTHING: f32 = 0.2;

#[derive(Debug, Clone)]
struct Activity {
    joined: u64,
    loudness: f32,
    loud_since: Option<Instant>,
    quiet_since: Option<Instant>,
    speaking: bool,
    /// When the current talk spurt began (while speaking).
    spoke_since: Option<Instant>,
    last_spoke: Option<Instant>,
}

/// Speaker activity of every participant.
#[derive(Debug, Default)]
pub struct Speakers {
    joined: u64,
    who: BTreeMap<ParticipantId, Activity>,
}

impl Speakers {
    /// Starts tracking a participant (later joiners rank after earlier ones when all are quiet).
    pub fn add(&mut self, id: ParticipantId) {
        self.joined += 1;
        let joined = self.joined;
        self.who.entry(id).or_insert(Activity {
            joined,
            loudness: 0.0,
            loud_since: None,
            quiet_since: None,
            speaking: false,
            spoke_since: None,
            last_spoke: None,
        });
    }

    /// Stops tracking a participant.
    pub fn remove(&mut self, id: ParticipantId) {
        self.who.remove(&id);
    }

    /// One audio level (0 loudest … 127 silence). Returns true when `id` started or stopped
    /// speaking.
    pub fn observe(&mut self, now: Instant, id: ParticipantId, level: u8) -> bool {
        let Some(a) = self.who.get_mut(&id) else {
            return false;
        };
        let loudness = f32::from(127 - level.min(127));
        a.loudness += SMOOTHING * (loudness - a.loudness);
        let was = a.speaking;
        if a.loudness >= SPEAKING_LOUDNESS {
            a.quiet_since = None;
            let since = *a.loud_since.get_or_insert(now);
            if now.duration_since(since) >= SPEAKER_HOLD {
                a.speaking = true;
            }
        } else {
            a.loud_since = None;
            let since = *a.quiet_since.get_or_insert(now);
            if now.duration_since(since) >= SILENCE_HOLD {
                a.speaking = false;
            }
        }
        if a.speaking {
            a.last_spoke = Some(now);
            a.spoke_since.get_or_insert(now);
        } else {
            a.spoke_since = None;
        }
        was != a.speaking
    }

    /// Those speaking now, in join order.
    pub fn speaking(&self) -> Vec<ParticipantId> {
        let mut v: Vec<_> = self.who.iter().filter(|(_, a)| a.speaking).collect();
        v.sort_by_key(|(_, a)| a.joined);
        v.into_iter().map(|(id, _)| *id).collect()
    }

    /// Everyone, the most recently active speaker first: those speaking now, the latest to
    /// start first (so people talking at once keep their places rather than trading them with
    /// every packet); then the others, the latest to stop first; those who never spoke last,
    /// in join order.
    pub fn ranked(&self) -> Vec<ParticipantId> {
        let mut v: Vec<_> = self.who.iter().collect();
        v.sort_by(|(_, a), (_, b)| {
            b.speaking
                .cmp(&a.speaking)
                .then(b.spoke_since.cmp(&a.spoke_since))
                .then(b.last_spoke.cmp(&a.last_spoke))
                .then(a.joined.cmp(&b.joined))
        });
        v.into_iter().map(|(id, _)| *id).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn people_talking_at_once_keep_their_places() {
        let t0 = Instant::now();
        let mut s = Speakers::default();
        for id in 1..=3 {
            s.add(ParticipantId(id));
        }
        // 1 starts, then 2; both go on, their packets interleaved.
        talk(&mut s, t0, 1, 0, 400, 20);
        for ms in (400..3000).step_by(20) {
            s.observe(t0 + Duration::from_millis(ms), ParticipantId(1), 20);
            s.observe(t0 + Duration::from_millis(ms + 10), ParticipantId(2), 20);
            if ms > 1000 {
                let ranked = s.ranked();
                assert_eq!(
                    ranked[..2],
                    [ParticipantId(2), ParticipantId(1)],
                    "at {ms} ms"
                );
            }
            // Whoever sent last does not matter.
            s.observe(t0 + Duration::from_millis(ms + 15), ParticipantId(1), 20);
        }
    }

    fn talk(s: &mut Speakers, t0: Instant, id: u64, from_ms: u64, to_ms: u64, level: u8) {
        for ms in (from_ms..to_ms).step_by(20) {
            s.observe(t0 + Duration::from_millis(ms), ParticipantId(id), level);
        }
    }

    #[test]
    fn a_short_noise_does_not_count_and_speech_does() {
        let t0 = Instant::now();
        let mut s = Speakers::default();
        for id in 1..=3 {
            s.add(ParticipantId(id));
        }
        talk(&mut s, t0, 3, 0, 100, 10); // 100 ms cough
        talk(&mut s, t0, 3, 100, 400, 127);
        assert!(s.speaking().is_empty());
        assert_eq!(
            s.ranked()[0],
            ParticipantId(1),
            "join order while all are quiet"
        );
        talk(&mut s, t0, 2, 400, 1400, 20);
        assert_eq!(s.speaking(), vec![ParticipantId(2)]);
        assert_eq!(s.ranked()[0], ParticipantId(2));
    }

    #[test]
    fn the_most_recent_speaker_ranks_first_and_silence_ends_speaking() {
        let t0 = Instant::now();
        let mut s = Speakers::default();
        for id in 1..=3 {
            s.add(ParticipantId(id));
        }
        talk(&mut s, t0, 1, 0, 1000, 20);
        talk(&mut s, t0, 1, 1000, 2500, 127);
        talk(&mut s, t0, 3, 2500, 3500, 20);
        assert_eq!(s.speaking(), vec![ParticipantId(3)], "1 fell silent");
        assert_eq!(
            s.ranked(),
            vec![ParticipantId(3), ParticipantId(1), ParticipantId(2)]
        );
        s.remove(ParticipantId(3));
        assert_eq!(s.ranked(), vec![ParticipantId(1), ParticipantId(2)]);
    }
}
