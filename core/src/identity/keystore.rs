//! Where the 32-byte identity wrapping key lives: the [`KeyStore`] trait and its desktop
//! implementation, [`FileKeyStore`].

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::crypto::random_bytes;

/// Why a keystore operation failed.
#[derive(Debug, thiserror::Error)]
pub enum KeyStoreError {
    /// [`KeyStore::create`] was called but a key already exists; it is never overwritten.
    #[error("a wrapping key already exists; refusing to overwrite it")]
    AlreadyExists,
    /// A key exists but is unusable.
    #[error("the wrapping key is corrupted: {0}")]
    Corrupt(String),
    /// Reading or writing the key file failed.
    #[error("key file {}: {source}", path.display())]
    Io {
        /// The key file.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// A platform keystore (Android Keystore, iOS Keychain) reported an error.
    #[error("platform keystore error: {0}")]
    Platform(String),
}

/// Supplies the 32-byte key that wraps the identity secret at rest.
pub trait KeyStore: Send + Sync {
    /// The stored key, or `None` if no key has been created yet.
    ///
    /// A key that exists but cannot be read or is malformed is an error, never `None`.
    fn load(&self) -> Result<Option<Zeroizing<[u8; 32]>>, KeyStoreError>;

    /// Generates, persists and returns a fresh key.
    ///
    /// Fails with [`KeyStoreError::AlreadyExists`] if a key is already stored.
    fn create(&self) -> Result<Zeroizing<[u8; 32]>, KeyStoreError>;
}

/// Desktop keystore: a file holding exactly the 32 raw key bytes (no encoding, no newline),
/// created with mode `0600` on Unix and never overwritten.
#[derive(Debug, Clone)]
pub struct FileKeyStore {
    path: PathBuf,
}

impl FileKeyStore {
    /// A keystore backed by the file at `path` (which need not exist yet; its directory must).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// The key file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn io_error(&self, source: io::Error) -> KeyStoreError {
        KeyStoreError::Io {
            path: self.path.clone(),
            source,
        }
    }

    fn write_new(&self, key: &[u8; 32]) -> Result<(), KeyStoreError> {
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&self.path).map_err(|err| {
            if err.kind() == io::ErrorKind::AlreadyExists {
                KeyStoreError::AlreadyExists
            } else {
                self.io_error(err)
            }
        })?;
        if let Err(err) = file.write_all(key).and_then(|()| file.sync_all()) {
            drop(file);
            // We created this file, so removing a partial write cannot destroy a real key.
            let _ = fs::remove_file(&self.path);
            return Err(self.io_error(err));
        }
        sync_parent_dir(&self.path).map_err(|err| self.io_error(err))
    }
}

impl KeyStore for FileKeyStore {
    fn load(&self) -> Result<Option<Zeroizing<[u8; 32]>>, KeyStoreError> {
        let mut file = match File::open(&self.path) {
            Ok(file) => file,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(self.io_error(err)),
        };
        let meta = file.metadata().map_err(|err| self.io_error(err))?;
        if !meta.is_file() || meta.len() != 32 {
            return Err(KeyStoreError::Corrupt(format!(
                "{} should hold exactly 32 bytes but holds {}",
                self.path.display(),
                meta.len()
            )));
        }
        warn_if_exposed(&self.path, &meta);
        let mut key = Zeroizing::new([0u8; 32]);
        file.read_exact(&mut key[..])
            .map_err(|err| self.io_error(err))?;
        Ok(Some(key))
    }

    fn create(&self) -> Result<Zeroizing<[u8; 32]>, KeyStoreError> {
        let key = Zeroizing::new(random_bytes::<32>());
        self.write_new(&key)?;
        Ok(key)
    }
}

/// Makes the new directory entry durable, so a crash cannot lose a key already in use.
#[cfg(unix)]
fn sync_parent_dir(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => File::open(dir)?.sync_all(),
        _ => File::open(".")?.sync_all(),
    }
}

#[cfg(not(unix))]
fn sync_parent_dir(_path: &Path) -> io::Result<()> {
    Ok(())
}

#[cfg(unix)]
fn warn_if_exposed(path: &Path, meta: &fs::Metadata) {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        tracing::warn!(path = %path.display(), mode = format!("{mode:o}"), "identity key file is readable by other users");
    }
}

#[cfg(not(unix))]
fn warn_if_exposed(_path: &Path, _meta: &fs::Metadata) {}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, FileKeyStore) {
        let dir = tempfile::tempdir().unwrap();
        let ks = FileKeyStore::new(dir.path().join("identity.key"));
        (dir, ks)
    }

    #[test]
    fn missing_file_loads_none() {
        let (_dir, ks) = store();
        assert!(ks.load().unwrap().is_none());
    }

    #[test]
    fn create_then_load_returns_same_key() {
        let (_dir, ks) = store();
        let created = ks.create().unwrap();
        assert_eq!(*ks.load().unwrap().unwrap(), *created);
        assert_eq!(fs::read(ks.path()).unwrap(), created.to_vec());
    }

    #[test]
    fn create_twice_fails_and_keeps_first_key() {
        let (_dir, ks) = store();
        let first = ks.create().unwrap();
        assert!(matches!(ks.create(), Err(KeyStoreError::AlreadyExists)));
        assert_eq!(*ks.load().unwrap().unwrap(), *first);
    }

    #[test]
    fn wrong_length_is_an_error_not_none() {
        let (_dir, ks) = store();
        for bad in [&[][..], &[1u8; 31][..], &[1u8; 33][..], &[1u8; 64][..]] {
            fs::write(ks.path(), bad).unwrap();
            assert!(matches!(ks.load(), Err(KeyStoreError::Corrupt(_))));
        }
    }

    #[test]
    fn directory_in_place_of_file_is_an_error() {
        let (_dir, ks) = store();
        fs::create_dir(ks.path()).unwrap();
        assert!(ks.load().is_err());
        assert!(ks.create().is_err());
    }

    #[test]
    fn missing_parent_dir_fails_to_create() {
        let dir = tempfile::tempdir().unwrap();
        let ks = FileKeyStore::new(dir.path().join("nope").join("identity.key"));
        assert!(matches!(ks.create(), Err(KeyStoreError::Io { .. })));
    }

    #[cfg(unix)]
    #[test]
    fn key_file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let (_dir, ks) = store();
        ks.create().unwrap();
        let mode = fs::metadata(ks.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
