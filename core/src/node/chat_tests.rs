//! Contacts and chat between real nodes: embedded signaling server, loopback WebRTC, real
//! profiles on disk.

use std::time::Duration;

use tokio::sync::mpsc::UnboundedReceiver;

use super::tests::{alice_and_bob, befriend, config, next, server, started, until};
use super::*;
use crate::chat::file::FileState;
use crate::chat::wire::{Frame, Op, OpKind};
use crate::identity::Fingerprint;

pub(super) async fn texts(node: &Node, conv: &str) -> Vec<String> {
    node.messages(conv, 10_000)
        .await
        .unwrap()
        .iter()
        .map(|m| m.text().unwrap_or("").to_owned())
        .collect()
}

/// The next event matching `f`.
pub(super) async fn wait_for<T>(
    rx: &mut UnboundedReceiver<NodeEvent>,
    mut f: impl FnMut(NodeEvent) -> Option<T>,
) -> T {
    loop {
        if let Some(t) = f(next(rx).await) {
            return t;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_accept_chat_and_receipts() {
    let server = server().await;
    let url = server.url();
    let (_da, _db, a, b) = alice_and_bob(&url).await;
    let (fa, fb) = (a.identity().fingerprint, b.identity().fingerprint);
    let (mut ea, mut eb) = (a.subscribe(), b.subscribe());

    // A link with the wrong fingerprint is refused before anything is stored.
    let wrong = format!("peerns2:{}?fp={}", b.peer_id(), "ab".repeat(32));
    assert!(matches!(
        a.request_contact(&wrong).await,
        Err(NodeError::KeyMismatch { .. })
    ));
    assert!(a.requests().await.unwrap().is_empty());
    assert!(matches!(
        a.send_message(&fb, "not yet").await,
        Err(NodeError::NotAllowed(_))
    ));

    let req = a.request_contact(&b.share_link()).await.unwrap();
    // B does not show its name to a stranger: A's request shows the short fingerprint until
    // B's accept brings the name.
    let short = fb.parse::<Fingerprint>().unwrap().short();
    assert_eq!((req.name.as_str(), req.outgoing), (short.as_str(), true));
    let (name, peer) = wait_for(&mut eb, |e| match e {
        NodeEvent::ContactRequest {
            fingerprint,
            name,
            peer,
        } if fingerprint == fa => Some((name, peer)),
        _ => None,
    })
    .await;
    assert_eq!(
        (name.as_str(), peer.as_str()),
        ("alice", a.peer_id().as_str())
    );
    let pending = b.requests().await.unwrap();
    assert_eq!(pending.len(), 1);
    assert!(!pending[0].outgoing && !pending[0].later);
    b.later_request(&fa).await.unwrap();
    assert!(b.requests().await.unwrap()[0].later);
    let contact = b.accept_request(&fa).await.unwrap();
    assert_eq!(contact.trust, Trust::Trusted);
    wait_for(&mut ea, |e| {
        matches!(e, NodeEvent::ContactAdded { ref fingerprint, .. } if *fingerprint == fb)
            .then_some(())
    })
    .await;
    let ca = a.contacts().await.unwrap();
    assert_eq!(
        (ca.len(), ca[0].name.as_str(), ca[0].trust),
        (1, "bob", Trust::Trusted)
    );
    assert!(a.requests().await.unwrap().is_empty());
    assert!(b.requests().await.unwrap().is_empty());

    // A message, its delivery, the reply, read receipts, ping.
    let sent = a.send_message(&fb, "hi bob").await.unwrap();
    assert!(sent.outgoing && sent.seq == 1);
    let got = wait_for(&mut eb, |e| match e {
        NodeEvent::MessageReceived { message } => Some(message),
        _ => None,
    })
    .await;
    assert_eq!(
        (got.text(), got.id, got.conv.to_hex()),
        (Some("hi bob"), sent.id, fa.clone())
    );
    wait_for(&mut ea, |e| match e {
        NodeEvent::MessageStatus(s) if s.status == MessageStatus::Delivered => Some(()),
        _ => None,
    })
    .await;
    let conv = b.conversations().await.unwrap();
    assert_eq!((conv.len(), conv[0].unread), (1, 1));
    assert_eq!(conv[0].last.as_ref().and_then(|m| m.text()), Some("hi bob"));
    b.mark_read(&fa).await.unwrap();
    assert_eq!(b.conversations().await.unwrap()[0].unread, 0);
    wait_for(&mut ea, |e| match e {
        NodeEvent::MessageStatus(s) if s.status == MessageStatus::Read => Some(()),
        _ => None,
    })
    .await;
    assert_eq!(
        a.messages(&fb, 10).await.unwrap()[0].status,
        MessageStatus::Read
    );
    b.send_message(&fa, "hi alice").await.unwrap();
    until(10, "the reply", async || {
        texts(&a, &fb).await == ["hi bob", "hi alice"]
    })
    .await;
    assert!(a.is_connected(&fb));
    let rtt = a.ping(&fb).await.unwrap();
    assert!(rtt < PING_TIMEOUT);

    // Blocking closes the link; the blocked side cannot reconnect and nothing new is stored.
    b.set_trust(&fa, Trust::Blocked).await.unwrap();
    until(10, "the link to close", async || !a.is_connected(&fb)).await;
    let _ = a.connect(&fb).await;
    a.send_message(&fb, "are you there?").await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!b.is_connected(&fa));
    assert_eq!(texts(&b, &fa).await, ["hi bob", "hi alice"]);
    assert!(b.requests().await.unwrap().is_empty());

    a.stop().await;
    b.stop().await;
    server.shutdown().await;
}

/// A request whose link closed before it arrived (under heavy loss the accepting side can give
/// up on a handshake the dialer saw finish) is asked again on a new link.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unanswered_request_is_asked_again_on_a_new_link() {
    let server = server().await;
    let (_da, _db, a, b) = alice_and_bob(&server.url()).await;
    let (fa, fb) = (a.identity().fingerprint, b.identity().fingerprint);
    let (mut ea, mut eb) = (a.subscribe(), b.subscribe());
    // Stored as `request_contact` stores it, with no link left to carry it.
    let (key, peer) = (b.inner.identity.public_key().to_bytes(), b.peer_id());
    a.inner
        .db(move |c| crate::contacts::add_request(c, &key, "bob", &peer, true, unix_ms()))
        .await
        .unwrap();
    assert!(!a.is_connected(&fb));
    a.inner.redial_wake.notify_one();
    wait_for(&mut eb, |e| match e {
        NodeEvent::ContactRequest { fingerprint, .. } if fingerprint == fa => Some(()),
        _ => None,
    })
    .await;
    b.accept_request(&fa).await.unwrap();
    wait_for(&mut ea, |e| match e {
        NodeEvent::ContactAdded { fingerprint, .. } if fingerprint == fb => Some(()),
        _ => None,
    })
    .await;
    assert!(a.requests().await.unwrap().is_empty());
    a.stop().await;
    b.stop().await;
    server.shutdown().await;
}

/// A request the other side refused for now (too many requests) has not arrived: the
/// requester asks again on the same link once the refusal's time has passed, and it arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_request_is_asked_again() {
    let server = server().await;
    let (_da, _db, a, b) = alice_and_bob(&server.url()).await;
    let (fa, fb) = (a.identity().fingerprint, b.identity().fingerprint);
    let bob: Fingerprint = fb.parse().unwrap();
    // Linked first, so that the request goes out at once when asked.
    let first = Inner::dial(&a.inner, &b.peer_id()).await.unwrap();
    // Bob lets one request per source through every second, and has just let one of Ann's through.
    {
        let mut limiter = lock(&b.inner.request_limiter);
        *limiter = crate::contacts::limit::RequestLimiter::new(1, 30, Duration::from_secs(1));
        limiter
            .check(std::time::Instant::now(), &fa.parse().unwrap(), "elsewhere")
            .unwrap();
    }
    let mut eb = b.subscribe();
    a.request_contact(&b.share_link()).await.unwrap();
    until(10, "ann told of the refusal", async || {
        lock(&a.inner.requests_refused).contains_key(&bob)
    })
    .await;
    // Asked again 2 s later (a minute outside tests), past Bob's window, on the same link.
    wait_for(&mut eb, |e| match e {
        NodeEvent::ContactRequest { fingerprint, .. } if fingerprint == fa => Some(()),
        _ => None,
    })
    .await;
    assert!(Arc::ptr_eq(&first, &a.inner.link(&bob).unwrap()));
    a.stop().await;
    b.stop().await;
    server.shutdown().await;
}

/// Alice has asked Bob to be a contact and Bob has seen it; Bob's events follow.
async fn asked(
    url: &str,
) -> (
    (tempfile::TempDir, tempfile::TempDir),
    Node,
    Node,
    UnboundedReceiver<NodeEvent>,
) {
    let (da, db, a, b) = alice_and_bob(url).await;
    let fa = a.identity().fingerprint;
    let mut eb = b.subscribe();
    a.request_contact(&b.share_link()).await.unwrap();
    wait_for(&mut eb, |e| match e {
        NodeEvent::ContactRequest { fingerprint, .. } if fingerprint == fa => Some(()),
        _ => None,
    })
    .await;
    ((da, db), a, b, eb)
}

/// A request whose link closed soon after it went out may not have arrived: the requester
/// dials again (and asks again on the new link).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_whose_link_closed_soon_is_redialled() {
    let server = server().await;
    let (_dirs, a, b, _eb) = asked(&server.url()).await;
    let (fa, fb) = (a.identity().fingerprint, b.identity().fingerprint);
    let first = b.inner.link(&fa.parse().unwrap()).unwrap();
    first.close().await;
    until(10, "a new link from the requester", async || {
        b.inner
            .link(&fa.parse().unwrap())
            .is_some_and(|l| !Arc::ptr_eq(&l, &first))
    })
    .await;
    assert!(!lock(&a.inner.requests_arrived).contains(&fb.parse().unwrap()));
    a.stop().await;
    b.stop().await;
    server.shutdown().await;
}

/// A request that went out on a link that stayed up has arrived: rejected (the requester is
/// not told) and the link gone, it is not asked again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_arrived_request_is_not_asked_again_after_a_rejection() {
    let server = server().await;
    let (_dirs, a, b, mut eb) = asked(&server.url()).await;
    let (fa, fb) = (a.identity().fingerprint, b.identity().fingerprint);
    // The link stays up past the 40 s after which the request counts as arrived.
    tokio::time::sleep(Duration::from_secs(41)).await;
    b.reject_request(&fa).await.unwrap();
    b.inner.link(&fa.parse().unwrap()).unwrap().close().await;
    until(10, "the link to close", async || !a.is_connected(&fb)).await;
    // The redial loop looks every second: nothing dials B, nothing is asked again.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(!a.is_connected(&fb));
    while let Ok(ev) = eb.try_recv() {
        assert!(
            !matches!(&ev, NodeEvent::ContactRequest { .. }),
            "asked again: {ev:?}"
        );
    }
    assert!(b.requests().await.unwrap().is_empty());
    a.stop().await;
    b.stop().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_outbox_edits_and_deletes_arrive_after_restart() {
    let server = server().await;
    let url = server.url();
    let (da, db, a, b) = alice_and_bob(&url).await;
    befriend(&a, &b).await;
    let (fa, fb) = (a.identity().fingerprint, b.identity().fingerprint);
    let first = a.send_message(&fb, "typo hre").await.unwrap();
    until(10, "the first message", async || {
        texts(&b, &fa).await == ["typo hre"]
    })
    .await;
    b.stop().await;

    // B is away: a new message, an edit of a delivered one, a message deleted before delivery.
    let second = a.send_message(&fb, "secret").await.unwrap();
    a.send_message(&fb, "third").await.unwrap();
    a.edit_message(&fb, &hex::encode(first.id), "typo here")
        .await
        .unwrap();
    a.delete_message(&fb, &hex::encode(second.id))
        .await
        .unwrap();
    // Waiting, or Sent onto the link B's stop had not closed yet; never delivered.
    let status = a.messages(&fb, 10).await.unwrap()[1].status;
    assert!(matches!(
        status,
        MessageStatus::Waiting | MessageStatus::Sent
    ));
    // A restarts too: the outbox is in its database.
    a.stop().await;
    let a = started(config(da.path(), &url, None)).await.unwrap();
    let b = started(config(db.path(), &url, None)).await.unwrap();
    // The message deleted before it was delivered never shows there.
    until(20, "the outbox", async || {
        texts(&b, &fa).await == ["typo here", "third"]
    })
    .await;
    let shown = b.messages(&fa, 10).await.unwrap();
    assert!(shown[0].edited && !shown[1].deleted);
    until(10, "the acks", async || {
        a.messages(&fb, 10)
            .await
            .unwrap()
            .iter()
            .all(|m| m.status == MessageStatus::Delivered)
    })
    .await;
    a.stop().await;
    b.stop().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_messages_exactly_once_while_the_receiver_comes_and_goes() {
    let server = server().await;
    let url = server.url();
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = started(config(da.path(), &url, None)).await.unwrap();
    let b = started(config(db.path(), &url, None)).await.unwrap();
    befriend(&a, &b).await;
    let (fa, fb) = (a.identity().fingerprint, b.identity().fingerprint);
    let mut b = Some(b);
    let mut rng = rand::rng();
    use rand::Rng;
    for i in 0..1000 {
        a.send_message(&fb, &format!("m{i}")).await.unwrap();
        if rng.random_ratio(1, 150) {
            match b.take() {
                Some(node) => node.stop().await,
                None => b = Some(started(config(db.path(), &url, None)).await.unwrap()),
            }
        }
        if i % 50 == 0 {
            tokio::task::yield_now().await;
        }
    }
    let b = match b {
        Some(b) => b,
        None => started(config(db.path(), &url, None)).await.unwrap(),
    };
    let want: Vec<String> = (0..1000).map(|i| format!("m{i}")).collect();
    until(60, "all 1000 messages", async || {
        b.messages(&fa, 10_000).await.unwrap().len() >= 1000
    })
    .await;
    assert_eq!(texts(&b, &fa).await, want);
    let seqs: Vec<u64> = b
        .messages(&fa, 10_000)
        .await
        .unwrap()
        .iter()
        .map(|m| m.seq)
        .collect();
    assert_eq!(seqs, (1..=1000).collect::<Vec<_>>());
    a.stop().await;
    b.stop().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_malformed_and_unauthorised_frames_are_refused() {
    let server = server().await;
    let url = server.url();
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let a = started(config(dirs[0].path(), &url, None)).await.unwrap();
    let b = started(config(dirs[1].path(), &url, None)).await.unwrap();
    let c = started(config(dirs[2].path(), &url, None)).await.unwrap();
    befriend(&a, &b).await;
    let (fa, fb, fc) = (
        a.identity().fingerprint,
        b.identity().fingerprint,
        c.identity().fingerprint,
    );
    let fp = |s: &str| s.parse::<Fingerprint>().unwrap();
    let link = a.inner.link(&fp(&fb)).unwrap();
    let op = |from: &str, to: &str, seq| Op {
        from: fp(from).0,
        to: fp(to).0,
        seq,
        id: rand::random(),
        kind: OpKind::Text,
        target: None,
        sent_ms: 1,
        body: b"forged".to_vec(),
    };
    // A claims to be C, or sends C's message to B.
    link.send(&Frame::Op(op(&fc, &fb, 1))).await.unwrap();
    link.send(&Frame::Op(op(&fa, &fc, 1))).await.unwrap();
    // Garbage and an oversize length inside the session.
    link.send_plain(vec![0xEE; 10]).await;
    let mut long = Frame::Data(vec![1; 10]).encode();
    long[1..3].copy_from_slice(&u16::MAX.to_be_bytes());
    link.send_plain(long).await;
    // Then a genuine message: it is stored, the rest is not.
    a.send_message(&fb, "genuine").await.unwrap();
    until(10, "the genuine message", async || {
        texts(&b, &fa).await == ["genuine"]
    })
    .await;
    assert_eq!(b.messages(&fa, 10).await.unwrap().len(), 1);

    // C, a stranger, may ask to be a contact but not send messages or data.
    Inner::dial(&c.inner, &b.peer_id()).await.unwrap();
    let cl = c.inner.link(&fp(&fb)).unwrap();
    cl.send(&Frame::Op(op(&fc, &fb, 1))).await.unwrap();
    cl.send(&Frame::Data(b"hi".to_vec())).await.unwrap();
    cl.send(&Frame::Ping { nonce: 1 }).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(b.messages(&fc, 10).await.unwrap().is_empty());
    assert!(
        b.contacts()
            .await
            .unwrap()
            .iter()
            .all(|k| k.fingerprint.to_hex() != fc)
    );

    // B blocks C straight from its request: C's key is refused at the handshake from then on.
    cl.send(&Frame::Request { name: "cy".into() })
        .await
        .unwrap();
    until(10, "C's request", async || {
        !b.requests().await.unwrap().is_empty()
    })
    .await;
    b.set_trust(&fc, Trust::Blocked).await.unwrap();
    assert!(b.requests().await.unwrap().is_empty());
    until(10, "C's link to close", async || !c.is_connected(&fb)).await;
    let _ = Inner::dial(&c.inner, &b.peer_id()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!b.is_connected(&fc));
    assert!(b.messages(&fc, 10).await.unwrap().is_empty());

    // A Known contact may message but not see presence (a Trusted-level capability): its
    // ping is refused and times out.
    b.set_trust(&fa, Trust::Known).await.unwrap();
    a.send_message(&fb, "still allowed").await.unwrap();
    until(10, "the Known contact's message", async || {
        texts(&b, &fa).await == ["genuine", "still allowed"]
    })
    .await;
    assert!(matches!(a.ping(&fb).await, Err(NodeError::Timeout(_))));
    b.set_trust(&fa, Trust::Trusted).await.unwrap();
    assert!(a.ping(&fb).await.is_ok());
    // Each refusal counts, and too many close the link.
    for _ in 0..10 {
        let _ = link.send_plain(vec![0xEE]).await;
    }
    until(
        10,
        "the link to close after repeated bad frames",
        async || !b.is_connected(&fa),
    )
    .await;
    a.stop().await;
    b.stop().await;
    c.stop().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_file_resumes_across_two_disconnects_and_verifies() {
    const MIB: u64 = 1 << 20;
    let server = server().await;
    let url = server.url();
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = started(config(da.path(), &url, None)).await.unwrap();
    let b = started(config(db.path(), &url, None)).await.unwrap();
    befriend(&a, &b).await;
    let fb = b.identity().fingerprint;
    let src = da.path().join("video.mp4");
    let mut content = vec![0u8; (50 * MIB) as usize];
    rand::fill(&mut content[..]);
    std::fs::write(&src, &content).unwrap();
    let want = blake3::hash(&content);
    let (mut ea, mut eb) = (a.subscribe(), b.subscribe());

    // Over the receiver's limit: refused, nothing written.
    b.set_max_file_size(10 * MIB).await.unwrap();
    a.send_file(&fb, src.to_str().unwrap()).await.unwrap();
    let ok = wait_for(&mut ea, |e| match e {
        NodeEvent::FileDone { ok, outgoing, .. } if outgoing => Some(ok),
        _ => None,
    })
    .await;
    assert!(!ok, "a file over the limit is refused");

    b.set_max_file_size(64 * MIB).await.unwrap();
    let sent = a.send_file(&fb, src.to_str().unwrap()).await.unwrap();
    assert_eq!(sent.kind, OpKind::File);
    let (mut cuts, mut last, mut resumed_at) = (0, 0, vec![]);
    let path = loop {
        match next(&mut eb).await {
            NodeEvent::FileProgress {
                bytes, total, id, ..
            } if id == hex::encode(sent.id) => {
                assert_eq!(total, 50 * MIB);
                if bytes < last {
                    panic!("progress went back from {last} to {bytes}");
                }
                if cuts < 2 && bytes >= (15 + 20 * cuts) * MIB {
                    // Cut every link between them; the receiver redials and resumes.
                    let links: Vec<_> = lock(&a.inner.links).values().flatten().cloned().collect();
                    for l in links {
                        l.close().await;
                    }
                    cuts += 1;
                    resumed_at.push(bytes);
                }
                last = bytes;
            }
            NodeEvent::FileReceived { path, .. } => break path,
            NodeEvent::FileDone { ok, id, .. } if id == hex::encode(sent.id) => {
                panic!("transfer ended, ok={ok}")
            }
            _ => {}
        }
    };
    assert_eq!(cuts, 2);
    let got = std::fs::read(&path).unwrap();
    assert_eq!(blake3::hash(&got), want);
    assert!(path.ends_with("video.mp4") && path.starts_with(db.path().to_str().unwrap()));
    let ok = wait_for(&mut ea, |e| match e {
        NodeEvent::FileDone { ok, outgoing, .. } if outgoing => Some(ok),
        _ => None,
    })
    .await;
    assert!(ok, "the sender hears that the file arrived");
    a.stop().await;
    b.stop().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_sent_while_the_contact_is_offline_arrives_when_it_returns() {
    let server = server().await;
    let url = server.url();
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = started(config(da.path(), &url, None)).await.unwrap();
    let b = started(config(db.path(), &url, None)).await.unwrap();
    befriend(&a, &b).await;
    let fb = b.identity().fingerprint;
    b.stop().await;
    let src = da.path().join("minutes.pdf");
    let content: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 256) as u8).collect();
    std::fs::write(&src, &content).unwrap();
    let sent = a.send_file(&fb, src.to_str().unwrap()).await.unwrap();
    let id = hex::encode(sent.id);
    // The chat shows it waiting: ours, nothing of it acknowledged, nothing to open.
    let waiting = a.file_transfer(&id).await.unwrap().unwrap();
    assert_eq!(
        (waiting.outgoing, waiting.state, waiting.bytes, waiting.size),
        (true, FileState::Transferring, 0, 3_000_000)
    );
    assert_eq!(
        (waiting.conversation.as_str(), waiting.path),
        (fb.as_str(), None)
    );
    // The original may go away: the profile holds a copy.
    std::fs::remove_file(&src).unwrap();
    let mut ea = a.subscribe();
    let b = started(config(db.path(), &url, None)).await.unwrap();
    let mut eb = b.subscribe();
    let path = wait_for(&mut eb, |e| match e {
        NodeEvent::FileReceived { id: got, path, .. } if got == id => Some(path),
        _ => None,
    })
    .await;
    assert_eq!(std::fs::read(&path).unwrap(), content);
    let shown = b.messages(&a.identity().fingerprint, 10).await.unwrap();
    let m = shown[0].manifest().unwrap();
    assert_eq!(
        (m.name.as_str(), m.size, m.mime.as_str()),
        ("minutes.pdf", 3_000_000, "application/pdf")
    );
    // A chat opened after the events went by (here after a restart) finds it whole, where it is.
    b.stop().await;
    let b = started(config(db.path(), &url, None)).await.unwrap();
    let got = b.file_transfer(&id).await.unwrap().unwrap();
    assert_eq!(
        (got.outgoing, got.state, got.bytes, got.name.as_str()),
        (false, FileState::Done, 3_000_000, "minutes.pdf")
    );
    assert_eq!(got.path.as_deref(), Some(path.as_str()));
    assert_eq!(got.conversation, a.identity().fingerprint);
    // The sender's side ends done too, with nothing to open (its copy was the profile's).
    let delivered = wait_for(&mut ea, |e| match e {
        NodeEvent::FileDone { id: done, ok, .. } if done == id => Some(ok),
        _ => None,
    })
    .await;
    assert!(delivered);
    let ours = a.file_transfer(&id).await.unwrap().unwrap();
    assert_eq!(
        (ours.state, ours.bytes, ours.path),
        (FileState::Done, 3_000_000, None)
    );
    // A message that is no file has no transfer; a malformed id is refused.
    let text = a.send_message(&fb, "see the minutes").await.unwrap();
    assert_eq!(a.file_transfer(&hex::encode(text.id)).await.unwrap(), None);
    assert!(matches!(
        a.file_transfer("zz").await,
        Err(NodeError::InvalidInput(_))
    ));
    a.stop().await;
    b.stop().await;
    server.shutdown().await;
}

/// An empty file is a file too: offered, "received" without a single chunk, verified, shown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_file_arrives() {
    let server = server().await;
    let url = server.url();
    let (da, _db, a, b) = alice_and_bob(&url).await;
    befriend(&a, &b).await;
    let fb = b.identity().fingerprint;
    let src = da.path().join("empty.txt");
    std::fs::write(&src, b"").unwrap();
    let mut eb = b.subscribe();
    let sent = a.send_file(&fb, src.to_str().unwrap()).await.unwrap();
    let path = wait_for(&mut eb, |e| match e {
        NodeEvent::FileReceived { id, path, .. } if id == hex::encode(sent.id) => Some(path),
        _ => None,
    })
    .await;
    assert!(path.ends_with("empty.txt"));
    assert_eq!(std::fs::read(&path).unwrap(), b"");
    a.stop().await;
    b.stop().await;
    server.shutdown().await;
}
