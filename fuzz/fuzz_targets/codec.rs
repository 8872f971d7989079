//! `transport::codec::Codec::decode` (with the PeerJS reassembler behind it): the data
//! connection frames of every serialization. Input: a serialization byte, then length-prefixed
//! frames. Never panics; every decoded message, encoded again by a fresh codec, decodes to
//! itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use peerns_core::transport::codec::{Codec, CodecError, Payload};
use peerns_core::transport::payload::Serialization;

const SERIALIZATIONS: [Serialization; 4] = [
    Serialization::Raw,
    Serialization::Json,
    Serialization::Binary,
    Serialization::BinaryUtf8,
];

fuzz_target!(|data: &[u8]| {
    let Some((first, rest)) = data.split_first() else {
        return;
    };
    let ser = SERIALIZATIONS[usize::from(*first) % SERIALIZATIONS.len()];
    let mut rx = Codec::new(ser);
    for frame in peerns_fuzz::frames(rest) {
        let _ = rx.is_close_request(frame);
        if let Ok(Some(payload)) = rx.decode(frame) {
            round_trip(ser, &payload);
        }
    }
});

fn round_trip(ser: Serialization, payload: &Payload) {
    let frames = match Codec::new(ser).encode(payload) {
        Ok(frames) => frames,
        // A JSON text re-serialized can outgrow the limit (`1e9` becomes `1000000000`).
        Err(CodecError::TooBig { .. }) => return,
        Err(e) => panic!("{payload:?} decoded but does not encode: {e}"),
    };
    let mut rx = Codec::new(ser);
    let mut out = None;
    for f in &frames {
        out = rx.decode(f).expect("our own frames decode");
    }
    assert_eq!(out.as_ref(), Some(payload));
}
