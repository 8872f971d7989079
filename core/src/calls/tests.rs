//! The call state machine on virtual time: every transition, the timeouts, glare and refusals.
//! Two machines are wired back to back where a test needs both sides.

use std::time::{Duration, Instant};

use super::machine::{Call, CallRecord};
use super::*;
use crate::calls::binding::BindError;
use crate::identity::Fingerprint;

pub(super) const A: Fingerprint = Fingerprint([1; 32]);
pub(super) const B: Fingerprint = Fingerprint([2; 32]);
pub(super) const C: Fingerprint = Fingerprint([3; 32]);
pub(super) const DTLS_A: DtlsFingerprint = DtlsFingerprint([0xaa; 32]);
pub(super) const DTLS_B: DtlsFingerprint = DtlsFingerprint([0xbb; 32]);
pub(super) const AV: Kinds = Kinds::AUDIO.union(Kinds::VIDEO);

pub(super) fn machine(me: Fingerprint) -> Calls {
    Calls::new(me, CallConfig::default())
}

pub(super) fn dial(call: u8, peer: Fingerprint, dtls: DtlsFingerprint) -> Input {
    Input::Dial {
        call: [call; 16],
        peer,
        kinds: AV,
        media_id: format!("mc_{call}"),
        dtls,
    }
}

pub(super) fn sends(actions: &[Action]) -> Vec<(Fingerprint, CallFrame)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send { to, frame } => Some((*to, frame.clone())),
            Action::Event(_) => None,
        })
        .collect()
}

pub(super) fn events(actions: &[Action]) -> Vec<CallEvent> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Event(e) => Some(e.clone()),
            Action::Send { .. } => None,
        })
        .collect()
}

pub(super) fn ended(actions: &[Action]) -> CallRecord {
    events(actions)
        .into_iter()
        .find_map(|e| match e {
            CallEvent::Ended(r) => Some(r),
            _ => None,
        })
        .expect("the call ended")
}

pub(super) fn states(actions: &[Action]) -> Vec<CallState> {
    events(actions)
        .into_iter()
        .filter_map(|e| match e {
            CallEvent::State { state, .. } => Some(state),
            _ => None,
        })
        .collect()
}

/// Delivers every frame `from` sent to `to` (sent to `to_fp`), returns `to`'s actions.
pub(super) fn deliver(
    from_fp: Fingerprint,
    sent: &[Action],
    to: &mut Calls,
    now: Instant,
) -> Vec<Action> {
    for (_, frame) in sends(sent) {
        let _ = to.handle(
            Input::Frame {
                from: from_fp,
                frame,
            },
            now,
        );
    }
    to.drain_actions()
}

pub(super) fn active(m: &Calls) -> &Call {
    m.active().expect("an active call")
}

/// A calls B; B's phone rings and tells A. Returns both machines.
pub(super) fn ringing(t0: Instant) -> (Calls, Calls) {
    let (mut a, mut b) = (machine(A), machine(B));
    a.handle(dial(1, B, DTLS_A), t0).unwrap();
    let out = a.drain_actions();
    assert_eq!(states(&out), [CallState::Dialing]);
    let back = deliver(A, &out, &mut b, t0);
    assert_eq!(
        events(&back),
        [CallEvent::Incoming {
            call: [1; 16],
            peer: A,
            kinds: AV
        }]
    );
    assert_eq!(sends(&back), [(A, CallFrame::Ringing { call: [1; 16] })]);
    let a_out = deliver(B, &back, &mut a, t0);
    assert_eq!(states(&a_out), [CallState::Ringing]);
    (a, b)
}

/// ... and B accepts.
pub(super) fn connected(t0: Instant) -> (Calls, Calls) {
    let (mut a, mut b) = ringing(t0);
    let accept = Input::Accept {
        call: [1; 16],
        kinds: Kinds::AUDIO,
        dtls: DTLS_B,
    };
    b.handle(accept, t0).unwrap();
    let out = b.drain_actions();
    assert_eq!(states(&out), [CallState::Connected]);
    let a_out = deliver(B, &out, &mut a, t0);
    assert_eq!(states(&a_out), [CallState::Connected]);
    assert_eq!(active(&a).callee_dtls, Some(DTLS_B));
    assert_eq!(active(&a).callee_kinds, Kinds::AUDIO);
    (a, b)
}

#[test]
fn ring_accept_and_hang_up_by_caller() {
    let t0 = Instant::now();
    let (mut a, mut b) = connected(t0);
    let t1 = t0 + Duration::from_secs(75);
    a.handle(Input::HangUp { call: [1; 16] }, t1).unwrap();
    let out = a.drain_actions();
    assert_eq!(sends(&out), [(B, CallFrame::HangUp { call: [1; 16] })]);
    let rec = ended(&out);
    assert_eq!(
        (
            rec.direction,
            rec.reason,
            rec.outcome,
            rec.duration,
            rec.kinds
        ),
        (
            Direction::Outgoing,
            EndReason::HungUp,
            Outcome::Completed,
            Duration::from_secs(75),
            AV
        )
    );
    assert!(a.active().is_none());
    let rec = ended(&deliver(A, &out, &mut b, t1));
    assert_eq!(
        (rec.direction, rec.reason, rec.outcome),
        (
            Direction::Incoming,
            EndReason::PeerHungUp,
            Outcome::Completed
        )
    );
    assert!(b.active().is_none());
}

#[test]
fn callee_hangs_up() {
    let t0 = Instant::now();
    let (mut a, mut b) = connected(t0);
    b.handle(Input::HangUp { call: [1; 16] }, t0).unwrap();
    let out = b.drain_actions();
    assert_eq!(ended(&out).reason, EndReason::HungUp);
    let rec = ended(&deliver(B, &out, &mut a, t0));
    assert_eq!(
        (rec.reason, rec.outcome),
        (EndReason::PeerHungUp, Outcome::Completed)
    );
}

#[test]
fn decline() {
    let t0 = Instant::now();
    let (mut a, mut b) = ringing(t0);
    b.handle(Input::Decline { call: [1; 16] }, t0).unwrap();
    let out = b.drain_actions();
    assert_eq!(sends(&out), [(A, CallFrame::Decline { call: [1; 16] })]);
    assert_eq!(ended(&out).outcome, Outcome::Declined);
    let rec = ended(&deliver(B, &out, &mut a, t0));
    assert_eq!(
        (rec.reason, rec.outcome),
        (EndReason::Declined, Outcome::Declined)
    );
    // Hanging up a call that rings here is a decline too.
    let (mut a, mut b) = ringing(t0);
    b.handle(Input::HangUp { call: [1; 16] }, t0).unwrap();
    let rec = ended(&deliver(B, &b.drain_actions(), &mut a, t0));
    assert_eq!(rec.outcome, Outcome::Declined);
}

#[test]
fn caller_cancels_and_the_callee_misses_it() {
    let t0 = Instant::now();
    let (mut a, mut b) = ringing(t0);
    a.handle(Input::HangUp { call: [1; 16] }, t0).unwrap();
    let out = a.drain_actions();
    assert_eq!(sends(&out), [(B, CallFrame::Cancel { call: [1; 16] })]);
    assert_eq!(ended(&out).outcome, Outcome::Cancelled);
    let rec = ended(&deliver(A, &out, &mut b, t0));
    assert_eq!(
        (rec.reason, rec.outcome),
        (EndReason::Cancelled, Outcome::Missed)
    );
}

#[test]
fn a_cancel_crossing_the_accept_is_not_a_completed_call() {
    let t0 = Instant::now();
    let (mut a, mut b) = ringing(t0);
    a.handle(Input::HangUp { call: [1; 16] }, t0).unwrap();
    let cancel = a.drain_actions();
    b.handle(
        Input::Accept {
            call: [1; 16],
            kinds: AV,
            dtls: DTLS_B,
        },
        t0,
    )
    .unwrap();
    let accept = b.drain_actions();
    // The accept reaches a caller whose call is over: ignored.
    assert!(deliver(B, &accept, &mut a, t0).is_empty());
    let rec = ended(&deliver(A, &cancel, &mut b, t0 + Duration::from_secs(1)));
    assert_eq!(
        (rec.outcome, rec.duration),
        (Outcome::Missed, Duration::ZERO)
    );
}

#[test]
fn no_answer_after_the_ring_timeout_on_both_sides() {
    let t0 = Instant::now();
    let (mut a, mut b) = ringing(t0);
    let t45 = t0 + Duration::from_secs(45);
    assert_eq!(a.poll_timeout(), Some(t45));
    assert_eq!(b.poll_timeout(), Some(t45));
    // Not a moment early.
    a.handle_timeout(t45 - Duration::from_millis(1));
    assert!(a.drain_actions().is_empty());
    a.handle_timeout(t45);
    let out = a.drain_actions();
    assert_eq!(sends(&out), [(B, CallFrame::Cancel { call: [1; 16] })]);
    assert_eq!(
        (ended(&out).reason, ended(&out).outcome),
        (EndReason::NoAnswer, Outcome::NoAnswer)
    );
    assert_eq!(a.poll_timeout(), None);
    // The callee times out by itself too (its cancel may be lost): a missed call.
    b.handle_timeout(t45);
    let out = b.drain_actions();
    assert!(sends(&out).is_empty());
    assert_eq!(
        (ended(&out).reason, ended(&out).outcome),
        (EndReason::NoAnswer, Outcome::Missed)
    );
}

#[test]
fn ring_timeout_is_configurable() {
    let t0 = Instant::now();
    let config = CallConfig {
        ring_timeout: Duration::from_secs(2),
        dial_timeout: Duration::from_secs(5),
        ..CallConfig::default()
    };
    let mut a = Calls::new(A, config);
    a.handle(dial(1, B, DTLS_A), t0).unwrap();
    // The dial timeout never outlasts the ring timeout.
    assert_eq!(a.poll_timeout(), Some(t0 + Duration::from_secs(2)));
    a.handle_timeout(t0 + Duration::from_secs(2));
    assert_eq!(ended(&a.drain_actions()).reason, EndReason::NoAnswer);
}

#[test]
fn a_callee_whose_phone_never_rings_is_unreachable() {
    let t0 = Instant::now();
    let mut a = machine(A);
    a.handle(dial(1, B, DTLS_A), t0).unwrap();
    a.drain_actions();
    let t10 = t0 + Duration::from_secs(10);
    assert_eq!(a.poll_timeout(), Some(t10));
    a.handle_timeout(t10);
    let out = a.drain_actions();
    assert_eq!(sends(&out), [(B, CallFrame::Cancel { call: [1; 16] })]);
    assert_eq!(
        (ended(&out).reason, ended(&out).outcome),
        (EndReason::Unreachable, Outcome::Failed)
    );
}

#[test]
fn a_second_call_gets_busy() {
    let t0 = Instant::now();
    let (_, mut b) = connected(t0);
    let mut c = machine(C);
    c.handle(dial(9, B, DTLS_A), t0).unwrap();
    let back = deliver(C, &c.drain_actions(), &mut b, t0);
    assert_eq!(sends(&back), [(C, CallFrame::Busy { call: [9; 16] })]);
    // The busy ring is logged, the active call goes on.
    let rec = ended(&back);
    assert_eq!(
        (rec.id, rec.peer, rec.direction, rec.outcome),
        ([9; 16], C, Direction::Incoming, Outcome::Busy)
    );
    assert_eq!(active(&b).id, [1; 16]);
    assert_eq!(active(&b).state, CallState::Connected);
    let rec = ended(&deliver(B, &back, &mut c, t0));
    assert_eq!((rec.reason, rec.outcome), (EndReason::Busy, Outcome::Busy));
    // And we cannot dial while in a call.
    assert_eq!(b.handle(dial(5, C, DTLS_B), t0), Err(Refused::Busy));
}

#[test]
fn glare_keeps_the_call_of_the_lower_fingerprint_on_both_sides() {
    let t0 = Instant::now();
    let (mut a, mut b) = (machine(A), machine(B));
    a.handle(dial(1, B, DTLS_A), t0).unwrap();
    b.handle(dial(2, A, DTLS_B), t0).unwrap();
    let (a_ring, b_ring) = (a.drain_actions(), b.drain_actions());
    // Both rings cross. A (lower fingerprint) ignores B's.
    let a_out = deliver(B, &b_ring, &mut a, t0);
    assert!(a_out.is_empty());
    assert_eq!(active(&a).id, [1; 16]);
    // B drops its call and answers A's at once, with its own media certificate.
    let b_out = deliver(A, &a_ring, &mut b, t0);
    let rec = ended(&b_out);
    assert_eq!((rec.id, rec.reason), ([2; 16], EndReason::Replaced));
    assert!(
        !events(&b_out)
            .iter()
            .any(|e| matches!(e, CallEvent::Incoming { .. }))
    );
    assert_eq!(
        sends(&b_out),
        [
            (A, CallFrame::Ringing { call: [1; 16] }),
            (
                A,
                CallFrame::Accept {
                    call: [1; 16],
                    kinds: AV,
                    dtls: DTLS_B
                }
            ),
        ]
    );
    assert_eq!(active(&b).state, CallState::Connected);
    let a_out = deliver(B, &b_out, &mut a, t0);
    assert_eq!(states(&a_out), [CallState::Ringing, CallState::Connected]);
    assert_eq!(active(&a).id, active(&b).id);
}

#[test]
fn media_state_is_announced_once_per_change() {
    let t0 = Instant::now();
    let (mut a, mut b) = connected(t0);
    let muted = MediaState {
        muted: true,
        back_camera: true,
        ..MediaState::default()
    };
    let set = Input::SetMedia {
        call: [1; 16],
        state: muted,
    };
    a.handle(set.clone(), t0).unwrap();
    let out = a.drain_actions();
    assert_eq!(
        sends(&out),
        [(
            B,
            CallFrame::Media {
                call: [1; 16],
                state: muted
            }
        )]
    );
    assert_eq!(
        events(&deliver(A, &out, &mut b, t0)),
        [CallEvent::PeerMedia {
            call: [1; 16],
            peer: A,
            state: muted
        }]
    );
    assert_eq!(active(&b).remote_media, muted);
    // The same state again sends nothing.
    a.handle(set, t0).unwrap();
    assert!(a.drain_actions().is_empty());
}

#[test]
fn frames_for_other_calls_or_from_other_peers_are_refused() {
    let t0 = Instant::now();
    let (mut a, mut b) = ringing(t0);
    // C cannot end or answer the call between A and B, even knowing its ID.
    for frame in [
        CallFrame::Cancel { call: [1; 16] },
        CallFrame::Accept {
            call: [1; 16],
            kinds: AV,
            dtls: DTLS_B,
        },
    ] {
        let r = b.handle(
            Input::Frame {
                from: C,
                frame: frame.clone(),
            },
            t0,
        );
        assert_eq!(r, Err(Refused::NoSuchCall));
        let r = a.handle(Input::Frame { from: C, frame }, t0);
        assert_eq!(r, Err(Refused::NoSuchCall));
    }
    // The callee cannot accept for the caller, nor the caller send a decline.
    let r = b.handle(
        Input::Frame {
            from: A,
            frame: CallFrame::Decline { call: [1; 16] },
        },
        t0,
    );
    assert_eq!(r, Err(Refused::WrongState("ringing")));
    // Local actions on a call that is not ours, or in the wrong state.
    assert_eq!(
        a.handle(
            Input::Accept {
                call: [1; 16],
                kinds: AV,
                dtls: DTLS_A
            },
            t0
        ),
        Err(Refused::WrongState("ringing"))
    );
    assert_eq!(
        b.handle(Input::HangUp { call: [7; 16] }, t0),
        Err(Refused::NoSuchCall)
    );
    assert!(a.drain_actions().is_empty());
    assert!(b.drain_actions().is_empty());
    assert_eq!(active(&b).state, CallState::Ringing);
}

#[test]
fn bad_dials_and_rings_are_refused() {
    let t0 = Instant::now();
    let mut a = machine(A);
    assert_eq!(
        a.handle(dial(1, A, DTLS_A), t0),
        Err(Refused::Invalid("calling ourselves"))
    );
    let no_media = Input::Dial {
        call: [1; 16],
        peer: B,
        kinds: Kinds::default(),
        media_id: "mc_1".into(),
        dtls: DTLS_A,
    };
    assert!(matches!(a.handle(no_media, t0), Err(Refused::Invalid(_))));
    let bad_id = Input::Dial {
        call: [1; 16],
        peer: B,
        kinds: AV,
        media_id: "mc 1".into(),
        dtls: DTLS_A,
    };
    assert!(matches!(a.handle(bad_id, t0), Err(Refused::Invalid(_))));
    assert!(a.drain_actions().is_empty());
    assert!(a.active().is_none());
}

#[test]
fn a_repeated_ring_rings_once() {
    let t0 = Instant::now();
    let (mut a, mut b) = (machine(A), machine(B));
    a.handle(dial(1, B, DTLS_A), t0).unwrap();
    let ring = a.drain_actions();
    deliver(A, &ring, &mut b, t0);
    let again = deliver(A, &ring, &mut b, t0);
    assert!(events(&again).is_empty());
    assert_eq!(sends(&again), [(A, CallFrame::Ringing { call: [1; 16] })]);
}

#[test]
fn a_lost_link_ends_the_call() {
    let t0 = Instant::now();
    let (mut a, mut b) = connected(t0);
    let t1 = t0 + Duration::from_secs(3);
    a.handle(Input::PeerGone { peer: B }, t1).unwrap();
    let rec = ended(&a.drain_actions());
    assert_eq!(
        (rec.reason, rec.outcome, rec.duration),
        (EndReason::Lost, Outcome::Completed, Duration::from_secs(3))
    );
    assert_eq!(
        b.handle(Input::PeerGone { peer: C }, t1),
        Err(Refused::NoSuchCall)
    );
    let (_, mut b) = ringing(t0);
    b.handle(Input::PeerGone { peer: A }, t1).unwrap();
    assert_eq!(ended(&b.drain_actions()).outcome, Outcome::Missed);
}

#[test]
fn only_the_announced_media_offer_is_admitted_after_the_answer() {
    let t0 = Instant::now();
    let (mut a, mut b) = ringing(t0);
    let sdp_a = DTLS_A.to_string();
    // Before the answer: nothing is admitted.
    assert_eq!(
        b.admit_offer(&A, "mc_1", &sdp_a),
        Err(Refused::Binding(BindError::NotAnnounced))
    );
    b.handle(
        Input::Accept {
            call: [1; 16],
            kinds: AV,
            dtls: DTLS_B,
        },
        t0,
    )
    .unwrap();
    deliver(B, &b.drain_actions(), &mut a, t0);
    assert_eq!(b.admit_offer(&A, "mc_1", &sdp_a), Ok([1; 16]));
    // Another connection ID, another certificate, another peer.
    assert_eq!(
        b.admit_offer(&A, "mc_2", &sdp_a),
        Err(Refused::Binding(BindError::NotAnnounced))
    );
    assert_eq!(
        b.admit_offer(&A, "mc_1", &DTLS_B.to_string()),
        Err(Refused::Binding(BindError::WrongFingerprint))
    );
    assert_eq!(
        b.admit_offer(&C, "mc_1", &sdp_a),
        Err(Refused::Binding(BindError::NotAnnounced))
    );
    // The caller checks the answer's certificate against the accept.
    assert_eq!(a.admit_answer(&[1; 16], &DTLS_B.to_string()), Ok(()));
    assert_eq!(
        a.admit_answer(&[1; 16], &sdp_a),
        Err(Refused::Binding(BindError::WrongFingerprint))
    );
    // A caller does not take offers.
    assert!(a.admit_offer(&B, "mc_1", &DTLS_B.to_string()).is_err());
}
