//! `transport::binarypack::unpack`: PeerJS BinaryPack values. Never panics; packing a decoded
//! value is stable (pack ∘ unpack ∘ pack = pack), and so is its JSON form.
#![no_main]

use libfuzzer_sys::fuzz_target;
use peerns_core::transport::binarypack::{PackValue, pack, unpack};

fuzz_target!(|data: &[u8]| {
    let Ok(value) = unpack(data) else { return };
    let packed = pack(&value);
    let again = unpack(&packed).expect("packed bytes unpack");
    assert_eq!(pack(&again), packed);
    if let Ok(json) = value.to_json() {
        let back = unpack(&pack(&PackValue::from_json(&json))).expect("unpacks");
        assert_eq!(back.to_json(), Ok(json));
    }
});
