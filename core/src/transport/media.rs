//! PeerJS-compatible media connections (`type:"media"`, `mc_…` ids) on the same signaling and
//! webrtc-rs stack as data connections.
//!
//! - Caller: [`Transport::call`](super::Transport::call) sends the OFFER with our local tracks
//!   and returns a [`MediaConnection`] at once; [`MediaConnection::connected`] waits for ICE+DTLS.
//! - Callee: nothing is answered unless the application subscribed with
//!   [`Transport::media_offers`](super::Transport::media_offers); each OFFER that passes the
//!   admission caps arrives there as an [`IncomingMedia`] exposing the peer, the metadata and
//!   the offer's DTLS fingerprint, so the application can bind it to a call announced in an
//!   authenticated session before it [`accept`](IncomingMedia::accept)s or
//!   [`refuse`](IncomingMedia::refuse)s. An offer not decided within `accept_timeout` is dropped.
//! - Like peerjs, the caller opens an unordered data channel labelled with the connection id;
//!   closing it (or the peer connection) hangs up.
//!
//! Local tracks take encoded frames ([`LocalTrack::write_frame`]) and report the receiver's
//! keyframe requests ([`LocalTrack::next_feedback`]); remote tracks yield RTP packets
//! ([`RemoteTrack::recv`]) and can ask the sender for a keyframe.

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rtc::media::Sample;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::certificate::{CertificateParams, RTCCertificate};
use rtc::rtcp;
use rtc::rtp;
use rtc::rtp::extension::HeaderExtension;
use rtc::rtp::extension::audio_level_extension::AudioLevelExtension;
use rtc::rtp::extension::video_orientation_extension::{VideoOrientationExtension, VideoRotation};
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use rtc::shared::marshal::Unmarshal;
use serde_json::Value;
use tokio::sync::{Mutex, mpsc, oneshot, watch};
use webrtc::data_channel::{DataChannel, DataChannelEvent};
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::static_sample::TrackLocalStaticSample;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::PeerConnection;
use webrtc::rtp_transceiver::RtpSender;

use super::connection::TransportError;
use super::media_engine::{
    BitrateEstimate, FORWARDED_EXTENSIONS, extmap_id, h264_codec, opus_codec, rewrite_extensions,
};

mod local_track;
pub(super) use local_track::add_local_tracks;
pub use local_track::{LocalTrack, TrackCounters};

/// Remote tracks announced and not yet taken by [`MediaConnection::next_remote_track`]: a
/// group call's connection carries up to 27 (8 slots of each kind and the router's own 3).
/// Beyond this an announcement waits for the application to take one; none is dropped.
pub const MAX_QUEUED_REMOTE_TRACKS: usize = 32;
/// Feedback events queued per local track; older ones are dropped when full (a keyframe
/// request repeated is the same request).
pub const FEEDBACK_QUEUE: usize = 16;
/// Audio levels below this (louder than −50 dBov) are marked as voice on the wire.
const VOICE_BELOW_LEVEL: u8 = 50;

/// Audio or video.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaKind {
    /// Opus.
    Audio,
    /// H.264 (camera or screen).
    Video,
}

/// A local track to send: `name` becomes its track id in the SDP (`audio`, `video`, `screen`),
/// which is how a native peer tells camera from screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackSpec {
    /// Track id announced to the peer.
    pub name: String,
    /// What it carries.
    pub kind: MediaKind,
    /// Takes ready RTP packets ([`LocalTrack::write_rtp`], a forwarder's slot) instead of
    /// encoded frames.
    pub forward: bool,
}

impl TrackSpec {
    /// A track named `name` that forwards RTP packets (a group-call router's send slot).
    pub fn forwarding(name: impl Into<String>, kind: MediaKind) -> Self {
        Self {
            name: name.into(),
            kind,
            forward: true,
        }
    }

    /// The microphone (`audio`).
    pub fn audio() -> Self {
        Self {
            name: "audio".into(),
            kind: MediaKind::Audio,
            forward: false,
        }
    }
    /// The camera (`video`).
    pub fn video() -> Self {
        Self {
            name: "video".into(),
            kind: MediaKind::Video,
            forward: false,
        }
    }
    /// A screen share (`screen`), a second video track on the same connection.
    pub fn screen() -> Self {
        Self {
            name: "screen".into(),
            kind: MediaKind::Video,
            forward: false,
        }
    }
}

/// How to open a media connection.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MediaOptions {
    /// Tracks we send (each also offers to receive the same kind).
    pub tracks: Vec<TrackSpec>,
    /// More tracks we offer to receive, one per entry, beyond one of each kind (a group
    /// call's slots: the router answers with a track on each).
    pub receive: Vec<MediaKind>,
    /// Metadata sent with the offer (bounded like a data connection's).
    pub metadata: Value,
    /// The `mc_…` connection ID to use, when it was announced beforehand (a call's ring);
    /// a fresh one when `None`.
    pub connection_id: Option<String>,
    /// The DTLS certificate to use, when its fingerprint was announced beforehand; a fresh
    /// one when `None`.
    pub certificate: Option<MediaCertificate>,
}

/// A DTLS certificate made before its media connection, so that its fingerprint can be
/// announced (in a call's ring or accept) before the OFFER or ANSWER carries it.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaCertificate {
    cert: RTCCertificate,
    fingerprint: String,
}

impl MediaCertificate {
    /// A fresh ECDSA P-256 certificate.
    pub fn generate() -> Result<Self, TransportError> {
        let provider = rtc::crypto::default_provider().map_err(webrtc_err)?;
        let params = CertificateParams::new(vec!["WebRTC".to_owned()]).map_err(webrtc_err)?;
        let cert = RTCCertificate::generate(
            provider.crypto(),
            rtc::crypto::SignatureScheme::EcdsaP256Sha256,
            params,
        )
        .map_err(webrtc_err)?;
        let fingerprint = cert
            .get_fingerprints(provider.crypto())
            .map_err(webrtc_err)?
            .into_iter()
            .find(|f| f.algorithm.eq_ignore_ascii_case("sha-256"))
            .map(|f| format!("sha-256 {}", f.value.to_ascii_uppercase()))
            .ok_or_else(|| TransportError::WebRtc("no SHA-256 fingerprint".into()))?;
        Ok(Self { cert, fingerprint })
    }

    /// Its SHA-256 fingerprint in SDP form (`sha-256 AB:CD:…`).
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    pub(super) fn rtc(&self) -> RTCCertificate {
        self.cert.clone()
    }
}

/// Fixed facts about a media connection.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaInfo {
    /// The remote PeerJS ID.
    pub peer: String,
    /// PeerJS connection id (`mc_…`).
    pub connection_id: String,
    /// Metadata the offerer attached.
    pub metadata: Value,
    /// This end's DTLS fingerprint (`sha-256 AB:…`).
    pub local_dtls: String,
    /// Whether this end sent the offer.
    pub outgoing: bool,
}

/// Where a media connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaState {
    /// Offer/answer or ICE/DTLS under way.
    Connecting,
    /// Media can flow.
    Connected,
    /// Hung up, failed or refused.
    Closed,
}

/// What the receiver of one of our tracks asks of its encoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feedback {
    /// Picture loss (PLI) or full intra request (FIR): send a keyframe.
    KeyframeRequest,
    /// The receiver's REMB cap, bits per second.
    ReceiverBitrate(u64),
}

/// An incoming media OFFER that passed admission, waiting for the application's decision.
pub struct IncomingMedia {
    pub(super) peer: String,
    pub(super) connection_id: String,
    pub(super) metadata: Value,
    pub(super) remote_dtls: String,
    pub(super) decide: Option<mpsc::UnboundedSender<super::driver::Command>>,
}

impl IncomingMedia {
    /// The caller's PeerJS ID.
    pub fn peer(&self) -> &str {
        &self.peer
    }
    /// The `mc_…` connection id.
    pub fn connection_id(&self) -> &str {
        &self.connection_id
    }
    /// The caller's metadata.
    pub fn metadata(&self) -> &Value {
        &self.metadata
    }
    /// The caller's DTLS fingerprint from the offer (`sha-256 AB:…`): DTLS will only complete
    /// with the holder of this certificate, so binding it to an authenticated announcement binds
    /// the media to that identity.
    pub fn remote_dtls(&self) -> &str {
        &self.remote_dtls
    }

    /// Answers with our `tracks` (the caller's tracks are received either way).
    pub async fn accept(self, tracks: Vec<TrackSpec>) -> Result<MediaConnection, TransportError> {
        self.accept_with(tracks, None).await
    }

    /// Answers with our `tracks`, using `certificate` (whose fingerprint we announced) for
    /// DTLS, or a fresh one.
    pub async fn accept_with(
        self,
        tracks: Vec<TrackSpec>,
        certificate: Option<MediaCertificate>,
    ) -> Result<MediaConnection, TransportError> {
        self.answer(tracks, certificate, false).await
    }

    /// Answers as a forwarder (a group call's router): like [`IncomingMedia::accept_with`], but
    /// with H.264 as the only video codec, the one its forwarding slots carry (a browser would
    /// otherwise send VP8, which the others' slots cannot take).
    pub async fn accept_for_forwarding(
        self,
        tracks: Vec<TrackSpec>,
        certificate: Option<MediaCertificate>,
    ) -> Result<MediaConnection, TransportError> {
        self.answer(tracks, certificate, true).await
    }

    async fn answer(
        mut self,
        tracks: Vec<TrackSpec>,
        certificate: Option<MediaCertificate>,
        h264_only: bool,
    ) -> Result<MediaConnection, TransportError> {
        let cmd = self.decide.take().ok_or(TransportError::Closed)?;
        let (reply, rx) = oneshot::channel();
        cmd.send(super::driver::Command::AcceptMedia {
            cid: self.connection_id.clone(),
            tracks,
            certificate,
            h264_only,
            reply,
        })
        .map_err(|_| TransportError::Closed)?;
        rx.await.map_err(|_| TransportError::Closed)?
    }

    /// Refuses: no ANSWER is sent (as for a refused data OFFER) and the slot is freed.
    pub fn refuse(mut self) {
        self.send_refusal();
    }

    fn send_refusal(&mut self) {
        if let Some(cmd) = self.decide.take() {
            let _ = cmd.send(super::driver::Command::RefuseMedia {
                cid: self.connection_id.clone(),
            });
        }
    }
}

impl Drop for IncomingMedia {
    fn drop(&mut self) {
        self.send_refusal();
    }
}

fn webrtc_err(e: impl std::fmt::Display) -> TransportError {
    TransportError::WebRtc(e.to_string())
}

/// A track the peer sends us.
#[derive(Clone)]
pub struct RemoteTrack {
    kind: MediaKind,
    track_id: String,
    mime: String,
    clock_rate: u32,
    track: Arc<dyn TrackRemote>,
    stats: Arc<TrackCounters>,
}

impl RemoteTrack {
    pub(super) async fn new(track: Arc<dyn TrackRemote>) -> Self {
        let kind = match track.kind().await {
            RtpCodecKind::Audio => MediaKind::Audio,
            _ => MediaKind::Video,
        };
        let mut codec = None;
        for ssrc in track.ssrcs().await {
            codec = codec.or(track.codec(ssrc).await);
        }
        let (mime, clock_rate) = codec
            .map(|c| (c.mime_type.to_ascii_lowercase(), c.clock_rate))
            .unwrap_or_default();
        Self {
            kind,
            track_id: track.track_id().await,
            mime,
            clock_rate,
            track,
            stats: Arc::default(),
        }
    }

    /// Audio or video.
    pub fn kind(&self) -> MediaKind {
        self.kind
    }
    /// The sender's track id (`audio`, `video`, `screen` from a native peer; a UUID from a
    /// browser).
    pub fn track_id(&self) -> &str {
        &self.track_id
    }
    /// The negotiated codec (`video/h264`, `audio/opus`, `video/vp8`; empty if not known yet).
    pub fn mime_type(&self) -> &str {
        &self.mime
    }
    /// RTP clock rate (Hz; 0 if not known yet).
    pub fn clock_rate(&self) -> u32 {
        self.clock_rate
    }

    /// The next RTP packet; `None` once the track ended.
    pub async fn recv(&self) -> Option<rtp::Packet> {
        loop {
            match self.track.poll().await? {
                TrackRemoteEvent::OnRtpPacket(p) => {
                    self.stats.packets.fetch_add(1, Ordering::Relaxed);
                    self.stats
                        .bytes
                        .fetch_add(p.payload.len() as u64, Ordering::Relaxed);
                    return Some(p);
                }
                TrackRemoteEvent::OnEnded => return None,
                _ => {}
            }
        }
    }

    /// Asks the sender for a keyframe (RTCP PLI).
    pub async fn request_keyframe(&self, media_ssrc: u32) -> Result<(), TransportError> {
        let pli = rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication {
            sender_ssrc: 0,
            media_ssrc,
        };
        self.track
            .write_rtcp(vec![Box::new(pli)])
            .await
            .map_err(webrtc_err)
    }

    /// Packets and bytes received.
    pub fn counters(&self) -> &TrackCounters {
        &self.stats
    }
}

/// Driver-side ends of a media connection's handle.
pub(super) struct MediaHooks {
    pub state: watch::Sender<MediaState>,
    pub tracks: mpsc::Sender<RemoteTrack>,
    pub remote_dtls: Arc<OnceLock<String>>,
    pub channel: Arc<std::sync::Mutex<Option<Arc<dyn DataChannel>>>>,
}

impl MediaHooks {
    /// Keeps the peerjs hang-up channel; its close ends the call.
    pub fn set_channel(&self, dc: Arc<dyn DataChannel>) {
        *self.channel.lock().expect("channel lock") = Some(dc.clone());
        let state = self.state.clone();
        tokio::spawn(async move {
            while let Some(ev) = dc.poll().await {
                if matches!(ev, DataChannelEvent::OnClose) {
                    break;
                }
            }
            let _ = state.send(MediaState::Closed);
        });
    }
}

/// What closing a media connection must close: its peer connection and peerjs channel.
type Closing = (Arc<dyn PeerConnection>, Option<Arc<dyn DataChannel>>);

struct MediaShared {
    info: MediaInfo,
    pc: Arc<dyn PeerConnection>,
    locals: Vec<LocalTrack>,
    remotes: Mutex<mpsc::Receiver<RemoteTrack>>,
    state: watch::Receiver<MediaState>,
    remote_dtls: Arc<OnceLock<String>>,
    estimate: Arc<BitrateEstimate>,
    channel: Arc<std::sync::Mutex<Option<Arc<dyn DataChannel>>>>,
    closed: AtomicBool,
    closed_tx: mpsc::UnboundedSender<String>,
}

impl MediaShared {
    fn take_close(&self) -> Option<Closing> {
        if self.closed.swap(true, Ordering::SeqCst) {
            return None;
        }
        let _ = self.closed_tx.send(self.info.connection_id.clone());
        let dc = self.channel.lock().expect("channel lock").take();
        Some((self.pc.clone(), dc))
    }
}

impl Drop for MediaShared {
    fn drop(&mut self) {
        if let Some((pc, dc)) = self.take_close()
            && let Ok(rt) = tokio::runtime::Handle::try_current()
        {
            rt.spawn(async move {
                if let Some(dc) = dc {
                    let _ = dc.close().await;
                }
                let _ = pc.close().await;
            });
        }
    }
}

/// One media connection. Cheap to clone; dropping the last handle hangs up.
#[derive(Clone)]
pub struct MediaConnection {
    shared: Arc<MediaShared>,
}

/// What [`MediaConnection::new`] needs (built by the driver).
pub(super) struct MediaParts {
    pub info: MediaInfo,
    pub pc: Arc<dyn PeerConnection>,
    pub locals: Vec<LocalTrack>,
    pub estimate: Arc<BitrateEstimate>,
    pub closed_tx: mpsc::UnboundedSender<String>,
}

impl MediaConnection {
    pub(super) fn new(parts: MediaParts) -> (Self, MediaHooks) {
        let (state_tx, state) = watch::channel(MediaState::Connecting);
        let (tracks_tx, tracks) = mpsc::channel(MAX_QUEUED_REMOTE_TRACKS);
        let remote_dtls = Arc::new(OnceLock::new());
        let channel = Arc::new(std::sync::Mutex::new(None));
        let shared = MediaShared {
            info: parts.info,
            pc: parts.pc,
            locals: parts.locals,
            remotes: Mutex::new(tracks),
            state,
            remote_dtls: remote_dtls.clone(),
            estimate: parts.estimate,
            channel: channel.clone(),
            closed: AtomicBool::new(false),
            closed_tx: parts.closed_tx,
        };
        let hooks = MediaHooks {
            state: state_tx,
            tracks: tracks_tx,
            remote_dtls,
            channel,
        };
        (
            Self {
                shared: Arc::new(shared),
            },
            hooks,
        )
    }

    /// Facts about the connection.
    pub fn info(&self) -> &MediaInfo {
        &self.shared.info
    }

    /// The peer's DTLS fingerprint (from its offer or answer; empty before the answer).
    pub fn remote_dtls(&self) -> &str {
        self.shared.remote_dtls.get().map_or("", String::as_str)
    }

    /// Our tracks, in the order given.
    pub fn local_tracks(&self) -> &[LocalTrack] {
        &self.shared.locals
    }

    /// Our track named `name`.
    pub fn local_track(&self, name: &str) -> Option<&LocalTrack> {
        self.shared.locals.iter().find(|t| t.spec().name == name)
    }

    /// The next track the peer sends; `None` once the connection is closed.
    pub async fn next_remote_track(&self) -> Option<RemoteTrack> {
        let mut rx = self.shared.remotes.lock().await;
        let mut state = self.shared.state.clone();
        tokio::select! {
            t = rx.recv() => t,
            _ = state.wait_for(|s| *s == MediaState::Closed) => None,
        }
    }

    /// The connection's state, as a watch.
    pub fn state(&self) -> watch::Receiver<MediaState> {
        self.shared.state.clone()
    }

    /// Waits until media can flow, or fails if the connection closes or `timeout` passes.
    pub async fn connected(&self, timeout: Duration) -> Result<(), TransportError> {
        let mut state = self.state();
        let wait = state.wait_for(|s| *s != MediaState::Connecting);
        match tokio::time::timeout(timeout, wait).await {
            Ok(Ok(s)) if *s == MediaState::Connected => Ok(()),
            Ok(_) => Err(TransportError::Closed),
            Err(_) => Err(TransportError::Timeout {
                peer: self.shared.info.peer.clone(),
                stage: "media connection".into(),
            }),
        }
    }

    /// The ID the other side's description gave the header extension `uri`, if it took part
    /// (an answer repeats the offer's IDs, so this is the ID on the wire both ways).
    pub async fn extension_id(&self, uri: &str) -> Option<u8> {
        let sdp = self.shared.pc.remote_description().await?.sdp;
        extmap_id(&sdp, uri)
    }

    /// Congestion control's current target for everything we send (bits/s), once known.
    pub fn target_bitrate_bps(&self) -> Option<u64> {
        self.shared.estimate.target_bps()
    }

    /// Hangs up (closes the peerjs channel, then the peer connection).
    pub async fn close(&self) {
        if let Some((pc, dc)) = self.shared.take_close() {
            if let Some(dc) = dc {
                let _ = dc.close().await;
            }
            let _ = pc.close().await;
        }
    }
}
