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

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::AbortHandle;

use crate::chat::store::{ChatError, Message};
use crate::contacts::ContactError;
use crate::discovery::namespace::NsConfig;
use crate::discovery::presence::VerifyCache;
use crate::identity::{Fingerprint, Identity};
use crate::session::StaticKey;
pub use crate::signaling::client::NetworkPath;
use crate::signaling::client::{ServerUrl, SignalingConfig};
use crate::signaling::driver::SignalingHandle;
use crate::signaling::limiter::LimiterConfig;
use crate::store::lock::{LockError, ProfileLock};
use crate::store::{Profile, ProfileError, Store, StoreError};
use crate::transport::{ConnectOptions, Transport, TransportConfig, TransportError};

pub use crate::session::WireVersion;
pub use crate::signaling::client::SignalingState;

mod call_media;
mod calls;
#[cfg(test)]
mod calls_recovery_tests;
#[cfg(test)]
mod calls_tests;
mod chat;
#[cfg(test)]
mod chat_tests;
#[cfg(test)]
mod contact_flow_tests;
mod contacts;
mod discovery;
mod events;
mod files;
#[cfg(test)]
mod group_call_tests;
#[cfg(test)]
mod group_delete_tests;
#[cfg(test)]
mod group_invitee_tests;
mod group_live;
#[cfg(test)]
mod group_live_tests;
pub mod groups;
#[cfg(test)]
mod hardening_tests;
mod idle_links;
#[cfg(test)]
mod idle_links_tests;
mod link;
mod local_file;
mod persistent;
pub mod platform;
mod pseudonyms;
mod rendezvous;
#[cfg(test)]
mod rendezvous_tests;
#[cfg(test)]
mod room_tests;
mod rpc;
mod rpc_alert;
mod rpc_backup;
#[cfg(test)]
mod rpc_grant_tests;
mod rpc_monitor;
#[cfg(test)]
mod rpc_tests;
mod rpc_upload;
#[cfg(test)]
mod stadium_tests;
#[cfg(test)]
mod tests;
mod waiting_links;
#[cfg(test)]
mod waiting_links_tests;

pub use crate::calls::log::{CallEntry, HistoryItem};
pub use crate::calls::{
    CallConfig, CallState, Direction as CallDirection, EndReason, Kinds, MediaState,
    Outcome as CallOutcome,
};
pub use crate::chat::store::{Conversation, Status as MessageStatus};
pub use crate::contacts::waiting::WaitingLink;
pub use crate::contacts::{Contact, Request, Trust};
pub use calls::ActiveCall;
pub use chat::{PING_TIMEOUT, StatusChange};
pub use discovery::{DiscoveredPeer, LOCAL_NETWORK, NamespaceRole, slugify};
pub use events::{NodeError, NodeEvent};
pub use files::{ACK_EVERY, DEFAULT_MAX_FILE, FileTransfer};
pub use group_live::{GroupCallMedia, GroupCallPublisher, GroupUpdate, QueuedSend, ReceivedFrame};
pub use idle_links::DEFAULT_BACKGROUND_LINK_IDLE;
use link::Link;
pub use local_file::{LocalFile, Opener};
pub use platform::Platform;
use platform::{LocationProvider, Notifier};
pub use rpc::{DEFAULT_MAX_RPC_FILE, ServeConfig};
pub use rpc_alert::MonitorAlertSeen;
pub use rpc_backup::{
    BackupFile, BackupOptions, BackupProgress, BackupSummary, backup_plan, documents_plan,
    paths_plan,
};

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

/// Pause before a dial whose connection closed before opening is tried again.
const GLARE_RETRY: std::time::Duration = std::time::Duration::from_millis(200);

/// Why a dial failed (cloned to everyone waiting for it).
#[derive(Debug, Clone)]
enum DialError {
    Transport(TransportError),
    Session(link::EstablishError),
}

impl From<DialError> for NodeError {
    fn from(e: DialError) -> Self {
        match e {
            DialError::Transport(t) => NodeError::Transport(t),
            DialError::Session(link::EstablishError::TimedOut(what)) => NodeError::Timeout(what),
            DialError::Session(link::EstablishError::Closed(_)) => {
                NodeError::Transport(TransportError::Closed)
            }
            DialError::Session(link::EstablishError::Refused(why)) => NodeError::Session(why),
        }
    }
}

type ConnectWaiter = oneshot::Sender<Result<Arc<Link>, DialError>>;

/// A fingerprint given by a shell (64 hex characters).
pub(crate) fn parse_fp(s: &str) -> Result<Fingerprint, NodeError> {
    s.trim()
        .parse()
        .map_err(|_| NodeError::InvalidInput(format!("not a fingerprint: {s:?}")))
}

/// A 16-byte ID written as 32 hex characters (messages, calls, files); `what` names it in
/// the error.
pub(crate) fn parse_hex_id(s: &str, what: &str) -> Result<[u8; 16], NodeError> {
    let mut id = [0u8; 16];
    hex::decode_to_slice(s.trim(), &mut id)
        .map_err(|_| NodeError::InvalidInput(format!("not a {what} id: {s:?}")))?;
    Ok(id)
}

/// Milliseconds since the Unix epoch.
pub(crate) fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A running node. Dropping it stops its background tasks; call [`Node::stop`] for an orderly
/// shutdown of the connections and signaling.
pub struct Node {
    inner: Arc<Inner>,
    /// Whether dropping this handle stops the background tasks: true for the one [`Node::start`]
    /// returns, false for the short-lived views the node's own tasks make of themselves.
    owner: bool,
}

struct Inner {
    store: Store,
    identity: Arc<Identity>,
    fingerprint: Fingerprint,
    /// The persistent ID's registration and transport (replaced if the ID is taken).
    persistent: Mutex<persistent::Persistent>,
    /// The network path the platform reported last (unmetered-only backups wait on it).
    network_path: watch::Sender<NetworkPath>,
    /// Held while the node runs: one node per profile.
    profile_lock: Mutex<Option<ProfileLock>>,
    signaling: SignalingHandle,
    display_name: Mutex<Option<String>>,
    state: Mutex<SignalingState>,
    /// This run's Noise static key, certified by the identity.
    static_key: StaticKey,
    /// Authenticated links by identity, oldest first (the newest carries the outbox).
    links: Mutex<HashMap<Fingerprint, Vec<Arc<Link>>>>,
    /// Pings waiting for their pong.
    pings: Mutex<chat::Pings>,
    /// Rate limit of contact requests from strangers.
    request_limiter: Mutex<crate::contacts::limit::RequestLimiter>,
    /// The chat on screen.
    open_chat: Mutex<Option<Fingerprint>>,
    /// The group chat on screen (its messages raise no notification in the foreground).
    open_group: Mutex<Option<crate::groups::GroupId>>,
    /// Backoff of redials to contacts with waiting messages.
    redial: Mutex<HashMap<Fingerprint, chat::Redial>>,
    /// Wakes the idle redial loop (a link went down, or we came back online).
    redial_wake: Arc<tokio::sync::Notify>,
    /// Wakes the loop that tries share links not reached yet (one was added, or we came
    /// online).
    links_wake: Arc<tokio::sync::Notify>,
    /// Counts links taken into the table, so a dial can end with any link to its peer.
    links_up: tokio::sync::watch::Sender<u64>,
    /// Ourselves, for tasks started from `&self` methods.
    me: Weak<Inner>,
    /// Rendezvous with contacts we cannot reach, and what wakes its loop.
    rendezvous: Mutex<rendezvous::Rendezvous>,
    rendezvous_wake: Arc<tokio::sync::Notify>,
    /// Files sent and received, inside the profile.
    files_dir: PathBuf,
    /// Incoming transfers being written.
    receiving: Mutex<files::ReceivingMap>,
    /// Held while incoming transfers are resumed (one resume at a time).
    resuming: tokio::sync::Mutex<()>,
    /// Sending tasks by transfer id.
    sending: Mutex<HashMap<crate::chat::wire::Id, AbortHandle>>,
    /// When we last asked about our unfinished files (`files::asking`).
    asked: Mutex<files::AskedMap>,
    /// Largest incoming file accepted.
    max_file: std::sync::atomic::AtomicU64,
    /// N of Last-N in the group calls we route (set before joining).
    call_last_n: std::sync::atomic::AtomicU8,
    /// Connects in progress by peer, with everyone waiting for them.
    pending: Mutex<HashMap<String, Vec<ConnectWaiter>>>,
    /// `None` once stopped.
    subscribers: Mutex<Option<Vec<mpsc::UnboundedSender<NodeEvent>>>>,
    /// Told about messages whose chat is not open in the foreground.
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
    /// Our stadium pseudonyms and the contacts we recognise behind theirs.
    pseudonyms: pseudonyms::Pseudonyms,
    /// The app is in the background (slower heartbeats).
    background: std::sync::atomic::AtomicBool,
    /// Links idle in the background close (`idle_links`).
    idle_links: Mutex<idle_links::IdleLinks>,
    /// Our contact requests known to have arrived (not redialled).
    requests_arrived: Mutex<std::collections::HashSet<Fingerprint>>,
    /// When the other side last refused our contact request for now (throttled, or its list of
    /// requests full): a refused request has not arrived, and is asked again later.
    requests_refused: Mutex<HashMap<Fingerprint, chat::Refused>>,
    /// The call machine and its timer.
    calls: Mutex<calls::NodeCalls>,
    /// Signed RPC: grants checked per request, our requests in flight (decision 0014).
    rpc: rpc::NodeRpc,
    /// Groups running on this node and their subscribers.
    groups: Mutex<group_live::LiveGroups>,
    /// The background tasks to abort when the node stops; `None` once it has (a task started
    /// after that is aborted at once).
    tasks: Mutex<Option<Vec<AbortHandle>>>,
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
    /// A view of the node for its own tasks; dropping it stops nothing.
    fn from_inner(inner: Arc<Inner>) -> Node {
        Node {
            inner,
            owner: false,
        }
    }

    /// Opens the profile (with the platform keystore, or the desktop key file), registers the
    /// persistent ID and starts the transport. Must run inside a tokio runtime.
    pub async fn start(config: NodeConfig) -> Result<Node, NodeError> {
        let server = ServerUrl::parse(&config.signaling_url)
            .map_err(|e| NodeError::InvalidInput(e.to_string()))?;
        let dir = config.profile_dir.clone();
        let keystore = config.platform.keystore.clone();
        let (profile, profile_lock) = tokio::task::spawn_blocking(move || {
            let held = ProfileLock::acquire(&dir)?;
            let profile = match keystore {
                Some(ks) => Profile::open(&dir, ks.as_ref()),
                None => Profile::open_desktop(&dir),
            }?;
            Ok::<_, NodeError>((profile, held))
        })
        .await
        .map_err(|e| NodeError::Store(StoreError::Task(e)))??;
        Self::start_with_profile(profile, profile_lock, server, config).await
    }

    async fn start_with_profile(
        profile: Profile,
        profile_lock: ProfileLock,
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
        let mut sc = SignalingConfig::new(server.clone());
        if is_loopback_host(&server.host) {
            sc.limiter = LimiterConfig::local();
        }
        let signaling = SignalingHandle::spawn(sc);
        let sig_events = signaling
            .subscribe()
            .map_err(|e| NodeError::Signaling(e.to_string()))?;
        // Registered, not claimed: the node runs offline until the server answers.
        let (persistent, incoming) =
            match persistent::register(&store, &signaling, &label, &peer_id, &config.transport)
                .await
            {
                Ok(p) => p,
                Err(e) => {
                    signaling.shutdown().await;
                    return Err(e);
                }
            };
        let state = SignalingState::Connecting;

        let files_dir = config.profile_dir.join("files");
        let max_file = store.call(|c| files::load_max_file(c)).await?;
        let pseudonyms = pseudonyms::Pseudonyms::load(&store).await?;
        let static_key = match StaticKey::generate(&identity) {
            Ok(k) => k,
            Err(e) => {
                persistent.transport.shutdown().await;
                signaling.shutdown().await;
                return Err(NodeError::Session(e.to_string()));
            }
        };
        let inner = Arc::new_cyclic(|me| Inner {
            me: me.clone(),
            store,
            static_key,
            links: Mutex::new(HashMap::new()),
            pings: Mutex::new(HashMap::new()),
            request_limiter: Mutex::new(Default::default()),
            open_chat: Mutex::new(None),
            open_group: Mutex::new(None),
            redial: Mutex::new(HashMap::new()),
            redial_wake: Arc::new(tokio::sync::Notify::new()),
            links_wake: Arc::new(tokio::sync::Notify::new()),
            links_up: tokio::sync::watch::Sender::new(0),
            rendezvous: Mutex::new(rendezvous::Rendezvous::default()),
            rendezvous_wake: Arc::new(tokio::sync::Notify::new()),
            files_dir,
            receiving: Mutex::new(HashMap::new()),
            resuming: tokio::sync::Mutex::new(()),
            sending: Mutex::new(HashMap::new()),
            asked: Mutex::new(HashMap::new()),
            max_file: std::sync::atomic::AtomicU64::new(max_file),
            call_last_n: std::sync::atomic::AtomicU8::new(
                crate::calls::group::Layout::default().last_n(),
            ),
            identity,
            fingerprint,
            persistent: Mutex::new(persistent),
            profile_lock: Mutex::new(Some(profile_lock)),
            network_path: watch::Sender::new(NetworkPath::unknown()),
            signaling,
            display_name: Mutex::new(display_name),
            state: Mutex::new(state),
            pending: Mutex::new(HashMap::new()),
            subscribers: Mutex::new(Some(vec![])),
            notifier: config.platform.notifier,
            location: config.platform.location,
            transport_config: config.transport,
            ns_config: config.discovery,
            verify_cache: Arc::new(VerifyCache::default()),
            discovery: Mutex::new(discovery::DiscoveryState::default()),
            pseudonyms,
            background: std::sync::atomic::AtomicBool::new(false),
            idle_links: Mutex::default(),
            requests_arrived: Mutex::default(),
            requests_refused: Mutex::default(),
            calls: Mutex::new(calls::NodeCalls::new(fingerprint)),
            rpc: Default::default(),
            groups: Mutex::new(group_live::LiveGroups::new()),
            tasks: Mutex::new(Some(vec![])),
        });
        let weak = Arc::downgrade(&inner);
        let watch = tokio::spawn(persistent::watch(weak.clone(), label, sig_events));
        let accept = tokio::spawn(persistent::accept(weak.clone(), incoming));
        let redial = tokio::spawn(chat::redial_loop(weak.clone()));
        let expiry = tokio::spawn(files::expiry_loop(weak.clone()));
        let waiting = tokio::spawn(waiting_links::waiting_loop(weak.clone()));
        let rendezvous = tokio::spawn(rendezvous::rendezvous_loop(weak));
        inner.track([
            waiting.abort_handle(),
            expiry.abort_handle(),
            watch.abort_handle(),
            accept.abort_handle(),
            redial.abort_handle(),
            rendezvous.abort_handle(),
        ]);
        tracing::info!(peer_id = %inner.peer_id(), "node started");
        let node = Node { inner, owner: true };
        node.restore_namespaces().await?;
        Inner::start_groups(&node.inner).await?;
        Ok(node)
    }

    /// Fingerprint, persistent ID and display name.
    pub fn identity(&self) -> NodeIdentity {
        NodeIdentity {
            fingerprint: self.inner.fingerprint.to_hex(),
            short: self.inner.fingerprint.short(),
            peer_id: self.inner.peer_id(),
            display_name: lock(&self.inner.display_name).clone(),
        }
    }

    /// The persistent PeerJS ID (it changes if the server finds it taken at start).
    pub fn peer_id(&self) -> String {
        self.inner.peer_id()
    }

    /// Waits until the persistent ID is registered at the signaling server; `false` if that
    /// did not happen within `timeout` (the node keeps trying either way).
    pub async fn wait_connected(&self, timeout: std::time::Duration) -> bool {
        let mut events = self.subscribe();
        let connected = || matches!(self.signaling_state(), SignalingState::Connected);
        tokio::time::timeout(timeout, async {
            while !connected() {
                if events.recv().await.is_none() {
                    return false;
                }
            }
            true
        })
        .await
        .unwrap_or(false)
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

    /// Opens an authenticated link to contact `fingerprint` at its known route, or returns at
    /// once if one is open. The handshake must prove `fingerprint`: whoever holds the contact's
    /// old PeerJS ID now gets [`NodeError::KeyMismatch`] and nothing else. Concurrent calls
    /// share one attempt; cancelling a call does not cancel the attempt.
    pub async fn connect(&self, fingerprint: &str) -> Result<(), NodeError> {
        let fp = parse_fp(fingerprint)?;
        Inner::dial_contact(&self.inner, &fp).await.map(drop)
    }

    /// Sends raw application data to contact `fingerprint` over its open link (the contact
    /// accepts it from its own contacts).
    pub async fn send(&self, fingerprint: &str, data: Vec<u8>) -> Result<(), NodeError> {
        let fp = parse_fp(fingerprint)?;
        if data.len() > crate::chat::wire::MAX_DATA {
            return Err(NodeError::InvalidInput(format!(
                "at most {} bytes per send",
                crate::chat::wire::MAX_DATA
            )));
        }
        let link = self
            .inner
            .link(&fp)
            .ok_or_else(|| NodeError::NotConnected(fp.to_hex()))?;
        link.send(&crate::chat::wire::Frame::Data(data)).await
    }

    /// Whether an authenticated link to `fingerprint` is open.
    pub fn is_connected(&self, fingerprint: &str) -> bool {
        parse_fp(fingerprint).is_ok_and(|fp| self.inner.link(&fp).is_some())
    }

    /// The platform's network path changed (Android `NetworkCallback`, iOS `NWPathMonitor`).
    /// Reports of the same path (same non-empty id) change nothing once settled, except that
    /// a change of [`NetworkPath::metered`] pauses or resumes unmetered-only backups.
    pub fn network_changed(&self, path: NetworkPath) -> Result<(), NodeError> {
        let last = self.inner.network_path.send_replace(path.clone());
        let changed = path.id.is_empty() || last.online != path.online || last.id != path.id;
        let online = path.online;
        self.inner
            .signaling
            .network_changed(path)
            .map_err(|_| NodeError::Stopped)?;
        if online && changed {
            self.recheck_local_network();
        }
        Ok(())
    }

    /// Events from now on, in order, starting with the signaling state at the time of the
    /// call (a registration that finished before anyone subscribed is not missed; the state
    /// may then come twice). The receiver ends when the node stops.
    pub fn subscribe(&self) -> mpsc::UnboundedReceiver<NodeEvent> {
        let (tx, rx) = mpsc::unbounded_channel();
        if let Some(subs) = lock(&self.inner.subscribers).as_mut() {
            let _ = tx.send(NodeEvent::SignalingState(self.signaling_state()));
            subs.push(tx);
        }
        rx
    }

    /// Closes every connection and the signaling sockets; ends every subscription. Idempotent.
    pub async fn stop(&self) {
        self.inner.stop_groups().await;
        self.leave_all_namespaces().await;
        lock(&self.inner.subscribers).take();
        self.inner.abort_tasks();
        lock(&self.inner.receiving).clear();
        self.inner.leave_meetings().await;
        for link in self.inner.all_links() {
            link.close().await;
        }
        lock(&self.inner.pending).clear();
        self.inner.transport().shutdown().await;
        self.inner.signaling.shutdown().await;
        lock(&self.inner.profile_lock).take();
        tracing::info!(peer_id = %self.inner.peer_id(), "node stopped");
    }
}

impl Inner {
    /// The persistent PeerJS ID.
    fn peer_id(&self) -> String {
        lock(&self.persistent).peer_id.clone()
    }

    /// Whether the persistent ID is registered at the signaling server.
    fn registered(&self) -> bool {
        matches!(*lock(&self.state), SignalingState::Connected)
    }

    /// The persistent ID's transport.
    fn transport(&self) -> Transport {
        lock(&self.persistent).transport.clone()
    }

    /// Keeps `tasks` to abort when the node stops, forgetting those that have finished.
    pub(crate) fn track(&self, tasks: impl IntoIterator<Item = AbortHandle>) {
        match lock(&self.tasks).as_mut() {
            Some(all) => {
                all.retain(|t| !t.is_finished());
                all.extend(tasks);
            }
            // Stopped: nothing may run on.
            None => tasks.into_iter().for_each(|t| t.abort()),
        }
    }

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

    /// Delivers raw application data from a contact.
    fn received(&self, fp: &Fingerprint, data: Vec<u8>) {
        self.emit(NodeEvent::DataReceived {
            fingerprint: fp.to_hex(),
            data,
        });
    }

    /// Aborts every background task, and any started from now on.
    fn abort_tasks(&self) {
        for t in lock(&self.tasks).take().into_iter().flatten() {
            t.abort();
        }
    }

    /// Runs `f` on the database (blocking pool); errors of any layer become node errors.
    pub(crate) async fn db<T, E>(
        &self,
        f: impl FnOnce(&mut rusqlite::Connection) -> Result<T, E> + Send + 'static,
    ) -> Result<T, NodeError>
    where
        T: Send + 'static,
        E: Into<NodeError> + Send + 'static,
    {
        self.store
            .call(move |c| Ok(f(c)))
            .await?
            .map_err(Into::into)
    }

    /// [`Inner::db`] for a read of a row or two by key: in place when the database is free
    /// ([`crate::store::Store::read_now`]).
    pub(crate) async fn db_read_now<T, E>(
        &self,
        f: impl FnOnce(&mut rusqlite::Connection) -> Result<T, E> + Send + 'static,
    ) -> Result<T, NodeError>
    where
        T: Send + 'static,
        E: Into<NodeError> + Send + 'static,
    {
        self.store
            .read_now(move |c| Ok(f(c)))
            .await?
            .map_err(Into::into)
    }

    /// An authenticated link to `peer`: the open one, or a new connection and handshake.
    /// One connection attempt to `peer` and its session handshake.
    async fn dial_once(this: &Arc<Inner>, peer: &str) -> Result<Arc<Link>, DialError> {
        match this
            .transport()
            .connect(peer, ConnectOptions::native())
            .await
        {
            Ok(conn) => link::establish(this, conn)
                .await
                .map_err(DialError::Session),
            Err(e) => Err(DialError::Transport(e)),
        }
    }

    pub(crate) async fn dial(this: &Arc<Inner>, peer: &str) -> Result<Arc<Link>, NodeError> {
        if peer.is_empty() || peer.len() > 64 || peer == this.peer_id() {
            return Err(NodeError::InvalidInput(format!("bad peer id {peer:?}")));
        }
        if lock(&this.subscribers).is_none() {
            return Err(NodeError::Stopped);
        }
        if let Some(link) = this.link_by_peer(peer) {
            return Ok(link);
        }
        let (tx, rx) = oneshot::channel();
        let start = match lock(&this.pending).entry(peer.to_owned()) {
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
            let (inner, peer) = (this.clone(), peer.to_owned());
            let task = tokio::spawn(async move {
                // A link to the peer from its side serves as well (the connection we wait for
                // may be one the peer never opens, see the transport's glare rule). Our attempt
                // then goes on alone: cut short, it could close a link the peer is taking.
                let attempt = tokio::spawn({
                    let (inner, peer) = (inner.clone(), peer.clone());
                    async move { Inner::dial_once(&inner, &peer).await }
                });
                inner.track([attempt.abort_handle()]);
                let mut result = tokio::select! {
                    r = attempt => r.unwrap_or(Err(DialError::Transport(TransportError::Closed))),
                    link = inner.link_comes_up(&peer) => Ok(link),
                };
                if matches!(result, Err(DialError::Transport(TransportError::Closed))) {
                    // The connection closed before it opened: typically a glare the peer
                    // resolved its way while it dialled us. Its connection may be our link
                    // by now; otherwise once more.
                    tokio::time::sleep(GLARE_RETRY).await;
                    result = match inner.link_by_peer(&peer) {
                        Some(link) => Ok(link),
                        None => Inner::dial_once(&inner, &peer).await,
                    };
                }
                tracing::debug!(%peer, ok = result.is_ok(), "dial done");
                let waiters = lock(&inner.pending).remove(&peer).unwrap_or_default();
                for w in waiters {
                    let _ = w.send(result.clone());
                }
            });
            this.track([task.abort_handle()]);
        }
        match rx.await {
            Ok(result) => result.map_err(NodeError::from),
            Err(_) => Err(NodeError::Stopped),
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.abort_tasks();
    }
}

/// The node's tasks stop with the handle, even while a link's task still holds the node: left
/// running, they would be polled as the runtime shuts down (a program that returns without
/// [`Node::stop`]), where a new timer panics.
impl Drop for Node {
    fn drop(&mut self) {
        if self.owner {
            lock(&self.inner.subscribers).take();
            self.inner.abort_tasks();
        }
    }
}
