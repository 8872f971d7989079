//! `chat::file::Manifest::verify` (and `parse`): the signed file manifest of a `File` op.
//! The seeds are signed by `Identity::from_secret(&[7; 32], ..)`, the key used here. Never
//! panics; what verifies also parses to the same manifest, and a parsed manifest re-signed
//! verifies to itself.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use peerns_core::chat::file::Manifest;
use peerns_core::identity::Identity;

static SENDER: LazyLock<Identity> = LazyLock::new(|| Identity::from_secret(&[7; 32], "fuzz"));

fuzz_target!(|data: &[u8]| {
    let key = SENDER.public_key();
    let verified = Manifest::verify(data, &key);
    let parsed = Manifest::parse(data);
    if let Ok(m) = &verified {
        assert_eq!(parsed.as_ref(), Ok(m));
    }
    if let Ok(m) = parsed {
        let _ = m.chunks();
        let body = m.sign(&SENDER);
        assert_eq!(Manifest::verify(&body, &key).as_ref(), Ok(&m));
    }
});
