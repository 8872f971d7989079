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

use super::percentile;
use crate::Result;

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

/// Runs `rounds` alternating rounds of `seconds` each and prints the medians.
pub fn run(json: bool, seconds: f64, rounds: usize) -> Result<()> {
    let (mut fwd, mut copy) = (vec![], vec![]);
    for _ in 0..rounds.max(1) {
        let (f, c) = round(seconds);
        fwd.push(f);
        copy.push(c);
    }
    let fwd = percentile(&mut fwd, 50.0);
    let copy = percentile(&mut copy, 50.0);
    if json {
        println!(
            "{}",
            json!({
                "sfu_pkts_per_s_per_core": fwd.round(),
                "copy_pkts_per_s_per_core": copy.round(),
                "sfu_vs_copy": (fwd / copy * 1000.0).round() / 1000.0,
                "subscribers": SUBSCRIBERS,
                "packet_bytes": PACKET,
            })
        );
    } else {
        println!("forwarder, 1 publisher → {SUBSCRIBERS} subscribers, one thread:");
        println!("  forwarded   {fwd:>12.0} packets/s");
        println!(
            "  plain copy  {copy:>12.0} packets/s   (forwarder {:.2}×)",
            fwd / copy
        );
    }
    Ok(())
}
