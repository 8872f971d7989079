//! Property tests of namespace messages: every message (with real signed records) round-trips
//! through `encode`/`decode`, and decoding accepts only canonical bytes — whatever a flipped
//! bit turns a message into, if it still decodes it re-encodes to exactly those bytes.

use proptest::collection::vec;
use proptest::prelude::*;

use super::msg::{Msg, Ranked};
use super::presence::{GeoStamp, Presence, SignedPresence, VerifyCache};
use crate::identity::Identity;

fn text(chars: std::ops::RangeInclusive<usize>) -> impl Strategy<Value = String> {
    vec(any::<char>(), chars).prop_map(String::from_iter)
}

fn geo() -> impl Strategy<Value = Option<GeoStamp>> {
    proptest::option::of((-90.0..=90.0f64, -180.0..=180.0f64, 0.0..1e6f64).prop_map(
        |(lat, lon, accuracy_m)| GeoStamp {
            lat,
            lon,
            accuracy_m,
        },
    ))
}

/// A record signed by one of a few fixed identities.
fn record() -> impl Strategy<Value = SignedPresence> {
    (
        1u8..4,
        text(1..=24),
        text(1..=24),
        any::<u64>(),
        text(0..=64),
        geo(),
        vec(any::<u8>(), 0..=128),
    )
        .prop_map(|(who, namespace, disc_id, issued_ms, name, geo, note)| {
            let id = Identity::from_secret(&[who; 32], "props");
            SignedPresence::sign(
                &id,
                Presence {
                    namespace,
                    disc_id,
                    key: [0; 32],
                    issued_ms,
                    // Decoding shows a peer's name sanitized (`crate::text`); a name that is
                    // already clean round-trips exactly.
                    name: crate::text::display_name(&name),
                    geo,
                    note,
                },
            )
        })
}

fn ranked() -> impl Strategy<Value = Vec<Ranked>> {
    vec((any::<u64>(), record()), 0..3)
}

fn msg() -> impl Strategy<Value = Msg> {
    prop_oneof![
        record().prop_map(|r| Msg::CheckIn(Box::new(r))),
        (any::<u8>(), ranked(), any::<bool>()).prop_map(|(level, records, last)| Msg::Welcome {
            level,
            records,
            last
        }),
        (ranked(), vec(text(0..=24), 0..4))
            .prop_map(|(added, removed)| Msg::Delta { added, removed }),
        Just(Msg::Beat),
        Just(Msg::Leave),
        any::<u8>().prop_map(|level| Msg::Migrate { level }),
        any::<u8>().prop_map(|level| Msg::Relevel { level }),
        any::<u32>().prop_map(|ms| Msg::Pace { ms }),
        any::<u8>().prop_map(|level| Msg::ReverseWelcome { level }),
        text(0..=50).prop_map(|reason| Msg::Refused { reason }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn messages_round_trip(m in msg()) {
        let cache = VerifyCache::default();
        prop_assert_eq!(Msg::decode(&m.encode(), &cache), Ok(m));
    }

    #[test]
    fn only_canonical_bytes_decode(m in msg(), at in any::<prop::sample::Index>(), bit in 0u8..8) {
        let mut bytes = m.encode();
        let i = at.index(bytes.len());
        bytes[i] ^= 1 << bit;
        if let Ok(other) = Msg::decode(&bytes, &VerifyCache::default()) {
            prop_assert_eq!(other.encode(), bytes);
        }
    }
}
