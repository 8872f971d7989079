//! The partial file of an upload (`<folder>/.peerns-part-<hash of the name>`): written only by
//! the writer that opened it last, and placed whole. A resumed upload (another session, or a
//! new request) takes the file over while an earlier writer may still hold it open, e.g. the
//! session of a killed sender whose last chunks are still being read; from then on the earlier
//! writer's writes and its placing are refused, so it can neither mix bytes into the new
//! upload nor, through its open handle, change a file after it was placed.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use super::RpcError;
use super::fs::io_err;
use super::quota::Reservation;

/// Which writer owns each partial file, by a number given at opening.
#[derive(Debug, Default)]
pub(super) struct Writers {
    last: u64,
    owner: HashMap<PathBuf, u64>,
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Writers {
    /// Makes a new writer the owner of `part`; returns its number.
    pub(super) fn claim(&mut self, part: &Path) -> u64 {
        self.last += 1;
        self.owner.insert(part.to_owned(), self.last);
        self.last
    }

    fn owns(&self, part: &Path, writer: u64) -> Result<(), RpcError> {
        if self.owner.get(part) == Some(&writer) {
            Ok(())
        } else {
            Err(RpcError::bad("a newer upload of this file took it over"))
        }
    }
}

/// A partial file, open for writing by its owner.
pub(super) struct Part {
    target: PathBuf,
    part: PathBuf,
    dir: PathBuf,
    file: Option<File>,
    /// The bytes this upload may still add under the root's quota.
    pub(super) reservation: Reservation,
    writers: Arc<Mutex<Writers>>,
    writer: u64,
}

impl Part {
    /// A part `[target, part file, folder]` opened by `writer` of `writers`.
    pub(super) fn new(
        [target, part, dir]: [PathBuf; 3],
        file: File,
        reservation: Reservation,
        (writers, writer): (Arc<Mutex<Writers>>, u64),
    ) -> Part {
        Part {
            target,
            part,
            dir,
            file: Some(file),
            reservation,
            writers,
            writer,
        }
    }

    /// The partial file's path.
    pub(super) fn path(&self) -> &Path {
        &self.part
    }

    /// Appends `data`, unless another writer took the file over.
    pub(super) fn write(&mut self, data: &[u8]) -> Result<(), RpcError> {
        let writers = lock(&self.writers);
        writers.owns(&self.part, self.writer)?;
        let file = self.file.as_mut().ok_or_else(closed)?;
        file.write_all(data).map_err(io_err)
    }

    /// Syncs the partial file and puts it in place whole: a hard link, which never
    /// overwrites (even in a race), or with `overwrite` a rename.
    pub(super) fn place(&mut self, overwrite: bool) -> Result<(), RpcError> {
        let mut writers = lock(&self.writers);
        writers.owns(&self.part, self.writer)?;
        let file = self.file.take().ok_or_else(closed)?;
        file.sync_all().map_err(io_err)?;
        drop(file);
        writers.owner.remove(&self.part);
        let placed = if overwrite {
            fs::rename(&self.part, &self.target)
        } else {
            fs::hard_link(&self.part, &self.target).and_then(|()| fs::remove_file(&self.part))
        };
        if let Err(e) = placed {
            let _ = fs::remove_file(&self.part);
            return Err(io_err(e));
        }
        if let Ok(d) = File::open(&self.dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    /// Deletes the partial file, unless another writer took it over.
    pub(super) fn discard(&mut self) {
        let mut writers = lock(&self.writers);
        if writers.owns(&self.part, self.writer).is_ok() {
            self.file = None;
            writers.owner.remove(&self.part);
            let _ = fs::remove_file(&self.part);
        }
    }
}

fn closed() -> RpcError {
    RpcError::bad("the upload has ended")
}

impl Drop for Part {
    fn drop(&mut self) {
        let mut writers = lock(&self.writers);
        if writers.owner.get(&self.part) == Some(&self.writer) {
            writers.owner.remove(&self.part);
        }
    }
}
