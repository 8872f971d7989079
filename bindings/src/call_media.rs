//! The media of a call for the platform's own codecs (Android MediaCodec, Apple VideoToolbox):
//! a source per local track into which the platform pushes *encoded* frames (H.264 Annex-B
//! access units, Opus packets) with their pts and keyframe flag, and which tells the encoder
//! to make a keyframe or follow a target bitrate; and a sink that hands every complete received
//! frame of every remote track to a callback. The core packetizes, paces and reassembles, but
//! never encodes or decodes (decision 0012). Wait for `NodeEvent::CallMediaConnected` (or let
//! these calls wait up to 15 s for the media).

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use peerns_core::media::frame::EncodedFrame;
use peerns_core::media::track::{EncoderControl, MediaSink, MediaSource, Push};
use peerns_core::transport::MediaKind;
use tokio::task::AbortHandle;

use crate::{PeernsError, PeernsNode, RUNTIME, lock, on_runtime};

/// How long the source and sink calls wait for the call's media connection.
const MEDIA_WAIT: Duration = Duration::from_secs(15);
/// Received frames queued for the foreign callback; more are dropped (the callback is slow).
const SINK_QUEUE: usize = 64;

/// The platform encoder of one track: the core asks it for a keyframe (the peer lost one, or
/// the send queue overflowed) and to follow the congestion controller's target bitrate.
#[uniffi::export(with_foreign)]
pub trait EncoderControlListener: Send + Sync {
    /// Make the next frame a keyframe (IDR), with SPS/PPS.
    fn request_keyframe(&self);
    /// Encode at about `bps` bits per second from now on.
    fn target_bitrate(&self, bps: u64);
}

/// How loud a block of 16-bit PCM is, as RFC 6464 says it (0 loudest … 127 silence): measure
/// each block before encoding it and pass the result with its Opus frame.
#[uniffi::export]
pub fn audio_level_of_pcm(pcm: Vec<i16>) -> u8 {
    peerns_core::media::level::audio_level(&pcm)
}

/// One received encoded frame.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct MediaFrame {
    /// The sender's track: `audio`, `video` or `screen` (a browser's tracks have random IDs).
    pub track: String,
    /// `audio` or `video`.
    pub kind: String,
    /// Presentation time in µs on the sender's RTP clock (relative).
    pub pts_us: u64,
    /// It can be decoded alone (IDR; every audio frame).
    pub keyframe: bool,
    /// An H.264 Annex-B access unit (or a VP8 frame from a browser), or one Opus packet.
    pub data: Vec<u8>,
}

/// Receives the frames of a call, one call per frame, in order per track, on a thread of its
/// own (it may block briefly; while it does, up to 64 frames queue, then frames are dropped).
#[uniffi::export(with_foreign)]
pub trait MediaFrameListener: Send + Sync {
    /// One complete frame.
    fn on_frame(&self, frame: MediaFrame);
}

/// Pushes encoded frames into one local track of a call.
#[derive(uniffi::Object)]
pub struct CallMediaSource {
    kind: MediaKind,
    source: MediaSource,
    control: AbortHandle,
}

#[uniffi::export]
impl CallMediaSource {
    /// Queues one encoded frame without blocking; `false` if it was dropped (queue full, or a
    /// delta frame while a keyframe is awaited after a drop: the encoder was asked for one).
    /// An audio frame may say how loud it was ([`audio_level_of_pcm`] of the PCM encoded).
    #[uniffi::method(default(audio_level = None))]
    pub fn push_frame(
        &self,
        pts_us: u64,
        keyframe: bool,
        data: Vec<u8>,
        audio_level: Option<u8>,
    ) -> bool {
        let audio = self.kind == MediaKind::Audio;
        let frame = EncodedFrame {
            kind: self.kind,
            pts_us,
            keyframe: keyframe || audio,
            data: data.into(),
            audio_level: audio_level.filter(|_| audio),
        };
        self.source.push(frame) == Push::Queued
    }

    /// Frames sent so far.
    pub fn frames_sent(&self) -> u64 {
        self.source.stats().frames.load(Ordering::Relaxed)
    }

    /// Frames dropped so far.
    pub fn frames_dropped(&self) -> u64 {
        self.source.stats().dropped.load(Ordering::Relaxed)
    }
}

impl Drop for CallMediaSource {
    fn drop(&mut self) {
        self.control.abort();
    }
}

/// The sinks of a call's remote tracks, feeding a [`MediaFrameListener`].
#[derive(uniffi::Object)]
pub struct CallMediaSinks {
    sinks: Arc<Mutex<Vec<Arc<MediaSink>>>>,
    task: AbortHandle,
}

#[uniffi::export(async_runtime = "tokio")]
impl CallMediaSinks {
    /// Asks the sender of `track` for a keyframe now (RTCP PLI).
    pub async fn request_keyframe(&self, track: String) -> Result<(), PeernsError> {
        let sink = lock(&self.sinks)
            .iter()
            .find(|s| s.track().track_id() == track)
            .cloned()
            .ok_or_else(|| PeernsError::InvalidInput {
                msg: format!("no remote track {track:?}"),
            })?;
        on_runtime(async move { sink.request_keyframe().await })
            .await?
            .map_err(|e| PeernsError::Network { msg: e.to_string() })
    }

    /// Complete frames received so far on `track` (0 for a track not seen yet).
    pub fn frames_received(&self, track: String) -> u64 {
        lock(&self.sinks)
            .iter()
            .find(|s| s.track().track_id() == track)
            .map_or(0, |s| s.stats().frames.load(Ordering::Relaxed))
    }

    /// The remote tracks seen so far.
    pub fn tracks(&self) -> Vec<String> {
        lock(&self.sinks)
            .iter()
            .map(|s| s.track().track_id().to_owned())
            .collect()
    }

    /// Stops delivering frames.
    pub fn cancel(&self) {
        self.task.abort();
        lock(&self.sinks).clear();
    }
}

impl Drop for CallMediaSinks {
    fn drop(&mut self) {
        self.cancel();
    }
}

/// Hands each encoder request to the platform encoder, on the blocking pool (a foreign call may
/// block), until the requests end.
pub(crate) fn forward_controls(
    mut ctl: tokio::sync::mpsc::Receiver<EncoderControl>,
    encoder: Arc<dyn EncoderControlListener>,
) -> tokio::task::JoinHandle<()> {
    RUNTIME.spawn(async move {
        while let Some(c) = ctl.recv().await {
            let encoder = encoder.clone();
            let done = tokio::task::spawn_blocking(move || match c {
                EncoderControl::KeyframeRequest => encoder.request_keyframe(),
                EncoderControl::TargetBitrate(b) => encoder.target_bitrate(b),
            });
            if done.await.is_err() {
                return;
            }
        }
    })
}

/// Hands each item of `rx` to `deliver` on a thread named `name`, in order, until every sender
/// is gone. A delivery that fails (a Kotlin listener that throws reaches Rust as a panic) is
/// logged and the next item delivered: one frame a platform decoder chokes on must not end a
/// call's sound and pictures.
pub(crate) fn deliver_on_thread<T: Send + 'static>(
    name: &str,
    rx: std::sync::mpsc::Receiver<T>,
    deliver: impl Fn(T) + Send + 'static,
) -> Result<(), PeernsError> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            while let Ok(item) = rx.recv() {
                let delivered =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| deliver(item)));
                if delivered.is_err() {
                    tracing::warn!("a frame listener failed; delivering the next frame");
                }
            }
        })
        .map(drop)
        .map_err(|e| PeernsError::Internal { msg: e.to_string() })
}

fn kind_name(k: MediaKind) -> &'static str {
    match k {
        MediaKind::Audio => "audio",
        MediaKind::Video => "video",
    }
}

#[uniffi::export(async_runtime = "tokio")]
impl PeernsNode {
    /// The source of our track `track` (`audio`, `video` or `screen`, as the call's kinds
    /// announced) of call `call`, once its media is connected (waits up to 15 s). `encoder`
    /// hears keyframe requests and bitrate targets.
    pub async fn call_media_source(
        &self,
        call: String,
        track: String,
        encoder: Arc<dyn EncoderControlListener>,
    ) -> Result<Arc<CallMediaSource>, PeernsError> {
        let node = self.running()?;
        on_runtime(async move {
            let conn = node.call_media(&call, MEDIA_WAIT).await?;
            let local = conn
                .local_track(&track)
                .ok_or_else(|| PeernsError::InvalidInput {
                    msg: format!("call {call} sends no {track:?} track"),
                })?;
            let (source, ctl) = MediaSource::start(&conn, local);
            let control = forward_controls(ctl, encoder);
            Ok(Arc::new(CallMediaSource {
                kind: local.spec().kind,
                source,
                control: control.abort_handle(),
            }))
        })
        .await?
    }

    /// Delivers every complete frame of every remote track of call `call` to `listener`, once
    /// its media is connected (waits up to 15 s), until cancelled or the call ends.
    pub async fn call_media_sinks(
        &self,
        call: String,
        listener: Arc<dyn MediaFrameListener>,
    ) -> Result<Arc<CallMediaSinks>, PeernsError> {
        let node = self.running()?;
        let conn = on_runtime(async move { node.call_media(&call, MEDIA_WAIT).await }).await??;
        let (tx, rx) = std::sync::mpsc::sync_channel::<MediaFrame>(SINK_QUEUE);
        deliver_on_thread("peerns-media-sink", rx, move |f| listener.on_frame(f))?;
        let sinks = Arc::new(Mutex::new(Vec::new()));
        let held = sinks.clone();
        let task = RUNTIME.spawn(async move {
            while let Some(track) = conn.next_remote_track().await {
                let tx = tx.clone();
                let id = track.track_id().to_owned();
                let sink = MediaSink::start(track, move |f: EncodedFrame| {
                    let _ = tx.try_send(MediaFrame {
                        track: id.clone(),
                        kind: kind_name(f.kind).into(),
                        pts_us: f.pts_us,
                        keyframe: f.keyframe,
                        data: f.data.to_vec(),
                    });
                });
                lock(&held).push(Arc::new(sink));
            }
        });
        Ok(Arc::new(CallMediaSinks {
            sinks,
            task: task.abort_handle(),
        }))
    }
}
