//! Backing up files and folders into a peer's root over RPC (decision 0014): each file is
//! skipped if the peer has the same content (BLAKE3 from `fs.stat`), resumed from what an
//! interrupted upload left there, or uploaded whole in binary chunks; the peer places it only
//! with the hash the upload request signed. An unmetered-only backup waits while the network
//! path is metered or offline, before a file or between two chunks of one (the file resumes).

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::json;
use tokio::sync::watch;

use super::local_file::LocalFile;
use super::rpc_upload::STALL;
use super::{NetworkPath, Node, NodeError};
use crate::rpc::path::RpcPath;

/// How one file of a backup went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackupFile {
    /// Its size.
    pub size: u64,
    /// Bytes sent (less than the size when an earlier upload was resumed).
    pub sent: u64,
    /// The peer had the same content already: nothing was sent.
    pub skipped: bool,
}

/// How a backup runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BackupOptions {
    /// Send only while the network path is not metered ("on Wi-Fi only"); wait otherwise.
    pub unmetered_only: bool,
}

/// Where a backup is: reported when a file starts, for every MiB the peer acknowledges, when
/// a file is done, and when an unmetered-only backup starts or stops waiting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupProgress {
    /// The file, as its path on the peer.
    pub path: String,
    /// Bytes of it on the peer.
    pub bytes: u64,
    /// Its size.
    pub size: u64,
    /// Files done (sent or skipped) before this one.
    pub files_done: u64,
    /// Files in the backup.
    pub files_total: u64,
    /// Waiting for an unmetered network (reported once when the wait starts; the next report
    /// after it has `false`).
    pub waiting: bool,
}

/// What a backup did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BackupSummary {
    /// Files sent (whole or the rest of an interrupted upload).
    pub files: u64,
    /// Bytes sent.
    pub bytes: u64,
    /// Files the peer had already.
    pub skipped: u64,
    /// Files left out because a request path cannot name them (e.g. `a:b`, `50%.jpg`), or
    /// because another file of the backup has the same path.
    pub left_out: u64,
    /// Files that could not be read (gone since they were listed, no longer allowed, changed
    /// while they were sent): skipped, the backup went on.
    pub unreadable: u64,
}

/// The files under `paths` (folders walked in name order, links and special files ignored),
/// each with its path below `into` on the peer; and how many are left out: those a request
/// path cannot name, those whose path an earlier one took (two folders of one name), and
/// folders (or entries) that cannot be read, one each, skipped. The given paths themselves are
/// resolved first (`.`, `..`, a link to a folder), named as given unless that is `.`/`..`; one
/// that does not exist is an error.
pub fn backup_plan(
    paths: &[PathBuf],
    into: &str,
) -> Result<(Vec<(PathBuf, String)>, u64), NodeError> {
    let into = target(into)?;
    let (mut files, mut left_out, mut taken) = (vec![], 0, Taken::default());
    let mut stack = vec![];
    for p in paths.iter().rev() {
        let real = p
            .canonicalize()
            .map_err(|e| NodeError::InvalidInput(format!("{}: {e}", p.display())))?;
        let name = p.file_name().or(real.file_name()).map(ToOwned::to_owned);
        stack.push((real, name, into.to_owned()));
    }
    while let Some((path, name, parent)) = stack.pop() {
        let Some(remote) = name
            .as_deref()
            .and_then(|n| n.to_str())
            .map(|n| format!("{parent}/{n}"))
            .filter(|r| RpcPath::parse(r).is_ok())
        else {
            left_out += 1;
            continue;
        };
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            left_out += 1;
            continue;
        };
        if meta.is_dir() {
            let listed: Result<Vec<PathBuf>, _> =
                std::fs::read_dir(&path).and_then(|d| d.map(|e| e.map(|e| e.path())).collect());
            let Ok(mut entries) = listed else {
                tracing::info!(folder = %path.display(), "backup: a folder cannot be read, skipped");
                left_out += 1;
                continue;
            };
            entries.sort();
            stack.extend(entries.into_iter().rev().map(|p| {
                let name = p.file_name().map(ToOwned::to_owned);
                (p, name, remote.clone())
            }));
        } else if meta.is_file() {
            if taken.take(&remote) {
                files.push((path, remote));
            } else {
                left_out += 1;
            }
        }
    }
    Ok((files, left_out))
}

/// [`backup_plan`]'s files as a backup reads them, walked on the blocking pool (the walk reads
/// the file system).
pub async fn paths_plan(
    paths: Vec<PathBuf>,
    into: String,
) -> Result<(Vec<(LocalFile, String)>, u64), NodeError> {
    let (plan, left_out) = tokio::task::spawn_blocking(move || backup_plan(&paths, &into))
        .await
        .map_err(|e| NodeError::InvalidInput(e.to_string()))??;
    let plan = plan
        .into_iter()
        .map(|(path, remote)| (LocalFile::Path(path), remote));
    Ok((plan.collect(), left_out))
}

/// The folder a backup goes into on the peer, without a trailing slash; checked.
fn target(into: &str) -> Result<&str, NodeError> {
    let into = into.trim_end_matches('/');
    RpcPath::parse(into).map_err(|e| NodeError::InvalidInput(format!("{into}: {}", e.message)))?;
    Ok(into)
}

/// Paths on the peer taken by a backup's files and by the folders above them.
#[derive(Default)]
struct Taken {
    files: HashSet<String>,
    folders: HashSet<String>,
}

impl Taken {
    /// Takes `remote` for a file, unless a file or a folder has it, or a file has a folder
    /// above it (two folders of one name chosen, a provider listing two documents of one name,
    /// a file `Camera` beside `Camera/x.jpg`): the later one would overwrite or fail.
    fn take(&mut self, remote: &str) -> bool {
        let above = || {
            remote
                .match_indices('/')
                .skip(1)
                .map(|(at, _)| &remote[..at])
        };
        if self.files.contains(remote)
            || self.folders.contains(remote)
            || above().any(|f| self.files.contains(f))
        {
            return false;
        }
        self.folders.extend(above().map(str::to_owned));
        self.files.insert(remote.to_owned());
        true
    }
}

/// Each of `names` (paths below the backup, `Camera/IMG_1.jpg`, as a platform lists a picked
/// folder's documents, in order) that a request path can name, by index, with its path below
/// `into` on the peer; and how many are left out: those no request path can name, and those
/// whose path an earlier one took (a provider may list two documents of one name) or a
/// folder of an earlier one (a file `Camera` beside `Camera/x.jpg`).
pub fn documents_plan(
    names: &[String],
    into: &str,
) -> Result<(Vec<(usize, String)>, u64), NodeError> {
    let into = target(into)?;
    let (mut plan, mut taken) = (vec![], Taken::default());
    for (i, name) in names.iter().enumerate() {
        let remote = format!("{into}/{name}");
        if RpcPath::parse(&remote).is_ok() && taken.take(&remote) {
            plan.push((i, remote));
        }
    }
    let left_out = (names.len() - plan.len()) as u64;
    Ok((plan, left_out))
}

impl Node {
    /// Backs up `local` to `remote` on contact `fingerprint`: nothing is sent if the peer has
    /// the same content (BLAKE3), an unfinished upload of it is resumed, and the file is placed
    /// only whole and with that hash. `progress` gets the bytes on the peer and the size.
    pub async fn rpc_backup_file(
        &self,
        fingerprint: &str,
        local: &LocalFile,
        remote: &str,
        progress: &mut (dyn FnMut(u64, u64) + Send),
    ) -> Result<BackupFile, NodeError> {
        // Hashing stops at its next block once this call is dropped (cancelled, or paused on a
        // metered network).
        let stop = Arc::new(AtomicBool::new(false));
        let _stop = StopOnDrop(stop.clone());
        let hashing = local.clone();
        let (hash, size) = tokio::task::spawn_blocking(move || hashing.hash(&stop))
            .await
            .map_err(|e| local.error(std::io::Error::other(e)))?
            .map_err(|e| local.error(e))?;
        let stat = self
            .rpc_call(
                fingerprint,
                "fs.stat",
                json!({"path": remote, "hash": true}),
                STALL,
            )
            .await?
            .outcome?;
        if stat["blake3"] == hex::encode(hash).as_str() {
            progress(size, size);
            return Ok(BackupFile {
                size,
                sent: 0,
                skipped: true,
            });
        }
        let partial = stat["partial"].as_u64().unwrap_or(0);
        let offset = if partial <= size { partial } else { 0 };
        progress(offset, size);
        let mut acked = |n| progress(n, size);
        let sent = match self
            .rpc_upload(fingerprint, local, remote, size, offset, hash, &mut acked)
            .await
        {
            // What the peer had was of another version of the file: send it whole.
            Err(NodeError::Rpc(e)) if e.code == 400 && offset > 0 => {
                tracing::info!(%remote, error = %e, "the resumed upload failed; sending it whole");
                self.rpc_upload(fingerprint, local, remote, size, 0, hash, &mut acked)
                    .await
                    .map(|()| size)
            }
            done => done.map(|()| size - offset),
        };
        match sent {
            Ok(sent) => Ok(BackupFile {
                size,
                sent,
                skipped: false,
            }),
            // The peer refused the bytes: if they are no longer the ones hashed, the file
            // changed while it was sent; else the refusal stands.
            Err(NodeError::Rpc(e)) if e.code == 400 => {
                let again = local.clone();
                let stop = AtomicBool::new(false);
                match tokio::task::spawn_blocking(move || again.hash(&stop)).await {
                    Ok(Ok((now, _))) if now == hash => Err(e.into()),
                    _ => Err(NodeError::Unreadable(format!(
                        "{}: changed while it was sent",
                        local.name()
                    ))),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Backs up the files and folders `paths` into `into` (e.g. `/incoming`) on contact
    /// `fingerprint`, file after file as [`Node::rpc_backup_file`] does; a folder `photos`
    /// lands at `<into>/photos/...`. With [`BackupOptions::unmetered_only`] it waits while the
    /// network path is metered or offline, and a file it was sending resumes afterwards. Stops
    /// at the first error (a later run resumes).
    pub async fn rpc_backup(
        &self,
        fingerprint: &str,
        paths: &[PathBuf],
        into: &str,
        options: BackupOptions,
        progress: &mut (dyn FnMut(&BackupProgress) + Send),
    ) -> Result<BackupSummary, NodeError> {
        let (plan, left_out) = paths_plan(paths.to_vec(), into.to_owned()).await?;
        self.rpc_backup_files(fingerprint, plan, left_out, options, progress)
            .await
    }

    /// Backs up `plan`'s files, each to its path on the peer, as [`Node::rpc_backup`] does
    /// (`left_out`: files of the backup a request path cannot name, for the summary). For
    /// documents the platform opens ([`LocalFile::Opened`], with [`documents_plan`]).
    pub async fn rpc_backup_files(
        &self,
        fingerprint: &str,
        plan: Vec<(LocalFile, String)>,
        left_out: u64,
        options: BackupOptions,
        progress: &mut (dyn FnMut(&BackupProgress) + Send),
    ) -> Result<BackupSummary, NodeError> {
        let mut sum = BackupSummary {
            left_out,
            ..BackupSummary::default()
        };
        let files_total = plan.len() as u64;
        let mut path = self.inner.network_path.subscribe();
        for (i, (local, remote)) in plan.iter().enumerate() {
            let mut at = BackupProgress {
                path: remote.clone(),
                bytes: 0,
                size: 0,
                files_done: i as u64,
                files_total,
                waiting: false,
            };
            let done = loop {
                if options.unmetered_only && !path.borrow_and_update().unmetered() {
                    progress(&BackupProgress {
                        waiting: true,
                        ..at.clone()
                    });
                    wait_for(&mut path, NetworkPath::unmetered).await?;
                }
                let mut report = |bytes, size| {
                    (at.bytes, at.size) = (bytes, size);
                    progress(&at);
                };
                let file = self.rpc_backup_file(fingerprint, local, remote, &mut report);
                if !options.unmetered_only {
                    break file.await;
                }
                // Dropped between two chunks when the path turns metered; resumed after it.
                tokio::select! {
                    done = file => break done,
                    metered = wait_for(&mut path, |p| !p.unmetered()) => metered?,
                }
            };
            match done {
                Ok(done) if done.skipped => sum.skipped += 1,
                Ok(done) => {
                    sum.files += 1;
                    sum.bytes += done.sent;
                }
                Err(e) if unreadable(&e) => {
                    tracing::info!(file = %local.name(), error = %e, "a file of the backup is skipped");
                    sum.unreadable += 1;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(sum)
    }
}

/// Whether a file's backup failed for that file alone: it could not be read here, or changed
/// while it was sent. Anything else (the peer's refusals, the link) stops the backup.
fn unreadable(e: &NodeError) -> bool {
    matches!(e, NodeError::Unreadable(_))
}

/// Sets its flag when dropped.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Waits until the network path is one `ok` accepts.
async fn wait_for(
    path: &mut watch::Receiver<NetworkPath>,
    ok: impl FnMut(&NetworkPath) -> bool,
) -> Result<(), NodeError> {
    path.wait_for(ok)
        .await
        .map(|_| ())
        .map_err(|_| NodeError::Stopped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_walks_folders_in_order_and_leaves_out_unnamable_files() {
        let d = tempfile::tempdir().unwrap();
        let photos = d.path().join("photos");
        std::fs::create_dir_all(photos.join("b")).unwrap();
        for f in ["b/2.jpg", "a.jpg", "50%.jpg", "c:d.jpg", "b/1.jpg"] {
            std::fs::write(photos.join(f), b"x").unwrap();
        }
        let one = d.path().join("one.txt");
        std::fs::write(&one, b"y").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(&one, photos.join("link")).unwrap();
        let (plan, left_out) = backup_plan(&[photos.clone(), one.clone()], "/incoming/").unwrap();
        let remote: Vec<&str> = plan.iter().map(|(_, r)| r.as_str()).collect();
        assert_eq!(
            remote,
            [
                "/incoming/photos/a.jpg",
                "/incoming/photos/b/1.jpg",
                "/incoming/photos/b/2.jpg",
                "/incoming/one.txt"
            ]
        );
        assert_eq!(plan[0].0, photos.canonicalize().unwrap().join("a.jpg"));
        assert_eq!(left_out, 2);
        assert!(backup_plan(&[one], "/in/../x").is_err());
        assert!(backup_plan(&[d.path().join("missing")], "/in").is_err());
    }

    #[test]
    fn the_plan_resolves_the_given_paths_and_skips_unreadable_folders() {
        let d = tempfile::tempdir().unwrap();
        let photos = d.path().join("photos");
        std::fs::create_dir_all(photos.join("b")).unwrap();
        std::fs::write(photos.join("a.jpg"), b"x").unwrap();
        std::fs::write(photos.join("b/1.jpg"), b"x").unwrap();
        let remote = |paths: &[PathBuf]| {
            let (plan, left_out) = backup_plan(paths, "/in").unwrap();
            let r: Vec<String> = plan.into_iter().map(|(_, r)| r).collect();
            (r, left_out)
        };
        let both = |top: &str| vec![format!("/in/{top}/a.jpg"), format!("/in/{top}/b/1.jpg")];
        // `.` and `..` are the folders they name.
        assert_eq!(remote(&[photos.join(".")]), (both("photos"), 0));
        assert_eq!(remote(&[photos.join("b/..")]).0, both("photos"));
        // A link to a folder, given as such, is followed and keeps its name.
        #[cfg(unix)]
        {
            let link = d.path().join("pics");
            std::os::unix::fs::symlink(&photos, &link).unwrap();
            assert_eq!(remote(&[link]), (both("pics"), 0));
        }
        // A folder that cannot be read is skipped and counted; the rest is planned.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let locked = photos.join("b");
            std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
            // Root reads anything: nothing to skip then.
            if std::fs::read_dir(&locked).is_err() {
                assert_eq!(
                    remote(std::slice::from_ref(&photos)),
                    (vec!["/in/photos/a.jpg".into()], 1)
                );
            }
            std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
    }
}
