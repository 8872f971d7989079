//! Cryptographic primitives for the rest of the core: OS randomness, SHA-256, the
//! XChaCha20-Poly1305 AEAD used to keep secrets encrypted at rest, and Ed25519 checks that
//! batch.
//!
//! This is the lowest layer: it depends on no other module of the crate.

mod aead;
mod batch_sig;
mod random;

pub use aead::{CryptoError, NONCE_LEN, TAG_LEN, open, seal};
pub use batch_sig::{SigItem, SigKey, verify, verify_batch};
pub use random::{random_bytes, random_hex};

use sha2::{Digest, Sha256};

/// SHA-256 digest of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_matches_known_vector() {
        assert_eq!(
            hex::encode(sha256(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
