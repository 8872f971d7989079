//! 1:1 calls between contacts: the call control state machine ([`machine`]), the rule that binds
//! a media connection to the call the session announced ([`binding`]) and the call log in SQLite
//! ([`log`]). Sans-IO: the machine takes inputs and the time and returns actions; the node
//! (`node/calls.rs`) moves frames over links and media over the transport. Call control travels
//! only inside authenticated Noise sessions (`chat::call_wire`), so only a contact we trust at
//! level 2 can ring us, and a call is bound to that contact's identity
//! (`docs/decisions/0013-calls.md`).

pub mod binding;
pub mod group;
pub mod log;
pub mod machine;

#[cfg(test)]
mod recovery_tests;
#[cfg(test)]
mod tests;

pub use crate::chat::call_wire::{CallFrame, CallId, DtlsFingerprint, Kinds, MediaState};
pub use machine::{Action, CallConfig, CallEvent, CallState, Calls, Input, Refused};

/// Who started a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// We called.
    Outgoing,
    /// The peer called us.
    Incoming,
}

/// Why a call ended, as the call screen shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// We hung up a connected call.
    HungUp,
    /// The peer hung up a connected call.
    PeerHungUp,
    /// The callee declined (we, for an incoming call).
    Declined,
    /// The callee was in another call (we, for an incoming call).
    Busy,
    /// The caller gave up before an answer (we, for an outgoing call).
    Cancelled,
    /// Nobody answered within the ring timeout.
    NoAnswer,
    /// The peer's phone never rang (no link, or no answer to our ring).
    Unreachable,
    /// The link to the peer was lost.
    Lost,
    /// Both called each other at once and the peer's call was kept instead (glare).
    Replaced,
}

impl EndReason {
    /// The reason as printed in JSON (`"hangup"`, `"declined"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::HungUp => "hangup",
            EndReason::PeerHungUp => "peer_hangup",
            EndReason::Declined => "declined",
            EndReason::Busy => "busy",
            EndReason::Cancelled => "cancelled",
            EndReason::NoAnswer => "no_answer",
            EndReason::Unreachable => "unreachable",
            EndReason::Lost => "lost",
            EndReason::Replaced => "replaced",
        }
    }
}

/// How a call ended, as the call log keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It was connected (then ended by either side or a lost link).
    Completed,
    /// An incoming call nobody answered (the caller cancelled, or the ring timed out).
    Missed,
    /// Declined by the callee.
    Declined,
    /// The callee was in another call.
    Busy,
    /// We cancelled our call before an answer.
    Cancelled,
    /// Our call was not answered within the ring timeout.
    NoAnswer,
    /// Our call never rang at the peer.
    Failed,
}

impl Outcome {
    /// The outcome a call in `direction` that ended for `reason` has; `connected` if it was.
    pub fn of(direction: Direction, reason: EndReason, connected: bool) -> Outcome {
        if connected {
            return Outcome::Completed;
        }
        match (direction, reason) {
            (_, EndReason::Declined) => Outcome::Declined,
            (_, EndReason::Busy) => Outcome::Busy,
            (Direction::Incoming, _) => Outcome::Missed,
            (Direction::Outgoing, EndReason::Cancelled | EndReason::HungUp) => Outcome::Cancelled,
            (Direction::Outgoing, EndReason::NoAnswer) => Outcome::NoAnswer,
            (Direction::Outgoing, _) => Outcome::Failed,
        }
    }

    /// The name stored and printed (`"completed"`, `"missed"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Completed => "completed",
            Outcome::Missed => "missed",
            Outcome::Declined => "declined",
            Outcome::Busy => "busy",
            Outcome::Cancelled => "cancelled",
            Outcome::NoAnswer => "no_answer",
            Outcome::Failed => "failed",
        }
    }

    /// The outcome stored as `s`.
    pub fn parse(s: &str) -> Option<Outcome> {
        Some(match s {
            "completed" => Outcome::Completed,
            "missed" => Outcome::Missed,
            "declined" => Outcome::Declined,
            "busy" => Outcome::Busy,
            "cancelled" => Outcome::Cancelled,
            "no_answer" => Outcome::NoAnswer,
            "failed" => Outcome::Failed,
            _ => return None,
        })
    }
}
