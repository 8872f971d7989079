//! The groups API of [`Node`]: create, join, send, invite, remove, leave, delete, events,
//! presence.

use tokio::sync::{mpsc, oneshot};

use super::{Cmd, GroupUpdate, Inner, ProposeOp, blocking, offline};
use crate::groups::GroupId;
use crate::identity::Fingerprint;
use crate::node::groups::GroupMessageView;
use crate::node::{Node, NodeError, lock};

/// A text queued by [`Node::group_queue`].
pub struct QueuedSend(oneshot::Receiver<Result<GroupMessageView, NodeError>>);

impl QueuedSend {
    /// The message once stored (durable), or why it was not sent.
    pub async fn stored(self) -> Result<GroupMessageView, NodeError> {
        self.0.await.map_err(|_| NodeError::Stopped)?
    }
}

impl Node {
    /// Group updates from now on, in order, starting with a [`GroupUpdate::Role`] for each
    /// group we route already (so a role taken before we subscribed is not missed; one taken
    /// just then may be told twice). The receiver ends when the node stops.
    pub fn group_events(&self) -> mpsc::UnboundedReceiver<GroupUpdate> {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut g = lock(&self.inner.groups);
        for &group in &g.routing {
            let _ = tx.send(GroupUpdate::Role {
                group,
                router: true,
            });
        }
        if let Some(subs) = g.subscribers.as_mut() {
            subs.push(tx);
        }
        rx
    }

    /// Creates a group with us as its only member, admin and (once elected) router.
    pub async fn group_create(&self, name: &str) -> Result<GroupId, NodeError> {
        let (name, store, id) = (
            name.to_owned(),
            self.inner.store.clone(),
            self.inner.identity.clone(),
        );
        let gid = blocking(move || offline::create_in(&store, &id, &name)).await?;
        Inner::start_group(&self.inner, gid).await?;
        Ok(gid)
    }

    /// Joins by an invite link naming us (opening it is our consent) and starts the group.
    pub async fn group_join(&self, link: &str) -> Result<GroupId, NodeError> {
        let (link, store, me) = (
            link.to_owned(),
            self.inner.store.clone(),
            self.inner.fingerprint,
        );
        let gid = blocking(move || offline::join_in(&store, &me, &link)).await?;
        lock(&self.inner.groups).deleted.remove(&gid);
        Inner::start_group(&self.inner, gid).await?;
        Ok(gid)
    }

    /// Sends a text to the group; returns it once stored (durable). It stays in the outbox
    /// until the router acknowledges it.
    pub async fn group_send(
        &self,
        gid: &GroupId,
        text: &str,
    ) -> Result<GroupMessageView, NodeError> {
        self.group_queue(gid, text).await?.stored().await
    }

    /// Queues a text for the group and returns as soon as it is queued; [`QueuedSend::stored`]
    /// then answers like [`group_send`](Self::group_send). Texts queued one after another are
    /// sent in that order, so a caller with many to send (a script, a paste) queues the next
    /// without waiting for each to be stored, and they are signed, stored and sent together.
    pub async fn group_queue(&self, gid: &GroupId, text: &str) -> Result<QueuedSend, NodeError> {
        let tx = self.inner.group_tx(gid)?;
        let (reply, rx) = oneshot::channel();
        tx.send(Cmd::Send(text.to_owned(), reply))
            .await
            .map_err(|_| NodeError::Stopped)?;
        Ok(QueuedSend(rx))
    }

    /// Invites `invitee` (we must be an admin) and returns the link only it can use; the
    /// router appends the invite. Offline: [`super::groups::invite`].
    pub async fn group_invite(
        &self,
        gid: &GroupId,
        invitee: &Fingerprint,
    ) -> Result<String, NodeError> {
        let tx = self.inner.group_tx(gid)?;
        let (reply, rx) = oneshot::channel();
        tx.send(Cmd::Invite(*invitee, reply))
            .await
            .map_err(|_| NodeError::Stopped)?;
        rx.await.map_err(|_| NodeError::Stopped)?
    }

    /// Removes a member (we must be an admin); the router appends it.
    pub async fn group_remove(&self, gid: &GroupId, member: &Fingerprint) -> Result<(), NodeError> {
        self.group_propose(gid, ProposeOp::Remove(*member)).await
    }

    /// Leaves the group; the router appends our leave.
    pub async fn group_leave(&self, gid: &GroupId) -> Result<(), NodeError> {
        self.group_propose(gid, ProposeOp::Leave).await
    }

    /// Deletes group `gid` from this phone: its log, messages and files. A member leaves
    /// first, and leaves the group's call: the leave reaches the others if our router is
    /// linked now (or we route); if not, they list us until an admin removes us. A meeting
    /// room is left, not deleted.
    pub async fn group_delete(&self, gid: &GroupId) -> Result<(), NodeError> {
        let gid = *gid;
        {
            let mut g = lock(&self.inner.groups);
            if g.room == Some(gid) {
                return Err(NodeError::NotAllowed(
                    "a meeting room is left, not deleted".into(),
                ));
            }
            // From now on no task or fetch of it starts (a restart may be on its way).
            g.deleted.insert(gid);
        }
        if self.inner.group_tx(&gid).is_ok() {
            // Best effort: either may be refused (not a member yet, not in the call).
            let _ = self.group_call_leave(&gid).await;
            if let Err(e) = self.group_leave(&gid).await {
                tracing::debug!(group = %gid, error = %e, "deleting a group we could not leave");
            }
            // After the leave in the task's queue: its flush sends the leave, then it stops.
            self.inner.stop_live(&gid).await;
        }
        {
            let mut g = lock(&self.inner.groups);
            g.files.end_group(&gid);
            g.members_of.remove(&gid);
            g.router_of.remove(&gid);
            g.restarts.remove(&gid);
        }
        let (store, files_dir) = (self.inner.store.clone(), self.inner.files_dir.clone());
        blocking(move || offline::delete_in(&store, &files_dir, &gid)).await
    }

    async fn group_propose(&self, gid: &GroupId, op: ProposeOp) -> Result<(), NodeError> {
        let tx = self.inner.group_tx(gid)?;
        let (reply, rx) = oneshot::channel();
        tx.send(Cmd::Propose(op, reply))
            .await
            .map_err(|_| NodeError::Stopped)?;
        rx.await.map_err(|_| NodeError::Stopped)?
    }

    /// The members other than us that are online in `gid` now (present in its namespace).
    pub fn group_online(&self, gid: &GroupId) -> Vec<Fingerprint> {
        lock(&self.inner.groups)
            .online
            .get(gid)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Whether we route `gid` now.
    pub fn group_routing(&self, gid: &GroupId) -> bool {
        lock(&self.inner.groups).routing.contains(gid)
    }

    /// The groups running on this node.
    pub fn running_groups(&self) -> Vec<GroupId> {
        lock(&self.inner.groups).running.keys().copied().collect()
    }
}
