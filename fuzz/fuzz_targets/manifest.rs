//! `chat::file::Manifest::verify` (and `parse`): the signed file manifest of a `File` op.
//! The seeds are signed by `Identity::from_secret(&[7; 32], ..)`, the key used here. Never
//! panics; what verifies (as the op named by its own id) also parses to the same manifest,
//! and a verified manifest re-signed verifies to itself; under any other op id it is refused.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use peerns_core::chat::file::Manifest;
use peerns_core::identity::Identity;

static SENDER: LazyLock<Identity> = LazyLock::new(|| Identity::from_secret(&[7; 32], "fuzz"));

fuzz_target!(|data: &[u8]| {
    let key = SENDER.public_key();
    let parsed = Manifest::parse(data);
    let op_id = parsed.as_ref().map_or([0x42; 16], |m| m.id);
    let verified = Manifest::verify(data, &key, &op_id);
    if let Ok(m) = &verified {
        assert_eq!(parsed.as_ref(), Ok(m));
        let _ = m.chunks();
        let body = m.sign(&SENDER);
        assert_eq!(Manifest::verify(&body, &key, &m.id).as_ref(), Ok(m));
        let mut other = m.id;
        other[0] ^= 1;
        assert!(Manifest::verify(&body, &key, &other).is_err());
    }
});
