//! The unit media moves in: one encoded frame (an H.264 Annex-B access unit, a VP8 frame, or
//! one Opus packet) with its presentation time.

use bytes::Bytes;

use crate::transport::MediaKind;

/// One encoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedFrame {
    /// Audio or video.
    pub kind: MediaKind,
    /// Presentation time in microseconds, from the stream's first frame.
    pub pts_us: u64,
    /// Whether it can be decoded alone (IDR; every audio frame).
    pub keyframe: bool,
    /// The encoded bytes.
    pub data: Bytes,
    /// Audio only: how loud the frame is, as RFC 6464 says it ([`super::level::audio_level`]
    /// of its PCM: 0 loudest … 127 silence); sent on its packets. `None`: not measured (and
    /// for video, and for received frames).
    pub audio_level: Option<u8>,
}
