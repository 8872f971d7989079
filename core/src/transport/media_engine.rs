//! The codecs and interceptors of a media connection, registered on purpose (decision 0012):
//! Opus, H.264 constrained baseline in packetization mode 1, VP8 (optional, browsers offer it
//! first), RTX for the video codecs; NACK generator/responder, RTCP sender/receiver reports,
//! and send-side congestion control (TWCC feedback + GCC + pacer) whose estimate the
//! application reads through [`BitrateEstimate`].

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use rtc::interceptor::{BandwidthEstimator, EstimatorStats, Gcc, PacketReport};
use rtc::peer_connection::configuration::interceptor_registry::{
    CongestionFeedback, configure_congestion_control, configure_nack, configure_rtcp_reports,
};
use rtc::peer_connection::configuration::media_engine::{
    MIME_TYPE_H264, MIME_TYPE_OPUS, MIME_TYPE_VP8, MediaEngine,
};
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RtpCodecKind,
};
use webrtc::peer_connection::Registry;

/// Payload type of Opus (browsers use 111 too).
pub const PT_OPUS: u8 = 111;
/// Payload type of H.264 constrained baseline, packetization mode 1.
pub const PT_H264: u8 = 102;
/// Payload type of VP8.
pub const PT_VP8: u8 = 96;
/// The H.264 format we send and accept: constrained baseline 3.1, packetization mode 1
/// (FU-A / STAP-A), which every browser and phone hardware encoder accepts.
pub const H264_FMTP: &str =
    "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f";
/// Opus at 48 kHz, stereo signalled as RFC 7587 requires, in-band FEC on.
pub const OPUS_FMTP: &str = "minptime=10;useinbandfec=1";
/// GCC's start, floor and ceiling (bits/s). It starts at 1 Mbit/s rather than GCC's default
/// 300 kbit/s so a call does not open blurred and paced; the pacer follows the estimate.
pub const GCC_START_BPS: f64 = 1_000_000.0;
/// Lowest estimate GCC may report.
pub const GCC_MIN_BPS: f64 = 100_000.0;
/// Highest estimate GCC may report.
pub const GCC_MAX_BPS: f64 = 8_000_000.0;

/// The audio codec of our local tracks.
pub fn opus_codec() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_OPUS.to_owned(),
        clock_rate: 48_000,
        channels: 2,
        sdp_fmtp_line: OPUS_FMTP.to_owned(),
        rtcp_feedback: vec![],
    }
}

/// The video codec of our local tracks.
pub fn h264_codec() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_H264.to_owned(),
        clock_rate: 90_000,
        channels: 0,
        sdp_fmtp_line: H264_FMTP.to_owned(),
        rtcp_feedback: video_feedback(),
    }
}

fn video_feedback() -> Vec<RTCPFeedback> {
    [("ccm", "fir"), ("nack", ""), ("nack", "pli")]
        .into_iter()
        .map(|(typ, parameter)| RTCPFeedback {
            typ: typ.into(),
            parameter: parameter.into(),
        })
        .collect()
}

fn rtx(pt: u8, apt: u8) -> RTCRtpCodecParameters {
    RTCRtpCodecParameters {
        rtp_codec: RTCRtpCodec {
            mime_type: "video/rtx".into(),
            clock_rate: 90_000,
            channels: 0,
            sdp_fmtp_line: format!("apt={apt}"),
            rtcp_feedback: vec![],
        },
        payload_type: pt,
    }
}

/// The latest congestion-control estimate of one connection, in bits per second (0 until
/// the first feedback arrives).
#[derive(Debug, Default)]
pub struct BitrateEstimate(AtomicU64);

impl BitrateEstimate {
    /// The target bitrate the sender should encode at, if an estimate exists yet.
    pub fn target_bps(&self) -> Option<u64> {
        match self.0.load(Ordering::Relaxed) {
            0 => None,
            v => Some(v),
        }
    }
}

/// GCC that also publishes its target: the estimator lives inside the interceptor chain, where
/// the application cannot reach it, so it copies every new target to a shared cell.
struct PublishedGcc {
    gcc: Gcc,
    out: Arc<BitrateEstimate>,
}

impl PublishedGcc {
    fn publish(&self) {
        let bps = self.gcc.target_bitrate().max(0.0) as u64;
        self.out.0.store(bps, Ordering::Relaxed);
    }
}

impl BandwidthEstimator for PublishedGcc {
    fn on_reports(&mut self, now: Instant, reports: &[PacketReport]) {
        self.gcc.on_reports(now, reports);
        self.publish();
    }

    fn target_bitrate(&self) -> f64 {
        self.gcc.target_bitrate()
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.gcc.handle_timeout(now);
        self.publish();
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.gcc.poll_timeout()
    }

    fn stats(&self) -> EstimatorStats {
        self.gcc.stats()
    }
}

/// A media engine and interceptor chain for one media connection, and the cell its
/// congestion-control estimate is published to.
pub struct MediaStack {
    /// Codecs, feedback types and header extensions.
    pub engine: MediaEngine,
    /// NACK, reports, TWCC + GCC + pacer.
    pub registry: Registry,
    /// GCC's current target.
    pub estimate: Arc<BitrateEstimate>,
    /// The DTLS certificate to use (a fresh one is generated when `None`).
    pub certificate: Option<rtc::peer_connection::certificate::RTCCertificate>,
}

/// Builds the stack every media connection uses.
pub fn media_stack() -> Result<MediaStack, rtc::shared::error::Error> {
    let mut engine = MediaEngine::default();
    engine.register_codec(
        RTCRtpCodecParameters {
            rtp_codec: opus_codec(),
            payload_type: PT_OPUS,
        },
        RtpCodecKind::Audio,
    )?;
    for (pt, codec) in [
        (PT_H264, h264_codec()),
        (
            PT_VP8,
            RTCRtpCodec {
                mime_type: MIME_TYPE_VP8.to_owned(),
                clock_rate: 90_000,
                channels: 0,
                sdp_fmtp_line: String::new(),
                rtcp_feedback: video_feedback(),
            },
        ),
    ] {
        engine.register_codec(
            RTCRtpCodecParameters {
                rtp_codec: codec,
                payload_type: pt,
            },
            RtpCodecKind::Video,
        )?;
        engine.register_codec(rtx(pt + 1, pt), RtpCodecKind::Video)?;
    }
    let estimate = Arc::new(BitrateEstimate::default());
    let gcc = PublishedGcc {
        gcc: Gcc::new(GCC_START_BPS, GCC_MIN_BPS, GCC_MAX_BPS),
        out: estimate.clone(),
    };
    let registry = configure_nack(Registry::new(), &mut engine);
    let registry = configure_rtcp_reports(registry);
    let registry =
        configure_congestion_control(registry, gcc, CongestionFeedback::Twcc, &mut engine)?;
    Ok(MediaStack {
        engine,
        registry,
        estimate,
        certificate: None,
    })
}
