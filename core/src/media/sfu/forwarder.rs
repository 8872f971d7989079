//! The forwarder state machine: participants, their published tracks and send slots; slot
//! assignment (Last-N within budget); the per-packet path; keyframe and NACK handling.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use super::cache::PacketCache;
use super::keyframe::starts_keyframe;
use super::rtp::{Rewrite, RtpView, SeqExtender, rewritten};
use super::slot::Slot;
use super::speakers::Speakers;
use super::{
    ParticipantId, SfuAction, SfuError, SlotId, SlotLayout, SourceKey, TrackInfo, TrackKind,
};

/// Actions held for the driver; beyond this, packets are dropped (and counted) rather than
/// queued, so a driver that stops draining cannot grow memory.
pub const MAX_ACTIONS: usize = 8192;
/// Sequence numbers answered per NACK input.
pub const MAX_NACK: usize = 128;
/// Slots per kind a subscriber may have.
pub const MAX_SLOTS: usize = 16;
/// A source chosen for a slot that sends no keyframe within this is given up on (the old
/// source stops too, so a budget is not exceeded for long).
pub const PENDING_LIMIT: Duration = Duration::from_secs(2);
/// Assumed bitrate of a video source not yet measured.
const UNMEASURED_VIDEO_BPS: u64 = 500_000;
/// A source counts as sending (rankable for a slot) while its latest packet is this recent: a
/// camera turned off or a screen track not shared sends nothing and takes no slot or budget
/// once this has passed. Not shorter: a publisher's frames can pause for a second or more
/// under load (a browser's pacing, a phone's encoder), and each drop from the ranking costs
/// the subscribers a switch and a keyframe (1 s made a browser's picture flap in a call).
pub const LIVE_WINDOW: Duration = Duration::from_secs(5);
/// Window of a source's bitrate measurement.
const RATE_WINDOW: Duration = Duration::from_millis(500);
/// Budget a subscriber must have left after its Last-N videos for thumbnails (a keyframe
/// every [`SfuConfig::thumbnail_interval`]).
const THUMBNAIL_BPS: u64 = 150_000;

/// Forwarder settings.
#[derive(Debug, Clone)]
pub struct SfuConfig {
    /// Video slots used for the last N active speakers. A subscriber's video slots beyond
    /// these are thumbnail slots: each shows, in turn, one keyframe of a participant outside
    /// that subscriber's last N (a still picture refreshed every few seconds).
    pub last_n: usize,
    /// Audio slots used (the most recent speakers are heard).
    pub audio_slots: usize,
    /// At most one keyframe request per source in this interval (repeated while awaited).
    pub keyframe_interval: Duration,
    /// How often slots are reassigned (speaker ranking and budgets).
    pub reassign_interval: Duration,
    /// How often a thumbnail slot moves on to the next participant outside the last N.
    pub thumbnail_interval: Duration,
}

impl Default for SfuConfig {
    fn default() -> Self {
        Self {
            last_n: 4,
            audio_slots: 4,
            keyframe_interval: Duration::from_millis(500),
            reassign_interval: Duration::from_millis(250),
            thumbnail_interval: Duration::from_secs(2),
        }
    }
}

/// Counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SfuStats {
    /// Packets received from publishers.
    pub packets_in: u64,
    /// Packets sent to subscribers (retransmissions included).
    pub packets_out: u64,
    /// Bytes sent to subscribers.
    pub bytes_out: u64,
    /// Keyframe requests sent to publishers.
    pub keyframe_requests: u64,
    /// NACKed packets answered from the cache.
    pub retransmitted: u64,
    /// Slot switches to a new source.
    pub switches: u64,
    /// Inputs refused as malformed or unknown.
    pub refused: u64,
    /// Packets dropped because the driver did not drain actions.
    pub backlog_drops: u64,
}

#[derive(Debug)]
struct Source {
    info: TrackInfo,
    ext: SeqExtender,
    cache: PacketCache,
    window_start: Option<Instant>,
    window_bytes: u64,
    rate_bps: u64,
    last_request: Option<Instant>,
    keyframe_wanted: bool,
    /// When its latest packet came.
    last_packet: Option<Instant>,
}

#[derive(Debug, Default)]
struct Participant {
    sources: BTreeMap<TrackKind, Source>,
    slots: BTreeMap<SlotId, Slot>,
    budget_bps: Option<u64>,
    shown: Vec<(SlotId, Option<ParticipantId>)>,
    /// When the thumbnail slots move on next, and whom they showed last.
    thumb_at: Option<Instant>,
    thumb_last: Option<ParticipantId>,
}

/// The forwarder of one group call.
#[derive(Debug)]
pub struct Forwarder {
    cfg: SfuConfig,
    who: BTreeMap<ParticipantId, Participant>,
    speakers: Speakers,
    actions: VecDeque<SfuAction>,
    next_reassign: Option<Instant>,
    stats: SfuStats,
    seq_seed: u16,
}

impl Forwarder {
    /// A forwarder with nobody in it.
    pub fn new(cfg: SfuConfig) -> Self {
        Self {
            cfg,
            who: BTreeMap::new(),
            speakers: Speakers::default(),
            actions: VecDeque::new(),
            next_reassign: None,
            stats: SfuStats::default(),
            seq_seed: rand::random(),
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> SfuStats {
        self.stats
    }

    /// Adds a participant (no tracks, no slots yet).
    pub fn add_participant(&mut self, now: Instant, id: ParticipantId) {
        self.who.entry(id).or_default();
        self.speakers.add(id);
        self.next_reassign = Some(now);
    }

    /// Removes a participant: its tracks leave every slot at once.
    pub fn remove_participant(&mut self, now: Instant, id: ParticipantId) {
        if self.who.remove(&id).is_none() {
            return;
        }
        self.speakers.remove(id);
        for p in self.who.values_mut() {
            for slot in p.slots.values_mut() {
                if slot.current().is_some_and(|s| s.participant == id) {
                    slot.stop();
                }
                if slot.pending.is_some_and(|s| s.participant == id) {
                    slot.choose(now, None);
                }
                slot.forget(id);
            }
        }
        self.publish_slot_maps();
        self.next_reassign = Some(now);
    }

    /// A participant publishes a track (again: its numbering restarts).
    pub fn publish(
        &mut self,
        now: Instant,
        id: ParticipantId,
        kind: TrackKind,
        info: TrackInfo,
    ) -> Result<(), SfuError> {
        let p = self.who.get_mut(&id).ok_or(SfuError::Unknown)?;
        p.sources.insert(
            kind,
            Source {
                info,
                ext: SeqExtender::default(),
                cache: PacketCache::default(),
                window_start: None,
                window_bytes: 0,
                rate_bps: 0,
                last_request: None,
                keyframe_wanted: false,
                last_packet: None,
            },
        );
        self.next_reassign = Some(now);
        Ok(())
    }

    /// A participant stops a track.
    pub fn unpublish(&mut self, now: Instant, id: ParticipantId, kind: TrackKind) {
        if let Some(p) = self.who.get_mut(&id) {
            p.sources.remove(&kind);
        }
        let key = SourceKey {
            participant: id,
            kind,
        };
        for p in self.who.values_mut() {
            for slot in p.slots.values_mut() {
                if slot.current() == Some(key) {
                    slot.stop();
                }
            }
        }
        self.publish_slot_maps();
        self.next_reassign = Some(now);
    }

    /// Sets a participant's send slots (as negotiated on its media connection).
    pub fn subscribe(
        &mut self,
        now: Instant,
        id: ParticipantId,
        layout: &SlotLayout,
    ) -> Result<(), SfuError> {
        let p = self.who.get_mut(&id).ok_or(SfuError::Unknown)?;
        p.slots.clear();
        p.shown.clear();
        let kinds = [
            (TrackKind::Audio, &layout.audio),
            (TrackKind::Video, &layout.video),
            (TrackKind::Screen, &layout.screen),
        ];
        for (kind, outs) in kinds {
            for (index, out) in outs.iter().take(MAX_SLOTS).enumerate() {
                self.seq_seed = self.seq_seed.wrapping_add(7919);
                let slot = Slot::new(*out, self.seq_seed);
                let index = index as u8;
                p.slots.insert(SlotId { kind, index }, slot);
            }
        }
        self.next_reassign = Some(now);
        Ok(())
    }

    /// A subscriber's available bitrate (from its congestion estimate); `None`: unlimited.
    pub fn set_budget(&mut self, now: Instant, id: ParticipantId, bps: Option<u64>) {
        if let Some(p) = self.who.get_mut(&id) {
            p.budget_bps = bps;
            self.next_reassign = Some(now);
        }
    }

    /// An RTP packet from a publisher's track.
    pub fn handle_rtp(
        &mut self,
        now: Instant,
        from: ParticipantId,
        kind: TrackKind,
        packet: &[u8],
    ) -> Result<(), SfuError> {
        let view = RtpView::parse(packet).inspect_err(|_| self.stats.refused += 1)?;
        let Some(src) = self
            .who
            .get_mut(&from)
            .and_then(|p| p.sources.get_mut(&kind))
        else {
            self.stats.refused += 1;
            return Err(SfuError::Unknown);
        };
        self.stats.packets_in += 1;
        let in_ext = src.ext.extend(view.seq());
        src.cache.put(in_ext, packet);
        src.last_packet = Some(now);
        meter(src, now, packet.len());
        let info = src.info;
        let keyframe = kind == TrackKind::Audio || starts_keyframe(info.codec, view.payload());
        if keyframe {
            src.keyframe_wanted = false;
        }
        if kind == TrackKind::Audio
            && let Some(level) = info.audio_level_ext.and_then(|id| view.audio_level(id))
            && self.speakers.observe(now, from, level)
        {
            self.actions
                .push_back(SfuAction::Speakers(self.speakers.speaking()));
            self.next_reassign = Some(now);
        }
        let key = SourceKey {
            participant: from,
            kind,
        };
        let mut switched = vec![];
        for (&to, p) in self.who.iter_mut() {
            if to == from {
                continue;
            }
            for (&slot_id, slot) in p.slots.iter_mut() {
                if slot_id.kind != kind {
                    continue;
                }
                if keyframe && slot.pending == Some(key) {
                    slot.begin(now, in_ext, view.timestamp(), info.clock_rate);
                    if is_thumbnail(&self.cfg, slot_id) {
                        slot.still = Some(view.timestamp());
                    }
                    self.stats.switches += 1;
                    switched.push(to);
                }
                if slot.current() != Some(key) {
                    continue;
                }
                if slot.still.is_some_and(|ts| ts != view.timestamp()) {
                    // A thumbnail carries one keyframe; the frames after it are not sent.
                    slot.stop();
                    continue;
                }
                let Some((seq, timestamp)) = slot.map(now, in_ext, view.timestamp()) else {
                    continue;
                };
                if self.actions.len() >= MAX_ACTIONS {
                    self.stats.backlog_drops += 1;
                    continue;
                }
                let out = rewritten(
                    &view,
                    Rewrite {
                        payload_type: slot.out.payload_type,
                        seq,
                        timestamp,
                        ssrc: slot.out.ssrc,
                    },
                );
                self.stats.packets_out += 1;
                self.stats.bytes_out += out.len() as u64;
                self.actions.push_back(SfuAction::Send {
                    to,
                    slot: slot_id,
                    packet: out,
                });
            }
        }
        for to in switched {
            self.publish_slot_map(to);
        }
        Ok(())
    }

    /// A subscriber's keyframe request (PLI/FIR) on one of its slots.
    pub fn handle_pli(&mut self, now: Instant, to: ParticipantId, slot: SlotId) {
        let Some(s) = self.who.get(&to).and_then(|p| p.slots.get(&slot)) else {
            return;
        };
        if let Some(source) = s.current().or(s.pending) {
            self.want_keyframe(now, source);
        }
    }

    /// A subscriber's NACK on one of its slots: the packets still cached are sent again.
    pub fn handle_nack(&mut self, to: ParticipantId, slot_id: SlotId, seqs: &[u16]) {
        let Some(slot) = self.who.get(&to).and_then(|p| p.slots.get(&slot_id)) else {
            return;
        };
        let out = slot.out;
        let targets: Vec<_> = seqs
            .iter()
            .take(MAX_NACK)
            .filter_map(|&seq| slot.nack(seq).map(|t| (seq, t)))
            .collect();
        for (seq, t) in targets {
            let cached = self
                .who
                .get(&t.source.participant)
                .and_then(|p| p.sources.get(&t.source.kind))
                .and_then(|s| s.cache.get(t.in_ext));
            let Some(view) = cached.and_then(|c| RtpView::parse(c).ok()) else {
                continue;
            };
            if self.actions.len() >= MAX_ACTIONS {
                self.stats.backlog_drops += 1;
                continue;
            }
            let packet = rewritten(
                &view,
                Rewrite {
                    payload_type: out.payload_type,
                    seq,
                    timestamp: view.timestamp().wrapping_add(t.ts_offset),
                    ssrc: out.ssrc,
                },
            );
            self.stats.retransmitted += 1;
            self.stats.packets_out += 1;
            self.stats.bytes_out += packet.len() as u64;
            self.actions.push_back(SfuAction::Send {
                to,
                slot: slot_id,
                packet,
            });
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) wants to run next: the next reassignment,
    /// the next repeat of an awaited keyframe request, the next pending switch to give up.
    /// Never a time `handle_timeout` would find nothing to do at.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let interval = self.cfg.keyframe_interval;
        let repeats = self
            .who
            .values()
            .flat_map(|p| p.sources.values())
            .filter(|s| s.keyframe_wanted)
            .filter_map(|s| s.last_request.map(|t| t + interval));
        let give_up = self
            .who
            .values()
            .flat_map(|p| p.slots.values())
            .filter_map(|s| s.pending_since.map(|t| t + PENDING_LIMIT));
        repeats.chain(give_up).chain(self.next_reassign).min()
    }

    /// Time passes: slots are reassigned when due, awaited keyframes asked for again, stuck
    /// switches given up.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.next_reassign.is_some_and(|t| t <= now) {
            self.reassign(now);
            self.next_reassign = Some(now + self.cfg.reassign_interval);
        }
        let mut stuck = vec![];
        for (&to, p) in self.who.iter_mut() {
            for slot in p.slots.values_mut() {
                if slot
                    .pending_since
                    .is_some_and(|t| now.duration_since(t) >= PENDING_LIMIT)
                {
                    slot.choose(now, None);
                    slot.stop();
                    stuck.push(to);
                }
            }
        }
        for to in stuck {
            self.publish_slot_map(to);
        }
        // A keyframe is asked for again only while a slot still forwards or awaits its source
        // (a switch given up, or a source no slot shows any more, is not asked forever).
        let in_use: Vec<SourceKey> = self
            .who
            .values()
            .flat_map(|p| p.slots.values())
            .flat_map(|s| [s.current(), s.pending])
            .flatten()
            .collect();
        let mut again = vec![];
        for (&participant, p) in self.who.iter_mut() {
            for (&kind, s) in p.sources.iter_mut().filter(|(_, s)| s.keyframe_wanted) {
                let key = SourceKey { participant, kind };
                if in_use.contains(&key) {
                    again.push(key);
                } else {
                    s.keyframe_wanted = false;
                }
            }
        }
        for key in again {
            self.want_keyframe(now, key);
        }
    }

    /// The next action for the driver.
    pub fn poll_action(&mut self) -> Option<SfuAction> {
        self.actions.pop_front()
    }

    /// Chooses every subscriber's slot sources: audio to the most recent speakers, screens,
    /// then video to the last N speakers while the subscriber's budget allows.
    fn reassign(&mut self, now: Instant) {
        let ranked = self.speakers.ranked();
        let rate = |who: &BTreeMap<ParticipantId, Participant>, k: SourceKey| {
            who.get(&k.participant)
                .and_then(|p| p.sources.get(&k.kind))
                .map(|s| match (s.rate_bps, k.kind) {
                    (0, TrackKind::Audio) => 0,
                    (0, _) => UNMEASURED_VIDEO_BPS,
                    (r, _) => r,
                })
                .unwrap_or(0)
        };
        let sending = |s: &Source| {
            s.last_packet
                .is_some_and(|t| now.duration_since(t) < LIVE_WINDOW)
        };
        let publishing = |who: &BTreeMap<ParticipantId, Participant>, kind| {
            ranked
                .iter()
                .filter(|id| {
                    who.get(id)
                        .and_then(|p| p.sources.get(&kind))
                        .is_some_and(sending)
                })
                .map(|&participant| SourceKey { participant, kind })
                .collect::<Vec<_>>()
        };
        let audio = publishing(&self.who, TrackKind::Audio);
        let screen = publishing(&self.who, TrackKind::Screen);
        let video = publishing(&self.who, TrackKind::Video);
        let subscribers: Vec<ParticipantId> = self.who.keys().copied().collect();
        let mut wants = vec![];
        for to in subscribers {
            let p = &self.who[&to];
            let count = |kind| p.slots.keys().filter(|s| s.kind == kind).count();
            let others = |list: &[SourceKey], n: usize| {
                list.iter()
                    .filter(|k| k.participant != to)
                    .take(n)
                    .copied()
                    .collect::<Vec<_>>()
            };
            let heard = others(&audio, count(TrackKind::Audio).min(self.cfg.audio_slots));
            let mut left = p.budget_bps.unwrap_or(u64::MAX);
            left = left.saturating_sub(heard.iter().map(|&k| rate(&self.who, k)).sum());
            let mut seen = |list: Vec<SourceKey>| {
                list.into_iter()
                    .filter(|&k| {
                        let cost = rate(&self.who, k);
                        let fits = cost <= left;
                        if fits {
                            left -= cost;
                        }
                        fits
                    })
                    .collect::<Vec<_>>()
            };
            let screens = seen(others(&screen, count(TrackKind::Screen)));
            let cams = seen(others(&video, count(TrackKind::Video).min(self.cfg.last_n)));
            // Thumbnails: the next participant with video outside the last N, in turn, while
            // the budget leaves room for a keyframe now and then.
            let thumb_due = p.thumb_at.is_none_or(|t| t <= now)
                && p.slots.keys().any(|id| is_thumbnail(&self.cfg, *id));
            let thumb = if !thumb_due {
                None
            } else if left >= THUMBNAIL_BPS {
                let outside: Vec<SourceKey> = video
                    .iter()
                    .filter(|k| k.participant != to && !cams.contains(k))
                    .copied()
                    .collect();
                let mut ids: Vec<ParticipantId> = outside.iter().map(|k| k.participant).collect();
                ids.sort();
                let next = ids
                    .iter()
                    .find(|id| p.thumb_last.is_none_or(|l| **id > l))
                    .or(ids.first())
                    .copied();
                Some(next.map(|participant| SourceKey {
                    participant,
                    kind: TrackKind::Video,
                }))
            } else {
                Some(None)
            };
            wants.push((to, [heard, cams, screens], thumb));
        }
        let mut requests = vec![];
        let mut changed = vec![];
        let cfg = self.cfg.clone();
        for (to, [heard, cams, screens], thumb) in wants {
            let p = self.who.get_mut(&to).expect("listed above");
            if let Some(next) = thumb {
                p.thumb_at = Some(now + cfg.thumbnail_interval);
                p.thumb_last = next.map(|k| k.participant).or(p.thumb_last);
                for (_, slot) in p
                    .slots
                    .iter_mut()
                    .filter(|(id, _)| is_thumbnail(&cfg, **id))
                {
                    slot.choose_still(now, next);
                    requests.extend(next);
                }
                changed.push(to);
            }
            let kinds = [
                (TrackKind::Audio, heard),
                (TrackKind::Video, cams),
                (TrackKind::Screen, screens),
            ];
            for (kind, list) in kinds {
                let mut placed: Vec<SourceKey> = vec![];
                let mut free = vec![];
                let placing = |id: &SlotId| id.kind == kind && !is_thumbnail(&cfg, *id);
                for (_, slot) in p.slots.iter_mut().filter(|(id, _)| placing(id)) {
                    let wanted = |k: &SourceKey| list.contains(k) && !placed.contains(k);
                    let keep = slot
                        .current()
                        .filter(wanted)
                        .or(slot.pending.filter(wanted));
                    match keep {
                        Some(k) => {
                            slot.choose(now, Some(k));
                            placed.push(k);
                        }
                        None => free.push(slot),
                    }
                }
                let mut rest = list.iter().filter(|k| !placed.contains(k));
                for slot in free {
                    match rest.next() {
                        Some(&k) => {
                            slot.choose(now, Some(k));
                        }
                        None => {
                            slot.choose(now, None);
                            if slot.current().is_some() {
                                slot.stop();
                                changed.push(to);
                            }
                        }
                    }
                }
            }
            for slot in p.slots.values().filter(|s| s.pending.is_some()) {
                requests.extend(slot.pending);
            }
        }
        for key in requests {
            self.want_keyframe(now, key);
        }
        for to in changed {
            self.publish_slot_map(to);
        }
    }

    /// Asks a publisher for a keyframe, at most once per interval; while awaited it is asked
    /// again at each interval.
    fn want_keyframe(&mut self, now: Instant, key: SourceKey) {
        let Some(s) = self
            .who
            .get_mut(&key.participant)
            .and_then(|p| p.sources.get_mut(&key.kind))
        else {
            return;
        };
        if key.kind == TrackKind::Audio {
            return;
        }
        s.keyframe_wanted = true;
        if s.last_request
            .is_some_and(|t| now.duration_since(t) < self.cfg.keyframe_interval)
        {
            return;
        }
        s.last_request = Some(now);
        self.stats.keyframe_requests += 1;
        self.actions.push_back(SfuAction::RequestKeyframe(key));
    }

    fn publish_slot_maps(&mut self) {
        let ids: Vec<_> = self.who.keys().copied().collect();
        for id in ids {
            self.publish_slot_map(id);
        }
    }

    /// Sends a subscriber its slot map if what its slots show changed.
    fn publish_slot_map(&mut self, to: ParticipantId) {
        let Some(p) = self.who.get_mut(&to) else {
            return;
        };
        let shown: Vec<_> = p
            .slots
            .iter()
            .map(|(&id, s)| (id, s.showing().map(|k| k.participant)))
            .collect();
        if shown != p.shown {
            p.shown = shown.clone();
            self.actions
                .push_back(SfuAction::SlotMap { to, slots: shown });
        }
    }
}

/// Whether `id` is a thumbnail slot (a video slot beyond the last N).
fn is_thumbnail(cfg: &SfuConfig, id: SlotId) -> bool {
    id.kind == TrackKind::Video && usize::from(id.index) >= cfg.last_n
}

/// Counts a packet into its source's bitrate.
fn meter(s: &mut Source, now: Instant, len: usize) {
    let start = *s.window_start.get_or_insert(now);
    s.window_bytes += len as u64;
    let elapsed = now.duration_since(start);
    if elapsed >= RATE_WINDOW {
        let bps = s.window_bytes * 8 * 1000 / elapsed.as_millis().max(1) as u64;
        s.rate_bps = if s.rate_bps == 0 {
            bps
        } else {
            (s.rate_bps + bps) / 2
        };
        s.window_start = Some(now);
        s.window_bytes = 0;
    }
}
