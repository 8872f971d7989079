//! `discovery::public_ip::parse_response`: a STUN Binding response from the network. Input:
//! a flag byte (bit 0: take the transaction id from the message itself, so the parser gets past
//! that check), then the datagram. Never panics; no answer is accepted for another
//! transaction id.
#![no_main]

use libfuzzer_sys::fuzz_target;
use peerns_core::discovery::public_ip::parse_response;

fuzz_target!(|data: &[u8]| {
    let Some((flags, msg)) = data.split_first() else {
        return;
    };
    let mut txid = [0x5a; 12];
    if flags & 1 == 1
        && let Some(id) = msg.get(8..20)
    {
        txid.copy_from_slice(id);
    }
    if parse_response(msg, &txid).is_some() {
        assert!(msg.len() >= 20);
        let mut other = txid;
        other[usize::from(flags >> 1) % 12] ^= 1;
        assert_eq!(parse_response(msg, &other), None);
    }
});
