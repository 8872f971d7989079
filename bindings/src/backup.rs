//! Backing up into another device over signed RPC (decision 0014): folders the core walks, or
//! documents the phone lists and opens for it (Android's picked folders, read through their
//! provider without a copy), with progress and cancellation.

use std::fs::File;
use std::os::fd::FromRawFd;
use std::path::PathBuf;
use std::sync::Arc;

use peerns_core::node::{self, LocalFile, Opener};
use tokio::sync::mpsc;

use crate::{PeernsError, PeernsNode, lock, on_runtime_cancellable};

/// Where a backup is: when a file starts, for every MiB the peer acknowledges, when it ends.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct RpcBackupProgress {
    /// The file, as its path on the peer.
    pub path: String,
    /// Bytes of it on the peer.
    pub bytes: u64,
    /// Its size.
    pub size: u64,
    /// Files done before this one.
    pub files_done: u64,
    /// Files in the backup.
    pub files_total: u64,
    /// An unmetered-only backup waits for Wi-Fi (or another unmetered network): reported
    /// once when the wait starts; the next progress has `false`.
    #[uniffi(default = false)]
    pub waiting: bool,
}

/// What a backup did.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct RpcBackupSummary {
    /// Files sent (whole, or the rest of an interrupted upload).
    pub files: u64,
    /// Bytes sent.
    pub bytes: u64,
    /// Files the peer had already (same content).
    pub skipped: u64,
    /// Files left out because a request path cannot name them (or another file of the backup
    /// has the same path).
    pub left_out: u64,
    /// Files that could not be read (gone since they were listed, no longer allowed, changed
    /// while sent): skipped, the backup went on.
    #[uniffi(default = 0)]
    pub unreadable: u64,
}

/// Receives a backup's progress, in order, on a library thread.
#[uniffi::export(with_foreign)]
pub trait BackupListener: Send + Sync {
    /// One step.
    fn on_backup_progress(&self, progress: RpcBackupProgress);
}

/// A backup's files with their paths on the peer, and how many were left out.
type Plan = (Vec<(LocalFile, String)>, u64);

/// Why a document of a backup could not be opened.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum DocumentError {
    /// It cannot be read: gone, its permission taken back, its provider failed.
    #[error("{msg}")]
    Unreadable {
        /// Why.
        msg: String,
    },
}

impl From<uniffi::UnexpectedUniFFICallbackError> for DocumentError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        Self::Unreadable { msg: e.reason }
    }
}

/// Opens the documents of a backup when their turn comes (Android:
/// `ContentResolver.openFileDescriptor(uri, "r")`, then `detachFd()` of a `dup()`); each is
/// opened anew whenever it is read: to hash it, to send it, to resume it after a pause. Called
/// from a library thread that may block.
#[uniffi::export(with_foreign)]
pub trait DocumentOpener: Send + Sync {
    /// A file descriptor open for reading document `index` of the list given to
    /// `rpc_backup_documents`. It is handed over: the library reads it and closes it.
    fn open_document(&self, index: u64) -> Result<i32, DocumentError>;
}

/// Document `index` opened by `opener`, as a file we own.
fn open_document(opener: &dyn DocumentOpener, index: u64) -> std::io::Result<File> {
    let fd = opener
        .open_document(index)
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    if fd < 0 {
        return Err(std::io::Error::other(format!("no file descriptor ({fd})")));
    }
    // SAFETY: the opener hands the open descriptor over (its contract above): nothing else
    // reads or closes it from now on.
    Ok(unsafe { File::from_raw_fd(fd) })
}

#[uniffi::export(async_runtime = "tokio")]
impl PeernsNode {
    /// Backs up files and folders (`paths`) into `into` (e.g. `/incoming`) on contact
    /// `fingerprint`, which must serve that root and grant us `fs:write` there: files the peer
    /// has are skipped (same BLAKE3), interrupted uploads resume, each file is placed only whole;
    /// a file that cannot be read is skipped and counted (`unreadable`). `unmetered_only` ("on Wi-Fi only"): wait while the network reported by
    /// `network_changed` is metered or offline (progress with `waiting`), even in the middle
    /// of a file, and go on when an unmetered one is reported.
    /// `listener` gets the progress; every call to it has returned when this returns.
    /// Cancelling the call (the Kotlin coroutine awaiting it) or [`Self::rpc_backup_cancel`]
    /// (Swift, whose tasks cannot cancel it) stops the backup; the next one resumes from what
    /// the peer holds.
    #[uniffi::method(default(unmetered_only = false))]
    pub async fn rpc_backup(
        &self,
        fingerprint: String,
        paths: Vec<String>,
        into: String,
        listener: Arc<dyn BackupListener>,
        unmetered_only: bool,
    ) -> Result<RpcBackupSummary, PeernsError> {
        let node = self.running()?;
        let paths: Vec<PathBuf> = paths.into_iter().map(PathBuf::from).collect();
        // Walked by the backup's task, off the caller's thread.
        let plan = node::paths_plan(paths, into);
        self.backup(node, fingerprint, plan, listener, unmetered_only)
            .await
    }

    /// Backs up documents the phone lists and opens (a picked folder's files through their
    /// provider, none copied first) into `into` on contact `fingerprint`, as `rpc_backup` does
    /// folders. `documents` are their paths below the backup in order (`Camera/IMG_1.jpg`
    /// lands at `<into>/Camera/IMG_1.jpg`); a path a request cannot name is left out and
    /// counted, as is a path an earlier document took. `opener` opens document `i` (an index
    /// into `documents`) when its turn comes; one it cannot open is skipped and counted
    /// (`unreadable`), as by `rpc_backup` a file that cannot be read.
    #[uniffi::method(default(unmetered_only = false))]
    pub async fn rpc_backup_documents(
        &self,
        fingerprint: String,
        documents: Vec<String>,
        into: String,
        opener: Arc<dyn DocumentOpener>,
        listener: Arc<dyn BackupListener>,
        unmetered_only: bool,
    ) -> Result<RpcBackupSummary, PeernsError> {
        let node = self.running()?;
        let plan = async move {
            let (plan, left_out) = node::documents_plan(&documents, &into)?;
            let plan = plan
                .into_iter()
                .map(|(i, remote)| {
                    let opener = opener.clone();
                    let open: Opener = Arc::new(move || open_document(&*opener, i as u64));
                    let name = documents[i].clone();
                    (LocalFile::Opened { name, open }, remote)
                })
                .collect();
            Ok((plan, left_out))
        };
        self.backup(node, fingerprint, plan, listener, unmetered_only)
            .await
    }

    /// Stops every backup of this node that is running: each `rpc_backup` or
    /// `rpc_backup_documents` call fails with `Cancelled`. For Swift, whose task cancellation never reaches a call into the library.
    pub fn rpc_backup_cancel(&self) {
        for backup in lock(&self.backups).drain(..) {
            backup.abort();
        }
    }
}

impl PeernsNode {
    /// Runs a backup of what `plan` lists (files with their paths on the peer, and how many
    /// were left out) on the runtime, forwarding its progress to `listener`.
    async fn backup(
        &self,
        node: Arc<node::Node>,
        fingerprint: String,
        plan: impl Future<Output = Result<Plan, node::NodeError>> + Send + 'static,
        listener: Arc<dyn BackupListener>,
        unmetered_only: bool,
    ) -> Result<RpcBackupSummary, PeernsError> {
        let options = node::BackupOptions { unmetered_only };
        let sum = on_runtime_cancellable(&self.backups, async move {
            let (plan, left_out) = plan.await?;
            let (tx, mut rx) = mpsc::unbounded_channel::<node::BackupProgress>();
            // Foreign code may block: it runs off the backup's task, one call at a time.
            let forward = tokio::spawn(async move {
                while let Some(p) = rx.recv().await {
                    let listener = listener.clone();
                    let progress = RpcBackupProgress {
                        path: p.path,
                        bytes: p.bytes,
                        size: p.size,
                        files_done: p.files_done,
                        files_total: p.files_total,
                        waiting: p.waiting,
                    };
                    let call = move || listener.on_backup_progress(progress);
                    if tokio::task::spawn_blocking(call).await.is_err() {
                        return;
                    }
                }
            });
            let mut report = move |p: &node::BackupProgress| {
                let _ = tx.send(p.clone());
            };
            let sum = node
                .rpc_backup_files(&fingerprint, plan, left_out, options, &mut report)
                .await;
            drop(report);
            let _ = forward.await;
            sum
        })
        .await??;
        Ok(RpcBackupSummary {
            files: sum.files,
            bytes: sum.bytes,
            skipped: sum.skipped,
            left_out: sum.left_out,
            unreadable: sum.unreadable,
        })
    }
}
