//! Fetching one group file: asks holders for windows of chunks, writes them in order to the
//! `.part` file, moves to another holder when one is silent or its bytes fail the hash, and
//! places the file once its whole-file hash matches the signed manifest.

use super::*;

/// One file being fetched.
pub(super) struct Fetch {
    pub(super) inner: Weak<Inner>,
    pub(super) gid: GroupId,
    pub(super) author: Fingerprint,
    pub(super) manifest: Manifest,
    /// Holders not to ask again (silent, lacking, or whose bytes failed the hash).
    pub(super) failed: Vec<Fingerprint>,
    /// Chunks synced to disk (and recorded) so far.
    pub(super) next_index: u64,
}

/// How a fetch ended.
enum Outcome {
    /// Verified and in place here.
    Placed(String),
    /// No holder's bytes matched the signed hash.
    GaveUp,
    /// Nothing useful came for [`IDLE_YIELD`]: another file's turn.
    Idle,
}

/// Where a fetch stands between holders' frames.
struct Progress {
    part: Part,
    /// Chunks asked for up to here.
    asked: u64,
    /// Chunks that came ahead of `part.next`.
    ahead: BTreeMap<u64, Vec<u8>>,
    synced: u64,
    attempts: u32,
}

impl Fetch {
    pub(super) async fn run(mut self, mut rx: mpsc::Receiver<Incoming>, next: u64) {
        let key = (self.gid, self.manifest.id);
        let outcome = self.fetch(&mut rx, next).await;
        let Some(inner) = self.inner.upgrade() else {
            return;
        };
        lock(&inner.groups).files.running.remove(&key);
        let (gid, id) = (self.gid, self.manifest.id);
        let path = match outcome {
            Ok(Outcome::Placed(path)) => Some(path),
            Ok(Outcome::GaveUp) => None,
            Ok(Outcome::Idle) => {
                // To the back of the queue (ordered by last progress).
                let n = self.next_index;
                let _ = inner
                    .db(move |c| gfiles::set_progress(c, &gid, &id, n, unix_ms()))
                    .await;
                Inner::next_group_files(&inner, gid);
                return;
            }
            Err(e) => {
                // The node is stopping, or the disk failed: resumed on the next start.
                tracing::debug!(group = %self.gid, error = %e, "group file transfer stopped");
                return;
            }
        };
        let p = path.clone();
        let stored = inner
            .db(move |c| gfiles::finish(c, &gid, &id, p.as_deref(), unix_ms()))
            .await;
        if let Err(e) = stored {
            tracing::warn!(group = %self.gid, error = %e, "could not record a group file");
        }
        inner.emit_group(GroupUpdate::FileDone {
            group: gid,
            file: hex::encode(id),
            path,
        });
        Inner::next_group_files(&inner, gid);
    }

    /// Fetches the file until it is placed, given up or idle; `Err` when stopped.
    async fn fetch(
        &mut self,
        rx: &mut mpsc::Receiver<Incoming>,
        next: u64,
    ) -> std::io::Result<Outcome> {
        let files_dir = match self.inner.upgrade() {
            Some(i) => i.files_dir.clone(),
            None => return Err(std::io::Error::other("stopped")),
        };
        let (m, gid) = (self.manifest.clone(), self.gid);
        let part_file = part_path(&files_dir, &gid, &m.id);
        let (pf, mm) = (part_file.clone(), m.clone());
        let part = tokio::task::spawn_blocking(move || Part::open(&pf, &mm, next))
            .await
            .map_err(std::io::Error::other)??;
        let mut p = Progress {
            asked: part.next,
            synced: part.next,
            part,
            ahead: BTreeMap::new(),
            attempts: 0,
        };
        let total = m.chunks();
        let mut source: Option<(Fingerprint, Arc<Link>)> = None;
        let mut backoff = Duration::from_millis(500);
        let mut useful_at = tokio::time::Instant::now();
        loop {
            // Ended (its group deleted): nothing is placed or recorded.
            match self.inner.upgrade() {
                Some(i) if lock(&i.groups).files.listed(&(gid, m.id)) => {}
                _ => return Err(std::io::Error::other("stopped")),
            }
            if p.part.next == total {
                let (part, ok) = on_part(p.part, {
                    let hash = m.hash;
                    move |part| {
                        part.file.sync_all()?;
                        Ok(*part.hasher.finalize().as_bytes() == hash)
                    }
                })
                .await?;
                p.part = part;
                if ok {
                    // Ended while it hashed (its group deleted): nothing is placed.
                    match self.inner.upgrade() {
                        Some(i) if lock(&i.groups).files.listed(&(gid, m.id)) => {}
                        _ => return Err(std::io::Error::other("stopped")),
                    }
                    let dst = final_path(&files_dir, &gid, &m);
                    let (pf, d) = (part_file.clone(), dst.clone());
                    tokio::task::spawn_blocking(move || {
                        fs::create_dir_all(d.parent().unwrap_or(&d))?;
                        fs::rename(&pf, &d)
                    })
                    .await
                    .map_err(std::io::Error::other)??;
                    return Ok(Outcome::Placed(dst.to_string_lossy().into_owned()));
                }
                // Someone altered the bytes: not that holder again; from the start.
                p.attempts += 1;
                tracing::info!(group = %gid, file = %hex::encode(m.id), holder = ?source.as_ref().map(|s| s.0),
                    "a group file failed its hash");
                if let Some((fp, _)) = source.take() {
                    self.failed.push(fp);
                }
                if p.attempts >= MAX_ATTEMPTS {
                    let pf = part_file.clone();
                    let _ = tokio::task::spawn_blocking(move || fs::remove_file(pf)).await;
                    return Ok(Outcome::GaveUp);
                }
                p.part = on_part(p.part, Part::restart).await?.0;
                (p.asked, p.synced) = (0, 0);
                self.next_index = 0;
                p.ahead.clear();
                self.clear_waiters();
                continue;
            }
            if useful_at.elapsed() >= IDLE_YIELD {
                return Ok(Outcome::Idle);
            }
            let Some(inner) = self.inner.upgrade() else {
                return Err(std::io::Error::other("stopped"));
            };
            if source.as_ref().is_none_or(|(_, l)| l.is_closed()) {
                source = inner.holder(&gid, &self.author, &self.failed);
                p.asked = p.part.next;
                p.ahead.clear();
                if source.is_none() {
                    drop(inner);
                    // Nobody to ask: everyone may be asked again after a pause.
                    self.failed.clear();
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            }
            let (holder, link) = source.clone().expect("a holder");
            drop(inner);
            while p.asked < total && p.asked - p.part.next < WINDOW {
                let count = ASK.min(total - p.asked);
                let want = FileFrame::Want {
                    group: gid,
                    file: m.id,
                    from: p.asked,
                    count: count as u16,
                };
                let _ = link.send(&Frame::Group(want.encode())).await;
                p.asked += count;
            }
            let got = match tokio::time::timeout(QUIET, rx.recv()).await {
                Err(_) => {
                    tracing::debug!(group = %gid, %holder, "a group file holder went quiet");
                    self.failed.push(holder);
                    source = None;
                    continue;
                }
                Ok(None) => return Err(std::io::Error::other("stopped")),
                Ok(Some(got)) => got,
            };
            match got {
                Incoming::Lack(from) if from == holder => {
                    self.failed.push(holder);
                    source = None;
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
                Incoming::Chunk { from, index, data } if from == holder => {
                    if data.len() != chunk_len(&m, index) || index >= p.asked {
                        tracing::info!(group = %gid, %holder, "a group file holder sent a wrong chunk");
                        self.failed.push(holder);
                        source = None;
                        continue;
                    }
                    if index >= p.part.next {
                        p.ahead.insert(index, data);
                    }
                    // Whatever else is queued, then write what is in order.
                    while let Ok(Incoming::Chunk { from, index, data }) = rx.try_recv() {
                        if from == holder
                            && index >= p.part.next
                            && index < p.asked
                            && data.len() == chunk_len(&m, index)
                        {
                            p.ahead.insert(index, data);
                        }
                    }
                    let first = p.part.next;
                    let mut batch = vec![];
                    while let Some(d) = p.ahead.remove(&(first + batch.len() as u64)) {
                        batch.push(d);
                    }
                    if batch.is_empty() {
                        continue;
                    }
                    backoff = Duration::from_millis(500);
                    useful_at = tokio::time::Instant::now();
                    let sync = first + batch.len() as u64 >= p.synced + SYNC_EVERY
                        || first + batch.len() as u64 == total;
                    let (part, batch) = on_part(p.part, move |part| {
                        part.write(&batch)?;
                        if sync {
                            part.file.sync_data()?;
                        }
                        Ok(batch)
                    })
                    .await?;
                    p.part = part;
                    if let Some(inner) = self.inner.upgrade() {
                        inner.hand_on((gid, m.id), first, &batch).await;
                        if sync {
                            p.synced = p.part.next;
                            self.next_index = p.synced;
                            let (id, n) = (m.id, p.part.next);
                            let _ = inner
                                .db(move |c| gfiles::set_progress(c, &gid, &id, n, unix_ms()))
                                .await;
                            inner.emit_group(GroupUpdate::FileProgress {
                                group: gid,
                                file: hex::encode(m.id),
                                received: (n * u64::from(m.chunk_size)).min(m.size),
                                size: m.size,
                            });
                        }
                    }
                }
                _ => {}
            }
        }
    }

    fn clear_waiters(&self) {
        if let Some(inner) = self.inner.upgrade()
            && let Some(r) = lock(&inner.groups)
                .files
                .running
                .get_mut(&(self.gid, self.manifest.id))
        {
            r.waiters.clear();
            r.written = 0;
        }
    }
}
