//! PeerJS-protocol signaling: the wire [`protocol`], the sans-IO registration state machine
//! ([`client`], set up by a [`config`]) with its [`backoff`] and node-wide [`limiter`], the tokio [`driver`] that binds it
//! to WebSockets, and the embedded PeerJS-compatible [`server`].

pub mod backoff;
pub mod client;
pub mod config;
pub mod driver;
pub mod limiter;
pub mod protocol;
pub mod server;
