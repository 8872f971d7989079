//! Streamed uploads (decision 0014, "Binary chunks"). A signed request
//! `fs.upload {path, total, blake3, offset?, overwrite?}` is checked like any other (trust,
//! signature bound to the session, freshness, grants) and opens an upload on the session it
//! came in; the bytes follow as binary chunks (tag 52) on that session only, in order. The
//! server acknowledges progress and the end (tag 53). The file is placed whole (as `fs.write`
//! places it) only if its BLAKE3 is the one the signed request named, so the chunks can carry
//! nothing the request did not allow.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;

use super::RpcError;
use super::fs::Roots;
use super::part::Part;
use super::path::RpcPath;

/// Largest chunk: the size 1:1 file transfers use.
pub const CHUNK: usize = crate::chat::wire::MAX_CHUNK;
/// The server acknowledges progress after this many bytes.
pub const ACK_EVERY: u64 = 1 << 20;
/// Uploads open at once on one session; opening another closes the oldest.
pub const MAX_OPEN: usize = 4;

/// Progress (more chunks expected).
pub const CODE_CONTINUE: u16 = 100;
/// The file was placed.
pub const CODE_DONE: u16 = 200;

/// What a `fs.upload` request asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadSpec {
    /// Target.
    pub path: RpcPath,
    /// Size of the whole file.
    pub total: u64,
    /// Where the chunks start (bytes the server already has, as `fs.stat` reported them).
    pub offset: u64,
    /// BLAKE3 of the whole file.
    pub blake3: [u8; 32],
    /// Replace an existing file.
    pub overwrite: bool,
}

/// An open upload.
pub struct Upload {
    spec: UploadSpec,
    part: Part,
    next: u64,
    acked: u64,
    hasher: blake3::Hasher,
    /// The id of the request that opened it (for the audit log).
    pub request_id: String,
}

impl std::fmt::Debug for Upload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upload")
            .field("path", &self.spec.path.to_string())
            .field("next", &self.next)
            .field("total", &self.spec.total)
            .finish()
    }
}

/// What a chunk did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// More chunks are expected; `Some(bytes)` when progress should be acknowledged.
    More(Option<u64>),
    /// The last byte arrived: [`Upload::finish`] places the file.
    Complete,
}

impl Upload {
    /// Opens an upload (blocking): the partial file as `fs.write` opens it, the bytes before
    /// `offset` hashed again from it.
    pub fn open(roots: &Roots, spec: UploadSpec, request_id: &str) -> Result<Upload, RpcError> {
        let part = roots.open_part(&spec.path, spec.total, spec.offset, spec.overwrite)?;
        let mut hasher = blake3::Hasher::new();
        if spec.offset > 0 {
            let f = File::open(part.path())
                .map_err(|e| RpcError::internal(format!("reading the partial file: {e}")))?;
            let n = std::io::copy(&mut f.take(spec.offset), &mut hasher)
                .map_err(|e| RpcError::internal(format!("reading the partial file: {e}")))?;
            if n != spec.offset {
                return Err(RpcError::bad("the partial file is shorter than the offset"));
            }
        }
        Ok(Upload {
            next: spec.offset,
            acked: spec.offset,
            spec,
            part,
            hasher,
            request_id: request_id.to_owned(),
        })
    }

    /// The target path.
    pub fn path(&self) -> &RpcPath {
        &self.spec.path
    }

    /// Bytes of the file written so far.
    pub fn written(&self) -> u64 {
        self.next
    }

    /// Whether every byte is there (an empty file, or a resume of a complete partial file).
    pub fn is_complete(&self) -> bool {
        self.next == self.spec.total
    }

    /// Writes one chunk (blocking): it must start where the last one ended and stay within
    /// the total.
    pub fn write(&mut self, offset: u64, data: &[u8]) -> Result<Progress, RpcError> {
        if offset != self.next {
            return Err(RpcError::bad(format!(
                "a chunk at {offset}; the upload is at {}",
                self.next
            )));
        }
        if data.is_empty() || data.len() > CHUNK {
            return Err(RpcError::bad("a chunk holds 1 to 61,440 bytes"));
        }
        let end = self.next + data.len() as u64;
        if end > self.spec.total {
            return Err(RpcError::bad("the chunk goes past the total size"));
        }
        self.part.write(data)?;
        self.hasher.update(data);
        self.part.reservation.written(data.len() as u64);
        self.next = end;
        if self.is_complete() {
            return Ok(Progress::Complete);
        }
        if self.next - self.acked >= ACK_EVERY {
            self.acked = self.next;
            return Ok(Progress::More(Some(self.next)));
        }
        Ok(Progress::More(None))
    }

    /// Places the complete file (blocking) if its hash is the signed one; otherwise deletes
    /// the partial file (400).
    pub fn finish(mut self) -> Result<u64, RpcError> {
        if !self.is_complete() {
            return Err(RpcError::bad("the upload is not complete"));
        }
        let hash = *self.hasher.finalize().as_bytes();
        if hash != self.spec.blake3 {
            self.part.discard();
            return Err(RpcError::bad(
                "the file's BLAKE3 is not the one the request named",
            ));
        }
        self.part.place(self.spec.overwrite)?;
        Ok(self.next)
    }
}

/// The uploads open on one session, numbered from 1.
#[derive(Debug, Default)]
pub struct Uploads {
    open: BTreeMap<u64, Upload>,
    last: u64,
}

impl Uploads {
    /// Keeps `upload` open; returns its number and, beyond [`MAX_OPEN`], the number of the
    /// oldest, which it closed (its partial file stays: a later upload resumes it).
    pub fn insert(&mut self, upload: Upload) -> (u64, Option<u64>) {
        let closed = (self.open.len() >= MAX_OPEN)
            .then(|| self.open.pop_first().map(|(n, _)| n))
            .flatten();
        self.last += 1;
        self.open.insert(self.last, upload);
        (self.last, closed)
    }

    /// Whether no upload is open.
    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }

    /// Whether upload `n` was opened on this session (it may have ended since).
    pub fn was_opened(&self, n: u64) -> bool {
        (1..=self.last).contains(&n)
    }

    /// Takes upload `n` out (to write to it off the session's task).
    pub fn take(&mut self, n: u64) -> Option<Upload> {
        self.open.remove(&n)
    }

    /// Puts upload `n` back after a chunk.
    pub fn put(&mut self, n: u64, upload: Upload) {
        self.open.insert(n, upload);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn spec(path: &str, data: &[u8], offset: u64) -> UploadSpec {
        UploadSpec {
            path: RpcPath::parse(path).unwrap(),
            total: data.len() as u64,
            offset,
            blake3: *blake3::hash(data).as_bytes(),
            overwrite: false,
        }
    }

    fn roots(dir: &std::path::Path, quota: u64) -> Roots {
        Roots::new(&[("in".into(), dir.into())], 1 << 30)
            .unwrap()
            .with_quotas(&[("in".into(), quota)])
            .unwrap()
    }

    #[test]
    fn chunks_in_order_place_the_file_and_resume_from_the_partial_file() {
        let d = tempfile::tempdir().unwrap();
        let roots = roots(d.path(), 1 << 30);
        let data: Vec<u8> = (0..3_000_000u32).map(|i| ((i * 31) >> 7) as u8).collect();
        let mut up = Upload::open(&roots, spec("/in/a/big", &data, 0), "r1").unwrap();
        let mut acks = vec![];
        let mut off = 0;
        for c in data[..1_500_000].chunks(CHUNK) {
            if let Progress::More(Some(n)) = up.write(off, c).unwrap() {
                acks.push(n);
            }
            off += c.len() as u64;
        }
        assert_eq!(acks, [(ACK_EVERY / CHUNK as u64 + 1) * CHUNK as u64]);
        // Out of order, empty and too long chunks are refused.
        assert_eq!(up.write(0, b"x").unwrap_err().code, 400);
        assert_eq!(up.write(off, b"").unwrap_err().code, 400);
        assert_eq!(up.finish().unwrap_err().code, 400);
        assert!(!d.path().join("a/big").exists());

        // The session ended; a new upload resumes at what the server has.
        let mut up = Upload::open(&roots, spec("/in/a/big", &data, off), "r2").unwrap();
        let mut at = off;
        let mut last = Progress::More(None);
        for c in data[off as usize..].chunks(CHUNK) {
            last = up.write(at, c).unwrap();
            at += c.len() as u64;
        }
        assert_eq!(last, Progress::Complete);
        assert_eq!(up.write(at, b"x").unwrap_err().code, 400);
        up.finish().unwrap();
        assert_eq!(fs::read(d.path().join("a/big")).unwrap(), data);
        assert_eq!(fs::read_dir(d.path().join("a")).unwrap().count(), 1);
        // Never overwritten unless asked.
        assert_eq!(
            Upload::open(&roots, spec("/in/a/big", b"new", 0), "r3")
                .unwrap_err()
                .code,
            400
        );
    }

    #[test]
    fn a_wrong_hash_places_nothing_and_quotas_are_kept() {
        let d = tempfile::tempdir().unwrap();
        let roots = roots(d.path(), 100_000);
        let mut s = spec("/in/x", &[1; 70_000], 0);
        s.blake3 = [0; 32];
        let mut up = Upload::open(&roots, s, "r1").unwrap();
        up.write(0, &[1; CHUNK]).unwrap();
        // A second upload does not fit next to the first one's announced bytes.
        let e = Upload::open(&roots, spec("/in/y", &[2; 40_000], 0), "r2").unwrap_err();
        assert_eq!(e.code, 413);
        assert_eq!(
            up.write(CHUNK as u64, &[1; 70_000 - CHUNK]).unwrap(),
            Progress::Complete
        );
        assert_eq!(up.finish().unwrap_err().code, 400);
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 0);
        // Its bytes are free again.
        Upload::open(&roots, spec("/in/y", &[2; 40_000], 0), "r2").unwrap();
        let e = Upload::open(&roots, spec("/in/z", &[3; 100_001], 0), "r3").unwrap_err();
        assert_eq!(e.code, 413);
    }

    #[test]
    fn a_resumed_upload_takes_the_partial_file_over_from_an_earlier_writer() {
        let d = tempfile::tempdir().unwrap();
        let roots = roots(d.path(), 1 << 20);
        let data = vec![5u8; 200_000];
        let mut old = Upload::open(&roots, spec("/in/f", &data, 0), "r1").unwrap();
        old.write(0, &data[..CHUNK]).unwrap();
        // Another session resumes (its sender read the size) while the old one is still open.
        let mut new = Upload::open(&roots, spec("/in/f", &data, CHUNK as u64), "r2").unwrap();
        let e = old.write(CHUNK as u64, &[9; CHUNK]).unwrap_err();
        assert_eq!(e.code, 400);
        let mut at = CHUNK;
        for c in data[CHUNK..].chunks(CHUNK) {
            new.write(at as u64, c).unwrap();
            at += c.len();
        }
        new.finish().unwrap();
        drop(old);
        assert_eq!(fs::read(d.path().join("f")).unwrap(), data);
        // A finished writer cannot write into the placed file either.
        let mut a = Upload::open(&roots, spec("/in/g", &data[..10], 0), "r3").unwrap();
        a.write(0, &data[..5]).unwrap();
        let mut b = Upload::open(&roots, spec("/in/g", &data[..10], 0), "r4").unwrap();
        b.write(0, &data[..10]).unwrap();
        b.finish().unwrap();
        assert_eq!(a.write(5, &data[..5]).unwrap_err().code, 400);
        assert_eq!(fs::read(d.path().join("g")).unwrap(), &data[..10]);
    }

    #[test]
    fn the_oldest_upload_of_a_session_is_closed_beyond_the_cap() {
        let d = tempfile::tempdir().unwrap();
        let roots = roots(d.path(), 1 << 20);
        let mut t = Uploads::default();
        let (ids, closed): (Vec<u64>, Vec<Option<u64>>) = (0..=MAX_OPEN)
            .map(|i| {
                let p = format!("/in/f{i}");
                t.insert(Upload::open(&roots, spec(&p, b"abc", 0), "r").unwrap())
            })
            .unzip();
        assert_eq!(closed[MAX_OPEN], Some(ids[0]));
        assert!(closed[..MAX_OPEN].iter().all(Option::is_none));
        assert!(t.take(ids[0]).is_none() && t.was_opened(ids[0]));
        assert!(!t.was_opened(0) && !t.was_opened(ids[MAX_OPEN] + 1));
        let up = t.take(ids[MAX_OPEN]).unwrap();
        assert_eq!(up.path().to_string(), format!("/in/f{MAX_OPEN}"));
        t.put(ids[MAX_OPEN], up);
        assert!(t.take(ids[MAX_OPEN]).is_some());
    }
}
