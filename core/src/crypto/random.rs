//! Randomness from the operating system's CSPRNG.

/// `N` bytes from the operating system's cryptographically secure RNG.
///
/// # Panics
/// Only if the operating system cannot supply randomness at all; nothing in the core can
/// run safely without it.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    fill(&mut bytes);
    bytes
}

/// `n_bytes` random bytes encoded as `2 * n_bytes` lowercase hex characters.
///
/// # Panics
/// Same as [`random_bytes`].
pub fn random_hex(n_bytes: usize) -> String {
    let mut bytes = vec![0u8; n_bytes];
    fill(&mut bytes);
    hex::encode(bytes)
}

fn fill(buf: &mut [u8]) {
    if let Err(err) = getrandom::fill(buf) {
        panic!("the operating system random number generator failed: {err}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_bytes_differ_between_calls() {
        assert_ne!(random_bytes::<32>(), random_bytes::<32>());
    }

    #[test]
    fn random_hex_has_requested_length_and_alphabet() {
        let hex = random_hex(8);
        assert_eq!(hex.len(), 16);
        assert!(
            hex.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
        assert_eq!(random_hex(0), "");
    }
}
