//! `chat::wire::Frame::decode`: session frames after the handshake. Never panics; a decoded
//! frame re-encodes to as many bytes, which decode to the same frame.
#![no_main]

use libfuzzer_sys::fuzz_target;
use peerns_core::chat::wire::Frame;

fuzz_target!(|data: &[u8]| {
    if let Ok(frame) = Frame::decode(data) {
        let bytes = frame.encode();
        assert_eq!(bytes.len(), data.len(), "{frame:?}");
        assert_eq!(Frame::decode(&bytes).as_ref(), Ok(&frame));
    }
});
