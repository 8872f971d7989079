//! Files in groups on [`PeernsNode`] (decision 0011): share a file with a group, and see where
//! a shared file stands on this device. Progress and arrival come as
//! [`GroupEvent::FileProgress`](crate::groups::GroupEvent::FileProgress) and
//! [`GroupEvent::FileDone`](crate::groups::GroupEvent::FileDone).

use peerns_core::groups::files::{GroupFile, GroupFileState};
use peerns_core::node::groups as offline;

use crate::groups::{GroupMessage, group_id};
use crate::{PeernsError, PeernsNode, on_runtime};

/// The file a group message announces.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct GroupFileRef {
    /// File ID, 32 hex characters (for `group_file`).
    pub id: String,
    /// File name (no path).
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// Media type, e.g. `image/jpeg`.
    pub mime: String,
}

impl From<offline::GroupFileRef> for GroupFileRef {
    fn from(f: offline::GroupFileRef) -> Self {
        Self {
            id: f.id,
            name: f.name,
            size: f.size,
            mime: f.mime,
        }
    }
}

/// Where a group file stands on this device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum GroupFileTransfer {
    /// Chunks are coming (or will when a member holding it is online).
    Transferring,
    /// Whole and verified (or ours).
    Done,
    /// Not fetched: over the size limit, or no holder's bytes matched the author's hash.
    Refused,
}

/// A group file on this device.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct GroupFileInfo {
    /// What the message announced.
    pub file: GroupFileRef,
    /// Who shared it (fingerprint).
    pub author: String,
    /// Where it stands.
    pub state: GroupFileTransfer,
    /// Bytes on disk so far.
    pub received: u64,
    /// The file, once done.
    pub path: Option<String>,
}

impl From<GroupFile> for GroupFileInfo {
    fn from(f: GroupFile) -> Self {
        let m = f.manifest;
        Self {
            received: (f.next_index * u64::from(m.chunk_size)).min(m.size),
            file: GroupFileRef {
                id: hex::encode(m.id),
                name: m.name,
                size: m.size,
                mime: m.mime,
            },
            author: f.author.to_hex(),
            state: match f.state {
                GroupFileState::Transferring => GroupFileTransfer::Transferring,
                GroupFileState::Done => GroupFileTransfer::Done,
                GroupFileState::Refused => GroupFileTransfer::Refused,
            },
            path: f.path,
        }
    }
}

#[uniffi::export(async_runtime = "tokio")]
impl PeernsNode {
    /// Shares the file at `path` with the group: copied into the profile, announced by a
    /// message (returned once stored), then fetched by every member through the router.
    /// `NotAllowed` in a meeting room (it keeps nothing) or while we are not a member.
    pub async fn group_send_file(
        &self,
        group: String,
        path: String,
    ) -> Result<GroupMessage, PeernsError> {
        let (node, gid) = (self.running()?, group_id(&group)?);
        let m = on_runtime(async move { node.group_send_file(&gid, &path).await }).await??;
        Ok(m.into())
    }

    /// Where the group file `file` (a [`GroupFileRef::id`]) stands here; `None` if no message
    /// announced it to us.
    pub async fn group_file(
        &self,
        group: String,
        file: String,
    ) -> Result<Option<GroupFileInfo>, PeernsError> {
        let (node, gid) = (self.running()?, group_id(&group)?);
        let f = on_runtime(async move { node.group_file(&gid, &file).await }).await??;
        Ok(f.map(Into::into))
    }
}
