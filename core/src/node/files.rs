//! File transfer between contacts. The sender copies the file into its profile (hashing it on
//! the way), signs a manifest and sends it as a `File` op through the outbox, so an offer made
//! offline is delivered like a message. The receiver drives the rest: it asks for chunks from
//! the first one it lacks (`FileResume`), writes them in order to a `.part` file in its
//! profile, acknowledges every [`ACK_EVERY`] chunks once they are on disk, and exposes the file
//! only after the whole-file BLAKE3 hash matches the manifest. After a disconnect or a restart the
//! receiver resumes from the last acknowledged chunk. An offer beyond the receiver's size limit
//! or its quotas of unfinished bytes (per contact and in all) is refused, and an incoming
//! transfer without progress for [`DEFAULT_EXPIRY`](limits::DEFAULT_EXPIRY) (or the set expiry) is dropped.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use tokio::sync::mpsc;

use ed25519_dalek::VerifyingKey;

use super::link::Link;
use super::{Inner, Node, NodeError, NodeEvent, lock, parse_fp, unix_ms};
use crate::chat::file::{self, CHUNK_SIZE, FileState, Manifest, Transfer, clean_name};
use crate::chat::store::{self as chat, Message};
use crate::chat::wire::{ErrorCode, Frame, Id, Op, OpKind};
use crate::contacts::{self, Capability};
use crate::identity::Fingerprint;
use crate::store::blocking;

mod asking;
mod limits;
mod status;
pub(crate) use asking::AskedMap;
pub(crate) use limits::expiry_loop;
pub(crate) use limits::{Offer, offer, total_room};
pub use status::FileTransfer;

/// Chunks between acknowledgements (each one syncs the `.part` file and the database): a
/// disconnect costs at most this many chunks (~4 MiB).
pub const ACK_EVERY: u64 = 64;
/// Largest incoming file unless the user sets another limit.
pub const DEFAULT_MAX_FILE: u64 = 1 << 30;
/// Settings key of the incoming size limit.
const MAX_FILE_KEY: &str = "max_file_bytes";
/// An incoming transfer being received: the next chunk expected from the network, and the
/// queue of its write task (which writes, hashes, syncs and verifies, off the receiving path).
pub(crate) struct Receiving {
    conv: Fingerprint,
    size: u64,
    chunk_size: u32,
    next: u64,
    writer: mpsc::Sender<Vec<u8>>,
}

/// Chunks queued for a write task (~2 MiB): enough to ride over a disk sync.
const WRITE_QUEUE: usize = 32;
/// Chunks written per blocking call at most.
const WRITE_BATCH: usize = 16;

/// What writing a batch of chunks came to.
enum Written {
    /// Chunks before this index are on disk (synced).
    Synced(u64),
    /// The last chunk is written: the verified file's path, or `None` if the hash did not match.
    Finished(Option<PathBuf>),
    /// Writing failed; the transfer resumes from its last synced chunk on the next link.
    Failed(std::io::Error),
}

/// A `.part` file being written, moved in and out of blocking calls.
struct PartFile {
    file: File,
    next: u64,
    hasher: Option<Box<blake3::Hasher>>,
}

/// Where a transfer stands on disk when it is resumed.
enum OnDisk {
    /// Partly written: continue from `next`.
    Part(PartFile),
    /// Already verified and in place (the node stopped before recording it).
    Done(PathBuf),
}

/// Incoming transfers by id.
pub(crate) type ReceivingMap = HashMap<Id, Receiving>;

fn hex_id(id: &Id) -> String {
    hex::encode(id)
}

fn out_path(dir: &Path, id: &Id) -> PathBuf {
    dir.join("out").join(hex_id(id))
}

fn part_path(dir: &Path, id: &Id) -> PathBuf {
    dir.join("in").join(format!("{}.part", hex_id(id)))
}

/// Where a received file ends up: `in/<id>/<name>` (the id keeps equal names apart).
fn final_path(dir: &Path, m: &Manifest) -> PathBuf {
    dir.join("in").join(hex_id(&m.id)).join(&m.name)
}

/// A media type from the file name's extension.
pub(super) fn mime_of(name: &str) -> &'static str {
    let ext = name
        .rsplit('.')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    match ext.as_str() {
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "mp4" => "video/mp4",
        "mp3" => "audio/mpeg",
        "pdf" => "application/pdf",
        "txt" => "text/plain",
        "zip" => "application/zip",
        _ => "application/octet-stream",
    }
}

/// Copies `src` to `dst`, returning its size and BLAKE3 hash; the hash runs on a second thread
/// while this one reads and writes.
pub(super) fn copy_hashing(src: &Path, dst: &Path) -> std::io::Result<(u64, [u8; 32])> {
    let mut input = File::open(src)?;
    if let Some(parent) = dst.parent() {
        fs::create_dir_all(parent)?;
    }
    let mut output = File::create(dst)?;
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(4);
    std::thread::scope(|scope| {
        let hashing = scope.spawn(move || {
            let mut hasher = blake3::Hasher::new();
            for block in rx {
                hasher.update(&block);
            }
            *hasher.finalize().as_bytes()
        });
        let mut size = 0u64;
        let copied = loop {
            let mut buf = vec![0u8; 1 << 20];
            let n = match input.read(&mut buf) {
                Ok(0) => break Ok(()),
                Ok(n) => n,
                Err(e) => break Err(e),
            };
            buf.truncate(n);
            if let Err(e) = output.write_all(&buf) {
                break Err(e);
            }
            size += n as u64;
            if tx.send(buf).is_err() {
                break Err(std::io::Error::other("the hashing thread stopped"));
            }
        };
        drop(tx);
        let hash = hashing
            .join()
            .map_err(|_| std::io::Error::other("the hashing thread panicked"))?;
        // Not synced: like SQLite in WAL mode with synchronous=NORMAL, the copy survives a
        // killed process, and a copy cut by a power loss fails the receiver's hash check.
        copied.map(|()| (size, hash))
    })
}

/// Opens (or creates, with its folder) a `.part` file for reading and writing, keeping what
/// it holds.
pub(super) fn open_part_file(path: &Path) -> std::io::Result<File> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(path)
}

/// The BLAKE3 hash of the first `len` bytes of the file at `path`.
pub(super) fn hash_file(path: &Path, len: u64) -> std::io::Result<[u8; 32]> {
    let mut hasher = blake3::Hasher::new();
    hasher.update_reader(File::open(path)?.take(len))?;
    Ok(*hasher.finalize().as_bytes())
}

/// Up to `n` chunks of `m` from chunk `first` on.
fn read_chunks(src: &mut File, m: &Manifest, first: u64, n: u64) -> std::io::Result<Vec<Vec<u8>>> {
    let size = u64::from(m.chunk_size);
    src.seek(SeekFrom::Start(first * size))?;
    let mut out = vec![];
    for i in first..(first + n).min(m.chunks()) {
        let mut buf = vec![0u8; (m.size - i * size).min(size) as usize];
        src.read_exact(&mut buf)?;
        out.push(buf);
    }
    Ok(out)
}

pub(super) fn io_err(e: std::io::Error) -> NodeError {
    NodeError::InvalidInput(format!("file: {e}"))
}

/// Checks a `File` op's manifest against the sender's key; it must be the op's own.
pub(crate) fn check_manifest(op: &Op, key: &[u8; 32]) -> bool {
    VerifyingKey::from_bytes(key).is_ok_and(|k| Manifest::verify(&op.body, &k, &op.id).is_ok())
}

impl Inner {
    /// The receiver's size limit.
    pub(crate) fn max_file(&self) -> u64 {
        self.max_file.load(Ordering::SeqCst)
    }

    /// A verified `File` op arrived: record the transfer and ask for its chunks, or refuse it
    /// (an error frame saying why, then `FileDone{ok: false}`).
    pub(crate) async fn file_offered(&self, link: &Link, id: Id, offer: Offer) {
        let conv = link.fp;
        match offer {
            Offer::Accepted => self.resume_incoming(link, Some(id)).await,
            Offer::Refused(why) => {
                tracing::info!(peer = %link.peer, why, "refused a file");
                let text = format!("file {} refused: {why}", hex_id(&id));
                let _ = link
                    .send(&Frame::Error {
                        code: ErrorCode::Other,
                        text,
                    })
                    .await;
                let _ = link.send(&Frame::FileDone { id, ok: false }).await;
                self.emit(NodeEvent::FileDone {
                    conversation: conv.to_hex(),
                    id: hex_id(&id),
                    ok: false,
                    outgoing: false,
                });
            }
            Offer::Ignored => {
                tracing::info!(peer = %link.peer, "a file offer reused a known id");
            }
        }
    }

    /// Asks `link`'s peer for the rest of our unfinished incoming transfers from it (or just
    /// `only`): from the next chunk a running write task expects, or else from the last
    /// acknowledged chunk, with the `.part` file cut there and a write task started. Resumes
    /// run one at a time, so a transfer never gets two write tasks.
    pub(crate) async fn resume_incoming(&self, link: &Link, only: Option<Id>) {
        let _one_at_a_time = self.resuming.lock().await;
        let conv = link.fp;
        let Ok(list) = self
            .db(move |c| file::incoming_unfinished(c, Some(&conv)))
            .await
        else {
            return;
        };
        for t in list
            .into_iter()
            .filter(|t| only.is_none_or(|id| id == t.manifest.id))
        {
            let id = t.manifest.id;
            let running = lock(&self.receiving).get(&id).map(|r| r.next);
            let index = match running {
                Some(next) => next,
                None => match self.start_writer(id).await {
                    Some(next) => next,
                    None => continue,
                },
            };
            let _ = link.send(&Frame::FileResume { id, index }).await;
        }
    }

    /// Starts the write task of transfer `id` if it is still unfinished; returns the next chunk
    /// to ask for (`None` when there is nothing to ask).
    async fn start_writer(&self, id: Id) -> Option<u64> {
        let this = self.me.upgrade()?;
        // Read again under the resume lock: a transfer that finished meanwhile is left alone.
        let t = self.db(move |c| file::get(c, &id)).await.ok().flatten()?;
        if t.outgoing || t.state != FileState::Transferring {
            return None;
        }
        let (dir, m, conv) = (self.files_dir.clone(), t.manifest.clone(), t.conv);
        let opened = tokio::task::spawn_blocking(move || open_part(&dir, &t)).await;
        let part = match opened {
            Ok(Ok(OnDisk::Part(part))) => part,
            Ok(Ok(OnDisk::Done(path))) => {
                self.written(conv, id, Written::Finished(Some(path))).await;
                return None;
            }
            _ => {
                tracing::warn!("could not open a partial file");
                return None;
            }
        };
        let next = part.next;
        let (tx, rx) = mpsc::channel(WRITE_QUEUE);
        lock(&self.receiving).insert(
            id,
            Receiving {
                conv,
                size: m.size,
                chunk_size: m.chunk_size,
                next,
                writer: tx,
            },
        );
        let task = tokio::spawn(write_task(Arc::downgrade(&this), m, conv, part, rx));
        this.track([task.abort_handle()]);
        Some(next)
    }

    /// Records what writing came to and tells the sender (on the contact's current link).
    async fn written(&self, conv: Fingerprint, id: Id, w: Written) {
        let link = self.link(&conv);
        match w {
            Written::Synced(next) => {
                let now = unix_ms();
                let _ = self
                    .db(move |c| file::set_progress(c, &id, next, now))
                    .await;
                if let Some(link) = link {
                    let _ = link.send(&Frame::FileAck { id, index: next }).await;
                }
                let total = lock(&self.receiving).get(&id).map(|r| r.size);
                if let Some(total) = total {
                    self.emit_progress(&conv, &id, next, total, false);
                }
            }
            Written::Finished(path) => {
                let ok = path.is_some();
                let state = if ok {
                    FileState::Done
                } else {
                    FileState::Refused
                };
                // Recorded before the transfer leaves `receiving`, so a resume never starts it
                // again.
                let now = unix_ms();
                let _ = self
                    .db(move |c| {
                        if let Some(t) = file::get(c, &id)? {
                            file::set_progress(c, &id, t.manifest.chunks(), now)?;
                        }
                        file::set_state(c, &id, state)
                    })
                    .await;
                lock(&self.receiving).remove(&id);
                if let Some(link) = link {
                    let _ = link.send(&Frame::FileDone { id, ok }).await;
                }
                self.emit(match path {
                    Some(path) => NodeEvent::FileReceived {
                        conversation: conv.to_hex(),
                        id: hex_id(&id),
                        path: path.to_string_lossy().into_owned(),
                    },
                    None => NodeEvent::FileDone {
                        conversation: conv.to_hex(),
                        id: hex_id(&id),
                        ok: false,
                        outgoing: false,
                    },
                });
            }
            Written::Failed(e) => {
                tracing::warn!(error = %e, "could not write a received file");
                lock(&self.receiving).remove(&id);
            }
        }
    }

    /// One chunk from `link`: checked against the order and size expected, then queued for the
    /// transfer's writer (waiting while its queue is full).
    pub(crate) async fn file_chunk(&self, link: &Link, id: Id, index: u64, data: Vec<u8>) {
        // The writer's queue for this chunk, or the chunk to ask for instead.
        let queue: Result<mpsc::Sender<Vec<u8>>, Option<u64>> = {
            let mut receiving = lock(&self.receiving);
            match receiving.get_mut(&id) {
                None => Err(None),
                Some(r) if r.conv != link.fp => Err(None),
                Some(r) if index != r.next => Err((index > r.next).then_some(r.next)),
                Some(r) => {
                    let size = u64::from(r.chunk_size);
                    if data.len() as u64 == r.size.saturating_sub(index * size).min(size) {
                        r.next += 1;
                        Ok(r.writer.clone())
                    } else {
                        tracing::info!(peer = %link.peer, "a file chunk of the wrong size");
                        Err(None)
                    }
                }
            }
        };
        match queue {
            Ok(writer) => {
                if writer.send(data).await.is_err() {
                    tracing::debug!("a file writer stopped");
                }
            }
            // A gap: ask again from the chunk we expect.
            Err(Some(next)) => {
                let _ = link.send(&Frame::FileResume { id, index: next }).await;
            }
            Err(None) => {}
        }
    }

    fn emit_progress(&self, conv: &Fingerprint, id: &Id, next: u64, total: u64, outgoing: bool) {
        let bytes = (next * u64::from(CHUNK_SIZE)).min(total);
        self.emit(NodeEvent::FileProgress {
            conversation: conv.to_hex(),
            id: hex_id(id),
            bytes,
            total,
            outgoing,
        });
    }

    /// `FileResume` for transfer `id`. From its receiver: send our file from chunk `index`
    /// ((re)start the sending task). From its sender (asking, see [`Inner::ask_outgoing`]): say
    /// again how a transfer we ended ended.
    pub(crate) async fn file_resume(this: &Arc<Inner>, link: &Arc<Link>, id: Id, index: u64) {
        let Ok(Some(t)) = this.db(move |c| file::get(c, &id)).await else {
            return;
        };
        if t.conv != link.fp {
            return;
        }
        if !t.outgoing {
            if t.state != FileState::Transferring {
                let ok = t.state == FileState::Done;
                let _ = link.send(&Frame::FileDone { id, ok }).await;
            }
            return;
        }
        if t.state != FileState::Transferring {
            return;
        }
        let (inner, link2) = (Arc::downgrade(this), link.clone());
        let path = out_path(&this.files_dir, &id);
        let task = tokio::spawn(async move {
            let m = t.manifest;
            let Ok(mut src) = File::open(&path) else {
                tracing::warn!("an outgoing file is missing from the profile");
                return;
            };
            let mut i = index;
            while i < m.chunks() {
                // Read a group of chunks per blocking call, then send them in order.
                let (first, man) = (i, m.clone());
                let read = blocking(move || {
                    let chunks = read_chunks(&mut src, &man, first, 16);
                    (src, chunks)
                })
                .await;
                let Ok((file, Ok(chunks))) = read else {
                    tracing::warn!("could not read an outgoing file");
                    return;
                };
                src = file;
                for data in chunks {
                    let frame = Frame::FileChunk { id, index: i, data };
                    if link2.send(&frame).await.is_err() || inner.strong_count() == 0 {
                        return;
                    }
                    i += 1;
                }
            }
        });
        if let Some(old) = lock(&this.sending).insert(id, task.abort_handle()) {
            old.abort();
        }
        this.track([task.abort_handle()]);
    }

    /// The receiver has chunks before `index` of our file `id`.
    pub(crate) async fn file_acked(&self, link: &Link, id: Id, index: u64) {
        let Ok(Some(t)) = self.db(move |c| file::get(c, &id)).await else {
            return;
        };
        if t.outgoing && t.conv == link.fp && t.state == FileState::Transferring {
            lock(&self.asked).remove(&id);
            let index = index.min(t.manifest.chunks());
            let now = unix_ms();
            let _ = self
                .db(move |c| file::set_progress(c, &id, index, now))
                .await;
            self.emit_progress(&t.conv, &id, index, t.manifest.size, true);
        }
    }

    /// The receiver finished our file `id` (`ok`: verified; else refused).
    pub(crate) async fn file_done(&self, link: &Link, id: Id, ok: bool) {
        let Ok(Some(t)) = self.db(move |c| file::get(c, &id)).await else {
            return;
        };
        if !t.outgoing || t.conv != link.fp || t.state != FileState::Transferring {
            return;
        }
        let state = if ok {
            FileState::Done
        } else {
            FileState::Refused
        };
        let _ = self.db(move |c| file::set_state(c, &id, state)).await;
        self.outgoing_ended(&t.conv, &id, ok);
    }

    /// The file message `id` with `conv` was deleted (by us, or by its sender): its transfer
    /// ends unless it is whole (a received file stays where it was saved).
    pub(crate) async fn file_deleted(&self, conv: Fingerprint, id: Id) {
        self.end_transfers("of a deleted file", move |c| {
            let t = file::get(c, &id)?;
            Ok(
                t.filter(|t| t.conv == conv && t.state == FileState::Transferring)
                    .into_iter()
                    .collect(),
            )
        })
        .await;
    }

    /// Contact `conv` was removed: our unfinished transfers with it end (ours would be refused,
    /// its own cannot resume), their copies and partial files deleted.
    pub(crate) async fn end_transfers_with(&self, conv: Fingerprint) {
        self.end_transfers("of a removed contact", move |c| {
            let mut all = file::incoming_unfinished(c, Some(&conv))?;
            all.extend(file::outgoing_unfinished(c, Some(&conv), 0)?);
            Ok(all)
        })
        .await;
    }

    /// Ends the unfinished transfers `pick` chooses, refused in the store: ours stop and lose
    /// their copies, incoming ones their partial files (the sender told if connected). Returns
    /// how many; `whose` says whose they were if they could not be ended.
    pub(super) async fn end_transfers(
        &self,
        whose: &'static str,
        pick: impl FnOnce(&rusqlite::Connection) -> Result<Vec<Transfer>, NodeError> + Send + 'static,
    ) -> usize {
        let _one_at_a_time = self.resuming.lock().await;
        let ended = self
            .db(move |c| {
                let all = pick(c)?;
                for t in &all {
                    file::set_state(c, &t.manifest.id, FileState::Refused)?;
                }
                Ok::<_, NodeError>(all)
            })
            .await;
        let all = match ended {
            Ok(all) => all,
            Err(e) => {
                tracing::warn!(error = %e, "could not end the transfers {whose}");
                return 0;
            }
        };
        for t in &all {
            if t.outgoing {
                self.outgoing_ended(&t.conv, &t.manifest.id, false);
            } else {
                self.incoming_dropped(t).await;
            }
        }
        all.len()
    }

    /// Our transfer `id` to `conv` ended (`ok`: received whole): its sending task stops and
    /// its copy in the profile goes.
    fn outgoing_ended(&self, conv: &Fingerprint, id: &Id, ok: bool) {
        lock(&self.asked).remove(id);
        if let Some(task) = lock(&self.sending).remove(id) {
            task.abort();
        }
        let _ = fs::remove_file(out_path(&self.files_dir, id));
        self.emit(NodeEvent::FileDone {
            conversation: conv.to_hex(),
            id: hex_id(id),
            ok,
            outgoing: true,
        });
    }
}

/// Where transfer `t` stands on disk: its verified file already in place, or its `.part` file
/// (created if missing) cut to the acknowledged chunks, with a hasher when it starts from nothing
/// (else the file is hashed again at the end).
fn open_part(dir: &Path, t: &Transfer) -> std::io::Result<OnDisk> {
    let m = &t.manifest;
    let done = final_path(dir, m);
    if done.is_file() && hash_file(&done, m.size)? == m.hash {
        return Ok(OnDisk::Done(done));
    }
    let path = part_path(dir, &m.id);
    let file = open_part_file(&path)?;
    let keep = (t.next_index * u64::from(m.chunk_size)).min(m.size);
    file.set_len(keep)?;
    Ok(OnDisk::Part(PartFile {
        file,
        next: t.next_index,
        hasher: (t.next_index == 0).then(Box::default),
    }))
}

/// A transfer's write task: takes the chunks `file_chunk` queues, writes them in batches on the
/// blocking pool (no thread is held while it waits), and records what each batch came to.
/// Ends when the file is finished, writing fails, or the transfer leaves `receiving`.
async fn write_task(
    inner: Weak<Inner>,
    m: Manifest,
    conv: Fingerprint,
    mut part: PartFile,
    mut chunks: mpsc::Receiver<Vec<u8>>,
) {
    let Some(dir) = inner.upgrade().map(|i| i.files_dir.clone()) else {
        return;
    };
    let m = Arc::new(m);
    let mut batch: Vec<Vec<u8>> = vec![];
    loop {
        // An empty file has nothing to wait for.
        if part.next < m.chunks() {
            let Some(first) = chunks.recv().await else {
                return;
            };
            batch.push(first);
            while batch.len() < WRITE_BATCH {
                match chunks.try_recv() {
                    Ok(data) => batch.push(data),
                    Err(_) => break,
                }
            }
        }
        let (d, man, todo) = (dir.clone(), m.clone(), std::mem::take(&mut batch));
        let wrote = tokio::task::spawn_blocking(move || {
            let outcome = write_batch(&d, &man, &mut part, todo);
            (part, outcome)
        })
        .await;
        let Ok((back, outcome)) = wrote else { return };
        part = back;
        let Some(this) = inner.upgrade() else { return };
        let last = matches!(outcome, Some(Written::Finished(_) | Written::Failed(_)));
        if let Some(w) = outcome {
            this.written(conv, m.id, w).await;
        }
        if last {
            return;
        }
    }
}

/// Writes `chunks` at `part.next` on; syncs at acknowledgement boundaries and checks and moves
/// the file after the last chunk. Says what to record, if anything.
fn write_batch(
    dir: &Path,
    m: &Manifest,
    part: &mut PartFile,
    chunks: Vec<Vec<u8>>,
) -> Option<Written> {
    let mut synced = None;
    for data in chunks {
        let at = part.next * u64::from(m.chunk_size);
        let wrote = part
            .file
            .seek(SeekFrom::Start(at))
            .and_then(|_| part.file.write_all(&data));
        if let Err(e) = wrote {
            return Some(Written::Failed(e));
        }
        if let Some(h) = part.hasher.as_mut() {
            h.update(&data);
        }
        part.next += 1;
        if part.next < m.chunks() && part.next.is_multiple_of(ACK_EVERY) {
            if let Err(e) = part.file.sync_data() {
                return Some(Written::Failed(e));
            }
            synced = Some(part.next);
        }
    }
    if part.next < m.chunks() {
        return synced.map(Written::Synced);
    }
    Some(match finish(dir, m, part) {
        Ok(path) => Written::Finished(path),
        Err(e) => Written::Failed(e),
    })
}

/// The whole file is written: sync, check the hash, move it in place (or delete it).
fn finish(dir: &Path, m: &Manifest, part: &mut PartFile) -> std::io::Result<Option<PathBuf>> {
    part.file.sync_all()?;
    let path = part_path(dir, &m.id);
    let hash = match part.hasher.take() {
        Some(h) => *h.finalize().as_bytes(),
        None => hash_file(&path, m.size)?,
    };
    if hash != m.hash {
        fs::remove_file(&path)?;
        return Ok(None);
    }
    let dst = final_path(dir, m);
    if let Some(parent) = dst.parent() {
        fs::create_dir_all(parent)?;
    }
    fs::rename(&path, &dst)?;
    Ok(Some(dst))
}

impl Node {
    /// Sends the file at `path` to contact `conv`: copied into the profile, offered through the
    /// outbox (so it waits while the contact is offline), then sent in chunks the receiver asks
    /// for. Progress arrives as [`NodeEvent::FileProgress`], the end as [`NodeEvent::FileDone`].
    pub async fn send_file(&self, conv: &str, path: &str) -> Result<Message, NodeError> {
        let fp = parse_fp(conv)?;
        let id: Id = rand::random();
        let (src, dst) = (PathBuf::from(path), out_path(&self.inner.files_dir, &id));
        let name = clean_name(&src.file_name().unwrap_or_default().to_string_lossy());
        let d = dst.clone();
        let (size, hash) = tokio::task::spawn_blocking(move || copy_hashing(&src, &d))
            .await
            .map_err(|e| NodeError::Store(crate::store::StoreError::Task(e)))?
            .map_err(io_err)?;
        let manifest = Manifest {
            id,
            mime: mime_of(&name).into(),
            name,
            size,
            hash,
            chunk_size: CHUNK_SIZE,
        };
        let body = manifest.sign(&self.inner.identity);
        let (me, now) = (self.inner.fingerprint, unix_ms());
        let stored = self
            .inner
            .db(move |c| {
                match contacts::trust_of(c, &fp)? {
                    Some(t) if t.allows(Capability::File) => {}
                    _ => return Err(NodeError::NotAllowed(format!("{fp} may not get files"))),
                }
                // The transfer and its message in one transaction: a transfer without its
                // message would be asked about on every link for ever.
                let tx = c.transaction().map_err(crate::store::StoreError::from)?;
                file::add(&tx, &fp, true, &manifest, now)?;
                let (op, _) =
                    chat::enqueue_in(&tx, &me, &fp, (OpKind::File, id), None, &body, now)?;
                tx.commit().map_err(crate::store::StoreError::from)?;
                Ok(Message::new(fp, &op, None))
            })
            .await;
        match stored {
            Ok(m) => {
                Inner::wake(&self.inner, &fp);
                Ok(m)
            }
            Err(e) => {
                let _ = fs::remove_file(&dst);
                Err(e)
            }
        }
    }

    /// Sets the largest incoming file accepted (kept in the profile).
    pub async fn set_max_file_size(&self, bytes: u64) -> Result<(), NodeError> {
        self.inner
            .db(move |c| crate::store::settings::set_setting(c, MAX_FILE_KEY, &bytes.to_string()))
            .await?;
        self.inner.max_file.store(bytes, Ordering::SeqCst);
        Ok(())
    }
}

/// The stored size limit, or the default.
pub(crate) fn load_max_file(conn: &rusqlite::Connection) -> Result<u64, crate::store::StoreError> {
    Ok(crate::store::settings::get_setting(conn, MAX_FILE_KEY)?
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_MAX_FILE))
}

#[cfg(test)]
mod tests;
