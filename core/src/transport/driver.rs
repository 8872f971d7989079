//! The transport task: turns `connect()` calls and PeerJS signaling frames (OFFER / ANSWER /
//! CANDIDATE / LEAVE / EXPIRE) into webrtc-rs peer connections and data channels, exactly as
//! peerjs 1.5.5 negotiates them, so browsers and native nodes interoperate.
//!
//! Incoming connections are bounded before any WebRTC work ([`super::admission`]): at most
//! `max_pending` pending at once and `max_pending_per_peer` per remote ID, each closed if it is
//! not open (with `require_auth`, authenticated) `accept_timeout` after its OFFER. Remote
//! candidates are capped per connection, and candidates for unknown connections are dropped.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use webrtc::data_channel::{DataChannel, RTCDataChannelInit};
use webrtc::peer_connection::{
    PeerConnection, RTCIceCandidateInit, RTCPeerConnectionState, RTCSessionDescription,
};

use super::entry::Entry;
use super::media::{IncomingMedia, MediaCertificate, MediaConnection, MediaOptions, TrackSpec};
pub use super::options::{ConnectOptions, MAX_REMOTE_CANDIDATES, NATIVE_MARKER, NATIVE_VERSION};
use super::options::{instance_of, is_native, with_instance};

use super::admission::Admission;
use super::config::TransportConfig;
use super::connection::{
    ConnectionInfo, DataConnection, ReaderEvent, TransportError, attach, dtls_fingerprint,
};
use super::payload::{
    AnswerPayload, CandidateInit, CandidatePayload, ConnectionKind, OfferPayload, Sdp,
    Serialization, new_connection_id, parse,
};
use super::peer::{PcEvent, PcEventKind, new_peer_connection};
use crate::signaling::client::{RegId, SignalingEvent};
use crate::signaling::driver::SignalingHandle;
use crate::signaling::protocol::{Message, MessageType};

mod media_neg;
mod signals;

pub(super) type Reply = oneshot::Sender<Result<DataConnection, TransportError>>;
pub(super) type MediaReply = oneshot::Sender<Result<MediaConnection, TransportError>>;

pub(super) enum Command {
    Connect {
        peer: String,
        opts: ConnectOptions,
        reply: Reply,
    },
    Shutdown {
        done: oneshot::Sender<()>,
    },
    /// Offer a media connection.
    Call {
        peer: String,
        opts: MediaOptions,
        reply: MediaReply,
    },
    /// Answer a pending media offer.
    AcceptMedia {
        cid: String,
        tracks: Vec<TrackSpec>,
        certificate: Option<MediaCertificate>,
        /// Video in H.264 only (a forwarder's answer).
        h264_only: bool,
        reply: MediaReply,
    },
    /// Drop a pending media offer.
    RefuseMedia {
        cid: String,
    },
    /// Hand incoming media offers to this receiver (else they are refused).
    MediaOffers(mpsc::Sender<IncomingMedia>),
}

/// Handle to the data-connection layer of one PeerJS registration.
#[derive(Clone)]
pub struct Transport {
    cmd: mpsc::UnboundedSender<Command>,
}

impl Transport {
    /// Starts the transport for registration `reg` (whose PeerJS ID is `local_id`). Incoming
    /// connections arrive on the returned receiver once their channel is open.
    pub fn start(
        signaling: SignalingHandle,
        reg: RegId,
        local_id: String,
        config: TransportConfig,
    ) -> Result<(Transport, mpsc::UnboundedReceiver<DataConnection>), TransportError> {
        let sig_events = signaling
            .subscribe()
            .map_err(|e| TransportError::Signaling(e.to_string()))?;
        let (cmd, cmd_rx) = mpsc::unbounded_channel();
        let (incoming_tx, incoming) = mpsc::unbounded_channel();
        let (pc_tx, pc_rx) = mpsc::unbounded_channel();
        let (reader_tx, reader_rx) = mpsc::unbounded_channel();
        let (closed_tx, closed_rx) = mpsc::unbounded_channel();
        let task = Task {
            signaling,
            reg,
            local_id,
            instance: format!("{:016x}", rand::random::<u64>()),
            admission: Admission::new(
                config.max_pending,
                config.max_pending_per_peer,
                config.accept_timeout,
            ),
            config,
            entries: HashMap::new(),
            incoming: incoming_tx,
            pc_tx,
            reader_tx,
            closed_tx,
            cmd: cmd.downgrade(),
            media_offers: None,
            pending_media: HashMap::new(),
        };
        tokio::spawn(task.run(cmd_rx, sig_events, pc_rx, reader_rx, closed_rx));
        Ok((Transport { cmd }, incoming))
    }

    /// Opens a data connection to `peer` and waits until its channel is open.
    pub async fn connect(
        &self,
        peer: &str,
        opts: ConnectOptions,
    ) -> Result<DataConnection, TransportError> {
        let (reply, rx) = oneshot::channel();
        self.cmd
            .send(Command::Connect {
                peer: peer.into(),
                opts,
                reply,
            })
            .map_err(|_| TransportError::Closed)?;
        rx.await.map_err(|_| TransportError::Closed)?
    }

    /// Offers a media connection to `peer` with our `opts.tracks`. Returns once the OFFER is
    /// sent; [`MediaConnection::connected`] waits for the answer and ICE/DTLS.
    pub async fn call(
        &self,
        peer: &str,
        opts: MediaOptions,
    ) -> Result<MediaConnection, TransportError> {
        let (reply, rx) = oneshot::channel();
        self.cmd
            .send(Command::Call {
                peer: peer.into(),
                opts,
                reply,
            })
            .map_err(|_| TransportError::Closed)?;
        rx.await.map_err(|_| TransportError::Closed)?
    }

    /// From now on, incoming media offers that pass admission arrive on the returned receiver
    /// (at most `queue` undecided at once; more are refused). Without a subscriber they are
    /// refused. A later call replaces the subscriber.
    pub fn media_offers(&self, queue: usize) -> mpsc::Receiver<IncomingMedia> {
        let (tx, rx) = mpsc::channel(queue.max(1));
        let _ = self.cmd.send(Command::MediaOffers(tx));
        rx
    }

    /// Closes every connection and stops the transport.
    pub async fn shutdown(&self) {
        let (done, rx) = oneshot::channel();
        if self.cmd.send(Command::Shutdown { done }).is_ok() {
            let _ = rx.await;
        }
    }
}

struct Task {
    signaling: SignalingHandle,
    reg: RegId,
    local_id: String,
    /// Random name of this transport's run, sent in native offers (see [`INSTANCE_KEY`]).
    ///
    /// [`INSTANCE_KEY`]: super::options::INSTANCE_KEY
    instance: String,
    config: TransportConfig,
    /// Slots and deadlines of pending incoming connections.
    admission: Admission,
    entries: HashMap<String, Entry>,
    incoming: mpsc::UnboundedSender<DataConnection>,
    pc_tx: mpsc::UnboundedSender<PcEvent>,
    reader_tx: mpsc::UnboundedSender<ReaderEvent>,
    closed_tx: mpsc::UnboundedSender<String>,
    /// Our own command queue, for the decisions of [`IncomingMedia`] handles.
    cmd: mpsc::WeakUnboundedSender<Command>,
    /// Where incoming media offers go; `None`: they are refused.
    media_offers: Option<mpsc::Sender<IncomingMedia>>,
    /// Admitted media offers waiting for the application's decision.
    pending_media: HashMap<String, media_neg::PendingMedia>,
}

fn webrtc_err(e: impl std::fmt::Display) -> TransportError {
    TransportError::WebRtc(e.to_string())
}

impl Task {
    async fn run(
        mut self,
        mut cmd_rx: mpsc::UnboundedReceiver<Command>,
        mut sig_rx: mpsc::UnboundedReceiver<SignalingEvent>,
        mut pc_rx: mpsc::UnboundedReceiver<PcEvent>,
        mut reader_rx: mpsc::UnboundedReceiver<ReaderEvent>,
        mut closed_rx: mpsc::UnboundedReceiver<String>,
    ) {
        let (timeout_tx, mut timeout_rx) = mpsc::unbounded_channel::<String>();
        loop {
            let deadline = self.admission.next_deadline();
            let expiry = async move {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                cmd = cmd_rx.recv() => match cmd {
                    Some(Command::Connect { peer, opts, reply }) => {
                        match self.connect(peer, opts, reply).await {
                            Ok(cid) => {
                                let (tx, t) = (timeout_tx.clone(), self.config.connect_timeout);
                                tokio::spawn(async move {
                                    tokio::time::sleep(t).await;
                                    let _ = tx.send(cid);
                                });
                            }
                            Err((reply, e)) => { let _ = reply.send(Err(e)); }
                        }
                    }
                    Some(Command::Call { peer, opts, reply }) => {
                        let _ = reply.send(self.call(peer, opts).await);
                    }
                    Some(Command::AcceptMedia { cid, tracks, certificate, h264_only, reply }) => {
                        let answer = self.accept_media(&cid, tracks, certificate, h264_only).await;
                        let _ = reply.send(answer);
                    }
                    Some(Command::RefuseMedia { cid }) => self.refuse_media(&cid),
                    Some(Command::MediaOffers(tx)) => self.media_offers = Some(tx),
                    Some(Command::Shutdown { done }) => {
                        self.close_all().await;
                        let _ = done.send(());
                        return;
                    }
                    None => { self.close_all().await; return; }
                },
                Some(ev) = sig_rx.recv() => {
                    if let SignalingEvent::Message { reg, msg } = ev && reg == self.reg {
                        self.signal(msg).await;
                    }
                }
                Some(ev) = pc_rx.recv() => self.pc_event(ev).await,
                Some(ev) = reader_rx.recv() => match ev {
                    ReaderEvent::Open(cid) => self.opened(&cid),
                    ReaderEvent::Closed(cid) => self.gone(&cid),
                    ReaderEvent::Authenticated(cid) => {
                        self.admission.release(&cid);
                    }
                },
                () = expiry => {
                    for cid in self.admission.expired(Instant::now()) {
                        tracing::debug!(%cid, "incoming connection not ready in time; closed");
                        self.fail(&cid, TransportError::Closed).await;
                    }
                }
                Some(cid) = closed_rx.recv() => self.gone(&cid),
                Some(cid) = timeout_rx.recv() => {
                    // Also an offer of ours that lost a glare and kept no caller (see `accept_offer`).
                    let timed_out = self.entries.get(&cid).filter(|e| e.reply.is_some() || (e.outgoing && e.conn.is_some())).map(|e| {
                        let stage = format!(
                            "remote description: {}, remote candidates: {}, state: {}, channel: {}",
                            e.remote_set, e.remote_candidates, e.state,
                            if e.conn.is_some() || !e.outgoing { "pending" } else { "open" }
                        );
                        (TransportError::Timeout { peer: e.info.peer.clone(), stage }, e.reply.is_some())
                    });
                    if let Some((err, waited)) = timed_out {
                        if waited {
                            tracing::warn!(%cid, error = %err, "connect timed out");
                        } else {
                            tracing::debug!(%cid, "offer that lost a glare closed unanswered");
                        }
                        self.fail(&cid, err).await;
                    }
                }
            }
        }
    }

    async fn send_signal(&self, kind: MessageType, dst: &str, payload: Value) {
        if let Err(e) = self
            .signaling
            .send(self.reg, Message::to(kind, dst, Some(payload)))
            .await
        {
            tracing::debug!(error = %e, ?kind, "could not signal");
        }
    }

    async fn connect(
        &mut self,
        peer: String,
        opts: ConnectOptions,
        reply: Reply,
    ) -> Result<String, (Reply, TransportError)> {
        if opts.serialization == Serialization::BinaryUtf8 {
            return Err((
                reply,
                TransportError::Protocol("binary-utf8 is not supported".into()),
            ));
        }
        let cid = new_connection_id();
        let native = is_native(&opts.metadata);
        let pc =
            match new_peer_connection(&self.config, &cid, self.pc_tx.clone(), None, native).await {
                Ok(pc) => pc,
                Err(e) => return Err((reply, webrtc_err(e))),
            };
        let label = opts.label.clone().unwrap_or_else(|| cid.clone());
        let init = RTCDataChannelInit {
            ordered: opts.reliable,
            ..Default::default()
        };
        let setup = async {
            let dc = pc.create_data_channel(&label, Some(init)).await?;
            let offer = pc.create_offer(None).await?;
            pc.set_local_description(offer.clone()).await?;
            webrtc::error::Result::Ok((dc, offer))
        };
        let (dc, offer) = match setup.await {
            Ok(x) => x,
            Err(e) => {
                let _ = pc.close().await;
                return Err((reply, webrtc_err(e)));
            }
        };
        let metadata = with_instance(opts.metadata, &self.instance);
        let info = ConnectionInfo {
            peer: peer.clone(),
            connection_id: cid.clone(),
            serialization: opts.serialization,
            reliable: opts.reliable,
            metadata: metadata.clone(),
            local_dtls: dtls_fingerprint(&offer.sdp),
            outgoing: true,
        };
        let payload = OfferPayload {
            sdp: Sdp {
                kind: "offer".into(),
                sdp: offer.sdp.clone(),
            },
            kind: ConnectionKind::Data,
            connection_id: cid.clone(),
            metadata,
            label: Some(label),
            reliable: Some(opts.reliable),
            serialization: Some(opts.serialization),
        };
        let conn = self.attach(info.clone(), pc.clone(), dc);
        let mut entry = Entry::new(info, pc, &offer.sdp, true);
        entry.conn = Some(conn);
        entry.reply = Some(reply);
        let payload = serde_json::to_value(payload).expect("offer json");
        entry.sent.push((MessageType::Offer, payload.clone()));
        self.entries.insert(cid.clone(), entry);
        self.send_signal(MessageType::Offer, &peer, payload).await;
        Ok(cid)
    }

    fn attach(
        &self,
        info: ConnectionInfo,
        pc: Arc<dyn PeerConnection>,
        dc: Arc<dyn DataChannel>,
    ) -> DataConnection {
        let pre_auth = self
            .config
            .require_auth
            .then_some(self.config.pre_auth_max_message);
        attach(
            info,
            pc,
            dc,
            self.config.inbound_queue,
            pre_auth,
            self.reader_tx.clone(),
            self.closed_tx.clone(),
        )
    }

    async fn pc_event(&mut self, ev: PcEvent) {
        match ev.kind {
            PcEventKind::Candidate(c) => {
                let Some(e) = self.entries.get(&ev.cid) else {
                    return;
                };
                let payload = CandidatePayload {
                    candidate: CandidateInit {
                        candidate: c.candidate,
                        sdp_mid: e.mid.clone().or(Some("0".into())),
                        sdp_m_line_index: c.sdp_mline_index.or(Some(0)),
                        username_fragment: c.username_fragment,
                    },
                    kind: e.kind,
                    connection_id: ev.cid.clone(),
                };
                let peer = e.info.peer.clone();
                let payload = serde_json::to_value(payload).expect("candidate json");
                if let Some(e) = self.entries.get_mut(&ev.cid)
                    && e.outgoing
                    && !e.remote_set
                {
                    e.sent.push((MessageType::Candidate, payload.clone()));
                }
                self.send_signal(MessageType::Candidate, &peer, payload)
                    .await;
            }
            PcEventKind::DataChannel(dc) => {
                // The answerer's channel: it is open when it is announced.
                let Some(e) = self.entries.get_mut(&ev.cid) else {
                    return;
                };
                if let Some(m) = &e.media {
                    m.set_channel(dc); // peerjs's hang-up channel
                    return;
                }
                if e.outgoing || e.conn.is_some() {
                    return;
                }
                let Some(pc) = e.pc.clone() else { return };
                let info = e.info.clone();
                let remote_dtls = e.remote_dtls.take();
                let conn = self.attach(info, pc, dc);
                if let Some(fp) = remote_dtls {
                    conn.set_remote_dtls(fp);
                }
                self.entries.get_mut(&ev.cid).expect("entry").conn = Some(conn);
                self.opened(&ev.cid);
            }
            PcEventKind::Track(track) => self.media_track(&ev.cid, track),
            PcEventKind::State(state) => {
                if let Some(e) = self.entries.get_mut(&ev.cid) {
                    e.state = state;
                }
                self.media_state(&ev.cid, state);
                if !matches!(
                    state,
                    RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed
                ) {
                    return;
                }
                // Open connections too: when ICE fails (peer gone without a goodbye) webrtc-rs
                // does not end the channel's event stream by itself.
                self.fail(
                    &ev.cid,
                    TransportError::WebRtc(format!("connection {state}")),
                )
                .await;
            }
        }
    }

    /// The channel of `cid` is open: hand the connection to whoever waits for it.
    fn opened(&mut self, cid: &str) {
        let Some(e) = self.entries.get_mut(cid) else {
            return;
        };
        let Some(conn) = e.conn.take() else { return };
        e.pc = None; // the connection handle owns it now
        if !self.config.require_auth {
            self.admission.release(cid);
        }
        match e.reply.take() {
            Some(reply) => {
                if let Err(Ok(conn)) = reply.send(Ok(conn)) {
                    // The caller gave up; the connection is still useful to the peer's side.
                    let _ = self.incoming.send(conn);
                }
            }
            None => {
                let _ = self.incoming.send(conn);
            }
        }
    }

    /// Ends a connection, pending or open: a waiting caller gets `err`, and the peer
    /// connection is closed, which also ends an open connection's reader and so its `recv()`.
    async fn fail(&mut self, cid: &str, err: TransportError) {
        self.admission.release(cid);
        self.pending_media.remove(cid);
        let Some(mut e) = self.entries.remove(cid) else {
            return;
        };
        if let Some(m) = e.media.take() {
            let _ = m.state.send(super::media::MediaState::Closed);
        }
        if let Some(reply) = e.reply.take() {
            let _ = reply.send(Err(err));
        }
        drop(e.conn.take());
        if let Some(pc) = e.pc.take().or_else(|| e.weak_pc.upgrade()) {
            let _ = pc.close().await;
        }
    }

    /// A connection ended (closed by either side, or its last handle dropped). PeerJS clients
    /// never send LEAVE for one connection (LEAVE drops every connection to the peer), and
    /// neither do we: the DTLS/SCTP close tells the peer.
    fn gone(&mut self, cid: &str) {
        self.admission.release(cid);
        let Some(e) = self.entries.remove(cid) else {
            return;
        };
        if let Some(m) = e.media {
            let _ = m.state.send(super::media::MediaState::Closed);
        }
        if let Some(reply) = e.reply {
            let _ = reply.send(Err(TransportError::Closed));
        }
    }

    async fn close_peer(&mut self, peer: &str) {
        let cids: Vec<String> = self
            .entries
            .iter()
            .filter(|(_, e)| e.info.peer == peer)
            .map(|(c, _)| c.clone())
            .collect();
        for cid in cids {
            self.fail(&cid, TransportError::Closed).await;
        }
    }

    async fn close_all(&mut self) {
        let cids: Vec<String> = self.entries.keys().cloned().collect();
        for cid in cids {
            self.fail(&cid, TransportError::Closed).await;
        }
    }
}
