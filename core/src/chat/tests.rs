//! The op streams on real (temporary) profile databases: one per side.

use rusqlite::Connection;

use super::store::*;
use super::wire::OpKind;
use crate::identity::{Fingerprint, Identity};
use crate::store::Store;

struct Side {
    _dir: tempfile::TempDir,
    store: Store,
    me: Fingerprint,
}

fn side() -> Side {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("peerns.db")).unwrap();
    Side {
        _dir: dir,
        store,
        me: Identity::generate().fingerprint(),
    }
}

fn with<T>(s: &Side, f: impl FnOnce(&mut Connection) -> Result<T, ChatError>) -> T {
    s.store.with_conn(|c| Ok(f(c))).unwrap().unwrap()
}

fn text(m: &Message) -> &str {
    m.text().unwrap()
}

#[test]
fn ops_are_numbered_delivered_once_and_in_order() {
    let (a, b) = (side(), side());
    for i in 1..=5 {
        let (op, _) = with(&a, |c| {
            enqueue(
                c,
                &a.me,
                &b.me,
                OpKind::Text,
                None,
                format!("m{i}").as_bytes(),
                i,
            )
        });
        assert_eq!(op.seq, i);
    }
    let ops = with(&a, |c| outbox(c, &a.me, &b.me, 1, 100));
    assert_eq!(ops.len(), 5);
    // The first three arrive, then all five again (a resend after a broken connection).
    let r = with(&b, |c| receive(c, &a.me, &ops[..3], 10));
    assert_eq!((r.new.len(), r.ack, r.resync), (3, 3, false));
    let r = with(&b, |c| receive(c, &a.me, &ops, 11));
    assert_eq!((r.new.len(), r.ack), (2, 5));
    assert_eq!(text(&r.new[0]), "m4");
    // A gap asks for a resend and stores nothing after it.
    let (later, _) = with(&a, |c| {
        enqueue(c, &a.me, &b.me, OpKind::Text, None, b"m6", 6)
    });
    let (last, _) = with(&a, |c| {
        enqueue(c, &a.me, &b.me, OpKind::Text, None, b"m7", 7)
    });
    let r = with(&b, |c| receive(c, &a.me, std::slice::from_ref(&last), 12));
    assert!(r.resync && r.new.is_empty() && r.ack == 5);
    let r = with(&b, |c| receive(c, &a.me, &[later, last], 13));
    assert_eq!((r.new.len(), r.ack), (2, 7));
    let shown: Vec<String> = with(&b, |c| messages(c, &a.me, 100))
        .iter()
        .map(|m| text(m).to_owned())
        .collect();
    assert_eq!(shown, ["m1", "m2", "m3", "m4", "m5", "m6", "m7"]);
}

#[test]
fn status_moves_from_waiting_to_read() {
    let (a, b) = (side(), side());
    let (op, _) = with(&a, |c| {
        enqueue(c, &a.me, &b.me, OpKind::Text, None, b"hi", 1)
    });
    let status = |s: &Side| with(s, |c| messages(c, &b.me, 1))[0].status;
    assert_eq!(status(&a), Status::Waiting);
    with(&a, |c| mark_sent(c, &b.me, 1));
    assert_eq!(status(&a), Status::Sent);
    assert_eq!(with(&a, |c| with_outbox(c)), vec![b.me]);
    let r = with(&b, |c| receive(c, &a.me, &[op], 2));
    assert_eq!(with(&a, |c| acknowledge(c, &b.me, r.ack)), Some((1, 1)));
    assert_eq!(with(&a, |c| acknowledge(c, &b.me, r.ack)), None);
    assert_eq!(status(&a), Status::Delivered);
    assert!(with(&a, |c| with_outbox(c)).is_empty());
    // The receiver reads it; the read mark reaches the sender.
    let unread = |s: &Side, conv| {
        with(s, |c| conversations(c))
            .into_iter()
            .find(|v| v.conv == conv)
            .unwrap()
            .unread
    };
    assert_eq!(unread(&b, a.me), 1);
    let mark = with(&b, |c| mark_read(c, &a.me)).unwrap();
    assert_eq!(unread(&b, a.me), 0);
    assert_eq!(with(&b, |c| mark_read(c, &a.me)), None);
    assert_eq!(with(&a, |c| peer_read(c, &b.me, mark)), Some(1));
    assert_eq!(status(&a), Status::Read);
    // Acknowledgements beyond what was sent are clamped.
    assert_eq!(with(&a, |c| acknowledge(c, &b.me, 99)), None);
}

#[test]
fn edits_and_deletes_travel_in_the_stream() {
    let (a, b) = (side(), side());
    let (m1, _) = with(&a, |c| {
        enqueue(c, &a.me, &b.me, OpKind::Text, None, b"helo", 1)
    });
    let (m2, _) = with(&a, |c| {
        enqueue(c, &a.me, &b.me, OpKind::Text, None, b"bye", 2)
    });
    let (edit, changed) = with(&a, |c| {
        enqueue(c, &a.me, &b.me, OpKind::Edit, Some(m1.id), b"hello", 3)
    });
    assert_eq!(changed.map(|m| m.edited), Some(true));
    let (del, _) = with(&a, |c| {
        enqueue(c, &a.me, &b.me, OpKind::Delete, Some(m2.id), b"", 4)
    });
    // Only our own, existing, live messages can be changed.
    let unknown = with(&b, |c| {
        Ok(enqueue(c, &b.me, &a.me, OpKind::Edit, Some(m1.id), b"x", 5).is_err())
    });
    assert!(unknown);
    let ops = with(&a, |c| outbox(c, &a.me, &b.me, 1, 10));
    // Ops not yet delivered carry the current text; a message deleted before it was delivered
    // keeps its seq as a delete of itself: its words, even that it was, never leave.
    let ids: Vec<_> = ops
        .iter()
        .map(|o| (o.seq, o.id, o.kind, o.target))
        .collect();
    let want = vec![
        (m1.seq, m1.id, OpKind::Text, None),
        (m2.seq, m2.id, OpKind::Delete, Some(m2.id)),
        (edit.seq, edit.id, OpKind::Edit, Some(m1.id)),
        (del.seq, del.id, OpKind::Delete, Some(m2.id)),
    ];
    assert_eq!(ids, want);
    assert_eq!(
        (ops[0].body.as_slice(), ops[1].body.as_slice()),
        (&b"hello"[..], &b""[..])
    );
    // The receiver gets the first message, then the rest in another batch.
    with(&b, |c| receive(c, &a.me, &ops[..1], 6));
    let r = with(&b, |c| receive(c, &a.me, &ops[1..], 7));
    assert_eq!((r.new.len(), r.changed.len(), r.ack), (0, 1, del.seq));
    let shown = with(&b, |c| messages(c, &a.me, 10));
    assert_eq!(shown.len(), 1);
    assert_eq!(text(&shown[0]), "hello");
    assert!(shown[0].edited);
    let sender_view = with(&a, |c| messages(c, &b.me, 10));
    assert_eq!(
        sender_view
            .iter()
            .map(|m| (m.body.clone(), m.deleted))
            .collect::<Vec<_>>(),
        vec![(b"hello".to_vec(), false), (vec![], true)]
    );
}

#[test]
fn the_outbox_survives_a_restart_and_refusals_fail_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("peerns.db");
    let (me, peer) = (
        Identity::generate().fingerprint(),
        Identity::generate().fingerprint(),
    );
    {
        let store = Store::open(&path).unwrap();
        for i in 0..3u64 {
            store
                .with_conn(|c| Ok(enqueue(c, &me, &peer, OpKind::Text, None, b"x", i).unwrap()))
                .unwrap();
        }
    }
    let store = Store::open(&path).unwrap();
    let ops = store
        .with_conn(|c| Ok(outbox(c, &me, &peer, 1, 10).unwrap()))
        .unwrap();
    assert_eq!(ops.iter().map(|o| o.seq).collect::<Vec<_>>(), [1, 2, 3]);
    let failed = store
        .with_conn(|c| Ok(fail_outbox(c, &peer).unwrap()))
        .unwrap();
    assert_eq!(failed, 3);
    let shown = store
        .with_conn(|c| Ok(messages(c, &peer, 10).unwrap()))
        .unwrap();
    assert!(shown.iter().all(|m| m.status == Status::Failed));
    assert!(
        store
            .with_conn(|c| Ok(with_outbox(c).unwrap()))
            .unwrap()
            .is_empty()
    );
}

/// Peers may name any seq: the largest ones neither wrap into old ops nor move any counter.
#[test]
fn huge_seqs_from_a_peer_are_harmless() {
    let (a, b) = (side(), side());
    for i in 1..=3 {
        with(&a, |c| {
            enqueue(c, &a.me, &b.me, OpKind::Text, None, b"m", i)
        });
    }
    for from in [u64::MAX, u64::MAX - 1, 1 << 63, (1 << 63) + 1] {
        assert!(
            with(&a, |c| outbox(c, &a.me, &b.me, from, 100)).is_empty(),
            "outbox from {from}"
        );
    }
    // Acknowledged or read beyond what was sent: clamped to our last op.
    assert_eq!(with(&a, |c| acknowledge(c, &b.me, u64::MAX)), Some((1, 3)));
    assert_eq!(with(&a, |c| peer_read(c, &b.me, u64::MAX)), Some(3));
    // An op numbered u64::MAX is a gap, not stored.
    let mut ops = with(&a, |c| outbox(c, &a.me, &b.me, 1, 1));
    ops[0].seq = u64::MAX;
    let r = with(&b, |c| receive(c, &a.me, &ops, 5));
    assert_eq!((r.new.len(), r.ack, r.resync), (0, 0, true));
}

#[test]
fn failed_ops_go_only_as_fillers_before_an_op_that_may_still_arrive() {
    let (a, b) = (side(), side());
    for (i, t) in ["one", "two"].iter().enumerate() {
        with(&a, |c| {
            enqueue(c, &a.me, &b.me, OpKind::Text, None, t.as_bytes(), i as u64)
        });
    }
    // The contact refused them (it had removed us): nothing to send while it may refuse still.
    assert_eq!(with(&a, |c| fail_outbox(c, &b.me)), 2);
    assert_eq!(with(&a, |c| fail_outbox(c, &b.me)), 0);
    assert!(with(&a, |c| outbox(c, &a.me, &b.me, 1, 10)).is_empty());
    // A new message: the failed ones go first as deletes of themselves, and arrive as nothing.
    let (three, _) = with(&a, |c| {
        enqueue(c, &a.me, &b.me, OpKind::Text, None, b"three", 3)
    });
    let ops = with(&a, |c| outbox(c, &a.me, &b.me, 1, 10));
    let kinds: Vec<_> = ops
        .iter()
        .map(|o| (o.seq, o.kind, o.target == Some(o.id)))
        .collect();
    assert_eq!(
        kinds,
        [
            (1, OpKind::Delete, true),
            (2, OpKind::Delete, true),
            (3, OpKind::Text, false)
        ]
    );
    let r = with(&b, |c| receive(c, &a.me, &ops, 4));
    assert_eq!((r.ack, r.new.len()), (three.seq, 1));
    let shown = with(&b, |c| messages(c, &a.me, 10));
    assert_eq!(shown.iter().map(text).collect::<Vec<_>>(), ["three"]);
}
