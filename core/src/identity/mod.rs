//! The node's long-term identity: an Ed25519 signing key plus a persistent PeerJS ID.
//!
//! At rest the secret key is only ever stored sealed ([`SealedIdentity`]) under a 32-byte
//! wrapping key supplied by a [`KeyStore`] (see `docs/decisions/0002-identity-key-wrapping.md`).

mod fingerprint;
mod keystore;
mod sealed;

pub use ed25519_dalek::{Signature, SigningKey, VerifyingKey};
pub use fingerprint::{Fingerprint, ParseFingerprintError};
pub use keystore::{FileKeyStore, KeyStore, KeyStoreError};
pub use sealed::SealedIdentity;

use ed25519_dalek::Signer;
use zeroize::Zeroizing;

use crate::crypto::{random_bytes, random_hex};

/// Prefix of every PeerJS ID this node generates.
pub const PEER_ID_PREFIX: &str = "peerns2";

/// A fresh random PeerJS ID: `peerns2-` followed by 32 lowercase hex characters.
pub fn new_peer_id() -> String {
    format!("{PEER_ID_PREFIX}-{}", random_hex(16))
}

/// The node's identity: its Ed25519 signing key and current PeerJS ID.
///
/// `Debug` never prints the secret key.
#[derive(Clone, Debug)]
pub struct Identity {
    signing_key: SigningKey,
    peer_id: String,
}

impl Identity {
    /// Generates a new identity from fresh OS randomness, with a new PeerJS ID.
    pub fn generate() -> Self {
        let secret = Zeroizing::new(random_bytes::<32>());
        Self {
            signing_key: SigningKey::from_bytes(&secret),
            peer_id: new_peer_id(),
        }
    }

    /// An identity from given secret bytes: for the deterministic simulator and tests, where
    /// the same seed must give the same keys. Real identities come from [`Identity::generate`].
    pub fn from_secret(secret: &[u8; 32], peer_id: &str) -> Self {
        Self {
            signing_key: SigningKey::from_bytes(secret),
            peer_id: peer_id.to_owned(),
        }
    }

    /// The Ed25519 public key.
    pub fn public_key(&self) -> VerifyingKey {
        self.signing_key.verifying_key()
    }

    /// SHA-256 fingerprint of the public key.
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of(&self.public_key())
    }

    /// Signs `msg` with the identity key.
    pub fn sign(&self, msg: &[u8]) -> Signature {
        self.signing_key.sign(msg)
    }

    /// The persistent PeerJS ID this identity registers under.
    pub fn peer_id(&self) -> &str {
        &self.peer_id
    }

    /// The same key under another persistent PeerJS ID.
    pub fn with_peer_id(&self, peer_id: &str) -> Self {
        Self {
            signing_key: self.signing_key.clone(),
            peer_id: peer_id.to_owned(),
        }
    }

    /// A static X25519 agreement between this identity key and `theirs`, both mapped from
    /// Ed25519 to Curve25519 (as libsodium's `crypto_sign_ed25519_*_to_curve25519`): both sides
    /// compute the same 32 bytes. Only for deriving rendezvous secrets (decision 0008). `None`
    /// for a small-order key, whose agreement would be predictable.
    pub fn static_agreement(&self, theirs: &VerifyingKey) -> Option<Zeroizing<[u8; 32]>> {
        let scalar = Zeroizing::new(self.signing_key.to_scalar_bytes());
        let shared = Zeroizing::new(theirs.to_montgomery().mul_clamped(*scalar).to_bytes());
        (*shared != [0; 32]).then_some(shared)
    }
}

/// Why a stored identity could not be restored.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The keystore holding the wrapping key failed.
    #[error("identity keystore error: {0}")]
    KeyStore(#[from] KeyStoreError),
    /// The sealed secret did not authenticate under the wrapping key.
    #[error("identity key could not be decrypted: wrong or corrupted key file")]
    Decrypt,
    /// The decrypted secret key does not derive the stored public key.
    #[error("decrypted identity secret does not match the stored public key")]
    Mismatch,
    /// The stored record is structurally invalid.
    #[error("stored identity is corrupted: {0}")]
    Corrupt(&'static str),
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::Verifier;

    #[test]
    fn static_agreement_is_symmetric_and_pairwise() {
        let (a, b, c) = (
            Identity::generate(),
            Identity::generate(),
            Identity::generate(),
        );
        let ab = a.static_agreement(&b.public_key()).unwrap();
        assert_eq!(*ab, *b.static_agreement(&a.public_key()).unwrap());
        assert_ne!(*ab, *a.static_agreement(&c.public_key()).unwrap());
        assert_ne!(*ab, *c.static_agreement(&b.public_key()).unwrap());
        // The identity point has small order: refused rather than agreeing on zeros.
        let mut one = [0u8; 32];
        one[0] = 1;
        let small = VerifyingKey::from_bytes(&one).unwrap();
        assert!(a.static_agreement(&small).is_none());
    }

    #[test]
    fn generated_identities_are_distinct() {
        let (a, b) = (Identity::generate(), Identity::generate());
        assert_ne!(a.public_key(), b.public_key());
        assert_ne!(a.peer_id(), b.peer_id());
    }

    #[test]
    fn peer_id_format() {
        let id = new_peer_id();
        let hex = id.strip_prefix("peerns2-").unwrap();
        assert_eq!(hex.len(), 32);
        assert!(
            hex.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert!(Identity::generate().peer_id().starts_with(PEER_ID_PREFIX));
    }

    #[test]
    fn signatures_verify_under_public_key() {
        let id = Identity::generate();
        let sig = id.sign(b"hello");
        assert!(id.public_key().verify(b"hello", &sig).is_ok());
        assert!(id.public_key().verify(b"hellO", &sig).is_err());
    }

    #[test]
    fn fingerprint_is_sha256_of_public_key() {
        let id = Identity::generate();
        assert_eq!(
            id.fingerprint().0,
            crate::crypto::sha256(id.public_key().as_bytes())
        );
    }

    #[test]
    fn debug_does_not_leak_secret() {
        let id = Identity::generate();
        let secret_hex = hex::encode(id.signing_key.to_bytes());
        assert!(!format!("{id:?}").contains(&secret_hex));
    }
}
