//! Contacts whose persistent IDs changed find each other again: real nodes, embedded signaling
//! server, loopback WebRTC, real profiles on disk.

use std::time::Duration;

use super::tests::{alice_and_bob, befriend, config, server, started, until};
use super::*;

/// Moves a stopped node's profile to a new persistent ID; returns it.
fn move_profile(dir: &std::path::Path) -> String {
    let mut profile = crate::store::Profile::open_desktop(dir).unwrap();
    let id = profile.move_to_new_peer_id().unwrap();
    assert_eq!(profile.identity().peer_id(), id);
    id
}

async fn route_of(node: &Node, fp: &str) -> Option<String> {
    node.contacts()
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.fingerprint.to_hex() == fp)
        .and_then(|c| c.peer_id)
}

/// Both contacts move to new IDs while apart (neither can dial the other's known ID); one has
/// a message waiting. They meet at their rendezvous, learn each other's new ID through a
/// session handshake, and the message is delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contacts_that_both_moved_meet_again() {
    let server = server().await;
    let url = server.url();
    let (da, db, a, b) = alice_and_bob(&url).await;
    befriend(&a, &b).await;
    let (fa, fb) = (a.identity().fingerprint, b.identity().fingerprint);
    until(10, "bob sees alice as a contact", async || {
        route_of(&b, &fa).await.is_some()
    })
    .await;
    a.stop().await;
    b.stop().await;
    drop((a, b));

    let (ida, idb) = (move_profile(da.path()), move_profile(db.path()));
    // Alice's ID changed, so her search for bob begins as the node starts, possibly before
    // anyone subscribes: then it is running when we look.
    let a = Node::start(config(da.path(), &url, None)).await.unwrap();
    let mut ea = a.subscribe();
    let searching_before = a.searching().contains(&fb);
    assert!(a.wait_connected(Duration::from_secs(20)).await);
    assert_eq!(a.peer_id(), ida);
    a.send_message(&fb, "where are you?").await.unwrap();
    let b = started(config(db.path(), &url, None)).await.unwrap();
    assert_eq!(b.peer_id(), idb);

    // Both look for each other (each has not seen the other since its own ID changed).
    let started = tokio::time::Instant::now();
    until(60, "the message reaches bob", async || {
        b.messages(&fa, 10)
            .await
            .unwrap()
            .iter()
            .any(|m| m.text() == Some("where are you?"))
    })
    .await;
    tracing::info!(elapsed = ?started.elapsed(), "met at the rendezvous");
    // Each side stored the other's new ID, proved by the handshake on it.
    assert_eq!(route_of(&a, &fb).await.as_deref(), Some(idb.as_str()));
    assert_eq!(route_of(&b, &fa).await.as_deref(), Some(ida.as_str()));
    // The search was announced and ends once linked.
    let mut saw = (false, false);
    until(10, "the search ends", async || {
        while let Ok(ev) = ea.try_recv() {
            if let NodeEvent::ContactSearch {
                fingerprint,
                searching,
            } = ev
                && fingerprint == fb
            {
                if searching {
                    saw.0 = true;
                } else {
                    saw.1 = true;
                }
            }
        }
        saw.1 && a.searching().is_empty() && b.searching().is_empty()
    })
    .await;
    assert!(
        saw.0 || searching_before,
        "alice announced her search for bob"
    );
    a.stop().await;
    b.stop().await;
}

/// Someone else holds a node's persistent ID while it is away (squatted): it starts on a new
/// ID, keeps the old one in its history, and a contact that reaches the squatter learns the
/// key is not its contact's (nothing is delivered to it) while the real contact is reached on
/// its new ID.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_squatted_id_is_replaced_and_contacts_follow() {
    let server = server().await;
    let url = server.url();
    let (da, db, dm) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let a = started(config(da.path(), &url, Some("alice")))
        .await
        .unwrap();
    let b = started(config(db.path(), &url, Some("bob"))).await.unwrap();
    befriend(&a, &b).await;
    let (fa, fb) = (a.identity().fingerprint, b.identity().fingerprint);
    let old_b = b.peer_id().to_owned();
    b.stop().await;
    drop(b);

    // Mallory registers Bob's ID (learned from a share link) while Bob is away.
    {
        let m = started(config(dm.path(), &url, Some("mallory")))
            .await
            .unwrap();
        m.stop().await;
    }
    crate::store::Profile::open_desktop(dm.path())
        .unwrap()
        .store()
        .set_peer_id(&old_b)
        .unwrap();
    let m = started(config(dm.path(), &url, None)).await.unwrap();
    assert_eq!(m.peer_id(), old_b);
    let fm = m.identity().fingerprint;

    let mut ea = a.subscribe();
    a.send_message(&fb, "still there?").await.unwrap();
    // Alice dials Bob's old ID and meets Mallory's key: warned, nothing granted.
    let changed = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if let Some(NodeEvent::KeyChanged {
                known, presented, ..
            }) = ea.recv().await
            {
                return (known, presented);
            }
        }
    })
    .await
    .expect("alice was warned about the other key");
    assert_eq!(changed, (fb.clone(), fm));
    assert!(m.messages(&fa, 10).await.unwrap().is_empty());

    // Bob comes back: his ID is taken, so he moves to a new one and reaches Alice.
    let b = started(config(db.path(), &url, None)).await.unwrap();
    assert_ne!(b.peer_id(), old_b);
    let history = crate::store::Profile::open_desktop(db.path())
        .unwrap()
        .store()
        .peer_id_history()
        .unwrap();
    assert_eq!(history, [old_b.clone(), b.peer_id().to_owned()]);
    until(60, "the message reaches bob", async || {
        b.messages(&fa, 10)
            .await
            .unwrap()
            .iter()
            .any(|m| m.text() == Some("still there?"))
    })
    .await;
    assert_eq!(
        route_of(&a, &fb).await.as_deref(),
        Some(b.peer_id().as_str())
    );
    assert!(m.messages(&fa, 10).await.unwrap().is_empty());
    a.stop().await;
    b.stop().await;
    m.stop().await;
}

/// An ID we held is registered by someone else while we are offline (the server let it go):
/// the reconnect is refused as taken, and instead of staying offline until a restart the node
/// moves to a new ID after a backoff and is online there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_id_taken_while_offline_is_replaced() {
    use crate::signaling::client::{ClaimResult, NetworkPath, ServerUrl, SignalingConfig};
    use crate::signaling::driver::SignalingHandle;
    let server = server().await;
    let url = server.url();
    let da = tempfile::tempdir().unwrap();
    let a = started(config(da.path(), &url, Some("alice")))
        .await
        .unwrap();
    until(10, "online", async || {
        a.signaling_state() == SignalingState::Connected
    })
    .await;
    let old = a.peer_id().to_owned();
    a.network_changed(NetworkPath::offline()).unwrap();
    let squatter = SignalingHandle::spawn(SignalingConfig::new(ServerUrl::parse(&url).unwrap()));
    let mut claimed = None;
    until(10, "the squatter holds the ID", async || {
        if claimed.is_none() {
            let (reg, result) = squatter.claim(&old, "not-alice").await.unwrap();
            if result == ClaimResult::Claimed {
                claimed = Some(reg);
            } else {
                squatter.unregister(reg).unwrap();
            }
        }
        claimed.is_some()
    })
    .await;
    a.network_changed(NetworkPath::online("wifi")).unwrap();
    until(30, "online at a new ID", async || {
        a.peer_id() != old && a.signaling_state() == SignalingState::Connected
    })
    .await;
    let history = crate::store::Profile::open_desktop(da.path())
        .unwrap()
        .store()
        .peer_id_history()
        .unwrap();
    assert_eq!(history, [old, a.peer_id().to_owned()]);
    squatter.shutdown().await;
    a.stop().await;
}
