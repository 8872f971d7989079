//! A profile: a directory holding one database and, on desktop, the identity key file.

use std::io;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::{Store, StoreError};
use crate::identity::{FileKeyStore, Identity, IdentityError, KeyStore, KeyStoreError};

/// File name of the profile database inside the profile directory.
const DB_FILE: &str = "peerns.db";
/// File name of the desktop wrapping-key file inside the profile directory.
const KEY_FILE: &str = "identity.key";

/// Why a profile could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// The profile directory could not be created.
    #[error("cannot create profile directory {}: {source}", path.display())]
    CreateDir {
        /// The profile directory.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The database could not be opened or written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The keystore failed (including a present but unreadable or malformed key).
    #[error(transparent)]
    KeyStore(#[from] KeyStoreError),
    /// The database holds an identity but the keystore has no wrapping key for it.
    #[error(
        "identity exists but its wrapping key is missing: refusing to start; \
         the node never creates a new identity silently"
    )]
    KeyMissing,
    /// The stored identity could not be unsealed with the keystore's key.
    #[error(transparent)]
    Identity(#[from] IdentityError),
}

/// An opened profile: its directory, database and unlocked identity.
#[derive(Debug)]
pub struct Profile {
    dir: PathBuf,
    store: Store,
    identity: Identity,
}

impl Profile {
    /// The platform's default profile directory (e.g. `~/.local/share/peerns` on Linux).
    pub fn default_dir() -> Option<PathBuf> {
        directories::ProjectDirs::from("org", "PeerNS", "peerns").map(|d| d.data_dir().to_owned())
    }

    /// Opens the profile in `dir` (creating the directory, mode 0700 on Unix, if missing).
    ///
    /// An existing identity is unlocked with `keystore`'s key; a missing or wrong key is an
    /// error and never causes a new identity to be made. Only a database with no identity
    /// gets a freshly generated one, sealed under the keystore's key (created if absent).
    pub fn open(dir: &Path, keystore: &dyn KeyStore) -> Result<Self, ProfileError> {
        create_dir(dir)?;
        let store = Store::open(dir.join(DB_FILE))?;
        let identity = match store.load_identity()? {
            Some(sealed) => {
                let key = keystore.load()?.ok_or(ProfileError::KeyMissing)?;
                sealed.unseal(&key)?
            }
            None => create_identity(&store, keystore)?,
        };
        Ok(Self {
            dir: dir.to_owned(),
            store,
            identity,
        })
    }

    /// Opens the profile in `dir` with the desktop keystore, `<dir>/identity.key`.
    pub fn open_desktop(dir: &Path) -> Result<Self, ProfileError> {
        Self::open(dir, &FileKeyStore::new(dir.join(KEY_FILE)))
    }

    /// The unlocked identity.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// The profile database.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The profile directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Moves the identity to a fresh persistent PeerJS ID (the old one was published or is
    /// held by someone else) and returns it; the old ID is kept in the history. Contacts learn
    /// the new one the next time either side dials, or at a rendezvous. Only while no node
    /// runs on this profile.
    pub fn move_to_new_peer_id(&mut self) -> Result<String, ProfileError> {
        let id = crate::identity::new_peer_id();
        self.store.set_peer_id(&id)?;
        self.identity = self.identity.with_peer_id(&id);
        Ok(id)
    }
}

/// Generates, seals and saves a new identity. If another process saved one first, that one
/// is unlocked instead.
fn create_identity(store: &Store, keystore: &dyn KeyStore) -> Result<Identity, ProfileError> {
    let key = load_or_create_key(keystore)?;
    let identity = Identity::generate();
    match store.save_identity(&identity.seal(&key)) {
        Ok(()) => Ok(identity),
        Err(StoreError::IdentityExists) => {
            let sealed = store.load_identity()?.ok_or(StoreError::NoIdentity)?;
            Ok(sealed.unseal(&key)?)
        }
        Err(err) => Err(err.into()),
    }
}

fn load_or_create_key(keystore: &dyn KeyStore) -> Result<Zeroizing<[u8; 32]>, ProfileError> {
    if let Some(key) = keystore.load()? {
        return Ok(key);
    }
    match keystore.create() {
        Ok(key) => Ok(key),
        // Lost a race with another process creating the key: use theirs.
        Err(KeyStoreError::AlreadyExists) => keystore.load()?.ok_or(ProfileError::KeyMissing),
        Err(err) => Err(err.into()),
    }
}

fn create_dir(dir: &Path) -> Result<(), ProfileError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
        .create(dir)
        .map_err(|source| ProfileError::CreateDir {
            path: dir.to_owned(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn stored_public_key(dir: &Path) -> [u8; 32] {
        Store::open(dir.join(DB_FILE))
            .unwrap()
            .load_identity()
            .unwrap()
            .unwrap()
            .public_key
    }

    #[test]
    fn identity_persists_across_restarts() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("profile");
        let first = Profile::open_desktop(&dir).unwrap();
        let (fp, peer_id) = (
            first.identity().fingerprint(),
            first.identity().peer_id().to_owned(),
        );
        assert!(peer_id.starts_with("peerns2-"));
        assert_eq!(first.dir(), dir);
        assert_eq!(first.store().peer_id_history().unwrap(), [peer_id.as_str()]);
        drop(first);

        let second = Profile::open_desktop(&dir).unwrap();
        assert_eq!(second.identity().fingerprint(), fp);
        assert_eq!(second.identity().peer_id(), peer_id);
        assert_eq!(second.store().peer_id_history().unwrap(), [peer_id]);
    }

    #[cfg(unix)]
    #[test]
    fn profile_dir_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("profile");
        Profile::open_desktop(&dir).unwrap();
        let mode = fs::metadata(&dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
    }

    #[test]
    fn deleted_key_file_is_key_missing() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let fp = Profile::open_desktop(dir).unwrap().identity().fingerprint();
        let public_key = stored_public_key(dir);
        fs::remove_file(dir.join(KEY_FILE)).unwrap();

        let err = Profile::open_desktop(dir).unwrap_err();
        assert!(matches!(err, ProfileError::KeyMissing), "{err}");
        assert!(err.to_string().contains("refusing to start"));
        assert_eq!(stored_public_key(dir), public_key);
        assert!(!dir.join(KEY_FILE).exists(), "no new key may be created");
        assert_eq!(fp.0, crate::crypto::sha256(&public_key));
    }

    #[test]
    fn flipped_key_bytes_fail_to_decrypt() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        Profile::open_desktop(dir).unwrap();
        let public_key = stored_public_key(dir);
        let mut key = fs::read(dir.join(KEY_FILE)).unwrap();
        key[0] ^= 0xff;
        key[31] ^= 0x01;
        fs::write(dir.join(KEY_FILE), &key).unwrap();

        let err = Profile::open_desktop(dir).unwrap_err();
        assert!(
            matches!(err, ProfileError::Identity(IdentityError::Decrypt)),
            "{err}"
        );
        assert!(err.to_string().contains("wrong or corrupted key file"));
        assert_eq!(stored_public_key(dir), public_key);
        assert_eq!(fs::read(dir.join(KEY_FILE)).unwrap(), key);
    }

    #[test]
    fn wrong_length_key_file_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        Profile::open_desktop(dir).unwrap();
        let public_key = stored_public_key(dir);
        fs::write(dir.join(KEY_FILE), [7u8; 16]).unwrap();

        let err = Profile::open_desktop(dir).unwrap_err();
        assert!(
            matches!(err, ProfileError::KeyStore(KeyStoreError::Corrupt(_))),
            "{err}"
        );
        assert_eq!(stored_public_key(dir), public_key);
        assert_eq!(fs::read(dir.join(KEY_FILE)).unwrap(), [7u8; 16]);
    }

    #[test]
    fn existing_key_is_reused_for_a_new_identity() {
        let tmp = tempfile::tempdir().unwrap();
        let keystore = FileKeyStore::new(tmp.path().join("k"));
        let key = keystore.create().unwrap();
        let profile = Profile::open(&tmp.path().join("p"), &keystore).unwrap();
        let sealed = profile.store().load_identity().unwrap().unwrap();
        assert_eq!(
            sealed.unseal(&key).unwrap().fingerprint(),
            profile.identity().fingerprint()
        );
    }

    #[test]
    fn corrupt_key_without_identity_is_not_replaced() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        fs::write(dir.join(KEY_FILE), b"short").unwrap();
        assert!(matches!(
            Profile::open_desktop(dir),
            Err(ProfileError::KeyStore(KeyStoreError::Corrupt(_)))
        ));
        assert_eq!(fs::read(dir.join(KEY_FILE)).unwrap(), b"short");
        let store = Store::open(dir.join(DB_FILE)).unwrap();
        assert_eq!(store.load_identity().unwrap(), None);
    }

    #[test]
    fn default_dir_is_available() {
        // `ProjectDirs` needs a home directory; where one exists, the path names the app.
        if let Some(dir) = Profile::default_dir() {
            assert!(dir.to_string_lossy().to_lowercase().contains("peerns"));
        }
    }
}
