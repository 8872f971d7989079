//! `peerns bench sfu`, second part: a real group call through the forwarder's driver on
//! loopback. N participants (in this process, each with its own transport on the embedded
//! signaling server) send OpenH264 test-pattern video and an Opus tone to a router, which
//! forwards them through N−1 video and audio slots each. Measured: the router's forwarding
//! delay (a packet out of webrtc-rs's receive side → its copies handed to the send side) and the
//! frames each participant completes from the others.

use std::sync::atomic::Ordering;
use std::time::Duration;

use peerns_core::media::sfu::{ParticipantId, SfuConfig, TrackKind};
use peerns_core::media::sfu_hub::{SfuHub, slot_track_name};
use peerns_core::media::track::{EncoderControl, MediaSink, MediaSource};
use peerns_core::transport::TransportConfig;
use peerns_core::transport::{MediaConnection, MediaKind, MediaOptions, TrackSpec};
use peerns_media_desktop::audio::OpusEncoder;
use peerns_media_desktop::sources::{TestPattern, Tone};
use peerns_media_desktop::video::H264Encoder;

use super::percentile;
use crate::Result;
use crate::local_node::LocalNode;

const FPS: u64 = 15;

/// What one call measured.
pub struct CallFigures {
    /// Forwarding delays, milliseconds.
    pub delays_ms: Vec<f64>,
    /// Video frames completed per participant (from all its slots).
    pub frames: Vec<u64>,
    /// Video frames each participant sent.
    pub sent: Vec<u64>,
}

async fn send(call: MediaConnection, seconds: u64) -> Result<u64> {
    let (video, mut ctl) = MediaSource::start(&call, call.local_track("video").ok_or("video")?);
    let (audio, _) = MediaSource::start(&call, call.local_track("audio").ok_or("audio")?);
    let mut venc = H264Encoder::new(FPS as f32, 300_000)?;
    let mut aenc = OpusEncoder::new(32_000)?;
    let (mut pattern, mut tone) = (TestPattern::new(320, 240), Tone::new(440.0));
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let mut sent = 0;
    for i in 0..seconds * 50 {
        tick.tick().await;
        let pts = i * 20_000;
        let _ = audio.push(aenc.encode(&tone.next_frame(), pts)?);
        // A video frame on the ticks closest to the 15 frames/s schedule.
        if i * FPS / 50 != (i + 1) * FPS / 50 {
            while let Ok(c) = ctl.try_recv() {
                if c == EncoderControl::KeyframeRequest {
                    venc.request_keyframe();
                }
            }
            if let Some(f) = venc.encode(&pattern.next_frame(), pts)? {
                let _ = video.push(f);
                sent += 1;
            }
        }
    }
    Ok(sent)
}

/// Runs one call of `participants` for `seconds` through a router on the server at `url`.
pub async fn call(url: &str, participants: u64, seconds: u64) -> Result<CallFigures> {
    let config = TransportConfig::loopback();
    let router = LocalNode::start(url, "peerns2-bench-sfu-router", "t", config.clone()).await?;
    let mut offers = router.transport.media_offers(16);
    let others = participants.saturating_sub(1) as u8;
    let (hub, _events) = SfuHub::start(SfuConfig {
        last_n: usize::from(others),
        audio_slots: usize::from(others),
        ..SfuConfig::default()
    });
    let mut slots = vec![];
    for i in 0..others {
        slots.push(TrackSpec::forwarding(
            slot_track_name(TrackKind::Audio, i),
            MediaKind::Audio,
        ));
        slots.push(TrackSpec::forwarding(
            slot_track_name(TrackKind::Video, i),
            MediaKind::Video,
        ));
    }
    let extra = others.saturating_sub(1);
    let mut receive = vec![];
    for _ in 0..extra {
        receive.extend([MediaKind::Audio, MediaKind::Video]);
    }
    let (mut nodes, mut calls) = (vec![], vec![]);
    for i in 0..participants {
        let node =
            LocalNode::start(url, &format!("peerns2-bench-sfu-{i}"), "t", config.clone()).await?;
        let opts = MediaOptions {
            tracks: vec![TrackSpec::audio(), TrackSpec::video()],
            receive: receive.clone(),
            ..Default::default()
        };
        let call = node.transport.call(&router.id, opts).await?;
        let incoming = tokio::time::timeout(Duration::from_secs(10), offers.recv())
            .await?
            .ok_or("no offer")?;
        let answered = incoming.accept(slots.clone()).await?;
        call.connected(Duration::from_secs(10)).await?;
        answered.connected(Duration::from_secs(10)).await?;
        hub.join(ParticipantId(i), answered).await;
        nodes.push(node);
        calls.push(call);
    }
    let senders: Vec<_> = calls
        .iter()
        .map(|c| tokio::spawn(send(c.clone(), seconds)))
        .collect();
    let (mut sinks, mut drained) = (vec![], vec![]);
    for call in &calls {
        let mut mine = vec![];
        for _ in 0..2 * usize::from(others) {
            let t = tokio::time::timeout(Duration::from_secs(15), call.next_remote_track())
                .await?
                .ok_or("call closed")?;
            // Audio is drained too (an unread track backs up in webrtc-rs); video is counted.
            let video = t.kind() == MediaKind::Video;
            let sink = MediaSink::start(t, |_| {});
            if video {
                mine.push(sink);
            } else {
                drained.push(sink);
            }
        }
        sinks.push(mine);
    }
    let mut sent = vec![];
    for s in senders {
        sent.push(s.await??);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let frames = sinks
        .iter()
        .map(|mine| {
            mine.iter()
                .map(|s| s.stats().frames.load(Ordering::Relaxed))
                .sum()
        })
        .collect();
    let delays_ms = hub
        .delays()
        .into_iter()
        .map(|d| d.as_secs_f64() * 1000.0)
        .collect();
    drop(drained);
    for c in &calls {
        c.close().await;
    }
    for n in nodes {
        n.stop().await;
    }
    router.stop().await;
    Ok(CallFigures {
        delays_ms,
        frames,
        sent,
    })
}

/// The p50 and p99 of the delays.
pub fn delay_percentiles(f: &mut CallFigures) -> (f64, f64) {
    (
        percentile(&mut f.delays_ms, 50.0),
        percentile(&mut f.delays_ms, 99.0),
    )
}
