//! Received RTP back into complete frames (sans-IO: packets and time in, frames and keyframe
//! requests out).
//!
//! Packets are ordered by their extended sequence number in a bounded buffer; a frame is
//! complete when the packets from the expected sequence number up to its marker (or up to a
//! timestamp change) are all there. A gap waits [`GAP_WAIT`] for NACK to fill it; then the
//! broken frame is skipped and, for video, every frame is dropped until a keyframe arrives
//! ([`Output::KeyframeNeeded`] is raised at once and every [`KEYFRAME_REPEAT`] while waiting).

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::depacketize::Codec;
use super::frame::EncodedFrame;
use crate::transport::MediaKind;

/// Packets buffered per track before the oldest incomplete frame is given up.
pub const MAX_BUFFERED_PACKETS: usize = 512;
/// How long a sequence gap may wait for a retransmission.
pub const GAP_WAIT: Duration = Duration::from_millis(150);
/// How often a keyframe is asked for again while waiting for one.
pub const KEYFRAME_REPEAT: Duration = Duration::from_millis(500);
/// Outputs held until polled; beyond this the oldest frames are dropped.
pub const MAX_OUTPUTS: usize = 64;

/// One received RTP packet, as far as reassembly cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpIn {
    /// Sequence number.
    pub seq: u16,
    /// RTP timestamp.
    pub ts: u32,
    /// Marker bit (last packet of a video frame).
    pub marker: bool,
    /// Payload.
    pub payload: Bytes,
}

/// What the reassembler produces.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// A complete frame.
    Frame(EncodedFrame),
    /// Ask the sender for a keyframe (RTCP PLI).
    KeyframeNeeded,
}

/// Counters of one reassembler.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReassemblyStats {
    /// Frames emitted.
    pub frames: u64,
    /// Frames given up (gaps, undecodable payloads, waiting for a keyframe).
    pub dropped: u64,
    /// Keyframe requests raised.
    pub keyframe_requests: u64,
}

/// Reassembles one track.
pub struct Reassembler {
    codec: Codec,
    clock_rate: u32,
    buf: BTreeMap<u64, RtpIn>,
    /// Extended sequence number of the next packet we expect (start of the next frame).
    next: Option<u64>,
    /// A first frame was put together (until then an earlier packet may still move `next`).
    started: bool,
    highest: Option<u64>,
    gap_since: Option<Instant>,
    waiting_keyframe: bool,
    last_request: Option<Instant>,
    first_ts: Option<u64>,
    highest_ts: Option<u64>,
    out: VecDeque<Output>,
    stats: ReassemblyStats,
}

impl Reassembler {
    /// A reassembler for `codec` at `clock_rate` Hz.
    pub fn new(codec: Codec, clock_rate: u32) -> Self {
        Self {
            codec,
            clock_rate: clock_rate.max(1),
            buf: BTreeMap::new(),
            next: None,
            started: false,
            highest: None,
            gap_since: None,
            waiting_keyframe: codec.is_video(),
            last_request: None,
            first_ts: None,
            highest_ts: None,
            out: VecDeque::new(),
            stats: ReassemblyStats::default(),
        }
    }

    /// Its counters.
    pub fn stats(&self) -> ReassemblyStats {
        self.stats
    }

    fn extend_seq(&self, seq: u16) -> u64 {
        let Some(h) = self.highest else {
            return (1 << 16) + u64::from(seq);
        };
        let base = h & !0xffff;
        let candidates = [base.wrapping_sub(1 << 16), base, base + (1 << 16)];
        candidates
            .into_iter()
            .map(|b| b + u64::from(seq))
            .min_by_key(|v| v.abs_diff(h))
            .expect("candidates")
    }

    fn extend_ts(&mut self, ts: u32) -> u64 {
        let ext = match self.highest_ts {
            None => (1u64 << 32) + u64::from(ts),
            Some(h) => {
                let base = h & !0xffff_ffff;
                [base.wrapping_sub(1 << 32), base, base + (1 << 32)]
                    .into_iter()
                    .map(|b| b + u64::from(ts))
                    .min_by_key(|v| v.abs_diff(h))
                    .expect("candidates")
            }
        };
        if self.highest_ts.is_none_or(|h| ext > h) {
            self.highest_ts = Some(ext);
        }
        ext
    }

    /// Takes one packet received at `now`.
    pub fn push(&mut self, pkt: RtpIn, now: Instant) {
        let ext = self.extend_seq(pkt.seq);
        if self.highest.is_none_or(|h| ext > h) {
            self.highest = Some(ext);
        }
        let next = *self.next.get_or_insert(ext);
        if ext < next {
            if self.started {
                return; // late or duplicate: its frame is done or given up
            }
            self.next = Some(ext); // the stream's first packets arrived out of order
        }
        self.buf.insert(ext, pkt);
        self.assemble(now);
        while self.buf.len() > MAX_BUFFERED_PACKETS {
            self.skip(now);
        }
    }

    /// Gives up gaps that waited too long.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.gap_since.is_some_and(|t| now >= t + GAP_WAIT) {
            self.skip(now);
        }
        if self.waiting_keyframe
            && self.next.is_some()
            && self
                .last_request
                .is_some_and(|t| now >= t + KEYFRAME_REPEAT)
        {
            self.request_keyframe(now);
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) wants to run next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let gap = self.gap_since.map(|t| t + GAP_WAIT);
        let kf = self
            .waiting_keyframe
            .then_some(self.last_request)
            .flatten()
            .map(|t| t + KEYFRAME_REPEAT);
        [gap, kf].into_iter().flatten().min()
    }

    /// The next output, if any.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    fn emit(&mut self, o: Output) {
        if self.out.len() >= MAX_OUTPUTS
            && let Some(pos) = self.out.iter().position(|o| matches!(o, Output::Frame(_)))
        {
            self.out.remove(pos);
            self.stats.dropped += 1;
        }
        self.out.push_back(o);
    }

    fn request_keyframe(&mut self, now: Instant) {
        self.last_request = Some(now);
        self.stats.keyframe_requests += 1;
        self.emit(Output::KeyframeNeeded);
    }

    /// Emits every complete frame at the head of the buffer.
    fn assemble(&mut self, now: Instant) {
        loop {
            let Some(next) = self.next else { return };
            let Some(first) = self.buf.get(&next) else {
                self.note_gap(now);
                return;
            };
            if !self.started && !self.codec.starts_frame(&first.payload) {
                self.note_gap(now); // joined mid-frame: an earlier packet may still come
                return;
            }
            let ts = first.ts;
            // The frame runs from `next` to its marker, or to the packet before a new timestamp.
            let mut end = None;
            let mut seq = next;
            while let Some(p) = self.buf.get(&seq) {
                if p.ts != ts {
                    end = Some(seq - 1);
                    break;
                }
                if p.marker || !self.codec.is_video() {
                    end = Some(seq);
                    break;
                }
                seq += 1;
            }
            let Some(end) = end else {
                self.note_gap(now);
                return;
            };
            let packets: Vec<RtpIn> = (next..=end).filter_map(|s| self.buf.remove(&s)).collect();
            self.next = Some(end + 1);
            self.started = true;
            self.gap_since = None;
            self.finish_frame(ts, &packets, now);
        }
    }

    fn note_gap(&mut self, now: Instant) {
        if !self.buf.is_empty() && self.gap_since.is_none() {
            self.gap_since = Some(now);
        }
    }

    fn finish_frame(&mut self, ts: u32, packets: &[RtpIn], now: Instant) {
        let payloads: Vec<&[u8]> = packets.iter().map(|p| &p.payload[..]).collect();
        let ext_ts = self.extend_ts(ts);
        let frame = match self.codec.depacketize(&payloads) {
            Ok(f) => f,
            Err(e) => {
                tracing::debug!(error = %e, "frame dropped");
                self.drop_frame(now);
                return;
            }
        };
        let keyframe = self.codec.is_keyframe(&frame);
        if self.waiting_keyframe {
            if !keyframe {
                self.drop_frame(now);
                return;
            }
            self.waiting_keyframe = false;
        }
        let first = *self.first_ts.get_or_insert(ext_ts);
        let pts_us = ext_ts.saturating_sub(first) * 1_000_000 / u64::from(self.clock_rate);
        let kind = if self.codec.is_video() {
            MediaKind::Video
        } else {
            MediaKind::Audio
        };
        self.stats.frames += 1;
        self.emit(Output::Frame(EncodedFrame {
            kind,
            pts_us,
            keyframe,
            data: Bytes::from(frame),
            audio_level: None,
        }));
    }

    /// A frame is lost: video waits for a keyframe (asking for one unless it just did).
    fn drop_frame(&mut self, now: Instant) {
        self.stats.dropped += 1;
        if !self.codec.is_video() {
            return;
        }
        self.waiting_keyframe = true;
        if self.last_request.is_none_or(|t| now >= t + KEYFRAME_REPEAT) {
            self.request_keyframe(now);
        }
    }

    /// Gives up the frame at the head: moves to the first buffered packet of another timestamp.
    fn skip(&mut self, now: Instant) {
        self.gap_since = None;
        let Some((&first, p)) = self.buf.iter().next() else {
            return;
        };
        let broken_ts = p.ts;
        let last = self.buf.keys().next_back().copied().unwrap_or(first);
        let upto = if self.codec.is_video() {
            self.buf
                .iter()
                .find(|(_, p)| p.ts != broken_ts)
                .map_or(last + 1, |(&s, _)| s)
        } else {
            first // every audio packet is a frame of its own
        };
        let stale: Vec<u64> = self.buf.range(..upto).map(|(&s, _)| s).collect();
        for s in stale {
            self.buf.remove(&s);
        }
        self.next = Some(upto);
        self.started = true;
        self.drop_frame(now);
        self.assemble(now);
    }
}

#[cfg(test)]
#[path = "reassembly_tests.rs"]
mod tests;
