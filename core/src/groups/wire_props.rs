//! Property tests of group frames: any bytes decode without panicking, every frame within the
//! bounds round-trips, and no strict prefix of an encoding decodes.

use proptest::collection::vec;
use proptest::prelude::*;

use super::GroupId;
use super::history::VersionVector;
use super::log::{Entry, LogOp, SignedEntry};
use super::message::{Body, GroupMessage, SignedMessage};
use super::wire::{GroupFrame, MAX_PAGE_ENTRIES, MsgBatch, RefuseCode};
use crate::identity::Fingerprint;

fn fp() -> impl Strategy<Value = Fingerprint> {
    any::<[u8; 32]>().prop_map(Fingerprint)
}

fn sig() -> impl Strategy<Value = [u8; 64]> {
    vec(any::<u8>(), 64).prop_map(|v| v.try_into().unwrap())
}

fn op() -> impl Strategy<Value = LogOp> {
    prop_oneof![
        "[a-zA-Z0-9]{0,40}".prop_map(|name| LogOp::Create { name }),
        fp().prop_map(LogOp::Invite),
        (fp(), any::<u64>()).prop_map(|(member, cutoff)| LogOp::Remove { member, cutoff }),
        fp().prop_map(LogOp::Promote),
        fp().prop_map(LogOp::Demote),
        any::<u64>().prop_map(|cutoff| LogOp::Leave { cutoff }),
    ]
}

fn entry() -> impl Strategy<Value = SignedEntry> {
    (
        any::<[u8; 16]>(),
        any::<u32>(),
        any::<[u8; 32]>(),
        any::<u64>(),
        op(),
        any::<[u8; 32]>(),
        sig(),
    )
        .prop_map(|(g, index, prev, time_ms, op, signer, sig)| SignedEntry {
            entry: Entry {
                group: GroupId(g),
                index,
                prev,
                time_ms,
                op,
            },
            signer,
            sig,
        })
}

fn message() -> impl Strategy<Value = SignedMessage> {
    let body = prop_oneof![
        any::<String>().prop_map(Body::Text),
        vec(any::<u8>(), 0..=1024).prop_map(Body::File),
    ];
    (
        any::<[u8; 16]>(),
        any::<[u8; 32]>(),
        any::<u64>(),
        any::<u64>(),
        any::<u64>(),
        body,
        sig(),
    )
        .prop_map(
            |(g, author, seq, lamport, sent_ms, body, sig)| SignedMessage {
                msg: GroupMessage {
                    group: GroupId(g),
                    author,
                    seq,
                    lamport,
                    sent_ms,
                    body,
                },
                sig,
            },
        )
}

fn vv() -> impl Strategy<Value = VersionVector> {
    vec((fp(), 1..u64::MAX), 0..20).prop_map(|v| VersionVector(v.into_iter().collect()))
}

fn frame() -> impl Strategy<Value = GroupFrame> {
    let g = any::<[u8; 16]>().prop_map(GroupId);
    prop_oneof![
        (
            g.clone(),
            any::<u32>(),
            any::<[u8; 32]>(),
            vv(),
            any::<bool>()
        )
            .prop_map(|(group, log_len, head, vv, routing)| GroupFrame::Hello {
                group,
                log_len,
                head,
                vv,
                routing
            }),
        (g.clone(), any::<u32>()).prop_map(|(group, from)| GroupFrame::LogWant { group, from }),
        (
            g.clone(),
            any::<u32>(),
            vec(entry(), 0..=MAX_PAGE_ENTRIES),
            any::<bool>()
        )
            .prop_map(|(group, from, entries, done)| GroupFrame::LogEntries {
                group,
                from,
                entries,
                done
            }),
        entry().prop_map(GroupFrame::Propose),
        message().prop_map(GroupFrame::Msg),
        (g.clone(), any::<u64>()).prop_map(|(group, seq)| GroupFrame::Ack { group, seq }),
        (g.clone(), vv(), any::<u16>()).prop_map(|(group, vv, limit)| GroupFrame::Want {
            group,
            vv,
            limit
        }),
        (g.clone(), vec(message(), 0..3), any::<bool>())
            .prop_map(|(group, msgs, more)| GroupFrame::Page { group, msgs, more }),
        (g, "[a-z]{0,40}").prop_map(|(group, text)| GroupFrame::Refuse {
            group,
            code: RefuseCode::StaleHead,
            text,
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(b in vec(any::<u8>(), 0..2048), tag in 30u8..=39) {
        let _ = GroupFrame::decode(&b);
        let mut tagged = vec![tag];
        tagged.extend_from_slice(&b);
        let _ = GroupFrame::decode(&tagged);
        let _ = MsgBatch::decode(&tagged);
    }

    #[test]
    fn batches_round_trip_and_hold_one_group(msgs in vec(message(), 1..4), g in any::<[u8; 16]>()) {
        let group = GroupId(g);
        let msgs: Vec<SignedMessage> = msgs
            .into_iter()
            .map(|mut m| {
                m.msg.group = group;
                m
            })
            .collect();
        let batch = MsgBatch { group, msgs };
        let bytes = batch.encode();
        prop_assert_eq!(MsgBatch::decode(&bytes), Ok(batch.clone()));
        for cut in [0, 1, bytes.len() / 2, bytes.len() - 1] {
            prop_assert!(MsgBatch::decode(&bytes[..cut]).is_err());
        }
        // A message of another group is refused; so is an empty batch.
        let mut mixed = batch.clone();
        mixed.msgs[0].msg.group = GroupId([!g[0]; 16]);
        prop_assert!(MsgBatch::decode(&mixed.encode()).is_err());
        let empty = MsgBatch { group, msgs: vec![] };
        prop_assert!(MsgBatch::decode(&empty.encode()).is_err());
    }

    #[test]
    fn frames_round_trip_and_prefixes_fail(f in frame()) {
        let bytes = f.encode();
        prop_assert_eq!(GroupFrame::decode(&bytes), Ok(f));
        for cut in [0, 1, bytes.len() / 2, bytes.len() - 1] {
            prop_assert!(GroupFrame::decode(&bytes[..cut]).is_err());
        }
        let mut longer = bytes.clone();
        longer.push(0);
        prop_assert!(GroupFrame::decode(&longer).is_err());
    }
}
