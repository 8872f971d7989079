//! Adversarial and protocol unit tests of one engine at a time, wired by hand.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;
use crate::chat::wire::MAX_TEXT;
use crate::groups::history::MemHistory;
use crate::groups::invite::{InviteError, InviteLink};
use crate::groups::message::MsgError;

pub(super) fn id(n: u8) -> Arc<Identity> {
    Arc::new(Identity::from_secret(&[n; 32], "peerns2-test"))
}

/// A group created by `ids[0]` with every other one invited.
pub(super) fn log_with(ids: &[Arc<Identity>]) -> Log {
    let mut log = Log::create_with_id(GroupId([3; 16]), &ids[0], "t", 1);
    for i in &ids[1..] {
        let e = log.sign_next(&ids[0], LogOp::Invite(i.fingerprint()), 2);
        log.append(e).unwrap();
    }
    log
}

pub(super) fn engine(idt: &Arc<Identity>, log: &Log) -> Engine<MemHistory> {
    Engine::new(
        EngineConfig::default(),
        idt.clone(),
        log.clone(),
        MemHistory::default(),
    )
}

pub(super) fn sends(e: &mut Engine<MemHistory>) -> Vec<(Fingerprint, GroupFrame)> {
    e.drain_actions()
        .into_iter()
        .filter_map(|a| match a {
            GroupAction::Send { peer, frame } => Some((peer, frame)),
            _ => None,
        })
        .collect()
}

/// Hands every frame `from` sends to `to`.
pub(super) fn deliver(from: &mut Engine<MemHistory>, to: &mut Engine<MemHistory>, now: Instant) {
    let peer = from.identity.fingerprint();
    for (_, f) in sends(from) {
        to.handle(
            GroupInput::Frame {
                peer,
                frame: Box::new(f),
            },
            now,
        );
    }
}

/// `log` with `member` removed by `admin` (cutoff 0).
pub(super) fn removing(log: &Log, admin: &Identity, member: Fingerprint) -> Log {
    let mut log = log.clone();
    let e = log.sign_next(admin, LogOp::Remove { member, cutoff: 0 }, 3);
    log.append(e).unwrap();
    log
}

pub(super) fn refusals(actions: &[GroupAction]) -> Vec<Refusal> {
    actions
        .iter()
        .filter_map(|a| match a {
            GroupAction::Event(GroupEvent::Refused { reason, .. }) => Some(reason.clone()),
            _ => None,
        })
        .collect()
}

fn text(m: &SignedMessage) -> &str {
    match &m.msg.body {
        Body::Text(t) => t,
        Body::File(_) => "",
    }
}

/// A router `r` and a member `m` linked, handshake done.
pub(super) fn linked(r: &mut Engine<MemHistory>, m: &mut Engine<MemHistory>, now: Instant) {
    let (rf, mf) = (r.identity.fingerprint(), m.identity.fingerprint());
    r.handle(GroupInput::BecameRouter, now);
    r.handle(GroupInput::PeerUp { peer: mf }, now);
    m.handle(GroupInput::RouterUp { router: rf }, now);
    for _ in 0..4 {
        for (_, f) in sends(r) {
            m.handle(
                GroupInput::Frame {
                    peer: rf,
                    frame: Box::new(f),
                },
                now,
            );
        }
        for (_, f) in sends(m) {
            r.handle(
                GroupInput::Frame {
                    peer: mf,
                    frame: Box::new(f),
                },
                now,
            );
        }
    }
    assert_eq!(m.router_peer(), Some(rf));
}

#[test]
fn a_tampering_router_is_caught_and_nothing_is_stored() {
    let ids = [id(1), id(2), id(3)];
    let log = log_with(&ids);
    let now = Instant::now();
    let (mut a, mut r, mut m) = (
        engine(&ids[0], &log),
        engine(&ids[1], &log),
        engine(&ids[2], &log),
    );
    linked(&mut r, &mut m, now);
    let sent = a
        .send_message(Body::Text("pay Bob 10".into()), 5, now)
        .unwrap();
    let mut forged = sent.clone();
    forged.msg.body = Body::Text("pay Eve 10".into());
    m.handle(
        GroupInput::Frame {
            peer: r.identity.fingerprint(),
            frame: Box::new(GroupFrame::Msg(forged)),
        },
        now,
    );
    let actions = m.drain_actions();
    assert_eq!(
        refusals(&actions),
        vec![Refusal::Message(MsgError::BadSignature)]
    );
    assert!(
        actions
            .iter()
            .any(|a| matches!(a, GroupAction::Drop { .. })),
        "the router is dropped"
    );
    assert!(m.history().is_empty());
    assert_eq!(m.router_peer(), None);
}

#[test]
fn a_relay_that_outruns_our_log_sync_is_not_taken_for_tampering() {
    // The member's log knows the router but not yet the newest invitee, whose message the
    // router relays before the log entries arrive.
    let ids = [id(1), id(2), id(3)];
    let full = log_with(&ids);
    let behind = log_with(&ids[..2]);
    let now = Instant::now();
    let (mut r, mut m, mut c) = (
        engine(&ids[0], &full),
        engine(&ids[1], &behind),
        engine(&ids[2], &full),
    );
    let rf = ids[0].fingerprint();
    r.handle(GroupInput::BecameRouter, now);
    m.handle(GroupInput::RouterUp { router: rf }, now);
    m.drain_actions();
    let msg = c.send_message(Body::Text("hi".into()), 5, now).unwrap();
    m.handle(
        GroupInput::Frame {
            peer: rf,
            frame: Box::new(GroupFrame::Msg(msg)),
        },
        now,
    );
    let actions = m.drain_actions();
    assert!(
        !actions
            .iter()
            .any(|a| matches!(a, GroupAction::Drop { .. })),
        "the router is kept"
    );
    assert!(actions.iter().any(|a| matches!(
        a,
        GroupAction::Send {
            frame: GroupFrame::LogWant { from: 2, .. },
            ..
        }
    )));
    assert_eq!(m.router_peer(), Some(rf));
    assert!(m.history().is_empty());
}

#[test]
fn display_order_does_not_depend_on_delivery_order() {
    let ids = [id(1), id(2), id(3)];
    let log = log_with(&ids);
    let now = Instant::now();
    let (mut a, mut b) = (engine(&ids[0], &log), engine(&ids[1], &log));
    let mut msgs = vec![];
    for i in 0..5 {
        msgs.push(a.send_message(Body::Text(format!("a{i}")), i, now).unwrap());
        msgs.push(b.send_message(Body::Text(format!("b{i}")), i, now).unwrap());
    }
    // Two members get the same messages in opposite orders (each author's in seq order, as
    // a router must, or gaps are held back until filled).
    let (mut x, mut y) = (engine(&ids[2], &log), engine(&ids[2], &log));
    let peer = ids[0].fingerprint();
    for m in &msgs {
        x.accept(m.clone(), peer).unwrap();
    }
    for m in msgs.iter().rev() {
        let _ = y.accept(m.clone(), peer);
    }
    assert_eq!(x.history().ordered(), y.history().ordered());
    assert_eq!(
        y.history().len(),
        10,
        "out-of-order ones were held, then stored"
    );
}

#[test]
fn gaps_are_detected_and_filled_duplicates_and_replays_ignored() {
    let ids = [id(1), id(2), id(3)];
    let log = log_with(&ids);
    let now = Instant::now();
    let (mut a, mut r, mut m) = (
        engine(&ids[0], &log),
        engine(&ids[1], &log),
        engine(&ids[2], &log),
    );
    linked(&mut r, &mut m, now);
    let m1 = a.send_message(Body::Text("1".into()), 1, now).unwrap();
    let m2 = a.send_message(Body::Text("2".into()), 2, now).unwrap();
    let rf = r.identity.fingerprint();
    // The router skips message 1: the member holds 2 and asks for what it lacks.
    m.handle(
        GroupInput::Frame {
            peer: rf,
            frame: Box::new(GroupFrame::Msg(m2.clone())),
        },
        now,
    );
    assert!(m.history().is_empty());
    let out = sends(&mut m);
    assert!(
        matches!(out.as_slice(), [(_, GroupFrame::Want { .. })]),
        "{out:?}"
    );
    m.handle(
        GroupInput::Frame {
            peer: rf,
            frame: Box::new(GroupFrame::Msg(m1.clone())),
        },
        now,
    );
    assert_eq!(
        m.history().ordered().iter().map(text).collect::<Vec<_>>(),
        ["1", "2"]
    );
    // A replay changes nothing.
    m.handle(
        GroupInput::Frame {
            peer: rf,
            frame: Box::new(GroupFrame::Msg(m1)),
        },
        now,
    );
    assert_eq!(m.history().len(), 2);
    assert_eq!(m.stats().duplicates, 1);
}

#[test]
fn outsiders_are_refused_and_their_messages_never_stored() {
    let ids = [id(1), id(2)];
    let log = log_with(&ids);
    let outsider = id(9);
    let now = Instant::now();
    let mut r = engine(&ids[0], &log);
    r.handle(GroupInput::BecameRouter, now);
    r.drain_actions();
    let of = outsider.fingerprint();
    r.handle(GroupInput::PeerUp { peer: of }, now);
    assert!(
        sends(&mut r).is_empty(),
        "no hello (no member list) for an unadmitted link"
    );
    // Its own log cannot make it a member: it is just our log, so it is turned away.
    let mut fake = engine(
        &outsider,
        &Log::create_with_id(GroupId([3; 16]), &outsider, "t", 1),
    );
    let msg = fake.send_message(Body::Text("hi".into()), 1, now).unwrap();
    r.handle(
        GroupInput::Frame {
            peer: of,
            frame: Box::new(GroupFrame::Msg(msg)),
        },
        now,
    );
    let actions = r.drain_actions();
    assert_eq!(refusals(&actions), vec![Refusal::NotMember]);
    assert!(
        actions
            .iter()
            .any(|a| matches!(a, GroupAction::Drop { peer, .. } if *peer == of))
    );
    assert!(r.history().is_empty());
    // Someone else's invite link is refused too.
    let mut log2 = log.clone();
    let invite = log2.sign_next(&ids[0], LogOp::Invite(id(5).fingerprint()), 3);
    log2.append(invite.clone()).unwrap();
    let link = InviteLink::decode(&InviteLink::new(&log2, &invite).unwrap().encode()).unwrap();
    assert_eq!(link.verify_for(&of), Err(InviteError::NotForUs));
    assert!(link.verify_for(&id(5).fingerprint()).is_ok());
}

#[test]
fn members_refuse_a_former_member_as_router() {
    let ids = [id(1), id(2), id(3)];
    let mut log = log_with(&ids);
    let e = log.sign_next(
        &ids[0],
        LogOp::Remove {
            member: ids[1].fingerprint(),
            cutoff: 0,
        },
        3,
    );
    log.append(e).unwrap();
    let now = Instant::now();
    let mut m = engine(&ids[2], &log);
    m.handle(
        GroupInput::RouterUp {
            router: ids[1].fingerprint(),
        },
        now,
    );
    let actions = m.drain_actions();
    assert!(
        actions.contains(&GroupAction::Event(GroupEvent::RouterRefused {
            router: ids[1].fingerprint()
        }))
    );
    assert_eq!(m.router_peer(), None);
    // And as router it admits no former member.
    let mut r = engine(&ids[0], &log);
    r.handle(GroupInput::BecameRouter, now);
    r.handle(
        GroupInput::PeerUp {
            peer: ids[1].fingerprint(),
        },
        now,
    );
    assert_eq!(refusals(&r.drain_actions()), vec![Refusal::NotMember]);
}

#[test]
fn bad_messages_are_refused_with_a_reason() {
    let ids = [id(1), id(2), id(3)];
    let log = log_with(&ids);
    let now = Instant::now();
    let (mut r, mut m) = (engine(&ids[0], &log), engine(&ids[1], &log));
    linked(&mut r, &mut m, now);
    let mf = m.identity.fingerprint();
    // Oversized.
    let big = SignedMessage::sign(
        &ids[1],
        GroupMessage {
            group: log.group(),
            author: [0; 32],
            seq: 1,
            lamport: 1,
            sent_ms: 0,
            body: Body::Text("x".repeat(MAX_TEXT + 1)),
        },
    );
    assert_eq!(r.accept(big, mf), Err(Refusal::Message(MsgError::TooLarge)));
    // Another member's message published directly.
    let mut c = engine(&ids[2], &log);
    let theirs = c.send_message(Body::Text("c".into()), 1, now).unwrap();
    r.drain_actions();
    r.handle(
        GroupInput::Frame {
            peer: mf,
            frame: Box::new(GroupFrame::Msg(theirs)),
        },
        now,
    );
    assert_eq!(refusals(&r.drain_actions()), vec![Refusal::NotAuthor]);
    // Another group's message.
    let other = SignedMessage::sign(
        &ids[1],
        GroupMessage {
            group: GroupId([4; 16]),
            author: [0; 32],
            seq: 1,
            lamport: 1,
            sent_ms: 0,
            body: Body::Text("x".into()),
        },
    );
    assert_eq!(
        r.accept(other, mf),
        Err(Refusal::Message(MsgError::WrongGroup))
    );
    // A Lamport clock that does not grow along the author's stream.
    let ok = m.send_message(Body::Text("1".into()), 1, now).unwrap();
    let mut back = SignedMessage::sign(
        &ids[1],
        GroupMessage {
            seq: 2,
            ..ok.msg.clone()
        },
    );
    back.msg.lamport = ok.msg.lamport;
    let back = SignedMessage::sign(&ids[1], back.msg);
    r.accept(ok, mf).unwrap();
    assert_eq!(
        r.accept(back, mf),
        Err(Refusal::Message(MsgError::BadClock))
    );
    assert_eq!(r.history().len(), 1);
}

#[test]
fn removal_purges_messages_beyond_the_cutoff_everywhere() {
    let ids = [id(1), id(2), id(3)];
    let log = log_with(&ids);
    let now = Instant::now();
    let (mut r, mut m) = (engine(&ids[0], &log), engine(&ids[2], &log));
    let mut victim = engine(&ids[1], &log);
    let v1 = victim.send_message(Body::Text("1".into()), 1, now).unwrap();
    let v2 = victim.send_message(Body::Text("2".into()), 2, now).unwrap();
    let vf = ids[1].fingerprint();
    m.accept(v1.clone(), vf).unwrap();
    m.accept(v2.clone(), vf).unwrap();
    r.accept(v1, vf).unwrap();
    linked(&mut r, &mut m, now);
    // The admin (router) removes the victim keeping only its first message.
    r.propose(
        LogOp::Remove {
            member: vf,
            cutoff: 1,
        },
        9,
    )
    .unwrap();
    for (_, f) in sends(&mut r) {
        m.handle(
            GroupInput::Frame {
                peer: ids[0].fingerprint(),
                frame: Box::new(f),
            },
            now,
        );
    }
    assert!(m.log().state().gone.contains_key(&vf));
    assert_eq!(m.history().len(), r.history().len());
    assert_eq!(m.version_vector().get(&vf), 1);
    assert_eq!(m.accept(v2, vf), Err(Refusal::Message(MsgError::NotMember)));
}

#[test]
fn a_stale_proposal_is_signed_again_on_the_new_head() {
    let ids = [id(1), id(2), id(3)];
    let mut log = log_with(&ids);
    let e = log.sign_next(&ids[0], LogOp::Promote(ids[1].fingerprint()), 3);
    log.append(e).unwrap();
    let now = Instant::now();
    let (mut r, mut b) = (engine(&ids[0], &log), engine(&ids[1], &log));
    linked(&mut r, &mut b, now);
    // Both admins add someone at once; the router's own lands first.
    let theirs = b.propose(LogOp::Invite(id(7).fingerprint()), 4).unwrap();
    r.propose(LogOp::Invite(id(8).fingerprint()), 4).unwrap();
    let rf = ids[0].fingerprint();
    let bf = ids[1].fingerprint();
    for _ in 0..6 {
        for (_, f) in sends(&mut b) {
            r.handle(
                GroupInput::Frame {
                    peer: bf,
                    frame: Box::new(f),
                },
                now,
            );
        }
        for (_, f) in sends(&mut r) {
            b.handle(
                GroupInput::Frame {
                    peer: rf,
                    frame: Box::new(f),
                },
                now,
            );
        }
    }
    let s = r.log().state();
    assert!(s.is_member(&id(7).fingerprint()) && s.is_member(&id(8).fingerprint()));
    assert_ne!(
        r.log().hash_at(theirs.entry.index as usize),
        Some(theirs.hash())
    );
    assert_eq!(r.log(), b.log());
}

#[test]
fn a_fork_from_two_routers_converges_and_keeps_both_changes() {
    let ids = [id(1), id(2), id(3)];
    let mut log = log_with(&ids);
    let e = log.sign_next(&ids[0], LogOp::Promote(ids[1].fingerprint()), 3);
    log.append(e).unwrap();
    let now = Instant::now();
    let (mut a, mut b) = (engine(&ids[0], &log), engine(&ids[1], &log));
    // A partition: both route, each admin invites someone.
    a.handle(GroupInput::BecameRouter, now);
    b.handle(GroupInput::BecameRouter, now);
    a.propose(LogOp::Invite(id(7).fingerprint()), 4).unwrap();
    b.propose(LogOp::Invite(id(8).fingerprint()), 4).unwrap();
    assert_ne!(a.log().head(), b.log().head());
    a.drain_actions();
    b.drain_actions();
    // The partition heals: b steps down and joins a.
    b.handle(GroupInput::StoppedRouting, now);
    linked(&mut a, &mut b, now);
    let (af, bf) = (ids[0].fingerprint(), ids[1].fingerprint());
    for _ in 0..8 {
        for (_, f) in sends(&mut a) {
            b.handle(
                GroupInput::Frame {
                    peer: af,
                    frame: Box::new(f),
                },
                now,
            );
        }
        for (_, f) in sends(&mut b) {
            a.handle(
                GroupInput::Frame {
                    peer: bf,
                    frame: Box::new(f),
                },
                now,
            );
        }
    }
    assert_eq!(a.log(), b.log());
    let s = a.log().state();
    assert!(s.is_member(&id(7).fingerprint()), "a's invite survived");
    assert!(s.is_member(&id(8).fingerprint()), "b's invite survived");
    assert_eq!(a.log().len(), log.len() + 2);
}

#[test]
fn entries_that_fork_at_our_next_index_fetch_the_whole_log() {
    let ids = [id(1), id(2)];
    let base = log_with(&ids);
    let now = Instant::now();
    let mut ours = base.clone();
    let e = ours.sign_next(&ids[0], LogOp::Invite(id(7).fingerprint()), 4);
    ours.append(e).unwrap();
    let mut theirs = base.clone();
    for n in [8, 9] {
        let e = theirs.sign_next(&ids[0], LogOp::Invite(id(n).fingerprint()), 4);
        theirs.append(e).unwrap();
    }
    let mut m = engine(&ids[1], &ours);
    m.handle(
        GroupInput::RouterUp {
            router: ids[0].fingerprint(),
        },
        now,
    );
    m.drain_actions();
    // The router's entry at our next index names a head we do not have: asking again from
    // our end would get the same entries forever.
    let from = ours.len();
    m.handle(
        GroupInput::Frame {
            peer: ids[0].fingerprint(),
            frame: Box::new(GroupFrame::LogEntries {
                group: base.group(),
                from: from as u32,
                entries: theirs.entries()[from..].to_vec(),
                done: true,
            }),
        },
        now,
    );
    let out = sends(&mut m);
    assert!(
        matches!(out.as_slice(), [(_, GroupFrame::LogWant { from: 0, .. })]),
        "{out:?}"
    );
}

#[test]
fn a_burst_is_paced_and_windowed_and_a_flood_is_still_throttled() {
    let ids = [id(1), id(2)];
    let log = log_with(&ids);
    let now = Instant::now();
    let (mut r, mut m) = (engine(&ids[0], &log), engine(&ids[1], &log));
    linked(&mut r, &mut m, now);
    let (rf, mf) = (r.identity.fingerprint(), m.identity.fingerprint());
    // 1,000 at once: one window goes out, the rest waits for acknowledgements.
    for n in 0..1000 {
        m.send_message(Body::Text(format!("{n}")), 1, now).unwrap();
    }
    let out = sends(&mut m);
    assert_eq!(out.len(), 256, "one send window");
    let mut t = now;
    let mut frames = out;
    while !frames.is_empty() {
        t += std::time::Duration::from_millis(10);
        for (_, f) in frames.drain(..) {
            r.handle(
                GroupInput::Frame {
                    peer: mf,
                    frame: Box::new(f),
                },
                t,
            );
        }
        let actions = r.drain_actions();
        let refused = refusals(&actions);
        assert!(
            refused.is_empty(),
            "a paced member is never refused: {refused:?}"
        );
        for a in actions {
            if let GroupAction::Send { frame, .. } = a {
                m.handle(
                    GroupInput::Frame {
                        peer: rf,
                        frame: Box::new(frame),
                    },
                    t,
                );
            }
        }
        m.handle_timeout(t);
        frames = sends(&mut m);
    }
    assert_eq!(r.history().len(), 1000);
    assert_eq!(m.acked(), 1000);
    // 500 at once, the other 500 at 500/s.
    let took = t - now;
    assert!(took >= Duration::from_millis(900), "not paced: {took:?}");
    assert!(took <= Duration::from_millis(1500), "{took:?}");
    // A member that ignores the pace is throttled: the router's bucket holds 1,000.
    let mut flood = engine(&ids[1], &log);
    let msgs: Vec<SignedMessage> = (0..1100)
        .map(|n| {
            flood
                .send_message(Body::Text(format!("f{n}")), 1, t)
                .unwrap()
        })
        .collect();
    let mut r2 = engine(&ids[0], &log);
    r2.handle(GroupInput::BecameRouter, t);
    r2.handle(GroupInput::PeerUp { peer: mf }, t);
    for msg in msgs {
        r2.handle(
            GroupInput::Frame {
                peer: mf,
                frame: Box::new(GroupFrame::Msg(msg)),
            },
            t,
        );
    }
    let refused = refusals(&r2.drain_actions());
    assert_eq!(
        refused.iter().filter(|r| **r == Refusal::Throttled).count(),
        100
    );
    assert_eq!(r2.history().len(), 1000);
}

#[test]
fn an_open_room_admits_anyone_refuses_log_pages_and_a_restarted_member_learns_its_seq_first() {
    let (r_id, m_id, x_id) = (id(1), id(2), id(3));
    let room = Log::open_room(GroupId([5; 16]));
    let now = Instant::now();
    let (mut r, mut m) = (engine(&r_id, &room), engine(&m_id, &room));
    assert!(!m.knows_own_seq(), "no router yet");
    linked(&mut r, &mut m, now);
    assert!(m.knows_own_seq());
    for i in 0..3 {
        m.send_message(Body::Text(format!("hi {i}")), 1, now)
            .unwrap();
    }
    let mf = m_id.fingerprint();
    for _ in 0..3 {
        deliver(&mut m, &mut r, now);
        deliver(&mut r, &mut m, now);
    }
    assert_eq!(
        r.version_vector().get(&mf),
        3,
        "a stranger's messages are stored"
    );

    // The member restarts with nothing kept: it holds its sends until it has its 3 back.
    let mut again = engine(&m_id, &room);
    again.handle(
        GroupInput::RouterUp {
            router: r_id.fingerprint(),
        },
        now,
    );
    r.handle(GroupInput::PeerDown { peer: mf }, now);
    r.handle(GroupInput::PeerUp { peer: mf }, now);
    let mut rounds = 0;
    loop {
        deliver(&mut r, &mut again, now);
        if again.knows_own_seq() {
            break;
        }
        deliver(&mut again, &mut r, now);
        rounds += 1;
        assert!(rounds < 5, "never caught up with its own messages");
    }
    assert_eq!(again.version_vector().get(&mf), 3);
    let next = again
        .send_message(Body::Text("back".into()), 2, now)
        .unwrap();
    assert_eq!(next.msg.seq, 4, "no seq is used twice");

    // A log page for the room (here a real group's log with the same ID) is refused.
    let forged = Log::create_with_id(GroupId([5; 16]), &x_id, "mine", 1);
    r.drain_actions();
    r.handle(
        GroupInput::Frame {
            peer: mf,
            frame: Box::new(GroupFrame::LogEntries {
                group: GroupId([5; 16]),
                from: 0,
                entries: forged.entries().to_vec(),
                done: true,
            }),
        },
        now,
    );
    assert_eq!(
        refusals(&r.drain_actions()),
        vec![Refusal::Unexpected("log entries for an open room")]
    );
    assert!(r.log().is_open() && r.log().len() == 1);
}

#[test]
fn a_former_member_that_routes_learns_of_its_removal_and_departs() {
    let ids = [id(1), id(2), id(3)];
    let old = log_with(&ids);
    let log = removing(&old, &ids[0], ids[1].fingerprint());
    let now = Instant::now();
    // The removed member was offline: its log lacks the removal, and it won the election.
    let mut gone = engine(&ids[1], &old);
    let mut m = engine(&ids[2], &log);
    gone.handle(GroupInput::BecameRouter, now);
    gone.handle(
        GroupInput::PeerUp {
            peer: ids[2].fingerprint(),
        },
        now,
    );
    for _ in 0..3 {
        deliver(&mut gone, &mut m, now);
        deliver(&mut m, &mut gone, now);
    }
    assert_eq!(
        m.router_peer(),
        None,
        "the member did not take it as router"
    );
    assert!(gone.departed(), "the former member learnt it is out");
    assert!(gone.log().state().gone.contains_key(&ids[1].fingerprint()));
}

#[test]
fn a_member_removed_while_offline_learns_it_from_the_router_when_it_returns() {
    let ids = [id(1), id(2), id(3)];
    let old = log_with(&ids);
    let log = removing(&old, &ids[0], ids[2].fingerprint());
    let now = Instant::now();
    let (mut r, mut gone) = (engine(&ids[0], &log), engine(&ids[2], &old));
    let gf = ids[2].fingerprint();
    r.handle(GroupInput::BecameRouter, now);
    r.handle(GroupInput::PeerUp { peer: gf }, now);
    gone.handle(
        GroupInput::RouterUp {
            router: ids[0].fingerprint(),
        },
        now,
    );
    deliver(&mut r, &mut gone, now);
    assert!(gone.departed(), "it adopted the log with its removal");
    assert!(sends(&mut r).is_empty(), "and got nothing else");
}
