//! What the phone supplies to the node: the identity [`KeyStore`] (re-exported from
//! [`crate::identity`]), a [`Notifier`] for system notifications and a [`LocationProvider`] for
//! stadium mode. Every piece is optional; the desktop defaults are a key file in the profile,
//! no notifications and no location.

use std::fmt;
use std::sync::Arc;

use tokio::sync::mpsc;

pub use crate::identity::{KeyStore, KeyStoreError};

/// What kind of event a notification is about (Android maps each to a notification channel).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotificationCategory {
    /// A message from a contact arrived while its chat was not open.
    Message,
    /// Someone asked to become a contact.
    ContactRequest,
    /// A contact calls: the shells show a full-screen incoming-call notification.
    IncomingCall,
    /// A call from a contact was missed (not answered, or we were in another call).
    MissedCall,
    /// Messages from others arrived in a group whose chat was not open; the notification's
    /// conversation is the group ID (32 hex characters).
    GroupMessage,
    /// An armed baby monitor we may watch heard a held loud sound (the conversation is the
    /// monitor's fingerprint): an alarm, so the phone in a pocket hears it.
    MonitorAlert,
}

/// A system notification the node asks the platform to post.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// What it is about.
    pub category: NotificationCategory,
    /// First line (who).
    pub title: String,
    /// Second line (a short preview).
    pub body: String,
    /// The conversation to open when the user taps it.
    pub conversation: Option<String>,
}

/// Posts notifications (Android `NotificationManager`, iOS `UNUserNotificationCenter`).
pub trait Notifier: Send + Sync {
    /// Shows `notification`; must return quickly (post and return, no waiting for the user).
    fn notify(&self, notification: Notification);
}

/// One position reported by the platform.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LocationFix {
    /// Degrees, WGS84.
    pub latitude: f64,
    /// Degrees, WGS84.
    pub longitude: f64,
    /// Horizontal accuracy radius in metres (68 % confidence, as both platforms report it).
    pub accuracy_m: f64,
}

/// What a [`LocationProvider`] reports through its [`LocationSink`].
#[derive(Debug, Clone, PartialEq)]
pub enum LocationUpdate {
    /// A new position.
    Fix(LocationFix),
    /// Updates stopped or failed (permission revoked, provider disabled, ...).
    Error(String),
}

/// Where a [`LocationProvider`] delivers updates. Cheap to clone; sending never blocks.
#[derive(Clone)]
pub struct LocationSink(mpsc::UnboundedSender<LocationUpdate>);

impl LocationSink {
    /// A sink and the receiver the node reads updates from.
    pub fn channel() -> (Self, mpsc::UnboundedReceiver<LocationUpdate>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Self(tx), rx)
    }

    /// Delivers an update; returns `false` once nobody listens any more.
    pub fn send(&self, update: LocationUpdate) -> bool {
        self.0.send(update).is_ok()
    }
}

impl fmt::Debug for LocationSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LocationSink")
    }
}

/// Supplies position fixes (Android `LocationManager`, iOS CoreLocation).
pub trait LocationProvider: Send + Sync {
    /// Starts delivering fixes to `sink` until [`LocationProvider::stop_updates`].
    fn start_updates(&self, sink: LocationSink);
    /// Stops delivering fixes.
    fn stop_updates(&self);
}

/// The platform objects a node uses; `None` means the desktop default.
#[derive(Clone, Default)]
pub struct Platform {
    /// Holds the key that wraps the identity secret; `None` = a key file in the profile.
    pub keystore: Option<Arc<dyn KeyStore>>,
    /// Posts notifications; `None` = no notifications.
    pub notifier: Option<Arc<dyn Notifier>>,
    /// Reports positions for stadium mode; `None` = stadium mode is unavailable.
    pub location: Option<Arc<dyn LocationProvider>>,
}

impl fmt::Debug for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Platform")
            .field("keystore", &self.keystore.is_some())
            .field("notifier", &self.notifier.is_some())
            .field("location", &self.location.is_some())
            .finish()
    }
}

/// The notification body for a received message: the text if it is UTF-8, cut to 100
/// characters, else a size.
pub(crate) fn message_preview(data: &[u8]) -> String {
    const MAX: usize = 100;
    match std::str::from_utf8(data) {
        Ok(text) if text.chars().count() > MAX => {
            let cut: String = text.chars().take(MAX).collect();
            format!("{cut}…")
        }
        Ok(text) => text.to_owned(),
        Err(_) => format!("{} bytes", data.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn previews() {
        assert_eq!(message_preview(b"hi"), "hi");
        assert_eq!(message_preview(&[0xff, 0xfe]), "2 bytes");
        let long = "é".repeat(150);
        let p = message_preview(long.as_bytes());
        assert_eq!(p.chars().count(), 101);
        assert!(p.ends_with('…'));
    }

    #[tokio::test]
    async fn sink_reports_closed_receiver() {
        let (sink, mut rx) = LocationSink::channel();
        let fix = LocationFix {
            latitude: 1.0,
            longitude: 2.0,
            accuracy_m: 5.0,
        };
        assert!(sink.send(LocationUpdate::Fix(fix)));
        assert_eq!(rx.recv().await, Some(LocationUpdate::Fix(fix)));
        drop(rx);
        assert!(!sink.send(LocationUpdate::Error("gone".into())));
    }
}
