//! WebRTC data connections, set up exactly as PeerJS does it (OFFER / ANSWER / trickled
//! CANDIDATE over the signaling layer), so native nodes and browser peers interoperate.
//!
//! - [`payload`]: OFFER / ANSWER / CANDIDATE payload shapes and bounds.
//! - [`codec`], [`binarypack`], [`chunking`]: the `raw`, `json` and `binary` serializations.
//! - [`connection`]: a data connection (send with back-pressure, bounded receive, close).
//! - [`driver`]: the task that negotiates connections; [`config`]: ICE and limits;
//!   [`admission`]: caps and deadlines of pending incoming connections.

pub mod admission;
pub mod binarypack;
pub mod chunking;
#[cfg(test)]
mod chunking_props;
pub mod codec;
pub mod config;
pub mod connection;
pub mod driver;
pub mod payload;
pub mod peer;

pub use codec::Payload;
pub use config::{IceServer, TransportConfig};
pub use connection::{
    ConnectionInfo, DataConnection, DataSender, TransportError, dtls_fingerprint,
};
pub use driver::{ConnectOptions, Transport};

#[cfg(test)]
mod guard_tests;
