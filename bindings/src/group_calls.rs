//! Group calls for the platform's codecs: join a group's call, push our *encoded* frames per
//! kind (the core sends them on whichever connections carry our media — to the router, or to
//! every participant when we route), and receive every other participant's frames tagged with
//! who sent them. Who is in the call and where we are arrive as `GroupEvent::CallRoster` and
//! `GroupEvent::CallPhase` on the group listener (decision 0016).

use std::sync::Arc;

use peerns_core::calls::group::{Phase, RosterEntry};
use peerns_core::media::frame::EncodedFrame;
use peerns_core::media::sfu::TrackKind;
use peerns_core::node::GroupCallPublisher;
use peerns_core::transport::MediaKind;
use tokio::task::AbortHandle;

use crate::call_media::{EncoderControlListener, deliver_on_thread, forward_controls};
use crate::calls::{CallKinds, CallMediaState};
use crate::groups::{fingerprint, group_id};
use crate::{PeernsError, PeernsNode, RUNTIME, on_runtime};

/// Received frames queued for the foreign callback; more are dropped (the callback is slow).
const FRAME_QUEUE: usize = 128;

/// One participant of a group call.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct CallParticipant {
    /// The member's fingerprint.
    pub fingerprint: String,
    /// What it sends.
    pub kinds: CallKinds,
    /// Mute, camera off, screen.
    pub media: CallMediaState,
    /// Its media reaches the router now.
    pub connected: bool,
}

impl From<&RosterEntry> for CallParticipant {
    fn from(p: &RosterEntry) -> Self {
        Self {
            fingerprint: p.member.to_hex(),
            kinds: p.kinds.into(),
            media: p.state.into(),
            connected: p.connected,
        }
    }
}

/// Where we are in a group's call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum GroupCallPhase {
    /// Not in the call.
    Out,
    /// Waiting for a router (none elected, or not welcomed yet).
    Waiting,
    /// Our media connection to the router is being made.
    Connecting,
    /// Media flows (or we route).
    Connected,
}

impl From<Phase> for GroupCallPhase {
    fn from(p: Phase) -> Self {
        match p {
            Phase::Out => Self::Out,
            Phase::Waiting => Self::Waiting,
            Phase::Connecting => Self::Connecting,
            Phase::Connected => Self::Connected,
        }
    }
}

/// One frame another participant sent.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct GroupCallFrame {
    /// The sender's fingerprint.
    pub sender: String,
    /// `audio`, `video` or `screen`.
    pub kind: String,
    /// `h264`, `vp8` or `opus`.
    pub codec: String,
    /// Presentation time in µs (relative; it jumps when the router changes).
    pub pts_us: u64,
    /// It can be decoded alone (IDR; every audio frame).
    pub keyframe: bool,
    /// An H.264 Annex-B access unit (or a VP8 frame), or one Opus packet.
    pub data: Vec<u8>,
}

/// Receives the others' frames, one call per frame, on a thread of its own (while it blocks,
/// up to 128 frames queue, then frames are dropped).
#[uniffi::export(with_foreign)]
pub trait GroupCallFrameListener: Send + Sync {
    /// One complete frame.
    fn on_frame(&self, frame: GroupCallFrame);
}

fn kind_of(s: &str) -> Result<TrackKind, PeernsError> {
    match s {
        "audio" => Ok(TrackKind::Audio),
        "video" => Ok(TrackKind::Video),
        "screen" => Ok(TrackKind::Screen),
        _ => Err(PeernsError::InvalidInput {
            msg: format!("a kind is audio, video or screen, not {s:?}"),
        }),
    }
}

fn kind_name(k: TrackKind) -> &'static str {
    match k {
        TrackKind::Audio => "audio",
        TrackKind::Video => "video",
        TrackKind::Screen => "screen",
    }
}

/// Our part in a group's call: push encoded frames; drop or [`GroupCall::stop`] to stop
/// delivering (leaving is [`PeernsNode::group_call_leave`]).
#[derive(uniffi::Object)]
pub struct GroupCall {
    publisher: GroupCallPublisher,
    tasks: Vec<AbortHandle>,
    /// The screen's encoder, once the platform gave it ([`GroupCall::set_screen_encoder`]).
    screen: ScreenEncoder,
}

/// Where keyframe requests for our screen go (the join's encoder until one is set).
type ScreenEncoder = Arc<std::sync::Mutex<Option<Arc<dyn EncoderControlListener>>>>;

#[uniffi::export]
impl GroupCall {
    /// Sends one encoded frame of `kind` (`audio`, `video`, `screen`) without blocking; the
    /// number of connections it was queued on (0: none carries our media right now). An audio
    /// frame should say how loud it was ([`crate::audio_level_of_pcm`] of the PCM encoded):
    /// the router shows who speaks, and gives the last speakers the video slots, by it.
    #[uniffi::method(default(audio_level = None))]
    pub fn push_frame(
        &self,
        kind: String,
        pts_us: u64,
        keyframe: bool,
        data: Vec<u8>,
        audio_level: Option<u8>,
    ) -> Result<u32, PeernsError> {
        let k = kind_of(&kind)?;
        let media = if k == TrackKind::Audio {
            MediaKind::Audio
        } else {
            MediaKind::Video
        };
        let frame = EncodedFrame {
            kind: media,
            pts_us,
            keyframe: keyframe || media == MediaKind::Audio,
            data: data.into(),
            audio_level: audio_level.filter(|_| media == MediaKind::Audio),
        };
        Ok(self.publisher.push(k, &frame) as u32)
    }

    /// Asks participant `sender` (fingerprint) for a keyframe of its `kind` (`video` or
    /// `screen`): a decoder that starts mid-call (a picture that just appeared) need not wait
    /// for the sender's next one. Never blocks; false when none of our tracks carries that
    /// media now. The router spaces the requests it passes on; ask at most about once a second.
    pub fn request_keyframe(&self, sender: String, kind: String) -> Result<bool, PeernsError> {
        let k = kind_of(&kind)?;
        if k == TrackKind::Audio {
            return Err(PeernsError::InvalidInput {
                msg: "audio has no keyframes".into(),
            });
        }
        Ok(self.publisher.request_keyframe(fingerprint(&sender)?, k))
    }

    /// Sends keyframe requests for our screen (a subscriber lost its picture, or started to
    /// show it) to `encoder`, the screen's, instead of the join's encoder: camera and screen
    /// are then asked apart. Bitrate targets still go to the join's encoder.
    pub fn set_screen_encoder(&self, encoder: Arc<dyn EncoderControlListener>) {
        *self.screen.lock().unwrap_or_else(|e| e.into_inner()) = Some(encoder);
    }

    /// Stops delivering frames and encoder requests.
    pub fn stop(&self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Drop for GroupCall {
    fn drop(&mut self) {
        self.stop();
    }
}

#[uniffi::export(async_runtime = "tokio")]
impl PeernsNode {
    /// Sets N of Last-N for the group calls we route from our next join on: the video of the
    /// N most recent speakers reaches each participant, the others' as thumbnails (a keyframe
    /// every 2 s, in turn). 1 to 7, default 4; the router's setting applies to its call.
    pub fn set_group_call_last_n(&self, n: u8) -> Result<(), PeernsError> {
        Ok(self.running()?.set_group_call_last_n(n)?)
    }

    /// Joins the call of group `group` sending `kinds`: `frames` gets every other participant's
    /// frames, `encoder` keyframe requests and the target bitrate (the lowest of our
    /// connections'). A second join replaces the first.
    pub async fn group_call_join(
        &self,
        group: String,
        kinds: CallKinds,
        frames: Arc<dyn GroupCallFrameListener>,
        encoder: Arc<dyn EncoderControlListener>,
    ) -> Result<Arc<GroupCall>, PeernsError> {
        let (node, gid) = (self.running()?, group_id(&group)?);
        let media =
            on_runtime(async move { node.group_call_join(&gid, kinds.into()).await }).await??;
        let mut media = media;
        let screen_ctl = media.screen_controls();
        let (publisher, mut rx, ctl) = media.into_parts();
        let (tx, thread_rx) = std::sync::mpsc::sync_channel::<GroupCallFrame>(FRAME_QUEUE);
        deliver_on_thread("peerns-group-call", thread_rx, move |f| frames.on_frame(f))?;
        let deliver = RUNTIME.spawn(async move {
            while let Some(f) = rx.recv().await {
                let _ = tx.try_send(GroupCallFrame {
                    sender: f.from.to_hex(),
                    kind: kind_name(f.kind).into(),
                    codec: f.codec.name().into(),
                    pts_us: f.frame.pts_us,
                    keyframe: f.frame.keyframe,
                    data: f.frame.data.to_vec(),
                });
            }
        });
        let screen: ScreenEncoder = Arc::default();
        let screen_control = forward_screen_controls(screen_ctl, screen.clone(), encoder.clone());
        let control = forward_controls(ctl, encoder);
        Ok(Arc::new(GroupCall {
            publisher,
            tasks: vec![
                deliver.abort_handle(),
                control.abort_handle(),
                screen_control.abort_handle(),
            ],
            screen,
        }))
    }

    /// Lets the browser with PeerJS ID `peer_id` into the call of group `group` while we route
    /// it (it calls our persistent ID with the PeerNS PWA's metadata `{groupCall: true,
    /// groupId}`); admins only. It is listed in the roster with an ID no member has.
    pub async fn allow_group_call_guest(
        &self,
        group: String,
        peer_id: String,
    ) -> Result<(), PeernsError> {
        let (node, gid) = (self.running()?, group_id(&group)?);
        Ok(on_runtime(async move { node.allow_group_call_guest(&gid, &peer_id).await }).await??)
    }

    /// Leaves the call of group `group`.
    pub async fn group_call_leave(&self, group: String) -> Result<(), PeernsError> {
        let (node, gid) = (self.running()?, group_id(&group)?);
        Ok(on_runtime(async move { node.group_call_leave(&gid).await }).await??)
    }

    /// Announces what we send in the call of group `group` (mute, camera off, screen).
    pub async fn group_call_set_media(
        &self,
        group: String,
        media: CallMediaState,
    ) -> Result<(), PeernsError> {
        let (node, gid) = (self.running()?, group_id(&group)?);
        Ok(
            on_runtime(async move { node.group_call_set_media(&gid, media.into()).await })
                .await??,
        )
    }

    /// Who is in the call of group `group`, as we know it.
    pub async fn group_call_participants(
        &self,
        group: String,
    ) -> Result<Vec<CallParticipant>, PeernsError> {
        let (node, gid) = (self.running()?, group_id(&group)?);
        let roster = on_runtime(async move { node.group_call_roster(&gid).await }).await??;
        Ok(roster.iter().map(CallParticipant::from).collect())
    }
}

/// Hands each keyframe request for our screen to the screen's encoder once set, else to
/// `fallback` (the join's), on the blocking pool, until the requests end.
fn forward_screen_controls(
    mut ctl: tokio::sync::mpsc::Receiver<peerns_core::media::track::EncoderControl>,
    screen: ScreenEncoder,
    fallback: Arc<dyn EncoderControlListener>,
) -> tokio::task::JoinHandle<()> {
    RUNTIME.spawn(async move {
        while ctl.recv().await.is_some() {
            let set = screen.lock().unwrap_or_else(|e| e.into_inner()).clone();
            let encoder = set.unwrap_or_else(|| fallback.clone());
            if tokio::task::spawn_blocking(move || encoder.request_keyframe())
                .await
                .is_err()
            {
                return;
            }
        }
    })
}
