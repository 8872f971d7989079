//! RTP payloads back into codec frames: H.264 (RFC 6184: single NAL, STAP-A, FU-A) into an
//! Annex-B access unit, VP8 (RFC 7741) into a frame, Opus (RFC 7587) as is.

use super::h264::join_nals;

/// Why a frame's payloads could not be put together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DepacketizeError {
    /// A payload too short for its header.
    #[error("truncated payload")]
    Truncated,
    /// A packetization we do not take (STAP-B, MTAP, FU-B, interleaved mode).
    #[error("unsupported NAL packetization {0}")]
    Unsupported(u8),
    /// A fragmented unit without its start or end (a packet of the frame is missing).
    #[error("incomplete fragmented unit")]
    Incomplete,
}

/// Codecs the reassembler knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// H.264, packetization mode 1.
    H264,
    /// VP8 (what browsers often prefer).
    Vp8,
    /// Opus: one packet, one frame.
    Opus,
}

impl Codec {
    /// The codec of a negotiated MIME type (`video/H264`, `video/VP8`, `audio/opus`).
    pub fn from_mime(mime: &str) -> Option<Self> {
        match mime.to_ascii_lowercase().as_str() {
            "video/h264" => Some(Self::H264),
            "video/vp8" => Some(Self::Vp8),
            "audio/opus" => Some(Self::Opus),
            _ => None,
        }
    }

    /// Its name in lowercase (`h264`, `vp8`, `opus`).
    pub fn name(self) -> &'static str {
        match self {
            Self::H264 => "h264",
            Self::Vp8 => "vp8",
            Self::Opus => "opus",
        }
    }

    /// Whether its frames depend on earlier ones (loss needs a keyframe).
    pub fn is_video(self) -> bool {
        !matches!(self, Self::Opus)
    }

    /// Whether a whole frame is a keyframe.
    pub fn is_keyframe(self, frame: &[u8]) -> bool {
        match self {
            Self::H264 => super::h264::is_keyframe(frame),
            Self::Vp8 => frame.first().is_some_and(|b| b & 1 == 0),
            Self::Opus => true,
        }
    }

    /// Whether a packet can be the first of a frame (not the middle of a fragmented unit).
    pub fn starts_frame(self, payload: &[u8]) -> bool {
        match self {
            Self::H264 => match payload {
                [h, fu, ..] if h & 0x1f == 28 => fu & 0x80 != 0,
                [_, ..] => true,
                [] => false,
            },
            Self::Vp8 => payload
                .first()
                .is_some_and(|b| b & 0x10 != 0 && b & 0x07 == 0),
            Self::Opus => true,
        }
    }

    /// Puts the payloads of one frame (in sequence order) together.
    pub fn depacketize(self, payloads: &[&[u8]]) -> Result<Vec<u8>, DepacketizeError> {
        match self {
            Self::H264 => h264_frame(payloads),
            Self::Vp8 => vp8_frame(payloads),
            Self::Opus => Ok(payloads.concat()),
        }
    }
}

fn h264_frame(payloads: &[&[u8]]) -> Result<Vec<u8>, DepacketizeError> {
    let mut nals: Vec<Vec<u8>> = vec![];
    let mut fu: Option<Vec<u8>> = None;
    for p in payloads {
        let header = *p.first().ok_or(DepacketizeError::Truncated)?;
        match header & 0x1f {
            1..=23 => {
                if fu.is_some() {
                    return Err(DepacketizeError::Incomplete);
                }
                nals.push(p.to_vec());
            }
            24 => {
                let mut rest = &p[1..];
                while !rest.is_empty() {
                    if rest.len() < 2 {
                        return Err(DepacketizeError::Truncated);
                    }
                    let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
                    let nal = rest.get(2..2 + len).ok_or(DepacketizeError::Truncated)?;
                    if !nal.is_empty() {
                        nals.push(nal.to_vec());
                    }
                    rest = &rest[2 + len..];
                }
            }
            28 => {
                let fu_header = *p.get(1).ok_or(DepacketizeError::Truncated)?;
                let (start, end) = (fu_header & 0x80 != 0, fu_header & 0x40 != 0);
                if start {
                    if fu.is_some() {
                        return Err(DepacketizeError::Incomplete);
                    }
                    fu = Some(vec![(header & 0xe0) | (fu_header & 0x1f)]);
                }
                let nal = fu.as_mut().ok_or(DepacketizeError::Incomplete)?;
                nal.extend_from_slice(&p[2..]);
                if end {
                    nals.push(fu.take().expect("fu"));
                }
            }
            t => return Err(DepacketizeError::Unsupported(t)),
        }
    }
    if fu.is_some() || nals.is_empty() {
        return Err(DepacketizeError::Incomplete);
    }
    Ok(join_nals(nals.iter().map(Vec::as_slice)))
}

fn vp8_frame(payloads: &[&[u8]]) -> Result<Vec<u8>, DepacketizeError> {
    let mut out = vec![];
    for (i, p) in payloads.iter().enumerate() {
        let b0 = *p.first().ok_or(DepacketizeError::Truncated)?;
        let mut at = 1;
        if b0 & 0x80 != 0 {
            let x = *p.get(1).ok_or(DepacketizeError::Truncated)?;
            at = 2;
            if x & 0x80 != 0 {
                let pid = *p.get(at).ok_or(DepacketizeError::Truncated)?;
                at += if pid & 0x80 != 0 { 2 } else { 1 };
            }
            if x & 0x40 != 0 {
                at += 1;
            }
            if x & 0x30 != 0 {
                at += 1;
            }
        }
        let start = b0 & 0x10 != 0 && b0 & 0x07 == 0;
        if i == 0 && !start {
            return Err(DepacketizeError::Incomplete);
        }
        out.extend_from_slice(p.get(at..).ok_or(DepacketizeError::Truncated)?);
    }
    if out.is_empty() {
        return Err(DepacketizeError::Incomplete);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::h264::split_nals;

    #[test]
    fn h264_single_stap_and_fu_make_one_access_unit() {
        let stap = [24, 0, 2, 0x67, 1, 0, 1, 0x68];
        let idr: Vec<u8> = (0..10).collect();
        let fu1 = [28 | 0x60, 0x80 | 5, 0, 1, 2, 3, 4];
        let fu2 = [28 | 0x60, 0x40 | 5, 5, 6, 7, 8, 9];
        let au = Codec::H264.depacketize(&[&stap, &fu1, &fu2]).unwrap();
        let nals = split_nals(&au);
        assert_eq!(nals.len(), 3);
        assert_eq!(nals[2][0], 0x65);
        assert_eq!(&nals[2][1..], &idr[..]);
        assert!(Codec::H264.is_keyframe(&au));
        let single = Codec::H264.depacketize(&[&[0x41, 1, 2][..]]).unwrap();
        assert_eq!(single, [0, 0, 0, 1, 0x41, 1, 2]);
    }

    #[test]
    fn h264_broken_fragments_are_refused() {
        let fu_mid = [28, 5, 1];
        assert_eq!(
            Codec::H264.depacketize(&[&fu_mid[..]]),
            Err(DepacketizeError::Incomplete)
        );
        let fu_start = [28, 0x85, 1];
        assert_eq!(
            Codec::H264.depacketize(&[&fu_start[..]]),
            Err(DepacketizeError::Incomplete)
        );
        assert_eq!(
            Codec::H264.depacketize(&[&[25, 1][..]]),
            Err(DepacketizeError::Unsupported(25))
        );
        assert_eq!(
            Codec::H264.depacketize(&[&[24, 0, 9, 1][..]]),
            Err(DepacketizeError::Truncated)
        );
    }

    #[test]
    fn vp8_descriptors_are_stripped() {
        // X=1, S=1; I=1 with a 15-bit picture id.
        let first = [0x90, 0x80, 0x80, 0x01, 0x10, 0x02];
        let second = [0x80, 0x80, 0x80, 0x02, 0xaa];
        let frame = Codec::Vp8.depacketize(&[&first, &second]).unwrap();
        assert_eq!(frame, [0x10, 0x02, 0xaa]);
        assert!(Codec::Vp8.is_keyframe(&frame));
        assert_eq!(
            Codec::Vp8.depacketize(&[&second[..]]),
            Err(DepacketizeError::Incomplete)
        );
        assert!(Codec::Vp8.starts_frame(&first) && !Codec::Vp8.starts_frame(&second));
        assert!(Codec::H264.starts_frame(&[28, 0x85]) && !Codec::H264.starts_frame(&[28, 0x45]));
        assert!(Codec::H264.starts_frame(&[0x41]) && Codec::Opus.starts_frame(&[]));
        assert_eq!(Codec::from_mime("video/H264"), Some(Codec::H264));
        assert_eq!(Codec::from_mime("audio/opus"), Some(Codec::Opus));
    }
}
