//! The media of a CLI call: the test pattern (320×240, 30 fps, H.264), a `.y4m` file or a V4L2
//! camera (`/dev/videoN`, through ffmpeg), and a 440 Hz tone (Opus) sent on our tracks; the peer's tracks counted, or recorded to MKV.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use peerns_core::media::EncodedFrame;
use peerns_core::media::record::Recording;
use peerns_core::media::track::{EncoderControl, MediaSink, MediaSource, MediaStats};
use peerns_core::node::Node;
use peerns_core::transport::{IncomingMedia, MediaConnection, MediaKind, MediaState, TrackSpec};
use peerns_media_desktop::audio::OpusEncoder;
use peerns_media_desktop::camera::Camera;
use peerns_media_desktop::sources::{TestPattern, Tone, Y4mReader};
use peerns_media_desktop::video::{H264Encoder, I420};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::Result;

/// Frames per second of the test pattern and of `.y4m` files.
const FPS: u64 = 30;
/// How long we wait for the peer's tracks (they appear with their first packet).
const TRACK_WAIT: Duration = Duration::from_secs(10);

/// What we send: `--video` (`test` or a `.y4m` file) and whether the tone is on.
#[derive(Clone, Debug)]
pub struct Sources {
    /// `--video`.
    pub video: Option<String>,
    /// `--audio test`.
    pub audio: bool,
}

/// The running media of one call.
pub struct CallMedia {
    senders: Vec<JoinHandle<()>>,
    sent: Vec<(MediaKind, Arc<MediaStats>)>,
    received: Vec<(MediaKind, Arc<MediaStats>)>,
    sinks: Vec<MediaSink>,
    recording: Option<Recording<File>>,
}

/// Checks `--video` before the call starts.
pub fn check_video(video: Option<&str>) -> Result<()> {
    match video {
        None | Some("test") => Ok(()),
        Some(f) if f.ends_with(".y4m") || f.starts_with("/dev/video") => Ok(()),
        Some(other) => Err(format!(
            "--video takes test, a .y4m file or a /dev/videoN camera, not {other:?}"
        )
        .into()),
    }
}

/// Waits for call `call`'s media, starts our sources, and takes `expect` tracks of the peer
/// (recorded to `record` if given).
pub async fn start(
    node: &Node,
    call: &str,
    sources: &Sources,
    expect: usize,
    record: Option<&Path>,
) -> Result<CallMedia> {
    let conn = node.call_media(call, Duration::from_secs(20)).await?;
    start_on(&conn, sources, expect, record).await
}

/// Starts our sources on `conn` and takes `expect` tracks of the peer (recorded to `record`).
async fn start_on(
    conn: &MediaConnection,
    sources: &Sources,
    expect: usize,
    record: Option<&Path>,
) -> Result<CallMedia> {
    let (mut senders, mut sent) = (vec![], vec![]);
    for t in conn.local_tracks() {
        let (source, ctl) = MediaSource::start(conn, t);
        sent.push((t.spec().kind, source.stats().clone()));
        match (t.spec().name.as_str(), t.spec().kind) {
            (_, MediaKind::Audio) if sources.audio => senders.push(tokio::spawn(tone(move |f| {
                source.push(f);
            }))),
            ("video", MediaKind::Video) => {
                let video = sources.video.clone().unwrap_or_else(|| "test".into());
                senders.push(tokio::spawn(async move {
                    let push = move |f| {
                        source.push(f);
                    };
                    if let Err(e) = send_video(push, ctl, &video, CAMERA_SIZE).await {
                        eprintln!("video: {e}");
                    }
                }));
            }
            ("screen", MediaKind::Video) => senders.push(tokio::spawn(async move {
                let push = move |f| {
                    source.push(f);
                };
                if let Err(e) = send_video(push, ctl, "test", SCREEN_SIZE).await {
                    eprintln!("screen: {e}");
                }
            })),
            _ => {}
        }
    }
    let tracks = remote_tracks(conn, expect).await;
    let mut media = CallMedia {
        senders,
        sent,
        received: vec![],
        sinks: vec![],
        recording: None,
    };
    if let Some(path) = record {
        let rec = Recording::start(tracks, File::create(path)?);
        media.received = rec
            .tracks()
            .into_iter()
            .map(|(t, s)| (t.kind(), s))
            .collect();
        media.recording = Some(rec);
    } else {
        for t in tracks {
            let kind = t.kind();
            let sink = MediaSink::start(t, |_| {});
            media.received.push((kind, sink.stats().clone()));
            media.sinks.push(sink);
        }
    }
    Ok(media)
}

/// Up to `n` of the peer's tracks (fewer if they do not come in time).
async fn remote_tracks(
    conn: &MediaConnection,
    n: usize,
) -> Vec<peerns_core::transport::RemoteTrack> {
    let mut out = vec![];
    let deadline = tokio::time::Instant::now() + TRACK_WAIT;
    while out.len() < n {
        match tokio::time::timeout_at(deadline, conn.next_remote_track()).await {
            Ok(Some(t)) => out.push(t),
            _ => break,
        }
    }
    out
}

impl CallMedia {
    /// One `media_stats` object per received track.
    pub fn stats(&self, from: &str) -> Vec<Value> {
        stats_json(&self.received, "media_stats", from)
    }

    /// One `media_sent` object per track we send.
    pub fn sent(&self, to: &str) -> Vec<Value> {
        stats_json(&self.sent, "media_sent", to)
    }
}

/// `event` lines for `tracks`: kind, frames and bytes so far, and a video's size.
fn stats_json(tracks: &[(MediaKind, Arc<MediaStats>)], event: &str, peer: &str) -> Vec<Value> {
    let key = if event == "media_sent" { "to" } else { "from" };
    tracks
        .iter()
        .map(|(kind, s)| {
            let mut j = json!({
                "event": event,
                "kind": if *kind == MediaKind::Audio { "audio" } else { "video" },
                "frames": s.frames.load(Relaxed), "bytes": s.bytes.load(Relaxed),
            });
            j[key] = peer.into();
            if *kind == MediaKind::Video {
                let (w, h) = s.size().unwrap_or((0, 0));
                j["width"] = w.into();
                j["height"] = h.into();
            }
            j
        })
        .collect()
}

impl CallMedia {
    /// Stops sending and closes the recording.
    pub async fn finish(mut self) -> Result<()> {
        for t in &self.senders {
            t.abort();
        }
        if let Some(rec) = self.recording.take() {
            rec.finish().await?;
        }
        Ok(())
    }
}

/// Picture size of the camera (test pattern, camera).
pub const CAMERA_SIZE: (usize, usize) = (320, 240);
/// Picture size of the shared screen (test pattern).
pub const SCREEN_SIZE: (usize, usize) = (640, 360);

/// Encodes a 440 Hz tone to Opus, one frame every 20 ms, for ever.
pub async fn tone(push: impl Fn(EncodedFrame) + Send + 'static) {
    let Ok(mut enc) = OpusEncoder::new(32_000) else {
        return;
    };
    let mut tone = Tone::new(440.0);
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    for i in 0u64.. {
        tick.tick().await;
        match enc.encode(&tone.next_frame(), i * 20_000) {
            Ok(f) => push(f),
            Err(e) => {
                eprintln!("audio: {e}");
                return;
            }
        }
    }
}

/// How long a camera may take to deliver its first picture.
const CAMERA_WAIT: Duration = Duration::from_secs(5);

/// Pictures from the pattern, a `.y4m` file (which loops) or a camera.
enum Pictures {
    Pattern(TestPattern),
    File(PathBuf, Box<Y4mReader<File>>),
    Camera(Box<Camera>),
}

impl Pictures {
    fn open(video: &str, size: (usize, usize)) -> Result<Self> {
        if video == "test" {
            return Ok(Self::Pattern(TestPattern::new(size.0, size.1)));
        }
        let path = PathBuf::from(video);
        if video.starts_with("/dev/video") {
            let mut cam = Camera::v4l2(&path, size, FPS as u32)?;
            cam.next_frame(CAMERA_WAIT)
                .map_err(|e| format!("camera {video}: {e}"))?;
            return Ok(Self::Camera(Box::new(cam)));
        }
        let r = Y4mReader::open(&path)?;
        Ok(Self::File(path, Box::new(r)))
    }

    fn next(&mut self) -> Result<I420> {
        match self {
            Self::Pattern(p) => Ok(p.next_frame()),
            Self::Camera(c) => Ok(c.next_frame(CAMERA_WAIT)?),
            Self::File(path, r) => {
                if let Some(pic) = r.next_frame()? {
                    return Ok(pic);
                }
                **r = Y4mReader::open(path)?;
                r.next_frame()?.ok_or_else(|| "empty .y4m file".into())
            }
        }
    }
}

/// Encodes `video` (`test`, a `.y4m` file or a camera) to H.264 at 30 fps, following the
/// encoder controls, for ever.
pub async fn send_video(
    push: impl Fn(EncodedFrame) + Send + 'static,
    mut ctl: mpsc::Receiver<EncoderControl>,
    video: &str,
    size: (usize, usize),
) -> Result<()> {
    let mut pictures = Pictures::open(video, size)?;
    let mut enc = H264Encoder::new(FPS as f32, 600_000)?;
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / FPS));
    for i in 0u64.. {
        tick.tick().await;
        while let Ok(c) = ctl.try_recv() {
            match c {
                EncoderControl::KeyframeRequest => enc.request_keyframe(),
                EncoderControl::TargetBitrate(b) => enc.set_target_bitrate(b)?,
            }
        }
        let pic = pictures.next()?;
        if let Some(f) = enc.encode(&pic, i * 1_000_000 / FPS)? {
            push(f);
        }
    }
    Ok(())
}

/// Runs call `call`'s media until the call ends: sends `sources`, takes the peer's `expect`
/// tracks (recorded to `record`), prints `media_stats` lines once a second if `json`, and with
/// `first_frame_since` a `first_frame` line: ms from then to the first complete video frame.
pub async fn serve(
    node: Arc<Node>,
    call: String,
    sources: Sources,
    expect: usize,
    record: Option<PathBuf>,
    json: bool,
    first_frame_since: Option<Instant>,
) -> Result<()> {
    let mut events = node.subscribe();
    let from = node
        .active_call()
        .filter(|c| c.call == call)
        .map(|c| c.fingerprint)
        .unwrap_or_default();
    let media = tokio::select! {
        m = start(&node, &call, &sources, expect, record.as_deref()) => m?,
        _ = ended(&mut events, &call) => return Ok(()),
    };
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    let video = media.received.iter().find(|(k, _)| *k == MediaKind::Video);
    let mut first = first_frame_since.zip(video.map(|(_, s)| s.clone()));
    loop {
        let first_frame = async {
            match &first {
                Some((_, s)) => {
                    while s.frames.load(Relaxed) == 0 {
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    }
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tick.tick() => if json {
                for j in media.stats(&from) {
                    println!("{j}");
                }
            },
            _ = first_frame => if let Some((since, _)) = first.take() && json {
                let ms = since.elapsed().as_secs_f64() * 1000.0;
                println!("{}", json!({"event": "first_frame", "kind": "video", "from": from,
                                      "ms_since_request": ms}));
            },
            _ = ended(&mut events, &call) => break,
        }
    }
    if json {
        for j in media.stats(&from).into_iter().chain(media.sent(&from)) {
            println!("{j}");
        }
    }
    media.finish().await
}

/// Answers a browser's media OFFER (a PeerJS ID allowed with `--allow-browser-call`; it is
/// not a call: no ring, no log) with `sources`, records its audio and video to `record` and
/// prints `browser_call` events and `media_stats` until the browser hangs up.
pub async fn serve_browser(
    inc: IncomingMedia,
    sources: Sources,
    record: Option<PathBuf>,
    json: bool,
) -> Result<()> {
    let peer = inc.peer().to_owned();
    let mut tracks = vec![];
    if sources.audio {
        tracks.push(TrackSpec::audio());
    }
    if sources.video.is_some() {
        tracks.push(TrackSpec::video());
    }
    let conn = inc.accept(tracks).await?;
    conn.connected(Duration::from_secs(20)).await?;
    println!(
        "{}",
        json!({"event": "browser_call", "state": "connected", "peer": peer})
    );
    let media = start_on(&conn, &sources, 2, record.as_deref()).await?;
    let mut state = conn.state();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    loop {
        tokio::select! {
            _ = tick.tick() => if json {
                for j in media.stats(&peer) {
                    println!("{j}");
                }
            },
            r = state.wait_for(|s| *s == MediaState::Closed) => {
                let _ = r;
                break;
            }
        }
    }
    println!(
        "{}",
        json!({"event": "browser_call", "state": "ended", "peer": peer})
    );
    media.finish().await
}

/// Returns once call `call` ended (or the node stopped).
async fn ended(events: &mut mpsc::UnboundedReceiver<peerns_core::node::NodeEvent>, call: &str) {
    use peerns_core::node::{CallState, NodeEvent};
    while let Some(ev) = events.recv().await {
        if let NodeEvent::CallState {
            call: c,
            state: CallState::Ended(_),
            ..
        } = ev
            && c == call
        {
            return;
        }
    }
}
