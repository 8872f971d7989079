//! Sources and sinks over the tracks of a media connection.
//!
//! - [`MediaSource`]: the application pushes encoded frames (never blocks); a bounded queue
//!   feeds the track. When the queue is full the frame is dropped whole, later video frames are
//!   dropped until a keyframe, and the encoder is asked for one. Keyframe requests from the
//!   receiver (PLI/FIR) and congestion control's target bitrate come back as
//!   [`EncoderControl`].
//! - [`MediaSink`]: calls back once per complete received frame; asks the sender for a keyframe
//!   when reassembly lost one; keeps counters and the picture size.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::depacketize::Codec;
use super::frame::EncodedFrame;
use super::h264::{self, ParamSets};
use super::reassembly::{Output, Reassembler, RtpIn};
use crate::transport::{Feedback, LocalTrack, MediaConnection, MediaKind, RemoteTrack};

/// Frames a source queues before it drops (about 1 s of video at 30 fps).
pub const SOURCE_QUEUE: usize = 32;
/// Encoder-control messages queued for the application.
pub const CONTROL_QUEUE: usize = 16;
/// How often the congestion-control target is checked.
pub const BITRATE_POLL: Duration = Duration::from_millis(500);
/// How often a sink asks again for a keyframe with SPS/PPS while its H.264 keyframes lack them.
pub const PARAMS_REQUEST_REPEAT: Duration = Duration::from_millis(500);

/// What the encoder feeding a source should do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncoderControl {
    /// Encode the next frame as a keyframe.
    KeyframeRequest,
    /// Encode at this many bits per second (the connection's estimate, capped by REMB).
    TargetBitrate(u64),
}

/// What happened to a pushed frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Push {
    /// Queued for sending.
    Queued,
    /// Dropped (queue full, or a delta frame while waiting for a keyframe).
    Dropped,
}

/// Counters shared by a source or sink and its task.
#[derive(Debug, Default)]
pub struct MediaStats {
    /// Frames sent or received.
    pub frames: AtomicU64,
    /// Their bytes.
    pub bytes: AtomicU64,
    /// Frames dropped.
    pub dropped: AtomicU64,
    /// Keyframes requested (by the receiver of a source; by a sink of its sender).
    pub keyframe_requests: AtomicU64,
    /// Picture size from the latest keyframe (width << 32 | height), 0 if unknown.
    pub size: AtomicU64,
}

impl MediaStats {
    /// Width and height of the latest keyframe, if known.
    pub fn size(&self) -> Option<(u32, u32)> {
        match self.size.load(Ordering::Relaxed) {
            0 => None,
            v => Some(((v >> 32) as u32, v as u32)),
        }
    }
}

/// Pushes encoded frames into one of our tracks.
pub struct MediaSource {
    kind: MediaKind,
    track: LocalTrack,
    tx: mpsc::Sender<EncodedFrame>,
    need_keyframe: Arc<AtomicBool>,
    control: mpsc::Sender<EncoderControl>,
    stats: Arc<MediaStats>,
    /// Dropped with the source: its feedback task ends (a new source on the same track
    /// would otherwise compete with it for the track's feedback).
    _alive: tokio::sync::oneshot::Sender<()>,
}

impl MediaSource {
    /// Starts feeding `track` of `conn`; returns the source and the encoder-control receiver.
    pub fn start(
        conn: &MediaConnection,
        track: &LocalTrack,
    ) -> (Self, mpsc::Receiver<EncoderControl>) {
        let (tx, rx) = mpsc::channel(SOURCE_QUEUE);
        let (ctl_tx, ctl_rx) = mpsc::channel(CONTROL_QUEUE);
        let stats = Arc::new(MediaStats::default());
        let (alive, dropped) = tokio::sync::oneshot::channel();
        tokio::spawn(pump(track.clone(), rx, stats.clone()));
        tokio::spawn(feedback(
            conn.clone(),
            track.clone(),
            ctl_tx.clone(),
            stats.clone(),
            dropped,
        ));
        let source = Self {
            kind: track.spec().kind,
            track: track.clone(),
            tx,
            need_keyframe: Arc::new(AtomicBool::new(false)),
            control: ctl_tx,
            stats,
            _alive: alive,
        };
        (source, ctl_rx)
    }

    /// Queues a frame without waiting. A full queue drops it, and then every delta frame until
    /// a keyframe (the encoder is asked for one), so the receiver never gets half a GOP.
    pub fn push(&self, frame: EncodedFrame) -> Push {
        let video = self.kind == MediaKind::Video;
        if video && self.need_keyframe.load(Ordering::Relaxed) {
            if !frame.keyframe {
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                return Push::Dropped;
            }
            self.need_keyframe.store(false, Ordering::Relaxed);
        }
        match self.tx.try_send(frame) {
            Ok(()) => Push::Queued,
            Err(_) => {
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                if video {
                    self.need_keyframe.store(true, Ordering::Relaxed);
                    let _ = self.control.try_send(EncoderControl::KeyframeRequest);
                }
                Push::Dropped
            }
        }
    }

    /// Says how far a receiver must turn this video source's picture clockwise
    /// ([`LocalTrack::set_rotation`]).
    pub fn set_rotation(&self, degrees: u16) {
        self.track.set_rotation(degrees);
    }

    /// Counters.
    pub fn stats(&self) -> &Arc<MediaStats> {
        &self.stats
    }
}

async fn pump(track: LocalTrack, mut rx: mpsc::Receiver<EncodedFrame>, stats: Arc<MediaStats>) {
    let video = track.spec().kind == MediaKind::Video;
    let default = if video {
        Duration::from_millis(33)
    } else {
        Duration::from_millis(20)
    };
    let mut params = ParamSets::default();
    let mut last_pts: Option<u64> = None;
    while let Some(f) = rx.recv().await {
        let duration = last_pts
            .and_then(|p| f.pts_us.checked_sub(p))
            .filter(|d| *d > 0 && *d < 1_000_000)
            .map_or(default, Duration::from_micros);
        last_pts = Some(f.pts_us);
        let data = if video {
            let au = params.prepare(&f.data);
            if f.keyframe
                && let Some((w, h)) = params.sps().and_then(h264::sps_size)
            {
                stats
                    .size
                    .store((u64::from(w) << 32) | u64::from(h), Ordering::Relaxed);
            }
            bytes::Bytes::from(au)
        } else {
            f.data
        };
        let len = data.len() as u64;
        if let Err(e) = track.write_frame(data, duration, f.audio_level).await {
            tracing::debug!(error = %e, "frame not sent");
            if e == crate::transport::TransportError::Closed {
                return;
            }
            continue;
        }
        stats.frames.fetch_add(1, Ordering::Relaxed);
        stats.bytes.fetch_add(len, Ordering::Relaxed);
    }
}

async fn feedback(
    conn: MediaConnection,
    track: LocalTrack,
    ctl: mpsc::Sender<EncoderControl>,
    stats: Arc<MediaStats>,
    mut dropped: tokio::sync::oneshot::Receiver<()>,
) {
    let mut remb: Option<u64> = None;
    let mut sent: Option<u64> = None;
    let mut tick = tokio::time::interval(BITRATE_POLL);
    let mut state = conn.state();
    loop {
        tokio::select! {
            fb = track.next_feedback() => match fb {
                Some(Feedback::KeyframeRequest) => {
                    stats.keyframe_requests.fetch_add(1, Ordering::Relaxed);
                    let _ = ctl.try_send(EncoderControl::KeyframeRequest);
                }
                Some(Feedback::ReceiverBitrate(b)) => remb = Some(b),
                None => return,
            },
            _ = tick.tick() => {
                let target = match (conn.target_bitrate_bps(), remb) {
                    (Some(t), Some(r)) => Some(t.min(r)),
                    (t, r) => t.or(r),
                };
                if let Some(t) = target
                    && sent.is_none_or(|s| t.abs_diff(s) * 20 > s)
                {
                    sent = Some(t);
                    let _ = ctl.try_send(EncoderControl::TargetBitrate(t));
                }
            }
            r = state.changed() => {
                if r.is_err() || *state.borrow() == crate::transport::MediaState::Closed {
                    return;
                }
            }
            _ = &mut dropped => return,
        }
        if ctl.is_closed() {
            return;
        }
    }
}

/// Receives the frames of one remote track.
pub struct MediaSink {
    track: RemoteTrack,
    ssrc: Arc<AtomicU32>,
    stats: Arc<MediaStats>,
    task: tokio::task::JoinHandle<()>,
}

impl MediaSink {
    /// Starts reading `track`; `on_frame` is called once per complete frame, in order. Tracks
    /// of an unknown codec are read and counted but produce no frames.
    pub fn start(track: RemoteTrack, on_frame: impl FnMut(EncodedFrame) + Send + 'static) -> Self {
        let stats = Arc::new(MediaStats::default());
        let ssrc = Arc::new(AtomicU32::new(0));
        let task = tokio::spawn(sink_loop(
            track.clone(),
            on_frame,
            stats.clone(),
            ssrc.clone(),
        ));
        Self {
            track,
            ssrc,
            stats,
            task,
        }
    }

    /// The track it reads.
    pub fn track(&self) -> &RemoteTrack {
        &self.track
    }

    /// Asks the sender for a keyframe now (RTCP PLI), as the sink does itself after a loss.
    pub async fn request_keyframe(&self) -> Result<(), crate::transport::TransportError> {
        self.stats.keyframe_requests.fetch_add(1, Ordering::Relaxed);
        self.track
            .request_keyframe(self.ssrc.load(Ordering::Relaxed))
            .await
    }

    /// Counters (frames: complete frames received so far).
    pub fn stats(&self) -> &Arc<MediaStats> {
        &self.stats
    }

    /// Whether the track ended (or the sink stopped).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

impl Drop for MediaSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn sink_loop(
    track: RemoteTrack,
    mut on_frame: impl FnMut(EncodedFrame) + Send + 'static,
    stats: Arc<MediaStats>,
    ssrc: Arc<AtomicU32>,
) {
    let codec = Codec::from_mime(track.mime_type());
    let mut r = codec.map(|c| Reassembler::new(c, track.clock_rate()));
    // H.264: SPS/PPS seen on this track, and when we last asked for them.
    let mut params_seen = false;
    let mut asked: Option<Instant> = None;
    loop {
        let deadline = r.as_ref().and_then(Reassembler::poll_timeout);
        let sleep = async move {
            match deadline {
                Some(d) => tokio::time::sleep_until(d.into()).await,
                None => std::future::pending().await,
            }
        };
        let now;
        tokio::select! {
            p = track.recv() => {
                let Some(p) = p else { return };
                now = Instant::now();
                ssrc.store(p.header.ssrc, Ordering::Relaxed);
                if let Some(r) = r.as_mut() {
                    r.push(RtpIn {
                        seq: p.header.sequence_number,
                        ts: p.header.timestamp,
                        marker: p.header.marker,
                        payload: p.payload,
                    }, now);
                }
            }
            () = sleep => {
                now = Instant::now();
                if let Some(r) = r.as_mut() {
                    r.handle_timeout(now);
                }
            }
        }
        let Some(r) = r.as_mut() else { continue };
        while let Some(o) = r.poll_output() {
            match o {
                Output::Frame(f) => {
                    stats.frames.fetch_add(1, Ordering::Relaxed);
                    stats
                        .bytes
                        .fetch_add(f.data.len() as u64, Ordering::Relaxed);
                    let mut ask = false;
                    if f.keyframe && codec == Some(Codec::H264) {
                        let sps = h264::split_nals(&f.data)
                            .into_iter()
                            .find(|n| h264::nal_type(n) == h264::NAL_SPS);
                        params_seen |= sps.is_some();
                        if let Some((w, h)) = sps.and_then(h264::sps_size) {
                            stats
                                .size
                                .store((u64::from(w) << 32) | u64::from(h), Ordering::Relaxed);
                        }
                        // A keyframe nobody can decode yet (the parameter sets were lost,
                        // e.g. in the packet that announced the track): ask for another.
                        ask =
                            !params_seen && asked.is_none_or(|t| now >= t + PARAMS_REQUEST_REPEAT);
                    }
                    on_frame(f);
                    if ask {
                        asked = Some(now);
                        stats.keyframe_requests.fetch_add(1, Ordering::Relaxed);
                        if let Err(e) = track.request_keyframe(ssrc.load(Ordering::Relaxed)).await {
                            tracing::debug!(error = %e, "keyframe request not sent");
                        }
                    }
                }
                Output::KeyframeNeeded => {
                    stats.keyframe_requests.fetch_add(1, Ordering::Relaxed);
                    if let Err(e) = track.request_keyframe(ssrc.load(Ordering::Relaxed)).await {
                        tracing::debug!(error = %e, "keyframe request not sent");
                    }
                }
            }
        }
        stats.dropped.store(r.stats().dropped, Ordering::Relaxed);
    }
}
