//! The engine's interface: inputs from the driver, actions for it, events for the app.

use std::time::Duration;

use crate::groups::log::{LogError, LogOp, SignedEntry};
use crate::groups::message::{MsgError, SignedMessage};
use crate::groups::wire::GroupFrame;
use crate::identity::Fingerprint;

/// Limits and timings of a group engine.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Most messages asked for (and sent) in one backfill page.
    pub page_limit: u16,
    /// Most out-of-order messages held while the gap before them is filled.
    pub max_pending: usize,
    /// Most own messages waiting for the router's acknowledgement; sending fails beyond it.
    pub max_outbox: u64,
    /// Most unadmitted links a router keeps at once (newcomers proving membership).
    pub max_probation: usize,
    /// Most own log entries waiting to be appended by the router.
    pub max_proposals: usize,
    /// A member re-announces its state (`Hello` + `Want`) this often, so a lost frame or a
    /// missed message is found within it. 2.4 s by default: three namespace heartbeats, so on
    /// the wall-clock grid ([`Engine::with_wall_clock`]) it leaves with one of them.
    ///
    /// [`Engine::with_wall_clock`]: super::Engine::with_wall_clock
    pub sync_interval: Duration,
    /// The same while the app is in the background (see [`Engine::set_active`]); 10 s, two
    /// background heartbeats.
    ///
    /// [`Engine::set_active`]: super::Engine::set_active
    pub background_sync_interval: Duration,
    /// Unacknowledged own messages are sent again after this without an acknowledgement.
    pub resend_after: Duration,
    /// Messages (and proposals) per second one member may publish at the router; burst twice
    /// that. A member paces its own sending to this rate (burst once it).
    pub member_rate: u32,
    /// Most own messages sent to the router and not yet acknowledged; the rest of the outbox
    /// waits for acknowledgements (flow control: a burst does not overrun the router's queue).
    pub send_window: u64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            page_limit: 256,
            max_pending: 4096,
            max_outbox: 10_000,
            max_probation: 16,
            max_proposals: 64,
            sync_interval: Duration::from_millis(2_400),
            background_sync_interval: Duration::from_secs(10),
            resend_after: Duration::from_secs(1),
            member_rate: 500,
            send_window: 256,
        }
    }
}

/// What the driver reports. Every peer is named by the fingerprint its Noise session proved.
#[derive(Debug, Clone, PartialEq)]
pub enum GroupInput {
    /// Member side: a link to the elected router is up.
    RouterUp {
        /// The router's proven identity.
        router: Fingerprint,
    },
    /// Member side: the link to the router closed.
    RouterDown,
    /// We won the router election.
    BecameRouter,
    /// We stopped routing (lost the slot, or stepped down).
    StoppedRouting,
    /// Router side: a peer's link is up.
    PeerUp {
        /// Its proven identity.
        peer: Fingerprint,
    },
    /// Router side: a peer's link closed.
    PeerDown {
        /// Its identity.
        peer: Fingerprint,
    },
    /// A group frame arrived.
    Frame {
        /// The sender's proven identity.
        peer: Fingerprint,
        /// The frame.
        frame: Box<GroupFrame>,
    },
    /// Messages that arrived together (one `MsgBatch`): each is taken as a `Msg` frame, with
    /// the signatures checked in one batch.
    Batch {
        /// The sender's proven identity.
        peer: Fingerprint,
        /// The messages, in the order sent.
        msgs: Vec<SignedMessage>,
    },
}

/// Why something from a peer was refused. Nothing of it was stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The peer is not a current member.
    #[error("not a member")]
    NotMember,
    /// A message did not verify.
    #[error("message refused: {0}")]
    Message(#[from] MsgError),
    /// A log entry did not verify.
    #[error("log entry refused: {0}")]
    Log(#[from] LogError),
    /// A message we already hold (dedup by author and seq).
    #[error("duplicate message")]
    Duplicate,
    /// A member published a message that is not its own.
    #[error("message of another author published directly")]
    NotAuthor,
    /// The peer sent faster than allowed.
    #[error("throttled")]
    Throttled,
    /// A frame that has no business on this link now.
    #[error("unexpected frame: {0}")]
    Unexpected(&'static str),
}

/// What the engine asks the driver to do.
#[derive(Debug, Clone, PartialEq)]
pub enum GroupAction {
    /// Send a frame on the peer's link.
    Send {
        /// To whom.
        peer: Fingerprint,
        /// The frame.
        frame: GroupFrame,
    },
    /// Close the peer's link (it is not or no longer welcome, or it misbehaved).
    Drop {
        /// Whom.
        peer: Fingerprint,
        /// Why, for logs.
        reason: String,
    },
    /// Tell the application.
    Event(GroupEvent),
}

/// What the application hears.
#[derive(Debug, Clone, PartialEq)]
pub enum GroupEvent {
    /// A message was stored (live or backfilled); each exactly once.
    Message(SignedMessage),
    /// Own messages up to `seq` are stored at the router (the outbox shrank).
    Acked {
        /// Highest acknowledged seq.
        seq: u64,
    },
    /// The log changed: entries from index `from` on are new (0: the log was replaced).
    LogUpdated {
        /// First new index.
        from: usize,
    },
    /// The author's messages after `cutoff` were deleted (it was removed or left).
    Purged {
        /// The author.
        author: Fingerprint,
        /// Its last message kept.
        cutoff: u64,
    },
    /// One of our log proposals can no longer apply and was dropped.
    ProposalDropped(LogOp),
    /// Our proposals waiting to be appended changed: all of them now, to store (a restart
    /// hands them back with [`super::Engine::restore_proposals`]).
    Proposals(Vec<SignedEntry>),
    /// Something from `peer` was refused.
    Refused {
        /// The sender.
        peer: Fingerprint,
        /// Why.
        reason: Refusal,
    },
    /// The router we were given is not a member: we refuse it.
    RouterRefused {
        /// Its identity.
        router: Fingerprint,
    },
    /// We are no longer a member (removed, or our leave was appended).
    Departed,
    /// We became (`true`) or stopped being the router.
    Role(bool),
}

/// Counters for tests and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineStats {
    /// Messages stored.
    pub stored: u64,
    /// Messages that arrived again and were ignored.
    pub duplicates: u64,
    /// Frames or messages refused.
    pub refused: u64,
    /// Frames sent.
    pub frames_out: u64,
    /// Signatures found good in batch checks.
    pub batched: u64,
    /// Batch checks that did not hold (their messages were then checked one by one).
    pub batch_failures: u64,
}
