//! The node's group-call calls: join, leave, announce our media, the roster, Last-N.

use super::*;

impl crate::node::Node {
    /// Sets N of Last-N for the group calls we route from our next join on: the video of the
    /// N most recent speakers reaches each participant, the others' as thumbnails (1 to 7;
    /// default 4). The router's setting applies to everyone in its call.
    pub fn set_group_call_last_n(&self, n: u8) -> Result<(), NodeError> {
        if !(1..=MAX_SLOTS - THUMBNAIL_SLOTS).contains(&n) {
            return Err(NodeError::InvalidInput(format!(
                "last N must be 1 to {}",
                MAX_SLOTS - THUMBNAIL_SLOTS
            )));
        }
        self.inner
            .call_last_n
            .store(n, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }

    /// Joins the call of group `gid` sending `kinds` (a second join replaces the first).
    /// Push our encoded frames and take the others' through the returned handle; who is in the
    /// call arrives as [`super::GroupUpdate::CallRoster`].
    pub async fn group_call_join(
        &self,
        gid: &GroupId,
        kinds: Kinds,
    ) -> Result<GroupCallMedia, NodeError> {
        self.group_call_cmd(gid, |r| CallCmd::Join(kinds, r)).await
    }

    /// Leaves the call of group `gid`.
    pub async fn group_call_leave(&self, gid: &GroupId) -> Result<(), NodeError> {
        self.group_call_cmd(gid, CallCmd::Leave).await
    }

    /// Announces what we send in the call of group `gid` (mute, camera off, screen).
    pub async fn group_call_set_media(
        &self,
        gid: &GroupId,
        state: MediaState,
    ) -> Result<(), NodeError> {
        self.group_call_cmd(gid, |r| CallCmd::SetMedia(state, r))
            .await
    }

    /// Who is in the call of group `gid`, as we know it.
    pub async fn group_call_roster(&self, gid: &GroupId) -> Result<Vec<RosterEntry>, NodeError> {
        self.group_call_cmd(gid, CallCmd::Roster).await
    }

    pub(super) async fn group_call_cmd<T>(
        &self,
        gid: &GroupId,
        cmd: impl FnOnce(Reply<T>) -> CallCmd,
    ) -> Result<T, NodeError> {
        let tx = self.inner.group_tx(gid)?;
        let (reply, rx) = tokio::sync::oneshot::channel();
        tx.send(Cmd::Call(cmd(reply)))
            .await
            .map_err(|_| NodeError::Stopped)?;
        rx.await.map_err(|_| NodeError::Stopped)?
    }
}
