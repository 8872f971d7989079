//! The driver of the group-call forwarder ([`super::sfu`]) on webrtc-rs media connections:
//! one task owns the [`Forwarder`]; each participant's remote tracks feed it RTP, its
//! forwarding tracks (send slots, named `slot-<kind>-<index>`) carry what it decides, their
//! keyframe requests come back to it, and its keyframe requests go to the publishers.
//!
//! Every channel is bounded: a publisher's packets wait (SCTP-free RTP simply backs up into
//! webrtc-rs), a slow subscriber's slot queue drops packets instead of holding everyone.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rtc::shared::marshal::Marshal;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::depacketize::Codec;
use super::sfu::{
    Forwarder, ParticipantId, SfuAction, SfuConfig, SfuStats, SlotId, SlotLayout, SlotOut,
    SourceKey, TrackInfo, TrackKind,
};
use crate::transport::media_engine::{
    FORWARDED_AUDIO_LEVEL, FORWARDED_EXTENSIONS, FORWARDED_ORIENTATION, rewrite_extensions,
};
use crate::transport::{Feedback, LocalTrack, MediaConnection, MediaKind, RemoteTrack};

/// Inputs queued for the hub task.
const INPUT_QUEUE: usize = 1024;
/// Packets queued per send slot before the slot drops.
const SLOT_QUEUE: usize = 256;
/// Events queued for the application; beyond this they are dropped (the next slot map
/// supersedes a lost one).
const EVENT_QUEUE: usize = 64;
/// How often each subscriber's budget is refreshed from its congestion estimate.
const BUDGET_EVERY: Duration = Duration::from_secs(1);
/// Forwarding delays kept (the most recent).
pub const LATENCY_SAMPLES: usize = 8192;

/// Recent forwarding delays: from a packet leaving webrtc-rs's receive side at the router to
/// its copy being handed to the send side of a subscriber's slot.
#[derive(Debug, Default)]
struct Delays(Mutex<VecDeque<Duration>>);

impl Delays {
    fn push(&self, d: Duration) {
        let mut q = self.0.lock().expect("not poisoned");
        if q.len() == LATENCY_SAMPLES {
            q.pop_front();
        }
        q.push_back(d);
    }
}

/// A packet on its way to a slot, with when it reached the router.
type Queued = (Instant, Vec<u8>);

/// The name of a forwarding track for slot `index` of `kind`.
pub fn slot_track_name(kind: TrackKind, index: u8) -> String {
    let k = match kind {
        TrackKind::Audio => "audio",
        TrackKind::Video => "video",
        TrackKind::Screen => "screen",
    };
    format!("slot-{k}-{index}")
}

/// The slot a forwarding track's name stands for.
pub fn parse_slot_track_name(name: &str) -> Option<SlotId> {
    let rest = name.strip_prefix("slot-")?;
    let (k, i) = rest.split_once('-')?;
    let kind = match k {
        "audio" => TrackKind::Audio,
        "video" => TrackKind::Video,
        "screen" => TrackKind::Screen,
        _ => return None,
    };
    Some(SlotId {
        kind,
        index: i.parse().ok()?,
    })
}

/// What the hub tells the application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HubEvent {
    /// Which participant each of a subscriber's slots shows now (for the group channel).
    SlotMap {
        /// The subscriber.
        to: ParticipantId,
        /// Slot → participant shown (`None`: quiet).
        slots: Vec<(SlotId, Option<ParticipantId>)>,
    },
    /// Those speaking now.
    Speakers(Vec<ParticipantId>),
    /// How far a participant's camera picture must be turned clockwise, in degrees, as its
    /// packets say (a browser's camera; our peers say it in the call's media state too).
    Rotation {
        /// The publisher.
        id: ParticipantId,
        /// 0, 90, 180 or 270.
        degrees: u16,
    },
}

enum Input {
    Join {
        id: ParticipantId,
        conn: MediaConnection,
        slots: Vec<(SlotId, mpsc::Sender<Queued>)>,
        layout: SlotLayout,
    },
    Publish {
        id: ParticipantId,
        kind: TrackKind,
        track: RemoteTrack,
        /// The audio level's header extension ID in its packets (the forwarder's).
        audio_level_ext: Option<u8>,
    },
    Rtp {
        id: ParticipantId,
        kind: TrackKind,
        ssrc: u32,
        packet: Vec<u8>,
        at: Instant,
    },
    Pli {
        id: ParticipantId,
        slot: SlotId,
    },
    Leave(ParticipantId),
    Stats(tokio::sync::oneshot::Sender<SfuStats>),
    Rotation {
        id: ParticipantId,
        degrees: u16,
    },
    Tap(mpsc::Sender<Tapped>),
    LocalKeyframe(SourceKey),
}

/// What a tap sees of the publishers: the router's own view of the call.
#[derive(Debug, Clone)]
pub enum Tapped {
    /// A participant published a track.
    Track {
        /// The publisher.
        id: ParticipantId,
        /// Its kind.
        kind: TrackKind,
        /// Its codec.
        codec: Codec,
        /// Its RTP clock rate.
        clock_rate: u32,
    },
    /// One RTP packet of that track, as received.
    Rtp {
        /// The publisher.
        id: ParticipantId,
        /// The track's kind.
        kind: TrackKind,
        /// The packet.
        packet: Vec<u8>,
    },
}

/// A running forwarder for one group call.
pub struct SfuHub {
    tx: mpsc::Sender<Input>,
    task: JoinHandle<()>,
    delays: Arc<Delays>,
}

impl Drop for SfuHub {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SfuHub {
    /// Starts the hub; its events arrive on the returned receiver.
    pub fn start(cfg: SfuConfig) -> (Self, mpsc::Receiver<HubEvent>) {
        let (tx, rx) = mpsc::channel(INPUT_QUEUE);
        let (ev_tx, ev_rx) = mpsc::channel(EVENT_QUEUE);
        let task = tokio::spawn(run(Forwarder::new(cfg), rx, ev_tx));
        let delays = Arc::default();
        (Self { tx, task, delays }, ev_rx)
    }

    /// Adds a participant over its media connection to us: its remote tracks (`audio`,
    /// `video`, `screen`) are published as they arrive, its forwarding tracks named
    /// `slot-<kind>-<index>` become its send slots.
    pub async fn join(&self, id: ParticipantId, conn: MediaConnection) {
        let mut layout = SlotLayout::default();
        let mut slots = vec![];
        for track in conn.local_tracks() {
            let Some(slot) = parse_slot_track_name(&track.spec().name) else {
                continue;
            };
            let Ok(payload_type) = track.payload_type().await else {
                continue;
            };
            let out = SlotOut {
                ssrc: track.ssrc(),
                payload_type,
            };
            let list = match slot.kind {
                TrackKind::Audio => &mut layout.audio,
                TrackKind::Video => &mut layout.video,
                TrackKind::Screen => &mut layout.screen,
            };
            if usize::from(slot.index) != list.len() {
                continue;
            }
            list.push(out);
            let (stx, srx) = mpsc::channel(SLOT_QUEUE);
            tokio::spawn(write_slot(track.clone(), srx, self.delays.clone()));
            tokio::spawn(slot_feedback(track.clone(), id, slot, self.tx.clone()));
            slots.push((slot, stx));
        }
        let reader = conn.clone();
        let _ = self
            .tx
            .send(Input::Join {
                id,
                conn,
                slots,
                layout,
            })
            .await;
        tokio::spawn(read_tracks(reader, id, self.tx.clone()));
    }

    /// Removes a participant (left, removed from the group, or its connection closed).
    pub async fn leave(&self, id: ParticipantId) {
        let _ = self.tx.send(Input::Leave(id)).await;
    }

    /// Also sends every published track (those published already first) and its packets to
    /// `tap` (the router's own view when it takes part in the call), instead of an earlier
    /// tap. A full tap drops packets; its reassembly asks for keyframes.
    pub async fn tap(&self, tap: mpsc::Sender<Tapped>) {
        let _ = self.tx.send(Input::Tap(tap)).await;
    }

    /// Asks the publisher of `source` for a keyframe (for the tap's viewer).
    pub fn request_keyframe(&self, source: SourceKey) {
        let _ = self.tx.try_send(Input::LocalKeyframe(source));
    }

    /// The most recent forwarding delays (at most [`LATENCY_SAMPLES`]).
    pub fn delays(&self) -> Vec<Duration> {
        self.delays
            .0
            .lock()
            .expect("not poisoned")
            .iter()
            .copied()
            .collect()
    }

    /// The forwarder's counters.
    pub async fn stats(&self) -> Option<SfuStats> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.tx.send(Input::Stats(tx)).await.ok()?;
        rx.await.ok()
    }
}

/// Takes each remote track of a participant's connection and pumps its packets in, their
/// header extensions moved to the forwarder's IDs ([`FORWARDED_EXTENSIONS`]); reports the
/// rotation its video packets carry when it changes.
async fn read_tracks(conn: MediaConnection, id: ParticipantId, tx: mpsc::Sender<Input>) {
    let mut ids: Vec<(u8, u8)> = Vec::new();
    for (ours, uri) in FORWARDED_EXTENSIONS {
        if let Some(theirs) = conn.extension_id(uri).await {
            ids.push((theirs, ours));
        }
    }
    let ids: Arc<[(u8, u8)]> = ids.into();
    let levels = ids.iter().any(|(_, ours)| *ours == FORWARDED_AUDIO_LEVEL);
    while let Some(track) = conn.next_remote_track().await {
        let kind = match (track.kind(), track.track_id()) {
            (MediaKind::Audio, _) => TrackKind::Audio,
            (MediaKind::Video, "screen") => TrackKind::Screen,
            (MediaKind::Video, _) => TrackKind::Video,
        };
        if tx
            .send(Input::Publish {
                id,
                kind,
                track: track.clone(),
                audio_level_ext: (levels && kind == TrackKind::Audio)
                    .then_some(FORWARDED_AUDIO_LEVEL),
            })
            .await
            .is_err()
        {
            return;
        }
        let (tx, ids) = (tx.clone(), ids.clone());
        tokio::spawn(async move {
            let mut turned = None;
            while let Some(mut p) = track.recv().await {
                rewrite_extensions(&mut p.header, &ids);
                let changed = orientation(&p.header)
                    .filter(|d| kind == TrackKind::Video && turned != Some(*d));
                if let Some(degrees) = changed {
                    turned = Some(degrees);
                    if tx.send(Input::Rotation { id, degrees }).await.is_err() {
                        return;
                    }
                }
                let Ok(packet) = p.marshal() else { continue };
                let input = Input::Rtp {
                    id,
                    kind,
                    ssrc: p.header.ssrc,
                    packet: packet.to_vec(),
                    at: Instant::now(),
                };
                if tx.send(input).await.is_err() {
                    return;
                }
            }
        });
    }
    let _ = tx.send(Input::Leave(id)).await;
}

/// The clockwise rotation (degrees) a packet's video-orientation extension asks for.
fn orientation(header: &rtc::rtp::header::Header) -> Option<u16> {
    let cvo = header.get_extension(FORWARDED_ORIENTATION)?;
    Some(u16::from(cvo.first()? & 0b11) * 90)
}

/// Writes a slot's packets in order; ends when the hub drops the slot or the track closes.
async fn write_slot(track: LocalTrack, mut rx: mpsc::Receiver<Queued>, delays: Arc<Delays>) {
    while let Some((at, packet)) = rx.recv().await {
        if let Err(e) = track.write_rtp(&packet).await {
            tracing::debug!(error = %e, "slot write failed");
            return;
        }
        delays.push(at.elapsed());
    }
}

/// Passes a subscriber's keyframe requests on a slot to the hub.
async fn slot_feedback(
    track: LocalTrack,
    id: ParticipantId,
    slot: SlotId,
    tx: mpsc::Sender<Input>,
) {
    while let Some(fb) = track.next_feedback().await {
        if fb == Feedback::KeyframeRequest && tx.send(Input::Pli { id, slot }).await.is_err() {
            return;
        }
    }
}

/// What the hub keeps per participant besides the forwarder's state.
struct Member {
    conn: MediaConnection,
    slots: BTreeMap<SlotId, mpsc::Sender<Queued>>,
    /// Published tracks and the SSRC last seen on each (for keyframe requests).
    tracks: BTreeMap<TrackKind, (RemoteTrack, u32)>,
}

async fn run(mut fwd: Forwarder, mut rx: mpsc::Receiver<Input>, events: mpsc::Sender<HubEvent>) {
    let mut members: BTreeMap<ParticipantId, Member> = BTreeMap::new();
    let mut tap: Option<mpsc::Sender<Tapped>> = None;
    let mut next_budget = Instant::now() + BUDGET_EVERY;
    // Rotations not passed on yet: a change is told once, so it waits for room in the events'
    // queue rather than being dropped like the frequent events (never awaited: the group's
    // task may be waiting for this loop).
    let mut rotations: BTreeMap<ParticipantId, u16> = BTreeMap::new();
    loop {
        let deadline = fwd
            .poll_timeout()
            .map_or(next_budget, |t| t.min(next_budget));
        let input = tokio::select! {
            input = rx.recv() => match input {
                Some(i) => Some(i),
                None => return,
            },
            _ = tokio::time::sleep_until(deadline.into()) => None,
        };
        let now = Instant::now();
        let mut arrived = now;
        match input {
            Some(Input::Join {
                id,
                conn,
                slots,
                layout,
            }) => {
                fwd.add_participant(now, id);
                let _ = fwd.subscribe(now, id, &layout);
                members.insert(
                    id,
                    Member {
                        conn,
                        slots: slots.into_iter().collect(),
                        tracks: BTreeMap::new(),
                    },
                );
            }
            Some(Input::Publish {
                id,
                kind,
                track,
                audio_level_ext,
            }) => {
                let Some(m) = members.get_mut(&id) else {
                    continue;
                };
                let Some(codec) = Codec::from_mime(track.mime_type()) else {
                    tracing::info!(mime = track.mime_type(), "unforwardable codec");
                    continue;
                };
                let info = TrackInfo {
                    codec,
                    clock_rate: track.clock_rate(),
                    audio_level_ext,
                };
                if fwd.publish(now, id, kind, info).is_ok() {
                    m.tracks.insert(kind, (track, 0));
                    if let Some(t) = &tap {
                        let _ = t.try_send(Tapped::Track {
                            id,
                            kind,
                            codec,
                            clock_rate: info.clock_rate,
                        });
                    }
                }
            }
            Some(Input::Rtp {
                id,
                kind,
                ssrc,
                packet,
                at,
            }) => {
                arrived = at;
                if let Some((_, s)) = members.get_mut(&id).and_then(|m| m.tracks.get_mut(&kind)) {
                    *s = ssrc;
                }
                if let Err(e) = fwd.handle_rtp(now, id, kind, &packet) {
                    tracing::debug!(error = %e, participant = id.0, "packet refused");
                } else if let Some(t) = &tap {
                    let _ = t.try_send(Tapped::Rtp { id, kind, packet });
                }
            }
            Some(Input::Pli { id, slot }) => fwd.handle_pli(now, id, slot),
            Some(Input::Leave(id)) => {
                rotations.remove(&id);
                if let Some(m) = members.remove(&id) {
                    fwd.remove_participant(now, id);
                    // Closing takes a while; forwarding to the others goes on meanwhile.
                    tokio::spawn(async move { m.conn.close().await });
                }
            }
            Some(Input::Stats(reply)) => {
                let _ = reply.send(fwd.stats());
            }
            Some(Input::Tap(t)) => {
                // A new tap (we joined again) learns the tracks published before it.
                for (&id, m) in &members {
                    for (&kind, (track, _)) in &m.tracks {
                        if let Some(codec) = Codec::from_mime(track.mime_type()) {
                            let _ = t.try_send(Tapped::Track {
                                id,
                                kind,
                                codec,
                                clock_rate: track.clock_rate(),
                            });
                        }
                    }
                }
                tap = Some(t);
            }
            Some(Input::Rotation { id, degrees }) => {
                rotations.insert(id, degrees);
            }
            Some(Input::LocalKeyframe(source)) => {
                perform(SfuAction::RequestKeyframe(source), now, &members, &events);
            }
            None => {}
        }
        if now >= next_budget {
            for (&id, m) in &members {
                fwd.set_budget(now, id, m.conn.target_bitrate_bps());
            }
            next_budget = now + BUDGET_EVERY;
        }
        if fwd.poll_timeout().is_some_and(|t| t <= now) {
            fwd.handle_timeout(now);
        }
        while let Some(action) = fwd.poll_action() {
            perform(action, arrived, &members, &events);
        }
        rotations.retain(|&id, &mut degrees| {
            matches!(
                events.try_send(HubEvent::Rotation { id, degrees }),
                Err(mpsc::error::TrySendError::Full(_))
            )
        });
    }
}

fn perform(
    action: SfuAction,
    arrived: Instant,
    members: &BTreeMap<ParticipantId, Member>,
    events: &mpsc::Sender<HubEvent>,
) {
    match action {
        SfuAction::Send { to, slot, packet } => {
            if let Some(q) = members.get(&to).and_then(|m| m.slots.get(&slot)) {
                // A full queue: the subscriber does not keep up; its NACK/PLI recover.
                let _ = q.try_send((arrived, packet));
            }
        }
        SfuAction::RequestKeyframe(SourceKey { participant, kind }) => {
            if let Some((track, ssrc)) = members
                .get(&participant)
                .and_then(|m| m.tracks.get(&kind))
                .cloned()
            {
                tokio::spawn(async move {
                    let _ = track.request_keyframe(ssrc).await;
                });
            }
        }
        SfuAction::SlotMap { to, slots } => {
            let _ = events.try_send(HubEvent::SlotMap { to, slots });
        }
        SfuAction::Speakers(who) => {
            let _ = events.try_send(HubEvent::Speakers(who));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_track_names_round_trip() {
        for kind in [TrackKind::Audio, TrackKind::Video, TrackKind::Screen] {
            for index in [0, 3, 15] {
                let name = slot_track_name(kind, index);
                assert_eq!(parse_slot_track_name(&name), Some(SlotId { kind, index }));
            }
        }
        for bad in [
            "video",
            "slot-video",
            "slot-mic-0",
            "slot-video-x",
            "slot-video-300",
        ] {
            assert_eq!(parse_slot_track_name(bad), None, "{bad}");
        }
    }
}
