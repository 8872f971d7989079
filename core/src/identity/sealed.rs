//! The identity as stored at rest: public key in clear, secret key sealed.

use ed25519_dalek::{SigningKey, VerifyingKey};
use zeroize::Zeroizing;

use super::{Identity, IdentityError};
use crate::crypto;

/// Format-version tag bound into the AAD; bump it if the sealed layout ever changes.
const FORMAT_TAG: &[u8] = b"peerns-identity-v1";

/// An [`Identity`] with its secret key encrypted under a wrapping key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealedIdentity {
    /// Ed25519 public key, in clear.
    pub public_key: [u8; 32],
    /// `crypto::seal` output of the 32-byte secret key, AAD = format tag || public key.
    pub sealed_secret: Vec<u8>,
    /// Current PeerJS ID.
    pub peer_id: String,
}

/// Associated data binding a sealed secret to its format version and public key, so a
/// sealed secret cannot be swapped in from another record or reinterpreted by a newer format.
fn aad(public_key: &[u8; 32]) -> Vec<u8> {
    [FORMAT_TAG, public_key.as_slice()].concat()
}

impl Identity {
    /// Seals this identity's secret key under `wrap_key`.
    pub fn seal(&self, wrap_key: &[u8; 32]) -> SealedIdentity {
        let public_key = self.public_key().to_bytes();
        let secret = Zeroizing::new(self.signing_key.to_bytes());
        SealedIdentity {
            public_key,
            sealed_secret: crypto::seal(wrap_key, &aad(&public_key), secret.as_slice()),
            peer_id: self.peer_id.clone(),
        }
    }
}

impl SealedIdentity {
    /// Decrypts the secret key with `wrap_key` and checks it derives the stored public key.
    pub fn unseal(&self, wrap_key: &[u8; 32]) -> Result<Identity, IdentityError> {
        VerifyingKey::from_bytes(&self.public_key)
            .map_err(|_| IdentityError::Corrupt("public key is not a valid Ed25519 point"))?;
        let secret =
            crypto::open(wrap_key, &aad(&self.public_key), &self.sealed_secret).map_err(|err| {
                match err {
                    crypto::CryptoError::Decrypt => IdentityError::Decrypt,
                    crypto::CryptoError::Malformed => {
                        IdentityError::Corrupt("sealed secret is truncated")
                    }
                }
            })?;
        let secret: &[u8; 32] = secret
            .as_slice()
            .try_into()
            .map_err(|_| IdentityError::Corrupt("secret key is not 32 bytes"))?;
        let signing_key = SigningKey::from_bytes(secret);
        if signing_key.verifying_key().to_bytes() != self.public_key {
            return Err(IdentityError::Mismatch);
        }
        Ok(Identity {
            signing_key,
            peer_id: self.peer_id.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WRAP: [u8; 32] = [42; 32];

    #[test]
    fn seal_unseal_round_trip() {
        let id = Identity::generate();
        let sealed = id.seal(&WRAP);
        assert_eq!(sealed.public_key, id.public_key().to_bytes());
        assert_eq!(sealed.peer_id, id.peer_id());
        let back = sealed.unseal(&WRAP).unwrap();
        assert_eq!(back.fingerprint(), id.fingerprint());
        assert_eq!(back.peer_id(), id.peer_id());
        assert_eq!(back.sign(b"m"), id.sign(b"m"));
    }

    #[test]
    fn secret_is_not_stored_in_clear() {
        let id = Identity::generate();
        let secret = id.signing_key.to_bytes();
        let sealed = id.seal(&WRAP);
        assert!(!sealed.sealed_secret.windows(32).any(|w| w == secret));
    }

    #[test]
    fn wrong_wrap_key_is_decrypt_error() {
        let sealed = Identity::generate().seal(&WRAP);
        assert!(matches!(
            sealed.unseal(&[0; 32]),
            Err(IdentityError::Decrypt)
        ));
    }

    #[test]
    fn tampered_secret_is_decrypt_error() {
        let mut sealed = Identity::generate().seal(&WRAP);
        let last = sealed.sealed_secret.len() - 1;
        sealed.sealed_secret[last] ^= 1;
        assert!(matches!(sealed.unseal(&WRAP), Err(IdentityError::Decrypt)));
    }

    #[test]
    fn swapped_public_key_is_rejected_by_aad() {
        let mut sealed = Identity::generate().seal(&WRAP);
        sealed.public_key = Identity::generate().public_key().to_bytes();
        assert!(matches!(sealed.unseal(&WRAP), Err(IdentityError::Decrypt)));
    }

    #[test]
    fn secret_for_other_key_is_mismatch() {
        let (a, b) = (Identity::generate(), Identity::generate());
        let public_key = a.public_key().to_bytes();
        let sealed = SealedIdentity {
            public_key,
            sealed_secret: crypto::seal(&WRAP, &aad(&public_key), &b.signing_key.to_bytes()),
            peer_id: a.peer_id().to_owned(),
        };
        assert!(matches!(sealed.unseal(&WRAP), Err(IdentityError::Mismatch)));
    }

    #[test]
    fn structural_damage_is_corrupt() {
        let id = Identity::generate();
        let public_key = id.public_key().to_bytes();

        let short = SealedIdentity {
            sealed_secret: crypto::seal(&WRAP, &aad(&public_key), &[1; 31]),
            ..id.seal(&WRAP)
        };
        assert!(matches!(
            short.unseal(&WRAP),
            Err(IdentityError::Corrupt(_))
        ));

        let truncated = SealedIdentity {
            sealed_secret: vec![0; 10],
            ..id.seal(&WRAP)
        };
        assert!(matches!(
            truncated.unseal(&WRAP),
            Err(IdentityError::Corrupt(_))
        ));
    }

    #[test]
    fn invalid_public_key_point_is_corrupt() {
        // y = 2 is not the y-coordinate of any point on Curve25519 in Edwards form.
        let mut bad = [0u8; 32];
        bad[0] = 2;
        assert!(VerifyingKey::from_bytes(&bad).is_err());
        let sealed = SealedIdentity {
            public_key: bad,
            ..Identity::generate().seal(&WRAP)
        };
        assert!(matches!(
            sealed.unseal(&WRAP),
            Err(IdentityError::Corrupt(_))
        ));
    }
}
