//! Stadium pseudonyms: the key that signs our records in stadium cells instead of the identity
//! key, so strangers cannot link our records to us, nor records of one day to another
//! (decision 0010).
//!
//! Each person keeps a random *presence secret* and shares it, inside authenticated sessions,
//! only with contacts they trust at level 2 or more. The pseudonym of a day is an Ed25519 key
//! derived from that secret and the day number, so those contacts can compute it and
//! recognise the record; everyone else sees an unlinkable key that changes every day.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::identity::{Fingerprint, Identity};

/// Length of a presence secret.
pub const SECRET_LEN: usize = 32;
/// Domain of the derivation: no other key of ours comes from the same bytes.
const DOMAIN: &[u8] = b"peerns2/stadium-pseudonym/v1\0";
const DAY_MS: u64 = 86_400_000;

/// The UTC day number of a Unix time in milliseconds.
pub fn day_of(unix_ms: u64) -> u32 {
    u32::try_from(unix_ms / DAY_MS).unwrap_or(u32::MAX)
}

/// How long from `unix_ms` until the next UTC day starts.
pub fn until_next_day(unix_ms: u64) -> std::time::Duration {
    std::time::Duration::from_millis(DAY_MS - unix_ms % DAY_MS)
}

/// The pseudonym of the holder of `secret` on `day`: HMAC-SHA256(secret, domain ‖ day) as an
/// Ed25519 secret key.
pub fn pseudonym(secret: &[u8; SECRET_LEN], day: u32) -> Identity {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(DOMAIN);
    mac.update(&day.to_be_bytes());
    let seed = Zeroizing::new(<[u8; 32]>::from(mac.finalize().into_bytes()));
    Identity::from_secret(&seed, "")
}

/// The fingerprints a holder of `secret` may sign with around `day`: the day before and after
/// too, for clocks that disagree and sessions that cross midnight.
pub fn recent(secret: &[u8; SECRET_LEN], day: u32) -> [Fingerprint; 3] {
    [day.saturating_sub(1), day, day.saturating_add(1)].map(|d| pseudonym(secret, d).fingerprint())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pseudonym_is_per_secret_and_per_day_and_not_the_identity() {
        let (s1, s2) = ([1u8; 32], [2u8; 32]);
        let day = day_of(1_800_000_000_000);
        assert_eq!(day, 20_833);
        let p = pseudonym(&s1, day);
        assert_eq!(
            p.public_key(),
            pseudonym(&s1, day).public_key(),
            "deterministic"
        );
        assert_ne!(p.public_key(), pseudonym(&s1, day + 1).public_key());
        assert_ne!(p.public_key(), pseudonym(&s2, day).public_key());
        assert!(recent(&s1, day + 1).contains(&p.fingerprint()));
        assert!(recent(&s1, day - 1).contains(&p.fingerprint()));
        assert!(!recent(&s1, day + 2).contains(&p.fingerprint()));
        assert!(!recent(&s2, day).contains(&p.fingerprint()));
    }

    #[test]
    fn the_next_day_starts_at_utc_midnight() {
        let midnight = 20_833 * DAY_MS;
        assert_eq!(until_next_day(midnight).as_millis(), u128::from(DAY_MS));
        assert_eq!(until_next_day(midnight - 1).as_millis(), 1);
        assert_eq!(
            day_of(midnight - 1 + until_next_day(midnight - 1).as_millis() as u64),
            20_833
        );
    }
}
