//! One running node per profile: an exclusive advisory lock on `<profile>/node.lock`.
//!
//! The operating system releases the lock when the holder's file is closed — on drop, and also
//! when the process dies — so a crash never leaves a profile locked. Offline commands that only
//! read or write the database (SQLite in WAL mode coordinates them) do not take it.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

/// Name of the lock file inside a profile folder.
pub const LOCK_FILE: &str = "node.lock";

/// Why the lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process (or another node in this one) runs on the profile.
    #[error("profile {0} is in use by another running node")]
    InUse(PathBuf),
    /// The lock file could not be opened or locked.
    #[error("cannot lock profile {path}: {source}")]
    Io {
        /// The lock file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
}

/// Held while a node runs on a profile; dropping it releases the profile.
#[derive(Debug)]
pub struct ProfileLock {
    _file: File,
}

impl ProfileLock {
    /// Takes the lock of the profile in `dir` without waiting; [`LockError::InUse`] if a node
    /// already holds it.
    pub fn acquire(dir: &Path) -> Result<Self, LockError> {
        let path = dir.join(LOCK_FILE);
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => Ok(Self { _file: file }),
            Err(TryLockError::WouldBlock) => Err(LockError::InUse(dir.to_owned())),
            Err(TryLockError::Error(e)) => Err(io(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let first = ProfileLock::acquire(dir.path()).unwrap();
        assert!(matches!(
            ProfileLock::acquire(dir.path()),
            Err(LockError::InUse(_))
        ));
        drop(first);
        ProfileLock::acquire(dir.path()).expect("released on drop");
    }

    #[test]
    fn another_process_holding_the_lock_is_seen() {
        // `flock` on Linux locks the open file description: a child process holding it
        // counts, like a second `peerns node`.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LOCK_FILE);
        std::fs::write(&path, b"").unwrap();
        // `-o`: the command does not inherit the lock, so killing `flock` releases it.
        let mut child = std::process::Command::new("flock")
            .arg("-o")
            .arg(&path)
            .args(["sleep", "30"])
            .spawn()
            .unwrap();
        let started = std::time::Instant::now();
        let refused = loop {
            match ProfileLock::acquire(dir.path()) {
                Err(LockError::InUse(_)) => break true,
                Ok(l) if started.elapsed().as_secs() < 10 => {
                    drop(l);
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                _ => break false,
            }
        };
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(refused, "the child's lock was not seen");
        ProfileLock::acquire(dir.path()).expect("free once the child is gone");
    }
}
