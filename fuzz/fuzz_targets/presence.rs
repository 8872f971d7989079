//! `discovery::presence::SignedPresence::decode`: a signed presence record. Never panics; a
//! decoded record re-encodes to exactly the input and checks fine at its own time and namespace.
#![no_main]

use libfuzzer_sys::fuzz_target;
use peerns_core::discovery::presence::{SignedPresence, VerifyCache};

fuzz_target!(|data: &[u8]| {
    let cache = VerifyCache::new(8);
    if let Ok(rec) = SignedPresence::decode(data, &cache) {
        assert_eq!(rec.encode(), data);
        assert_eq!(rec.encoded_len(), data.len());
        let p = rec.presence();
        assert_eq!(rec.check(&p.namespace, p.issued_ms, 0, 0), Ok(()));
        // Verified once, the record is served from the cache the second time: same result.
        assert_eq!(SignedPresence::decode(data, &cache).as_ref(), Ok(&rec));
    }
});
