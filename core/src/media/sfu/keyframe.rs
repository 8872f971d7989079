//! Whether an RTP payload is the first packet of a keyframe, so a forwarder can switch a
//! subscriber to a new source at a point where the decoder can start.

use crate::media::depacketize::Codec;

/// True when `payload` (of codec `codec`) starts a frame a decoder can begin with.
pub fn starts_keyframe(codec: Codec, payload: &[u8]) -> bool {
    match codec {
        Codec::H264 => h264(payload),
        Codec::Vp8 => vp8(payload),
        Codec::Opus => true,
    }
}

/// H.264 (RFC 6184): an IDR slice or SPS as a single NAL, inside a STAP-A, or the start of an
/// FU-A of one. Encoders send SPS/PPS right before an IDR, so either marks the keyframe.
fn h264(payload: &[u8]) -> bool {
    let starts = |nal_type: u8| nal_type == 5 || nal_type == 7;
    match payload {
        [h, ..] if (1..=23).contains(&(h & 0x1f)) => starts(h & 0x1f),
        [h, rest @ ..] if h & 0x1f == 24 => {
            let mut rest = rest;
            while rest.len() > 2 {
                let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
                let Some(nal) = rest.get(2..2 + len) else {
                    return false;
                };
                if nal.first().is_some_and(|b| starts(b & 0x1f)) {
                    return true;
                }
                rest = &rest[2 + len..];
            }
            false
        }
        [h, fu, ..] if h & 0x1f == 28 => fu & 0x80 != 0 && starts(fu & 0x1f),
        _ => false,
    }
}

/// VP8 (RFC 7741): the start of partition 0 (S=1, PID=0) whose payload header has P=0.
fn vp8(payload: &[u8]) -> bool {
    let Some(&first) = payload.first() else {
        return false;
    };
    if first & 0x10 == 0 || first & 0x07 != 0 {
        return false;
    }
    let mut at = 1;
    if first & 0x80 != 0 {
        let Some(&x) = payload.get(1) else {
            return false;
        };
        at = 2;
        if x & 0x80 != 0 {
            // Picture ID: 7 or 15 bits.
            at += if payload.get(at).is_some_and(|b| b & 0x80 != 0) {
                2
            } else {
                1
            };
        }
        if x & 0x40 != 0 {
            at += 1;
        }
        if x & 0x30 != 0 {
            at += 1;
        }
    }
    payload.get(at).is_some_and(|b| b & 0x01 == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn h264_keyframe_starts() {
        assert!(starts_keyframe(Codec::H264, &[0x65, 0x88])); // IDR
        assert!(starts_keyframe(Codec::H264, &[0x67, 0x42])); // SPS
        assert!(!starts_keyframe(Codec::H264, &[0x41, 0x9a])); // non-IDR slice
        // STAP-A holding SPS then PPS.
        assert!(starts_keyframe(
            Codec::H264,
            &[0x78, 0, 2, 0x67, 0x42, 0, 2, 0x68, 0xce]
        ));
        assert!(!starts_keyframe(Codec::H264, &[0x78, 0, 2, 0x68, 0xce]));
        // FU-A: start of an IDR, middle of an IDR, start of a P slice.
        assert!(starts_keyframe(Codec::H264, &[0x7c, 0x85, 1]));
        assert!(!starts_keyframe(Codec::H264, &[0x7c, 0x05, 1]));
        assert!(!starts_keyframe(Codec::H264, &[0x7c, 0x81, 1]));
        // A STAP-A whose length runs past the end is not a keyframe (and does not panic).
        assert!(!starts_keyframe(Codec::H264, &[0x78, 0, 9, 0x67]));
        assert!(!starts_keyframe(Codec::H264, &[]));
    }

    #[test]
    fn vp8_keyframe_starts() {
        assert!(starts_keyframe(Codec::Vp8, &[0x10, 0x00])); // S=1, P=0
        assert!(!starts_keyframe(Codec::Vp8, &[0x10, 0x01])); // interframe
        assert!(!starts_keyframe(Codec::Vp8, &[0x00, 0x00])); // not a partition start
        // X with a 15-bit picture ID, then a keyframe header.
        assert!(starts_keyframe(Codec::Vp8, &[0x90, 0x80, 0x81, 0x23, 0x00]));
        assert!(!starts_keyframe(Codec::Vp8, &[0x90, 0x80, 0x81]));
    }
}
