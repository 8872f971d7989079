//! Contacts and their chats across absences: accepts given while the requester was away,
//! messages deleted or failed before they were delivered, files whose transfer could not be
//! recorded, blocks that stay.

use std::time::Duration;

use tokio::sync::mpsc::UnboundedReceiver;

use super::chat_tests::{texts, wait_for};
use super::tests::{alice_and_bob, befriend, config, server, started, until};
use super::*;
use crate::chat::file::FileState;

/// Runs `sql` on the profile database of a stopped node.
fn on_disk(profile: &std::path::Path, sql: &str) {
    let db = rusqlite::Connection::open(profile.join("peerns.db")).unwrap();
    assert!(db.execute(sql, []).unwrap() > 0, "{sql}");
}

/// `a` asks `b` to be a contact; returns once `b` (whose events are `eb`) shows the request.
async fn ask(a: &Node, b: &Node, eb: &mut UnboundedReceiver<NodeEvent>) {
    let fa = a.identity().fingerprint;
    a.request_contact(&b.share_link()).await.unwrap();
    wait_for(eb, |e| match e {
        NodeEvent::ContactRequest { fingerprint, .. } if fingerprint == fa => Some(()),
        _ => None,
    })
    .await;
}

/// The statuses of `b`'s messages with `fa` that are not deleted, oldest first.
async fn statuses(b: &Node, fa: &str) -> Vec<MessageStatus> {
    let shown = b.messages(fa, 100).await.unwrap();
    shown
        .iter()
        .filter(|m| !m.deleted)
        .map(|m| m.status)
        .collect()
}

/// A contact that accepted our request while we were away sends what it wrote since on the new
/// link before its accept (the answer to the request we repeat there) reaches us: the messages
/// arrive all the same and never show as failed on its side, and its presence secret is kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_written_after_accepting_an_absent_requester_arrive() {
    let server = server().await;
    let url = server.url();
    let (da, _db, a, b) = alice_and_bob(&url).await;
    let (fa, fb) = (a.identity().fingerprint, b.identity().fingerprint);
    let mut eb = b.subscribe();
    ask(&a, &b, &mut eb).await;
    a.stop().await;
    b.accept_request(&fa).await.unwrap();
    b.send_message(&fa, "welcome").await.unwrap();
    b.send_message(&fa, "second").await.unwrap();

    let a = started(config(da.path(), &url, None)).await.unwrap();
    until(30, "the accept", async || {
        let contacts = a.contacts().await.unwrap();
        contacts.iter().any(|c| c.fingerprint.to_hex() == fb)
    })
    .await;
    until(20, "the messages", async || {
        texts(&a, &fb).await == ["welcome", "second"]
    })
    .await;
    until(10, "their acks", async || {
        statuses(&b, &fa).await == [MessageStatus::Delivered; 2]
    })
    .await;
    // Its presence secret, sent before the accept too, was kept: A recognises B nearby.
    let secrets = a
        .inner
        .db(|c| crate::contacts::presence_secrets(c, Trust::Trusted))
        .await
        .unwrap();
    assert!(secrets.iter().any(|(fp, _)| fp.to_hex() == fb));
    while let Ok(e) = eb.try_recv() {
        assert!(
            !matches!(&e, NodeEvent::MessageStatus(s) if s.status == MessageStatus::Failed),
            "{e:?}"
        );
    }
    a.stop().await;
    b.stop().await;
    server.shutdown().await;
}

/// An accept given while the requester was away (and we were offline: no dial then) reaches it
/// when both are back, though its request is too old for the requester to dial for it: the
/// accepting side dials the new contact until a link reaches it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accept_given_while_the_requester_was_away_reaches_it() {
    let server = server().await;
    let url = server.url();
    let (da, db, a, b) = alice_and_bob(&url).await;
    let (fa, fb) = (a.identity().fingerprint, b.identity().fingerprint);
    let mut eb = b.subscribe();
    ask(&a, &b, &mut eb).await;
    a.stop().await;
    b.stop().await;
    let offline = Node::start(config(db.path(), "ws://127.0.0.1:9/peerjs", None))
        .await
        .unwrap();
    offline.accept_request(&fa).await.unwrap();
    offline.stop().await;
    // Older than both the requester's redial window and its start's dial.
    on_disk(
        da.path(),
        "UPDATE contact_requests SET created_ms = created_ms - 40 * 86400000",
    );
    let b = started(config(db.path(), &url, None)).await.unwrap();
    let a = started(config(da.path(), &url, None)).await.unwrap();
    until(40, "the accept", async || {
        let contacts = a.contacts().await.unwrap();
        contacts.iter().any(|c| c.fingerprint.to_hex() == fb)
    })
    .await;
    assert!(a.requests().await.unwrap().is_empty());
    a.stop().await;
    b.stop().await;
    server.shutdown().await;
}

/// A requester whose contact accepted while it was away, and no longer dials it (a day on),
/// asks again when it starts: the accept comes as the answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_requester_asks_again_at_start_for_an_accept_it_missed() {
    let server = server().await;
    let url = server.url();
    let (da, db, a, b) = alice_and_bob(&url).await;
    let (fa, fb) = (a.identity().fingerprint, b.identity().fingerprint);
    let mut eb = b.subscribe();
    ask(&a, &b, &mut eb).await;
    a.stop().await;
    b.accept_request(&fa).await.unwrap();
    b.stop().await;
    // Two days on: the requester's redial window is long past, and the accepting side has
    // stopped dialling for its new contact.
    on_disk(
        da.path(),
        "UPDATE contact_requests SET created_ms = created_ms - 2 * 86400000",
    );
    on_disk(
        db.path(),
        "UPDATE contacts SET created_ms = created_ms - 2 * 86400000",
    );
    let b = started(config(db.path(), &url, None)).await.unwrap();
    let a = started(config(da.path(), &url, None)).await.unwrap();
    until(30, "the accept", async || {
        let contacts = a.contacts().await.unwrap();
        contacts.iter().any(|c| c.fingerprint.to_hex() == fb)
    })
    .await;
    a.stop().await;
    b.stop().await;
    server.shutdown().await;
}

/// Messages that will never be delivered keep their place in the stream: a file deleted before
/// it was delivered (its transfer ends, nothing of it reaches the contact) and messages the
/// contact refused after removing us, who later becomes a contact again. What comes after them
/// arrives, and the failed ones stay failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_deleted_or_failed_before_delivery_keep_the_stream_going() {
    let server = server().await;
    let url = server.url();
    let (da, db, a, b) = alice_and_bob(&url).await;
    befriend(&a, &b).await;
    let (fa, fb) = (a.identity().fingerprint, b.identity().fingerprint);

    // A file to A while it is away, deleted before A returns; a text deleted likewise.
    a.stop().await;
    let src = db.path().join("draft.pdf");
    std::fs::write(&src, vec![7u8; 100_000]).unwrap();
    let mut eb = b.subscribe();
    let file = b.send_file(&fa, src.to_str().unwrap()).await.unwrap();
    let typo = b.send_message(&fa, "oops").await.unwrap();
    b.delete_message(&fa, &hex::encode(file.id)).await.unwrap();
    b.delete_message(&fa, &hex::encode(typo.id)).await.unwrap();
    let ok = wait_for(&mut eb, |e| match e {
        NodeEvent::FileDone { ok, outgoing, .. } if outgoing => Some(ok),
        _ => None,
    })
    .await;
    assert!(!ok, "a deleted file's transfer ends");
    let ended = b
        .file_transfer(&hex::encode(file.id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ended.state, FileState::Refused);
    b.send_message(&fa, "after").await.unwrap();
    let a = started(config(da.path(), &url, None)).await.unwrap();
    until(30, "what came after", async || {
        texts(&a, &fb).await == ["after"]
    })
    .await;
    assert!(
        a.file_transfer(&hex::encode(file.id))
            .await
            .unwrap()
            .is_none()
    );
    until(10, "the acks", async || {
        statuses(&b, &fa).await == [MessageStatus::Delivered]
    })
    .await;

    // A removes B; what B writes then fails. A asks B again: B still has A and accepts at once.
    a.remove_contact(&fb).await.unwrap();
    b.send_message(&fa, "are you there?").await.unwrap();
    until(20, "the refusal", async || {
        statuses(&b, &fa).await.last() == Some(&MessageStatus::Failed)
    })
    .await;
    a.request_contact(&b.share_link()).await.unwrap();
    until(20, "the accept", async || {
        let contacts = a.contacts().await.unwrap();
        contacts.iter().any(|c| c.fingerprint.to_hex() == fb)
    })
    .await;
    b.send_message(&fa, "back again").await.unwrap();
    until(20, "the new message", async || {
        texts(&a, &fb).await == ["after", "back again"]
    })
    .await;
    until(10, "its ack", async || {
        statuses(&b, &fa).await
            == [
                MessageStatus::Delivered,
                MessageStatus::Failed,
                MessageStatus::Delivered,
            ]
    })
    .await;
    a.stop().await;
    b.stop().await;
    server.shutdown().await;
}

/// A blocked contact's record is its block: removing it is refused, and the block stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocked_contact_is_not_removed() {
    let server = server().await;
    let (_da, _db, a, b) = alice_and_bob(&server.url()).await;
    befriend(&a, &b).await;
    let fb = b.identity().fingerprint;
    a.set_trust(&fb, Trust::Blocked).await.unwrap();
    assert!(matches!(
        a.remove_contact(&fb).await,
        Err(NodeError::NotAllowed(_))
    ));
    let kept = a.contacts().await.unwrap();
    assert_eq!(kept[0].trust, Trust::Blocked);
    a.set_trust(&fb, Trust::Known).await.unwrap();
    a.remove_contact(&fb).await.unwrap();
    assert!(a.contacts().await.unwrap().is_empty());
    a.stop().await;
    b.stop().await;
    server.shutdown().await;
}

/// A file whose transfer cannot be recorded when its message arrives (a full disk) is not taken
/// half: its message is not stored or acknowledged either, and the file arrives whole once it
/// can be. (The message used to be stored and acknowledged alone: the file never downloaded.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_whose_transfer_cannot_be_recorded_is_taken_again() {
    let server = server().await;
    let url = server.url();
    let (da, _db, a, b) = alice_and_bob(&url).await;
    befriend(&a, &b).await;
    let (fa, fb) = (a.identity().fingerprint, b.identity().fingerprint);
    let full = "CREATE TEMP TRIGGER full BEFORE INSERT ON files
                BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END;";
    b.inner
        .db(move |c| {
            c.execute_batch(full)
                .map_err(crate::store::StoreError::from)
        })
        .await
        .unwrap();
    let src = da.path().join("notes.txt");
    std::fs::write(&src, vec![b'n'; 200_000]).unwrap();
    let mut eb = b.subscribe();
    let sent = a.send_file(&fb, src.to_str().unwrap()).await.unwrap();
    let id = hex::encode(sent.id);
    until(10, "the file's message to go out", async || {
        let shown = a.messages(&fb, 10).await.unwrap();
        shown[0].status == MessageStatus::Sent
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(b.messages(&fa, 10).await.unwrap().is_empty());
    assert!(b.file_transfer(&id).await.unwrap().is_none());
    assert_eq!(
        a.messages(&fb, 10).await.unwrap()[0].status,
        MessageStatus::Sent
    );

    // Space again; the next link carries the outbox from its first unacknowledged op.
    b.inner
        .db(|c| {
            c.execute_batch("DROP TRIGGER temp.full")
                .map_err(crate::store::StoreError::from)
        })
        .await
        .unwrap();
    let links: Vec<_> = lock(&a.inner.links).values().flatten().cloned().collect();
    for l in links {
        l.close().await;
    }
    let path = wait_for(&mut eb, |e| match e {
        NodeEvent::FileReceived { id: got, path, .. } if got == id => Some(path),
        _ => None,
    })
    .await;
    assert_eq!(std::fs::read(path).unwrap(), vec![b'n'; 200_000]);
    a.stop().await;
    b.stop().await;
    server.shutdown().await;
}

/// Removing a contact ends the files still on their way to it: the sender's copy in the
/// profile goes (it was kept for ever, waiting for a receiver that would refuse it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_a_contact_ends_its_unfinished_files() {
    let server = server().await;
    let url = server.url();
    let (da, _db, a, b) = alice_and_bob(&url).await;
    befriend(&a, &b).await;
    let fb = b.identity().fingerprint;
    b.stop().await;
    let src = da.path().join("slides.pdf");
    std::fs::write(&src, vec![3u8; 100_000]).unwrap();
    let sent = a.send_file(&fb, src.to_str().unwrap()).await.unwrap();
    let id = hex::encode(sent.id);
    let copies = da.path().join("files").join("out");
    assert_eq!(std::fs::read_dir(&copies).unwrap().count(), 1);
    let mut ea = a.subscribe();
    a.remove_contact(&fb).await.unwrap();
    let ok = wait_for(&mut ea, |e| match e {
        NodeEvent::FileDone { id: got, ok, .. } if got == id => Some(ok),
        _ => None,
    })
    .await;
    assert!(!ok);
    let ended = a.file_transfer(&id).await.unwrap().unwrap();
    assert_eq!(ended.state, FileState::Refused);
    assert_eq!(std::fs::read_dir(&copies).unwrap().count(), 0);
    a.stop().await;
    server.shutdown().await;
}

/// Copies and partial files that no unfinished transfer owns (a stop between writing one and
/// recording or ending its transfer) are deleted once an hour old; those of transfers under
/// way, and fresh ones (a copy is written before its transfer is recorded), stay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_no_transfer_owns_are_swept() {
    let server = server().await;
    let url = server.url();
    let (da, _db, a, b) = alice_and_bob(&url).await;
    befriend(&a, &b).await;
    let fb = b.identity().fingerprint;
    b.stop().await;
    let src = da.path().join("kept.pdf");
    std::fs::write(&src, vec![1u8; 10_000]).unwrap();
    let sent = a.send_file(&fb, src.to_str().unwrap()).await.unwrap();
    let files = da.path().join("files");
    std::fs::create_dir_all(files.join("in")).unwrap();
    let two_hours_ago = std::time::SystemTime::now() - Duration::from_secs(2 * 3600);
    let write = |path: std::path::PathBuf, old: bool| {
        std::fs::write(&path, b"x").unwrap();
        if old {
            let f = std::fs::File::options().write(true).open(&path).unwrap();
            f.set_modified(two_hours_ago).unwrap();
        }
        path
    };
    let owned = files.join("out").join(hex::encode(sent.id));
    std::fs::File::options()
        .write(true)
        .open(&owned)
        .unwrap()
        .set_modified(two_hours_ago)
        .unwrap();
    let orphan_out = write(files.join("out").join("ab".repeat(16)), true);
    let orphan_part = write(
        files.join("in").join(format!("{}.part", "cd".repeat(16))),
        true,
    );
    let fresh = write(files.join("out").join("ef".repeat(16)), false);
    let other = write(files.join("in").join("notes.txt"), true);
    // The folders of groups: one still stored, one deleted (a stop came between its rows and
    // its folder).
    let kept = a.group_create("kept").await.unwrap();
    let group_folder = |gid: String| {
        let d = files.join("groups").join(gid);
        std::fs::create_dir_all(&d).unwrap();
        write(d.join("photo.jpg"), true);
        std::fs::File::open(&d)
            .unwrap()
            .set_modified(two_hours_ago)
            .unwrap();
        d
    };
    let kept_folder = group_folder(kept.to_hex());
    let deleted_folder = group_folder("12".repeat(16));
    assert_eq!(a.inner.sweep_orphans().await, 3);
    assert!(!orphan_out.exists() && !orphan_part.exists() && !deleted_folder.exists());
    assert!(owned.exists() && fresh.exists() && other.exists() && kept_folder.exists());
    a.stop().await;
    server.shutdown().await;
}
