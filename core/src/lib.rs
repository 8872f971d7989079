//! PeerNS native core.
//!
//! Layers, lowest first; a layer only uses the ones above it in this list:
//! [`crypto`] → [`identity`] → [`store`] → [`signaling`]. Transport, discovery, contacts/chat,
//! groups/calls, RPC and the node facade come later, in that order (see `docs/ARCHITECTURE.md`).

pub mod crypto;
pub mod identity;
pub mod signaling;
pub mod store;
pub mod transport;

/// Version of the core library.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
