//! `contacts::ShareLink::from_str`: a `peerns2:` link pasted or scanned from a QR code. Never
//! panics; a parsed link prints as a link that parses to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use peerns_core::contacts::ShareLink;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(link) = text.parse::<ShareLink>() {
        assert_eq!(link.to_string().parse::<ShareLink>().ok(), Some(link));
    }
});
