//! A file a backup reads: a path, or a document the platform opens for us when its turn comes
//! (Android: a picked folder's file through its document provider, handed over as a file
//! descriptor), so a phone needs no copy of the folder to back it up.

use std::fmt;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::NodeError;

/// Opens a document for reading; may block (a provider may fetch it first).
pub type Opener = Arc<dyn Fn() -> io::Result<File> + Send + Sync>;

/// A file read by a backup, opened anew each time it is read (hashed, then sent or resumed).
#[derive(Clone)]
pub enum LocalFile {
    /// A file on our file system.
    Path(PathBuf),
    /// A document `open` opens; `name` names it in errors.
    Opened {
        /// How the user knows it (its path below the backed-up folder).
        name: String,
        /// Opens it.
        open: Opener,
    },
}

impl fmt::Debug for LocalFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LocalFile({})", self.name())
    }
}

impl LocalFile {
    /// How errors name it.
    pub fn name(&self) -> String {
        match self {
            Self::Path(p) => p.display().to_string(),
            Self::Opened { name, .. } => name.clone(),
        }
    }

    /// An error reading it, naming it.
    pub(crate) fn error(&self, e: io::Error) -> NodeError {
        NodeError::Unreadable(format!("{}: {e}", self.name()))
    }

    /// Opens it and moves to `offset`; blocks.
    pub(crate) fn open_at(&self, offset: u64) -> io::Result<File> {
        let mut file = match self {
            Self::Path(p) => File::open(p)?,
            Self::Opened { open, .. } => open()?,
        };
        skip_to(&mut file, offset)?;
        Ok(file)
    }

    /// Its BLAKE3 hash and size, read whole, unless `stop` is set first (an `Interrupted`
    /// error); blocks.
    pub(crate) fn hash(&self, stop: &AtomicBool) -> io::Result<([u8; 32], u64)> {
        let mut file = self.open_at(0)?;
        let (mut h, mut buf) = (blake3::Hasher::new(), vec![0u8; 64 * 1024]);
        // Counted as read: a document's descriptor may be a pipe, whose length says nothing.
        let mut size = 0u64;
        loop {
            if stop.load(Ordering::Relaxed) {
                return Err(io::Error::new(io::ErrorKind::Interrupted, "stopped"));
            }
            match file.read(&mut buf) {
                Ok(0) => return Ok((*h.finalize().as_bytes(), size)),
                Ok(n) => {
                    h.update(&buf[..n]);
                    size += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// Moves `file` to `offset`: a seek, or reading past the bytes where it cannot seek (a pipe
/// from a provider that streams the document).
fn skip_to(file: &mut File, offset: u64) -> io::Result<()> {
    if offset == 0 {
        return Ok(());
    }
    match file.seek(SeekFrom::Start(offset)) {
        Ok(_) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::ESPIPE) => {
            let skipped = io::copy(&mut file.take(offset), &mut io::sink())?;
            if skipped == offset {
                Ok(())
            } else {
                Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "shorter than when it was hashed",
                ))
            }
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn a_document_is_read_whole_or_from_an_offset_also_through_a_pipe() {
        let content: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.bin");
        std::fs::write(&path, &content).unwrap();
        let hash = *blake3::hash(&content).as_bytes();
        // A path, and the same file handed over as opened.
        let p = path.clone();
        let opened = LocalFile::Opened {
            name: "Camera/a.bin".into(),
            open: Arc::new(move || File::open(&p)),
        };
        // A provider that streams it through a pipe (no seeking).
        let c = content.clone();
        let piped = LocalFile::Opened {
            name: "Camera/piped.bin".into(),
            open: Arc::new(move || {
                let (reader, mut writer) = io::pipe()?;
                let c = c.clone();
                std::thread::spawn(move || writer.write_all(&c));
                Ok(File::from(std::os::fd::OwnedFd::from(reader)))
            }),
        };
        let go = AtomicBool::new(false);
        for file in [LocalFile::Path(path), opened, piped] {
            assert_eq!(
                file.hash(&go).unwrap(),
                (hash, content.len() as u64),
                "{file:?}"
            );
            let mut rest = vec![];
            file.open_at(150_000)
                .unwrap()
                .read_to_end(&mut rest)
                .unwrap();
            assert_eq!(rest, content[150_000..], "{file:?}");
        }
        // Past its end: an error naming it, not a short read taken for the rest.
        let short = LocalFile::Opened {
            name: "Camera/short.bin".into(),
            open: Arc::new(|| {
                let (reader, mut writer) = io::pipe()?;
                writer.write_all(b"abc")?;
                Ok(File::from(std::os::fd::OwnedFd::from(reader)))
            }),
        };
        let err = short.open_at(10).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        assert!(short.error(err).to_string().contains("Camera/short.bin"));
        // A provider's refusal comes back as its error.
        let gone = LocalFile::Opened {
            name: "Camera/gone.jpg".into(),
            open: Arc::new(|| Err(io::Error::other("permission revoked"))),
        };
        assert!(gone.hash(&go).unwrap_err().to_string().contains("revoked"));
        // Stopped (the backup was cancelled): no reading to the end.
        let stopped = LocalFile::Opened {
            name: "Camera/long.mp4".into(),
            open: Arc::new(|| File::open("/dev/zero")),
        };
        let err = stopped.hash(&AtomicBool::new(true)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::Interrupted);
    }
}
