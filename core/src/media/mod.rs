//! Media above the transport: encoded frames in and out of media connections.
//!
//! Phones and desktop codecs hand the core *encoded* frames; nothing here encodes or decodes.
//!
//! - [`frame`]: [`EncodedFrame`] (kind, pts, keyframe flag, bytes).
//! - [`h264`]: Annex-B helpers (NAL split, IDR detection, SPS/PPS before every IDR, AVCC,
//!   picture size from the SPS).
//! - [`depacketize`] and [`reassembly`]: received RTP back into complete frames, sans-IO, with
//!   keyframe requests after loss.
//! - [`level`]: the RFC 6464 audio level of a block of PCM (platforms send it with their
//!   Opus frames; the group-call router ranks speakers by it).
//! - [`mkv`]: a Matroska recorder (H.264/VP8 video and Opus audio in one file).
//! - [`record`]: records the remote tracks of a connection into one Matroska file.
//! - [`sfu`]: the group-call forwarder (Last-N, slot rewriting, keyframes, NACK), sans-IO.
//! - [`sfu_hub`]: the forwarder's driver on webrtc-rs media connections.
//! - [`track`]: [`MediaSource`](track::MediaSource) (push frames, get encoder control) and
//!   [`MediaSink`](track::MediaSink) (a callback per received frame) over transport tracks.

pub mod depacketize;
pub mod frame;
pub mod h264;
pub mod level;
pub mod mkv;
pub mod reassembly;
pub mod record;
pub mod sfu;
pub mod sfu_hub;
pub mod track;

pub use frame::EncodedFrame;
