//! What the group-call machine is told, what it asks for, and what it reports.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::calls::group::wire::{GroupCallFrame, Layout, RosterEntry};
use crate::calls::{DtlsFingerprint, Kinds, MediaState};
use crate::identity::Fingerprint;
use crate::media::sfu::SlotId;

/// Timings and slots of group calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupCallConfig {
    /// Slots a router forwards to each participant.
    pub layout: Layout,
    /// A join not welcomed within this is sent again; a failed media connection is retried
    /// after it.
    pub join_retry: Duration,
    /// An admitted participant whose media does not arrive within this is dropped.
    pub connect_timeout: Duration,
}

impl Default for GroupCallConfig {
    fn default() -> Self {
        Self {
            layout: Layout::default(),
            join_retry: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(20),
        }
    }
}

/// Where we are in the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Not in the call.
    Out,
    /// In the call, waiting for a router (none elected, or not welcomed yet).
    Waiting,
    /// Welcomed: our media connection to the router is being made.
    Connecting,
    /// Media flows through the router (or we are the router).
    Connected,
}

impl Phase {
    /// The phase as printed in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Out => "out",
            Phase::Waiting => "waiting",
            Phase::Connecting => "connecting",
            Phase::Connected => "connected",
        }
    }
}

/// What the machine is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// The user joins the call sending `kinds`; our media connections use the certificate of
    /// `dtls`; their PeerJS IDs start with `id_prefix` (random, `mc_…`).
    Join {
        /// What we send.
        kinds: Kinds,
        /// Mute, camera off, screen.
        state: MediaState,
        /// Our certificate's fingerprint.
        dtls: DtlsFingerprint,
        /// Prefix of our media connection IDs.
        id_prefix: String,
    },
    /// The user leaves the call.
    Leave,
    /// What we send changed.
    SetMedia(MediaState),
    /// We route the group now (our ANSWERs carry `dtls`), or (`None`) no longer.
    Routing(Option<DtlsFingerprint>),
    /// Member side: the group's router is now this member (`None`: none).
    Router(Option<Fingerprint>),
    /// The group's current members.
    Members(BTreeSet<Fingerprint>),
    /// Router side: a link to this member came up; `pairs`: its session can be paired
    /// ([`crate::session::FEATURE_CALL_PAIRS`]).
    PeerUp {
        /// The member.
        peer: Fingerprint,
        /// Whether it may be told to talk to another participant directly.
        pairs: bool,
    },
    /// The link to this member is gone.
    PeerGone(Fingerprint),
    /// Router side: a media OFFER `media_id` (DTLS fingerprint `dtls`) from a browser our user
    /// let into the call (`guest`: the ID it is known by; a browser has no session and is not
    /// a member). Admitted like a member's join if there is room.
    Guest {
        /// The browser's participant ID.
        guest: Fingerprint,
        /// The OFFER's connection ID.
        media_id: String,
        /// Its DTLS fingerprint.
        dtls: DtlsFingerprint,
    },
    /// A frame from a member, on its authenticated session.
    Frame {
        /// The sender.
        from: Fingerprint,
        /// The frame.
        frame: GroupCallFrame,
    },
    /// The media connection `media_id` with `peer` (router or host side: a participant;
    /// member side: the router or our pair's host) is up.
    MediaUp {
        /// The other side.
        peer: Fingerprint,
        /// The connection.
        media_id: String,
    },
    /// That media connection failed or closed.
    MediaDown {
        /// The other side.
        peer: Fingerprint,
        /// The connection.
        media_id: String,
    },
    /// Router side: the participants speaking now, from their audio levels (ours included
    /// when we take part).
    Speakers(Vec<Fingerprint>),
    /// Router side: a browser guest's video packets say its picture must be turned this far
    /// clockwise (degrees; a browser tells no media state of its own).
    GuestRotation {
        /// The browser's participant ID.
        guest: Fingerprint,
        /// The rotation.
        degrees: u16,
    },
}

/// What the machine asks the driver to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send a frame to one member.
    Send {
        /// The member.
        to: Fingerprint,
        /// The frame.
        frame: GroupCallFrame,
    },
    /// Send a frame to every member linked to us (router side).
    Broadcast(GroupCallFrame),
    /// Router or pair host: answer the media OFFER `media_id` from `peer` if its DTLS
    /// fingerprint is `dtls`, with a track per slot of `layout` plus our own tracks for
    /// `router_kinds` (a router answers with its routing certificate, a host with its own).
    Admit {
        /// The participant.
        peer: Fingerprint,
        /// The announced connection ID.
        media_id: String,
        /// The announced fingerprint.
        dtls: DtlsFingerprint,
        /// What we send ourselves on it.
        router_kinds: Kinds,
        /// The slots we forward on it (none from a pair's host).
        layout: Layout,
    },
    /// Router or host side: drop the participant's media (and any admission).
    Expel {
        /// The participant.
        peer: Fingerprint,
    },
    /// Member side: send our media OFFER to the router (or our pair's host).
    Connect(Uplinking),
    /// Member side: close our media connection to the router or host, if any.
    Disconnect,
    /// Refuse a frame from someone who may not send it (a link counts such refusals and
    /// closes after a few).
    Refuse {
        /// The sender.
        to: Fingerprint,
        /// Why, for the sender.
        reason: &'static str,
    },
    /// Tell the application.
    Event(GroupCallEvent),
}

/// A member's media connection to the router (or its pair's host), as the welcome allows it:
/// keep it only if its ANSWER carries `dtls`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uplinking {
    /// Who answers: the router, or the other participant of a direct pair.
    pub host: Fingerprint,
    /// The connection ID our join announced.
    pub media_id: String,
    /// The router's fingerprint from its welcome.
    pub dtls: DtlsFingerprint,
    /// The slots it forwards to us.
    pub layout: Layout,
    /// What the router sends itself.
    pub router_kinds: Kinds,
    /// What we send.
    pub kinds: Kinds,
}

/// What the application hears.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupCallEvent {
    /// Who is in the call now (empty: nobody).
    Roster(Vec<RosterEntry>),
    /// Whom each of our slots shows now.
    Slots(Vec<(SlotId, Option<Fingerprint>)>),
    /// The participants speaking now (empty: nobody), in the order they joined.
    Speakers(Vec<Fingerprint>),
    /// We moved to another phase.
    Phase(Phase),
}
