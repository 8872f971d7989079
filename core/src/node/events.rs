//! What a node reports ([`NodeEvent`]) and how its operations fail ([`NodeError`]).

use super::*;

/// Something that happened at the node, in the order it happened.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeEvent {
    /// The registration of the persistent ID changed state.
    SignalingState(SignalingState),
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
    /// We started (`true`) or stopped looking for a contact at a rendezvous: it could not be
    /// reached at its last known ID, or has not seen us since our ID changed.
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
    /// Our request was accepted: a new contact at level 2.
    ContactAdded {
        /// Their fingerprint.
        fingerprint: String,
        /// Their name.
        name: String,
    },
    /// A contact's PeerJS ID answered with a different key: another identity, granted nothing.
    KeyChanged {
        /// The PeerJS ID.
        peer: String,
        /// The contact's fingerprint.
        known: String,
        /// The fingerprint the handshake proved.
        presented: String,
    },
    /// A peer speaks another major wire version: no session, on either side (each side gets
    /// this event). Usually one of the two apps needs an update.
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
        message: Message,
    },
    /// A contact edited or deleted a message.
    MessageChanged {
        /// The message as it is now.
        message: Message,
    },
    /// Our messages up to a seq were sent, delivered, read, or failed.
    MessageStatus(StatusChange),
    /// A file transfer moved: `bytes` of `total` are on the receiver's disk.
    FileProgress {
        /// The contact's fingerprint.
        conversation: String,
        /// The transfer (the file message's manifest id, 32 hex).
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
    /// incoming one refused (too large, hash mismatch).
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
    /// A peer appeared (or changed) in a namespace (`geo-{cell}` for stadium mode).
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
    /// A contact sent raw application data.
    DataReceived {
        /// The contact's fingerprint.
        fingerprint: String,
        /// The message.
        data: Vec<u8>,
    },
    /// A contact calls us: show the full-screen incoming-call screen.
    IncomingCall {
        /// The call (32 hex characters).
        call: String,
        /// The caller's fingerprint.
        fingerprint: String,
        /// Our name for the caller.
        name: String,
        /// What the caller sends.
        kinds: Kinds,
    },
    /// A call moved: dialing, ringing, connected or ended (with the reason).
    CallState {
        /// The call.
        call: String,
        /// The contact's fingerprint.
        fingerprint: String,
        /// The new state.
        state: CallState,
    },
    /// The peer muted, turned its camera off, switched camera or shared its screen.
    CallMedia {
        /// The call.
        call: String,
        /// The contact's fingerprint.
        fingerprint: String,
        /// What the peer sends now.
        state: MediaState,
    },
    /// An armed baby monitor that lets us watch it heard a sound above its alert threshold
    /// (decision 0014).
    MonitorAlert {
        /// The monitor's fingerprint.
        fingerprint: String,
        /// The sound's level, dBFS.
        level_dbfs: i16,
    },
    /// Our armed camera is being watched: we placed `call` to contact `fingerprint`, who asked
    /// for it (`media.stream`). Once its media is up, the app sends the `facing` camera and the
    /// microphone into it (decision 0014).
    MonitorStream {
        /// The call we placed.
        call: String,
        /// The watcher's fingerprint.
        fingerprint: String,
        /// The armed camera: `environment` or `user`.
        facing: String,
    },
    /// A call was added to the call log (and to the chat history with the contact).
    CallLogged {
        /// The log entry.
        entry: CallEntry,
    },
    /// The call's media connection is up (bound to the call): attach sources and sinks now
    /// ([`Node::call_media`] returns at once).
    CallMediaConnected {
        /// The call.
        call: String,
        /// The contact's fingerprint.
        fingerprint: String,
    },
}

/// Why a node operation failed.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// An argument was malformed (server URL, peer ID, ...).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The profile could not be opened (database or identity key).
    #[error(transparent)]
    Profile(#[from] ProfileError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Another node runs on this profile (or its lock file cannot be taken).
    #[error(transparent)]
    ProfileLocked(#[from] LockError),
    /// The signaling server refused the persistent ID, or signaling has stopped.
    #[error("signaling: {0}")]
    Signaling(String),
    /// A data connection failed.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// Discovery could not do what was asked (no STUN answer, ...).
    #[error("discovery: {0}")]
    Discovery(String),
    /// There is no open connection to this peer.
    #[error("not connected to {0}")]
    NotConnected(String),
    /// The session handshake failed or the key is blocked.
    #[error("session: {0}")]
    Session(String),
    /// The peer proved a different identity than expected.
    #[error("key mismatch: expected {expected}, the peer proved {presented}")]
    KeyMismatch {
        /// The fingerprint we expected (link or contact).
        expected: String,
        /// The one the handshake proved.
        presented: String,
    },
    /// The trust level does not allow this.
    #[error("not allowed: {0}")]
    NotAllowed(String),
    /// A contact operation failed.
    #[error(transparent)]
    Contact(#[from] ContactError),
    /// A chat operation failed.
    #[error(transparent)]
    Chat(#[from] ChatError),
    /// Something took too long.
    #[error("timed out: {0}")]
    Timeout(String),
    /// The contact request could not be delivered now; its link is kept and the request goes
    /// out once both sides are online ([`Node::waiting_links`]).
    ///
    /// [`Node::waiting_links`]: super::Node::waiting_links
    #[error("waiting: {0}")]
    Waiting(String),
    /// The node has been stopped.
    #[error("node stopped")]
    Stopped,
    /// Something newer took this operation's place (a second watch of the same contact).
    #[error("cancelled: {0}")]
    Cancelled(String),
    /// The peer answered an RPC request with an error.
    #[error("refused by the peer: {0}")]
    Rpc(#[from] crate::rpc::RpcError),
    /// A file of ours could not be read (gone, no longer allowed, changed while it was sent).
    #[error("cannot read {0}")]
    Unreadable(String),
}
