//! H.264 with OpenH264: an encoder that makes constrained-baseline Annex-B access units (the
//! format the core sends) and follows encoder control, and a decoder to check what arrives.

use bytes::Bytes;
use openh264::OpenH264API;
use openh264::decoder::Decoder;
use openh264::encoder::{
    BitRate, Encoder, EncoderConfig, FrameRate, FrameType, IntraFramePeriod, Profile,
    RateControlMode, UsageType,
};
use openh264::formats::{YUVBuffer, YUVSource};
use peerns_core::media::EncodedFrame;
use peerns_core::transport::MediaKind;

use crate::DesktopError;

/// A raw I420 picture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct I420 {
    /// Width in pixels (even).
    pub width: usize,
    /// Height in pixels (even).
    pub height: usize,
    /// Y, then U, then V planes, tightly packed.
    pub data: Vec<u8>,
}

impl I420 {
    /// Bytes of an I420 picture of this size.
    pub fn len_for(width: usize, height: usize) -> usize {
        width * height * 3 / 2
    }
}

/// A change of encoder bitrate is applied (by starting a new encoder, whose first frame is an
/// IDR) only when it differs by more than this fraction…
const BITRATE_HYSTERESIS: f64 = 0.25;
/// …and at most this often, in frames.
const BITRATE_MIN_FRAMES: u64 = 60;

/// Encodes I420 pictures to H.264 Annex-B access units.
pub struct H264Encoder {
    enc: Encoder,
    fps: f32,
    bitrate: u32,
    frames: u64,
    last_reconfig: u64,
    force_keyframe: bool,
}

fn config(fps: f32, bitrate: u32) -> EncoderConfig {
    EncoderConfig::new()
        .bitrate(BitRate::from_bps(bitrate))
        .max_frame_rate(FrameRate::from_hz(fps))
        .rate_control_mode(RateControlMode::Bitrate)
        .skip_frames(false)
        .usage_type(UsageType::CameraVideoRealTime)
        .profile(Profile::Baseline)
        .intra_frame_period(IntraFramePeriod::from_num_frames(2 * fps as u32))
}

fn h264_err(e: impl std::fmt::Display) -> DesktopError {
    DesktopError::H264(e.to_string())
}

impl H264Encoder {
    /// An encoder at `fps` frames per second and `bitrate` bits per second, a keyframe every
    /// 2 s and on request.
    pub fn new(fps: f32, bitrate: u32) -> Result<Self, DesktopError> {
        let enc = Encoder::with_api_config(OpenH264API::from_source(), config(fps, bitrate))
            .map_err(h264_err)?;
        Ok(Self {
            enc,
            fps,
            bitrate,
            frames: 0,
            last_reconfig: 0,
            force_keyframe: false,
        })
    }

    /// The bitrate it encodes at.
    pub fn bitrate(&self) -> u32 {
        self.bitrate
    }

    /// Makes the next frame a keyframe.
    pub fn request_keyframe(&mut self) {
        self.force_keyframe = true;
    }

    /// Follows a target bitrate (with hysteresis: see [`BITRATE_HYSTERESIS`]).
    pub fn set_target_bitrate(&mut self, bps: u64) -> Result<(), DesktopError> {
        let bps = bps.clamp(50_000, 8_000_000) as u32;
        let change = (f64::from(bps) - f64::from(self.bitrate)).abs() / f64::from(self.bitrate);
        if change <= BITRATE_HYSTERESIS || self.frames - self.last_reconfig < BITRATE_MIN_FRAMES {
            return Ok(());
        }
        self.enc = Encoder::with_api_config(OpenH264API::from_source(), config(self.fps, bps))
            .map_err(h264_err)?;
        self.bitrate = bps;
        self.last_reconfig = self.frames;
        Ok(())
    }

    /// Encodes one picture presented at `pts_us`; `None` if the encoder skipped it.
    pub fn encode(
        &mut self,
        pic: &I420,
        pts_us: u64,
    ) -> Result<Option<EncodedFrame>, DesktopError> {
        if std::mem::take(&mut self.force_keyframe) {
            self.enc.force_intra_frame();
        }
        let yuv = YUVBuffer::from_vec(pic.data.clone(), pic.width, pic.height);
        let bs = self.enc.encode(&yuv).map_err(h264_err)?;
        self.frames += 1;
        let keyframe = matches!(bs.frame_type(), FrameType::IDR | FrameType::I);
        if matches!(bs.frame_type(), FrameType::Skip | FrameType::Invalid) {
            return Ok(None);
        }
        let data = bs.to_vec();
        if data.is_empty() {
            return Ok(None);
        }
        Ok(Some(EncodedFrame {
            kind: MediaKind::Video,
            pts_us,
            keyframe,
            data: Bytes::from(data),
            audio_level: None,
        }))
    }
}

/// Decodes H.264 Annex-B access units (to check what was received).
pub struct H264Decoder {
    dec: Decoder,
}

impl H264Decoder {
    /// A decoder.
    pub fn new() -> Result<Self, DesktopError> {
        Ok(Self {
            dec: Decoder::new().map_err(h264_err)?,
        })
    }

    /// Decodes one access unit; the picture size if it produced a picture.
    pub fn decode(&mut self, au: &[u8]) -> Result<Option<(usize, usize)>, DesktopError> {
        Ok(self
            .dec
            .decode(au)
            .map_err(h264_err)?
            .map(|p| p.dimensions()))
    }
}
