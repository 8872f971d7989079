//! The group-call forwarder (an SFU), sans-IO: RTP from publishers in, rewritten RTP per
//! subscriber out, with time as an input. A thin driver connects it to webrtc-rs tracks.
//!
//! - Every subscriber has a fixed set of send *slots* (audio, video, screen), negotiated once,
//!   because PeerJS media connections cannot renegotiate. The forwarder decides which source
//!   each slot carries and reports it as [`SfuAction::SlotMap`] for the group's data channel.
//! - Video slots go to the last N active speakers ([`speakers`], from the RFC 6464 audio
//!   level), within the subscriber's bitrate budget; audio slots to the most recent speakers.
//! - A slot switches to a new video source only at a keyframe of that source (the old one runs
//!   until then); keyframe requests to a publisher are coalesced.
//! - Each slot's sequence numbers and timestamps continue across switches ([`slot`]).
//! - NACKs are answered from a short per-source cache ([`cache`]).
//!
//! Decision 0015 records the design.

mod cache;
mod forwarder;
mod keyframe;
pub mod rtp;
#[cfg(test)]
mod sim_tests;
mod slot;
pub mod speakers;

pub use forwarder::{Forwarder, SfuConfig, SfuStats};
pub use keyframe::starts_keyframe;

use crate::media::depacketize::Codec;

/// A participant, as the driver numbers them (the driver maps them to group members).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ParticipantId(pub u64);

/// The kinds of track a participant publishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TrackKind {
    /// Microphone.
    Audio,
    /// Camera.
    Video,
    /// Screen share.
    Screen,
}

/// One published track.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SourceKey {
    /// Who publishes it.
    pub participant: ParticipantId,
    /// Which of its tracks.
    pub kind: TrackKind,
}

/// What a published track carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrackInfo {
    /// Its codec.
    pub codec: Codec,
    /// Its RTP clock rate (90,000 for video, 48,000 for Opus).
    pub clock_rate: u32,
    /// Header extension ID of the RFC 6464 audio level on its packets as the forwarder gets
    /// them (the hub moves it to `FORWARDED_AUDIO_LEVEL`; `None`: the publisher did not
    /// negotiate it, and speakers then rank in join order).
    pub audio_level_ext: Option<u8>,
}

/// A subscriber's send slot as negotiated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotOut {
    /// The SSRC the subscriber knows the slot by.
    pub ssrc: u32,
    /// The payload type the subscriber negotiated for the slot's codec.
    pub payload_type: u8,
}

/// A subscriber's send slots per kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlotLayout {
    /// Audio slots.
    pub audio: Vec<SlotOut>,
    /// Camera slots.
    pub video: Vec<SlotOut>,
    /// Screen slots.
    pub screen: Vec<SlotOut>,
}

/// A slot of a subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SlotId {
    /// The slot's kind.
    pub kind: TrackKind,
    /// Its index among the subscriber's slots of that kind.
    pub index: u8,
}

/// What the forwarder asks the driver to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SfuAction {
    /// Send an RTP packet on a subscriber's slot.
    Send {
        /// The subscriber.
        to: ParticipantId,
        /// The slot.
        slot: SlotId,
        /// The rewritten packet.
        packet: Vec<u8>,
    },
    /// Ask a publisher for a keyframe (RTCP PLI on its track).
    RequestKeyframe(SourceKey),
    /// Tell a subscriber which participant each of its slots now shows.
    SlotMap {
        /// The subscriber.
        to: ParticipantId,
        /// Every slot with its source (`None`: quiet).
        slots: Vec<(SlotId, Option<ParticipantId>)>,
    },
    /// Those speaking now changed.
    Speakers(Vec<ParticipantId>),
}

/// Why an input was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SfuError {
    /// Not an RTP packet we accept.
    #[error("malformed RTP: {0}")]
    Malformed(&'static str),
    /// From someone who is not a participant, or a track not published.
    #[error("no such participant or track")]
    Unknown,
}
