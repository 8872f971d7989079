//! Where a 1:1 file transfer stands on [`PeernsNode`], for a chat shown after its
//! `FileProgress` / `FileReceived` events went by: how far it got, and a received file's path.

use peerns_core::chat::file::FileState;
use peerns_core::node::FileTransfer;

use crate::{PeernsError, PeernsNode, on_runtime};

/// Where a transfer stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum FileTransferState {
    /// Chunks are moving (or will when the two meet).
    Transferring,
    /// Received whole and verified (ours: the receiver confirmed it).
    Done,
    /// Refused by the receiver (too large, over its quota) or failed verification for good.
    Refused,
}

/// A file message's transfer.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct FileTransferInfo {
    /// The transfer (= the file message's id).
    pub id: String,
    /// The contact's fingerprint.
    pub conversation: String,
    /// We send it.
    pub outgoing: bool,
    /// File name (no path).
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// Bytes the receiver holds (the size once done).
    pub bytes: u64,
    /// Where it stands.
    pub state: FileTransferState,
    /// A received file that is whole: its path inside the profile, to open it.
    pub path: Option<String>,
}

impl From<FileTransfer> for FileTransferInfo {
    fn from(t: FileTransfer) -> Self {
        Self {
            id: t.id,
            conversation: t.conversation,
            outgoing: t.outgoing,
            name: t.name,
            size: t.size,
            bytes: t.bytes,
            state: match t.state {
                FileState::Transferring => FileTransferState::Transferring,
                FileState::Done => FileTransferState::Done,
                FileState::Refused => FileTransferState::Refused,
            },
            path: t.path,
        }
    }
}

#[uniffi::export(async_runtime = "tokio")]
impl PeernsNode {
    /// The transfer of file message `id`; `None` for a message that carries no file.
    pub async fn file_transfer(&self, id: String) -> Result<Option<FileTransferInfo>, PeernsError> {
        let node = self.running()?;
        let t = on_runtime(async move { node.file_transfer(&id).await }).await??;
        Ok(t.map(Into::into))
    }
}
