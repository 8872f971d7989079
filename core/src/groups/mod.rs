//! Groups (sans-IO): a signed, hash-chained membership log ([`log`]), invite links
//! ([`invite`]), signed messages with a deterministic display order ([`message`]), version
//! vectors and history ([`history`]), bounded wire frames ([`wire`]) and the engine that syncs
//! a member with the group's router ([`engine`]). Router election runs on the discovery
//! namespace engine under [`namespace_prefix`]. Why each construction:
//! `docs/decisions/0011-groups.md`.

use std::fmt;
use std::str::FromStr;

use crate::crypto::random_bytes;

pub mod engine;
pub mod files;
pub mod history;
pub mod invite;
pub mod log;
pub mod message;
#[cfg(test)]
mod sim;
#[cfg(test)]
mod sim_tests;
pub mod store;
pub mod wire;
#[cfg(test)]
mod wire_props;

pub use engine::{Engine, EngineConfig, GroupAction, GroupEvent, GroupInput, Refusal};
pub use history::{History, MemHistory, VersionVector};
pub use invite::{InviteError, InviteLink};
pub use log::{GroupState, Hash, Log, LogError, LogOp, SignedEntry};
pub use message::{Body, GroupMessage, MsgError, SignedMessage};
pub use wire::GroupFrame;

/// A group's identifier: 16 random bytes, shown as 32 lowercase hex characters.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct GroupId(pub [u8; 16]);

impl GroupId {
    /// A fresh random ID.
    pub fn random() -> Self {
        Self(random_bytes())
    }

    /// 32 lowercase hex characters.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for GroupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// A string was not a group ID (32 hex characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a group ID must be exactly 32 hex characters")]
pub struct ParseGroupIdError;

impl FromStr for GroupId {
    type Err = ParseGroupIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut b = [0u8; 16];
        hex::decode_to_slice(s, &mut b).map_err(|_| ParseGroupIdError)?;
        Ok(Self(b))
    }
}

/// The discovery namespace prefix whose router slots elect the group's router:
/// `peerns2-group-<gid>`.
pub fn namespace_prefix(group: &GroupId) -> String {
    format!("peerns2-group-{group}")
}

/// The discovery namespace prefix of an open room (the meeting room nearby):
/// `peerns2-room-<gid>`, apart from groups so a group and a room never share an election.
pub fn room_namespace_prefix(group: &GroupId) -> String {
    format!("peerns2-room-{group}")
}
