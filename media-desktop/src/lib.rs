//! Desktop media for PeerNS: encoders/decoders from well-kept libraries (OpenH264 through the
//! `openh264` crate, libopus through `opus`) and raw sources (a moving test pattern, a tone, a
//! `.y4m` file, a V4L2 camera through ffmpeg, a microphone's level). Produces and consumes the
//! core's [`EncodedFrame`]s. Phones use their platform codecs instead; this crate is never
//! linked into the FFI library.

pub mod audio;
pub mod camera;
pub mod mic;
pub mod sources;
pub mod video;

pub use peerns_core::media::EncodedFrame;

/// Errors of the desktop codecs and sources.
#[derive(Debug, thiserror::Error)]
pub enum DesktopError {
    /// OpenH264 failed.
    #[error("openh264: {0}")]
    H264(String),
    /// libopus failed.
    #[error("opus: {0}")]
    Opus(#[from] opus::Error),
    /// A source file is unreadable or malformed.
    #[error("source: {0}")]
    Source(String),
    /// Reading a file failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}
