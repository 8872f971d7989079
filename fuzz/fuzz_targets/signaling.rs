//! `signaling::protocol::Message::parse`: a text frame from the signaling server (relaying
//! what any peer sent). Never panics; a parsed frame, written and parsed again, is the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use peerns_core::signaling::protocol::Message;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(msg) = Message::parse(text) {
        assert_eq!(Message::parse(&msg.to_text()).as_ref(), Ok(&msg));
    }
});
