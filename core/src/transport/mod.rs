//! WebRTC data connections, set up exactly as PeerJS does it (OFFER / ANSWER / trickled
//! CANDIDATE over the signaling layer), so native nodes and browser peers interoperate.
//!
//! - [`payload`]: OFFER / ANSWER / CANDIDATE payload shapes and bounds.
//! - [`codec`], [`binarypack`], [`chunking`]: the `raw`, `json` and `binary` serializations.
//! - [`connection`]: a data connection (send with back-pressure, bounded receive, close).
//! - [`driver`]: the task that negotiates connections; [`config`]: ICE and limits;
//!   [`admission`]: caps and deadlines of pending incoming connections.
//! - [`media`]: PeerJS media connections (tracks in and out, feedback, the accept/refuse hook);
//!   [`media_engine`]: their codecs and interceptors.

pub mod admission;
pub mod binarypack;
pub mod chunking;
#[cfg(test)]
mod chunking_props;
pub mod codec;
pub mod config;
pub mod connection;
pub mod driver;
mod entry;
pub mod media;
pub mod media_engine;
mod options;
pub mod payload;
pub mod peer;

pub use codec::Payload;
pub use config::{IceServer, TransportConfig};
pub use connection::{
    ConnectionInfo, DataConnection, DataSender, TransportError, dtls_fingerprint,
};
pub use driver::{ConnectOptions, Transport};
pub use media::{
    Feedback, IncomingMedia, LocalTrack, MediaCertificate, MediaConnection, MediaInfo, MediaKind,
    MediaOptions, MediaState, RemoteTrack, TrackSpec,
};

#[cfg(test)]
mod guard_tests;
