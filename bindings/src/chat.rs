//! Contacts and 1:1 chat on [`PeernsNode`]: records mirroring the core's types, and the calls.
//! Conversations are named by the contact's fingerprint (64 hex characters).

use peerns_core::chat::store::Message;
use peerns_core::chat::wire::OpKind;
use peerns_core::node;

use crate::{PeernsError, PeernsNode, on_runtime};

/// How much a contact may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum Trust {
    /// Refused at the handshake; nothing stored from them.
    Blocked,
    /// Messages and files.
    Known,
    /// Also calls, presence, group invites (what an accepted request gives).
    Trusted,
    /// Also signed RPC calls.
    FullAccess,
}

impl From<node::Trust> for Trust {
    fn from(t: node::Trust) -> Self {
        match t {
            node::Trust::Blocked => Self::Blocked,
            node::Trust::Known => Self::Known,
            node::Trust::Trusted => Self::Trusted,
            node::Trust::FullAccess => Self::FullAccess,
        }
    }
}

impl From<Trust> for node::Trust {
    fn from(t: Trust) -> Self {
        match t {
            Trust::Blocked => Self::Blocked,
            Trust::Known => Self::Known,
            Trust::Trusted => Self::Trusted,
            Trust::FullAccess => Self::FullAccess,
        }
    }
}

/// A saved contact.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Contact {
    /// Identity key fingerprint, 64 hex characters.
    pub fingerprint: String,
    /// Short fingerprint for people to compare.
    pub short: String,
    /// Display name.
    pub name: String,
    /// Trust level.
    pub trust: Trust,
    /// The fingerprint was compared out of band.
    pub verified: bool,
    /// Current persistent PeerJS ID, if known.
    pub peer_id: Option<String>,
}

impl From<node::Contact> for Contact {
    fn from(c: node::Contact) -> Self {
        Self {
            fingerprint: c.fingerprint.to_hex(),
            short: c.fingerprint.short(),
            name: c.name,
            trust: c.trust.into(),
            verified: c.verified,
            peer_id: c.peer_id,
        }
    }
}

/// An open contact request, either way.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ContactRequest {
    /// The other side's fingerprint.
    pub fingerprint: String,
    /// Its display name.
    pub name: String,
    /// Its persistent PeerJS ID.
    pub peer_id: String,
    /// We sent it.
    pub outgoing: bool,
    /// Moved to "later" (by the user, or unanswered for a minute).
    pub later: bool,
    /// When it was sent or arrived, Unix ms.
    pub created_ms: u64,
}

/// A share link whose owner could not be reached yet: its contact request goes out once the
/// owner is online (`NodeEvent::ContactRequestSent`).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct WaitingLink {
    /// The owner's fingerprint, as the link gives it (the handshake that reaches it proves it).
    pub fingerprint: String,
    /// The owner's persistent PeerJS ID.
    pub peer_id: String,
    /// When it was added, Unix ms.
    pub created_ms: u64,
    /// When it was last tried, Unix ms.
    pub tried_ms: u64,
}

impl From<node::WaitingLink> for WaitingLink {
    fn from(w: node::WaitingLink) -> Self {
        Self {
            fingerprint: w.fingerprint.to_hex(),
            peer_id: w.peer_id,
            created_ms: w.created_ms,
            tried_ms: w.tried_ms,
        }
    }
}

impl From<node::Request> for ContactRequest {
    fn from(r: node::Request) -> Self {
        Self {
            fingerprint: r.fingerprint.to_hex(),
            name: r.name,
            peer_id: r.peer_id,
            outgoing: r.outgoing,
            later: r.later,
            created_ms: r.created_ms,
        }
    }
}

/// What a message holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum MessageKind {
    /// Text.
    Text,
    /// A file.
    File,
}

/// How far a message got. Incoming messages are `Delivered`, then `Read`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum MessageStatus {
    /// Stored, not yet sent.
    Waiting,
    /// Sent on a live link, not yet acknowledged.
    Sent,
    /// Stored by the recipient.
    Delivered,
    /// Read by the recipient.
    Read,
    /// The recipient refused it.
    Failed,
}

impl From<node::MessageStatus> for MessageStatus {
    fn from(s: node::MessageStatus) -> Self {
        match s {
            node::MessageStatus::Waiting => Self::Waiting,
            node::MessageStatus::Sent => Self::Sent,
            node::MessageStatus::Delivered => Self::Delivered,
            node::MessageStatus::Read => Self::Read,
            node::MessageStatus::Failed => Self::Failed,
        }
    }
}

/// A message as the chat screen shows it (edits and deletes applied).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ChatMessage {
    /// The contact's fingerprint.
    pub conversation: String,
    /// Message id, 32 hex characters.
    pub id: String,
    /// We sent it.
    pub outgoing: bool,
    /// Its place in the sender's stream.
    pub seq: u64,
    /// Text or file.
    pub kind: MessageKind,
    /// The text; empty once deleted and for files.
    pub text: String,
    /// Sender's clock, Unix ms.
    pub sent_ms: u64,
    /// When it arrived here (incoming only), Unix ms.
    pub received_ms: Option<u64>,
    /// Delivery state.
    pub status: MessageStatus,
    /// It was edited.
    pub edited: bool,
    /// It was deleted.
    pub deleted: bool,
    /// For files: what the signed manifest says.
    pub file: Option<FileInfo>,
}

/// A file message's manifest.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct FileInfo {
    /// File name (no path).
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// Media type.
    pub mime: String,
}

impl From<Message> for ChatMessage {
    fn from(m: Message) -> Self {
        Self {
            conversation: m.conv.to_hex(),
            id: hex::encode(m.id),
            outgoing: m.outgoing,
            seq: m.seq,
            kind: match m.kind {
                OpKind::File => MessageKind::File,
                _ => MessageKind::Text,
            },
            text: m.text().unwrap_or_default().to_owned(),
            sent_ms: m.sent_ms,
            received_ms: m.recv_ms,
            status: m.status.into(),
            edited: m.edited,
            deleted: m.deleted,
            file: m.manifest().map(|f| FileInfo {
                name: f.name,
                size: f.size,
                mime: f.mime,
            }),
        }
    }
}

/// A conversation for the chat list.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Conversation {
    /// The contact's fingerprint.
    pub conversation: String,
    /// The newest visible message.
    pub last: Option<ChatMessage>,
    /// Incoming messages not yet read.
    pub unread: u64,
    /// When the contact was last connected, Unix ms.
    pub last_seen_ms: Option<u64>,
    /// A link to the contact is open now.
    pub online: bool,
}

#[uniffi::export(async_runtime = "tokio")]
impl PeernsNode {
    /// Our share link (QR text): `peerns2:<persistent id>?fp=<fingerprint>`.
    pub fn share_link(&self) -> Result<String, PeernsError> {
        Ok(self.running()?.share_link())
    }

    /// Asks the owner of `link` to become a contact: connects now (the handshake must prove
    /// the link's fingerprint) and records the outgoing request. When the owner cannot be
    /// reached now, fails with `PeernsError::Waiting`: the link is kept ([`Self::waiting_links`])
    /// and the request goes out once both are online (`NodeEvent::ContactRequestSent`).
    pub async fn request_contact(&self, link: String) -> Result<ContactRequest, PeernsError> {
        let node = self.running()?;
        let req = on_runtime(async move { node.request_contact(&link).await }).await??;
        Ok(req.into())
    }

    /// Open requests both ways, oldest first.
    pub async fn requests(&self) -> Result<Vec<ContactRequest>, PeernsError> {
        let node = self.running()?;
        let list = on_runtime(async move { node.requests().await }).await??;
        Ok(list.into_iter().map(Into::into).collect())
    }

    /// Accepts the incoming request of `fingerprint`; returns the new contact.
    pub async fn accept_request(&self, fingerprint: String) -> Result<Contact, PeernsError> {
        let node = self.running()?;
        let c = on_runtime(async move { node.accept_request(&fingerprint).await }).await??;
        Ok(c.into())
    }

    /// Rejects an incoming request (the requester is not told).
    pub async fn reject_request(&self, fingerprint: String) -> Result<(), PeernsError> {
        let node = self.running()?;
        Ok(on_runtime(async move { node.reject_request(&fingerprint).await }).await??)
    }

    /// Share links whose owner could not be reached yet, oldest first.
    pub async fn waiting_links(&self) -> Result<Vec<WaitingLink>, PeernsError> {
        let node = self.running()?;
        let list = on_runtime(async move { node.waiting_links().await }).await??;
        Ok(list.into_iter().map(Into::into).collect())
    }

    /// Cancels our outgoing request, or a link of ours that waits to be reached.
    pub async fn cancel_request(&self, fingerprint: String) -> Result<(), PeernsError> {
        let node = self.running()?;
        Ok(on_runtime(async move { node.cancel_request(&fingerprint).await }).await??)
    }

    /// Moves an incoming request to "later".
    pub async fn later_request(&self, fingerprint: String) -> Result<(), PeernsError> {
        let node = self.running()?;
        Ok(on_runtime(async move { node.later_request(&fingerprint).await }).await??)
    }

    /// Every contact, by name.
    pub async fn contacts(&self) -> Result<Vec<Contact>, PeernsError> {
        let node = self.running()?;
        let list = on_runtime(async move { node.contacts().await }).await??;
        Ok(list.into_iter().map(Into::into).collect())
    }

    /// Sets a contact's trust level; `Blocked` closes its links at once.
    pub async fn set_trust(&self, fingerprint: String, trust: Trust) -> Result<(), PeernsError> {
        let node = self.running()?;
        Ok(on_runtime(async move { node.set_trust(&fingerprint, trust.into()).await }).await??)
    }

    /// Records whether the contact's fingerprint was compared out of band.
    pub async fn set_verified(
        &self,
        fingerprint: String,
        verified: bool,
    ) -> Result<(), PeernsError> {
        let node = self.running()?;
        Ok(on_runtime(async move { node.set_verified(&fingerprint, verified).await }).await??)
    }

    /// Removes a contact (its conversation stays).
    pub async fn remove_contact(&self, fingerprint: String) -> Result<(), PeernsError> {
        let node = self.running()?;
        Ok(on_runtime(async move { node.remove_contact(&fingerprint).await }).await??)
    }

    /// Sends the file at `path` to contact `conversation` (copied into the profile first; offered
    /// now or when the contact is next reached; progress as `FileProgress` events).
    pub async fn send_file(
        &self,
        conversation: String,
        path: String,
    ) -> Result<ChatMessage, PeernsError> {
        let node = self.running()?;
        let m = on_runtime(async move { node.send_file(&conversation, &path).await }).await??;
        Ok(m.into())
    }

    /// Sets the largest incoming file accepted, in bytes (kept in the profile).
    pub async fn set_max_file_size(&self, bytes: u64) -> Result<(), PeernsError> {
        let node = self.running()?;
        Ok(on_runtime(async move { node.set_max_file_size(bytes).await }).await??)
    }

    /// Sets the quotas of unfinished incoming bytes, from one contact and from all together
    /// (kept in the profile; defaults 2 GiB and 4 GiB): an offer over either is refused.
    pub async fn set_incoming_quota(
        &self,
        per_contact: u64,
        total: u64,
    ) -> Result<(), PeernsError> {
        let node = self.running()?;
        Ok(on_runtime(async move { node.set_incoming_quota(per_contact, total).await }).await??)
    }

    /// Sets after how many seconds without progress an incoming transfer is dropped (kept in
    /// the profile; default 7 days).
    pub async fn set_file_expiry(&self, seconds: u64) -> Result<(), PeernsError> {
        let node = self.running()?;
        let after = std::time::Duration::from_secs(seconds);
        Ok(on_runtime(async move { node.set_file_expiry(after).await }).await??)
    }

    /// Stores a text message to contact `conversation` and sends it now or when the contact is
    /// next reached (also after a restart).
    pub async fn send_message(
        &self,
        conversation: String,
        text: String,
    ) -> Result<ChatMessage, PeernsError> {
        let node = self.running()?;
        let m = on_runtime(async move { node.send_message(&conversation, &text).await }).await??;
        Ok(m.into())
    }

    /// Replaces the text of our message `id`; returns it as it is now.
    pub async fn edit_message(
        &self,
        conversation: String,
        id: String,
        text: String,
    ) -> Result<ChatMessage, PeernsError> {
        let node = self.running()?;
        let m =
            on_runtime(async move { node.edit_message(&conversation, &id, &text).await }).await??;
        Ok(m.into())
    }

    /// Deletes our message `id` on both sides; returns it as it is now.
    pub async fn delete_message(
        &self,
        conversation: String,
        id: String,
    ) -> Result<ChatMessage, PeernsError> {
        let node = self.running()?;
        let m = on_runtime(async move { node.delete_message(&conversation, &id).await }).await??;
        Ok(m.into())
    }

    /// The `limit` newest messages with `conversation`, oldest first.
    pub async fn messages(
        &self,
        conversation: String,
        limit: u32,
    ) -> Result<Vec<ChatMessage>, PeernsError> {
        let node = self.running()?;
        let list = on_runtime(async move { node.messages(&conversation, limit).await }).await??;
        Ok(list.into_iter().map(Into::into).collect())
    }

    /// Every conversation, most recent first.
    pub async fn conversations(&self) -> Result<Vec<Conversation>, PeernsError> {
        let node = self.running()?;
        Ok(on_runtime(async move {
            let list = node.conversations().await?;
            Ok::<_, node::NodeError>(
                list.into_iter()
                    .map(|c| {
                        let conversation = c.conv.to_hex();
                        Conversation {
                            online: node.is_connected(&conversation),
                            conversation,
                            last: c.last.map(Into::into),
                            unread: c.unread,
                            last_seen_ms: c.last_seen_ms,
                        }
                    })
                    .collect(),
            )
        })
        .await??)
    }

    /// Marks `conversation` read and tells the contact.
    pub async fn mark_read(&self, conversation: String) -> Result<(), PeernsError> {
        let node = self.running()?;
        Ok(on_runtime(async move { node.mark_read(&conversation).await }).await??)
    }

    /// The chat on screen (`None`: none): its messages raise no notification while the app is
    /// in the foreground.
    pub fn set_open_chat(&self, conversation: Option<String>) -> Result<(), PeernsError> {
        Ok(self.running()?.set_open_chat(conversation.as_deref())?)
    }

    /// Whether a link to contact `conversation` is open.
    pub fn is_online(&self, conversation: String) -> Result<bool, PeernsError> {
        Ok(self.running()?.is_connected(&conversation))
    }

    /// Fingerprints of the contacts being looked for at a rendezvous now.
    pub fn searching(&self) -> Result<Vec<String>, PeernsError> {
        Ok(self.running()?.searching())
    }

    /// Round trip to contact `conversation` in milliseconds (connecting first if needed).
    pub async fn ping(&self, conversation: String) -> Result<u64, PeernsError> {
        let node = self.running()?;
        let rtt = on_runtime(async move { node.ping(&conversation).await }).await??;
        Ok(u64::try_from(rtt.as_millis()).unwrap_or(u64::MAX))
    }
}
