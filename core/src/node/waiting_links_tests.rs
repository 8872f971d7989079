//! A contact added by share link while its owner is offline (decision 0019): real nodes, the
//! embedded signaling server, loopback WebRTC.

use std::time::Duration;

use tokio::sync::mpsc::UnboundedReceiver;

use super::tests::{alice_and_bob, config, next, server, started, until};
use super::*;

/// Waits for the next event matching `f`.
async fn seen(rx: &mut UnboundedReceiver<NodeEvent>, f: impl Fn(&NodeEvent) -> bool) {
    while !f(&next(rx).await) {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_to_someone_offline_goes_out_when_they_come_online() {
    let server = server().await;
    let url = server.url();
    let (_da, db, a, b) = alice_and_bob(&url).await;
    let (fa, fb, link) = (
        a.identity().fingerprint,
        b.identity().fingerprint,
        b.share_link(),
    );
    b.stop().await;

    let err = a.request_contact(&link).await.unwrap_err();
    assert!(matches!(err, NodeError::Waiting(_)), "{err:?}");
    let waiting = a.waiting_links().await.unwrap();
    assert_eq!(waiting.len(), 1);
    assert_eq!(waiting[0].fingerprint.to_hex(), fb);
    assert!(a.requests().await.unwrap().is_empty(), "no key, no request");
    // Asked again while still offline: still one link.
    assert!(matches!(
        a.request_contact(&link).await,
        Err(NodeError::Waiting(_))
    ));
    assert_eq!(a.waiting_links().await.unwrap().len(), 1);

    let mut ea = a.subscribe();
    let b = started(config(db.path(), &url, None)).await.unwrap();
    let mut eb = b.subscribe();
    tokio::time::timeout(Duration::from_secs(30), async {
        seen(
            &mut eb,
            |e| matches!(e, NodeEvent::ContactRequest { fingerprint, .. } if *fingerprint == fa),
        )
        .await;
        seen(&mut ea, |e| {
            matches!(e, NodeEvent::ContactRequestSent { fingerprint, .. } if *fingerprint == fb)
        })
        .await;
    })
    .await
    .expect("the request went out once bob was online");
    assert!(a.waiting_links().await.unwrap().is_empty());
    let outgoing = a.requests().await.unwrap();
    assert_eq!(outgoing.len(), 1);
    assert!(outgoing[0].outgoing && outgoing[0].fingerprint.to_hex() == fb);

    // Bob accepts: a contact as with any request.
    b.accept_request(&fa).await.unwrap();
    until(20, "alice to hold bob as a contact", async || {
        a.contacts()
            .await
            .unwrap()
            .iter()
            .any(|c| c.fingerprint.to_hex() == fb)
    })
    .await;
    a.stop().await;
    b.stop().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_link_can_be_cancelled() {
    let server = server().await;
    let url = server.url();
    let (_da, _db, a, b) = alice_and_bob(&url).await;
    let (fb, link) = (b.identity().fingerprint, b.share_link());
    b.stop().await;
    assert!(matches!(
        a.request_contact(&link).await,
        Err(NodeError::Waiting(_))
    ));
    a.cancel_request(&fb).await.unwrap();
    assert!(a.waiting_links().await.unwrap().is_empty());
    assert!(matches!(
        a.cancel_request(&fb).await,
        Err(NodeError::Contact(crate::contacts::ContactError::NotFound))
    ));
    a.stop().await;
    server.shutdown().await;
}
