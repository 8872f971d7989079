//! `peerns bench sfu`: the group-call forwarder alone on one thread, one publisher's video to
//! eight subscribers, next to a plain copy of the same bytes to eight buffers (what any
//! forwarder must at least do), in alternating rounds.

use std::hint::black_box;
use std::time::{Duration, Instant};

use peerns_core::media::depacketize::Codec;
use peerns_core::media::sfu::{
    Forwarder, ParticipantId, SfuAction, SfuConfig, SlotLayout, SlotOut, TrackInfo, TrackKind,
};
use serde_json::json;

use super::{failover, percentile, sfu_call};
use crate::Result;
use crate::servers::ServerProcess;

const SUBSCRIBERS: u64 = 8;
const PACKET: usize = 1200;

/// Output packets per second of the forwarder and of the plain copy, one round each.
fn round(seconds: f64) -> (f64, f64) {
    let fwd = forwarder_round(seconds);
    let copy = copy_round(seconds);
    (fwd, copy)
}

fn packet(seq: u16, ts: u32, keyframe: bool) -> Vec<u8> {
    let mut p = vec![0x80, 102];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&0x5eed_u32.to_be_bytes());
    p.extend_from_slice(if keyframe {
        &[0x65, 0x88]
    } else {
        &[0x41, 0x9a]
    });
    p.resize(PACKET, 0xab);
    p
}

fn forwarder_round(seconds: f64) -> f64 {
    let mut now = Instant::now();
    let mut fwd = Forwarder::new(SfuConfig::default());
    let publisher = ParticipantId(0);
    let info = TrackInfo {
        codec: Codec::H264,
        clock_rate: 90_000,
        audio_level_ext: None,
    };
    for p in 0..=SUBSCRIBERS {
        fwd.add_participant(now, ParticipantId(p));
        let layout = SlotLayout {
            video: vec![SlotOut {
                ssrc: p as u32,
                payload_type: 102,
            }],
            ..SlotLayout::default()
        };
        fwd.subscribe(now, ParticipantId(p), &layout)
            .expect("added");
    }
    fwd.publish(now, publisher, TrackKind::Video, info)
        .expect("added");
    fwd.handle_timeout(now);
    while fwd.poll_action().is_some() {}
    let (start, mut out, mut seq) = (Instant::now(), 0u64, 0u16);
    let limit = Duration::from_secs_f64(seconds);
    while start.elapsed() < limit {
        for _ in 0..1000 {
            // 30 frames/s of ~10 packets: the clock moves 3 ms per packet.
            now += Duration::from_millis(3);
            seq = seq.wrapping_add(1);
            let pkt = packet(seq, u32::from(seq) * 270, seq == 1);
            fwd.handle_rtp(now, publisher, TrackKind::Video, &pkt)
                .expect("valid packet");
            if fwd.poll_timeout().is_some_and(|t| t <= now) {
                fwd.handle_timeout(now);
            }
            while let Some(a) = fwd.poll_action() {
                if let SfuAction::Send { packet, .. } = a {
                    black_box(packet);
                    out += 1;
                }
            }
        }
    }
    out as f64 / start.elapsed().as_secs_f64()
}

fn copy_round(seconds: f64) -> f64 {
    let (start, mut out, mut seq) = (Instant::now(), 0u64, 0u16);
    let limit = Duration::from_secs_f64(seconds);
    while start.elapsed() < limit {
        for _ in 0..1000 {
            seq = seq.wrapping_add(1);
            let pkt = packet(seq, u32::from(seq) * 270, false);
            for _ in 0..SUBSCRIBERS {
                black_box(pkt.clone());
                out += 1;
            }
        }
    }
    out as f64 / start.elapsed().as_secs_f64()
}

/// The forwarder's figures: `rounds` alternating rounds of `seconds` each (medians), then
/// (unless `call_seconds` is 0) a real call of `participants` through the forwarder's driver,
/// then `failovers` router kills in a call of `participants` real processes. `say` prints a
/// table as it goes.
pub async fn figures(
    seconds: f64,
    rounds: usize,
    participants: u64,
    call_seconds: u64,
    failovers: usize,
    say: bool,
) -> Result<serde_json::Value> {
    let (mut fwd, mut copy) = (vec![], vec![]);
    for _ in 0..rounds.max(1) {
        let (f, c) = round(seconds);
        fwd.push(f);
        copy.push(c);
    }
    let fwd = percentile(&mut fwd, 50.0);
    let copy = percentile(&mut copy, 50.0);
    let mut out = json!({
        "sfu_pkts_per_s_per_core": fwd.round(),
        "copy_pkts_per_s_per_core": copy.round(),
        "sfu_vs_copy": (fwd / copy * 1000.0).round() / 1000.0,
        "subscribers": SUBSCRIBERS,
        "packet_bytes": PACKET,
        "participants": participants,
    });
    if say {
        println!("forwarder, 1 publisher → {SUBSCRIBERS} subscribers, one thread:");
        println!("  forwarded   {fwd:>12.0} packets/s");
        println!(
            "  plain copy  {copy:>12.0} packets/s   (forwarder {:.2}×)",
            fwd / copy
        );
    }
    let round2 = |v: f64| (v * 100.0).round() / 100.0;
    let server = ServerProcess::embedded(&[]).await?;
    if call_seconds > 0 && participants >= 2 {
        let mut f = sfu_call::call(&server.url(), participants, call_seconds).await?;
        let (p50, p99) = sfu_call::delay_percentiles(&mut f);
        // Each participant should complete every frame the others sent.
        let total: u64 = f.sent.iter().sum();
        let received_pct = f
            .frames
            .iter()
            .zip(&f.sent)
            .map(|(got, own)| *got as f64 * 100.0 / (total - own).max(1) as f64)
            .fold(f64::INFINITY, f64::min);
        out["sfu_added_latency_p50_ms"] = json!(round2(p50));
        out["sfu_added_latency_p99_ms"] = json!(round2(p99));
        out["frames_received_min_pct"] = json!(round2(received_pct));
        if say {
            println!("real call, {participants} participants, {call_seconds} s, loopback:");
            println!("  router forwarding delay p50 {p50:.2} ms, p99 {p99:.2} ms");
            println!("  frames completed by the worst-off participant: {received_pct:.1} %");
        }
    }
    if failovers > 0 && participants >= 3 {
        let mut t = failover::resume_times(&server.url(), participants as usize, failovers).await?;
        let n = t.len();
        let (p50, p95) = (percentile(&mut t, 50.0), percentile(&mut t, 95.0));
        out["media_resume_p50_s"] = json!(round2(p50));
        out["media_resume_p95_s"] = json!(round2(p95));
        out["failover_samples"] = json!(n);
        if say {
            println!(
                "router SIGKILLed in a {participants}-process call, {failovers} times ({n} pairs):"
            );
            println!("  media resumed after p50 {p50:.2} s, p95 {p95:.2} s");
        }
    }
    Ok(out)
}

/// `peerns bench sfu`: [`figures`], as a table or one JSON object.
pub async fn run(
    json: bool,
    seconds: f64,
    rounds: usize,
    participants: u64,
    call_seconds: u64,
    failovers: usize,
) -> Result<()> {
    let out = figures(
        seconds,
        rounds,
        participants,
        call_seconds,
        failovers,
        !json,
    )
    .await?;
    if json {
        println!("{out}");
    }
    Ok(())
}
