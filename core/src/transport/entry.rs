//! The driver's record of one connection (data or media) while it is negotiated or open.

use std::sync::{Arc, Weak};

use serde_json::Value;
use webrtc::peer_connection::{PeerConnection, RTCIceCandidateInit, RTCPeerConnectionState};

use super::connection::{ConnectionInfo, DataConnection};
use super::driver::Reply;
use super::media::MediaHooks;
use super::payload::ConnectionKind;
use super::peer::first_mid;
use crate::signaling::protocol::MessageType;

/// A connection being negotiated, or open (then `pc` is only a weak link).
pub(super) struct Entry {
    pub info: ConnectionInfo,
    pub pc: Option<Arc<dyn PeerConnection>>,
    pub weak_pc: Weak<dyn PeerConnection>,
    pub remote_set: bool,
    pub queued: Vec<RTCIceCandidateInit>,
    pub mid: Option<String>,
    /// The connection, before it is handed out (offerer: waits for OnOpen).
    pub conn: Option<DataConnection>,
    /// Who waits for it: a `connect()` caller (or, after glare, the caller of the abandoned one).
    pub reply: Option<Reply>,
    pub outgoing: bool,
    /// An incoming connection's remote DTLS fingerprint (from the offer), until it opens.
    pub remote_dtls: Option<String>,
    /// An outgoing connection's OFFER and the CANDIDATEs sent after it, kept until the answer
    /// so they can be sent again (see the glare rule in `offer`).
    pub sent: Vec<(MessageType, Value)>,
    /// Last peer-connection state seen, and remote candidates received (for diagnostics).
    pub state: RTCPeerConnectionState,
    pub remote_candidates: usize,
    /// Data or media (the kind its CANDIDATEs carry).
    pub kind: ConnectionKind,
    /// A media connection's hooks into its handle.
    pub media: Option<MediaHooks>,
}

impl Entry {
    /// A connection under negotiation: an outgoing one waits for the ANSWER; an incoming one
    /// has the remote description (the OFFER) already.
    pub fn new(
        info: ConnectionInfo,
        pc: Arc<dyn PeerConnection>,
        local_sdp: &str,
        outgoing: bool,
    ) -> Self {
        Self {
            info,
            weak_pc: Arc::downgrade(&pc),
            pc: Some(pc),
            remote_set: !outgoing,
            queued: vec![],
            mid: first_mid(local_sdp),
            conn: None,
            reply: None,
            outgoing,
            remote_dtls: None,
            sent: vec![],
            state: RTCPeerConnectionState::New,
            remote_candidates: 0,
            kind: ConnectionKind::Data,
            media: None,
        }
    }
}
