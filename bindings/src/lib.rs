//! UniFFI adapters for PeerNS native: they convert types between the core's node facade
//! ([`peerns_core::node`]) and the foreign languages, and hold no logic.
//!
//! All core work runs on one tokio runtime owned by this library, so it does not matter which
//! executor (or thread) the foreign side calls from. The constructor is synchronous and does no
//! I/O; [`PeernsNode::start`] is the async entry point.

use std::path::PathBuf;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};

use peerns_core::chat::store::ChatError;
use peerns_core::contacts::ContactError;
use peerns_core::identity::IdentityError;
use peerns_core::node::{self, Node, NodeError};
use peerns_core::store::ProfileError;
use peerns_core::transport::{IceServer, TransportConfig, TransportError};
use tokio::runtime::Runtime;
use tokio::task::AbortHandle;

uniffi::setup_scaffolding!();

mod backup;
mod call_media;
mod calls;
mod chat;
mod events;
mod files;
mod group_calls;
mod group_files;
mod groups;
mod logging;
mod platform;
mod qr;
mod rpc;

pub use backup::{
    BackupListener, DocumentError, DocumentOpener, RpcBackupProgress, RpcBackupSummary,
};
pub use call_media::{
    CallMediaSinks, CallMediaSource, EncoderControlListener, MediaFrame, MediaFrameListener,
    audio_level_of_pcm,
};
pub use calls::{ActiveCall, CallKinds, CallLogEntry, CallMediaState, CallStatus};
pub use chat::{
    ChatMessage, Contact, ContactRequest, Conversation, MessageKind, MessageStatus, Trust,
};
pub use events::{
    DiscoveredPeer, NamespacePeers, NamespaceRole, NodeEvent, SignalingState, WireVersion,
};

pub use groups::{
    Group, GroupEvent, GroupHistoryPage, GroupListener, GroupMember, GroupMembership, GroupMessage,
};
pub use logging::{LogLevel, set_log_level};
pub use platform::{
    KeyStore, KeyStoreError, LocationFix, LocationProvider, LocationSink, NotificationCategory,
    Notifier, PeernsNotification,
};

/// The runtime every core task runs on. One worker: an idle phone woke about a third less
/// often than with two (the workers hand events to each other; docs/BENCHMARKS.md "Idle"), and
/// the platform encodes and decodes media, so what is left for the core (RTP, forwarding a
/// group call's packets) fits one. Multi-thread flavour still, so short blocking work runs in
/// place (`block_in_place`) and the blocking pool takes the rest.
pub(crate) static RUNTIME: LazyLock<Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("peerns")
        .enable_all()
        .build()
        .expect("cannot start the tokio runtime")
});

/// Runs `fut` on the library's runtime and waits for it from any executor.
async fn on_runtime<T: Send + 'static>(
    fut: impl Future<Output = T> + Send + 'static,
) -> Result<T, PeernsError> {
    RUNTIME
        .spawn(fut)
        .await
        .map_err(|e| PeernsError::Internal { msg: e.to_string() })
}

/// Like [`on_runtime`], but the work stops when the caller stops waiting (a cancelled Kotlin
/// coroutine drops this future) or when it is cancelled through `running`, where its handle is
/// kept meanwhile (Swift cannot cancel a call into the library: a task's cancellation never
/// reaches UniFFI's future, so the app cancels explicitly, e.g. [`PeernsNode::rpc_backup_cancel`]).
/// For long operations that resume where they left off, such as a backup; a cancelled one fails
/// with [`PeernsError::Cancelled`].
async fn on_runtime_cancellable<T: Send + 'static>(
    running: &Mutex<Vec<AbortHandle>>,
    fut: impl Future<Output = T> + Send + 'static,
) -> Result<T, PeernsError> {
    let task = RUNTIME.spawn(fut);
    let abort = task.abort_handle();
    {
        let mut running = lock(running);
        running.retain(|t| !t.is_finished());
        running.push(abort.clone());
    }
    let _stop = AbortOnDrop(abort);
    task.await.map_err(|e| {
        if e.is_cancelled() {
            PeernsError::Cancelled {
                msg: "cancelled".into(),
            }
        } else {
            PeernsError::Internal { msg: e.to_string() }
        }
    })
}

/// The one error type of the bindings.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum PeernsError {
    /// An argument was malformed, or the call does not fit the node's state.
    #[error("invalid input: {msg}")]
    InvalidInput {
        /// What was wrong.
        msg: String,
    },
    /// A connection to a peer failed or does not exist.
    #[error("network: {msg}")]
    Network {
        /// What failed.
        msg: String,
    },
    /// Another node runs on this profile (this process or another).
    #[error("profile in use: {msg}")]
    ProfileInUse {
        /// Which profile.
        msg: String,
    },
    /// The signaling server refused or is unreachable.
    #[error("signaling: {msg}")]
    Signaling {
        /// What failed.
        msg: String,
    },
    /// The profile database failed.
    #[error("storage: {msg}")]
    Storage {
        /// What failed.
        msg: String,
    },
    /// The profile holds an identity, but the keystore has no wrapping key for it (a platform
    /// keystore reports a key it can no longer recover as none) or the key does not open it
    /// (e.g. the phone's keystore was reset): the identity cannot be recovered on
    /// this device. The app explains this and may offer a new identity in a new profile.
    #[error("identity key lost: {msg}")]
    KeyLost {
        /// What is missing or failed.
        msg: String,
    },
    /// The identity key could not be loaded or unsealed for another reason (e.g. the
    /// keystore is unavailable for now).
    #[error("crypto: {msg}")]
    Crypto {
        /// What failed.
        msg: String,
    },
    /// The trust level does not allow it: not a contact, or blocked.
    #[error("not allowed: {msg}")]
    NotAllowed {
        /// What was refused.
        msg: String,
    },
    /// The peer proved another identity than the link or contact names.
    #[error("key mismatch: {msg}")]
    KeyMismatch {
        /// Expected and presented fingerprints.
        msg: String,
    },
    /// No such contact, request or message.
    #[error("not found: {msg}")]
    NotFound {
        /// What was missing.
        msg: String,
    },
    /// The peer did not answer in time.
    #[error("timeout: {msg}")]
    Timeout {
        /// What took too long.
        msg: String,
    },
    /// A contact request could not be delivered now: its link is kept and the request goes
    /// out once both sides are online (`waiting_links`, `NodeEvent::ContactRequestSent`).
    #[error("waiting: {msg}")]
    Waiting {
        /// Who could not be reached, and why.
        msg: String,
    },
    /// The node is not started or has stopped.
    #[error("closed: {msg}")]
    Closed {
        /// What was closed.
        msg: String,
    },
    /// The app cancelled the call (e.g. [`PeernsNode::rpc_backup_cancel`]), or a newer one took
    /// its place (a second `rpc_watch` of the same contact).
    #[error("cancelled: {msg}")]
    Cancelled {
        /// What was cancelled.
        msg: String,
    },
    /// A bug: a task panicked or was cancelled.
    #[error("internal: {msg}")]
    Internal {
        /// What happened.
        msg: String,
    },
}

impl From<NodeError> for PeernsError {
    fn from(e: NodeError) -> Self {
        let msg = e.to_string();
        match e {
            NodeError::InvalidInput(_)
            | NodeError::Unreadable(_)
            | NodeError::Contact(ContactError::Invalid(_))
            | NodeError::Chat(ChatError::Invalid(_)) => Self::InvalidInput { msg },
            NodeError::Profile(ProfileError::Store(_) | ProfileError::CreateDir { .. })
            | NodeError::Store(_)
            | NodeError::Contact(ContactError::Store(_))
            | NodeError::Chat(ChatError::Store(_)) => Self::Storage { msg },
            NodeError::Profile(
                ProfileError::KeyMissing | ProfileError::Identity(IdentityError::Decrypt),
            ) => Self::KeyLost { msg },
            NodeError::Profile(_) => Self::Crypto { msg },
            NodeError::Signaling(_) | NodeError::Transport(TransportError::Signaling(_)) => {
                Self::Signaling { msg }
            }
            NodeError::Transport(TransportError::Closed) | NodeError::Stopped => {
                Self::Closed { msg }
            }
            NodeError::Transport(_)
            | NodeError::NotConnected(_)
            | NodeError::Discovery(_)
            | NodeError::Session(_) => Self::Network { msg },
            NodeError::NotAllowed(_)
            | NodeError::Rpc(_)
            | NodeError::Contact(ContactError::Blocked | ContactError::Full) => {
                Self::NotAllowed { msg }
            }
            NodeError::KeyMismatch { .. } => Self::KeyMismatch { msg },
            NodeError::Contact(ContactError::NotFound) | NodeError::Chat(ChatError::NotFound) => {
                Self::NotFound { msg }
            }
            NodeError::Timeout(_) => Self::Timeout { msg },
            NodeError::Waiting(_) => Self::Waiting { msg },
            NodeError::ProfileLocked(_) => Self::ProfileInUse { msg },
            NodeError::Cancelled(_) => Self::Cancelled { msg },
        }
    }
}

/// How to start a node.
#[derive(Debug, Clone, uniffi::Record)]
pub struct NodeConfig {
    /// The profile directory (created if missing).
    pub profile_dir: String,
    /// PeerJS signaling server, e.g. `ws://127.0.0.1:9000/?key=peerjs`.
    pub signaling_url: String,
    /// `stun:` URLs, or `turn:` URLs written `turn:user:credential@host:port?transport=udp`.
    pub ice_servers: Vec<String>,
    /// Gather candidates on loopback only (tests, local demo).
    pub loopback_only: bool,
    /// Stored as the display name at start, if set.
    pub display_name: Option<String>,
}

/// Who this node is.
#[derive(Debug, Clone, uniffi::Record)]
pub struct Identity {
    /// Identity key fingerprint, 64 lowercase hex characters.
    pub fingerprint: String,
    /// Short fingerprint for people to compare.
    pub short: String,
    /// The persistent PeerJS ID.
    pub peer_id: String,
    /// The user's chosen name.
    pub display_name: Option<String>,
}

/// The kind of the platform's default network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum NetworkKind {
    /// No usable network.
    None,
    /// Wi-Fi.
    Wifi,
    /// Mobile data.
    Cellular,
    /// Wired.
    Ethernet,
    /// Anything else (VPN, Bluetooth tethering, ...).
    Other,
}

/// Receives node events, one at a time and in order, on a library thread.
#[uniffi::export(with_foreign)]
pub trait EventListener: Send + Sync {
    /// One event.
    fn on_event(&self, event: NodeEvent);
}

/// A running event delivery; it ends on [`Subscription::cancel`], when dropped, or when the
/// node stops.
#[derive(uniffi::Object)]
pub struct Subscription {
    task: AbortHandle,
}

#[uniffi::export]
impl Subscription {
    /// Stops delivering events.
    pub fn cancel(&self) {
        self.task.abort();
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn ice_server(url: &str) -> Result<IceServer, PeernsError> {
    let bad = || PeernsError::InvalidInput {
        msg: format!("bad ICE server URL {url:?}"),
    };
    if url.starts_with("stun:") || url.starts_with("stuns:") {
        return Ok(IceServer::stun(url));
    }
    let (scheme, rest) = url.split_once(':').ok_or_else(bad)?;
    if scheme != "turn" && scheme != "turns" {
        return Err(bad());
    }
    let (creds, host) = rest.rsplit_once('@').ok_or_else(bad)?;
    let (user, credential) = creds.split_once(':').ok_or_else(bad)?;
    Ok(IceServer::turn(
        &format!("{scheme}:{host}"),
        user,
        credential,
    ))
}

/// A PeerNS node: identity, signaling, connections to peers.
#[derive(uniffi::Object)]
pub struct PeernsNode {
    config: node::NodeConfig,
    node: Mutex<Option<Arc<Node>>>,
    /// The running backups, which [`PeernsNode::rpc_backup_cancel`] stops.
    backups: Mutex<Vec<AbortHandle>>,
}

/// Aborts a task when the future awaiting it is dropped (the caller cancelled).
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn already_running() -> PeernsError {
    PeernsError::InvalidInput {
        msg: "node is already running".into(),
    }
}

impl PeernsNode {
    fn running(&self) -> Result<Arc<Node>, PeernsError> {
        lock(&self.node).clone().ok_or_else(|| PeernsError::Closed {
            msg: "node is not running".into(),
        })
    }
}

#[uniffi::export(async_runtime = "tokio")]
impl PeernsNode {
    /// Checks the configuration; does no I/O. Call [`PeernsNode::start`] next. The platform
    /// objects are optional: without a keystore the identity key wraps under a file in the
    /// profile (desktop), without a notifier nothing is posted, without a location provider
    /// stadium mode is unavailable. Installs the platform logger (level Info) if none is.
    #[uniffi::constructor]
    pub fn new(
        config: NodeConfig,
        keystore: Option<Arc<dyn KeyStore>>,
        notifier: Option<Arc<dyn Notifier>>,
        location: Option<Arc<dyn LocationProvider>>,
    ) -> Result<Arc<Self>, PeernsError> {
        logging::init(LogLevel::Info);
        if config.profile_dir.is_empty() {
            return Err(PeernsError::InvalidInput {
                msg: "profile_dir is empty".into(),
            });
        }
        let transport = TransportConfig {
            ice_servers: config
                .ice_servers
                .iter()
                .map(String::as_str)
                .map(ice_server)
                .collect::<Result<_, _>>()?,
            loopback_only: config.loopback_only,
            ..TransportConfig::default()
        };
        Ok(Arc::new(Self {
            config: node::NodeConfig {
                profile_dir: PathBuf::from(config.profile_dir),
                signaling_url: config.signaling_url,
                transport,
                display_name: config.display_name,
                platform: node::Platform {
                    keystore: keystore.map(|k| {
                        Arc::new(platform::KeyStoreAdapter(k)) as Arc<dyn node::platform::KeyStore>
                    }),
                    notifier: notifier.map(|n| {
                        Arc::new(platform::NotifierAdapter::new(n))
                            as Arc<dyn node::platform::Notifier>
                    }),
                    location: location.map(|l| {
                        Arc::new(platform::LocationAdapter::new(l))
                            as Arc<dyn node::platform::LocationProvider>
                    }),
                },
                discovery: Default::default(),
            },
            node: Mutex::new(None),
            backups: Mutex::new(Vec::new()),
        }))
    }

    /// Opens the profile and starts the node at once, without waiting for the network: the
    /// identity, contacts, history and outbox work offline, and the node registers at the
    /// signaling server when it can (watch `signaling_state` / `SignalingState` events). Only one
    /// node may run on a profile (`ProfileInUse` otherwise). If the caller gives up on this call
    /// (a cancelled coroutine or task), the start is aborted and nothing is left running.
    pub async fn start(self: Arc<Self>) -> Result<(), PeernsError> {
        let this = self.clone();
        let task = RUNTIME.spawn(async move {
            if lock(&this.node).is_some() {
                return Err(already_running());
            }
            let node = Arc::new(Node::start(this.config.clone()).await?);
            // No await between the start and taking the slot: an abort cannot orphan the node.
            let raced = lock(&this.node).replace(node.clone());
            if let Some(first) = raced {
                *lock(&this.node) = Some(first);
                node.stop().await;
                return Err(already_running());
            }
            Ok(())
        });
        let abort = AbortOnDrop(task.abort_handle());
        let result = task
            .await
            .map_err(|e| PeernsError::Internal { msg: e.to_string() })?;
        std::mem::forget(abort);
        result
    }

    /// Waits until the node is registered at the signaling server; `false` if not within
    /// `timeout_ms` (the node keeps trying).
    pub async fn wait_connected(&self, timeout_ms: u64) -> Result<bool, PeernsError> {
        let node = self.running()?;
        on_runtime(async move {
            node.wait_connected(std::time::Duration::from_millis(timeout_ms))
                .await
        })
        .await
    }

    /// Closes every connection and signaling; ends every subscription. The node can be
    /// started again.
    pub async fn stop(&self) -> Result<(), PeernsError> {
        let node = lock(&self.node).take();
        if let Some(node) = node {
            on_runtime(async move { node.stop().await }).await?;
        }
        Ok(())
    }

    /// Fingerprint, persistent ID and display name.
    pub fn identity(&self) -> Result<Identity, PeernsError> {
        let id = self.running()?.identity();
        Ok(Identity {
            fingerprint: id.fingerprint,
            short: id.short,
            peer_id: id.peer_id,
            display_name: id.display_name,
        })
    }

    /// Changes and stores the display name.
    pub async fn set_display_name(&self, name: String) -> Result<(), PeernsError> {
        let node = self.running()?;
        Ok(on_runtime(async move { node.set_display_name(&name).await }).await??)
    }

    /// The signaling state (`Offline` when the node is not running).
    pub fn signaling_state(&self) -> SignalingState {
        match lock(&self.node).as_ref() {
            Some(node) => node.signaling_state().into(),
            None => SignalingState::Offline {
                reason: "node is not running".into(),
            },
        }
    }

    /// Opens an authenticated link to the contact with this `fingerprint` at its known route
    /// (or reuses the open one); `KeyMismatch` if someone else now holds that route.
    pub async fn connect(&self, fingerprint: String) -> Result<(), PeernsError> {
        let node = self.running()?;
        Ok(on_runtime(async move { node.connect(&fingerprint).await }).await??)
    }

    /// Sends raw `data` to the contact with this `fingerprint` over its open link (the contact
    /// drops it unless we are its contact too).
    pub async fn send(&self, fingerprint: String, data: Vec<u8>) -> Result<(), PeernsError> {
        let node = self.running()?;
        Ok(on_runtime(async move { node.send(&fingerprint, data).await }).await??)
    }

    /// The platform's default network changed (Android `NetworkCallback`, iOS
    /// `NWPathMonitor`); `NetworkKind::None` means offline. `path_id` identifies the usable path
    /// (e.g. interface name and addresses; empty if unknown): reports of the same path, such as
    /// iOS's attribute changes, do not drop the signaling socket. `metered`: the path costs by
    /// the byte or is constrained (Android: no `NET_CAPABILITY_NOT_METERED`; iOS:
    /// `isExpensive || isConstrained`); unknown (`null`): mobile data and `Other` count as
    /// metered, Wi-Fi and Ethernet not. Unmetered-only backups wait while it is metered.
    #[uniffi::method(default(metered = None))]
    pub fn network_changed(
        &self,
        kind: NetworkKind,
        path_id: String,
        metered: Option<bool>,
    ) -> Result<(), PeernsError> {
        let path = if kind == NetworkKind::None {
            node::NetworkPath::offline()
        } else {
            let by_kind = matches!(kind, NetworkKind::Cellular | NetworkKind::Other);
            node::NetworkPath::online(path_id).with_metered(metered.unwrap_or(by_kind))
        };
        Ok(self.running()?.network_changed(path)?)
    }

    /// Joins the custom namespace `name` (kept across restarts); returns its slug.
    pub async fn join_namespace(&self, name: String) -> Result<String, PeernsError> {
        let node = self.running()?;
        Ok(on_runtime(async move { node.join_namespace(&name).await }).await??)
    }

    /// Leaves the custom namespace `name` and forgets it.
    pub async fn leave_namespace(&self, name: String) -> Result<(), PeernsError> {
        let node = self.running()?;
        Ok(on_runtime(async move { node.leave_namespace(&name).await }).await??)
    }

    /// The joined custom namespaces' slugs.
    pub fn namespaces(&self) -> Result<Vec<String>, PeernsError> {
        Ok(self.running()?.namespaces())
    }

    /// Our role and the peers we see in namespace `name`.
    pub async fn namespace_peers(&self, name: String) -> Result<NamespacePeers, PeernsError> {
        let node = self.running()?;
        let (role, peers) = on_runtime(async move { node.namespace_peers(&name).await }).await??;
        Ok(NamespacePeers {
            role: role.into(),
            peers: peers.into_iter().map(Into::into).collect(),
        })
    }

    /// The app moved to the foreground (`true`) or the background (heartbeats every 10 s
    /// instead of 0.8–5 s, peers told to wait accordingly; links unused for 2 minutes close
    /// until the foreground dials them again).
    pub fn set_app_active(&self, active: bool) -> Result<(), PeernsError> {
        let node = self.running()?;
        let _guard = RUNTIME.enter();
        node.set_app_active(active);
        Ok(())
    }

    /// Joins the namespace of everyone behind the same public IPv4 address (found with the
    /// STUN servers in the configuration); returns that address. Kept across restarts.
    pub async fn join_local_network(&self) -> Result<String, PeernsError> {
        let node = self.running()?;
        let ip = on_runtime(async move { node.join_local_network().await }).await??;
        Ok(ip.to_string())
    }

    /// Leaves the same-network namespace.
    pub async fn leave_local_network(&self) -> Result<(), PeernsError> {
        let node = self.running()?;
        Ok(on_runtime(async move { node.leave_local_network().await }).await??)
    }

    /// Our role and the peers we see in the same-network namespace.
    pub async fn local_network_peers(&self) -> Result<NamespacePeers, PeernsError> {
        let node = self.running()?;
        let (role, peers) = on_runtime(async move { node.local_network_peers().await }).await??;
        Ok(NamespacePeers {
            role: role.into(),
            peers: peers.into_iter().map(Into::into).collect(),
        })
    }

    /// Turns stadium mode on; positions come from the `LocationProvider` given at
    /// construction and from `set_location`.
    pub fn start_stadium(&self) -> Result<(), PeernsError> {
        let node = self.running()?;
        let _guard = RUNTIME.enter();
        Ok(node.start_stadium(Default::default())?)
    }

    /// Gives stadium mode a position (when the app, not a provider, knows it).
    pub fn set_location(&self, fix: LocationFix) -> Result<(), PeernsError> {
        let node = self.running()?;
        let _guard = RUNTIME.enter();
        Ok(node.set_location(node::platform::LocationFix {
            latitude: fix.latitude,
            longitude: fix.longitude,
            accuracy_m: fix.accuracy_m,
        })?)
    }

    /// Turns stadium mode off: every cell is left and the position forgotten.
    pub async fn stop_stadium(&self) -> Result<(), PeernsError> {
        let node = self.running()?;
        on_runtime(async move { node.stop_stadium().await }).await
    }

    /// The geohash cells stadium mode is in.
    pub fn stadium_cells(&self) -> Result<Vec<String>, PeernsError> {
        Ok(self.running()?.stadium_cells())
    }

    /// Everyone stadium mode sees, nearest first.
    pub async fn nearby(&self) -> Result<Vec<DiscoveredPeer>, PeernsError> {
        let node = self.running()?;
        let peers = on_runtime(async move { node.nearby().await }).await?;
        Ok(peers.into_iter().map(Into::into).collect())
    }

    /// Delivers every event from now on to `listener`, in order, until the subscription is
    /// cancelled or dropped or the node stops.
    pub fn subscribe(
        &self,
        listener: Arc<dyn EventListener>,
    ) -> Result<Arc<Subscription>, PeernsError> {
        let mut events = self.running()?.subscribe();
        let task = RUNTIME.spawn(async move {
            while let Some(event) = events.recv().await {
                let listener = listener.clone();
                let event = NodeEvent::from(event);
                // Foreign code may block; keep it off the async workers. Awaiting each call
                // keeps the order.
                if tokio::task::spawn_blocking(move || listener.on_event(event))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        });
        Ok(Arc::new(Subscription {
            task: task.abort_handle(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ice_urls() {
        assert_eq!(
            ice_server("stun:stun.example.org:3478").unwrap(),
            IceServer::stun("stun:stun.example.org:3478")
        );
        assert_eq!(
            ice_server("turn:u:p@127.0.0.1:3478?transport=udp").unwrap(),
            IceServer::turn("turn:127.0.0.1:3478?transport=udp", "u", "p")
        );
        assert!(ice_server("http://x").is_err());
        assert!(ice_server("turn:127.0.0.1:3478").is_err());
    }

    #[test]
    fn errors_keep_what_callers_tell_apart() {
        let map = PeernsError::from;
        assert!(matches!(
            map(NodeError::NotAllowed("x".into())),
            PeernsError::NotAllowed { .. }
        ));
        assert!(matches!(
            map(NodeError::Contact(ContactError::Blocked)),
            PeernsError::NotAllowed { .. }
        ));
        assert!(matches!(
            map(NodeError::KeyMismatch {
                expected: "a".into(),
                presented: "b".into()
            }),
            PeernsError::KeyMismatch { .. }
        ));
        assert!(matches!(
            map(NodeError::Chat(ChatError::NotFound)),
            PeernsError::NotFound { .. }
        ));
        assert!(matches!(
            map(NodeError::Contact(ContactError::Invalid("x".into()))),
            PeernsError::InvalidInput { .. }
        ));
        assert!(matches!(
            map(NodeError::Timeout("ping".into())),
            PeernsError::Timeout { .. }
        ));
        assert!(matches!(
            map(NodeError::Session("x".into())),
            PeernsError::Network { .. }
        ));
        assert!(matches!(
            map(NodeError::Cancelled("replaced".into())),
            PeernsError::Cancelled { .. }
        ));
        assert!(matches!(
            map(NodeError::Waiting("offline".into())),
            PeernsError::Waiting { .. }
        ));
    }

    use peerns_core::identity::KeyStoreError as CoreKeyStoreError;

    /// A wrapping key held in memory, or none (a keystore that lost it).
    struct MemoryKeys(Mutex<Option<[u8; 32]>>);

    impl peerns_core::identity::KeyStore for MemoryKeys {
        fn load(&self) -> Result<Option<zeroize::Zeroizing<[u8; 32]>>, CoreKeyStoreError> {
            Ok(self.0.lock().unwrap().map(zeroize::Zeroizing::new))
        }
        fn create(&self) -> Result<zeroize::Zeroizing<[u8; 32]>, CoreKeyStoreError> {
            let key = *self.0.lock().unwrap().get_or_insert([7; 32]);
            Ok(zeroize::Zeroizing::new(key))
        }
    }

    #[test]
    fn a_lost_or_wrong_wrapping_key_is_key_lost() {
        let dir = tempfile::tempdir().unwrap();
        let open = |keys: MemoryKeys| {
            peerns_core::store::Profile::open(dir.path(), &keys)
                .map(drop)
                .map_err(|e| PeernsError::from(NodeError::Profile(e)))
        };
        open(MemoryKeys(Mutex::new(None))).unwrap();
        assert!(matches!(
            open(MemoryKeys(Mutex::new(None))),
            Err(PeernsError::KeyLost { .. })
        ));
        assert!(matches!(
            open(MemoryKeys(Mutex::new(Some([8; 32])))),
            Err(PeernsError::KeyLost { .. })
        ));
        // A keystore that fails or returns a malformed key is a platform problem, not a loss.
        for e in [
            CoreKeyStoreError::Corrupt("16 bytes".into()),
            CoreKeyStoreError::Platform("busy".into()),
        ] {
            assert!(matches!(
                PeernsError::from(NodeError::Profile(ProfileError::KeyStore(e))),
                PeernsError::Crypto { .. }
            ));
        }
    }

    #[test]
    fn constructor_validates() {
        let cfg = |dir: &str| NodeConfig {
            profile_dir: dir.into(),
            signaling_url: "ws://127.0.0.1:9000/".into(),
            ice_servers: vec![],
            loopback_only: true,
            display_name: None,
        };
        assert!(matches!(
            PeernsNode::new(cfg(""), None, None, None),
            Err(PeernsError::InvalidInput { .. })
        ));
        let node = PeernsNode::new(cfg("/tmp/x"), None, None, None).unwrap();
        assert!(matches!(
            node.signaling_state(),
            SignalingState::Offline { .. }
        ));
        assert!(matches!(node.identity(), Err(PeernsError::Closed { .. })));
    }
}
