//! One send slot of a subscriber: which source it carries, and the sequence number and
//! timestamp rewriting that keeps the subscriber's stream continuous across source switches
//! (the subscriber sees one stream per slot, with no gap and no jump back at a switch, while
//! the source's own gaps stay visible so NACK still works).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::rtp::extend_near;
use super::{SlotOut, SourceKey};

/// Past source segments remembered per slot for answering NACKs after a switch.
const SEGMENTS_KEPT: usize = 4;

/// A run of one source's packets in a slot's stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Segment {
    source: SourceKey,
    /// Extended sequence number of the source's first packet in this segment.
    in_start: u64,
    /// Extended sequence number that packet got in the slot's stream.
    out_start: u64,
    /// Added (wrapping) to the source's timestamps.
    ts_offset: u32,
}

/// Where a NACKed packet of a slot came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NackTarget {
    /// The source it was taken from.
    pub source: SourceKey,
    /// Its extended sequence number in that source.
    pub in_ext: u64,
    /// The timestamp offset its segment used.
    pub ts_offset: u32,
}

/// A subscriber's send slot.
#[derive(Debug)]
pub struct Slot {
    /// The slot's SSRC and payload type, as negotiated with the subscriber.
    pub out: SlotOut,
    /// A source chosen for this slot, waiting for a packet it can start with.
    pub pending: Option<SourceKey>,
    /// Since when `pending` waits.
    pub pending_since: Option<Instant>,
    /// A thumbnail slot sending one keyframe: that frame's timestamp (its other frames are
    /// not sent).
    pub still: Option<u32>,
    /// Whom a thumbnail slot shows (its last keyframe's source), between keyframes.
    thumbnail: Option<Option<SourceKey>>,
    segments: VecDeque<Segment>,
    /// Forwarding is on (a paused slot keeps its history but sends nothing).
    active: bool,
    highest_out: u64,
    last_ts: u32,
    last_at: Option<Instant>,
}

impl Slot {
    /// A slot with nothing assigned. Its stream starts at sequence number `seq_base`.
    pub fn new(out: SlotOut, seq_base: u16) -> Self {
        Self {
            out,
            pending: None,
            pending_since: None,
            still: None,
            thumbnail: None,
            segments: VecDeque::new(),
            active: false,
            highest_out: (1 << 16) + u64::from(seq_base),
            last_ts: 0,
            last_at: None,
        }
    }

    /// The source being forwarded now, if any.
    pub fn current(&self) -> Option<SourceKey> {
        self.active
            .then(|| self.segments.back().map(|s| s.source))
            .flatten()
    }

    /// Stops forwarding (the slot goes quiet until a new source begins).
    pub fn stop(&mut self) {
        self.active = false;
    }

    /// Whom the slot shows: the source being forwarded; for a thumbnail slot, the one chosen
    /// for its next keyframe, else the last one sent.
    pub fn showing(&self) -> Option<SourceKey> {
        match self.thumbnail {
            Some(last) => self.pending.or(last),
            None => self.current(),
        }
    }

    /// Makes this a thumbnail slot and chooses the source of its next keyframe (`None`:
    /// nothing, the slot goes quiet and shows nobody).
    pub fn choose_still(&mut self, now: Instant, source: Option<SourceKey>) {
        let last = self.thumbnail.flatten();
        self.thumbnail = Some(if source.is_some() { last } else { None });
        self.pending = source;
        self.pending_since = source.map(|_| now);
        if source.is_none() {
            self.stop();
        }
    }

    /// `participant` left: a thumbnail slot stops showing it.
    pub fn forget(&mut self, participant: super::ParticipantId) {
        if let Some(last) = &mut self.thumbnail
            && last.is_some_and(|k| k.participant == participant)
        {
            *last = None;
        }
    }

    /// Chooses a new source; it begins at its next packet that `begin` accepts.
    pub fn choose(&mut self, now: Instant, source: Option<SourceKey>) {
        if source.is_some() && source == self.current() {
            self.pending = None;
            self.pending_since = None;
        } else if source != self.pending {
            self.pending = source;
            self.pending_since = source.map(|_| now);
        }
    }

    /// Makes `pending` current, starting with the packet numbered `in_ext` (timestamp
    /// `in_ts`): its number follows the last one sent, and its timestamp follows the last one
    /// by the wall time elapsed.
    pub fn begin(&mut self, now: Instant, in_ext: u64, in_ts: u32, clock_rate: u32) {
        let Some(source) = self.pending.take() else {
            return;
        };
        self.pending_since = None;
        let ts_offset = match self.last_at {
            Some(at) => {
                let ticks = ticks(now.duration_since(at), clock_rate).max(1);
                self.last_ts.wrapping_add(ticks).wrapping_sub(in_ts)
            }
            None => 0,
        };
        if self.segments.len() == SEGMENTS_KEPT {
            self.segments.pop_front();
        }
        self.segments.push_back(Segment {
            source,
            in_start: in_ext,
            out_start: self.highest_out + 1,
            ts_offset,
        });
        self.active = true;
        self.still = None;
        if let Some(last) = &mut self.thumbnail {
            *last = Some(source);
        }
    }

    /// The slot's sequence number and timestamp for a packet of the current source, or
    /// `None` when the packet is from before the switch (or the slot is stopped).
    pub fn map(&mut self, now: Instant, in_ext: u64, in_ts: u32) -> Option<(u16, u32)> {
        if !self.active {
            return None;
        }
        let seg = self.segments.back()?;
        let delta = in_ext.checked_sub(seg.in_start)?;
        let out = seg.out_start + delta;
        let ts = in_ts.wrapping_add(seg.ts_offset);
        if out > self.highest_out {
            self.highest_out = out;
            self.last_ts = ts;
            self.last_at = Some(now);
        }
        Some((out as u16, ts))
    }

    /// What a NACK for the slot's sequence number `seq` asks for, while remembered.
    pub fn nack(&self, seq: u16) -> Option<NackTarget> {
        let out = extend_near(self.highest_out, seq);
        if out > self.highest_out {
            return None;
        }
        let seg = self.segments.iter().rev().find(|s| s.out_start <= out)?;
        Some(NackTarget {
            source: seg.source,
            in_ext: seg.in_start + (out - seg.out_start),
            ts_offset: seg.ts_offset,
        })
    }
}

fn ticks(elapsed: Duration, clock_rate: u32) -> u32 {
    (elapsed.as_micros() * u128::from(clock_rate) / 1_000_000).min(u128::from(u32::MAX)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::sfu::{ParticipantId, TrackKind};

    fn key(p: u64) -> SourceKey {
        SourceKey {
            participant: ParticipantId(p),
            kind: TrackKind::Video,
        }
    }

    fn slot() -> Slot {
        Slot::new(
            SlotOut {
                ssrc: 1,
                payload_type: 102,
            },
            65530,
        )
    }

    #[test]
    fn a_switch_continues_the_numbers_and_the_clock() {
        let t0 = Instant::now();
        let mut s = slot();
        s.choose(t0, Some(key(1)));
        s.begin(t0, 5000, 1_000_000, 90_000);
        let first: Vec<_> = (0..5)
            .map(|i| s.map(t0, 5000 + i, 1_000_000 + 3000 * i as u32).unwrap())
            .collect();
        assert_eq!(first[0], (65531, 1_000_000));
        assert_eq!(first[4].0, 65535);
        // Another source, 100 ms later, with unrelated numbers.
        let t1 = t0 + Duration::from_millis(100);
        s.choose(t1, Some(key(2)));
        assert_eq!(
            s.current(),
            Some(key(1)),
            "the old source runs until the switch"
        );
        s.begin(t1, 77, 42, 90_000);
        assert_eq!(s.current(), Some(key(2)));
        let (seq, ts) = s.map(t1, 77, 42).unwrap();
        assert_eq!(seq, 0, "the next number after 65535");
        assert_eq!(
            ts,
            1_000_000 + 12_000 + 9_000,
            "100 ms at 90 kHz after the last"
        );
        // A late packet of the new source from before its first is dropped.
        assert_eq!(s.map(t1, 76, 0), None);
        // A gap in the source stays a gap (so the subscriber can NACK it).
        assert_eq!(s.map(t1, 80, 42).unwrap().0, 3);
    }

    #[test]
    fn nacks_map_back_to_the_right_source_across_a_switch() {
        let t0 = Instant::now();
        let mut s = slot();
        s.choose(t0, Some(key(1)));
        s.begin(t0, 100, 0, 90_000);
        for i in 0..10 {
            s.map(t0, 100 + i, 0);
        }
        s.choose(t0, Some(key(2)));
        s.begin(t0, 900, 0, 90_000);
        for i in 0..10 {
            s.map(t0, 900 + i, 0);
        }
        let old = s.nack(65531u16.wrapping_add(3)).unwrap();
        assert_eq!((old.source, old.in_ext), (key(1), 103));
        let new = s.nack(65531u16.wrapping_add(12)).unwrap();
        assert_eq!((new.source, new.in_ext), (key(2), 902));
        assert_eq!(s.nack(65531u16.wrapping_add(40)), None, "never sent");
    }

    #[test]
    fn a_stopped_slot_sends_nothing_and_resumes_without_a_gap() {
        let t0 = Instant::now();
        let mut s = slot();
        s.choose(t0, Some(key(1)));
        s.begin(t0, 10, 0, 90_000);
        let (a, _) = s.map(t0, 10, 0).unwrap();
        s.stop();
        assert_eq!(s.map(t0, 11, 0), None);
        assert_eq!(s.current(), None);
        s.choose(t0, Some(key(1)));
        s.begin(t0, 50, 0, 90_000);
        assert_eq!(s.map(t0, 50, 0).unwrap().0, a.wrapping_add(1));
    }
}
