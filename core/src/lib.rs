//! PeerNS native core.
//!
//! Layers, lowest first; a layer only uses the ones above it in this list:
//! [`crypto`] → [`identity`] → [`store`] → [`signaling`] → [`transport`] → [`node`] (the facade
//! every shell uses). Discovery, contacts/chat, groups/calls and RPC sit between transport
//! and node, in that order (see `docs/ARCHITECTURE.md`).

pub mod calls;
pub mod chat;
pub mod contacts;
pub mod crypto;
pub mod discovery;
pub mod groups;
pub mod identity;
pub mod media;
pub mod node;
pub mod rpc;
pub mod session;
pub mod signaling;
pub mod store;
pub mod text;
pub mod transport;
pub mod wake_grid;

/// Version of the core library.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
