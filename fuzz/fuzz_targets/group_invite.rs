//! `groups::InviteLink::decode`: an invite link a user opens (or pastes). Never panics; a
//! decoded link prints to a string that decodes to the same link.
#![no_main]

use libfuzzer_sys::fuzz_target;
use peerns_core::groups::InviteLink;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(link) = InviteLink::decode(text) {
        assert_eq!(InviteLink::decode(&link.encode()).as_ref(), Ok(&link));
    }
});
