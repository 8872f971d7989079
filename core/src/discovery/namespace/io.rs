//! The engine's interface: the inputs a driver feeds, the actions it performs, and what the
//! application hears.

use crate::discovery::presence::GeoStamp;
use crate::identity::Fingerprint;

/// A data connection of this namespace. The engine numbers the connections it opens; the
/// driver numbers incoming ones with [`ConnId::incoming`], so the two never collide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

impl ConnId {
    const INCOMING: u64 = 1 << 63;

    /// The id of the driver's `n`th incoming connection.
    pub fn incoming(n: u64) -> Self {
        Self(n | Self::INCOMING)
    }
}

/// What the driver reports.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// Our registration of `id` is open.
    Claimed {
        /// The PeerJS ID.
        id: String,
    },
    /// Registering `id` failed; `taken` = someone else holds it.
    ClaimFailed {
        /// The PeerJS ID.
        id: String,
        /// ID-TAKEN (as opposed to a network or server error).
        taken: bool,
    },
    /// A registration we held was lost (signaling dropped it).
    Lost {
        /// The PeerJS ID.
        id: String,
    },
    /// A connection we asked for is open.
    Connected {
        /// The connection.
        conn: ConnId,
    },
    /// A connection we asked for failed; `unavailable` = the ID is not registered.
    ConnectFailed {
        /// The connection.
        conn: ConnId,
        /// The signaling server said the peer does not exist.
        unavailable: bool,
    },
    /// A peer connected to one of our IDs.
    Incoming {
        /// The connection (numbered with [`ConnId::incoming`]).
        conn: ConnId,
        /// Our ID it arrived at.
        local: String,
        /// The remote peer's ID.
        remote: String,
    },
    /// A message arrived.
    Data {
        /// The connection.
        conn: ConnId,
        /// The message.
        bytes: Vec<u8>,
    },
    /// A connection closed.
    Closed {
        /// The connection.
        conn: ConnId,
    },
    /// A knock (see [`Action::Knock`]) from `from` arrived at one of our IDs.
    Knock {
        /// The knocker's PeerJS ID.
        from: String,
    },
}

/// What the engine asks the driver to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Register `id` at the signaling server (answer with `Claimed` or `ClaimFailed`).
    Claim {
        /// The PeerJS ID.
        id: String,
    },
    /// Unregister `id`.
    Release {
        /// The PeerJS ID.
        id: String,
    },
    /// Open a data connection from our registration `from` to `to`.
    Connect {
        /// The number for it.
        conn: ConnId,
        /// Our registered ID to connect from.
        from: String,
        /// The remote ID.
        to: String,
    },
    /// Tell the holder of `to`, through the signaling server, that we wait at our registration
    /// `from` (the reverse slot): a level-1 router then probes the slot at once instead of at
    /// its next periodic probe. No connection; the server relays it like any signaling frame.
    Knock {
        /// Our registered ID it comes from.
        from: String,
        /// The ID knocked at.
        to: String,
    },
    /// Send a message.
    Send {
        /// The connection.
        conn: ConnId,
        /// The message.
        bytes: Vec<u8>,
    },
    /// Close a connection.
    Close {
        /// The connection.
        conn: ConnId,
    },
    /// Tell the application.
    Event(NsEvent),
}

/// A peer in the namespace, as its verified record says.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerInfo {
    /// Identity key fingerprint.
    pub fingerprint: Fingerprint,
    /// Its discovery ID here (connect to it to reach the peer).
    pub disc_id: String,
    /// Display name.
    pub name: String,
    /// Position, in geo namespaces.
    pub geo: Option<GeoStamp>,
    /// The note in its record (empty when none).
    pub note: Vec<u8>,
}

/// The engine's place in the namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleKind {
    /// Looking for a router (electing, joining, failing over).
    Searching,
    /// Member of the router at `level`.
    Member(u8),
    /// Router at `level`.
    Router(u8),
}

/// What the application hears.
#[derive(Debug, Clone, PartialEq)]
pub enum NsEvent {
    /// A peer appeared or its record changed.
    PeerSeen(PeerInfo),
    /// A peer left.
    PeerGone(Fingerprint),
    /// The engine's role changed.
    Role(RoleKind),
    /// A peer broke the rules (bad message, flood); it was dropped.
    Misbehaved {
        /// Its ID.
        remote: String,
        /// What it did.
        reason: String,
    },
}

/// Counters for benchmarks and diagnostics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NsStats {
    /// Messages sent.
    pub msgs_out: u64,
    /// Bytes sent.
    pub bytes_out: u64,
    /// Messages received.
    pub msgs_in: u64,
    /// Bytes received.
    pub bytes_in: u64,
}
