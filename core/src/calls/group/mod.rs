//! Group calls: the control frames between members and the group's router ([`wire`]) and the
//! sans-IO machine that drives them ([`machine`]). Media flows from every participant to the
//! elected router, whose forwarder ([`crate::media::sfu`]) sends each participant the others
//! through a fixed set of slots (PeerJS cannot renegotiate); the node (`node/group_call.rs`)
//! connects the machine to links, media connections and the forwarder
//! (`docs/decisions/0016-group-calls.md`).

pub mod machine;
pub mod wire;

#[cfg(test)]
mod tests;

pub use machine::{
    Action, GroupCall, GroupCallConfig, GroupCallEvent, Input, MAX_GUESTS, Phase, Uplinking,
    guest_fingerprint,
};
pub use wire::{GroupCallFrame, Layout, MAX_SLOTS, RosterEntry, THUMBNAIL_SLOTS};
