//! The media of a group call on this node, as the application sees it: one
//! [`GroupCallMedia`] per call, whatever connections carry it underneath. Frames the
//! application pushes go out on every connection that carries our media (our uplink to the
//! router, or, when we route, our own tracks on every participant's connection); frames from
//! others come out tagged with the member who sent them (slot map, router's own tracks, or the
//! router's own view of the forwarder's input).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{mpsc, watch};

use crate::identity::Fingerprint;
use crate::media::EncodedFrame;
use crate::media::depacketize::Codec;
use crate::media::reassembly::{Output, Reassembler, RtpIn};
use crate::media::sfu::rtp::RtpView;
use crate::media::sfu::speakers::Speakers;
use crate::media::sfu::{ParticipantId, SlotId, SourceKey, TrackKind};
use crate::media::sfu_hub::{SfuHub, Tapped, parse_slot_track_name};
use crate::media::track::{EncoderControl, MediaSink, MediaSource};
use crate::transport::{MediaConnection, MediaKind, RemoteTrack};

/// Received frames queued for the application; beyond this they are dropped and counted.
pub const FRAME_QUEUE: usize = 512;
/// Encoder-control messages queued for the application.
const CONTROL_QUEUE: usize = 32;
/// Packets queued for the router's own view.
const TAP_QUEUE: usize = 2048;
/// At most one keyframe request reaches the encoder in this interval; requests within it are
/// merged into one at its end (every connection gets the same keyframe).
pub(super) const KEYFRAME_MERGE: Duration = Duration::from_millis(500);

/// A frame another participant sent.
#[derive(Debug, Clone)]
pub struct ReceivedFrame {
    /// Who sent it.
    pub from: Fingerprint,
    /// Camera, microphone or screen.
    pub kind: TrackKind,
    /// Its codec.
    pub codec: Codec,
    /// The frame.
    pub frame: EncodedFrame,
}

/// State shared by the call's connections and the application's handle.
pub(super) struct Shared {
    /// Our sources, by the connection that carries them.
    sources: Mutex<Vec<(String, TrackKind, MediaSource)>>,
    /// The latest target bitrate of each connection (the encoder follows the lowest).
    bitrates: Mutex<(HashMap<String, u64>, Option<u64>)>,
    frames: mpsc::Sender<ReceivedFrame>,
    controls: mpsc::Sender<EncoderControl>,
    /// Whom each slot of our uplink shows (from the router's `Slots`).
    pub(super) slots: Mutex<BTreeMap<SlotId, Fingerprint>>,
    dropped: AtomicU64,
    /// How far our picture must be turned clockwise (degrees), for every video packet we send.
    rotation: AtomicU16,
    /// Whether we speak, from the levels of our own audio frames (the router reports it
    /// with the participants' it forwards).
    voice: Mutex<Speakers>,
    speaking: watch::Sender<bool>,
    /// The sinks of our uplink's tracks, by whom they show (for keyframe requests).
    uplink_sinks: Mutex<Vec<(Who, Weak<MediaSink>)>>,
    /// As the router: the forwarder and its numbers for members (for keyframe requests).
    router_view: Mutex<Option<RouterView>>,
    /// Where keyframe requests of the application are sent from.
    runtime: tokio::runtime::Handle,
    /// Per encoder (camera, screen): when it was last asked for a keyframe, and whether a
    /// merged request waits.
    keyframes: Mutex<[(Option<tokio::time::Instant>, bool); 2]>,
    /// Where keyframe requests for our screen go, once the application takes them
    /// ([`GroupCallMedia::screen_controls`]); until then, with the camera's.
    screen_controls: Mutex<Option<mpsc::Sender<EncoderControl>>>,
}

/// The router's forwarder as its own view reads it.
struct RouterView {
    hub: Weak<SfuHub>,
    ids: Arc<Mutex<HashMap<ParticipantId, Fingerprint>>>,
}

impl Shared {
    fn deliver(&self, f: ReceivedFrame) {
        if self.frames.try_send(f).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Starts our sources for `kinds` on `conn` (the tracks named `audio`, `video`,
    /// `screen`); their encoder controls reach the application.
    pub(super) fn add_sources(self: &Arc<Self>, conn: &MediaConnection) {
        let id = conn.info().connection_id.clone();
        let mut added = vec![];
        for t in conn.local_tracks() {
            let Some(kind) = own_kind(&t.spec().name) else {
                continue;
            };
            let (source, mut ctl) = MediaSource::start(conn, t);
            if kind == TrackKind::Video {
                source.set_rotation(self.rotation.load(Ordering::Relaxed));
            }
            added.push((id.clone(), kind, source));
            let (me, cid) = (Arc::downgrade(self), id.clone());
            tokio::spawn(async move {
                while let Some(c) = ctl.recv().await {
                    let Some(me) = me.upgrade() else { return };
                    me.control(&cid, kind, c);
                }
            });
        }
        let screen = added.iter().any(|(_, k, _)| *k == TrackKind::Screen);
        lock(&self.sources).extend(added);
        // A new receiver starts with a keyframe.
        self.ask_keyframe(false);
        if screen {
            self.ask_keyframe(true);
        }
    }

    /// Asks the camera's encoder (the screen's if `screen` and the application took its
    /// requests) for a keyframe now, or, if it was asked less than [`KEYFRAME_MERGE`] ago,
    /// once when that interval ends (however many connections ask meanwhile).
    fn ask_keyframe(self: &Arc<Self>, screen: bool) {
        let now = tokio::time::Instant::now();
        let to = match lock(&self.screen_controls).as_ref().filter(|_| screen) {
            Some(tx) => tx.clone(),
            None => self.controls.clone(),
        };
        let screen = !to.same_channel(&self.controls);
        let mut gates = lock(&self.keyframes);
        let k = &mut gates[usize::from(screen)];
        match k.0.map(|t| t + KEYFRAME_MERGE).filter(|&at| at > now) {
            None => {
                k.0 = Some(now);
                let _ = to.try_send(EncoderControl::KeyframeRequest);
            }
            Some(_) if k.1 => {}
            Some(at) => {
                k.1 = true;
                let me = Arc::downgrade(self);
                self.runtime.spawn(async move {
                    tokio::time::sleep_until(at).await;
                    if let Some(me) = me.upgrade() {
                        lock(&me.keyframes)[usize::from(screen)].1 = false;
                        me.ask_keyframe(screen);
                    }
                });
            }
        }
    }

    /// Our camera picture's rotation goes on the video packets of every connection that carries it
    /// (a browser in the call turns what it shows by it).
    pub(super) fn set_rotation(&self, degrees: u16) {
        self.rotation.store(degrees, Ordering::Relaxed);
        for (_, kind, source) in lock(&self.sources).iter() {
            if *kind == TrackKind::Video {
                source.set_rotation(degrees);
            }
        }
    }

    /// Forgets every source: we left the call (a publisher still held pushes nowhere).
    pub(super) fn clear(&self) {
        lock(&self.sources).clear();
        lock(&self.bitrates).0.clear();
        self.speaking.send_replace(false);
    }

    /// Notes the loudness of one of our audio frames.
    fn hear_ourselves(&self, level: u8) {
        let mut voice = lock(&self.voice);
        if voice.observe(Instant::now(), OURSELVES, level) {
            self.speaking.send_replace(!voice.speaking().is_empty());
        }
    }

    /// Asks `from` for a keyframe of its `kind`, on the path its frames take to us: the
    /// forwarder when we route, else the uplink's track that shows it now. False when no
    /// track of ours carries it.
    fn request_keyframe(&self, from: Fingerprint, kind: TrackKind) -> bool {
        if let Some(view) = lock(&self.router_view).as_ref()
            && let Some(hub) = view.hub.upgrade()
        {
            let participant = lock(&view.ids)
                .iter()
                .find(|(_, fp)| **fp == from)
                .map(|(id, _)| *id);
            return match participant {
                Some(participant) => {
                    hub.request_keyframe(SourceKey { participant, kind });
                    true
                }
                None => false,
            };
        }
        let slots = lock(&self.slots);
        let sink = lock(&self.uplink_sinks)
            .iter()
            .filter(|(who, _)| match *who {
                Who::Slot(slot) => slot.kind == kind && slots.get(&slot) == Some(&from),
                Who::Router(router, k) => k == kind && router == from,
            })
            .find_map(|(_, sink)| sink.upgrade());
        match sink {
            Some(sink) => {
                self.runtime.spawn(async move {
                    let _ = sink.request_keyframe().await;
                });
                true
            }
            None => false,
        }
    }

    /// Forgets the sources on connection `id`.
    pub(super) fn remove_sources(&self, id: &str) {
        lock(&self.sources).retain(|(c, _, _)| c != id);
        let mut b = lock(&self.bitrates);
        b.0.remove(id);
    }

    fn control(self: &Arc<Self>, conn: &str, kind: TrackKind, c: EncoderControl) {
        match c {
            EncoderControl::KeyframeRequest => self.ask_keyframe(kind == TrackKind::Screen),
            EncoderControl::TargetBitrate(bps) => {
                let mut b = lock(&self.bitrates);
                b.0.insert(conn.to_owned(), bps);
                let lowest = b.0.values().min().copied();
                if lowest != b.1
                    && let Some(l) = lowest
                {
                    b.1 = lowest;
                    let _ = self.controls.try_send(EncoderControl::TargetBitrate(l));
                }
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Our own entry in [`Shared::voice`].
const OURSELVES: ParticipantId = ParticipantId(0);

/// The kind of one of our own tracks by its name.
fn own_kind(name: &str) -> Option<TrackKind> {
    match name {
        "audio" => Some(TrackKind::Audio),
        "video" => Some(TrackKind::Video),
        "screen" => Some(TrackKind::Screen),
        _ => None,
    }
}

/// The application's side of a group call: push our encoded frames, take the others'.
pub struct GroupCallMedia {
    shared: Arc<Shared>,
    frames: mpsc::Receiver<ReceivedFrame>,
    controls: mpsc::Receiver<EncoderControl>,
}

impl GroupCallMedia {
    /// A call's media; whether we speak goes to `speaking`.
    pub(super) fn new(speaking: watch::Sender<bool>) -> (Self, Arc<Shared>) {
        let (ftx, frames) = mpsc::channel(FRAME_QUEUE);
        let (ctx, controls) = mpsc::channel(CONTROL_QUEUE);
        let mut voice = Speakers::default();
        voice.add(OURSELVES);
        speaking.send_replace(false);
        let shared = Arc::new(Shared {
            sources: Mutex::new(vec![]),
            bitrates: Mutex::new((HashMap::new(), None)),
            frames: ftx,
            controls: ctx,
            slots: Mutex::new(BTreeMap::new()),
            dropped: AtomicU64::new(0),
            rotation: AtomicU16::new(0),
            voice: Mutex::new(voice),
            speaking,
            uplink_sinks: Mutex::new(vec![]),
            router_view: Mutex::new(None),
            runtime: tokio::runtime::Handle::current(),
            keyframes: Mutex::new([(None, false); 2]),
            screen_controls: Mutex::new(None),
        });
        (
            Self {
                shared: shared.clone(),
                frames,
                controls,
            },
            shared,
        )
    }

    /// Sends an encoded frame of `kind` on every connection that carries our media now;
    /// returns on how many it was queued.
    pub fn push(&self, kind: TrackKind, frame: &EncodedFrame) -> usize {
        self.publisher().push(kind, frame)
    }

    /// A handle that pushes our frames from another task.
    pub fn publisher(&self) -> GroupCallPublisher {
        GroupCallPublisher(self.shared.clone())
    }

    /// The next frame from another participant (`None` once the call is over for us).
    pub async fn next_frame(&mut self) -> Option<ReceivedFrame> {
        self.frames.recv().await
    }

    /// The next encoder request (keyframe, target bitrate: the lowest of our connections').
    pub async fn next_control(&mut self) -> Option<EncoderControl> {
        self.controls.recv().await
    }

    /// An encoder request if one is waiting.
    pub fn try_control(&mut self) -> Option<EncoderControl> {
        self.controls.try_recv().ok()
    }

    /// From now on, keyframe requests for our screen's encoder come here rather than with the
    /// camera's ([`GroupCallMedia::next_control`]); a later call replaces the receiver.
    pub fn screen_controls(&mut self) -> mpsc::Receiver<EncoderControl> {
        let (tx, rx) = mpsc::channel(CONTROL_QUEUE);
        *lock(&self.shared.screen_controls) = Some(tx);
        rx
    }

    /// Received frames dropped because the application did not take them in time.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// The publisher, the frames of others and the encoder requests, to be used from
    /// separate tasks.
    pub fn into_parts(
        self,
    ) -> (
        GroupCallPublisher,
        mpsc::Receiver<ReceivedFrame>,
        mpsc::Receiver<EncoderControl>,
    ) {
        (GroupCallPublisher(self.shared), self.frames, self.controls)
    }
}

/// Pushes our encoded frames into a group call (see [`GroupCallMedia::push`]).
#[derive(Clone)]
pub struct GroupCallPublisher(Arc<Shared>);

impl GroupCallPublisher {
    /// Sends an encoded frame of `kind` on every connection that carries our media now;
    /// returns on how many it was queued.
    pub fn push(&self, kind: TrackKind, frame: &EncodedFrame) -> usize {
        if kind == TrackKind::Audio
            && let Some(level) = frame.audio_level
        {
            self.0.hear_ourselves(level);
        }
        lock(&self.0.sources)
            .iter()
            .filter(|(_, k, _)| *k == kind)
            .filter(|(_, _, s)| s.push(frame.clone()) == crate::media::track::Push::Queued)
            .count()
    }

    /// Asks `from` for a keyframe of its `kind` (a decoder that starts late, a picture that
    /// just appeared); false when none of our tracks carries that media now. The router
    /// spaces the requests it passes on.
    pub fn request_keyframe(&self, from: Fingerprint, kind: TrackKind) -> bool {
        self.0.request_keyframe(from, kind)
    }
}

/// Reads every remote track of our uplink to `router` and delivers its frames: slots by the
/// current slot map, the router's own tracks as the router's. The sinks live as long as the
/// returned task's owner keeps it.
pub(super) fn read_uplink(
    shared: &Arc<Shared>,
    conn: MediaConnection,
    router: Fingerprint,
) -> tokio::task::JoinHandle<()> {
    let shared = Arc::downgrade(shared);
    tokio::spawn(async move {
        let mut sinks = vec![];
        while let Some(track) = conn.next_remote_track().await {
            let name = track.track_id().to_owned();
            let who = match (parse_slot_track_name(&name), own_kind(&name)) {
                (Some(slot), _) => Who::Slot(slot),
                (None, Some(kind)) => Who::Router(router, kind),
                (None, None) => {
                    drain(track);
                    continue;
                }
            };
            let Some(codec) = Codec::from_mime(track.mime_type()) else {
                drain(track);
                continue;
            };
            let weak = shared.clone();
            let sink = Arc::new(MediaSink::start(track, move |frame| {
                let Some(s) = weak.upgrade() else { return };
                let (from, kind) = match who {
                    Who::Slot(slot) => match lock(&s.slots).get(&slot) {
                        Some(fp) => (*fp, slot.kind),
                        None => return,
                    },
                    Who::Router(router, kind) => (router, kind),
                };
                s.deliver(ReceivedFrame {
                    from,
                    kind,
                    codec,
                    frame,
                });
            }));
            if let Some(s) = shared.upgrade() {
                let mut known = lock(&s.uplink_sinks);
                known.retain(|(_, sink)| sink.strong_count() > 0);
                known.push((who, Arc::downgrade(&sink)));
            }
            sinks.push(sink);
        }
        // The connection closed; keep the sinks until the owner aborts us.
        std::future::pending::<()>().await;
    })
}

/// Whom a track of our uplink shows: a slot's current member, or the router's own media.
#[derive(Clone, Copy)]
enum Who {
    Slot(SlotId),
    Router(Fingerprint, TrackKind),
}

/// The router's own view: reassembles what the forwarder receives from every participant.
/// `ids` maps the forwarder's numbers to members.
pub(super) fn view_as_router(
    shared: &Arc<Shared>,
    hub: &Arc<SfuHub>,
    ids: Arc<Mutex<HashMap<ParticipantId, Fingerprint>>>,
) -> mpsc::Sender<Tapped> {
    let (tx, mut rx) = mpsc::channel::<Tapped>(TAP_QUEUE);
    *lock(&shared.router_view) = Some(RouterView {
        hub: Arc::downgrade(hub),
        ids: ids.clone(),
    });
    let shared = Arc::downgrade(shared);
    let hub = Arc::downgrade(hub);
    tokio::spawn(async move {
        let mut tracks: HashMap<(ParticipantId, TrackKind), (Codec, Reassembler)> = HashMap::new();
        loop {
            let deadline = tracks.values().filter_map(|(_, r)| r.poll_timeout()).min();
            let sleep = async move {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d.into()).await,
                    None => std::future::pending().await,
                }
            };
            let now;
            tokio::select! {
                t = rx.recv() => {
                    let Some(t) = t else { return };
                    now = Instant::now();
                    match t {
                        Tapped::Track { id, kind, codec, clock_rate } => {
                            tracks.insert((id, kind), (codec, Reassembler::new(codec, clock_rate)));
                        }
                        Tapped::Rtp { id, kind, packet } => {
                            let Some((_, r)) = tracks.get_mut(&(id, kind)) else { continue };
                            let Ok(p) = RtpView::parse(&packet) else { continue };
                            r.push(RtpIn {
                                seq: p.seq(),
                                ts: p.timestamp(),
                                marker: p.marker(),
                                payload: Bytes::copy_from_slice(p.payload()),
                            }, now);
                        }
                    }
                }
                () = sleep => {
                    now = Instant::now();
                    for (_, r) in tracks.values_mut() {
                        r.handle_timeout(now);
                    }
                }
            }
            let (Some(s), Some(hub)) = (shared.upgrade(), hub.upgrade()) else {
                return;
            };
            for (&(id, kind), (codec, r)) in &mut tracks {
                while let Some(o) = r.poll_output() {
                    match o {
                        Output::Frame(frame) => {
                            let Some(from) = lock(&ids).get(&id).copied() else {
                                continue;
                            };
                            s.deliver(ReceivedFrame {
                                from,
                                kind,
                                codec: *codec,
                                frame,
                            });
                        }
                        Output::KeyframeNeeded => hub.request_keyframe(SourceKey {
                            participant: id,
                            kind,
                        }),
                    }
                }
            }
            // Forget tracks of participants that are gone.
            let known = lock(&ids).clone();
            tracks.retain(|(id, _), _| known.contains_key(id));
        }
    });
    tx
}

/// How long a member or the router waits for ICE + DTLS of a group-call connection.
pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// The media kinds of the tracks a member offers to receive beyond its own: one per slot, one
/// per kind the router sends itself, minus the member's own sendrecv tracks of each kind.
pub(super) fn receive_kinds(
    layout: &crate::calls::group::Layout,
    router_kinds: crate::calls::Kinds,
    ours: crate::calls::Kinds,
) -> Vec<MediaKind> {
    use crate::calls::Kinds;
    let count = |k: Kinds| usize::from(router_kinds.contains(k));
    let own = |k: Kinds| usize::from(ours.contains(k));
    let audio = usize::from(layout.audio) + count(Kinds::AUDIO);
    let video = usize::from(layout.video)
        + usize::from(layout.screen)
        + count(Kinds::VIDEO)
        + count(Kinds::SCREEN);
    let mut out = vec![MediaKind::Audio; audio.saturating_sub(own(Kinds::AUDIO))];
    let own_video = own(Kinds::VIDEO) + own(Kinds::SCREEN);
    out.extend(vec![MediaKind::Video; video.saturating_sub(own_video)]);
    out
}

/// Reads and discards a remote track we cannot use, so its packets do not pile up.
fn drain(track: RemoteTrack) {
    tokio::spawn(async move { while track.recv().await.is_some() {} });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn keyframe_requests_reach_the_encoder_merged() {
        let (mut media, shared) = GroupCallMedia::new(watch::channel(false).0);
        let asked = |media: &mut GroupCallMedia| {
            std::iter::from_fn(|| media.try_control())
                .filter(|c| *c == EncoderControl::KeyframeRequest)
                .count()
        };
        let start = tokio::time::Instant::now();
        // Eight connections ask at once: one request now, one merged at the interval's end.
        for _ in 0..8 {
            shared.control("c", TrackKind::Video, EncoderControl::KeyframeRequest);
        }
        assert_eq!(asked(&mut media), 1);
        tokio::time::sleep_until(start + KEYFRAME_MERGE / 2).await;
        shared.control("c", TrackKind::Video, EncoderControl::KeyframeRequest);
        assert_eq!(asked(&mut media), 0);
        tokio::time::sleep_until(start + KEYFRAME_MERGE + Duration::from_millis(100)).await;
        assert_eq!(asked(&mut media), 1);
        tokio::time::sleep_until(start + KEYFRAME_MERGE * 3).await;
        assert_eq!(asked(&mut media), 0, "nothing more was asked");
        // Later, a single request goes through at once.
        shared.control("c", TrackKind::Video, EncoderControl::KeyframeRequest);
        assert_eq!(asked(&mut media), 1);
    }

    #[tokio::test]
    async fn keyframe_requests_for_the_screen_reach_its_encoder_once_taken() {
        let (mut media, shared) = GroupCallMedia::new(watch::channel(false).0);
        let screen = TrackKind::Screen;
        // Not taken: with the camera's (merged with them).
        shared.control("c", screen, EncoderControl::KeyframeRequest);
        assert_eq!(media.try_control(), Some(EncoderControl::KeyframeRequest));
        let mut screen_rx = media.screen_controls();
        shared.control("c", screen, EncoderControl::KeyframeRequest);
        assert_eq!(
            screen_rx.try_recv().ok(),
            Some(EncoderControl::KeyframeRequest)
        );
        assert_eq!(media.try_control(), None, "the camera is not asked");
        // The camera's own requests stay apart (its gate is not the screen's).
        tokio::time::sleep(KEYFRAME_MERGE).await;
        shared.control("c", TrackKind::Video, EncoderControl::KeyframeRequest);
        assert_eq!(media.try_control(), Some(EncoderControl::KeyframeRequest));
        assert!(screen_rx.try_recv().is_err());
    }
}
