//! `chat::wire::Frame::decode`: session frames after the handshake. Never panics; a decoded
//! frame re-encodes to at most as many bytes (names and texts decode sanitized, which may
//! drop characters), which decode to the same frame.
#![no_main]

use libfuzzer_sys::fuzz_target;
use peerns_core::chat::wire::Frame;

fuzz_target!(|data: &[u8]| {
    if let Ok(frame) = Frame::decode(data) {
        let bytes = frame.encode();
        assert!(bytes.len() <= data.len(), "{frame:?}");
        assert_eq!(Frame::decode(&bytes).as_ref(), Ok(&frame));
    }
});
