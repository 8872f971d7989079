//! The call machine when things go wrong: a peer that restarted mid-call, media that never
//! comes up or closes, and a flood of rings while busy.

use std::time::{Duration, Instant};

use super::tests::{
    A, AV, B, C, DTLS_A, active, connected, deliver, dial, ended, events, machine, ringing, sends,
};
use super::*;
use crate::identity::Fingerprint;

#[test]
fn a_new_ring_from_the_active_calls_peer_ends_that_call_and_rings() {
    let t0 = Instant::now();
    let (_, mut b) = connected(t0);
    // A's app restarted: its new machine knows nothing of call 1 and calls again.
    let mut a = machine(A);
    let t1 = t0 + Duration::from_secs(5);
    a.handle(dial(7, B, DTLS_A), t1).unwrap();
    let ring = a.drain_actions();
    let out = deliver(A, &ring, &mut b, t1);
    let rec = ended(&out);
    assert_eq!(
        (rec.id, rec.reason, rec.outcome, rec.duration),
        (
            [1; 16],
            EndReason::Lost,
            Outcome::Completed,
            Duration::from_secs(5)
        )
    );
    assert!(events(&out).contains(&CallEvent::Incoming {
        call: [7; 16],
        peer: A,
        kinds: AV
    }));
    // The old call's end is said too (the ring may have overtaken its frames).
    assert_eq!(
        sends(&out),
        [
            (A, CallFrame::HangUp { call: [1; 16] }),
            (A, CallFrame::Ringing { call: [7; 16] })
        ]
    );
    assert_eq!(
        (active(&b).id, active(&b).state),
        ([7; 16], CallState::Ringing)
    );
    // A late ring for the call that ended rings nothing and ends nothing.
    let mut old = machine(A);
    old.handle(dial(1, B, DTLS_A), t0).unwrap();
    assert!(deliver(A, &old.drain_actions(), &mut b, t1).is_empty());
    assert_eq!(active(&b).id, [7; 16]);
}

#[test]
fn a_call_whose_media_never_comes_up_ends_as_lost() {
    let t0 = Instant::now();
    let (mut a, mut b) = connected(t0);
    let limit = t0 + CallConfig::default().media_timeout;
    assert_eq!(a.poll_timeout(), Some(limit));
    assert_eq!(b.poll_timeout(), Some(limit));
    a.handle_timeout(limit - Duration::from_millis(1));
    assert!(a.drain_actions().is_empty());
    a.handle_timeout(limit);
    let out = a.drain_actions();
    assert_eq!(sends(&out), [(B, CallFrame::HangUp { call: [1; 16] })]);
    assert_eq!(
        (ended(&out).reason, ended(&out).outcome),
        (EndReason::Lost, Outcome::Completed)
    );
    // The peer hears the call is over even if its own timer has not fired yet.
    let rec = ended(&deliver(A, &out, &mut b, limit));
    assert_eq!(rec.reason, EndReason::PeerHungUp);
}

#[test]
fn a_call_whose_media_is_up_has_no_timer_and_ends_when_it_closes() {
    let t0 = Instant::now();
    let (mut a, mut b) = connected(t0);
    let up = Input::MediaConnected { call: [1; 16] };
    a.handle(up.clone(), t0).unwrap();
    b.handle(up, t0).unwrap();
    assert_eq!(a.poll_timeout(), None);
    a.handle_timeout(t0 + Duration::from_secs(3600));
    assert!(a.drain_actions().is_empty());
    // Only the active call's media counts, and only once connected.
    assert_eq!(
        a.handle(Input::MediaLost { call: [9; 16] }, t0),
        Err(Refused::NoSuchCall)
    );
    let t1 = t0 + Duration::from_secs(60);
    b.handle(Input::MediaLost { call: [1; 16] }, t1).unwrap();
    let out = b.drain_actions();
    assert_eq!(sends(&out), [(A, CallFrame::HangUp { call: [1; 16] })]);
    assert_eq!(ended(&out).reason, EndReason::Lost);
    assert_eq!(
        ended(&deliver(B, &out, &mut a, t1)).reason,
        EndReason::PeerHungUp
    );

    let (mut a, _) = ringing(t0);
    assert_eq!(
        a.handle(Input::MediaConnected { call: [1; 16] }, t0),
        Err(Refused::WrongState("ringing"))
    );
    assert_eq!(
        a.handle(Input::MediaLost { call: [1; 16] }, t0),
        Err(Refused::WrongState("ringing"))
    );
}

#[test]
fn rings_while_busy_are_logged_once_a_minute_and_answered_a_few_times() {
    let t0 = Instant::now();
    let (_, mut b) = connected(t0);
    let mut c = machine(C);
    let mut ring = |b: &mut Calls, id: u8, now: Instant| {
        c.handle(dial(id, B, DTLS_A), now).unwrap();
        let out = deliver(C, &c.drain_actions(), b, now);
        c.handle(Input::HangUp { call: [id; 16] }, now).unwrap();
        c.drain_actions();
        out
    };
    let first = ring(&mut b, 10, t0);
    assert_eq!(sends(&first), [(C, CallFrame::Busy { call: [10; 16] })]);
    assert_eq!(ended(&first).outcome, Outcome::Busy);
    for id in 11..14 {
        let out = ring(&mut b, id, t0 + Duration::from_secs(1));
        assert_eq!(sends(&out), [(C, CallFrame::Busy { call: [id; 16] })]);
        assert!(events(&out).is_empty(), "logged once a minute");
    }
    for id in 14..40 {
        assert!(ring(&mut b, id, t0 + Duration::from_secs(2)).is_empty());
    }
    // Someone else is answered and logged as before.
    const D: Fingerprint = Fingerprint([4; 32]);
    let mut d = machine(D);
    d.handle(dial(50, B, DTLS_A), t0).unwrap();
    assert_eq!(
        ended(&deliver(D, &d.drain_actions(), &mut b, t0)).id,
        [50; 16]
    );
    // A minute later, C's ring is logged again.
    let again = ring(&mut b, 60, t0 + Duration::from_secs(61));
    assert_eq!(sends(&again), [(C, CallFrame::Busy { call: [60; 16] })]);
    assert_eq!(ended(&again).id, [60; 16]);
    assert_eq!(active(&b).id, [1; 16]);
}
