//! Links: data connections after the session handshake. Every connection of the persistent ID
//! runs the Noise handshake first (`crate::session`); a blocked key is dropped right there,
//! before anything is stored. An established link has one writer task (encrypts frames in
//! order) and one reader task (decrypts, decodes, hands batches of frames to the chat logic).

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use futures_util::FutureExt;
use tokio::sync::{Notify, Semaphore, mpsc, watch};

use super::{Inner, NodeError, NodeEvent, lock, unix_ms};
use crate::chat::wire::{ErrorCode, Frame};
use crate::contacts::{self, Trust};
use crate::identity::Fingerprint;
use crate::session::{Handshake, Session, SessionError, WireVersion};
use crate::transport::{DataConnection, DataSender, Payload};

/// How long the handshake may take once the connection is open. An incoming connection also
/// has the transport's deadline from its OFFER (`TransportConfig::accept_timeout`): the
/// persistent ID's transport runs with `require_auth`, so it closes a connection that is not
/// [authenticated](DataConnection::authenticated) by then.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a dialer that found the peer incompatible waits for the peer to read our last
/// handshake message (and close) before closing itself.
const INCOMPATIBLE_GRACE: Duration = Duration::from_secs(2);
/// Frames queued for the writer before senders wait.
const WRITE_QUEUE: usize = 128;
/// Most frames handed to the chat logic at once.
const READ_BATCH: usize = 256;
/// Bad frames tolerated from a link before it is closed.
const MAX_STRIKES: u32 = 8;

/// An authenticated connection to one identity.
pub(crate) struct Link {
    /// The peer's verified identity.
    pub fp: Fingerprint,
    /// Its identity key.
    pub key: [u8; 32],
    /// The remote PeerJS ID of this connection.
    pub peer: String,
    /// The features both sides' wire versions share (decision 0009).
    pub features: u64,
    /// The session's handshake hash (RPC signatures are bound to it, decision 0014).
    pub binding: [u8; 32],
    /// The peer's display name from its hello (`None` until the hello arrives).
    name: watch::Sender<Option<String>>,
    pub(super) cid: String,
    out: mpsc::Sender<Vec<u8>>,
    sender: DataSender,
    /// Where the outbox pump continues (0 = from the first unacknowledged op).
    pub resend_from: AtomicU64,
    /// Wakes the outbox pump.
    pub wake: Notify,
    /// The pump of this link is running.
    pub pumping: AtomicBool,
    /// What came before the peer's accept of our request (`Inner::on_frames`).
    pub early: Mutex<Early>,
    /// Permits for the batches of call actions this peer's frames caused that wait for the
    /// call worker ([`CALL_BATCHES`]): a peer flooding call frames waits in its own reader,
    /// not in everyone's.
    pub call_batches: Arc<Semaphore>,
    strikes: AtomicU32,
    closed: AtomicBool,
    /// When a frame last went out or came in, Unix ms (links idle in the background close:
    /// `idle_links`).
    last_used: AtomicU64,
    /// Frames that came in are being handled (an RPC request being served may take long):
    /// such a link is in use, whatever `last_used` says.
    handling: AtomicBool,
    /// Uploads the peer opened on this session (decision 0014); they end with it.
    pub uploads: Mutex<crate::rpc::upload::Uploads>,
}

/// Batches of call actions one peer's frames may have waiting for the call worker.
const CALL_BATCHES: usize = 8;

/// Frames of a peer whose accept of our request was on its way, kept for when it is stored.
#[derive(Debug, Default)]
pub struct Early {
    /// Ops were let go: they are asked for again.
    pub ops: bool,
    /// Its presence secret, kept then.
    pub secret: Option<[u8; 32]>,
}

impl Link {
    /// The name the peer's hello gave (empty before it arrives).
    pub fn name(&self) -> String {
        self.name.borrow().clone().unwrap_or_default()
    }

    /// Records the name from the peer's hello.
    pub fn set_name(&self, name: String) {
        self.name.send_replace(Some(name));
    }

    /// The name from the peer's hello, waiting for it at most `wait`.
    pub async fn hello_name(&self, wait: Duration) -> String {
        let mut rx = self.name.subscribe();
        let _ = tokio::time::timeout(wait, rx.wait_for(Option::is_some)).await;
        self.name()
    }

    /// Queues `frame` for the writer; waits while the queue is full.
    pub async fn send(&self, frame: &Frame) -> Result<(), NodeError> {
        self.touch();
        self.out
            .send(frame.encode())
            .await
            .map_err(|_| NodeError::NotConnected(self.peer.clone()))
    }

    /// Queues raw plaintext (tests send malformed frames with it).
    #[cfg(test)]
    pub async fn send_plain(&self, plain: Vec<u8>) {
        let _ = self.out.send(plain).await;
    }

    /// Records that a frame went out or came in now.
    fn touch(&self) {
        self.last_used.store(unix_ms(), Ordering::Relaxed);
    }

    /// When a frame last went out or came in, Unix ms.
    pub fn last_used_ms(&self) -> u64 {
        self.last_used.load(Ordering::Relaxed)
    }

    /// Whether frames that came in are being handled now.
    pub fn handling(&self) -> bool {
        self.handling.load(Ordering::SeqCst)
    }

    /// Whether the connection has ended.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst) || self.out.is_closed()
    }

    /// Closes the connection.
    pub async fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.wake.notify_one();
        self.sender.close().await;
    }

    /// Tells the peer it sent something we refuse; closes the link after too many.
    pub async fn refuse(&self, code: ErrorCode, text: &str) {
        tracing::debug!(peer = %self.peer, ?code, text, "refused a frame");
        let _ = self
            .send(&Frame::Error {
                code,
                text: text.to_owned(),
            })
            .await;
        if self.strikes.fetch_add(1, Ordering::SeqCst) + 1 >= MAX_STRIKES {
            tracing::info!(peer = %self.peer, "closing a link after repeated bad frames");
            self.close().await;
        }
    }
}

/// Why a handshake gave no session.
enum HandshakeError {
    /// The peer speaks another major wire version.
    Incompatible {
        fingerprint: Option<Fingerprint>,
        ours: WireVersion,
        theirs: WireVersion,
    },
    /// The connection closed before the handshake finished.
    Closed,
    Failed(String),
}

impl<E: ToString> From<E> for HandshakeError {
    fn from(e: E) -> Self {
        Self::Failed(e.to_string())
    }
}

/// Runs the handshake on a fresh connection: our frames and the peer's, in turn.
async fn handshake(conn: &mut DataConnection, inner: &Inner) -> Result<Session, HandshakeError> {
    let info = conn.info().clone();
    let remote = conn.remote_dtls().to_owned();
    let (i_dtls, r_dtls) = if info.outgoing {
        (info.local_dtls.as_str(), remote.as_str())
    } else {
        (remote.as_str(), info.local_dtls.as_str())
    };
    let hs = if info.outgoing {
        Handshake::initiator(&inner.static_key, i_dtls, r_dtls)
    } else {
        Handshake::responder(&inner.static_key, i_dtls, r_dtls)
    };
    let mut hs = hs?;
    while !hs.is_done() {
        if hs.wants_write() {
            conn.send(&Payload::Bytes(hs.write()?)).await?;
        } else {
            match conn.recv().await {
                Some(Ok(Payload::Bytes(b))) => hs.read(&b)?,
                Some(Ok(Payload::Json(_))) => {
                    return Err("a JSON frame during the handshake".into());
                }
                Some(Err(e)) => return Err(e.into()),
                None => return Err(HandshakeError::Closed),
            }
        }
    }
    let fingerprint = hs.remote_fingerprint();
    hs.finish().map_err(|e| match e {
        SessionError::Incompatible { ours, theirs } => HandshakeError::Incompatible {
            fingerprint,
            ours,
            theirs,
        },
        e => e.into(),
    })
}

/// Why a connection did not become a link.
#[derive(Debug, Clone)]
pub(crate) enum EstablishError {
    /// The session handshake did not finish in time (heavy loss, a stalled peer): another
    /// connection may well succeed.
    TimedOut(String),
    /// The connection closed during the session handshake (a path lost, a peer that gave up):
    /// another may well succeed.
    Closed(String),
    /// Anything else (an incompatible or blocked peer, a bad handshake): another try fails alike.
    Refused(String),
}

impl std::fmt::Display for EstablishError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TimedOut(what) => write!(f, "{what} timed out"),
            Self::Closed(why) | Self::Refused(why) => f.write_str(why),
        }
    }
}

/// Authenticates `conn` and, unless the key is blocked, starts its link. The handshake and
/// the trust check happen before anything about the peer is stored.
pub(crate) async fn establish(
    inner: &Arc<Inner>,
    mut conn: DataConnection,
) -> Result<Arc<Link>, EstablishError> {
    let session = match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake(&mut conn, inner)).await {
        Ok(Ok(s)) => s,
        Ok(Err(HandshakeError::Incompatible {
            fingerprint,
            ours,
            theirs,
        })) => {
            let peer = conn.peer().to_owned();
            inner.emit(NodeEvent::IncompatiblePeer {
                peer: peer.clone(),
                fingerprint: fingerprint.map(|f| f.to_hex()),
                ours,
                theirs,
            });
            // Our last message may still be in flight: let the peer read it and close first.
            if conn.info().outgoing {
                let drained = async { while conn.recv().await.is_some() {} };
                let _ = tokio::time::timeout(INCOMPATIBLE_GRACE, drained).await;
            }
            conn.close().await;
            return Err(EstablishError::Refused(format!(
                "{peer} speaks wire version {theirs}, incompatible with our {ours}"
            )));
        }
        Ok(Err(HandshakeError::Closed)) => {
            conn.close().await;
            return Err(EstablishError::Closed(format!(
                "{}: closed during the handshake",
                conn.peer()
            )));
        }
        Ok(Err(HandshakeError::Failed(e))) => {
            conn.close().await;
            return Err(EstablishError::Refused(format!(
                "handshake with {} failed: {e}",
                conn.peer()
            )));
        }
        Err(_) => {
            conn.close().await;
            return Err(EstablishError::TimedOut(format!(
                "handshake with {}",
                conn.peer()
            )));
        }
    };
    let fp = session.remote_fingerprint();
    let key = session.remote_key().to_bytes();
    let features = session.features();
    let binding = session.binding();
    let peer = conn.peer().to_owned();
    let trust = inner
        .db(move |c| contacts::trust_of(c, &fp))
        .await
        .map_err(|e| EstablishError::Refused(e.to_string()))?;
    if trust == Some(Trust::Blocked) {
        conn.close().await;
        return Err(EstablishError::Refused(format!("{peer} is blocked")));
    }
    // Lifts the pre-handshake message limit and frees the transport's pending slot.
    conn.authenticated();
    let sender = conn.sender();
    let (out_tx, out_rx) = mpsc::channel(WRITE_QUEUE);
    let link = Arc::new(Link {
        fp,
        key,
        peer: peer.clone(),
        features,
        binding,
        name: watch::Sender::new(None),
        cid: conn.info().connection_id.clone(),
        out: out_tx,
        sender: sender.clone(),
        resend_from: AtomicU64::new(0),
        early: Mutex::new(Early::default()),
        call_batches: Arc::new(Semaphore::new(CALL_BATCHES)),
        wake: Notify::new(),
        pumping: AtomicBool::new(false),
        strikes: AtomicU32::new(0),
        closed: AtomicBool::new(false),
        last_used: AtomicU64::new(unix_ms()),
        handling: AtomicBool::new(false),
        uploads: Mutex::default(),
    });
    let session = Arc::new(Mutex::new(session));
    let writer = tokio::spawn(write_loop(session.clone(), sender, out_rx));
    let reader = tokio::spawn(read_loop(
        Arc::downgrade(inner),
        link.clone(),
        session,
        conn,
    ));
    inner.track([writer.abort_handle(), reader.abort_handle()]);
    Inner::link_up(inner, link.clone(), trust).await;
    Ok(link)
}

async fn write_loop(
    session: Arc<Mutex<Session>>,
    sender: DataSender,
    mut frames: mpsc::Receiver<Vec<u8>>,
) {
    while let Some(plain) = frames.recv().await {
        let sealed = lock(&session).encrypt(&plain);
        match sealed {
            Ok(ct) => {
                if sender.send(&Payload::Bytes(ct)).await.is_err() {
                    break;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not encrypt a frame");
                break;
            }
        }
    }
    frames.close();
}

async fn read_loop(
    inner: Weak<Inner>,
    link: Arc<Link>,
    session: Arc<Mutex<Session>>,
    mut conn: DataConnection,
) {
    'outer: while let Some(first) = conn.recv().await {
        let mut raw = vec![first];
        while raw.len() < READ_BATCH {
            match conn.recv().now_or_never() {
                Some(Some(m)) => raw.push(m),
                _ => break,
            }
        }
        let mut frames = Vec::with_capacity(raw.len());
        for msg in raw {
            let Ok(Payload::Bytes(ct)) = msg else {
                tracing::debug!(peer = %link.peer, "dropped a frame that is not bytes");
                continue;
            };
            // A frame that does not decrypt breaks the session for good: close.
            let Ok(plain) = lock(&session).decrypt(&ct) else {
                tracing::info!(peer = %link.peer, "a frame did not decrypt; closing the link");
                break 'outer;
            };
            frames.push(Frame::decode(&plain).map_err(|e| e.to_string()));
        }
        let Some(inner) = inner.upgrade() else { break };
        link.touch();
        link.handling.store(true, Ordering::SeqCst);
        inner.on_frames(&link, frames).await;
        link.handling.store(false, Ordering::SeqCst);
        link.touch();
        if link.is_closed() {
            break;
        }
    }
    link.closed.store(true, Ordering::SeqCst);
    link.wake.notify_one();
    conn.close().await;
    if let Some(inner) = inner.upgrade() {
        inner.link_down(&link).await;
    }
}

impl Inner {
    /// The newest open link to `fp` (the one the outbox uses).
    pub(crate) fn link(&self, fp: &Fingerprint) -> Option<Arc<Link>> {
        lock(&self.links)
            .get(fp)
            .and_then(|v| v.iter().rev().find(|l| !l.is_closed()).cloned())
    }

    /// The newest open link over a connection with `peer`.
    pub(crate) fn link_by_peer(&self, peer: &str) -> Option<Arc<Link>> {
        lock(&self.links)
            .values()
            .flat_map(|v| v.iter().rev())
            .find(|l| l.peer == peer && !l.is_closed())
            .cloned()
    }

    /// The first open link to `peer`, now or when one comes up.
    pub(crate) async fn link_comes_up(&self, peer: &str) -> Arc<Link> {
        let mut up = self.links_up.subscribe();
        loop {
            if let Some(link) = self.link_by_peer(peer) {
                return link;
            }
            if up.changed().await.is_err() {
                return std::future::pending().await;
            }
        }
    }

    /// Takes a new link into the table and greets the peer.
    async fn link_up(this: &Arc<Inner>, link: Arc<Link>, trust: Option<Trust>) {
        let first = {
            let mut links = lock(&this.links);
            let list = links.entry(link.fp).or_default();
            list.push(link.clone());
            let first = list.len() == 1;
            tracing::debug!(peer = %link.peer, cid = %link.cid, first, "link up");
            if first {
                // Under the table's lock, so Connected/Disconnected of a peer never reorder.
                this.emit(NodeEvent::PeerConnected {
                    peer: link.peer.clone(),
                    fingerprint: link.fp.to_hex(),
                });
            }
            first
        };
        // Our name only to those who may see it (see `Inner::name_for`).
        let name = this.name_for(trust);
        let _ = link.send(&Frame::Hello { name }).await;
        Inner::session_started(this, &link, trust, first).await;
        this.links_up.send_modify(|n| *n += 1);
    }

    /// A link ended: drop it from the table.
    async fn link_down(self: &Arc<Self>, link: &Arc<Link>) {
        let (gone, next) = {
            let mut links = lock(&self.links);
            let mut gone = false;
            let mut next = None;
            tracing::debug!(peer = %link.peer, cid = %link.cid, "link down");
            if let Some(list) = links.get_mut(&link.fp) {
                list.retain(|l| l.cid != link.cid);
                if list.is_empty() {
                    links.remove(&link.fp);
                    gone = true;
                    self.emit(NodeEvent::PeerDisconnected {
                        peer: link.peer.clone(),
                        fingerprint: link.fp.to_hex(),
                    });
                } else {
                    next = list.last().cloned();
                }
            }
            (gone, next)
        };
        if gone {
            // Whatever was waiting for this contact is now the redial loop's to resume.
            self.redial_wake.notify_one();
            Inner::call_peer_gone(self, &link.fp);
            self.group_link_gone(&link.fp);
            self.session_ended(link).await;
        } else if let Some(next) = next {
            Inner::start_pump(self, &next);
        }
    }

    /// Every link, for shutdown.
    pub(crate) fn all_links(&self) -> Vec<Arc<Link>> {
        lock(&self.links).drain().flat_map(|(_, v)| v).collect()
    }
}
