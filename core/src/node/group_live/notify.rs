//! A live group's notifications: one per batch of others' messages, while its chat is not on
//! the screen, each author named as we name our contacts.

use std::sync::atomic::Ordering;

use super::Live;
use crate::groups::{Body, GroupEvent, SignedMessage};
use crate::node::platform::{Notification, NotificationCategory, message_preview};
use crate::node::{Inner, lock};

impl Live {
    /// Posts one notification for the messages of others in `events` (a batch: one live
    /// message, or a page of backfill), unless the group's chat is open in the foreground.
    /// Meeting rooms notify nothing (strangers, and the room is on screen while it runs). The
    /// last author is named as our contacts are (a stranger by its short fingerprint).
    pub(super) async fn notify(&self, inner: &Inner, events: &[GroupEvent]) {
        let Some(notifier) = inner.notifier.as_ref().filter(|_| !self.room) else {
            return;
        };
        let theirs: Vec<&SignedMessage> = events
            .iter()
            .filter_map(|e| match e {
                GroupEvent::Message(m) if m.author_fp() != self.me => Some(m),
                _ => None,
            })
            .collect();
        let Some(last) = theirs.last() else { return };
        let open =
            !inner.background.load(Ordering::SeqCst) && *lock(&inner.open_group) == Some(self.gid);
        if open {
            return;
        }
        let name = &self.engine.log().state().name;
        let title = if name.is_empty() {
            self.gid.to_hex()[..8].to_owned()
        } else {
            name.clone()
        };
        let preview = match &last.msg.body {
            Body::Text(t) => message_preview(t.as_bytes()),
            Body::File(_) => "a file".to_owned(),
        };
        let author = inner.contact_name(&last.author_fp()).await;
        let body = match theirs.len() {
            1 => format!("{author}: {preview}"),
            n => format!("{n} new messages; {author}: {preview}"),
        };
        notifier.notify(Notification {
            category: NotificationCategory::GroupMessage,
            title,
            body,
            conversation: Some(self.gid.to_hex()),
        });
    }
}
