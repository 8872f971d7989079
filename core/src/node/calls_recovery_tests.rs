//! Calls between real nodes when things go wrong: media that closes.

use std::time::Duration;

use tokio::sync::mpsc::UnboundedReceiver;

use super::calls_tests::{next_state, ringing};
use super::tests::{next, server};
use super::*;
use crate::calls::{CallState, EndReason, Kinds};

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
