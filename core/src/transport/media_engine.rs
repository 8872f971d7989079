//! The codecs and interceptors of a media connection, registered on purpose (decision 0012):
//! Opus, H.264 constrained baseline in packetization mode 1, VP8 (optional, browsers offer it
//! first), RTX for the video codecs; NACK generator/responder, RTCP sender/receiver reports,
//! and send-side congestion control (TWCC feedback + GCC + pacer) whose estimate the
//! application reads through [`BitrateEstimate`]; and [`SenderFeedback`], which lets keyframe
//! requests (PLI, FIR) and REMB through to the application (webrtc-rs ends inbound RTCP at the
//! chain's terminus otherwise).

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use rtc::interceptor::{
    Attribute, AttributedPacket, BandwidthEstimator, EstimatorStats, Gcc, Interceptor, Packet,
    PacketReport, Slot, StreamInfo, TaggedPacket,
};
use rtc::peer_connection::configuration::interceptor_registry::{
    CongestionFeedback, configure_congestion_control, configure_nack, configure_rtcp_reports,
};
use rtc::peer_connection::configuration::media_engine::{
    MIME_TYPE_H264, MIME_TYPE_OPUS, MIME_TYPE_VP8, MediaEngine,
};
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::payload_feedbacks::receiver_estimated_maximum_bitrate::ReceiverEstimatedMaximumBitrate;
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RTCRtpHeaderExtensionCapability, RtpCodecKind,
};
use webrtc::peer_connection::Registry;

/// The RFC 6464 client-to-mixer audio level header extension: every audio packet we send says
/// how loud it is, so a group call's router can tell who speaks without decoding.
pub const AUDIO_LEVEL_URI: &str = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";

/// Coordination of video orientation (CVO, 3GPP TS 26.114): every video packet we send says
/// how far the receiver must turn the picture clockwise. A browser turns what it shows by it
/// (our own peers read the call's media state instead); negotiating it also makes a browser
/// send its camera unturned with the rotation in the packets, which the forwarder reads for a
/// browser guest.
pub const VIDEO_ORIENTATION_URI: &str = "urn:3gpp:video-orientation";

/// The header extensions a forwarded packet keeps, under the IDs they carry inside a group
/// call's forwarder: a publisher's packets are moved to these IDs on the way in, and each
/// subscriber's track moves them to its own connection's IDs on the way out
/// ([`rewrite_extensions`]). Everything else (transport-wide CC, send times) belongs to one
/// connection and is dropped.
pub const FORWARDED_EXTENSIONS: [(u8, &str); 2] = [
    (FORWARDED_AUDIO_LEVEL, AUDIO_LEVEL_URI),
    (FORWARDED_ORIENTATION, VIDEO_ORIENTATION_URI),
];
/// The audio level's ID in a forwarded packet (any of 1–14 would do; these are not the ones our
/// own connections negotiate, so that a test sees a packet not moved on the way in or out).
pub const FORWARDED_AUDIO_LEVEL: u8 = 14;
/// The video orientation's ID in a forwarded packet.
pub const FORWARDED_ORIENTATION: u8 = 13;

/// Keeps the header extensions whose ID `ids` maps (pairs of old ID, new ID) under the new ID and
/// drops the others, in place (no allocation: every forwarded packet goes through here). The
/// result is RFC 8285's one-byte form, so only IDs 1–14 with payloads of 1–16 bytes are kept;
/// anything else is dropped rather than sent malformed.
pub fn rewrite_extensions(header: &mut rtc::rtp::header::Header, ids: &[(u8, u8)]) {
    if !header.extension {
        return;
    }
    let map = |id: u8| ids.iter().find(|(old, _)| *old == id).map(|(_, new)| *new);
    header.extensions.retain_mut(|e| match map(e.id) {
        Some(id) if (1..=14).contains(&id) && (1..=16).contains(&e.payload.len()) => {
            e.id = id;
            true
        }
        _ => false,
    });
    header.extension = !header.extensions.is_empty();
    header.extension_profile = if header.extension {
        rtc::rtp::header::EXTENSION_PROFILE_ONE_BYTE
    } else {
        0
    };
    // Marshalling pads the block to whole 32-bit words itself.
    header.extensions_padding = 0;
}

/// The ID an SDP gives the header extension `uri` (`a=extmap:<id>[/<direction>] <uri>`); the
/// first one, since ours and browsers' use one ID per extension across media sections.
pub fn extmap_id(sdp: &str, uri: &str) -> Option<u8> {
    sdp.lines().find_map(|line| {
        let mut parts = line
            .trim_end()
            .strip_prefix("a=extmap:")?
            .split_whitespace();
        let id = parts.next()?;
        let id = id.split_once('/').map_or(id, |(id, _)| id);
        (parts.next()? == uri)
            .then(|| id.parse::<u8>().ok())
            .flatten()
            .filter(|id| (1..=14).contains(id))
    })
}

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

/// Where [`SenderFeedback`] sits: closest to the application, after every interceptor that
/// acts on inbound RTCP itself (reports at 10–11k, interval PLI 12k, jitter buffer 13k).
pub const SENDER_FEEDBACK_SLOT: usize = 14_000;

/// Lets the RTCP a sender's encoder must hear reach the application: PLI, FIR and REMB.
///
/// webrtc-rs's chain ends inbound RTCP at its terminus unless a packet carries
/// [`Attribute::DeliverToApplication`]. For each inbound compound this emits one copy per
/// destination SSRC holding only those feedback packets, marked for delivery, because the
/// connection routes a compound to the track of its first packet's SSRC (a receiver report
/// first, or feedback for two tracks in one compound, would otherwise go to the wrong track).
/// The original compound goes on unchanged (the terminus drops it, keeping its attributes).
#[derive(Default)]
pub struct SenderFeedback {
    read: VecDeque<TaggedPacket>,
    write: VecDeque<TaggedPacket>,
}

/// Whether `p` is feedback the sender acts on.
fn is_sender_feedback(p: &dyn rtc::rtcp::Packet) -> bool {
    let any = p.as_any();
    any.downcast_ref::<PictureLossIndication>().is_some()
        || any.downcast_ref::<FullIntraRequest>().is_some()
        || any
            .downcast_ref::<ReceiverEstimatedMaximumBitrate>()
            .is_some()
}

impl rtc::sansio::Protocol<TaggedPacket, TaggedPacket, ()> for SenderFeedback {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = rtc::shared::error::Error;
    type Time = Instant;

    fn handle_read(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        if let Packet::Rtcp(packets) = &msg.message.packet {
            // Grouped by destination SSRC, in order of first appearance (a compound holds few).
            let mut groups: Vec<(u32, Vec<Box<dyn rtc::rtcp::Packet>>)> = vec![];
            for p in packets.iter().filter(|p| is_sender_feedback(p.as_ref())) {
                for ssrc in p.destination_ssrc() {
                    match groups.iter_mut().find(|(s, _)| *s == ssrc) {
                        Some((_, g)) => g.push(p.clone()),
                        None => groups.push((ssrc, vec![p.clone()])),
                    }
                }
            }
            for (_, g) in groups {
                self.read.push_back(TaggedPacket {
                    now: msg.now,
                    transport: msg.transport,
                    message: AttributedPacket::new(Packet::Rtcp(g))
                        .with(Attribute::DeliverToApplication),
                });
            }
        }
        self.read.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<Self::Rout> {
        self.read.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        self.write.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<Self::Wout> {
        self.write.pop_front()
    }
}

impl Interceptor for SenderFeedback {
    fn bind_local_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _info: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
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
    media_stack_with(true)
}

/// The stack, with VP8 among the video codecs or (`vp8: false`) H.264 alone: a forwarder's
/// answer, whose slots carry H.264, so that a browser preferring VP8 sends H.264.
pub fn media_stack_with(vp8: bool) -> Result<MediaStack, rtc::shared::error::Error> {
    let mut engine = MediaEngine::default();
    engine.register_codec(
        RTCRtpCodecParameters {
            rtp_codec: opus_codec(),
            payload_type: PT_OPUS,
        },
        RtpCodecKind::Audio,
    )?;
    let vp8 = vp8.then(|| {
        (
            PT_VP8,
            RTCRtpCodec {
                mime_type: MIME_TYPE_VP8.to_owned(),
                clock_rate: 90_000,
                channels: 0,
                sdp_fmtp_line: String::new(),
                rtcp_feedback: video_feedback(),
            },
        )
    });
    for (pt, codec) in std::iter::once((PT_H264, h264_codec())).chain(vp8) {
        engine.register_codec(
            RTCRtpCodecParameters {
                rtp_codec: codec,
                payload_type: pt,
            },
            RtpCodecKind::Video,
        )?;
        engine.register_codec(rtx(pt + 1, pt), RtpCodecKind::Video)?;
    }
    engine.register_header_extension(
        RTCRtpHeaderExtensionCapability {
            uri: AUDIO_LEVEL_URI.to_owned(),
        },
        RtpCodecKind::Audio,
        None,
    )?;
    engine.register_header_extension(
        RTCRtpHeaderExtensionCapability {
            uri: VIDEO_ORIENTATION_URI.to_owned(),
        },
        RtpCodecKind::Video,
        None,
    )?;
    let estimate = Arc::new(BitrateEstimate::default());
    let gcc = PublishedGcc {
        gcc: Gcc::new(GCC_START_BPS, GCC_MIN_BPS, GCC_MAX_BPS),
        out: estimate.clone(),
    };
    let registry = configure_nack(Registry::new(), &mut engine);
    let registry = configure_rtcp_reports(registry);
    let registry =
        configure_congestion_control(registry, gcc, CongestionFeedback::Twcc, &mut engine)?;
    let registry = registry.with(
        Slot::Custom(SENDER_FEEDBACK_SLOT),
        SenderFeedback::default(),
    );
    Ok(MediaStack {
        engine,
        registry,
        estimate,
        certificate: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::interceptor::Registry as Chain;
    use rtc::rtcp::receiver_report::ReceiverReport;
    use rtc::sansio::Protocol;

    #[test]
    fn forwarded_extensions_move_to_new_ids_and_the_rest_go() {
        use rtc::rtp::header::Header;
        use rtc::shared::marshal::{Marshal, Unmarshal};
        let mut header = Header {
            version: 2,
            sequence_number: 7,
            ssrc: 9,
            ..Default::default()
        };
        header
            .set_extension(3, bytes::Bytes::from_static(&[0x81]))
            .unwrap(); // level
        header
            .set_extension(5, bytes::Bytes::from_static(&[1, 2]))
            .unwrap(); // transport-cc
        header
            .set_extension(13, bytes::Bytes::from_static(&[0x01]))
            .unwrap(); // CVO 90°
        rewrite_extensions(
            &mut header,
            &[(3, FORWARDED_AUDIO_LEVEL), (13, FORWARDED_ORIENTATION)],
        );
        let wire = header.marshal().unwrap();
        let back = Header::unmarshal(&mut &wire[..]).unwrap();
        assert_eq!(back.get_extension_ids(), vec![14, 13]);
        assert_eq!(back.get_extension(14).unwrap()[..], [0x81]);
        assert_eq!(back.get_extension(13).unwrap()[..], [0x01]);
        assert_eq!((back.sequence_number, back.ssrc), (7, 9));
        // None kept: no extension block at all.
        let mut header = back;
        rewrite_extensions(&mut header, &[]);
        assert!(!header.extension);
        let wire = header.marshal().unwrap();
        assert_eq!(wire.len(), 12);
    }

    #[test]
    fn extmap_ids_are_read_from_an_sdp() {
        let sdp = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n\
                   a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\n\
                   a=extmap:1/sendrecv urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n";
        assert_eq!(extmap_id(sdp, AUDIO_LEVEL_URI), Some(1));
        assert_eq!(extmap_id("a=extmap:2 urn:x\r\n", AUDIO_LEVEL_URI), None);
        // IDs outside the one-byte range, or not numbers, are not used.
        for bad in ["a=extmap:15 ", "a=extmap:0 ", "a=extmap:x "] {
            assert_eq!(
                extmap_id(&format!("{bad}{AUDIO_LEVEL_URI}"), AUDIO_LEVEL_URI),
                None
            );
        }
    }

    fn rtcp(packets: Vec<Box<dyn rtc::rtcp::Packet>>) -> TaggedPacket {
        TaggedPacket {
            now: Instant::now(),
            transport: Default::default(),
            message: AttributedPacket::new(Packet::Rtcp(packets)),
        }
    }

    fn pli(media_ssrc: u32) -> Box<dyn rtc::rtcp::Packet> {
        Box::new(PictureLossIndication {
            sender_ssrc: 7,
            media_ssrc,
        })
    }

    fn delivered(chain: &mut impl Interceptor) -> Vec<Vec<u32>> {
        let mut out = vec![];
        while let Some(p) = chain.poll_read() {
            let marked = p.message.has(&Attribute::DeliverToApplication);
            let Packet::Rtcp(ps) = p.message.packet else {
                panic!("not RTCP")
            };
            if ps.is_empty() {
                continue;
            }
            assert!(marked);
            assert!(ps.iter().all(|p| is_sender_feedback(p.as_ref())), "{ps:?}");
            out.push(ps.iter().flat_map(|p| p.destination_ssrc()).collect());
        }
        out
    }

    #[test]
    fn keyframe_requests_reach_the_application_split_per_track() {
        let mut chain = Chain::new()
            .with(
                Slot::Custom(SENDER_FEEDBACK_SLOT),
                SenderFeedback::default(),
            )
            .build();
        // A receiver report first (it would route the compound to its SSRC), then PLIs for
        // two tracks and a FIR.
        let fir = FullIntraRequest {
            sender_ssrc: 7,
            media_ssrc: 0,
            fir: vec![rtc::rtcp::payload_feedbacks::full_intra_request::FirEntry {
                ssrc: 22,
                sequence_number: 1,
            }],
        };
        chain
            .handle_read(rtcp(vec![
                Box::new(ReceiverReport::default()),
                pli(11),
                pli(22),
                Box::new(fir),
            ]))
            .unwrap();
        assert_eq!(delivered(&mut chain), vec![vec![11], vec![22, 22]]);
        // Reports alone stay inside the chain.
        chain
            .handle_read(rtcp(vec![Box::new(ReceiverReport::default())]))
            .unwrap();
        assert!(delivered(&mut chain).is_empty());
    }

    #[test]
    fn the_media_stack_lets_keyframe_requests_through() {
        let stack = media_stack().unwrap();
        assert!(
            stack
                .registry
                .slots()
                .iter()
                .any(|(s, name)| *s == Slot::Custom(SENDER_FEEDBACK_SLOT)
                    && name == "SenderFeedback")
        );
        let mut chain = stack.registry.build();
        chain.handle_read(rtcp(vec![pli(5)])).unwrap();
        assert_eq!(delivered(&mut chain), vec![vec![5]]);
    }
}
