//! Messages that arrive together (`GroupInput::Batch`, a page) have their signatures checked
//! in one batch, with exactly the outcome of checking them one by one.

use std::time::Instant;

use super::tests::{engine, id, linked, log_with, refusals};
use super::*;
use crate::groups::message::MsgError;

/// `n` messages by `author` (its engine stores them as its own).
fn authored(author: &mut Engine<MemHistory>, n: usize, now: Instant) -> Vec<SignedMessage> {
    (0..n)
        .map(|i| {
            author
                .send_message(Body::Text(format!("m{i}")), 5, now)
                .unwrap()
        })
        .collect()
}

use crate::groups::history::MemHistory;

/// `m` takes `msgs` as one batch relayed by its router `r` (what it did before is dropped).
fn relayed(
    m: &mut Engine<MemHistory>,
    r: &Engine<MemHistory>,
    msgs: Vec<SignedMessage>,
    now: Instant,
) {
    m.drain_actions();
    m.handle(
        GroupInput::Batch {
            peer: r.identity.fingerprint(),
            msgs,
        },
        now,
    );
}

/// An author `a`, a router `r` and a member `m` linked to it, in a group of the three.
fn trio(now: Instant) -> (Engine<MemHistory>, Engine<MemHistory>, Engine<MemHistory>) {
    let ids = [id(1), id(2), id(3)];
    let log = log_with(&ids);
    let (a, mut r, mut m) = (
        engine(&ids[0], &log),
        engine(&ids[1], &log),
        engine(&ids[2], &log),
    );
    linked(&mut r, &mut m, now);
    (a, r, m)
}

#[test]
fn a_relayed_batch_is_checked_at_once_and_stored() {
    let ids = [id(1), id(2), id(3), id(4)];
    let log = log_with(&ids);
    let now = Instant::now();
    let (mut a, mut b, mut r, mut m) = (
        engine(&ids[0], &log),
        engine(&ids[3], &log),
        engine(&ids[1], &log),
        engine(&ids[2], &log),
    );
    linked(&mut r, &mut m, now);
    let mut msgs = authored(&mut a, 12, now);
    msgs.extend(authored(&mut b, 12, now));
    relayed(&mut m, &r, msgs, now);
    assert!(refusals(&m.drain_actions()).is_empty());
    assert_eq!(m.stats().stored, 24);
    assert_eq!(m.stats().batched, 24);
    assert_eq!(m.stats().batch_failures, 0);
}

#[test]
fn a_forged_message_in_a_batch_is_caught_as_alone() {
    let now = Instant::now();
    let (mut a, r, mut m) = trio(now);
    let mut msgs = authored(&mut a, 10, now);
    msgs[4].msg.body = Body::Text("forged".into());
    relayed(&mut m, &r, msgs, now);
    let actions = m.drain_actions();
    // The batch fails; checked one by one, the four before the forgery are good, the forgery
    // is caught, and the router that relayed it is dropped (what follows is not taken).
    assert_eq!(m.stats().batch_failures, 1);
    assert_eq!(m.stats().batched, 0);
    assert_eq!(m.stats().stored, 4);
    assert!(
        refusals(&actions).contains(&Refusal::Message(MsgError::BadSignature)),
        "{:?}",
        refusals(&actions)
    );
    assert!(
        actions
            .iter()
            .any(|a| matches!(a, GroupAction::Drop { .. }))
    );
    assert_eq!(m.router_peer(), None);
}

#[test]
fn the_router_checks_a_members_batch_at_once_and_refuses_what_is_not_its_own() {
    let now = Instant::now();
    let (mut a, mut r, mut m) = trio(now);
    let mut msgs = authored(&mut m, 6, now);
    // Someone else's message slipped into the member's batch.
    msgs.insert(3, authored(&mut a, 1, now).remove(0));
    r.drain_actions();
    r.handle(
        GroupInput::Batch {
            peer: m.identity.fingerprint(),
            msgs,
        },
        now,
    );
    assert_eq!(refusals(&r.drain_actions()), vec![Refusal::NotAuthor]);
    assert_eq!(r.stats().stored, 6);
    // The other author's message was among those checked; the batch held.
    assert_eq!(r.stats().batched, 7);
}

#[test]
fn duplicates_and_messages_of_outsiders_stay_out_of_the_batch() {
    let outsider = id(9);
    let now = Instant::now();
    let (mut a, r, mut m) = trio(now);
    let first = authored(&mut a, 3, now);
    let rf = r.identity.fingerprint();
    m.handle(
        GroupInput::Batch {
            peer: rf,
            msgs: first.clone(),
        },
        now,
    );
    assert_eq!(m.stats().batched, 3);
    let stranger = SignedMessage::sign(
        &outsider,
        GroupMessage {
            group: m.group(),
            author: [0; 32],
            seq: 1,
            lamport: 1,
            sent_ms: 1,
            body: Body::Text("hi".into()),
        },
    );
    let mut again = first;
    again.extend(authored(&mut a, 2, now));
    m.drain_actions();
    m.handle(
        GroupInput::Batch {
            peer: rf,
            msgs: again,
        },
        now,
    );
    assert_eq!(m.stats().batched, 5, "only the two new ones were checked");
    assert_eq!(m.stats().stored, 5);
    m.handle(
        GroupInput::Batch {
            peer: rf,
            msgs: vec![stranger],
        },
        now,
    );
    assert_eq!(m.stats().stored, 5);
}
