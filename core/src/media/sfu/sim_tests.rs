//! The forwarder in a simulated call: publishers that behave like encoders (a keyframe when
//! asked, audio levels while speaking), subscribers that check what they get. Deterministic:
//! time is simulated and nothing is random but the slots' first sequence numbers.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::forwarder::LIVE_WINDOW;
use super::rtp::RtpView;
use super::*;

const AUDIO_PT: u8 = 111;
const VIDEO_PT: u8 = 102;
/// Video packets per delta frame and per keyframe (1,000 bytes each), 30 frames/s.
const DELTA_PACKETS: usize = 3;
const KEY_PACKETS: usize = 10;

struct Publisher {
    seq_a: u16,
    seq_v: u16,
    frame: u32,
    keyframe_due: bool,
    /// Its camera sends nothing.
    camera_off: bool,
    /// Its encoder ignores keyframe requests (only delta frames after the first).
    deaf: bool,
}

#[derive(Default)]
struct Subscriber {
    /// Per slot: (time, seq, ts, first packet of a keyframe).
    got: BTreeMap<SlotId, Vec<(Instant, u16, u32, bool)>>,
    shown: BTreeMap<SlotId, Option<ParticipantId>>,
    /// Everyone each slot was ever said to show.
    ever_shown: BTreeMap<SlotId, std::collections::BTreeSet<ParticipantId>>,
    /// Bytes received per whole second of the run.
    bytes_per_s: BTreeMap<u64, u64>,
}

struct Sim {
    t0: Instant,
    now: Instant,
    fwd: Forwarder,
    pubs: BTreeMap<ParticipantId, Publisher>,
    subs: BTreeMap<ParticipantId, Subscriber>,
    keyframe_requests: Vec<(Instant, SourceKey)>,
    /// `handle_timeout` calls made.
    timeouts: usize,
    /// Who speaks when: participant `who(t)` talks, everyone else is silent.
    speaker: Box<dyn Fn(Duration) -> Option<u64>>,
}

fn layout(p: u64, video: usize) -> SlotLayout {
    let out = |k: u32, pt| SlotOut {
        ssrc: (p as u32) << 8 | k,
        payload_type: pt,
    };
    SlotLayout {
        audio: (0..4).map(|k| out(k, AUDIO_PT)).collect(),
        video: (0..video as u32).map(|k| out(16 + k, VIDEO_PT)).collect(),
        screen: vec![],
    }
}

fn rtp(pt: u8, seq: u16, ts: u32, ext: Option<u8>, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, pt];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&0x1234u32.to_be_bytes());
    if let Some(level) = ext {
        p[0] |= 0x10;
        p.extend_from_slice(&[0xBE, 0xDE, 0, 1, 0x10, level, 0, 0]);
    }
    p.extend_from_slice(payload);
    p
}

impl Sim {
    fn new(
        n: u64,
        video_slots: usize,
        speaker: impl Fn(Duration) -> Option<u64> + 'static,
    ) -> Self {
        let t0 = Instant::now();
        let mut fwd = Forwarder::new(SfuConfig::default());
        let mut pubs = BTreeMap::new();
        let mut subs = BTreeMap::new();
        for i in 0..n {
            let id = ParticipantId(i);
            fwd.add_participant(t0, id);
            let opus = TrackInfo {
                codec: crate::media::depacketize::Codec::Opus,
                clock_rate: 48_000,
                audio_level_ext: Some(1),
            };
            let h264 = TrackInfo {
                codec: crate::media::depacketize::Codec::H264,
                clock_rate: 90_000,
                audio_level_ext: None,
            };
            fwd.publish(t0, id, TrackKind::Audio, opus).unwrap();
            fwd.publish(t0, id, TrackKind::Video, h264).unwrap();
            fwd.subscribe(t0, id, &layout(i, video_slots)).unwrap();
            pubs.insert(
                id,
                Publisher {
                    seq_a: (i * 1000) as u16,
                    seq_v: 65000 + i as u16,
                    frame: 0,
                    keyframe_due: true,
                    camera_off: false,
                    deaf: false,
                },
            );
            subs.insert(id, Subscriber::default());
        }
        Self {
            t0,
            now: t0,
            fwd,
            pubs,
            subs,
            keyframe_requests: vec![],
            timeouts: 0,
            speaker: Box::new(speaker),
        }
    }

    /// Runs until `until` after the start, in 1 ms steps.
    fn run(&mut self, until: Duration) {
        while self.now < self.t0 + until {
            self.now += Duration::from_millis(1);
            let ms = self.now.duration_since(self.t0).as_millis() as u64;
            let ids: Vec<_> = self.pubs.keys().copied().collect();
            for id in ids {
                // Spread participants over the 20 ms audio and 33⅓ ms video cycles.
                if (ms + id.0).is_multiple_of(20) {
                    self.send_audio(id, ms);
                }
                let frame = |ms: u64| (ms + id.0) * 3 / 100;
                if frame(ms) != frame(ms - 1) && !self.pubs[&id].camera_off {
                    self.send_video(id);
                }
            }
            if self.fwd.poll_timeout().is_some_and(|t| t <= self.now) {
                self.fwd.handle_timeout(self.now);
                self.timeouts += 1;
                self.drain();
                assert!(
                    self.fwd.poll_timeout().is_none_or(|t| t > self.now),
                    "a timeout still due right after it ran"
                );
            }
        }
    }

    fn send_audio(&mut self, id: ParticipantId, ms: u64) {
        let speaking = (self.speaker)(Duration::from_millis(ms)) == Some(id.0);
        let p = self.pubs.get_mut(&id).unwrap();
        p.seq_a = p.seq_a.wrapping_add(1);
        let ts = (ms as u32).wrapping_mul(48);
        let level = if speaking { 25 } else { 100 };
        let pkt = rtp(AUDIO_PT, p.seq_a, ts, Some(level), &[0xfc; 100]);
        self.fwd
            .handle_rtp(self.now, id, TrackKind::Audio, &pkt)
            .unwrap();
        self.drain();
    }

    fn send_video(&mut self, id: ParticipantId) {
        let p = self.pubs.get_mut(&id).unwrap();
        let key = std::mem::take(&mut p.keyframe_due);
        p.frame += 1;
        let ts = p.frame.wrapping_mul(3000);
        let count = if key { KEY_PACKETS } else { DELTA_PACKETS };
        let mut pkts = vec![];
        for k in 0..count {
            p.seq_v = p.seq_v.wrapping_add(1);
            let mut payload = match (k, key) {
                (0, true) => vec![0x78, 0, 2, 0x67, 0x42, 0, 2, 0x68, 0xce],
                (0, false) => vec![0x7c, 0x81],
                _ => vec![0x7c, 0x05],
            };
            payload.resize(1000, 0xab);
            let mut pkt = rtp(VIDEO_PT, p.seq_v, ts, None, &payload);
            if k + 1 == count {
                pkt[1] |= 0x80;
            }
            pkts.push(pkt);
        }
        for pkt in pkts {
            self.fwd
                .handle_rtp(self.now, id, TrackKind::Video, &pkt)
                .unwrap();
            self.drain();
        }
    }

    fn drain(&mut self) {
        while let Some(a) = self.fwd.poll_action() {
            match a {
                SfuAction::Send { to, slot, packet } => {
                    let v = RtpView::parse(&packet).unwrap();
                    let kf = slot.kind != TrackKind::Video
                        || starts_keyframe(crate::media::depacketize::Codec::H264, v.payload());
                    let s = self.subs.get_mut(&to).unwrap();
                    s.got
                        .entry(slot)
                        .or_default()
                        .push((self.now, v.seq(), v.timestamp(), kf));
                    let sec = self.now.duration_since(self.t0).as_secs();
                    *s.bytes_per_s.entry(sec).or_default() += packet.len() as u64;
                }
                SfuAction::RequestKeyframe(key) => {
                    self.keyframe_requests.push((self.now, key));
                    let p = self.pubs.get_mut(&key.participant).unwrap();
                    p.keyframe_due |= !p.deaf;
                }
                SfuAction::SlotMap { to, slots } => {
                    let s = self.subs.get_mut(&to).unwrap();
                    for (slot, p) in &slots {
                        s.ever_shown.entry(*slot).or_default().extend(*p);
                    }
                    s.shown = slots.into_iter().collect();
                }
                SfuAction::Speakers(_) => {}
            }
        }
    }

    fn video_shown(&self, to: u64) -> Vec<ParticipantId> {
        self.subs[&ParticipantId(to)]
            .shown
            .iter()
            .filter(|(s, _)| s.kind == TrackKind::Video)
            .filter_map(|(_, p)| *p)
            .collect()
    }
}

/// Speakers take turns: participant `k` talks during second `2k .. 2k+2` of each round.
fn turns(n: u64) -> impl Fn(Duration) -> Option<u64> {
    move |t| Some((t.as_secs() / 2) % n)
}

fn check_continuity(sim: &Sim) {
    for (id, s) in &sim.subs {
        for (slot, got) in &s.got {
            for w in got.windows(2) {
                assert_eq!(
                    w[1].1,
                    w[0].1.wrapping_add(1),
                    "subscriber {id:?} slot {slot:?}: a gap or jump in the slot's numbering"
                );
                let dts = w[1].2.wrapping_sub(w[0].2);
                assert!(dts < 1 << 31, "slot {slot:?}: timestamp went back");
            }
        }
    }
}

#[test]
fn eight_participants_last_n_four_follow_the_speaker_with_continuous_streams() {
    let mut sim = Sim::new(8, 4, turns(8));
    sim.run(Duration::from_secs(17));
    check_continuity(&sim);
    // At 17 s participant 0 speaks again (round two, 16–18 s) after all of 1..7 spoke: every
    // other subscriber shows it, and four video sources at most, never itself.
    for to in 0..8 {
        let shown = sim.video_shown(to);
        assert!(shown.len() <= 4, "{to}: {shown:?}");
        assert!(!shown.contains(&ParticipantId(to)));
        if to != 0 {
            assert!(shown.contains(&ParticipantId(0)), "{to}: {shown:?}");
            // The three before it in the turns (7, 6, 5) fill the other slots.
            for recent in [7, 6, 5] {
                if recent != to {
                    assert!(shown.contains(&ParticipantId(recent)), "{to}: {shown:?}");
                }
            }
        }
    }
    // Every video slot starts with a keyframe and switches only at keyframes: the first packet
    // after each change of source is a keyframe start (sequence continuity holds across it).
    let s = &sim.subs[&ParticipantId(1)];
    for (slot, got) in s.got.iter().filter(|(s, _)| s.kind == TrackKind::Video) {
        assert!(got[0].3, "{slot:?} began with a delta frame");
    }
    // Keyframe requests were coalesced: 7 subscribers switching to the same speaker at once
    // cost one request, so far fewer than switches.
    let stats = sim.fwd.stats();
    assert!(stats.switches > 20, "{stats:?}");
    assert!(
        (sim.keyframe_requests.len() as u64) < stats.switches / 3,
        "{} requests for {} switches",
        sim.keyframe_requests.len(),
        stats.switches
    );
}

#[test]
fn a_thumbnail_slot_shows_the_others_in_turn_one_keyframe_at_a_time() {
    // Four video slots for the last N plus one thumbnail slot.
    let mut sim = Sim::new(8, 5, turns(8));
    sim.run(Duration::from_secs(17));
    check_continuity(&sim);
    let thumb = SlotId {
        kind: TrackKind::Video,
        index: 4,
    };
    for (id, s) in &sim.subs {
        // Only whole keyframes: every frame on the slot starts with one and has all its packets.
        let got = &s.got[&thumb];
        let mut frames: Vec<Vec<&(Instant, u16, u32, bool)>> = vec![];
        for g in got {
            match frames.last_mut() {
                Some(f) if f[0].2 == g.2 => f.push(g),
                _ => frames.push(vec![g]),
            }
        }
        for f in &frames {
            assert!(f[0].3, "{id:?}: a thumbnail frame that is not a keyframe");
            assert_eq!(f.len(), KEY_PACKETS, "{id:?}: a partial thumbnail");
        }
        // One every 2 s or so (the first after the first ranking), not a video stream.
        assert!(
            (5..=9).contains(&frames.len()),
            "{id:?}: {} thumbnails",
            frames.len()
        );
        // In turn: the slot showed at least three different participants, never the
        // subscriber itself.
        let ever = &s.ever_shown[&thumb];
        assert!(ever.len() >= 3, "{id:?}: {ever:?}");
        assert!(!ever.contains(id));
        // The last-N slots still carry video as before.
        assert!(sim.video_shown(id.0).len() >= 4, "{id:?}");
    }
}

#[test]
fn a_subscriber_without_room_in_its_budget_gets_no_thumbnails() {
    let mut sim = Sim::new(8, 5, turns(8));
    // Room for one video (~800 kbit/s) and the audio, not for thumbnails on top.
    sim.fwd
        .set_budget(sim.t0, ParticipantId(3), Some(1_000_000));
    sim.run(Duration::from_secs(10));
    let thumb = SlotId {
        kind: TrackKind::Video,
        index: 4,
    };
    let weak = &sim.subs[&ParticipantId(3)];
    let late = sim.t0 + Duration::from_secs(3);
    let sent = weak
        .got
        .get(&thumb)
        .map_or(0, |g| g.iter().filter(|g| g.0 >= late).count());
    assert_eq!(sent, 0, "thumbnails beyond the budget");
    assert!(!sim.subs[&ParticipantId(4)].got[&thumb].is_empty());
}

#[test]
fn sixteen_participants_stay_inside_each_subscribers_budget() {
    let mut sim = Sim::new(16, 4, turns(16));
    // Audio is ~5 kB/s per source; each video source ~100 kB/s (800 kbit/s).
    let budget = 2_000_000;
    for i in 0..16 {
        sim.fwd.set_budget(sim.t0, ParticipantId(i), Some(budget));
    }
    sim.run(Duration::from_secs(20));
    check_continuity(&sim);
    let mut total = 0;
    for (id, s) in &sim.subs {
        // From second 2 (the first estimates are in), every second fits the budget; a
        // keyframe after a switch may add a little, hence 10 %.
        for (&sec, &bytes) in s.bytes_per_s.range(2..20) {
            let bps = bytes * 8;
            assert!(
                bps <= budget * 11 / 10,
                "{id:?} second {sec}: {bps} bit/s over a budget of {budget}"
            );
            total += bps;
        }
        let videos = sim.video_shown(id.0).len();
        assert!((1..=2).contains(&videos), "{id:?} sees {videos} videos");
    }
    assert!(total <= 16 * 18 * budget * 11 / 10);
}

#[test]
fn a_weak_subscriber_gets_fewer_videos_and_those_keep_flowing() {
    let mut sim = Sim::new(6, 4, turns(6));
    sim.run(Duration::from_secs(12));
    assert_eq!(sim.video_shown(5).len(), 4);
    sim.fwd
        .set_budget(sim.now, ParticipantId(5), Some(1_000_000));
    sim.run(Duration::from_secs(16));
    let shown = sim.video_shown(5);
    assert_eq!(shown.len(), 1, "{shown:?}");
    // The one left is still flowing (not a frozen picture): packets in the last second.
    let s = &sim.subs[&ParticipantId(5)];
    let last = sim.now - Duration::from_secs(1);
    let flowing = s
        .got
        .iter()
        .filter(|(slot, _)| slot.kind == TrackKind::Video)
        .any(|(_, got)| got.iter().filter(|g| g.0 >= last).count() > 50);
    assert!(flowing);
    check_continuity(&sim);
}

#[test]
fn a_participant_who_leaves_disappears_from_every_slot_at_once() {
    let mut sim = Sim::new(5, 4, turns(5));
    sim.run(Duration::from_secs(11));
    assert!(sim.video_shown(1).contains(&ParticipantId(0)));
    sim.fwd.remove_participant(sim.now, ParticipantId(0));
    sim.drain();
    for to in 1..5 {
        assert!(!sim.video_shown(to).contains(&ParticipantId(0)));
    }
    sim.pubs.remove(&ParticipantId(0));
    let before = sim.fwd.stats().refused;
    let pkt = rtp(AUDIO_PT, 1, 1, None, b"x");
    assert_eq!(
        sim.fwd
            .handle_rtp(sim.now, ParticipantId(0), TrackKind::Audio, &pkt),
        Err(SfuError::Unknown)
    );
    assert_eq!(sim.fwd.stats().refused, before + 1);
}

#[test]
fn nacks_are_answered_from_the_cache_with_the_slots_numbering() {
    let mut sim = Sim::new(3, 2, turns(3));
    sim.run(Duration::from_secs(3));
    let slot = SlotId {
        kind: TrackKind::Video,
        index: 0,
    };
    let got = sim.subs[&ParticipantId(2)].got[&slot].clone();
    let lost: Vec<u16> = got[got.len() - 20..got.len() - 15]
        .iter()
        .map(|g| g.1)
        .collect();
    let before = sim.fwd.stats().retransmitted;
    sim.fwd.handle_nack(ParticipantId(2), slot, &lost);
    let mut again = vec![];
    while let Some(a) = sim.fwd.poll_action() {
        if let SfuAction::Send {
            to,
            slot: s,
            packet,
        } = a
        {
            assert_eq!((to, s), (ParticipantId(2), slot));
            let v = RtpView::parse(&packet).unwrap();
            let orig = got.iter().find(|g| g.1 == v.seq()).unwrap();
            assert_eq!(v.timestamp(), orig.2, "same timestamp as first sent");
            again.push(v.seq());
        }
    }
    assert_eq!(again, lost);
    assert_eq!(sim.fwd.stats().retransmitted, before + 5);
}

#[test]
fn keyframe_requests_are_coalesced_and_repeated_until_a_keyframe_comes() {
    let mut sim = Sim::new(4, 4, turns(4));
    sim.run(Duration::from_secs(2));
    sim.keyframe_requests.clear();
    let slot = SlotId {
        kind: TrackKind::Video,
        index: 0,
    };
    // Three subscribers ask for a keyframe of what they see in slot 0 at the same moment.
    let mut asked = vec![];
    for to in 1..4 {
        let src = sim.subs[&ParticipantId(to)].shown[&slot].unwrap();
        asked.push(src);
        sim.fwd.handle_pli(sim.now, ParticipantId(to), slot);
    }
    sim.drain();
    let mut distinct = asked.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(sim.keyframe_requests.len(), distinct.len());
    // A publisher that ignores the request is asked again after the interval, not before.
    let ignored = sim.keyframe_requests[0].1;
    let at = sim.keyframe_requests[0].0;
    sim.pubs.get_mut(&ignored.participant).unwrap().keyframe_due = false;
    sim.keyframe_requests.clear();
    let mut t = sim.now;
    while t < at + Duration::from_millis(700) {
        t += Duration::from_millis(1);
        sim.now = t;
        if sim.fwd.poll_timeout().is_some_and(|d| d <= t) {
            sim.fwd.handle_timeout(t);
            sim.drain();
            sim.pubs.get_mut(&ignored.participant).unwrap().keyframe_due = false;
        }
    }
    let repeats: Vec<_> = sim
        .keyframe_requests
        .iter()
        .filter(|(_, k)| *k == ignored)
        .map(|(t, _)| t.duration_since(at))
        .collect();
    assert_eq!(repeats.len(), 1, "{repeats:?}");
    assert!(repeats[0] >= Duration::from_millis(500), "{repeats:?}");
}

#[test]
fn malformed_packets_are_refused_and_counted() {
    let mut sim = Sim::new(2, 1, turns(2));
    for bad in [vec![], vec![0x80; 5], vec![0x40; 20]] {
        assert!(matches!(
            sim.fwd
                .handle_rtp(sim.now, ParticipantId(0), TrackKind::Audio, &bad),
            Err(SfuError::Malformed(_))
        ));
    }
    assert_eq!(sim.fwd.stats().refused, 3);
    assert!(sim.fwd.poll_action().is_none() || sim.fwd.stats().packets_out == 0);
}

#[test]
fn a_source_that_never_sends_its_keyframe_does_not_spin_the_timer() {
    // Participant 1 speaks all the time but its encoder never makes the keyframe a switch
    // to it waits for: the switch is retried and given up, the timer runs only when due.
    let mut sim = Sim::new(3, 1, |_| Some(1));
    let p = sim.pubs.get_mut(&ParticipantId(1)).unwrap();
    (p.deaf, p.keyframe_due) = (true, false);
    sim.run(Duration::from_secs(5));
    // Reassignment every 250 ms, a repeated keyframe request every 500 ms, a give-up
    // every 2 s: about 30 in 5 s, not one per millisecond.
    assert!(sim.timeouts < 60, "{} timeouts in 5 s", sim.timeouts);
    let asked = sim
        .keyframe_requests
        .iter()
        .filter(|(_, k)| k.participant == ParticipantId(1))
        .count();
    assert!(
        (5..=12).contains(&asked),
        "{asked} requests to the deaf source"
    );
}

#[test]
fn a_camera_that_sends_nothing_takes_no_slot_and_gets_no_keyframe_requests() {
    // Participant 1 speaks with its camera off: the video slots show the others.
    let mut sim = Sim::new(4, 2, |_| Some(1));
    sim.pubs.get_mut(&ParticipantId(1)).unwrap().camera_off = true;
    sim.run(Duration::from_secs(5));
    for to in [0, 2, 3] {
        let ever = &sim.subs[&ParticipantId(to)].ever_shown;
        let mut cams = ever.iter().filter(|(s, _)| s.kind == TrackKind::Video);
        assert!(
            cams.all(|(_, who)| !who.contains(&ParticipantId(1))),
            "subscriber {to} was shown a camera that sends nothing: {ever:?}"
        );
        assert_eq!(sim.video_shown(to).len(), 2, "subscriber {to}");
    }
    let video = |k: &SourceKey| k.participant == ParticipantId(1) && k.kind == TrackKind::Video;
    assert!(!sim.keyframe_requests.iter().any(|(_, k)| video(k)));
}

#[test]
fn a_source_that_stops_sending_while_awaited_is_not_asked_any_more() {
    // Participant 1 speaks, its encoder ignores keyframe requests, then its camera goes off
    // while a switch to it waits: the requests stop with the wait.
    let mut sim = Sim::new(3, 1, |_| Some(1));
    let p = sim.pubs.get_mut(&ParticipantId(1)).unwrap();
    (p.deaf, p.keyframe_due) = (true, false);
    sim.run(Duration::from_secs(1));
    sim.pubs.get_mut(&ParticipantId(1)).unwrap().camera_off = true;
    sim.run(LIVE_WINDOW + Duration::from_secs(6));
    // Once it no longer counts as sending (and a pending switch gave up), nothing is asked.
    let quiet = sim.t0 + Duration::from_secs(1) + LIVE_WINDOW + Duration::from_secs(2);
    let late: Vec<_> = sim
        .keyframe_requests
        .iter()
        .filter(|(t, k)| k.participant == ParticipantId(1) && *t > quiet)
        .collect();
    assert!(late.is_empty(), "{late:?}");
}

#[test]
fn the_screen_slot_goes_to_the_one_who_shares() {
    // Everyone has a screen track (as every Android video participant does); only
    // participant 2 shares. Participant 1 ranks first (join order, nobody speaks).
    let t0 = Instant::now();
    let mut fwd = Forwarder::new(SfuConfig::default());
    let h264 = TrackInfo {
        codec: crate::media::depacketize::Codec::H264,
        clock_rate: 90_000,
        audio_level_ext: None,
    };
    let screen_slot = SlotOut {
        ssrc: 77,
        payload_type: VIDEO_PT,
    };
    for i in 0..3 {
        fwd.add_participant(t0, ParticipantId(i));
        fwd.publish(t0, ParticipantId(i), TrackKind::Screen, h264)
            .unwrap();
    }
    let layout = SlotLayout {
        screen: vec![screen_slot],
        ..SlotLayout::default()
    };
    fwd.subscribe(t0, ParticipantId(0), &layout).unwrap();
    let slot = SlotId {
        kind: TrackKind::Screen,
        index: 0,
    };
    let mut shown = None;
    let mut requests = vec![];
    for ms in 0..3000u32 {
        let now = t0 + Duration::from_millis(u64::from(ms));
        if ms % 100 == 0 {
            let pkt = rtp(VIDEO_PT, ms as u16, ms * 90, None, &[0x65, 0x88, 0x84]);
            fwd.handle_rtp(now, ParticipantId(2), TrackKind::Screen, &pkt)
                .unwrap();
        }
        if fwd.poll_timeout().is_some_and(|t| t <= now) {
            fwd.handle_timeout(now);
        }
        while let Some(a) = fwd.poll_action() {
            match a {
                SfuAction::SlotMap { slots, .. } => shown = slots.into_iter().find(|s| s.0 == slot),
                SfuAction::RequestKeyframe(k) => requests.push(k.participant),
                _ => {}
            }
        }
    }
    assert_eq!(shown, Some((slot, Some(ParticipantId(2)))));
    assert!(!requests.contains(&ParticipantId(1)), "{requests:?}");
}
