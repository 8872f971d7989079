//! Human-comparable fingerprints of Ed25519 public keys.

use std::fmt;
use std::str::FromStr;

use ed25519_dalek::VerifyingKey;

use crate::crypto::sha256;

/// SHA-256 of a 32-byte Ed25519 public key; `Display` is the full 64-char lowercase hex.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    /// Fingerprint of `public_key`.
    pub fn of(public_key: &VerifyingKey) -> Self {
        Self(sha256(public_key.as_bytes()))
    }

    /// Full fingerprint as 64 lowercase hex characters.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// First 16 hex characters in groups of four, e.g. `1a2b 3c4d 5e6f 7a8b`, for display.
    pub fn short(&self) -> String {
        let hex = hex::encode(&self.0[..8]);
        format!(
            "{} {} {} {}",
            &hex[..4],
            &hex[4..8],
            &hex[8..12],
            &hex[12..]
        )
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// A string was not a fingerprint (64 hex characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a fingerprint must be exactly 64 hex characters")]
pub struct ParseFingerprintError;

impl FromStr for Fingerprint {
    type Err = ParseFingerprintError;

    /// Parses 64 hex characters (either case).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(s, &mut bytes).map_err(|_| ParseFingerprintError)?;
        Ok(Self(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Fingerprint {
        let mut bytes = [0u8; 32];
        bytes[..8].copy_from_slice(&[0x1a, 0x2b, 0x3c, 0x4d, 0x5e, 0x6f, 0x7a, 0x8b]);
        bytes[31] = 0xff;
        Fingerprint(bytes)
    }

    #[test]
    fn hex_and_display() {
        let fp = sample();
        let hex = fp.to_hex();
        assert_eq!(hex.len(), 64);
        assert!(hex.starts_with("1a2b3c4d5e6f7a8b00"));
        assert!(hex.ends_with("ff"));
        assert_eq!(fp.to_string(), hex);
    }

    #[test]
    fn short_form() {
        assert_eq!(sample().short(), "1a2b 3c4d 5e6f 7a8b");
    }

    #[test]
    fn parse_round_trip_and_case() {
        let fp = sample();
        assert_eq!(fp.to_hex().parse::<Fingerprint>(), Ok(fp));
        assert_eq!(fp.to_hex().to_uppercase().parse::<Fingerprint>(), Ok(fp));
    }

    #[test]
    fn parse_rejects_bad_input() {
        let hex = sample().to_hex();
        for bad in [
            "",
            &hex[..63],
            &hex[..62],
            &format!("{hex}00"),
            &format!("{}zz", &hex[..62]),
            &format!("{}é", &hex[..62]),
            &format!(" {}", &hex[..63]),
        ] {
            assert_eq!(
                bad.parse::<Fingerprint>(),
                Err(ParseFingerprintError),
                "{bad:?}"
            );
        }
    }
}
