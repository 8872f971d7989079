//! The meeting room for everyone nearby (issue 14, decision 0011): an open group whose ID
//! spreads through stadium mode. Everyone in it advertises the room in the note of its
//! stadium records; whoever opens the meeting room joins the room it sees advertised nearby
//! (the lowest ID when it sees several) or starts a new one. Two rooms started at the same
//! moment merge: a member that sees a lower room nearby moves there and posts its own
//! messages again. Nothing of a room is stored; it fades when its last member leaves.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;

use super::{Cmd, GroupUpdate, Inner, MemHistory};
use crate::groups::{Engine, EngineConfig, GroupId, Log, room_namespace_prefix};
use crate::node::groups::GroupMessageView;
use crate::node::{Node, NodeError, lock};

/// First byte of a stadium note that names a meeting room (then its 16-byte ID).
const ROOM_NOTE: u8 = b'R';
/// How long opening the meeting room waits for the stadium cells to find their routers
/// (and so the rooms advertised nearby).
const LOOK: Duration = Duration::from_secs(4);
/// How often a member looks for a lower room nearby to merge into.
const CHECK: Duration = Duration::from_secs(2);
/// Most of our own messages posted again in the room we move to.
const MAX_REPOST: usize = 50;

/// The stadium note advertising room `gid`.
fn room_note(gid: &GroupId) -> Vec<u8> {
    let mut note = vec![ROOM_NOTE];
    note.extend_from_slice(&gid.0);
    note
}

/// The meeting room a stadium record's note names, if any.
pub(in crate::node) fn parse_room_note(note: &[u8]) -> Option<GroupId> {
    match note {
        [ROOM_NOTE, rest @ ..] => rest.try_into().ok().map(GroupId),
        _ => None,
    }
}

impl Inner {
    /// The note our stadium records carry now.
    pub(in crate::node) fn room_note(&self) -> Vec<u8> {
        lock(&self.groups)
            .room
            .map(|g| room_note(&g))
            .unwrap_or_default()
    }

    /// The lowest room advertised nearby.
    async fn lowest_room_nearby(this: &Arc<Inner>) -> Option<GroupId> {
        Node::from_inner(this.clone())
            .nearby()
            .await
            .into_iter()
            .filter_map(|p| p.room)
            .min()
    }

    /// Starts room `gid` (nothing stored; history from the others), advertises it in our
    /// stadium cells and tells the application.
    fn enter_room(this: &Arc<Inner>, gid: GroupId) -> Result<(), NodeError> {
        let engine = Engine::new(
            EngineConfig::default(),
            this.identity.clone(),
            Log::open_room(gid),
            MemHistory::default(),
        );
        Inner::spawn_live(this, engine, room_namespace_prefix(&gid), true)?;
        lock(&this.groups).room = Some(gid);
        this.set_stadium_note(&room_note(&gid));
        this.emit_group(GroupUpdate::Room { group: Some(gid) });
        let weak = Arc::downgrade(this);
        let task = tokio::spawn(async move {
            loop {
                tokio::time::sleep(CHECK).await;
                let Some(inner) = weak.upgrade() else { return };
                if lock(&inner.groups).room != Some(gid) {
                    return;
                }
                if let Some(lower) = Inner::lowest_room_nearby(&inner).await
                    && lower < gid
                {
                    Inner::move_room(&inner, gid, lower).await;
                    return;
                }
            }
        });
        this.track([task.abort_handle()]);
        Ok(())
    }

    /// Stops a running group's task and waits for it (its namespace says goodbye).
    pub(super) async fn stop_live(&self, gid: &GroupId) {
        let tx = {
            let mut g = lock(&self.groups);
            g.routing.remove(gid);
            g.online.remove(gid);
            g.running.remove(gid)
        };
        if let Some(tx) = tx {
            let (done, wait) = oneshot::channel();
            if tx.send(Cmd::Stop(done)).await.is_ok() {
                let _ = wait.await;
            }
        }
    }

    /// Merges into the lower room `to`: leaves `from`, enters `to`, posts our own messages of
    /// `from` again there (they wait until we know our seq in `to`).
    async fn move_room(this: &Arc<Inner>, from: GroupId, to: GroupId) {
        tracing::info!(%from, %to, "merging into the lower meeting room nearby");
        let me = this.fingerprint;
        let ours: Vec<String> = Inner::room_history(this, &from)
            .await
            .unwrap_or_default()
            .into_iter()
            .filter(|m| m.author == me && !m.text.is_empty())
            .map(|m| m.text)
            .collect();
        this.stop_live(&from).await;
        {
            let mut g = lock(&this.groups);
            if g.room != Some(from) {
                return;
            }
            g.room = None;
        }
        if let Err(e) = Inner::enter_room(this, to) {
            tracing::warn!(error = %e, "could not enter the meeting room nearby");
            this.set_stadium_note(&[]);
            this.emit_group(GroupUpdate::Room { group: None });
            return;
        }
        let node = Node::from_inner(this.clone());
        let skip = ours.len().saturating_sub(MAX_REPOST);
        for text in ours.into_iter().skip(skip) {
            if let Err(e) = node.group_send(&to, &text).await {
                tracing::info!(error = %e, "a message was not posted again in the merged room");
                break;
            }
        }
    }

    async fn room_history(
        this: &Arc<Inner>,
        gid: &GroupId,
    ) -> Result<Vec<GroupMessageView>, NodeError> {
        let tx = this.group_tx(gid)?;
        let (reply, rx) = oneshot::channel();
        tx.send(Cmd::History(reply))
            .await
            .map_err(|_| NodeError::Stopped)?;
        rx.await.map_err(|_| NodeError::Stopped)
    }
}

impl Node {
    /// Opens the meeting room for everyone nearby (stadium mode must be on with a position):
    /// joins the room advertised in our stadium cells (the lowest ID if several) or starts
    /// one, and returns its ID. Send with [`Node::group_send`]; messages arrive as
    /// [`GroupUpdate::Message`] of that ID; [`GroupUpdate::Room`] tells when the room merged
    /// into another. Already in a room: returns it.
    pub async fn meeting_room_join(&self) -> Result<GroupId, NodeError> {
        if let Some(gid) = self.meeting_room() {
            return Ok(gid);
        }
        let t0 = tokio::time::Instant::now();
        loop {
            match self.inner.stadium_settled().await {
                None => {
                    return Err(NodeError::InvalidInput(
                        "the meeting room needs stadium mode with a position".into(),
                    ));
                }
                Some(true) => break,
                Some(false) if t0.elapsed() >= LOOK => break,
                Some(false) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
        let gid = Inner::lowest_room_nearby(&self.inner)
            .await
            .unwrap_or_else(GroupId::random);
        if let Some(gid) = self.meeting_room() {
            return Ok(gid);
        }
        Inner::enter_room(&self.inner, gid)?;
        Ok(gid)
    }

    /// The meeting room we are in.
    pub fn meeting_room(&self) -> Option<GroupId> {
        lock(&self.inner.groups).room
    }

    /// Leaves the meeting room (its history goes with it).
    pub async fn meeting_room_leave(&self) {
        let Some(gid) = lock(&self.inner.groups).room.take() else {
            return;
        };
        self.inner.set_stadium_note(&[]);
        self.inner.stop_live(&gid).await;
        self.inner.emit_group(GroupUpdate::Room { group: None });
    }

    /// The meeting room's messages, in display order.
    pub async fn meeting_room_history(&self) -> Result<Vec<GroupMessageView>, NodeError> {
        let gid = self
            .meeting_room()
            .ok_or_else(|| NodeError::InvalidInput("not in a meeting room".into()))?;
        Inner::room_history(&self.inner, &gid).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_notes_round_trip_and_other_notes_name_no_room() {
        let gid = GroupId([7; 16]);
        assert_eq!(parse_room_note(&room_note(&gid)), Some(gid));
        assert_eq!(parse_room_note(b""), None);
        assert_eq!(parse_room_note(&[ROOM_NOTE; 16]), None);
        assert_eq!(parse_room_note(&[ROOM_NOTE; 18]), None);
        assert_eq!(parse_room_note(b"peerns2-abc"), None);
    }
}
