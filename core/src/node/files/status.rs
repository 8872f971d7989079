//! Where a 1:1 file transfer stands, for a chat screen opened after its events went by: how
//! far it got and, once a received file is whole, where it is (to open it).

use super::{final_path, hex_id};
use crate::chat::file::{self, FileState};
use crate::chat::store::ChatError;
use crate::node::{Node, NodeError, parse_hex_id};

/// A transfer as a chat shows it ([`Node::file_transfer`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileTransfer {
    /// The transfer (= its file message's id, 32 hex characters).
    pub id: String,
    /// The contact's fingerprint.
    pub conversation: String,
    /// We send it.
    pub outgoing: bool,
    /// The file's name (no path).
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
    /// Bytes the receiver holds (acknowledged chunks; the size once done).
    pub bytes: u64,
    /// Where it stands.
    pub state: FileState,
    /// A received file that is whole: where it is, inside the profile (read only to the app).
    pub path: Option<String>,
}

impl Node {
    /// The transfer of file message `id`, or `None` if there is none (a message without a
    /// file, or a transfer removed with its chat).
    pub async fn file_transfer(&self, id: &str) -> Result<Option<FileTransfer>, NodeError> {
        let id = parse_hex_id(id, "file")?;
        let dir = self.inner.files_dir.clone();
        self.inner
            .db(move |c| {
                let Some(t) = file::get(c, &id)? else {
                    return Ok::<_, ChatError>(None);
                };
                let m = &t.manifest;
                // A finished file's last chunks may never have been acknowledged one by one.
                let bytes = if t.state == FileState::Done {
                    m.size
                } else {
                    t.next_index
                        .saturating_mul(u64::from(m.chunk_size))
                        .min(m.size)
                };
                let done = final_path(&dir, m);
                let path = (!t.outgoing && t.state == FileState::Done && done.is_file())
                    .then(|| done.to_string_lossy().into_owned());
                Ok(Some(FileTransfer {
                    id: hex_id(&m.id),
                    conversation: t.conv.to_hex(),
                    outgoing: t.outgoing,
                    name: m.name.clone(),
                    size: m.size,
                    bytes,
                    state: t.state,
                    path,
                }))
            })
            .await
    }
}
