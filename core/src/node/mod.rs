//! The node facade: one API for every shell (UniFFI bindings, CLI). A [`Node`] opens a profile,
//! registers its persistent PeerJS ID at a signaling server, runs the data-connection transport,
//! keeps one open connection per peer and reports what happens as [`NodeEvent`]s.
//!
//! Events reach every subscriber in order through unbounded channels; they are sent without
//! awaiting anything, so a slow subscriber never stalls the node.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use tokio::sync::{mpsc, oneshot};
use tokio::task::AbortHandle;

use crate::discovery::namespace::NsConfig;
use crate::discovery::presence::VerifyCache;
use crate::identity::{Fingerprint, Identity};
use crate::signaling::client::{ClaimResult, RegId, ServerUrl, SignalingConfig, SignalingEvent};
use crate::signaling::driver::SignalingHandle;
use crate::signaling::limiter::LimiterConfig;
use crate::store::{Profile, ProfileError, Store, StoreError};
use crate::transport::{
    ConnectOptions, DataConnection, DataSender, Payload, Transport, TransportConfig, TransportError,
};

pub use crate::signaling::client::SignalingState;

mod discovery;
pub mod platform;
#[cfg(test)]
mod tests;

pub use discovery::{DiscoveredPeer, LOCAL_NETWORK, NamespaceRole, slugify};
pub use platform::Platform;
use platform::{LocationProvider, Notification, NotificationCategory, Notifier};

/// Settings key of the user's display name.
pub const DISPLAY_NAME_KEY: &str = "display_name";

/// What a node needs to start.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// The profile directory (database and, on desktop, the identity key file).
    pub profile_dir: PathBuf,
    /// PeerJS signaling server, e.g. `ws://127.0.0.1:9000/?key=peerjs`.
    pub signaling_url: String,
    /// ICE servers and candidate policy for data connections.
    pub transport: TransportConfig,
    /// If set, stored as the display name at start; otherwise the stored one is used.
    pub display_name: Option<String>,
    /// The phone's keystore, notifier and location provider.
    pub platform: Platform,
    /// Namespace timings and limits.
    pub discovery: NsConfig,
}

/// Who this node is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeIdentity {
    /// SHA-256 fingerprint of the identity key, 64 lowercase hex characters.
    pub fingerprint: String,
    /// Short form of the fingerprint for people to compare.
    pub short: String,
    /// The persistent PeerJS ID.
    pub peer_id: String,
    /// The user's chosen name, if any.
    pub display_name: Option<String>,
}

/// Something that happened at the node, in the order it happened.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeEvent {
    /// The registration of the persistent ID changed state.
    SignalingState(SignalingState),
    /// The first open connection to `peer` exists (made by either side).
    PeerConnected {
        /// The remote PeerJS ID.
        peer: String,
    },
    /// The last connection to `peer` closed.
    PeerDisconnected {
        /// The remote PeerJS ID.
        peer: String,
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
    /// `peer` sent a message (a JSON message from a browser peer arrives as its JSON text).
    DataReceived {
        /// The remote PeerJS ID.
        peer: String,
        /// The message.
        data: Vec<u8>,
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
    /// The node has been stopped.
    #[error("node stopped")]
    Stopped,
}

type ConnectWaiter = oneshot::Sender<Result<(), TransportError>>;

/// A running node. Dropping it stops its background tasks; call [`Node::stop`] for an orderly
/// shutdown of the connections and signaling.
pub struct Node {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    identity: Arc<Identity>,
    fingerprint: Fingerprint,
    peer_id: String,
    signaling: SignalingHandle,
    transport: Transport,
    display_name: Mutex<Option<String>>,
    state: Mutex<SignalingState>,
    /// Open connections by peer (senders only: each connection's reader task owns it).
    conns: Mutex<HashMap<String, Vec<DataSender>>>,
    /// Connects in progress by peer, with everyone waiting for them.
    pending: Mutex<HashMap<String, Vec<ConnectWaiter>>>,
    /// `None` once stopped.
    subscribers: Mutex<Option<Vec<mpsc::UnboundedSender<NodeEvent>>>>,
    /// Told about messages that no subscriber received (the app's screens are gone).
    notifier: Option<Arc<dyn Notifier>>,
    /// Reports positions in stadium mode.
    location: Option<Arc<dyn LocationProvider>>,
    /// Data-connection settings (for namespace registrations).
    transport_config: TransportConfig,
    /// Namespace timings and limits.
    ns_config: NsConfig,
    /// Verified presence signatures, shared by all namespaces.
    verify_cache: Arc<VerifyCache>,
    /// Joined namespaces and stadium mode.
    discovery: Mutex<discovery::DiscoveryState>,
    /// The app is in the background (slower heartbeats).
    background: std::sync::atomic::AtomicBool,
    tasks: Mutex<Vec<AbortHandle>>,
}

/// Locks a mutex; no code here panics while holding one, so a poisoned lock is still sound.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

impl Node {
    /// Opens the profile (with the platform keystore, or the desktop key file), registers the
    /// persistent ID and starts the transport. Must run inside a tokio runtime.
    pub async fn start(config: NodeConfig) -> Result<Node, NodeError> {
        let server = ServerUrl::parse(&config.signaling_url)
            .map_err(|e| NodeError::InvalidInput(e.to_string()))?;
        let dir = config.profile_dir.clone();
        let keystore = config.platform.keystore.clone();
        let profile = tokio::task::spawn_blocking(move || match keystore {
            Some(ks) => Profile::open(&dir, ks.as_ref()),
            None => Profile::open_desktop(&dir),
        })
        .await
        .map_err(|e| NodeError::Store(StoreError::Task(e)))??;
        Self::start_with_profile(profile, server, config).await
    }

    async fn start_with_profile(
        profile: Profile,
        server: ServerUrl,
        config: NodeConfig,
    ) -> Result<Node, NodeError> {
        let store = profile.store().clone();
        let identity = Arc::new(profile.identity().clone());
        let peer_id = profile.identity().peer_id().to_owned();
        let fingerprint = profile.identity().fingerprint();
        let label = server.label();
        let display_name = match config.display_name {
            Some(name) => {
                let (n, s) = (name.clone(), store.clone());
                s.call(move |c| crate::store::settings::set_setting(c, DISPLAY_NAME_KEY, &n))
                    .await?;
                Some(name)
            }
            None => {
                store
                    .call(|c| crate::store::settings::get_setting(c, DISPLAY_NAME_KEY))
                    .await?
            }
        };
        let token = {
            let id = peer_id.clone();
            store
                .call(move |c| crate::store::tokens::peerjs_token_or_create(c, &label, &id))
                .await?
        };

        let mut sc = SignalingConfig::new(server.clone());
        if is_loopback_host(&server.host) {
            sc.limiter = LimiterConfig::local();
        }
        let signaling = SignalingHandle::spawn(sc);
        let sig_err =
            |e: crate::signaling::driver::DriverError| NodeError::Signaling(e.to_string());
        let mut sig_events = signaling.subscribe().map_err(sig_err)?;
        // The transport listens before the server answers: an offer the server held for us
        // while we were away arrives right after OPEN.
        let reg = signaling.register(&peer_id, &token).map_err(sig_err)?;
        let (transport, incoming) = match Transport::start(
            signaling.clone(),
            reg,
            peer_id.clone(),
            config.transport.clone(),
        ) {
            Ok(t) => t,
            Err(e) => {
                signaling.shutdown().await;
                return Err(e.into());
            }
        };
        let claimed = loop {
            match sig_events.recv().await {
                Some(SignalingEvent::Claim { reg: r, result, .. }) if r == reg => break result,
                Some(_) => {}
                None => break ClaimResult::Error("signaling stopped".into()),
            }
        };
        if claimed != ClaimResult::Claimed {
            transport.shutdown().await;
            signaling.shutdown().await;
            return Err(NodeError::Signaling(format!(
                "could not claim {peer_id}: {claimed:?}"
            )));
        }
        // Events up to the claim are history: the current state is asked for below.
        while sig_events.try_recv().is_ok() {}
        let state = signaling
            .state(reg)
            .await
            .map_err(sig_err)?
            .unwrap_or(SignalingState::Connected);

        let inner = Arc::new(Inner {
            store,
            identity,
            fingerprint,
            peer_id,
            signaling,
            transport,
            display_name: Mutex::new(display_name),
            state: Mutex::new(state),
            conns: Mutex::new(HashMap::new()),
            pending: Mutex::new(HashMap::new()),
            subscribers: Mutex::new(Some(vec![])),
            notifier: config.platform.notifier,
            location: config.platform.location,
            transport_config: config.transport,
            ns_config: config.discovery,
            verify_cache: Arc::new(VerifyCache::default()),
            discovery: Mutex::new(discovery::DiscoveryState::default()),
            background: std::sync::atomic::AtomicBool::new(false),
            tasks: Mutex::new(vec![]),
        });
        let weak = Arc::downgrade(&inner);
        let watch = tokio::spawn(watch_signaling(weak.clone(), reg, sig_events));
        let accept = tokio::spawn(accept(weak, incoming));
        lock(&inner.tasks).extend([watch.abort_handle(), accept.abort_handle()]);
        tracing::info!(peer_id = %inner.peer_id, "node started");
        let node = Node { inner };
        node.restore_namespaces().await?;
        Ok(node)
    }

    /// Fingerprint, persistent ID and display name.
    pub fn identity(&self) -> NodeIdentity {
        NodeIdentity {
            fingerprint: self.inner.fingerprint.to_hex(),
            short: self.inner.fingerprint.short(),
            peer_id: self.inner.peer_id.clone(),
            display_name: lock(&self.inner.display_name).clone(),
        }
    }

    /// The persistent PeerJS ID.
    pub fn peer_id(&self) -> &str {
        &self.inner.peer_id
    }

    /// Changes and stores the display name.
    pub async fn set_display_name(&self, name: &str) -> Result<(), NodeError> {
        let name = name.trim().to_owned();
        if name.is_empty() || name.chars().count() > 64 {
            return Err(NodeError::InvalidInput(
                "display name must have 1 to 64 characters".into(),
            ));
        }
        let n = name.clone();
        self.inner
            .store
            .call(move |c| crate::store::settings::set_setting(c, DISPLAY_NAME_KEY, &n))
            .await?;
        *lock(&self.inner.display_name) = Some(name);
        Ok(())
    }

    /// The current state of the persistent ID's registration.
    pub fn signaling_state(&self) -> SignalingState {
        lock(&self.inner.state).clone()
    }

    /// Opens a data connection to `peer`, or returns at once if one is open. Concurrent calls
    /// for the same peer share one attempt; cancelling a call does not cancel the attempt.
    pub async fn connect(&self, peer: &str) -> Result<(), NodeError> {
        if peer.is_empty() || peer.len() > 64 || peer == self.inner.peer_id {
            return Err(NodeError::InvalidInput(format!("bad peer id {peer:?}")));
        }
        if lock(&self.inner.subscribers).is_none() {
            return Err(NodeError::Stopped);
        }
        if lock(&self.inner.conns).contains_key(peer) {
            return Ok(());
        }
        let (tx, rx) = oneshot::channel();
        let start = match lock(&self.inner.pending).entry(peer.to_owned()) {
            Entry::Occupied(mut e) => {
                e.get_mut().push(tx);
                false
            }
            Entry::Vacant(e) => {
                e.insert(vec![tx]);
                true
            }
        };
        if start {
            let (inner, peer) = (self.inner.clone(), peer.to_owned());
            let task = tokio::spawn(async move {
                let result = inner
                    .transport
                    .connect(&peer, ConnectOptions::native())
                    .await
                    .map(|conn| Inner::adopt(&inner, conn));
                let waiters = lock(&inner.pending).remove(&peer).unwrap_or_default();
                for w in waiters {
                    let _ = w.send(result.clone());
                }
            });
            lock(&self.inner.tasks).push(task.abort_handle());
        }
        match rx.await {
            Ok(result) => result.map_err(NodeError::from),
            Err(_) => Err(NodeError::Stopped),
        }
    }

    /// Sends `data` to `peer` over the open connection.
    pub async fn send(&self, peer: &str, data: Vec<u8>) -> Result<(), NodeError> {
        let sender = lock(&self.inner.conns)
            .get(peer)
            .and_then(|v| v.last().cloned())
            .ok_or_else(|| NodeError::NotConnected(peer.to_owned()))?;
        sender.send(&Payload::Bytes(data)).await?;
        Ok(())
    }

    /// Whether a connection to `peer` is open.
    pub fn is_connected(&self, peer: &str) -> bool {
        lock(&self.inner.conns).contains_key(peer)
    }

    /// The platform's network changed (`online` = a network is usable).
    pub fn network_changed(&self, online: bool) -> Result<(), NodeError> {
        self.inner
            .signaling
            .network_changed(online)
            .map_err(|_| NodeError::Stopped)?;
        if online {
            self.recheck_local_network();
        }
        Ok(())
    }

    /// Events from now on, in order. The receiver ends when the node stops.
    pub fn subscribe(&self) -> mpsc::UnboundedReceiver<NodeEvent> {
        let (tx, rx) = mpsc::unbounded_channel();
        if let Some(subs) = lock(&self.inner.subscribers).as_mut() {
            subs.push(tx);
        }
        rx
    }

    /// Closes every connection and the signaling sockets; ends every subscription. Idempotent.
    pub async fn stop(&self) {
        self.leave_all_namespaces().await;
        lock(&self.inner.subscribers).take();
        self.inner.abort_tasks();
        let senders: Vec<DataSender> = lock(&self.inner.conns)
            .drain()
            .flat_map(|(_, v)| v)
            .collect();
        for s in senders {
            s.close().await;
        }
        lock(&self.inner.pending).clear();
        self.inner.transport.shutdown().await;
        self.inner.signaling.shutdown().await;
        tracing::info!(peer_id = %self.inner.peer_id, "node stopped");
    }
}

impl Inner {
    /// Sends `event` to every subscriber; `false` if there was none.
    fn emit(&self, event: NodeEvent) -> bool {
        match lock(&self.subscribers).as_mut() {
            Some(subs) => {
                subs.retain(|tx| tx.send(event.clone()).is_ok());
                !subs.is_empty()
            }
            None => false,
        }
    }

    /// Delivers a received message, or posts a notification when no subscriber listens.
    fn received(&self, peer: &str, data: Vec<u8>) {
        let body = platform::message_preview(&data);
        let event = NodeEvent::DataReceived {
            peer: peer.to_owned(),
            data,
        };
        if !self.emit(event)
            && let Some(notifier) = &self.notifier
        {
            notifier.notify(Notification {
                category: NotificationCategory::Message,
                title: peer.to_owned(),
                body,
                conversation: Some(peer.to_owned()),
            });
        }
    }

    fn abort_tasks(&self) {
        for t in lock(&self.tasks).drain(..) {
            t.abort();
        }
    }

    /// Takes an open connection into the table and starts reading from it.
    fn adopt(this: &Arc<Inner>, mut conn: DataConnection) {
        let peer = conn.peer().to_owned();
        let cid = conn.info().connection_id.clone();
        {
            let mut conns = lock(&this.conns);
            let list = conns.entry(peer.clone()).or_default();
            list.push(conn.sender());
            if list.len() == 1 {
                // Under the table's lock, so Connected/Disconnected of a peer never reorder.
                this.emit(NodeEvent::PeerConnected { peer: peer.clone() });
            }
        }
        let weak = Arc::downgrade(this);
        let mut tasks = lock(&this.tasks);
        tasks.retain(|t| !t.is_finished());
        let reader = tokio::spawn(async move {
            while let Some(msg) = conn.recv().await {
                let Some(inner) = weak.upgrade() else { return };
                match msg {
                    Ok(Payload::Bytes(data)) => inner.received(&peer, data),
                    Ok(Payload::Json(v)) => inner.received(&peer, v.to_string().into_bytes()),
                    Err(e) => tracing::debug!(%peer, error = %e, "dropped a bad frame"),
                }
            }
            if let Some(inner) = weak.upgrade() {
                inner.forget(&peer, &cid);
            }
        });
        tasks.push(reader.abort_handle());
    }

    /// A connection ended: drop it from the table.
    fn forget(&self, peer: &str, cid: &str) {
        let mut conns = lock(&self.conns);
        if let Some(list) = conns.get_mut(peer) {
            list.retain(|s| s.info().connection_id != cid);
            if list.is_empty() {
                conns.remove(peer);
                self.emit(NodeEvent::PeerDisconnected { peer: peer.into() });
            }
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.abort_tasks();
    }
}

async fn watch_signaling(
    inner: Weak<Inner>,
    reg: RegId,
    mut events: mpsc::UnboundedReceiver<SignalingEvent>,
) {
    while let Some(ev) = events.recv().await {
        if let SignalingEvent::State { reg: r, state } = ev
            && r == reg
        {
            let Some(inner) = inner.upgrade() else { return };
            *lock(&inner.state) = state.clone();
            inner.emit(NodeEvent::SignalingState(state));
        }
    }
}

async fn accept(inner: Weak<Inner>, mut incoming: mpsc::UnboundedReceiver<DataConnection>) {
    while let Some(conn) = incoming.recv().await {
        let Some(inner) = inner.upgrade() else { return };
        Inner::adopt(&inner, conn);
    }
}
