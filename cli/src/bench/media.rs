//! `peerns bench media`: 1:1 calls between two nodes (real profiles, Trusted contacts, calls
//! rung and accepted through their Noise session, media bound by DTLS fingerprints) through a
//! local signaling server on loopback.
//!
//! - `call_setup_ms`: from `Node::call` to the first complete video frame out of the callee's
//!   sink (ring, accept, media OFFER/ANSWER, ICE, DTLS, first keyframe), over `--calls` calls;
//! - then one call of `--seconds` with 320×240 H.264 at 30 fps and Opus at 50 packets/s:
//!   `frame_latency_ms` (a frame pushed into the caller's source → the same frame out of the
//!   callee's sink), video frames/s and RTP packets/s received, and the process's resident
//!   memory a quarter into the call and at its end (both nodes live in this process).
//!
//! Encoding is excluded: the video is the test pattern encoded once with OpenH264 before the
//! bench and replayed (a keyframe every 30 frames), so the figures are the transport's.

use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use peerns_core::media::frame::EncodedFrame;
use peerns_core::media::track::{MediaSink, MediaSource};
use peerns_core::node::{Kinds, Node, NodeEvent};
use peerns_core::transport::MediaKind;
use peerns_media_desktop::sources::TestPattern;
use peerns_media_desktop::video::H264Encoder;
use serde_json::json;
use tokio::sync::mpsc::UnboundedReceiver;

use super::messaging::start;
use super::percentile;
use crate::Result;
use crate::servers::ServerProcess;

const FPS: u64 = 30;
const FRAME_US: u64 = 1_000_000 / FPS;
/// Test-pattern frames encoded once and replayed (one GOP).
const GOP: usize = 30;
const WAIT: Duration = Duration::from_secs(20);
const AV: Kinds = Kinds::AUDIO.union(Kinds::VIDEO);

/// Resident memory of this process, KiB.
fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// One GOP of the 320×240 test pattern (keyframe first), as access units.
fn encoded_gop() -> Result<Vec<EncodedFrame>> {
    let mut enc = H264Encoder::new(FPS as f32, 600_000)?;
    let mut pattern = TestPattern::new(320, 240);
    let mut out = Vec::with_capacity(GOP);
    let mut i = 0;
    while out.len() < GOP {
        if out.is_empty() {
            enc.request_keyframe();
        }
        if let Some(f) = enc.encode(&pattern.next_frame(), i * FRAME_US)? {
            out.push(f);
        }
        i += 1;
    }
    Ok(out)
}

/// The callee: answers every call with audio + video.
async fn answer(b: Arc<Node>, mut events: UnboundedReceiver<NodeEvent>) {
    while let Some(ev) = events.recv().await {
        if let NodeEvent::IncomingCall { call, .. } = ev
            && let Err(e) = b.accept_call(&call, AV)
        {
            tracing::warn!(error = %e, "bench: accept failed");
        }
    }
}

/// Frames out of the callee's video sink: (arrival, pts relative to the first frame).
type Arrivals = Arc<Mutex<Vec<(Instant, u64)>>>;

/// The callee's video sink of `call` (and its audio sink, if it sends audio).
async fn callee_sinks(b: &Node, call: &str) -> Result<(Vec<MediaSink>, Arrivals)> {
    let conn = b.call_media(call, WAIT).await?;
    let arrivals: Arrivals = Arc::default();
    let mut sinks = vec![];
    for _ in 0..2 {
        let t = tokio::time::timeout(WAIT, conn.next_remote_track())
            .await
            .map_err(|_| "the caller's tracks did not arrive")?
            .ok_or("media closed")?;
        let log = arrivals.clone();
        let video = t.kind() == MediaKind::Video;
        sinks.push(MediaSink::start(t, move |f| {
            if video && let Ok(mut l) = log.lock() {
                l.push((Instant::now(), f.pts_us));
            }
        }));
    }
    Ok((sinks, arrivals))
}

/// Pushes the GOP in a loop at 30 fps (and Opus-sized audio at 50/s) for `d`; returns the push
/// instant of every video frame by pts.
async fn send(a: &Node, call: &str, gop: &[EncodedFrame], d: Duration) -> Result<Vec<Instant>> {
    let conn = a.call_media(call, WAIT).await?;
    let (video, _vc) = MediaSource::start(&conn, conn.local_track("video").ok_or("no video")?);
    let (audio, _ac) = MediaSource::start(&conn, conn.local_track("audio").ok_or("no audio")?);
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    let t0 = Instant::now();
    let (mut pushed, mut vi, mut ai) = (vec![], 0u64, 0u64);
    while t0.elapsed() < d {
        tick.tick().await;
        let now_us = t0.elapsed().as_micros() as u64;
        while ai * 20_000 <= now_us {
            let data = bytes::Bytes::from([&[0xf8u8][..], &[0u8; 80]].concat());
            audio.push(EncodedFrame {
                kind: MediaKind::Audio,
                pts_us: ai * 20_000,
                keyframe: true,
                data,
                audio_level: None,
            });
            ai += 1;
        }
        while vi * FRAME_US <= now_us {
            let mut f = gop[vi as usize % GOP].clone();
            f.pts_us = vi * FRAME_US;
            pushed.push(Instant::now());
            video.push(f);
            vi += 1;
        }
    }
    Ok(pushed)
}

async fn ended(ea: &mut UnboundedReceiver<NodeEvent>, call: &str) -> Result<()> {
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        if let Ok(Some(NodeEvent::CallLogged { entry })) =
            tokio::time::timeout(Duration::from_secs(1), ea.recv()).await
            && hex::encode(entry.id) == call
        {
            return Ok(());
        }
    }
    Err("the call did not end".into())
}

/// One call: dial → first frame out of the callee's video sink, in ms.
async fn setup_once(
    a: &Node,
    b: &Node,
    fb: &str,
    ea: &mut UnboundedReceiver<NodeEvent>,
    gop: &[EncodedFrame],
) -> Result<f64> {
    let t0 = Instant::now();
    let call = a.call(fb, AV).await?;
    let (sender, sinks) = tokio::join!(
        send(a, &call, gop, Duration::from_secs(1)),
        callee_sinks(b, &call)
    );
    let (_sinks, arrivals) = sinks?;
    sender?;
    let first = arrivals
        .lock()
        .ok()
        .and_then(|l| l.first().map(|(t, _)| *t))
        .ok_or("no frame arrived")?;
    a.hang_up(&call)?;
    ended(ea, &call).await?;
    Ok(first.duration_since(t0).as_secs_f64() * 1000.0)
}

/// Runs the benchmark and prints a table or one JSON object.
pub async fn run(
    json_out: bool,
    calls: usize,
    seconds: f64,
    group_seconds: u64,
    failovers: usize,
) -> Result<()> {
    let gop = encoded_gop()?;
    let server = ServerProcess::embedded(&[]).await?;
    let url = server.url();
    let (da, db) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let a = start(&url, da.path(), "bench-a").await?;
    let b = Arc::new(start(&url, db.path(), "bench-b").await?);
    let (mut ea, mut eb) = (a.subscribe(), b.subscribe());
    let (fa, fb) = (a.identity().fingerprint, b.identity().fingerprint);
    a.request_contact(&b.share_link()).await?;
    wait(&mut eb, |e| matches!(e, NodeEvent::ContactRequest { .. })).await?;
    b.accept_request(&fa).await?;
    wait(&mut ea, |e| matches!(e, NodeEvent::ContactAdded { .. })).await?;
    a.connect(&fb).await?;
    let answering = tokio::spawn(answer(b.clone(), eb));

    let mut setup = vec![];
    for _ in 0..calls.max(1) {
        setup.push(setup_once(&a, &b, &fb, &mut ea, &gop).await?);
    }

    // The long call.
    let d = Duration::from_secs_f64(seconds.max(1.0));
    let call = a.call(&fb, AV).await?;
    let sampler = async {
        tokio::time::sleep(d / 4).await;
        rss_kb()
    };
    let (pushed, sinks, rss_early) =
        tokio::join!(send(&a, &call, &gop, d), callee_sinks(&b, &call), sampler);
    let (pushed, (sinks, arrivals)) = (pushed?, sinks?);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rss_end = rss_kb();
    let arrivals = arrivals.lock().map(|l| l.clone()).unwrap_or_default();
    let packets: u64 = sinks
        .iter()
        .map(|s| s.track().counters().packets.load(Relaxed))
        .sum();
    let video_frames = arrivals.len();
    // The first frame out is pushed frame 0 (a keyframe; the sink waits for one), so a frame's
    // pts relative to it is its push index.
    let by_index: HashMap<usize, Instant> = pushed.iter().copied().enumerate().collect();
    let mut latency: Vec<f64> = arrivals
        .iter()
        .filter_map(|(t, pts)| {
            let i = ((pts + FRAME_US / 2) / FRAME_US) as usize;
            by_index
                .get(&i)
                .map(|p| t.duration_since(*p).as_secs_f64() * 1000.0)
        })
        .collect();
    a.hang_up(&call)?;
    ended(&mut ea, &call).await?;
    answering.abort();
    a.stop().await;
    b.stop().await;
    drop(server);

    let secs = d.as_secs_f64();
    let (video_fps, pkts) = (video_frames as f64 / secs, packets as f64 / secs);
    let (s50, s_max) = (percentile(&mut setup, 50.0), percentile(&mut setup, 100.0));
    let (l50, l99) = (
        percentile(&mut latency, 50.0),
        percentile(&mut latency, 99.0),
    );
    let growth = rss_end as i64 - rss_early as i64;
    let group = if group_seconds > 0 {
        Some(super::sfu::figures(1.0, 1, 4, group_seconds, failovers, !json_out).await?)
    } else {
        None
    };
    if json_out {
        let mut out = json!({
                "call_setup_p50_ms": s50, "call_setup_max_ms": s_max,
                "frame_latency_p50_ms": l50, "frame_latency_p99_ms": l99,
                "video_fps": video_fps, "rtp_pkts_per_s": pkts,
                "video_frames_pushed": pushed.len(), "video_frames_received": video_frames,
                "rss_early_kb": rss_early, "rss_end_kb": rss_end, "rss_growth_kb": growth,
                "calls": setup.len(), "seconds": secs,
                "debug_build": cfg!(debug_assertions),
        });
        if let (Some(g), Some(o)) = (
            group.as_ref().and_then(|g| g.as_object()),
            out.as_object_mut(),
        ) {
            o.extend(g.clone());
        }
        println!("{out}");
    } else {
        let build = if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        };
        println!(
            "media bench ({build} build, loopback, {} calls + one of {secs:.0} s)",
            setup.len()
        );
        println!(
            "  call setup, dial -> first frame at the callee: p50 {s50:.1} ms, max {s_max:.1} ms"
        );
        println!(
            "  frame latency, pushed -> out of the sink:      p50 {l50:.2} ms, p99 {l99:.2} ms"
        );
        println!(
            "  video {video_fps:.1} frames/s ({video_frames} of {} pushed), {pkts:.0} RTP packets/s",
            pushed.len()
        );
        println!(
            "  RSS {:.1} MB a quarter in, {:.1} MB at the end ({growth:+} KiB)",
            rss_early as f64 / 1024.0,
            rss_end as f64 / 1024.0
        );
    }
    Ok(())
}

async fn wait(rx: &mut UnboundedReceiver<NodeEvent>, f: impl Fn(&NodeEvent) -> bool) -> Result<()> {
    loop {
        match tokio::time::timeout(WAIT, rx.recv()).await {
            Ok(Some(ev)) if f(&ev) => return Ok(()),
            Ok(Some(_)) => {}
            _ => return Err("the bench stalled".into()),
        }
    }
}
