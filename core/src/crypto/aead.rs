//! XChaCha20-Poly1305 sealing with a random 192-bit nonce.
//!
//! Sealed layout: `nonce (24 bytes) || ciphertext || tag (16 bytes)`. A 24-byte nonce is large
//! enough that picking it at random never realistically repeats under one key.

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{Tag, XChaCha20Poly1305, XNonce};
use zeroize::Zeroizing;

use super::random_bytes;

/// Length of the random nonce that prefixes every sealed value.
pub const NONCE_LEN: usize = 24;
/// Length of the Poly1305 authentication tag that ends every sealed value.
pub const TAG_LEN: usize = 16;

/// Why a sealed value could not be opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// Authentication failed: wrong key, wrong associated data, or tampered bytes.
    #[error("decryption failed: wrong key, wrong associated data or tampered data")]
    Decrypt,
    /// The input is too short to be a sealed value.
    #[error("sealed data is malformed: too short to hold a nonce and an authentication tag")]
    Malformed,
}

/// Encrypts and authenticates `plaintext` (and authenticates `aad`) under `key`.
///
/// Returns `nonce || ciphertext || tag`, i.e. `plaintext.len() + NONCE_LEN + TAG_LEN` bytes.
///
/// # Panics
/// Only if the OS RNG fails (see [`random_bytes`]) or `plaintext` exceeds 256 GiB.
pub fn seal(key: &[u8; 32], aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let nonce = random_bytes::<NONCE_LEN>();
    // Reserve the full size up front so the buffer holding plaintext never reallocates
    // (which would leave an unencrypted copy behind in freed memory).
    let mut out = Vec::with_capacity(NONCE_LEN + plaintext.len() + TAG_LEN);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(plaintext);
    let tag = XChaCha20Poly1305::new(key.into())
        .encrypt_in_place_detached(XNonce::from_slice(&nonce), aad, &mut out[NONCE_LEN..])
        .expect("XChaCha20-Poly1305 rejects only plaintexts over 256 GiB");
    out.extend_from_slice(&tag);
    out
}

/// Authenticates and decrypts a value produced by [`seal`] with the same `key` and `aad`.
pub fn open(key: &[u8; 32], aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    if sealed.len() < NONCE_LEN + TAG_LEN {
        return Err(CryptoError::Malformed);
    }
    let (nonce, rest) = sealed.split_at(NONCE_LEN);
    let (ciphertext, tag) = rest.split_at(rest.len() - TAG_LEN);
    let mut buf = Zeroizing::new(ciphertext.to_vec());
    XChaCha20Poly1305::new(key.into())
        .decrypt_in_place_detached(
            XNonce::from_slice(nonce),
            aad,
            &mut buf,
            Tag::from_slice(tag),
        )
        .map_err(|_| CryptoError::Decrypt)?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 32] = [7; 32];
    const AAD: &[u8] = b"record header";
    const MSG: &[u8] = b"the quick brown fox";

    #[test]
    fn round_trip() {
        let sealed = seal(&KEY, AAD, MSG);
        assert_eq!(sealed.len(), NONCE_LEN + MSG.len() + TAG_LEN);
        assert_eq!(open(&KEY, AAD, &sealed).unwrap().as_slice(), MSG);
    }

    #[test]
    fn round_trip_empty_plaintext_and_aad() {
        let sealed = seal(&KEY, b"", b"");
        assert_eq!(sealed.len(), NONCE_LEN + TAG_LEN);
        assert!(open(&KEY, b"", &sealed).unwrap().is_empty());
    }

    #[test]
    fn nonces_are_fresh() {
        assert_ne!(seal(&KEY, AAD, MSG), seal(&KEY, AAD, MSG));
    }

    #[test]
    fn wrong_key_fails() {
        let sealed = seal(&KEY, AAD, MSG);
        assert_eq!(open(&[8; 32], AAD, &sealed), Err(CryptoError::Decrypt));
    }

    #[test]
    fn wrong_aad_fails() {
        let sealed = seal(&KEY, AAD, MSG);
        assert_eq!(
            open(&KEY, b"other header", &sealed),
            Err(CryptoError::Decrypt)
        );
        assert_eq!(open(&KEY, b"", &sealed), Err(CryptoError::Decrypt));
    }

    #[test]
    fn truncated_input_fails() {
        let sealed = seal(&KEY, AAD, MSG);
        for len in 0..NONCE_LEN + TAG_LEN {
            assert_eq!(open(&KEY, AAD, &sealed[..len]), Err(CryptoError::Malformed));
        }
        for len in NONCE_LEN + TAG_LEN..sealed.len() {
            assert_eq!(open(&KEY, AAD, &sealed[..len]), Err(CryptoError::Decrypt));
        }
    }

    #[test]
    fn every_flipped_bit_fails() {
        let sealed = seal(&KEY, AAD, MSG);
        for byte in 0..sealed.len() {
            for bit in 0..8 {
                let mut tampered = sealed.clone();
                tampered[byte] ^= 1 << bit;
                assert_eq!(open(&KEY, AAD, &tampered), Err(CryptoError::Decrypt));
            }
        }
    }

    #[test]
    fn appended_bytes_fail() {
        let mut sealed = seal(&KEY, AAD, MSG);
        sealed.push(0);
        assert_eq!(open(&KEY, AAD, &sealed), Err(CryptoError::Decrypt));
    }
}
