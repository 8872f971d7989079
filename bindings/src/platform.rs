//! Foreign traits the phone implements (keystore, notifier, location) and their adapters to
//! the core's [`peerns_core::node::platform`] traits.

use std::sync::Arc;

use peerns_core::node::platform as core;
use zeroize::Zeroizing;

/// Why the platform keystore failed.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum KeyStoreError {
    /// `create` was called but a key exists; keys are never overwritten.
    #[error("a key already exists")]
    AlreadyExists,
    /// A key exists but cannot be used (wrong length, cannot be decrypted, ...).
    #[error("corrupt key: {msg}")]
    Corrupt {
        /// What is wrong.
        msg: String,
    },
    /// The keystore cannot be reached (locked device, hardware error, ...).
    #[error("keystore unavailable: {msg}")]
    Unavailable {
        /// What failed.
        msg: String,
    },
}

impl From<uniffi::UnexpectedUniFFICallbackError> for KeyStoreError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        Self::Unavailable { msg: e.reason }
    }
}

/// Holds the 32-byte key that wraps the identity secret (Android Keystore, iOS Keychain).
/// Called from a library thread that may block.
#[uniffi::export(with_foreign)]
pub trait KeyStore: Send + Sync {
    /// The stored key, or `None` if none was created yet.
    fn load(&self) -> Result<Option<Vec<u8>>, KeyStoreError>;
    /// Generates 32 random bytes with the platform's secure generator, stores them and returns
    /// them; fails with `AlreadyExists` if a key is stored.
    fn create(&self) -> Result<Vec<u8>, KeyStoreError>;
}

pub(crate) struct KeyStoreAdapter(pub(crate) Arc<dyn KeyStore>);

fn key32(bytes: Vec<u8>) -> Result<Zeroizing<[u8; 32]>, core::KeyStoreError> {
    let bytes = Zeroizing::new(bytes);
    let key: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
        core::KeyStoreError::Corrupt(format!("key has {} bytes, not 32", bytes.len()))
    })?;
    Ok(Zeroizing::new(key))
}

impl From<KeyStoreError> for core::KeyStoreError {
    fn from(e: KeyStoreError) -> Self {
        match e {
            KeyStoreError::AlreadyExists => Self::AlreadyExists,
            KeyStoreError::Corrupt { msg } => Self::Corrupt(msg),
            KeyStoreError::Unavailable { msg } => Self::Platform(msg),
        }
    }
}

impl core::KeyStore for KeyStoreAdapter {
    fn load(&self) -> Result<Option<Zeroizing<[u8; 32]>>, core::KeyStoreError> {
        self.0.load()?.map(key32).transpose()
    }

    fn create(&self) -> Result<Zeroizing<[u8; 32]>, core::KeyStoreError> {
        key32(self.0.create()?)
    }
}

/// What a notification is about (one Android notification channel each).
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum NotificationCategory {
    /// A message arrived while its chat was not open.
    Message,
    /// Someone asked to become a contact.
    ContactRequest,
    /// A contact calls (show it full screen).
    IncomingCall,
    /// A call was missed.
    MissedCall,
    /// Messages from others in a group whose chat was not open; `conversation` is the group
    /// ID (32 hex characters).
    GroupMessage,
    /// An armed baby monitor we may watch heard a held loud sound; `conversation` is the
    /// monitor's fingerprint (an alarm: show it so that a phone in a pocket is heard).
    MonitorAlert,
}

/// A notification to post. Not named `Notification`: that would clash with Foundation's
/// `Notification` in Swift and `android.app.Notification` in Kotlin.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PeernsNotification {
    /// What it is about.
    pub category: NotificationCategory,
    /// First line.
    pub title: String,
    /// Second line.
    pub body: String,
    /// The conversation to open on tap.
    pub conversation: Option<String>,
}

impl From<core::Notification> for PeernsNotification {
    fn from(n: core::Notification) -> Self {
        Self {
            category: match n.category {
                core::NotificationCategory::Message => NotificationCategory::Message,
                core::NotificationCategory::ContactRequest => NotificationCategory::ContactRequest,
                core::NotificationCategory::IncomingCall => NotificationCategory::IncomingCall,
                core::NotificationCategory::MissedCall => NotificationCategory::MissedCall,
                core::NotificationCategory::GroupMessage => NotificationCategory::GroupMessage,
                core::NotificationCategory::MonitorAlert => NotificationCategory::MonitorAlert,
            },
            title: n.title,
            body: n.body,
            conversation: n.conversation,
        }
    }
}

/// Posts system notifications. Called on a library thread that may block.
#[uniffi::export(with_foreign)]
pub trait Notifier: Send + Sync {
    /// Shows one notification.
    fn notify(&self, notification: PeernsNotification);
}

/// Foreign calls made one after another, in the order the core asked for them, on a thread of
/// their own: the core calls from async tasks and foreign code may block, and a `stop_updates`
/// must not overtake its `start_updates`, nor an older notification of a conversation the newer
/// one that replaces it (each on its own blocking thread they could run in any order).
pub(crate) struct InOrder(Option<std::sync::mpsc::SyncSender<Box<dyn FnOnce() + Send>>>);

impl InOrder {
    /// Calls waiting at most; more are dropped (and logged).
    const QUEUE: usize = 256;

    /// A queue whose calls run on a thread named `name` until it is dropped.
    pub(crate) fn new(name: &str) -> Self {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Box<dyn FnOnce() + Send>>(Self::QUEUE);
        match crate::call_media::deliver_on_thread(name, rx, |call| call()) {
            Ok(()) => Self(Some(tx)),
            Err(e) => {
                tracing::warn!(error = %e, "no thread for platform calls; they are dropped");
                Self(None)
            }
        }
    }

    /// Queues `call` after the ones before it.
    pub(crate) fn run(&self, call: impl FnOnce() + Send + 'static) {
        let queued = self
            .0
            .as_ref()
            .is_some_and(|tx| tx.try_send(Box::new(call)).is_ok());
        if !queued {
            tracing::warn!("a platform call was dropped: its queue is full");
        }
    }
}

pub(crate) struct NotifierAdapter {
    notifier: Arc<dyn Notifier>,
    calls: InOrder,
}

impl NotifierAdapter {
    pub(crate) fn new(notifier: Arc<dyn Notifier>) -> Self {
        Self {
            notifier,
            calls: InOrder::new("peerns-notify"),
        }
    }
}

impl core::Notifier for NotifierAdapter {
    fn notify(&self, notification: core::Notification) {
        let notifier = self.notifier.clone();
        self.calls.run(move || notifier.notify(notification.into()));
    }
}

/// One position from the platform.
#[derive(Debug, Clone, Copy, PartialEq, uniffi::Record)]
pub struct LocationFix {
    /// Degrees, WGS84.
    pub latitude: f64,
    /// Degrees, WGS84.
    pub longitude: f64,
    /// Horizontal accuracy radius, metres.
    pub accuracy_m: f64,
}

/// Where the platform delivers positions; any thread may call it, it never blocks.
#[derive(uniffi::Object)]
pub struct LocationSink(core::LocationSink);

#[uniffi::export]
impl LocationSink {
    /// A new position.
    pub fn on_fix(&self, fix: LocationFix) {
        self.0.send(core::LocationUpdate::Fix(core::LocationFix {
            latitude: fix.latitude,
            longitude: fix.longitude,
            accuracy_m: fix.accuracy_m,
        }));
    }

    /// Updates failed or stopped (permission revoked, provider off, ...).
    pub fn on_error(&self, msg: String) {
        self.0.send(core::LocationUpdate::Error(msg));
    }
}

/// Reports positions for stadium mode (Android `LocationManager`, iOS CoreLocation).
#[uniffi::export(with_foreign)]
pub trait LocationProvider: Send + Sync {
    /// Starts sending fixes to `sink` until `stop_updates`.
    fn start_updates(&self, sink: Arc<LocationSink>);
    /// Stops sending fixes.
    fn stop_updates(&self);
}

pub(crate) struct LocationAdapter {
    provider: Arc<dyn LocationProvider>,
    calls: InOrder,
}

impl LocationAdapter {
    pub(crate) fn new(provider: Arc<dyn LocationProvider>) -> Self {
        Self {
            provider,
            calls: InOrder::new("peerns-location"),
        }
    }
}

impl core::LocationProvider for LocationAdapter {
    fn start_updates(&self, sink: core::LocationSink) {
        let provider = self.provider.clone();
        self.calls
            .run(move || provider.start_updates(Arc::new(LocationSink(sink))));
    }

    fn stop_updates(&self) {
        let provider = self.provider.clone();
        self.calls.run(move || provider.stop_updates());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use peerns_core::node::platform::KeyStore as _;

    struct Fixed(Vec<u8>);
    impl KeyStore for Fixed {
        fn load(&self) -> Result<Option<Vec<u8>>, KeyStoreError> {
            Ok(Some(self.0.clone()))
        }
        fn create(&self) -> Result<Vec<u8>, KeyStoreError> {
            Err(KeyStoreError::AlreadyExists)
        }
    }

    /// Records the calls it gets; a start takes a while (a permission prompt, a slow provider).
    #[derive(Default)]
    struct Recorder(std::sync::Mutex<Vec<&'static str>>);
    impl LocationProvider for Recorder {
        fn start_updates(&self, _sink: Arc<LocationSink>) {
            std::thread::sleep(std::time::Duration::from_millis(150));
            self.0.lock().unwrap().push("start");
        }
        fn stop_updates(&self) {
            self.0.lock().unwrap().push("stop");
        }
    }

    #[test]
    fn a_stop_never_overtakes_its_start() {
        use peerns_core::node::platform::LocationProvider as _;
        let recorder = Arc::new(Recorder::default());
        let adapter = LocationAdapter::new(recorder.clone());
        adapter.start_updates(core::LocationSink::channel().0);
        adapter.stop_updates();
        adapter.start_updates(core::LocationSink::channel().0);
        adapter.stop_updates();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while recorder.0.lock().unwrap().len() < 4 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert_eq!(
            *recorder.0.lock().unwrap(),
            ["start", "stop", "start", "stop"]
        );
    }

    #[test]
    fn keys_must_have_32_bytes() {
        let ok = KeyStoreAdapter(Arc::new(Fixed(vec![1; 32])));
        assert_eq!(*ok.load().unwrap().unwrap(), [1; 32]);
        let short = KeyStoreAdapter(Arc::new(Fixed(vec![1; 16])));
        assert!(matches!(short.load(), Err(core::KeyStoreError::Corrupt(_))));
        assert!(matches!(
            ok.create(),
            Err(core::KeyStoreError::AlreadyExists)
        ));
    }
}
