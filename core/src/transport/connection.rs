//! A PeerJS-compatible data connection: send with back-pressure, receive size-bounded decoded
//! messages, close. Dropping every handle closes the underlying peer connection (webrtc-rs keeps
//! a connection and its sockets alive until `close()` is called).
//!
//! With `TransportConfig::require_auth` a connection starts gated: frames and messages are
//! limited to `pre_auth_max_message` bytes and the reader decodes a message only when `recv()`
//! asks for one, so nothing is read ahead under the small limit. [`DataConnection::authenticated`]
//! lifts both at an exact message boundary.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::BytesMut;
use serde_json::Value;
use tokio::sync::{Mutex, Notify, mpsc};
use webrtc::data_channel::{DataChannel, DataChannelEvent};
use webrtc::peer_connection::PeerConnection;

use super::codec::{Codec, CodecError, Payload};
use super::payload::Serialization;

/// Errors of data connections and the transport.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// The peer's ID is not registered at the signaling server (EXPIRE).
    #[error("peer {0} is not available")]
    PeerUnavailable(String),
    /// The channel did not open in time; `stage` says how far negotiation got.
    #[error("connecting to {peer} timed out ({stage})")]
    Timeout {
        /// The remote PeerJS ID.
        peer: String,
        /// Negotiation progress at the deadline, for diagnosis.
        stage: String,
    },
    /// The connection is closed.
    #[error("connection closed")]
    Closed,
    /// The message cannot be sent on this connection.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// Signaling refused or is down.
    #[error("signaling: {0}")]
    Signaling(String),
    /// WebRTC failed.
    #[error("webrtc: {0}")]
    WebRtc(String),
    /// The peer broke the protocol.
    #[error("protocol: {0}")]
    Protocol(String),
}

/// Fixed facts about a connection.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectionInfo {
    /// The remote PeerJS ID.
    pub peer: String,
    /// PeerJS connection id (`dc_…`).
    pub connection_id: String,
    /// Message encoding.
    pub serialization: Serialization,
    /// Ordered, reliable channel.
    pub reliable: bool,
    /// Metadata the offerer attached.
    pub metadata: Value,
    /// This end's DTLS certificate fingerprint, as in its SDP (`sha-256 AB:CD:…`).
    pub local_dtls: String,
    /// Whether this end opened the connection (sent the offer).
    pub outgoing: bool,
}

/// The `a=fingerprint:` value of an SDP (`sha-256 AB:CD:…`), or empty if it has none.
pub fn dtls_fingerprint(sdp: &str) -> String {
    sdp.lines()
        .find_map(|l| l.trim().strip_prefix("a=fingerprint:"))
        .map(|v| v.trim().to_owned())
        .unwrap_or_default()
}

/// The pre-authentication state a gated connection's handle and reader share.
#[derive(Default)]
struct Gate {
    /// `authenticated()` was called.
    released: AtomicBool,
    /// Wakes the reader: a `recv()` wants a message, or the gate was released.
    wake: Notify,
}

pub(super) struct Shared {
    pub info: ConnectionInfo,
    gate: Option<Arc<Gate>>,
    events: mpsc::UnboundedSender<ReaderEvent>,
    /// The other end's DTLS fingerprint: from the offer (incoming) or the answer (outgoing).
    remote_dtls: std::sync::OnceLock<String>,
    pc: Arc<dyn PeerConnection>,
    dc: Arc<dyn DataChannel>,
    encoder: Mutex<Codec>,
    closed: AtomicBool,
    closed_tx: mpsc::UnboundedSender<String>,
}

impl Shared {
    fn mark_closed(&self) -> bool {
        !self.closed.swap(true, Ordering::SeqCst)
    }

    async fn close(&self) {
        if self.mark_closed() {
            let _ = self.dc.close().await;
            let _ = self.pc.close().await;
            let _ = self.closed_tx.send(self.info.connection_id.clone());
        }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        if self.mark_closed() {
            let (pc, dc) = (self.pc.clone(), self.dc.clone());
            let _ = self.closed_tx.send(self.info.connection_id.clone());
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move {
                    let _ = dc.close().await;
                    let _ = pc.close().await;
                });
            }
        }
    }
}

/// The sending half; cheap to clone, usable while another task receives.
#[derive(Clone)]
pub struct DataSender {
    shared: Arc<Shared>,
}

impl DataSender {
    /// Sends one message. Waits while the channel's buffer is above its limit, so a fast
    /// sender never overruns the path.
    pub async fn send(&self, payload: &Payload) -> Result<(), TransportError> {
        if self.shared.closed.load(Ordering::SeqCst) {
            return Err(TransportError::Closed);
        }
        // Held across the sends so the frames of chunked messages stay together, in order.
        let mut encoder = self.shared.encoder.lock().await;
        for frame in encoder.encode(payload)? {
            self.shared
                .dc
                .send(BytesMut::from(&frame[..]))
                .await
                .map_err(|_| TransportError::Closed)?;
        }
        Ok(())
    }

    /// Facts about the connection.
    pub fn info(&self) -> &ConnectionInfo {
        &self.shared.info
    }

    /// Closes the connection (both directions).
    pub async fn close(&self) {
        self.shared.close().await;
    }
}

/// One data connection to a peer.
pub struct DataConnection {
    sender: DataSender,
    inbound: mpsc::Receiver<Result<Payload, CodecError>>,
}

impl DataConnection {
    /// Facts about the connection.
    pub fn info(&self) -> &ConnectionInfo {
        self.sender.info()
    }

    /// The other end's DTLS certificate fingerprint from its SDP (`sha-256 AB:CD:…`); known
    /// once the connection is open. Sessions bind to it (`docs/decisions/0005`).
    pub fn remote_dtls(&self) -> &str {
        self.sender
            .shared
            .remote_dtls
            .get()
            .map_or("", String::as_str)
    }

    pub(super) fn set_remote_dtls(&self, fp: String) {
        let _ = self.sender.shared.remote_dtls.set(fp);
    }

    /// The remote PeerJS ID.
    pub fn peer(&self) -> &str {
        &self.sender.info().peer
    }

    /// A sending handle for another task.
    pub fn sender(&self) -> DataSender {
        self.sender.clone()
    }

    /// Sends one message (see [`DataSender::send`]).
    pub async fn send(&self, payload: &Payload) -> Result<(), TransportError> {
        self.sender.send(payload).await
    }

    /// The next message, an error for a bad frame (the connection stays usable), or `None`
    /// once the connection is closed.
    pub async fn recv(&mut self) -> Option<Result<Payload, CodecError>> {
        if let Some(gate) = &self.sender.shared.gate
            && !gate.released.load(Ordering::SeqCst)
        {
            gate.wake.notify_one();
        }
        self.inbound.recv().await
    }

    /// The layer above has authenticated the peer (`TransportConfig::require_auth`): lifts the
    /// pre-authentication message limit from the next message on and frees the connection's
    /// slot among pending incoming connections (ending its deadline). Idempotent; a no-op
    /// without `require_auth`.
    pub fn authenticated(&self) {
        let shared = &self.sender.shared;
        if let Some(gate) = &shared.gate
            && !gate.released.swap(true, Ordering::SeqCst)
        {
            gate.wake.notify_one();
            let _ = shared.events.send(ReaderEvent::Authenticated(
                shared.info.connection_id.clone(),
            ));
        }
    }

    /// Closes the connection.
    pub async fn close(&self) {
        self.sender.close().await;
    }
}

/// Messages the reader (and `authenticated()`) pass to the transport.
pub(super) enum ReaderEvent {
    Open(String),
    Closed(String),
    Authenticated(String),
}

/// Wires up a data channel: starts its reader and returns the connection handle. `events`
/// learns when the channel opens, when it ends and when it is authenticated. With
/// `pre_auth_limit` the connection starts gated (see the module documentation).
pub(super) fn attach(
    info: ConnectionInfo,
    pc: Arc<dyn PeerConnection>,
    dc: Arc<dyn DataChannel>,
    inbound_queue: usize,
    pre_auth_limit: Option<usize>,
    events: mpsc::UnboundedSender<ReaderEvent>,
    closed_tx: mpsc::UnboundedSender<String>,
) -> DataConnection {
    let (tx, inbound) = mpsc::channel(inbound_queue);
    let cid = info.connection_id.clone();
    let gate = pre_auth_limit.map(|_| Arc::new(Gate::default()));
    let mut codec = Codec::new(info.serialization);
    codec.set_limit(pre_auth_limit);
    tokio::spawn(read_loop(
        cid,
        dc.clone(),
        codec,
        gate.clone(),
        tx,
        events.clone(),
    ));
    let encoder = Mutex::new(Codec::new(info.serialization));
    let shared = Arc::new(Shared {
        info,
        gate,
        events,
        remote_dtls: std::sync::OnceLock::new(),
        pc,
        dc,
        encoder,
        closed: AtomicBool::new(false),
        closed_tx,
    });
    DataConnection {
        sender: DataSender { shared },
        inbound,
    }
}

async fn read_loop(
    cid: String,
    dc: Arc<dyn DataChannel>,
    mut codec: Codec,
    mut gate: Option<Arc<Gate>>,
    tx: mpsc::Sender<Result<Payload, CodecError>>,
    events: mpsc::UnboundedSender<ReaderEvent>,
) {
    // Gated: whether a `recv()` asked for the message being decoded.
    let mut asked = false;
    while let Some(ev) = dc.poll().await {
        match ev {
            DataChannelEvent::OnOpen => {
                let _ = events.send(ReaderEvent::Open(cid.clone()));
            }
            DataChannelEvent::OnMessage(m) => {
                if let Some(g) = &gate {
                    if !asked && !g.released.load(Ordering::SeqCst) {
                        tokio::select! {
                            () = g.wake.notified() => asked = true,
                            () = tx.closed() => break,
                        }
                    }
                    if g.released.load(Ordering::SeqCst) {
                        codec.set_limit(None);
                        gate = None;
                    }
                }
                let item = match codec.decode(&m.data) {
                    Ok(Some(p)) => Ok(p),
                    Ok(None) => continue,
                    Err(e) => {
                        tracing::debug!(%cid, error = %e, "bad frame from peer");
                        Err(e)
                    }
                };
                // A full queue pauses reading: SCTP's window then throttles the sender.
                if tx.send(item).await.is_err() {
                    break; // nobody reads this connection any more
                }
                asked = false;
            }
            DataChannelEvent::OnClose => break,
            _ => {}
        }
    }
    let _ = events.send(ReaderEvent::Closed(cid));
}
