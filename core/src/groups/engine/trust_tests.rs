//! What a peer that is not (known to be) a member can do to a member, and what a member can
//! do to everyone's clocks; proposals that outlive the router they were made for; former
//! members that keep coming back.

use std::time::{Duration, Instant};

use super::tests::{deliver, engine, id, linked, log_with, refusals, removing, sends};
use super::*;
use crate::groups::history::MemHistory;
use crate::groups::message::MsgError;

fn frame(e: &mut Engine<MemHistory>, peer: Fingerprint, f: GroupFrame, now: Instant) {
    e.handle(
        GroupInput::Frame {
            peer,
            frame: Box::new(f),
        },
        now,
    );
}

fn routing_hello(group: GroupId) -> GroupFrame {
    GroupFrame::Hello {
        group,
        log_len: 0,
        head: [0; 32],
        vv: VersionVector::default(),
        routing: true,
    }
}

fn sent_log(out: &[(Fingerprint, GroupFrame)]) -> bool {
    out.iter()
        .any(|(_, f)| matches!(f, GroupFrame::LogEntries { .. }))
}

#[test]
fn a_stranger_that_says_it_routes_cannot_cut_a_member_off_its_router() {
    let ids = [id(1), id(2), id(3)];
    let log = log_with(&ids);
    let now = Instant::now();
    let (mut r, mut m) = (engine(&ids[1], &log), engine(&ids[2], &log));
    linked(&mut r, &mut m, now);
    let x = id(9).fingerprint();
    assert!(!m.takes_router(&x));
    m.handle(GroupInput::RouterUp { router: x }, now);
    frame(&mut m, x, routing_hello(log.group()), now);
    assert!(!sent_log(&sends(&mut m)), "the stranger got our log");
    assert_eq!(m.router_peer(), Some(ids[1].fingerprint()));
    // The real router's relays are still taken.
    r.send_message(Body::Text("still here".into()), 5, now)
        .unwrap();
    deliver(&mut r, &mut m, now);
    assert_eq!(m.history().len(), 1);
}

#[test]
fn a_router_our_log_cannot_place_sees_neither_our_log_nor_our_authors() {
    let ids = [id(1), id(2)];
    let log = log_with(&ids);
    let now = Instant::now();
    let mut m = engine(&ids[1], &log);
    m.send_message(Body::Text("mine".into()), 5, now).unwrap();
    m.drain_actions();
    // No router yet: one we cannot place is taken, for log sync only.
    let x = id(9).fingerprint();
    assert!(m.takes_router(&x));
    m.handle(GroupInput::RouterUp { router: x }, now);
    frame(&mut m, x, routing_hello(log.group()), now);
    let group = log.group();
    frame(&mut m, x, GroupFrame::LogWant { group, from: 0 }, now);
    m.handle_timeout(now + Duration::from_secs(3));
    let out = sends(&mut m);
    assert!(!sent_log(&out), "the stranger got our log");
    for (_, f) in &out {
        if let GroupFrame::Hello { vv, .. } = f {
            assert_eq!(vv.total(), 0, "our Hello named the authors");
        }
    }
    assert!(
        out.iter()
            .any(|(_, f)| matches!(f, GroupFrame::Hello { .. }))
    );
}

#[test]
fn a_longer_log_under_another_create_entry_is_not_adopted() {
    let ids = [id(1), id(2)];
    let log = log_with(&ids);
    let now = Instant::now();
    let mut m = engine(&ids[1], &log);
    // Someone who knows the ID signs a log of their own under it, longer than ours.
    let x = id(9);
    let mut forged = Log::create_with_id(log.group(), &x, "mine now", 1);
    for n in [
        ids[1].fingerprint(),
        id(10).fingerprint(),
        id(11).fingerprint(),
    ] {
        let e = forged.sign_next(&x, LogOp::Invite(n), 2);
        forged.append(e).unwrap();
    }
    m.handle(
        GroupInput::RouterUp {
            router: x.fingerprint(),
        },
        now,
    );
    let entries = forged.entries().to_vec();
    let group = log.group();
    let done = true;
    let f = GroupFrame::LogEntries {
        group,
        from: 0,
        entries,
        done,
    };
    frame(&mut m, x.fingerprint(), f, now);
    assert_eq!(m.log(), &log);
    assert_eq!(
        refusals(&m.drain_actions()),
        vec![Refusal::Log(crate::groups::log::LogError::BadCreate)]
    );
}

#[test]
fn an_invitee_still_gets_the_log_from_a_router_it_cannot_place() {
    let ids = [id(1), id(2), id(3)];
    let full = log_with(&ids);
    // The invitee's log is the link's `Create` alone: it cannot place the router.
    let mine = Log::from_create(full.entries()[0].clone()).unwrap();
    let now = Instant::now();
    let (mut r, mut i) = (engine(&ids[1], &full), engine(&ids[2], &mine));
    linked(&mut r, &mut i, now);
    assert_eq!(i.log(), &full);
}

#[test]
fn a_router_whose_log_lacks_it_greets_a_member_and_learns_the_log_from_it() {
    let ids = [id(1), id(2), id(3)];
    let full = log_with(&ids);
    // The invitee's log is the link's `Create` alone, and it won the election.
    let mine = Log::from_create(full.entries()[0].clone()).unwrap();
    let now = Instant::now();
    let (mut r, mut m) = (engine(&ids[2], &mine), engine(&ids[1], &full));
    m.send_message(Body::Text("private".into()), 5, now)
        .unwrap();
    m.drain_actions();
    r.handle(GroupInput::BecameRouter, now);
    assert!(r.routes_unplaced());
    r.handle(
        GroupInput::PeerUp {
            peer: ids[1].fingerprint(),
        },
        now,
    );
    let greeting = sends(&mut r);
    assert!(
        greeting.iter().any(
            |(_, f)| matches!(f, GroupFrame::Hello { routing: true, vv, .. } if vv.total() == 0)
        ),
        "a router whose log lacks it greets the peers it dials, naming no authors"
    );
    linked(&mut r, &mut m, now);
    assert_eq!(r.log(), &full);
    assert!(!r.routes_unplaced());
}

#[test]
fn a_proposal_made_while_no_router_was_linked_reaches_the_next_one() {
    let ids = [id(1), id(2), id(3)];
    let log = log_with(&ids);
    let now = Instant::now();
    let (mut a, mut r) = (engine(&ids[0], &log), engine(&ids[1], &log));
    let member = ids[2].fingerprint();
    a.propose(LogOp::Remove { member, cutoff: 0 }, 5).unwrap();
    assert!(sends(&mut a).is_empty());
    linked(&mut r, &mut a, now);
    assert!(!r.log().state().is_member(&member), "the removal was lost");
    assert!(!a.log().state().is_member(&member));
}

#[test]
fn a_lost_proposal_is_sent_again() {
    let ids = [id(1), id(2), id(3)];
    let log = log_with(&ids);
    let now = Instant::now();
    let (mut a, mut r) = (engine(&ids[0], &log), engine(&ids[1], &log));
    linked(&mut r, &mut a, now);
    let member = ids[2].fingerprint();
    a.propose(LogOp::Remove { member, cutoff: 0 }, 5).unwrap();
    sends(&mut a); // lost
    a.handle_timeout(now + Duration::from_secs(3));
    deliver(&mut a, &mut r, now + Duration::from_secs(3));
    assert!(!r.log().state().is_member(&member), "the removal was lost");
}

/// The proposals `e` last reported for storing.
fn reported(actions: &[GroupAction]) -> Option<Vec<SignedEntry>> {
    actions.iter().rev().find_map(|a| match a {
        GroupAction::Event(GroupEvent::Proposals(p)) => Some(p.clone()),
        _ => None,
    })
}

#[test]
fn a_proposal_outlives_a_restart_and_leaves_the_store_once_appended() {
    let ids = [id(1), id(2), id(3), id(4)];
    let log = log_with(&ids);
    let now = Instant::now();
    let (gone, late) = (ids[2].fingerprint(), ids[3].fingerprint());
    let mut before = engine(&ids[0], &log);
    before
        .propose(
            LogOp::Remove {
                member: gone,
                cutoff: 0,
            },
            5,
        )
        .unwrap();
    let stored = reported(&before.drain_actions()).expect("the proposal reported for storing");
    assert_eq!(stored.len(), 1);
    assert!(reported(&before.drain_actions()).is_none(), "reported once");
    // The app stopped; meanwhile the router appended another change, so ours is signed again.
    let mut moved = log.clone();
    let entry = moved.sign_next(
        &ids[0],
        LogOp::Remove {
            member: late,
            cutoff: 0,
        },
        6,
    );
    moved.append(entry).unwrap();
    let mut r = engine(&ids[1], &moved);
    let mut after = engine(&ids[0], &log);
    after.restore_proposals(stored);
    let (rf, af) = (ids[1].fingerprint(), ids[0].fingerprint());
    r.handle(GroupInput::BecameRouter, now);
    r.handle(GroupInput::PeerUp { peer: af }, now);
    after.handle(GroupInput::RouterUp { router: rf }, now);
    let mut last_report = None;
    for _ in 0..6 {
        for a in r.drain_actions() {
            if let GroupAction::Send { frame: f, .. } = a {
                frame(&mut after, rf, f, now);
            }
        }
        let actions = after.drain_actions();
        last_report = reported(&actions).or(last_report);
        for a in actions {
            if let GroupAction::Send { frame: f, .. } = a {
                frame(&mut r, af, f, now);
            }
        }
    }
    assert!(
        !r.log().state().is_member(&gone),
        "the removal was lost in the restart"
    );
    assert!(!r.log().state().is_member(&late));
    assert_eq!(
        last_report,
        Some(vec![]),
        "an appended proposal stays stored"
    );
}

fn signed(by: &Identity, group: GroupId, seq: u64, lamport: u64) -> SignedMessage {
    SignedMessage::sign(
        by,
        GroupMessage {
            group,
            author: [0; 32],
            seq,
            lamport,
            sent_ms: 1,
            body: Body::Text("t".into()),
        },
    )
}

#[test]
fn a_member_cannot_use_up_everyones_clock() {
    let ids = [id(1), id(2), id(3)];
    let log = log_with(&ids);
    let now = Instant::now();
    let (mut r, mut m) = (engine(&ids[1], &log), engine(&ids[2], &log));
    linked(&mut r, &mut m, now);
    let (a, g) = (ids[0].fingerprint(), log.group());
    r.handle(GroupInput::PeerUp { peer: a }, now);
    r.drain_actions();
    // A leap to the top of the range, or far above what the router holds, is refused.
    frame(
        &mut r,
        a,
        GroupFrame::Msg(signed(&ids[0], g, 1, MAX_LAMPORT)),
        now,
    );
    frame(
        &mut r,
        a,
        GroupFrame::Msg(signed(&ids[0], g, 1, 1 << 40)),
        now,
    );
    assert_eq!(
        refusals(&r.drain_actions()),
        vec![Refusal::Message(MsgError::ClockLeap); 2]
    );
    // So is one in a page answering the router's `Want`, but not the others in it.
    let page = GroupFrame::Page {
        group: g,
        msgs: vec![signed(&ids[0], g, 1, 1 << 40)],
        more: false,
    };
    frame(&mut r, a, page, now);
    assert!(r.history().is_empty());
    frame(&mut r, a, GroupFrame::Msg(signed(&ids[0], g, 1, 1000)), now);
    assert_eq!(r.history().len(), 1, "a modest leap is fine");
    // A member handed a used-up clock by an older router does not sign what nobody takes.
    frame(
        &mut m,
        ids[1].fingerprint(),
        GroupFrame::Msg(signed(&ids[0], g, 1, MAX_LAMPORT)),
        now,
    );
    assert_eq!(m.history().len(), 1);
    assert!(matches!(
        m.send_message(Body::Text("x".into()), 5, now),
        Err(SendError::Invalid(_))
    ));
}

#[test]
fn a_message_the_router_refuses_is_not_sent_again_every_second() {
    let ids = [id(1), id(2)];
    let log = log_with(&ids);
    let now = Instant::now();
    let (mut r, mut m) = (engine(&ids[0], &log), engine(&ids[1], &log));
    linked(&mut r, &mut m, now);
    m.send_message(Body::Text("x".into()), 5, now).unwrap();
    sends(&mut m);
    let refuse = GroupFrame::Refuse {
        group: log.group(),
        code: RefuseCode::Invalid,
        text: "no".into(),
    };
    frame(&mut m, ids[0].fingerprint(), refuse, now);
    let msgs = |m: &mut Engine<MemHistory>, at: Instant| {
        m.handle_timeout(at);
        sends(m)
            .iter()
            .filter(|(_, f)| matches!(f, GroupFrame::Msg(_)))
            .count()
    };
    assert_eq!(msgs(&mut m, now + Duration::from_millis(1500)), 0);
    assert_eq!(msgs(&mut m, now + Duration::from_millis(2500)), 1);
}

#[test]
fn a_former_member_that_keeps_linking_gets_the_log_once_a_while() {
    let ids = [id(1), id(2), id(3)];
    let log = removing(&log_with(&ids), &ids[0], ids[2].fingerprint());
    let now = Instant::now();
    let mut r = engine(&ids[0], &log);
    r.handle(GroupInput::BecameRouter, now);
    let gone = ids[2].fingerprint();
    assert!(r.gone_to_tell(&gone, now), "the router would dial it");
    for (secs, told) in [(0, true), (1, false), (31, true)] {
        let at = now + Duration::from_secs(secs);
        r.handle(GroupInput::PeerUp { peer: gone }, at);
        assert_eq!(sent_log(&sends(&mut r)), told, "at {secs} s");
        assert!(!r.gone_to_tell(&gone, at));
    }
    assert!(!r.gone_to_tell(&ids[1].fingerprint(), now), "a member");
}
