//! `groups::GroupFrame::decode`: group frames inside a session (tags 30–38). Never panics; a
//! decoded frame re-encodes to bytes that decode to the same frame.
#![no_main]

use libfuzzer_sys::fuzz_target;
use peerns_core::groups::GroupFrame;

fuzz_target!(|data: &[u8]| {
    if let Ok(frame) = GroupFrame::decode(data) {
        let bytes = frame.encode();
        assert_eq!(GroupFrame::decode(&bytes).as_ref(), Ok(&frame));
    }
});
