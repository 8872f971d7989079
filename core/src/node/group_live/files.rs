//! Files in groups on a running node (decision 0011). The author copies the file into its
//! profile and posts the signed manifest as a group message; every member that stores the
//! message (live or backfilled) pulls the chunks over its group links, through the router: a
//! member asks the router, the router asks the author (or, while the author is away, another
//! member). A holder answers a `Want` from disk, and a router still receiving the file passes
//! each chunk on as it arrives, so members need not wait for the whole file to reach it. The
//! receiver writes the chunks in order to a `.part` file, records its progress every
//! [`SYNC_EVERY`] chunks (a restart resumes there), and shows the file only once the
//! whole-file BLAKE3 hash matches the manifest the author signed; a holder whose bytes do not
//! match is not asked again.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::Duration;

use ed25519_dalek::VerifyingKey;
use tokio::sync::{mpsc, oneshot};

use super::{Cmd, GroupUpdate};
use crate::chat::file::{CHUNK_SIZE, Manifest, clean_name};
use crate::chat::wire::{ErrorCode, Frame, Id};
use crate::groups::files::{self as gfiles, FileFrame, GroupFile, GroupFileState};
use crate::groups::{GroupId, SignedMessage};
use crate::identity::Fingerprint;
use crate::node::files::{copy_hashing, io_err, mime_of, open_part_file};
use crate::node::groups::{GroupMessageView, group_files_dir};
use crate::node::link::Link;
use crate::node::{Inner, Node, NodeError, lock, unix_ms};
use crate::session::FEATURE_GROUP_FILES;

mod fetch;
use fetch::Fetch;

/// Chunks asked for and not yet received, at most.
const WINDOW: u64 = 32;
/// Chunks per `Want`.
const ASK: u64 = 16;
/// A holder that sends nothing useful for this long is given up for another.
const QUIET: Duration = Duration::from_secs(5);
/// Chunks between syncs of the `.part` file and the recorded progress.
const SYNC_EVERY: u64 = 64;
/// Holders whose bytes failed the hash before the file is given up.
const MAX_ATTEMPTS: u32 = 3;
/// Longest wait between rounds of asking when no holder is reachable.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Members waiting for chunks a router has not received yet, per file.
const MAX_WAITERS: usize = 64;
/// Incoming frames queued per transfer.
const QUEUE: usize = 2 * WINDOW as usize;
/// Files fetched at once, over all groups; the others wait their turn in the database.
const MAX_FETCHES: usize = 4;
/// A fetch that received nothing useful for this long gives its place to the next file
/// (it goes to the back of the queue and is tried again in turn).
const IDLE_YIELD: Duration = Duration::from_secs(300);

/// The group files this node is receiving.
#[derive(Default)]
pub(in crate::node) struct Transfers {
    running: HashMap<(GroupId, Id), Running>,
}

impl Transfers {
    /// Ends the transfers of `gid` (a deleted group): each task finds its queue closed, or
    /// itself unlisted, and stops without placing or recording anything.
    pub(super) fn end_group(&mut self, gid: &GroupId) {
        self.running.retain(|(g, _), _| g != gid);
    }

    /// Whether the transfer of `key` is still listed (not ended by [`Self::end_group`]).
    fn listed(&self, key: &(GroupId, Id)) -> bool {
        self.running.contains_key(key)
    }
}

/// One file being received.
struct Running {
    manifest: Manifest,
    /// Chunks before this index are written to the `.part` file.
    written: u64,
    /// Frames from holders, for the transfer's task.
    tx: mpsc::Sender<Incoming>,
    /// Members that asked for chunks we have not received yet (router side).
    waiters: Vec<Waiter>,
}

/// A member waiting for chunks `next .. end`.
struct Waiter {
    peer: Fingerprint,
    next: u64,
    end: u64,
}

/// What a holder sent for a transfer.
enum Incoming {
    Chunk {
        from: Fingerprint,
        index: u64,
        data: Vec<u8>,
    },
    Lack(Fingerprint),
}

fn part_path(files_dir: &Path, gid: &GroupId, id: &Id) -> PathBuf {
    group_files_dir(files_dir, gid).join(format!("{}.part", hex::encode(id)))
}

/// Where a whole file lives: `groups/<gid>/<id>/<name>` (the id keeps equal names apart).
fn final_path(files_dir: &Path, gid: &GroupId, m: &Manifest) -> PathBuf {
    group_files_dir(files_dir, gid)
        .join(hex::encode(m.id))
        .join(&m.name)
}

/// The length chunk `index` of `m` must have.
fn chunk_len(m: &Manifest, index: u64) -> usize {
    let size = u64::from(m.chunk_size);
    m.size.saturating_sub(index * size).min(size) as usize
}

fn parse_file_id(s: &str) -> Result<Id, NodeError> {
    crate::node::parse_hex_id(s, "file")
}

/// Reads chunks `from .. end` of `m` from `path`.
fn read_chunks(path: &Path, m: &Manifest, from: u64, end: u64) -> std::io::Result<Vec<Vec<u8>>> {
    let mut f = File::open(path)?;
    f.seek(SeekFrom::Start(from * u64::from(m.chunk_size)))?;
    (from..end)
        .map(|i| {
            let mut buf = vec![0; chunk_len(m, i)];
            f.read_exact(&mut buf).map(|()| buf)
        })
        .collect()
}

/// A `.part` file being written.
struct Part {
    file: File,
    next: u64,
    hasher: Box<blake3::Hasher>,
}

impl Part {
    /// Opens the `.part` file at `path` to continue after chunk `next` (cut there, and its
    /// prefix hashed again); from the start if it is shorter.
    fn open(path: &Path, m: &Manifest, next: u64) -> std::io::Result<Part> {
        let file = open_part_file(path)?;
        let keep = (next * u64::from(m.chunk_size)).min(m.size);
        let (next, keep) = if file.metadata()?.len() >= keep {
            (next, keep)
        } else {
            (0, 0)
        };
        file.set_len(keep)?;
        let mut hasher = Box::new(blake3::Hasher::new());
        if keep > 0 {
            hasher.update_reader(File::open(path)?.take(keep))?;
        }
        let mut part = Part { file, next, hasher };
        part.file.seek(SeekFrom::Start(keep))?;
        Ok(part)
    }

    fn write(&mut self, chunks: &[Vec<u8>]) -> std::io::Result<()> {
        for c in chunks {
            self.file.write_all(c)?;
            self.hasher.update(c);
            self.next += 1;
        }
        Ok(())
    }

    fn restart(&mut self) -> std::io::Result<()> {
        self.file.set_len(0)?;
        self.file.seek(SeekFrom::Start(0))?;
        self.next = 0;
        *self.hasher = blake3::Hasher::new();
        Ok(())
    }
}

/// Runs `f` with `part` on the blocking pool and hands it back.
async fn on_part<T: Send + 'static>(
    mut part: Part,
    f: impl FnOnce(&mut Part) -> std::io::Result<T> + Send + 'static,
) -> std::io::Result<(Part, T)> {
    tokio::task::spawn_blocking(move || f(&mut part).map(|t| (part, t)))
        .await
        .map_err(std::io::Error::other)?
}

impl Node {
    /// Shares the file at `path` in group `gid`: copied into the profile, announced by a
    /// signed message (returned once stored), then pulled by every member through the router.
    /// Meeting rooms share no files (they keep nothing).
    pub async fn group_send_file(
        &self,
        gid: &GroupId,
        path: &str,
    ) -> Result<GroupMessageView, NodeError> {
        if lock(&self.inner.groups).room == Some(*gid) {
            return Err(NodeError::NotAllowed(
                "files are not shared in meeting rooms".into(),
            ));
        }
        let tx = self.inner.group_tx(gid)?;
        let id: Id = rand::random();
        let src = PathBuf::from(path);
        let name = clean_name(&src.file_name().unwrap_or_default().to_string_lossy());
        let mut manifest = Manifest {
            id,
            mime: mime_of(&name).into(),
            name,
            size: 0,
            hash: [0; 32],
            chunk_size: CHUNK_SIZE,
        };
        let dst = final_path(&self.inner.files_dir, gid, &manifest);
        let d = dst.clone();
        let (size, hash) = tokio::task::spawn_blocking(move || copy_hashing(&src, &d))
            .await
            .map_err(|e| NodeError::Store(crate::store::StoreError::Task(e)))?
            .map_err(io_err)?;
        (manifest.size, manifest.hash) = (size, hash);
        let body = manifest.sign(&self.inner.identity);
        let (g, me, m, p) = (
            *gid,
            self.inner.fingerprint,
            manifest.clone(),
            dst.to_string_lossy().into_owned(),
        );
        let recorded = self
            .inner
            .db(move |c| gfiles::add(c, &g, &me, &m, GroupFileState::Done, Some(&p), unix_ms()))
            .await;
        let sent = match recorded {
            Ok(_) => {
                let (reply, rx) = oneshot::channel();
                match tx.send(Cmd::SendFile(body, reply)).await {
                    Ok(()) => rx.await.unwrap_or(Err(NodeError::Stopped)),
                    Err(_) => Err(NodeError::Stopped),
                }
            }
            Err(e) => Err(e),
        };
        if sent.is_err() {
            let g = *gid;
            let _ = self.inner.db(move |c| gfiles::remove(c, &g, &id)).await;
            let _ = fs::remove_dir_all(dst.parent().unwrap_or(&dst));
        }
        sent
    }

    /// Where a group file stands here (`file` as [`GroupFileRef::id`] gives it), or `None`
    /// if no message announced it to us.
    ///
    /// [`GroupFileRef::id`]: crate::node::groups::GroupFileRef::id
    pub async fn group_file(
        &self,
        gid: &GroupId,
        file: &str,
    ) -> Result<Option<GroupFile>, NodeError> {
        let (g, id) = (*gid, parse_file_id(file)?);
        let found = self.inner.db(move |c| gfiles::get(c, &g, &id)).await?;
        Ok(found.map(|f| whole_at(&self.inner.files_dir, f)))
    }
}

/// `f` with a whole file's path made from our files folder, not taken as stored: a phone's app
/// folder may move (iOS gives no stable absolute path across updates and restores).
fn whole_at(files_dir: &Path, mut f: GroupFile) -> GroupFile {
    if f.state == GroupFileState::Done {
        f.path = Some(
            final_path(files_dir, &f.group, &f.manifest)
                .to_string_lossy()
                .into_owned(),
        );
    }
    f
}

/// The file a message of someone else's offers, with its author, if its manifest verifies.
pub(super) fn offered_file(m: &SignedMessage) -> Option<(Fingerprint, Manifest)> {
    let crate::groups::Body::File(body) = &m.msg.body else {
        return None;
    };
    let author = m.author_fp();
    let manifest = VerifyingKey::from_bytes(&m.msg.author).ok().and_then(|k| {
        let id = Manifest::parse(body).ok()?.id;
        Manifest::verify(body, &k, &id).ok()
    });
    if manifest.is_none() {
        tracing::info!(%author, "a group file with a bad manifest; ignored");
    }
    Some((author, manifest?))
}

/// Records the files `offered` in `gid`'s messages, in the transaction that stores them (a stop
/// between the two would leave files never fetched): to fetch unless over our size limit or the
/// quota of unfinished incoming bytes (a member could fill the phone). Returns the new ones to
/// fetch.
pub(super) fn record_group_files(
    c: &rusqlite::Connection,
    gid: &GroupId,
    offered: Vec<(Fingerprint, Manifest)>,
    max_file: u64,
    now_ms: u64,
) -> Result<Vec<(Fingerprint, Manifest)>, NodeError> {
    let mut fetch = vec![];
    for (author, m) in offered {
        let fits = m.size <= max_file && crate::node::files::total_room(c, m.size)?;
        let state = if fits {
            GroupFileState::Transferring
        } else {
            GroupFileState::Refused
        };
        if gfiles::add(c, gid, &author, &m, state, None, now_ms)? && fits {
            fetch.push((author, m));
        }
    }
    Ok(fetch)
}

impl Inner {
    /// Starts fetching `files`, recorded with their messages (`record_group_files`).
    pub(super) fn fetch_new_group_files(
        this: &Arc<Inner>,
        gid: GroupId,
        files: Vec<(Fingerprint, Manifest)>,
    ) {
        for (author, manifest) in files {
            Inner::fetch_group_file(this, gid, author, manifest, 0);
        }
    }

    /// Resumes the unfinished files of `gid` (when its task starts).
    pub(super) async fn resume_group_files(
        this: &Arc<Inner>,
        gid: GroupId,
    ) -> Result<(), NodeError> {
        let files = this.db(move |c| gfiles::unfinished(c, &gid)).await?;
        for f in files {
            Inner::fetch_group_file(this, gid, f.author, f.manifest, f.next_index);
        }
        Ok(())
    }

    /// A fetch ended: the group's next waiting files get their turn.
    fn next_group_files(this: &Arc<Inner>, gid: GroupId) {
        let inner = this.clone();
        let task = tokio::spawn(async move {
            if let Err(e) = Inner::resume_group_files(&inner, gid).await {
                tracing::debug!(group = %gid, error = %e, "could not start the next group files");
            }
        });
        this.track([task.abort_handle()]);
    }

    /// Starts receiving `m` from chunk `next` (nothing if it is being received already).
    fn fetch_group_file(
        this: &Arc<Inner>,
        gid: GroupId,
        author: Fingerprint,
        m: Manifest,
        next: u64,
    ) {
        let (tx, rx) = mpsc::channel(QUEUE);
        {
            let mut g = lock(&this.groups);
            if g.subscribers.is_none()
                || g.deleted.contains(&gid)
                || g.files.running.contains_key(&(gid, m.id))
                || g.files.running.len() >= MAX_FETCHES
            {
                // Already running, or its turn comes when a fetch ends (it stays recorded).
                return;
            }
            g.files.running.insert(
                (gid, m.id),
                Running {
                    manifest: m.clone(),
                    written: next,
                    tx,
                    waiters: vec![],
                },
            );
        }
        let fetch = Fetch {
            inner: Arc::downgrade(this),
            gid,
            author,
            manifest: m,
            failed: vec![],
            next_index: next,
        };
        let task = tokio::spawn(fetch.run(rx, next));
        this.track([task.abort_handle()]);
    }

    /// A group file frame from `link`: answered from what we hold, or passed to the transfer
    /// it belongs to. Only current members of the group get anything.
    pub(super) async fn on_group_file_frame(this: &Arc<Inner>, link: &Arc<Link>, bytes: &[u8]) {
        if link.features & FEATURE_GROUP_FILES == 0 {
            link.refuse(ErrorCode::NotAllowed, "group files were not negotiated")
                .await;
            return;
        }
        let frame = match FileFrame::decode(bytes) {
            Ok(f) => f,
            Err(e) => {
                link.refuse(ErrorCode::Malformed, &e.to_string()).await;
                return;
            }
        };
        let group = frame.group();
        let member = lock(&this.groups)
            .members_of
            .get(&group)
            .map(|m| m.contains(&link.fp));
        match member {
            Some(true) => {}
            Some(false) => {
                link.refuse(ErrorCode::NotAllowed, "not a member of that group")
                    .await;
                return;
            }
            // Not running here (left, or stopping): nothing to give, no strike for asking.
            None => {
                if let FileFrame::Want { file, .. } = frame {
                    let lack = FileFrame::Lack { group, file };
                    let _ = link.send(&Frame::Group(lack.encode())).await;
                }
                return;
            }
        }
        match frame {
            FileFrame::Want {
                file, from, count, ..
            } => {
                this.serve_group_file(link, group, file, from, u64::from(count))
                    .await
            }
            FileFrame::Chunk {
                file, index, data, ..
            } => this.pass_on(
                group,
                file,
                Incoming::Chunk {
                    from: link.fp,
                    index,
                    data,
                },
            ),
            FileFrame::Lack { file, .. } => this.pass_on(group, file, Incoming::Lack(link.fp)),
        }
    }

    fn pass_on(&self, group: GroupId, file: Id, what: Incoming) {
        let tx = lock(&self.groups)
            .files
            .running
            .get(&(group, file))
            .map(|r| r.tx.clone());
        if let Some(tx) = tx {
            // Full: the transfer asks again for what it lacks.
            let _ = tx.try_send(what);
        }
    }

    /// Answers a `Want` on the asker's own link (so a member asking too fast slows only itself):
    /// the chunks we hold, and for a file we are still receiving, the rest as they arrive.
    async fn serve_group_file(&self, link: &Link, group: GroupId, file: Id, from: u64, count: u64) {
        let key = (group, file);
        let receiving = {
            let mut g = lock(&self.groups);
            g.files.running.get_mut(&key).map(|r| {
                let end = (from + count).min(r.manifest.chunks());
                if end > r.written && r.waiters.len() < MAX_WAITERS {
                    r.waiters.retain(|w| w.peer != link.fp);
                    r.waiters.push(Waiter {
                        peer: link.fp,
                        next: from.max(r.written),
                        end,
                    });
                }
                (r.manifest.clone(), end.min(r.written))
            })
        };
        let (path, m, end) = match receiving {
            Some((m, end)) => (part_path(&self.files_dir, &group, &file), m, end),
            None => {
                let held = self
                    .db(move |c| gfiles::get(c, &group, &file))
                    .await
                    .ok()
                    .flatten()
                    .filter(|f| f.state == GroupFileState::Done)
                    .map(|f| (final_path(&self.files_dir, &group, &f.manifest), f.manifest));
                let Some((path, m)) = held else {
                    let _ = link
                        .send(&Frame::Group(FileFrame::Lack { group, file }.encode()))
                        .await;
                    return;
                };
                let end = (from + count).min(m.chunks());
                (path, m, end)
            }
        };
        if from >= end {
            return;
        }
        let mm = m.clone();
        let chunks = tokio::task::spawn_blocking(move || read_chunks(&path, &mm, from, end)).await;
        let Ok(Ok(chunks)) = chunks else {
            tracing::warn!(%group, file = %hex::encode(file), "could not read a group file");
            let _ = link
                .send(&Frame::Group(FileFrame::Lack { group, file }.encode()))
                .await;
            return;
        };
        for (i, data) in (from..).zip(chunks) {
            let f = FileFrame::Chunk {
                group,
                file,
                index: i,
                data,
            };
            if link.send(&Frame::Group(f.encode())).await.is_err() {
                return;
            }
        }
    }

    /// Records that chunks up to `written` are on disk and sends the members waiting for
    /// them the ones of `batch` (chunks `first ..`).
    async fn hand_on(&self, key: (GroupId, Id), first: u64, batch: &[Vec<u8>]) {
        let written = first + batch.len() as u64;
        let mut sends: Vec<(Fingerprint, u64, u64)> = vec![];
        {
            let mut g = lock(&self.groups);
            let Some(r) = g.files.running.get_mut(&key) else {
                return;
            };
            r.written = written;
            r.waiters.retain_mut(|w| {
                if w.next >= first && w.next < written {
                    let upto = w.end.min(written);
                    sends.push((w.peer, w.next, upto));
                    w.next = upto;
                }
                w.next < w.end
            });
        }
        for (peer, a, b) in sends {
            let Some(link) = self.link(&peer) else {
                continue;
            };
            for i in a..b {
                let f = FileFrame::Chunk {
                    group: key.0,
                    file: key.1,
                    index: i,
                    data: batch[(i - first) as usize].clone(),
                };
                if link.send(&Frame::Group(f.encode())).await.is_err() {
                    break;
                }
            }
        }
    }

    /// Who to ask for a file: a member asks its router; the router asks the author first,
    /// then any other member it is linked to. Holders in `failed` are skipped.
    fn holder(
        &self,
        gid: &GroupId,
        author: &Fingerprint,
        failed: &[Fingerprint],
    ) -> Option<(Fingerprint, Arc<Link>)> {
        let candidates: Vec<Fingerprint> = {
            let g = lock(&self.groups);
            if g.routing.contains(gid) {
                std::iter::once(*author)
                    .chain(g.members_of.get(gid).into_iter().flatten().copied())
                    .filter(|fp| *fp != self.fingerprint)
                    .collect()
            } else {
                g.router_of.get(gid).copied().into_iter().collect()
            }
        };
        candidates
            .into_iter()
            .filter(|fp| !failed.contains(fp))
            .find_map(|fp| {
                self.link(&fp)
                    .filter(|l| l.features & FEATURE_GROUP_FILES != 0)
                    .map(|l| (fp, l))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(data: &[u8], chunk_size: u32) -> Manifest {
        Manifest {
            id: [1; 16],
            name: "f.bin".into(),
            size: data.len() as u64,
            mime: "application/octet-stream".into(),
            hash: *blake3::hash(data).as_bytes(),
            chunk_size,
        }
    }

    fn chunks(data: &[u8], m: &Manifest) -> Vec<Vec<u8>> {
        data.chunks(m.chunk_size as usize)
            .map(<[u8]>::to_vec)
            .collect()
    }

    #[test]
    fn a_part_file_resumes_after_its_recorded_chunks_and_hashes_the_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.part");
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let m = manifest(&data, 16 * 1024);
        let all = chunks(&data, &m);
        assert_eq!(all.len() as u64, m.chunks());
        assert_eq!(chunk_len(&m, 6), 100_000 - 6 * 16 * 1024);
        // Four chunks written, but only two recorded before a crash.
        let mut p = Part::open(&path, &m, 0).unwrap();
        p.write(&all[..4]).unwrap();
        drop(p);
        let mut p = Part::open(&path, &m, 2).unwrap();
        assert_eq!(p.next, 2);
        assert_eq!(fs::metadata(&path).unwrap().len(), 2 * 16 * 1024);
        p.write(&all[2..]).unwrap();
        assert_eq!(p.hasher.finalize().as_bytes(), &m.hash);
        assert_eq!(fs::read(&path).unwrap(), data);
        // The chunks read back for a member are the ones written.
        assert_eq!(read_chunks(&path, &m, 3, 7).unwrap(), all[3..7].to_vec());
        // A part shorter than its record (a lost write) starts again from the beginning.
        fs::write(&path, &data[..1000]).unwrap();
        let mut p = Part::open(&path, &m, 5).unwrap();
        assert_eq!(p.next, 0);
        p.write(&all).unwrap();
        assert_eq!(p.hasher.finalize().as_bytes(), &m.hash);
        // Starting over empties it.
        p.restart().unwrap();
        assert_eq!((p.next, fs::metadata(&path).unwrap().len()), (0, 0));
    }

    #[test]
    fn file_ids_are_32_hex() {
        assert_eq!(parse_file_id(&"ab".repeat(16)).unwrap(), [0xab; 16]);
        assert!(parse_file_id("abc").is_err());
        assert!(parse_file_id(&"zz".repeat(16)).is_err());
    }
}
