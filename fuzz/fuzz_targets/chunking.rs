//! `transport::chunking::Reassembler`: PeerJS chunk frames from a peer. Input: two limit bytes,
//! then length-prefixed BinaryPack frames. Never panics, and whatever those frames left behind,
//! a well-formed message of three chunks (delivered last chunk first) still reassembles to
//! itself.
#![no_main]

use std::num::NonZeroU32;
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use peerns_core::transport::binarypack::{PackValue, pack, unpack};
use peerns_core::transport::chunking::{CHUNKED_MTU, Reassembler, ReassemblyLimits, chunk};

/// Id of the well-formed message; the fuzz frames may collide with it on purpose.
const ID: u32 = 0x7fff_fff1;

/// The well-formed message and its chunk frames, unpacked.
static MESSAGE: LazyLock<(PackValue, Vec<PackValue>)> = LazyLock::new(|| {
    let body = (0..CHUNKED_MTU * 5 / 2).map(|i| (i % 251) as u8).collect();
    let message = PackValue::Bin(body);
    let chunks = chunk(NonZeroU32::new(ID).expect("non-zero"), &pack(&message));
    assert_eq!(chunks.len(), 3);
    let frames = chunks
        .iter()
        .map(|c| unpack(c).expect("chunk unpacks"))
        .collect();
    (message, frames)
});

fuzz_target!(|data: &[u8]| {
    let [size, partials, rest @ ..] = data else {
        return;
    };
    let limits = ReassemblyLimits {
        max_message_size: (usize::from(*size % 8) + 3) * CHUNKED_MTU,
        max_partials: usize::from(*partials % 4),
    };
    let mut r = Reassembler::new(limits);
    let mut collides = false;
    for frame in peerns_fuzz::frames(rest) {
        let Ok(value) = unpack(frame) else { continue };
        collides |= value.get("__peerData") == Some(&PackValue::Int(ID.into()));
        let _ = r.push(value);
    }

    let (message, chunks) = &*MESSAGE;
    let out: Vec<_> = chunks.iter().rev().map(|c| r.push(c.clone())).collect();
    if !collides {
        assert!(matches!(out[..2], [Ok(None), Ok(None)]), "{out:?}");
        assert_eq!(out[2].as_ref(), Ok(&Some(message.clone())));
    }
});
