//! PeerJS chunking of large binary-serialized messages, compatible with peerjs 1.5.
//!
//! A peerjs sender packs each message with [`binarypack`]. When the packed bytes are longer than
//! [`CHUNKED_MTU`] it cuts them into slices of `CHUNKED_MTU` bytes (the last one shorter) and
//! sends every slice as its own packed map `{__peerData: id, n: index, data: slice, total: count}`
//! — keys in exactly that order, `data` as binary, `id` counting up from 1 per connection. The
//! receiver treats any map whose `__peerData` is truthy as a chunk (or, for
//! `{__peerData: {type: "close"}}`, as a close request), collects the slices of each `id` and
//! unpacks their concatenation once `total` slices arrived.

use std::collections::HashMap;
use std::num::NonZeroU32;

use super::binarypack::{self, PackError, PackValue};

/// Largest packed message peerjs sends unchunked, and the slice size of chunked ones.
pub const CHUNKED_MTU: usize = 16_300;

/// Whether peerjs would chunk a packed message of `packed_len` bytes.
pub fn needs_chunking(packed_len: usize) -> bool {
    packed_len > CHUNKED_MTU
}

/// Splits a packed message into packed chunk frames exactly as peerjs does. Callers send
/// messages for which [`needs_chunking`] is false as they are, and give every chunked message
/// a fresh id (peerjs ignores `__peerData: 0`, hence `NonZeroU32`).
pub fn chunk(message_id: NonZeroU32, packed: &[u8]) -> Vec<Vec<u8>> {
    let total = packed.len().div_ceil(CHUNKED_MTU);
    let key = |k: &str| PackValue::Str(k.to_owned());
    packed
        .chunks(CHUNKED_MTU)
        .enumerate()
        .map(|(n, data)| {
            binarypack::pack(&PackValue::Map(vec![
                (key("__peerData"), PackValue::Int(message_id.get().into())),
                (key("n"), PackValue::Int(n as i64)),
                (key("data"), PackValue::Bin(data.to_vec())),
                (key("total"), PackValue::Int(total as i64)),
            ]))
        })
        .collect()
}

/// Whether `frame` is the peerjs close request `{__peerData: {type: "close"}}`.
pub fn is_close(frame: &PackValue) -> bool {
    frame
        .get("__peerData")
        .and_then(|peer_data| peer_data.get("type"))
        .is_some_and(|t| matches!(t, PackValue::Str(s) if s == "close"))
}

/// Bounds on what a [`Reassembler`] buffers for a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReassemblyLimits {
    /// Largest reassembled message in bytes, and the most partial-message data buffered at once.
    pub max_message_size: usize,
    /// Most messages in progress at once (at least one is always allowed).
    pub max_partials: usize,
}

impl Default for ReassemblyLimits {
    fn default() -> Self {
        Self {
            max_message_size: 64 << 20,
            max_partials: 16,
        }
    }
}

/// Why a frame was rejected. Any error discards the partial message it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    /// A field of a chunk map is missing or has the wrong type or range.
    #[error("malformed chunk: bad or missing `{0}`")]
    Malformed(&'static str),
    /// `total` exceeds what `max_message_size` allows.
    #[error("message {id} announces {total} chunks, more than the {max} allowed")]
    TooManyChunks {
        /// Message id.
        id: u32,
        /// Announced chunk count.
        total: usize,
        /// Limit derived from `max_message_size`.
        max: usize,
    },
    /// A chunk's `total` differs from the one the message started with.
    #[error("message {id} announced {expected} chunks, then {got}")]
    InconsistentTotal {
        /// Message id.
        id: u32,
        /// The first announced count.
        expected: usize,
        /// The differing count.
        got: usize,
    },
    /// The same chunk index arrived twice.
    #[error("chunk {n} of message {id} arrived twice")]
    Duplicate {
        /// Message id.
        id: u32,
        /// Chunk index.
        n: usize,
    },
    /// The message outgrows `max_message_size`.
    #[error("message {id} exceeds {max} bytes")]
    TooLarge {
        /// Message id.
        id: u32,
        /// The limit.
        max: usize,
    },
    /// The reassembled bytes are not a valid packed value.
    #[error("reassembled message {id}: {source}")]
    Unpack {
        /// Message id.
        id: u32,
        /// The decoding error.
        source: PackError,
    },
    /// The reassembled message is itself a chunk, which peerjs never sends.
    #[error("reassembled message {0} is itself a chunk")]
    NestedChunk(u32),
}

/// A validated chunk frame.
struct Chunk<'a> {
    id: u32,
    n: usize,
    total: usize,
    data: &'a [u8],
}

impl<'a> Chunk<'a> {
    /// `Ok(None)` for frames that are not chunks: no truthy `__peerData` (as in JS), or a close
    /// request.
    fn parse(frame: &'a PackValue) -> Result<Option<Self>, ChunkError> {
        let Some(peer_data) = frame.get("__peerData") else {
            return Ok(None);
        };
        if !truthy(peer_data) || is_close(frame) {
            return Ok(None);
        }
        let int = |key: &'static str| match frame.get(key) {
            Some(&PackValue::Int(i)) => Ok(i),
            _ => Err(ChunkError::Malformed(key)),
        };
        let id =
            u32::try_from(int("__peerData")?).map_err(|_| ChunkError::Malformed("__peerData"))?;
        let n = usize::try_from(int("n")?).map_err(|_| ChunkError::Malformed("n"))?;
        let total = usize::try_from(int("total")?).map_err(|_| ChunkError::Malformed("total"))?;
        let Some(PackValue::Bin(data)) = frame.get("data") else {
            return Err(ChunkError::Malformed("data"));
        };
        if total == 0 {
            return Err(ChunkError::Malformed("total"));
        }
        if n >= total {
            return Err(ChunkError::Malformed("n"));
        }
        if data.len() > CHUNKED_MTU {
            return Err(ChunkError::Malformed("data"));
        }
        Ok(Some(Self { id, n, total, data }))
    }
}

/// JavaScript truthiness.
fn truthy(value: &PackValue) -> bool {
    match value {
        PackValue::Null => false,
        PackValue::Bool(b) => *b,
        PackValue::Int(i) => *i != 0,
        PackValue::Float(x) => *x != 0.0 && !x.is_nan(),
        PackValue::Str(s) => !s.is_empty(),
        PackValue::Bin(_) | PackValue::Array(_) | PackValue::Map(_) => true,
    }
}

struct Partial {
    /// Arrival order of the first chunk, for evicting the oldest.
    seq: u64,
    parts: Vec<Option<Vec<u8>>>,
    received: usize,
    bytes: usize,
}

/// Reassembles the chunked messages of one peer connection.
///
/// Buffered data never exceeds `max_message_size` in total, and at most `max_partials` messages
/// are in progress: when a new message or chunk would overstep either bound, the oldest other
/// partial messages are dropped (a lost chunk on an unreliable channel must not block the
/// connection for good).
#[derive(Default)]
pub struct Reassembler {
    limits: ReassemblyLimits,
    partials: HashMap<u32, Partial>,
    buffered: usize,
    next_seq: u64,
}

impl Reassembler {
    /// A reassembler with the given limits.
    pub fn new(limits: ReassemblyLimits) -> Self {
        Self {
            limits,
            ..Self::default()
        }
    }

    /// Changes the limits; messages in progress that break new ones are dropped as the next
    /// frames arrive.
    pub fn set_limits(&mut self, limits: ReassemblyLimits) {
        self.limits = limits;
    }

    /// Takes one received, unpacked frame. Returns non-chunk frames (including close requests,
    /// see [`is_close`]) unchanged, `None` while a chunked message is incomplete, and the
    /// unpacked message when its last chunk arrives.
    pub fn push(&mut self, frame: PackValue) -> Result<Option<PackValue>, ChunkError> {
        let Some(chunk) = Chunk::parse(&frame)? else {
            return Ok(Some(frame));
        };
        let result = self.accept(&chunk);
        if result.is_err() {
            self.discard(chunk.id);
        }
        result
    }

    fn accept(&mut self, chunk: &Chunk<'_>) -> Result<Option<PackValue>, ChunkError> {
        let Chunk { id, n, total, data } = *chunk;
        let max = self.limits.max_message_size;
        let max_total = max.div_ceil(CHUNKED_MTU);
        if total > max_total {
            return Err(ChunkError::TooManyChunks {
                id,
                total,
                max: max_total,
            });
        }
        if let Some(partial) = self.partials.get(&id) {
            if partial.parts.len() != total {
                return Err(ChunkError::InconsistentTotal {
                    id,
                    expected: partial.parts.len(),
                    got: total,
                });
            }
            if partial.parts[n].is_some() {
                return Err(ChunkError::Duplicate { id, n });
            }
        } else {
            while self.partials.len() >= self.limits.max_partials.max(1) && self.evict_oldest(id) {}
        }
        while self.buffered + data.len() > max {
            if !self.evict_oldest(id) {
                return Err(ChunkError::TooLarge { id, max });
            }
        }

        let next_seq = &mut self.next_seq;
        let partial = self.partials.entry(id).or_insert_with(|| {
            *next_seq += 1;
            Partial {
                seq: *next_seq,
                parts: vec![None; total],
                received: 0,
                bytes: 0,
            }
        });
        partial.parts[n] = Some(data.to_vec());
        partial.received += 1;
        partial.bytes += data.len();
        self.buffered += data.len();
        if partial.received < total {
            return Ok(None);
        }

        let mut packed = Vec::with_capacity(partial.bytes);
        for part in partial.parts.iter().flatten() {
            packed.extend_from_slice(part);
        }
        self.discard(id);
        let message =
            binarypack::unpack(&packed).map_err(|source| ChunkError::Unpack { id, source })?;
        if Chunk::parse(&message)?.is_some() {
            return Err(ChunkError::NestedChunk(id));
        }
        Ok(Some(message))
    }

    /// Drops the oldest partial message other than `keep`; false if there is none.
    fn evict_oldest(&mut self, keep: u32) -> bool {
        let oldest = self
            .partials
            .iter()
            .filter(|(id, _)| **id != keep)
            .min_by_key(|(_, partial)| partial.seq)
            .map(|(id, _)| *id);
        match oldest {
            Some(id) => {
                tracing::debug!(id, "dropping incomplete chunked message");
                self.discard(id);
                true
            }
            None => false,
        }
    }

    fn discard(&mut self, id: u32) {
        if let Some(partial) = self.partials.remove(&id) {
            self.buffered -= partial.bytes;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use binarypack::{fixtures, pack, unpack};

    fn id(n: u32) -> NonZeroU32 {
        NonZeroU32::new(n).unwrap()
    }

    fn frame(id: i64, n: i64, total: i64, data: &[u8]) -> PackValue {
        let key = |k: &str| PackValue::Str(k.to_owned());
        PackValue::Map(vec![
            (key("__peerData"), PackValue::Int(id)),
            (key("n"), PackValue::Int(n)),
            (key("data"), PackValue::Bin(data.to_vec())),
            (key("total"), PackValue::Int(total)),
        ])
    }

    fn frames_of(message: &PackValue, message_id: u32) -> Vec<PackValue> {
        let frames = chunk(id(message_id), &pack(message));
        frames.iter().map(|f| unpack(f).unwrap()).collect()
    }

    #[test]
    fn fixture_chunks_match_peerjs() {
        let vectors = fixtures::vectors();
        let fixture = &vectors["chunked"];
        assert_eq!(fixture["chunked_mtu"], CHUNKED_MTU);
        let message = fixtures::value(&fixture["message"]);
        let packed = pack(&message);
        fixtures::assert_bytes("packed", &fixture["packed"], &packed);
        assert!(needs_chunking(packed.len()));

        let message_id = fixture["message_id"].as_u64().unwrap() as u32;
        let frames = chunk(id(message_id), &packed);
        let expected = fixture["frames"].as_array().unwrap();
        assert_eq!(frames.len(), expected.len());
        let mut reassembler = Reassembler::default();
        for (i, (frame, expected)) in frames.iter().zip(expected).enumerate() {
            fixtures::assert_bytes(&format!("frame {i}"), expected, frame);
            let out = reassembler.push(unpack(frame).unwrap()).unwrap();
            assert_eq!(out.is_some(), i == frames.len() - 1);
            if let Some(out) = out {
                assert_eq!(out, message);
            }
        }
        assert!(reassembler.partials.is_empty());
        assert_eq!(reassembler.buffered, 0);
    }

    #[test]
    fn chunk_boundaries() {
        assert!(!needs_chunking(CHUNKED_MTU));
        assert!(needs_chunking(CHUNKED_MTU + 1));
        assert!(chunk(id(1), &[]).is_empty());
        let exact = vec![7; 2 * CHUNKED_MTU];
        let frames: Vec<_> = chunk(id(9), &exact)
            .iter()
            .map(|f| unpack(f).unwrap())
            .collect();
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[1], frame(9, 1, 2, &exact[CHUNKED_MTU..]));
    }

    #[test]
    fn passthrough_and_close() {
        let mut r = Reassembler::default();
        let plain = PackValue::from_json(&serde_json::json!({"text": "hi", "__peerData": 0}));
        assert_eq!(r.push(plain.clone()), Ok(Some(plain)));
        let close = PackValue::from_json(&serde_json::json!({"__peerData": {"type": "close"}}));
        assert!(is_close(&close));
        assert_eq!(r.push(close.clone()), Ok(Some(close)));
        assert_eq!(r.push(PackValue::Int(3)), Ok(Some(PackValue::Int(3))));
    }

    #[test]
    fn out_of_order_and_interleaved_messages() {
        let a = PackValue::Bin((0..50_000u32).map(|i| i as u8).collect());
        let b = PackValue::Str("é".repeat(20_000));
        let (fa, fb) = (frames_of(&a, 1), frames_of(&b, 2));
        let mut r = Reassembler::default();
        assert_eq!(r.push(fa[3].clone()), Ok(None));
        assert_eq!(r.push(fb[1].clone()), Ok(None));
        assert_eq!(r.push(fa[0].clone()), Ok(None));
        assert_eq!(r.push(fb[2].clone()), Ok(None));
        assert_eq!(r.push(fb[0].clone()), Ok(Some(b)));
        assert_eq!(r.push(fa[2].clone()), Ok(None));
        assert_eq!(r.push(fa[1].clone()), Ok(Some(a)));
        assert_eq!(r.buffered, 0);
    }

    #[test]
    fn malformed_chunks_are_rejected() {
        let mut r = Reassembler::default();
        let data = [1u8; 10];
        let bad = [
            (frame(-1, 0, 1, &data), ChunkError::Malformed("__peerData")),
            (
                frame(1 << 32, 0, 1, &data),
                ChunkError::Malformed("__peerData"),
            ),
            (frame(1, -1, 2, &data), ChunkError::Malformed("n")),
            (frame(1, 2, 2, &data), ChunkError::Malformed("n")),
            (frame(1, 0, 0, &data), ChunkError::Malformed("total")),
            (
                frame(1, 0, 2, &[0; CHUNKED_MTU + 1]),
                ChunkError::Malformed("data"),
            ),
            (
                PackValue::Map(vec![(
                    PackValue::Str("__peerData".into()),
                    PackValue::Str("x".into()),
                )]),
                ChunkError::Malformed("__peerData"),
            ),
        ];
        for (frame, err) in bad {
            assert_eq!(r.push(frame), Err(err));
        }
        let no_data = PackValue::Map(vec![
            (PackValue::Str("__peerData".into()), PackValue::Int(1)),
            (PackValue::Str("n".into()), PackValue::Int(0)),
            (PackValue::Str("total".into()), PackValue::Int(1)),
        ]);
        assert_eq!(r.push(no_data), Err(ChunkError::Malformed("data")));
    }

    #[test]
    fn inconsistent_duplicate_and_oversized_chunks_are_rejected() {
        let mut r = Reassembler::default();
        assert_eq!(r.push(frame(1, 0, 3, &[1; 10])), Ok(None));
        assert_eq!(
            r.push(frame(1, 1, 4, &[1; 10])),
            Err(ChunkError::InconsistentTotal {
                id: 1,
                expected: 3,
                got: 4
            })
        );
        assert!(r.partials.is_empty());

        assert_eq!(r.push(frame(2, 0, 3, &[1; 10])), Ok(None));
        assert_eq!(
            r.push(frame(2, 0, 3, &[1; 10])),
            Err(ChunkError::Duplicate { id: 2, n: 0 })
        );
        assert_eq!(r.buffered, 0);

        let max_total = ReassemblyLimits::default()
            .max_message_size
            .div_ceil(CHUNKED_MTU);
        assert_eq!(
            r.push(frame(3, 0, i64::MAX, &[])),
            Err(ChunkError::TooManyChunks {
                id: 3,
                total: i64::MAX as usize,
                max: max_total
            })
        );

        let mut small = Reassembler::new(ReassemblyLimits {
            max_message_size: 100,
            max_partials: 4,
        });
        assert_eq!(
            small.push(frame(5, 0, 1, &[0; 101])),
            Err(ChunkError::TooLarge { id: 5, max: 100 })
        );
        assert!(small.partials.is_empty());
    }

    #[test]
    fn limits_evict_the_oldest_partial() {
        let limits = ReassemblyLimits {
            max_message_size: 3 * CHUNKED_MTU,
            max_partials: 2,
        };
        let mut r = Reassembler::new(limits);
        let filler = [0u8; CHUNKED_MTU];
        assert_eq!(r.push(frame(1, 0, 3, &filler)), Ok(None));
        assert_eq!(r.push(frame(2, 0, 3, &filler)), Ok(None));
        let message = PackValue::Bin(vec![5; 2 * CHUNKED_MTU + 100]);
        let frames = frames_of(&message, 3);
        assert_eq!(frames.len(), 3);

        // A third message exceeds max_partials: message 1 goes.
        assert_eq!(r.push(frames[0].clone()), Ok(None));
        assert!(!r.partials.contains_key(&1));
        assert_eq!(r.push(frames[1].clone()), Ok(None));
        assert_eq!(r.buffered, 3 * CHUNKED_MTU);

        // The last slice exceeds the byte budget: message 2 goes.
        assert_eq!(r.push(frames[2].clone()), Ok(Some(message)));
        assert!(r.partials.is_empty());
        assert_eq!(r.buffered, 0);
    }

    #[test]
    fn nested_chunks_are_rejected() {
        let inner = pack(&frame(7, 0, 1, &[1, 2, 3]));
        let mut r = Reassembler::default();
        assert_eq!(
            r.push(frame(8, 0, 1, &inner)),
            Err(ChunkError::NestedChunk(8))
        );
    }
}
