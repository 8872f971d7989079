//! `discovery::msg::Msg::decode`: namespace messages, with every record in them verified.
//! Never panics; a decoded message re-encodes to exactly the input bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use peerns_core::discovery::msg::Msg;
use peerns_core::discovery::presence::VerifyCache;

fuzz_target!(|data: &[u8]| {
    let cache = VerifyCache::new(8);
    if let Ok(msg) = Msg::decode(data, &cache) {
        assert_eq!(msg.encode(), data, "{msg:?}");
    }
});
