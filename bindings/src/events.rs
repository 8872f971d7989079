//! Events the node reports to the platform ([`NodeEvent`]) and the records they carry.

use std::time::Instant;

use peerns_core::node;

use crate::{CallKinds, CallLogEntry, CallMediaState, CallStatus, ChatMessage, MessageStatus};

/// The state of the node's signaling registration, for the UI.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum SignalingState {
    /// Registered.
    Connected,
    /// First attempt in progress.
    Connecting,
    /// Lost; retry number `attempt` starts in `next_in_ms` milliseconds.
    Reconnecting {
        /// 1 for the first retry.
        attempt: u32,
        /// Milliseconds until the retry.
        next_in_ms: u64,
    },
    /// Held back by rate limiting for `until_ms` more milliseconds (from when it was read).
    RateLimited {
        /// Milliseconds until registrations may resume.
        until_ms: u64,
    },
    /// Not trying: no network, a permanent refusal, or the node is not running.
    Offline {
        /// Human-readable cause.
        reason: String,
    },
}

impl From<node::SignalingState> for SignalingState {
    fn from(s: node::SignalingState) -> Self {
        use node::SignalingState as S;
        let ms = |d: std::time::Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        match s {
            S::Connected => Self::Connected,
            S::Connecting => Self::Connecting,
            S::Reconnecting { attempt, next_in } => Self::Reconnecting {
                attempt,
                next_in_ms: ms(next_in),
            },
            S::RateLimited { until } => Self::RateLimited {
                until_ms: ms(until.saturating_duration_since(Instant::now())),
            },
            S::Offline { reason } => Self::Offline { reason },
        }
    }
}

/// A peer found through a namespace or stadium mode.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct DiscoveredPeer {
    /// Identity key fingerprint, 64 hex characters.
    pub fingerprint: String,
    /// Short fingerprint for people to compare.
    pub short: String,
    /// Its discovery ID (connect there; its persistent ID stays private).
    pub disc_id: String,
    /// Display name.
    pub name: String,
    /// Metres from us (stadium mode, when both positions are known).
    pub distance_m: Option<f64>,
    /// The meeting room it is in (stadium mode), 32 hex characters.
    #[uniffi(default = None)]
    pub room: Option<String>,
}

impl From<node::DiscoveredPeer> for DiscoveredPeer {
    fn from(p: node::DiscoveredPeer) -> Self {
        Self {
            fingerprint: p.fingerprint,
            short: p.short,
            disc_id: p.disc_id,
            name: p.name,
            distance_m: p.distance_m,
            room: p.room.map(|g| g.to_hex()),
        }
    }
}

/// Our place in a namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum NamespaceRole {
    /// Looking for the router.
    Searching,
    /// Member of the router at `level`.
    Member {
        /// 1–5.
        level: u8,
    },
    /// Router at `level`.
    Router {
        /// 1–5.
        level: u8,
    },
}

impl From<node::NamespaceRole> for NamespaceRole {
    fn from(r: node::NamespaceRole) -> Self {
        match r {
            node::NamespaceRole::Searching => Self::Searching,
            node::NamespaceRole::Member(level) => Self::Member { level },
            node::NamespaceRole::Router(level) => Self::Router { level },
        }
    }
}

/// A namespace's state: our role and the peers we see.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct NamespacePeers {
    /// Our role.
    pub role: NamespaceRole,
    /// Everyone else.
    pub peers: Vec<DiscoveredPeer>,
}

/// A session protocol version (`docs/decisions/0009-wire-versioning.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Record)]
pub struct WireVersion {
    /// Nodes with different majors cannot talk.
    pub major: u16,
    /// Compatible additions.
    pub minor: u16,
    /// Optional capabilities, one bit each.
    pub features: u64,
}

impl From<node::WireVersion> for WireVersion {
    fn from(v: node::WireVersion) -> Self {
        Self {
            major: v.major,
            minor: v.minor,
            features: v.features,
        }
    }
}

/// Something that happened at the node.
#[derive(Debug, Clone, PartialEq, uniffi::Enum)]
pub enum NodeEvent {
    /// The signaling registration changed state.
    SignalingState {
        /// The new state.
        state: SignalingState,
    },
    /// The first authenticated link to an identity is up (made by either side).
    PeerConnected {
        /// The remote PeerJS ID.
        peer: String,
        /// The identity the handshake proved.
        fingerprint: String,
    },
    /// The last link to an identity closed.
    PeerDisconnected {
        /// The remote PeerJS ID.
        peer: String,
        /// The identity.
        fingerprint: String,
    },
    /// Someone asked to become a contact.
    ContactRequest {
        /// Their fingerprint.
        fingerprint: String,
        /// The name they gave.
        name: String,
        /// Their persistent PeerJS ID.
        peer: String,
    },
    /// We started (`searching`) or stopped looking for a contact at a rendezvous: it could
    /// not be reached at its last known ID, or has not seen us since our ID changed.
    ContactSearch {
        /// The contact's fingerprint.
        fingerprint: String,
        /// Whether the search runs now.
        searching: bool,
    },
    /// A contact request whose link waited (its owner could not be reached when it was added)
    /// went out now.
    ContactRequestSent {
        /// Their fingerprint.
        fingerprint: String,
        /// Their name.
        name: String,
    },
    /// Our request was accepted: a new contact (trust `Trusted`).
    ContactAdded {
        /// Their fingerprint.
        fingerprint: String,
        /// Their name.
        name: String,
    },
    /// A contact's PeerJS ID answered with another key: a different identity, granted nothing.
    KeyChanged {
        /// The PeerJS ID.
        peer: String,
        /// The contact's fingerprint.
        known: String,
        /// The fingerprint the handshake proved.
        presented: String,
    },
    /// A peer speaks another major wire version: no session, on either side. Usually one of
    /// the two apps needs an update.
    IncompatiblePeer {
        /// The remote PeerJS ID.
        peer: String,
        /// Its identity, if its certificate could be read.
        fingerprint: Option<String>,
        /// Our version.
        ours: WireVersion,
        /// The version the peer announced.
        theirs: WireVersion,
    },
    /// A new message from a contact.
    MessageReceived {
        /// The message.
        message: ChatMessage,
    },
    /// A contact edited or deleted a message.
    MessageChanged {
        /// The message as it is now.
        message: ChatMessage,
    },
    /// Our messages in `conversation` up to `up_to_seq` are now `status`.
    MessageStatus {
        /// The contact's fingerprint.
        conversation: String,
        /// Our messages up to this seq (`u64::MAX`: all of them).
        up_to_seq: u64,
        /// Sent, Delivered, Read or Failed.
        status: MessageStatus,
    },
    /// A file transfer moved: `bytes` of `total` are on the receiver's disk.
    FileProgress {
        /// The contact's fingerprint.
        conversation: String,
        /// The transfer (= the file message's id).
        id: String,
        /// Bytes acknowledged.
        bytes: u64,
        /// File size.
        total: u64,
        /// We are sending it.
        outgoing: bool,
    },
    /// A file arrived whole and its hash matched.
    FileReceived {
        /// The sender's fingerprint.
        conversation: String,
        /// The transfer.
        id: String,
        /// Where it is, inside the profile.
        path: String,
    },
    /// A transfer ended without a received file: ours delivered (`ok`) or refused, or an
    /// incoming one refused.
    FileDone {
        /// The contact's fingerprint.
        conversation: String,
        /// The transfer.
        id: String,
        /// Delivered and verified.
        ok: bool,
        /// We were sending it.
        outgoing: bool,
    },
    /// A peer appeared or changed in a namespace (`geo-{cell}` in stadium mode).
    NamespacePeer {
        /// The namespace's slug.
        namespace: String,
        /// The peer.
        peer: DiscoveredPeer,
    },
    /// A peer left a namespace.
    NamespacePeerGone {
        /// The namespace's slug.
        namespace: String,
        /// Its fingerprint.
        fingerprint: String,
    },
    /// Our role in a namespace changed.
    NamespaceRole {
        /// The namespace's slug.
        namespace: String,
        /// The new role.
        role: NamespaceRole,
    },
    /// A contact sent raw data (data from others is refused).
    DataReceived {
        /// The contact's fingerprint.
        fingerprint: String,
        /// The message.
        data: Vec<u8>,
    },
    /// A contact calls: show the full-screen incoming-call screen.
    IncomingCall {
        /// The call.
        call: String,
        /// The caller's fingerprint.
        fingerprint: String,
        /// Our name for the caller.
        name: String,
        /// What the caller sends.
        kinds: CallKinds,
    },
    /// A call moved (dialing, ringing, connected, ended with a reason).
    CallState {
        /// The call.
        call: String,
        /// The contact's fingerprint.
        fingerprint: String,
        /// The new state.
        status: CallStatus,
    },
    /// The peer muted, turned its camera off, switched camera or shared its screen.
    CallMedia {
        /// The call.
        call: String,
        /// The contact's fingerprint.
        fingerprint: String,
        /// What the peer sends now.
        state: CallMediaState,
    },
    /// An armed baby monitor that lets us watch it heard a sound above its alert threshold.
    MonitorAlert {
        /// The monitor's fingerprint.
        fingerprint: String,
        /// The sound's level, dBFS.
        level_dbfs: i16,
    },
    /// Our armed camera is being watched: we placed `call` to contact `fingerprint`, who asked
    /// for it. Once the call's media is up (`CallMediaConnected`), send the `facing` camera
    /// (`environment` or `user`) and the microphone into it (`call_media_source`).
    MonitorStream {
        /// The call we placed.
        call: String,
        /// The watcher's fingerprint.
        fingerprint: String,
        /// The armed camera.
        facing: String,
    },
    /// A call was added to the call log (and to the chat history with the contact).
    CallLogged {
        /// The entry.
        entry: CallLogEntry,
    },
    /// The call's media is up: attach sources and sinks now (`call_media_source`,
    /// `call_media_sinks`).
    CallMediaConnected {
        /// The call.
        call: String,
        /// The contact's fingerprint.
        fingerprint: String,
    },
}

impl From<node::NodeEvent> for NodeEvent {
    fn from(e: node::NodeEvent) -> Self {
        match e {
            node::NodeEvent::SignalingState(s) => Self::SignalingState { state: s.into() },
            node::NodeEvent::PeerConnected { peer, fingerprint } => {
                Self::PeerConnected { peer, fingerprint }
            }
            node::NodeEvent::PeerDisconnected { peer, fingerprint } => {
                Self::PeerDisconnected { peer, fingerprint }
            }
            node::NodeEvent::ContactRequest {
                fingerprint,
                name,
                peer,
            } => Self::ContactRequest {
                fingerprint,
                name,
                peer,
            },
            node::NodeEvent::ContactSearch {
                fingerprint,
                searching,
            } => Self::ContactSearch {
                fingerprint,
                searching,
            },
            node::NodeEvent::ContactRequestSent { fingerprint, name } => {
                Self::ContactRequestSent { fingerprint, name }
            }
            node::NodeEvent::ContactAdded { fingerprint, name } => {
                Self::ContactAdded { fingerprint, name }
            }
            node::NodeEvent::KeyChanged {
                peer,
                known,
                presented,
            } => Self::KeyChanged {
                peer,
                known,
                presented,
            },
            node::NodeEvent::IncompatiblePeer {
                peer,
                fingerprint,
                ours,
                theirs,
            } => Self::IncompatiblePeer {
                peer,
                fingerprint,
                ours: ours.into(),
                theirs: theirs.into(),
            },
            node::NodeEvent::MessageReceived { message } => Self::MessageReceived {
                message: message.into(),
            },
            node::NodeEvent::MessageChanged { message } => Self::MessageChanged {
                message: message.into(),
            },
            node::NodeEvent::MessageStatus(s) => Self::MessageStatus {
                conversation: s.conversation,
                up_to_seq: s.up_to_seq,
                status: s.status.into(),
            },
            node::NodeEvent::FileProgress {
                conversation,
                id,
                bytes,
                total,
                outgoing,
            } => Self::FileProgress {
                conversation,
                id,
                bytes,
                total,
                outgoing,
            },
            node::NodeEvent::FileReceived {
                conversation,
                id,
                path,
            } => Self::FileReceived {
                conversation,
                id,
                path,
            },
            node::NodeEvent::FileDone {
                conversation,
                id,
                ok,
                outgoing,
            } => Self::FileDone {
                conversation,
                id,
                ok,
                outgoing,
            },
            node::NodeEvent::DataReceived { fingerprint, data } => {
                Self::DataReceived { fingerprint, data }
            }
            node::NodeEvent::NamespacePeer { namespace, peer } => Self::NamespacePeer {
                namespace,
                peer: peer.into(),
            },
            node::NodeEvent::NamespacePeerGone {
                namespace,
                fingerprint,
            } => Self::NamespacePeerGone {
                namespace,
                fingerprint,
            },
            node::NodeEvent::NamespaceRole { namespace, role } => Self::NamespaceRole {
                namespace,
                role: role.into(),
            },
            node::NodeEvent::IncomingCall {
                call,
                fingerprint,
                name,
                kinds,
            } => Self::IncomingCall {
                call,
                fingerprint,
                name,
                kinds: kinds.into(),
            },
            node::NodeEvent::CallState {
                call,
                fingerprint,
                state,
            } => Self::CallState {
                call,
                fingerprint,
                status: state.into(),
            },
            node::NodeEvent::CallMedia {
                call,
                fingerprint,
                state,
            } => Self::CallMedia {
                call,
                fingerprint,
                state: state.into(),
            },
            node::NodeEvent::MonitorAlert {
                fingerprint,
                level_dbfs,
            } => Self::MonitorAlert {
                fingerprint,
                level_dbfs,
            },
            node::NodeEvent::MonitorStream {
                call,
                fingerprint,
                facing,
            } => Self::MonitorStream {
                call,
                fingerprint,
                facing,
            },
            node::NodeEvent::CallLogged { entry } => Self::CallLogged {
                entry: entry.into(),
            },
            node::NodeEvent::CallMediaConnected { call, fingerprint } => {
                Self::CallMediaConnected { call, fingerprint }
            }
        }
    }
}
