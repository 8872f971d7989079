//! Calls between real nodes against an in-process signaling server: ring, accept, hang-up,
//! decline, busy, no answer, cancel, and the refusals (Known and blocked contacts never ring).

use std::time::Duration;

use tokio::sync::mpsc::UnboundedReceiver;

use super::tests::{Recorder, alice_and_bob, befriend, config, next, server, started, until};
use super::*;
use crate::calls::{CallState, EndReason, Kinds, MediaState, Outcome};
use crate::node::platform::NotificationCategory;

pub(super) const AV: Kinds = Kinds::AUDIO.union(Kinds::VIDEO);

/// The next call event (incoming, state, media or logged).
pub(super) async fn next_call(rx: &mut UnboundedReceiver<NodeEvent>) -> NodeEvent {
    loop {
        let ev = next(rx).await;
        if matches!(
            ev,
            NodeEvent::IncomingCall { .. }
                | NodeEvent::CallState { .. }
                | NodeEvent::CallMedia { .. }
                | NodeEvent::CallLogged { .. }
        ) {
            return ev;
        }
    }
}

/// The next call state of `call`.
pub(super) async fn next_state(rx: &mut UnboundedReceiver<NodeEvent>, call: &str) -> CallState {
    loop {
        if let NodeEvent::CallState { call: c, state, .. } = next_call(rx).await
            && c == call
        {
            return state;
        }
    }
}

/// The next call-log entry.
pub(super) async fn next_logged(rx: &mut UnboundedReceiver<NodeEvent>) -> CallEntry {
    loop {
        if let NodeEvent::CallLogged { entry } = next_call(rx).await {
            return entry;
        }
    }
}

/// Waits for the incoming call; returns its ID.
pub(super) async fn incoming(rx: &mut UnboundedReceiver<NodeEvent>, from: &str) -> String {
    loop {
        if let NodeEvent::IncomingCall {
            call,
            fingerprint,
            kinds,
            name,
        } = next_call(rx).await
        {
            assert_eq!((fingerprint.as_str(), kinds), (from, AV));
            assert!(!name.is_empty());
            return call;
        }
    }
}

/// Two contacts that trust each other; alice calls bob and bob's phone rings.
pub(super) async fn ringing(
    url: &str,
) -> (
    (tempfile::TempDir, tempfile::TempDir),
    (Node, Node),
    (UnboundedReceiver<NodeEvent>, UnboundedReceiver<NodeEvent>),
    String,
) {
    let (da, db, a, b) = alice_and_bob(url).await;
    befriend(&a, &b).await;
    let (mut ea, mut eb) = (a.subscribe(), b.subscribe());
    let call = a.call(&b.identity().fingerprint, AV).await.unwrap();
    assert_eq!(next_state(&mut ea, &call).await, CallState::Dialing);
    assert_eq!(incoming(&mut eb, &a.identity().fingerprint).await, call);
    assert_eq!(next_state(&mut ea, &call).await, CallState::Ringing);
    ((da, db), (a, b), (ea, eb), call)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ring_accept_media_state_and_hang_up() {
    let server = server().await;
    let (_dirs, (a, b), (mut ea, mut eb), call) = ringing(&server.url()).await;
    let (fa, fb) = (a.identity().fingerprint, b.identity().fingerprint);
    b.accept_call(&call, Kinds::AUDIO).unwrap();
    assert_eq!(next_state(&mut eb, &call).await, CallState::Connected);
    assert_eq!(next_state(&mut ea, &call).await, CallState::Connected);
    let active = a.active_call().unwrap();
    assert_eq!(
        (
            active.call.as_str(),
            active.callee_kinds,
            active.media_id.starts_with("mc_")
        ),
        (call.as_str(), Kinds::AUDIO, true)
    );
    // Mute reaches the peer.
    a.set_muted(&call, true).unwrap();
    loop {
        if let NodeEvent::CallMedia {
            state, fingerprint, ..
        } = next_call(&mut eb).await
        {
            assert_eq!(fingerprint, fa);
            assert_eq!(
                state,
                MediaState {
                    muted: true,
                    ..MediaState::default()
                }
            );
            break;
        }
    }
    assert!(b.active_call().unwrap().remote_media.muted);
    // So does how far the picture is turned (to the nearest quarter turn).
    a.set_video_rotation(&call, 268).unwrap();
    loop {
        if let NodeEvent::CallMedia { state, .. } = next_call(&mut eb).await {
            assert_eq!((state.rotation, state.muted), (270, true));
            break;
        }
    }
    assert_eq!(b.active_call().unwrap().remote_media.rotation, 270);
    tokio::time::sleep(Duration::from_millis(300)).await;
    a.hang_up(&call).unwrap();
    assert_eq!(
        next_state(&mut ea, &call).await,
        CallState::Ended(EndReason::HungUp)
    );
    assert_eq!(
        next_state(&mut eb, &call).await,
        CallState::Ended(EndReason::PeerHungUp)
    );
    let (la, lb) = (next_logged(&mut ea).await, next_logged(&mut eb).await);
    assert_eq!(
        (la.outcome, la.direction, la.kinds, la.peer.to_hex()),
        (Outcome::Completed, CallDirection::Outgoing, AV, fb.clone())
    );
    assert!(la.duration_ms >= 300, "{la:?}");
    assert_eq!(
        (lb.outcome, lb.direction, lb.peer.to_hex()),
        (Outcome::Completed, CallDirection::Incoming, fa.clone())
    );
    assert!(a.active_call().is_none() && b.active_call().is_none());
    // The call is in the log and in the chat history with the contact, next to a message.
    b.send_message(&fa, "thanks for calling").await.unwrap();
    let history = b.history(&fa, 50).await.unwrap();
    assert!(matches!(&history[0], HistoryItem::Call(e) if e.id == lb.id));
    assert!(
        matches!(&history[1], HistoryItem::Message(m) if m.text() == Some("thanks for calling"))
    );
    assert_eq!(
        a.call_log(None, 10).await.unwrap(),
        std::slice::from_ref(&la)
    );
    assert_eq!(a.call_log(Some(&fb), 10).await.unwrap(), [la]);
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decline_and_cancel() {
    let server = server().await;
    let (_dirs, (a, b), (mut ea, mut eb), call) = ringing(&server.url()).await;
    b.decline_call(&call).unwrap();
    assert_eq!(
        next_state(&mut ea, &call).await,
        CallState::Ended(EndReason::Declined)
    );
    assert_eq!(next_logged(&mut ea).await.outcome, Outcome::Declined);
    assert_eq!(next_logged(&mut eb).await.outcome, Outcome::Declined);
    // Now alice gives up while bob's phone rings: a missed call for bob.
    let fa = a.identity().fingerprint;
    let call = a.call(&b.identity().fingerprint, AV).await.unwrap();
    assert_eq!(incoming(&mut eb, &fa).await, call);
    a.hang_up(&call).unwrap();
    assert_eq!(
        next_state(&mut eb, &call).await,
        CallState::Ended(EndReason::Cancelled)
    );
    assert_eq!(next_logged(&mut eb).await.outcome, Outcome::Missed);
    assert_eq!(next_logged(&mut ea).await.outcome, Outcome::Cancelled);
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_answer_after_the_ring_timeout() {
    let server = server().await;
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = started(config(da.path(), &server.url(), Some("alice")))
        .await
        .unwrap();
    let recorder = Arc::new(Recorder::default());
    let mut cb = config(db.path(), &server.url(), Some("bob"));
    cb.platform.notifier = Some(recorder.clone());
    let b = started(cb).await.unwrap();
    befriend(&a, &b).await;
    let short = CallConfig {
        ring_timeout: Duration::from_millis(1500),
        dial_timeout: Duration::from_secs(1),
        ..CallConfig::default()
    };
    a.set_call_config(short);
    b.set_call_config(short);
    let (mut ea, mut eb) = (a.subscribe(), b.subscribe());
    let fa = a.identity().fingerprint;
    let call = a.call(&b.identity().fingerprint, AV).await.unwrap();
    assert_eq!(incoming(&mut eb, &fa).await, call);
    assert_eq!(next_state(&mut ea, &call).await, CallState::Dialing);
    assert_eq!(next_state(&mut ea, &call).await, CallState::Ringing);
    assert_eq!(
        next_state(&mut ea, &call).await,
        CallState::Ended(EndReason::NoAnswer)
    );
    assert_eq!(next_logged(&mut ea).await.outcome, Outcome::NoAnswer);
    // Bob's side ends by the caller's cancel or its own timeout, whichever comes first.
    assert!(matches!(
        next_state(&mut eb, &call).await,
        CallState::Ended(EndReason::Cancelled | EndReason::NoAnswer)
    ));
    assert_eq!(next_logged(&mut eb).await.outcome, Outcome::Missed);
    // The phone showed the incoming call, then a missed call, both naming alice as bob saved her.
    let notes = lock(&recorder.0).clone();
    let notes: Vec<_> = notes
        .into_iter()
        .filter(|n| n.category != NotificationCategory::ContactRequest)
        .collect();
    let cats: Vec<_> = notes.iter().map(|n| n.category).collect();
    assert_eq!(
        cats,
        [
            NotificationCategory::IncomingCall,
            NotificationCategory::MissedCall
        ]
    );
    assert!(
        notes
            .iter()
            .all(|n| n.conversation.as_deref() == Some(fa.as_str()))
    );
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_caller_gets_busy() {
    let server = server().await;
    let (_dirs, (a, b), (mut ea, mut eb), call) = ringing(&server.url()).await;
    b.accept_call(&call, AV).unwrap();
    assert_eq!(next_state(&mut ea, &call).await, CallState::Connected);
    let dc = tempfile::tempdir().unwrap();
    let c = started(config(dc.path(), &server.url(), Some("carol")))
        .await
        .unwrap();
    befriend(&c, &b).await;
    let mut ec = c.subscribe();
    let second = c
        .call(&b.identity().fingerprint, Kinds::AUDIO)
        .await
        .unwrap();
    assert_eq!(next_state(&mut ec, &second).await, CallState::Dialing);
    assert_eq!(
        next_state(&mut ec, &second).await,
        CallState::Ended(EndReason::Busy)
    );
    assert_eq!(next_logged(&mut ec).await.outcome, Outcome::Busy);
    // Bob logged the busy ring; his call with alice goes on.
    loop {
        match next_call(&mut eb).await {
            NodeEvent::CallLogged { entry } => {
                assert_eq!(
                    (entry.outcome, entry.peer.to_hex()),
                    (Outcome::Busy, c.identity().fingerprint)
                );
                break;
            }
            NodeEvent::CallState { state, .. } => assert_eq!(state, CallState::Connected),
            _ => {}
        }
    }
    assert_eq!(b.active_call().unwrap().call, call);
    a.stop().await;
    b.stop().await;
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn known_and_blocked_contacts_never_ring() {
    let server = server().await;
    let (_da, _db, a, b) = alice_and_bob(&server.url()).await;
    befriend(&a, &b).await;
    let (fa, fb) = (a.identity().fingerprint, b.identity().fingerprint);
    a.set_call_config(CallConfig {
        ring_timeout: Duration::from_secs(3),
        dial_timeout: Duration::from_secs(1),
        ..CallConfig::default()
    });
    // Bob knows alice only at level 1: her ring is refused, his phone stays silent.
    b.set_trust(&fa, Trust::Known).await.unwrap();
    let (mut ea, mut eb) = (a.subscribe(), b.subscribe());
    let call = a.call(&fb, AV).await.unwrap();
    assert_eq!(next_state(&mut ea, &call).await, CallState::Dialing);
    assert_eq!(
        next_state(&mut ea, &call).await,
        CallState::Ended(EndReason::Unreachable)
    );
    assert_eq!(next_logged(&mut ea).await.outcome, Outcome::Failed);
    // And bob cannot call alice either: calls need trust 2 on the caller's side too.
    assert!(matches!(
        b.call(&fa, AV).await,
        Err(NodeError::NotAllowed(_))
    ));
    // Blocked: no session at all, so nothing rings.
    b.set_trust(&fa, Trust::Blocked).await.unwrap();
    until(10, "alice sees the link closed", async || {
        !a.is_connected(&fb)
    })
    .await;
    // Alice's handshake may complete before bob drops it: then her ring goes nowhere and the
    // call ends as soon as the link does.
    if let Ok(call) = a.call(&fb, AV).await {
        loop {
            match next_state(&mut ea, &call).await {
                CallState::Dialing => {}
                s => {
                    assert!(
                        matches!(
                            s,
                            CallState::Ended(EndReason::Lost | EndReason::Unreachable)
                        ),
                        "{s:?}"
                    );
                    break;
                }
            }
        }
    }
    // Nothing about a call reached bob.
    tokio::time::sleep(Duration::from_millis(500)).await;
    while let Ok(ev) = eb.try_recv() {
        assert!(
            !matches!(
                ev,
                NodeEvent::IncomingCall { .. }
                    | NodeEvent::CallState { .. }
                    | NodeEvent::CallLogged { .. }
            ),
            "{ev:?}"
        );
    }
    assert!(b.call_log(None, 10).await.unwrap().is_empty());
    a.stop().await;
    b.stop().await;
}

/// Frames written on `from`'s track `name` come out of `to`'s remote track of that kind.
pub(super) async fn media_flows(
    from: &crate::transport::MediaConnection,
    to: &crate::transport::MediaConnection,
    name: &str,
) {
    let local = from.local_track(name).expect("local track").clone();
    let writer = tokio::spawn(async move {
        for i in 0..50u8 {
            let frame = bytes::Bytes::from(vec![0xf8, i, 1, 2, 3]);
            local
                .write_frame(frame, Duration::from_millis(20), None)
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    let remote = tokio::time::timeout(Duration::from_secs(10), to.next_remote_track())
        .await
        .expect("remote track in time")
        .expect("remote track");
    assert_eq!(remote.kind(), crate::transport::MediaKind::Audio);
    let mut got = 0;
    while got < 10 {
        let p = tokio::time::timeout(Duration::from_secs(5), remote.recv())
            .await
            .expect("packet in time")
            .expect("packet");
        assert_eq!(&p.payload[2..], &[1, 2, 3]);
        got += 1;
    }
    writer.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accepted_call_gets_its_bound_media_and_stray_offers_are_refused() {
    let server = server().await;
    let (_dirs, (a, b), (mut ea, mut eb), call) = ringing(&server.url()).await;
    // Before the accept, no media connection exists for the call.
    assert!(
        a.call_media(&call, Duration::from_millis(100))
            .await
            .is_err()
    );
    // Someone else offers media with the announced connection ID but its own certificate,
    // while the call rings: refused (not answered yet, and not the announced fingerprint).
    let dc = tempfile::tempdir().unwrap();
    let carol = started(config(dc.path(), &server.url(), Some("carol")))
        .await
        .unwrap();
    let forged = carol
        .inner
        .transport()
        .call(
            &b.peer_id(),
            crate::transport::MediaOptions {
                tracks: vec![crate::transport::TrackSpec::audio()],
                connection_id: Some(a.active_call().unwrap().media_id),
                certificate: Some(crate::transport::MediaCertificate::generate().unwrap()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(forged.connected(Duration::from_secs(2)).await.is_err());
    forged.close().await;
    // Accepting a call that does not exist fails and leaves the ringing call's certificate.
    let bogus = "00".repeat(16);
    assert!(a.accept_call(&bogus, Kinds::AUDIO).is_err());
    assert!(b.accept_call(&bogus, Kinds::AUDIO).is_err());
    b.accept_call(&call, Kinds::AUDIO).unwrap();
    assert_eq!(next_state(&mut eb, &call).await, CallState::Connected);
    assert_eq!(next_state(&mut ea, &call).await, CallState::Connected);
    // Both sides hear that the media is up (the shells attach sources and sinks then).
    for (rx, peer) in [
        (&mut ea, b.identity().fingerprint),
        (&mut eb, a.identity().fingerprint),
    ] {
        loop {
            if let NodeEvent::CallMediaConnected {
                call: c,
                fingerprint,
            } = next(rx).await
            {
                assert_eq!((c.as_str(), fingerprint), (call.as_str(), peer));
                break;
            }
        }
    }
    let ma = a.call_media(&call, Duration::from_millis(1)).await.unwrap();
    let mb = b.call_media(&call, Duration::from_millis(1)).await.unwrap();
    // The connection is the one the ring and the accept announced.
    let active = a.active_call().unwrap();
    assert_eq!(ma.info().connection_id, active.media_id);
    assert_eq!(mb.info().connection_id, active.media_id);
    assert_eq!(ma.remote_dtls(), mb.info().local_dtls);
    assert_eq!(mb.remote_dtls(), ma.info().local_dtls);
    assert_eq!(
        ma.local_tracks().len() + mb.local_tracks().len(),
        3,
        "alice sends audio + video, bob audio"
    );
    media_flows(&ma, &mb, "audio").await;
    media_flows(&mb, &ma, "audio").await;

    // A media OFFER no ring announced is refused, even from the contact in the call.
    let stray = a
        .inner
        .transport()
        .call(
            &b.peer_id(),
            crate::transport::MediaOptions {
                tracks: vec![crate::transport::TrackSpec::audio()],
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(stray.connected(Duration::from_secs(3)).await.is_err());

    // Hanging up closes the media.
    a.hang_up(&call).unwrap();
    let mut state = mb.state();
    tokio::time::timeout(
        Duration::from_secs(10),
        state.wait_for(|s| *s == crate::transport::MediaState::Closed),
    )
    .await
    .expect("media closed in time")
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_media_offers_reach_the_application_only_when_allowed() {
    let server = server().await;
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut nodes = vec![];
    for (d, name) in dirs.iter().zip(["bob", "browser", "stranger"]) {
        nodes.push(
            started(config(d.path(), &server.url(), Some(name)))
                .await
                .unwrap(),
        );
    }
    let (b, browser, stranger) = (&nodes[0], &nodes[1], &nodes[2]);
    let offer = |from: &Node| {
        let t = from.inner.transport();
        let to = b.peer_id();
        async move {
            t.call(
                &to,
                crate::transport::MediaOptions {
                    tracks: vec![crate::transport::TrackSpec::audio()],
                    ..Default::default()
                },
            )
            .await
            .unwrap()
        }
    };
    // Not allowed (nothing is, by default): refused, as for any OFFER no call announced.
    let c = offer(browser).await;
    assert!(c.connected(Duration::from_secs(2)).await.is_err());

    let mut offers = b.allow_browser_calls(vec![browser.peer_id()]);
    // Someone else: still refused, and the application never sees it.
    let c = offer(stranger).await;
    assert!(c.connected(Duration::from_secs(2)).await.is_err());
    assert!(offers.try_recv().is_err());
    // The allowed PeerJS ID: handed over undecided; accepting connects.
    let c = offer(browser).await;
    let inc = tokio::time::timeout(Duration::from_secs(5), offers.recv())
        .await
        .expect("offer in time")
        .expect("offer");
    assert_eq!(inc.peer(), browser.peer_id());
    let answered = inc
        .accept(vec![crate::transport::TrackSpec::audio()])
        .await
        .unwrap();
    c.connected(Duration::from_secs(10)).await.unwrap();
    media_flows(&c, &answered, "audio").await;
    // No call rang or was logged for it.
    assert!(b.active_call().is_none());
    assert!(b.call_log(None, 10).await.unwrap().is_empty());
    c.close().await;
}
