use super::*;
use crate::media::h264::{join_nals, split_nals};

fn pkt(seq: u16, ts: u32, marker: bool, payload: &[u8]) -> RtpIn {
    RtpIn {
        seq,
        ts,
        marker,
        payload: Bytes::copy_from_slice(payload),
    }
}

/// An IDR split into two FU-A packets, then a one-packet P frame, per frame index.
fn video_packets(frame: u32, seq: u16) -> Vec<RtpIn> {
    let ts = frame * 3000;
    if frame.is_multiple_of(10) {
        vec![
            pkt(seq, ts, false, &[28 | 0x60, 0x80 | 5, frame as u8, 1]),
            pkt(seq.wrapping_add(1), ts, true, &[28 | 0x60, 0x40 | 5, 2, 3]),
        ]
    } else {
        vec![pkt(seq, ts, true, &[0x41, frame as u8])]
    }
}

fn drain(r: &mut Reassembler) -> Vec<Output> {
    std::iter::from_fn(|| r.poll_output()).collect()
}

#[test]
fn in_order_video_becomes_frames_with_pts() {
    let now = Instant::now();
    let mut r = Reassembler::new(Codec::H264, 90_000);
    let mut seq = 65_530u16; // wraps
    for f in 0..12 {
        for p in video_packets(f, seq) {
            seq = seq.wrapping_add(1);
            r.push(p, now);
        }
    }
    let out = drain(&mut r);
    assert_eq!(out.len(), 12, "{out:?}");
    let Output::Frame(first) = &out[0] else {
        panic!()
    };
    assert!(first.keyframe);
    assert_eq!(first.pts_us, 0);
    assert_eq!(split_nals(&first.data)[0][0], 0x65);
    let Output::Frame(f3) = &out[3] else { panic!() };
    assert!(!f3.keyframe);
    assert_eq!(f3.pts_us, 100_000);
    assert_eq!(r.stats().frames, 12);
}

#[test]
fn reordered_packets_wait_and_complete() {
    let now = Instant::now();
    let mut r = Reassembler::new(Codec::H264, 90_000);
    let mut p = video_packets(0, 10);
    p.extend(video_packets(1, 12));
    r.push(p[1].clone(), now);
    r.push(p[2].clone(), now);
    assert!(drain(&mut r).is_empty());
    assert!(r.poll_timeout().is_some());
    r.push(p[0].clone(), now + Duration::from_millis(20));
    assert_eq!(drain(&mut r).len(), 2);
    assert_eq!(r.poll_timeout(), None);
}

#[test]
fn a_lost_packet_drops_until_the_next_keyframe_and_asks_for_one() {
    let t0 = Instant::now();
    let mut r = Reassembler::new(Codec::H264, 90_000);
    let mut seq = 100u16;
    let mut all = vec![];
    for f in 0..21 {
        let ps = video_packets(f, seq);
        seq += ps.len() as u16;
        all.extend(ps);
    }
    // Frames 0..=2 arrive; frame 3's only packet is lost; the rest arrive.
    let lost = all.iter().position(|p| p.ts == 3 * 3000).unwrap();
    for (i, p) in all.iter().enumerate() {
        if i != lost {
            r.push(p.clone(), t0);
        }
    }
    let before = drain(&mut r);
    assert_eq!(before.len(), 3, "frames after the gap wait for it");
    r.handle_timeout(t0 + GAP_WAIT);
    let after = drain(&mut r);
    assert_eq!(after[0], Output::KeyframeNeeded);
    let frames: Vec<&EncodedFrame> = after
        .iter()
        .filter_map(|o| match o {
            Output::Frame(f) => Some(f),
            _ => None,
        })
        .collect();
    // Frames 4..=9 are dropped (no keyframe), 10..=20 come out starting with the IDR.
    assert_eq!(frames.len(), 11);
    assert!(frames[0].keyframe);
    assert_eq!(frames[0].pts_us, 10 * 100_000 / 3);
    assert_eq!(r.stats().dropped, 6, "frame 4 (after the gap) and 5..=9");
}

#[test]
fn waiting_for_a_keyframe_repeats_the_request() {
    let t0 = Instant::now();
    let mut r = Reassembler::new(Codec::H264, 90_000);
    // The stream is joined mid-GOP: P frames only.
    r.push(pkt(1, 3000, true, &[0x41, 1]), t0);
    assert_eq!(drain(&mut r), [Output::KeyframeNeeded]);
    r.push(
        pkt(2, 6000, true, &[0x41, 2]),
        t0 + Duration::from_millis(10),
    );
    assert!(drain(&mut r).is_empty(), "no second request right away");
    let due = r.poll_timeout().unwrap();
    assert_eq!(due, t0 + KEYFRAME_REPEAT);
    r.handle_timeout(due);
    assert_eq!(drain(&mut r), [Output::KeyframeNeeded]);
    let idr = join_nals([&[0x65u8, 1][..]]);
    r.push(pkt(3, 9000, true, &idr[4..]), due);
    assert!(matches!(&drain(&mut r)[..], [Output::Frame(f)] if f.keyframe));
    assert_eq!(r.poll_timeout(), None);
}

#[test]
fn audio_loss_skips_without_keyframes() {
    let t0 = Instant::now();
    let mut r = Reassembler::new(Codec::Opus, 48_000);
    for (seq, ts) in [(1u16, 0u32), (2, 960), (4, 2880), (5, 3840)] {
        r.push(pkt(seq, ts, false, &[0xfc, seq as u8]), t0);
    }
    assert_eq!(drain(&mut r).len(), 2);
    r.handle_timeout(t0 + GAP_WAIT);
    let out = drain(&mut r);
    assert_eq!(out.len(), 2);
    assert!(
        out.iter()
            .all(|o| matches!(o, Output::Frame(f) if f.kind == MediaKind::Audio))
    );
    let Output::Frame(f) = &out[0] else { panic!() };
    assert_eq!(f.pts_us, 60_000);
}

#[test]
fn the_buffer_is_bounded() {
    let t0 = Instant::now();
    let mut r = Reassembler::new(Codec::H264, 90_000);
    // A frame whose marker never comes, followed by endless packets of one timestamp.
    for i in 0..(MAX_BUFFERED_PACKETS as u16 * 3) {
        r.push(pkt(i, 7, false, &[28, 5, 0]), t0);
        assert!(r.buf.len() <= MAX_BUFFERED_PACKETS);
    }
    drain(&mut r);
}
