//! What the signaling machine reports and takes besides time: identifiers, the state of the
//! persistent registration, the network path, events, outputs, errors and counters.

use super::*;

/// Identifies one registration inside a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RegId(pub u64);

/// Identifies one WebSocket attempt, so late events from a replaced socket are ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnId(pub u64);

/// The answer to "may I have this ID?" — discovery uses `Taken` as its election result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimResult {
    /// The server answered OPEN: the ID is ours.
    Claimed,
    /// Another client holds the ID (ID-TAKEN).
    Taken,
    /// The server refused for another reason (bad key, bad ID, ...).
    Error(String),
}

/// What the UI shows about a registration. Rate-limited and offline are never confused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignalingState {
    /// First attempt in progress.
    Connecting,
    /// Registered (OPEN received).
    Connected,
    /// Lost or failed; retry number `attempt` starts in `next_in`.
    Reconnecting {
        /// 1 for the first retry.
        attempt: u32,
        /// Time until the retry.
        next_in: Duration,
    },
    /// Held back by the limiter or the server's throttling until then.
    RateLimited {
        /// When registrations may resume.
        until: Instant,
    },
    /// Not trying: no network, or a permanent refusal.
    Offline {
        /// Human-readable cause.
        reason: String,
    },
}

/// Why a WebSocket could not be opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectFailure {
    /// HTTP 429 at the upgrade.
    Throttled,
    /// Anything else (DNS, TCP, TLS, HTTP status).
    Other(String),
}

/// The platform's default network path, as a shell reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkPath {
    /// Some network is usable.
    pub online: bool,
    /// What identifies the usable path (e.g. the interface and its addresses), opaque to the
    /// core; two reports with the same non-empty id are the same path. Empty: unknown, so every
    /// report counts as a change.
    pub id: String,
    /// The path costs by the byte or is constrained (mobile data, a hotspot, a network the
    /// user marked metered): what unmetered-only work, such as a Wi-Fi-only backup, waits out.
    /// Not part of the path's identity: a change of it alone keeps the signaling socket.
    pub metered: bool,
}

impl NetworkPath {
    /// Online on a path that is not described (every report reconnects).
    pub fn unknown() -> Self {
        Self {
            online: true,
            id: String::new(),
            metered: false,
        }
    }

    /// No usable network.
    pub fn offline() -> Self {
        Self {
            online: false,
            id: String::new(),
            metered: false,
        }
    }

    /// Online on the path identified by `id` (unmetered).
    pub fn online(id: impl Into<String>) -> Self {
        Self {
            online: true,
            id: id.into(),
            metered: false,
        }
    }

    /// The same path, metered or not.
    pub fn with_metered(self, metered: bool) -> Self {
        Self { metered, ..self }
    }

    /// Online and not metered.
    pub fn unmetered(&self) -> bool {
        self.online && !self.metered
    }

    pub(super) fn same_as(&self, other: &Self) -> bool {
        !self.id.is_empty() && self.id == other.id
    }
}

/// Something the signaling layer reports upward.
#[derive(Debug, Clone, PartialEq)]
pub enum SignalingEvent {
    /// The outcome of a registration's claim (first answer, and every later ID-TAKEN/refusal).
    Claim {
        /// The registration.
        reg: RegId,
        /// The PeerJS ID it claimed.
        id: String,
        /// The outcome.
        result: ClaimResult,
    },
    /// The registration's UI state changed.
    State {
        /// The registration.
        reg: RegId,
        /// The new state.
        state: SignalingState,
    },
    /// A relayed message (OFFER, ANSWER, CANDIDATE, LEAVE, EXPIRE) arrived for a registration.
    Message {
        /// The registration whose socket received it.
        reg: RegId,
        /// The frame, `src` set by the server.
        msg: Message,
    },
}

/// An instruction for the I/O driver, or an event for the layer above.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Open a WebSocket to `url` for this registration attempt.
    Connect {
        /// The registration.
        reg: RegId,
        /// The attempt; report its events with this id.
        conn: ConnId,
        /// Full WebSocket URL with query.
        url: String,
    },
    /// Send a text frame on the attempt's socket.
    Transmit {
        /// The attempt.
        conn: ConnId,
        /// The JSON text.
        text: String,
    },
    /// Close the attempt's socket.
    Disconnect {
        /// The attempt.
        conn: ConnId,
    },
    /// Report to the layer above.
    Event(SignalingEvent),
}

/// Errors from calls into the state machine.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignalingError {
    /// No such registration.
    #[error("unknown registration")]
    UnknownRegistration,
    /// The registration is not connected to the server right now.
    #[error("not connected to the signaling server")]
    NotConnected,
    /// The ID is already registered by this node.
    #[error("ID {0} is already registered by this node")]
    Duplicate(String),
}

/// Counters for diagnostics; unknown or malformed frames are counted, never fatal.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Frames received and understood.
    pub frames_in: u64,
    /// Frames sent.
    pub frames_out: u64,
    /// Frames that did not parse.
    pub malformed: u64,
    /// Frames that parsed but made no sense in the current phase.
    pub unexpected: u64,
    /// WebSocket attempts started.
    pub dials: u64,
}
