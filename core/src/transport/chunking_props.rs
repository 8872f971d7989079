//! Property tests of PeerJS chunking: a message of any size, cut by [`chunk`] and delivered in
//! any order, reassembles to itself (also through [`Codec`], and with other messages
//! interleaved); a repeated chunk is refused.

use std::num::NonZeroU32;

use proptest::collection::vec;
use proptest::prelude::*;

use super::binarypack::{PackValue, pack, unpack};
use super::chunking::{CHUNKED_MTU, ChunkError, Reassembler, ReassemblyLimits, chunk};
use super::codec::{Codec, Payload};
use super::payload::Serialization;

/// `len` bytes of a pattern from `seed` (cheap to make at any size).
fn body(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// Sizes around the chunk boundaries, and anything up to five chunks.
fn size() -> impl Strategy<Value = usize> {
    prop_oneof![
        0usize..64,
        (1usize..=4).prop_flat_map(|k| (k * CHUNKED_MTU - 8)..(k * CHUNKED_MTU + 8)),
        0..=5 * CHUNKED_MTU,
    ]
}

/// Chunk frames of `value` under `id`, unpacked, in the order `order` picks.
fn shuffled_chunks(id: u32, value: &PackValue, order: &[prop::sample::Index]) -> Vec<PackValue> {
    let mut frames: Vec<PackValue> = chunk(NonZeroU32::new(id).unwrap(), &pack(value))
        .iter()
        .map(|f| unpack(f).unwrap())
        .collect();
    for (i, pick) in order.iter().enumerate() {
        let len = frames.len();
        frames.swap(i % len, pick.index(len));
    }
    frames
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_size_in_any_order_reassembles(
        len in size(),
        seed in any::<u8>(),
        id in 1u32..,
        order in vec(any::<prop::sample::Index>(), 0..8),
    ) {
        let message = PackValue::Bin(body(len, seed));
        let packed = pack(&message);
        let frames = shuffled_chunks(id, &message, &order);
        prop_assert_eq!(frames.len(), packed.len().div_ceil(CHUNKED_MTU));
        let mut r = Reassembler::new(ReassemblyLimits::default());
        let last = frames.len() - 1;
        for (n, f) in frames.into_iter().enumerate() {
            let out = r.push(f).unwrap();
            if n < last {
                prop_assert_eq!(out, None);
            } else {
                prop_assert_eq!(out.as_ref(), Some(&message));
            }
        }
    }

    #[test]
    fn interleaved_messages_reassemble_independently(
        (la, lb) in (size(), size()),
        order_a in vec(any::<prop::sample::Index>(), 0..6),
        order_b in vec(any::<prop::sample::Index>(), 0..6),
        mix in vec(any::<bool>(), 0..12),
    ) {
        let (ma, mb) = (PackValue::Bin(body(la, 1)), PackValue::Bin(body(lb, 2)));
        let mut fa = shuffled_chunks(1, &ma, &order_a).into_iter();
        let mut fb = shuffled_chunks(2, &mb, &order_b).into_iter();
        let mut r = Reassembler::new(ReassemblyLimits::default());
        let mut done = Vec::new();
        let mut picks = mix.into_iter();
        loop {
            let next = match picks.next().unwrap_or(true) {
                true => fa.next().or_else(|| fb.next()),
                false => fb.next().or_else(|| fa.next()),
            };
            let Some(frame) = next else { break };
            done.extend(r.push(frame).unwrap());
        }
        prop_assert_eq!(done.len(), 2);
        prop_assert!(done.contains(&ma) && done.contains(&mb));
    }

    #[test]
    fn a_repeated_chunk_is_refused(len in (CHUNKED_MTU + 1)..=3 * CHUNKED_MTU, dup in any::<prop::sample::Index>()) {
        let message = PackValue::Bin(body(len, 0));
        let frames = shuffled_chunks(9, &message, &[]);
        // Any chunk but the last, so the message is still incomplete when it comes again.
        let k = dup.index(frames.len() - 1);
        let mut r = Reassembler::new(ReassemblyLimits::default());
        prop_assert_eq!(r.push(frames[k].clone()), Ok(None));
        prop_assert_eq!(
            r.push(frames[k].clone()),
            Err(ChunkError::Duplicate { id: 9, n: k })
        );
    }

    #[test]
    fn binary_codec_round_trips_any_size(len in size(), seed in any::<u8>()) {
        let payload = Payload::Bytes(body(len, seed));
        let frames = Codec::new(Serialization::Binary).encode(&payload).unwrap();
        prop_assert!(frames.iter().all(|f| f.len() <= CHUNKED_MTU + 64));
        let mut rx = Codec::new(Serialization::Binary);
        let out: Vec<_> = frames.iter().map(|f| rx.decode(f).unwrap()).collect();
        prop_assert!(out[..out.len() - 1].iter().all(Option::is_none));
        prop_assert_eq!(out.last().unwrap(), &Some(payload));
    }
}
