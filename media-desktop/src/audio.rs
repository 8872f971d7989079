//! Opus with libopus: 20 ms frames at 48 kHz, mono (decodable as the stereo the SDP signals).

use bytes::Bytes;
use opus::{Application, Channels};
use peerns_core::media::EncodedFrame;
use peerns_core::media::level::audio_level;
use peerns_core::transport::MediaKind;

use crate::DesktopError;

/// Samples per channel in one 20 ms frame at 48 kHz.
pub const FRAME_SAMPLES: usize = 960;
/// Largest Opus packet we produce.
const MAX_PACKET: usize = 1500;

/// Encodes 20 ms blocks of 48 kHz mono PCM to Opus packets.
pub struct OpusEncoder {
    enc: opus::Encoder,
}

impl OpusEncoder {
    /// A VoIP encoder at `bitrate` bits per second.
    pub fn new(bitrate: i32) -> Result<Self, DesktopError> {
        let mut enc = opus::Encoder::new(48_000, Channels::Mono, Application::Voip)?;
        enc.set_bitrate(opus::Bitrate::Bits(bitrate))?;
        enc.set_inband_fec(true)?;
        Ok(Self { enc })
    }

    /// Encodes one frame of [`FRAME_SAMPLES`] samples presented at `pts_us`.
    pub fn encode(&mut self, pcm: &[i16], pts_us: u64) -> Result<EncodedFrame, DesktopError> {
        let data = self.enc.encode_vec(pcm, MAX_PACKET)?;
        Ok(EncodedFrame {
            kind: MediaKind::Audio,
            pts_us,
            keyframe: true,
            data: Bytes::from(data),
            audio_level: Some(audio_level(pcm)),
        })
    }
}

/// Decodes Opus packets (to check what was received).
pub struct OpusDecoder {
    dec: opus::Decoder,
}

impl OpusDecoder {
    /// A 48 kHz stereo decoder.
    pub fn new() -> Result<Self, DesktopError> {
        Ok(Self {
            dec: opus::Decoder::new(48_000, Channels::Stereo)?,
        })
    }

    /// Decodes one packet; interleaved stereo samples.
    pub fn decode(&mut self, packet: &[u8]) -> Result<Vec<i16>, DesktopError> {
        let mut out = vec![0i16; 2 * 5760];
        let n = self.dec.decode(packet, &mut out, false)?;
        out.truncate(2 * n);
        Ok(out)
    }
}
