//! The call machine when things go wrong: a peer that restarted mid-call and a flood of rings
//! while busy.

use std::time::{Duration, Instant};

use super::tests::{
    A, AV, B, C, DTLS_A, active, connected, deliver, dial, ended, events, machine, sends,
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
    assert_eq!(sends(&out), [(A, CallFrame::Ringing { call: [7; 16] })]);
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
