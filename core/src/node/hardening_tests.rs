//! What strangers, lesser contacts and squatters can get out of a node, and what peers can
//! make it do with odd input: real nodes, embedded signaling server, loopback WebRTC.

use std::time::Duration;

use tokio::sync::mpsc::UnboundedReceiver;

use super::tests::{Recorder, alice_and_bob, befriend, config, next, server, started, until};
use super::*;
use crate::chat::wire::Frame;
use crate::contacts::limit::PER_SOURCE;
use crate::identity::Fingerprint;

fn fp(s: &str) -> Fingerprint {
    s.parse().unwrap()
}

/// Every event that arrives within `ms`.
async fn drain(rx: &mut UnboundedReceiver<NodeEvent>, ms: u64) -> Vec<NodeEvent> {
    let mut out = vec![];
    let deadline = tokio::time::Instant::now() + Duration::from_millis(ms);
    while let Ok(Some(ev)) = tokio::time::timeout_at(deadline, rx.recv()).await {
        out.push(ev);
    }
    out
}

/// A third node with `name`.
async fn carol(url: &str, name: &str) -> (tempfile::TempDir, Node) {
    let dir = tempfile::tempdir().unwrap();
    let node = started(config(dir.path(), url, Some(name))).await.unwrap();
    (dir, node)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_and_known_contacts_get_no_name_and_no_read_receipts() {
    let server = server().await;
    let url = server.url();
    let (_da, _db, a, b) = alice_and_bob(&url).await;
    let (_dc, c) = carol(&url, "carol").await;
    let (fa, fb) = (a.identity().fingerprint, b.identity().fingerprint);

    // A stranger that connects learns nothing but the key the handshake proves.
    let cl = Inner::dial(&c.inner, &b.peer_id()).await.unwrap();
    assert_eq!(cl.hello_name(Duration::from_secs(2)).await, "");
    // The stranger's own request carries its name to the one it asks.
    let mut eb = b.subscribe();
    cl.send(&Frame::Request {
        name: "carol".into(),
    })
    .await
    .unwrap();
    let name = loop {
        if let NodeEvent::ContactRequest { name, .. } = next(&mut eb).await {
            break name;
        }
    };
    assert_eq!(name, "carol");

    // Trusted contacts see our name.
    befriend(&a, &b).await;
    let link = a.inner.link(&fp(&fb)).unwrap();
    assert_eq!(link.hello_name(Duration::from_secs(2)).await, "");
    for l in a.inner.all_links() {
        l.close().await;
    }
    a.connect(&fb).await.unwrap();
    let link = a.inner.link(&fp(&fb)).unwrap();
    assert_eq!(link.hello_name(Duration::from_secs(2)).await, "bob");

    // A Known contact gets messages but neither our name nor read receipts.
    b.set_trust(&fa, Trust::Known).await.unwrap();
    let before: Vec<_> = b.inner.all_links().iter().map(|l| l.cid.clone()).collect();
    for l in a.inner.all_links() {
        l.close().await;
    }
    // B drops every session from before the trust change (A may already have dialled anew).
    until(10, "the links to close", async || {
        b.inner.all_links().iter().all(|l| !before.contains(&l.cid))
    })
    .await;
    a.connect(&fb).await.unwrap();
    let link = a.inner.link(&fp(&fb)).unwrap();
    assert_eq!(link.hello_name(Duration::from_secs(2)).await, "");
    a.send_message(&fb, "read me").await.unwrap();
    until(10, "the message", async || {
        b.messages(&fa, 10).await.unwrap().len() == 1
    })
    .await;
    until(10, "the delivery", async || {
        a.messages(&fb, 10).await.unwrap()[0].status == MessageStatus::Delivered
    })
    .await;
    b.mark_read(&fa).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        a.messages(&fb, 10).await.unwrap()[0].status,
        MessageStatus::Delivered
    );
    // Asking again (A lost B) is answered with an accept, but without B's name.
    a.remove_contact(&fb).await.unwrap();
    let mut ea = a.subscribe();
    a.request_contact(&b.share_link()).await.unwrap();
    let name = loop {
        if let NodeEvent::ContactAdded { fingerprint, name } = next(&mut ea).await {
            assert_eq!(fingerprint, fb);
            break name;
        }
    };
    assert_eq!(name, fp(&fb).short());

    a.stop().await;
    b.stop().await;
    c.stop().await;
    server.shutdown().await;
}

/// Another identity registers a contact's old PeerJS ID: it gets nothing meant for the contact,
/// not even our name, and the contact is not reported reachable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_over_id_never_receives_what_was_meant_for_the_contact() {
    let server = server().await;
    let url = server.url();
    let (_da, _db, a, b) = alice_and_bob(&url).await;
    befriend(&a, &b).await;
    let (fa, fb) = (a.identity().fingerprint, b.identity().fingerprint);
    let old = b.peer_id().to_owned();
    b.stop().await;
    until(10, "B to be gone", async || !a.is_connected(&fb)).await;

    // Mallory starts on B's old ID.
    let dm = tempfile::tempdir().unwrap();
    crate::store::Profile::open_desktop(dm.path())
        .unwrap()
        .store()
        .set_peer_id(&old)
        .unwrap();
    let m = started(config(dm.path(), &url, Some("mallory")))
        .await
        .unwrap();
    assert_eq!(m.peer_id(), old);
    let mut em = m.subscribe();
    let mut ea = a.subscribe();

    // Every way A addresses B refuses Mallory's link.
    assert!(matches!(
        a.ping(&fb).await,
        Err(NodeError::KeyMismatch { .. })
    ));
    assert!(matches!(
        a.connect(&fb).await,
        Err(NodeError::KeyMismatch { .. })
    ));
    assert!(matches!(
        a.send(&fb, b"for bob".to_vec()).await,
        Err(NodeError::NotConnected(_))
    ));
    assert!(!a.is_connected(&fb));
    a.send_message(&fb, "for bob only").await.unwrap();
    let seen = drain(&mut ea, 1_000).await;
    assert!(
        seen.iter()
            .any(|e| matches!(e, NodeEvent::KeyChanged { peer, .. } if *peer == old)),
        "{seen:?}"
    );
    // Mallory has a link from A (the dial), and nothing on it: no name, no data, no message.
    let ml = m.inner.link(&fp(&fa)).expect("A's dial reached Mallory");
    assert_eq!(ml.hello_name(Duration::from_secs(1)).await, "");
    let got = drain(&mut em, 1_000).await;
    assert!(
        got.iter().all(|e| !matches!(
            e,
            NodeEvent::DataReceived { .. }
                | NodeEvent::MessageReceived { .. }
                | NodeEvent::ContactRequest { .. }
        )),
        "{got:?}"
    );
    assert!(m.messages(&fa, 10).await.unwrap().is_empty());
    assert_eq!(
        a.messages(&fb, 10).await.unwrap()[0].status,
        MessageStatus::Waiting
    );
    a.stop().await;
    m.stop().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_names_arrive_sanitized_and_notifications_use_our_name() {
    let server = server().await;
    let url = server.url();
    let (da, _db, a, b) = alice_and_bob(&url).await;
    let (_dc, c) = carol(&url, "carol").await;
    let (fa, fb, fc) = (
        a.identity().fingerprint,
        b.identity().fingerprint,
        c.identity().fingerprint,
    );

    // A stranger's request with a right-to-left override, zero-width and control characters.
    let mut eb = b.subscribe();
    let cl = Inner::dial(&c.inner, &b.peer_id()).await.unwrap();
    cl.send(&Frame::Request {
        name: "\u{200B}Bank\u{202E}gpj.exe\u{2066}\n\u{1b}[1m  support\u{200D}".into(),
    })
    .await
    .unwrap();
    let name = loop {
        if let NodeEvent::ContactRequest {
            name, fingerprint, ..
        } = next(&mut eb).await
        {
            assert_eq!(fingerprint, fc);
            break name;
        }
    };
    assert_eq!(name, "Bankgpj.exe[1m support");
    let stored = b.requests().await.unwrap();
    assert_eq!(stored[0].name, name);

    // A notification names the sender as we saved it, not as its hello says now.
    a.stop().await;
    let notes = Arc::new(Recorder::default());
    let mut cfg = config(da.path(), &url, None);
    cfg.platform.notifier = Some(notes.clone());
    let a = started(cfg).await.unwrap();
    befriend(&b, &a).await;
    lock(&notes.0).clear();
    b.set_display_name("Your Bank").await.unwrap();
    for l in b.inner.all_links() {
        l.close().await;
    }
    until(10, "the link to close", async || !a.is_connected(&fb)).await;
    b.connect(&fa).await.unwrap();
    until(10, "the new link", async || a.is_connected(&fb)).await;
    let link = a.inner.link(&fp(&fb)).unwrap();
    assert_eq!(link.hello_name(Duration::from_secs(2)).await, "Your Bank");
    b.send_message(&fa, "hello").await.unwrap();
    until(10, "a notification", async || !lock(&notes.0).is_empty()).await;
    assert_eq!(lock(&notes.0)[0].title, "bob");

    a.stop().await;
    b.stop().await;
    c.stop().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_flood_is_refused_per_source() {
    let server = server().await;
    let url = server.url();
    let (_da, _db, _a, b) = alice_and_bob(&url).await;
    let (_dc, c) = carol(&url, "carol").await;
    let fc = c.identity().fingerprint;
    let mut eb = b.subscribe();
    let cl = Inner::dial(&c.inner, &b.peer_id()).await.unwrap();
    for i in 0..PER_SOURCE + 3 {
        cl.send(&Frame::Request {
            name: format!("carol {i}"),
        })
        .await
        .unwrap();
    }
    let seen = drain(&mut eb, 1_500).await;
    let requests: Vec<_> = seen
        .iter()
        .filter_map(|e| match e {
            NodeEvent::ContactRequest {
                fingerprint, name, ..
            } if *fingerprint == fc => Some(name.clone()),
            _ => None,
        })
        .collect();
    let want: Vec<_> = (0..PER_SOURCE).map(|i| format!("carol {i}")).collect();
    // A request asked again is shown once (it only updates the stored one).
    assert_eq!(requests, want[..1], "one request shown");
    // What was refused left nothing behind: the stored request is the last one let through.
    let stored = b.requests().await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].name, want[PER_SOURCE - 1]);
    b.stop().await;
    c.stop().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_largest_seqs_are_refused_or_clamped_not_a_panic() {
    let server = server().await;
    let url = server.url();
    let (_da, _db, a, b) = alice_and_bob(&url).await;
    befriend(&a, &b).await;
    let (fa, fb) = (a.identity().fingerprint, b.identity().fingerprint);
    a.send_message(&fb, "one").await.unwrap();
    until(10, "the first message", async || {
        b.messages(&fa, 10).await.unwrap().len() == 1
    })
    .await;
    let link = a.inner.link(&fp(&fb)).unwrap();
    for frame in [
        Frame::Ack {
            seq: u64::MAX,
            resync: true,
        },
        Frame::Ack {
            seq: u64::MAX - 1,
            resync: true,
        },
        Frame::Ack {
            seq: u64::MAX,
            resync: false,
        },
        Frame::Read { seq: u64::MAX },
        Frame::FileResume {
            id: [1; 16],
            index: u64::MAX,
        },
        Frame::FileAck {
            id: [1; 16],
            index: u64::MAX,
        },
        Frame::FileChunk {
            id: [1; 16],
            index: u64::MAX,
            data: vec![1],
        },
    ] {
        link.send(&frame).await.unwrap();
    }
    // B's link still reads frames: a ping is answered and a message is stored once.
    assert!(a.ping(&fb).await.is_ok());
    a.send_message(&fb, "two").await.unwrap();
    until(10, "the second message", async || {
        b.messages(&fa, 10).await.unwrap().len() == 2
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(b.messages(&fa, 10).await.unwrap().len(), 2);
    // B's own message is neither resent from a wrapped seq nor marked read by the huge ones.
    b.send_message(&fa, "reply").await.unwrap();
    until(10, "the reply", async || {
        a.messages(&fb, 10).await.unwrap().len() == 3
    })
    .await;
    assert!(b.is_connected(&fa));
    a.stop().await;
    b.stop().await;
    server.shutdown().await;
}
