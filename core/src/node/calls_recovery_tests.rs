//! Calls between real nodes when things go wrong: glare, media that closes, a busy callee and
//! a contact whose trust was lowered during the call.

use std::time::Duration;

use tokio::sync::mpsc::UnboundedReceiver;

use super::calls_tests::{AV, media_flows, next_logged, next_state, ringing};
use super::tests::{Recorder, alice_and_bob, befriend, config, next, server, started};
use super::*;
use crate::calls::{CallState, EndReason, Kinds, Outcome};
use crate::node::platform::NotificationCategory;

/// Waits until the media of `call` with `peer` is up.
async fn media_connected(rx: &mut UnboundedReceiver<NodeEvent>, call: &str, peer: &str) {
    loop {
        if let NodeEvent::CallMediaConnected {
            call: c,
            fingerprint,
        } = next(rx).await
            && c == call
        {
            assert_eq!(fingerprint, peer);
            return;
        }
    }
}

/// Both call each other at once: the call of the lower fingerprint is kept on both sides, and
/// its media connects (the other side answers with the certificate of the call it dropped).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn glare_keeps_one_call_and_its_media_connects() {
    let server = server().await;
    let (_da, _db, a, b) = alice_and_bob(&server.url()).await;
    befriend(&a, &b).await;
    let (fa, fb) = (a.identity().fingerprint, b.identity().fingerprint);
    // h (the higher fingerprint) drops its own call for l's.
    let (h, l, fh, fl) = if fa > fb {
        (&a, &b, fa, fb)
    } else {
        (&b, &a, fb, fa)
    };
    // l refuses h's ring for now, so h's call is still dialing when l's ring arrives: the
    // rings crossed.
    l.set_trust(&fh, Trust::Known).await.unwrap();
    let (mut eh, mut el) = (h.subscribe(), l.subscribe());
    let dropped = h.call(&fl, AV).await.unwrap();
    assert_eq!(next_state(&mut eh, &dropped).await, CallState::Dialing);
    tokio::time::sleep(Duration::from_millis(500)).await;
    l.set_trust(&fh, Trust::Trusted).await.unwrap();
    let kept = l.call(&fh, AV).await.unwrap();
    assert_eq!(
        next_state(&mut eh, &dropped).await,
        CallState::Ended(EndReason::Replaced)
    );
    assert_eq!(next_state(&mut eh, &kept).await, CallState::Connected);
    assert_eq!(next_state(&mut el, &kept).await, CallState::Dialing);
    assert_eq!(next_state(&mut el, &kept).await, CallState::Ringing);
    assert_eq!(next_state(&mut el, &kept).await, CallState::Connected);
    media_connected(&mut eh, &kept, &fl).await;
    media_connected(&mut el, &kept, &fh).await;
    let mh = h.call_media(&kept, Duration::from_millis(1)).await.unwrap();
    let ml = l.call_media(&kept, Duration::from_millis(1)).await.unwrap();
    media_flows(&ml, &mh, "audio").await;
    media_flows(&mh, &ml, "audio").await;
    assert_eq!(h.active_call().unwrap().call, kept);
    h.stop().await;
    l.stop().await;
}

/// A call whose media connection closes ends on both sides.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_whose_media_closes_ends() {
    let server = server().await;
    let (_dirs, (a, b), (mut ea, mut eb), call) = ringing(&server.url()).await;
    let (fa, fb) = (a.identity().fingerprint, b.identity().fingerprint);
    b.accept_call(&call, Kinds::AUDIO).unwrap();
    media_connected(&mut ea, &call, &fb).await;
    media_connected(&mut eb, &call, &fa).await;
    let ma = a.call_media(&call, Duration::from_millis(1)).await.unwrap();
    ma.close().await;
    for rx in [&mut ea, &mut eb] {
        let s = loop {
            match next_state(rx, &call).await {
                CallState::Connected => {}
                s => break s,
            }
        };
        assert!(
            matches!(s, CallState::Ended(EndReason::Lost | EndReason::PeerHungUp)),
            "{s:?}"
        );
    }
    assert!(a.active_call().is_none() && b.active_call().is_none());
    a.stop().await;
    b.stop().await;
}

/// A callee in another call is no missed call for the caller; the callee hears of the ring.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_callee_is_no_missed_call_for_the_caller() {
    let server = server().await;
    let (_dirs, (a, b), (mut ea, mut eb), call) = ringing(&server.url()).await;
    b.accept_call(&call, AV).unwrap();
    assert_eq!(next_state(&mut ea, &call).await, CallState::Connected);
    let dc = tempfile::tempdir().unwrap();
    let notes = Arc::new(Recorder::default());
    let mut cc = config(dc.path(), &server.url(), Some("carol"));
    cc.platform.notifier = Some(notes.clone());
    let c = started(cc).await.unwrap();
    befriend(&c, &b).await;
    let mut ec = c.subscribe();
    let second = c.call(&b.identity().fingerprint, AV).await.unwrap();
    assert_eq!(
        loop {
            match next_state(&mut ec, &second).await {
                CallState::Dialing => {}
                s => break s,
            }
        },
        CallState::Ended(EndReason::Busy)
    );
    let entry = next_logged(&mut ec).await;
    assert_eq!(
        (entry.outcome, entry.direction),
        (Outcome::Busy, CallDirection::Outgoing)
    );
    assert_eq!(next_logged(&mut eb).await.outcome, Outcome::Busy);
    let missed = lock(&notes.0)
        .iter()
        .filter(|n| n.category == NotificationCategory::MissedCall)
        .count();
    assert_eq!(missed, 0, "the caller was told of a missed call");
    a.stop().await;
    b.stop().await;
    c.stop().await;
}

/// A contact whose trust was lowered below Trusted during the call can still hang it up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contact_demoted_during_a_call_can_still_hang_up() {
    let server = server().await;
    let (_dirs, (a, b), (mut ea, mut eb), call) = ringing(&server.url()).await;
    b.accept_call(&call, AV).unwrap();
    assert_eq!(next_state(&mut eb, &call).await, CallState::Connected);
    assert_eq!(next_state(&mut ea, &call).await, CallState::Connected);
    b.set_trust(&a.identity().fingerprint, Trust::Known)
        .await
        .unwrap();
    a.hang_up(&call).unwrap();
    assert_eq!(
        next_state(&mut eb, &call).await,
        CallState::Ended(EndReason::PeerHungUp)
    );
    assert!(b.active_call().is_none());
    a.stop().await;
    b.stop().await;
}
