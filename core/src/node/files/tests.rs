//! Files: unit tests of the part files and the offer rules, and transfers between real nodes
//! (quotas, expiry, manifests bound to their op).

use super::*;
use crate::identity::Identity;

fn transfer(content: &[u8], next_index: u64) -> Transfer {
    Transfer {
        manifest: Manifest {
            id: [9; 16],
            name: "a.bin".into(),
            size: content.len() as u64,
            mime: "application/octet-stream".into(),
            hash: *blake3::hash(content).as_bytes(),
            chunk_size: 4,
        },
        conv: Identity::generate().fingerprint(),
        outgoing: false,
        next_index,
        state: FileState::Transferring,
    }
}

#[test]
fn a_resumed_part_is_cut_to_its_acknowledged_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let t = transfer(b"0123456789", 2);
    fs::create_dir_all(dir.path().join("in")).unwrap();
    // Written beyond the acknowledgement before a crash: cut back to 2 chunks of 4 bytes.
    fs::write(part_path(dir.path(), &t.manifest.id), b"0123456789").unwrap();
    let Ok(OnDisk::Part(mut part)) = open_part(dir.path(), &t) else {
        panic!("expected a part file");
    };
    assert_eq!((part.next, part.file.metadata().unwrap().len()), (2, 8));
    assert!(
        part.hasher.is_none(),
        "a resumed file is hashed again at the end"
    );
    // The rest arrives: verified by hashing the whole file, then moved in place.
    let done = write_batch(dir.path(), &t.manifest, &mut part, vec![b"89".to_vec()]);
    let Some(Written::Finished(Some(path))) = done else {
        panic!("expected a verified file");
    };
    assert_eq!(fs::read(&path).unwrap(), b"0123456789");
}

#[test]
fn a_file_moved_in_place_before_a_stop_is_found_done() {
    let dir = tempfile::tempdir().unwrap();
    let t = transfer(b"hello", 1);
    let done = final_path(dir.path(), &t.manifest);
    fs::create_dir_all(done.parent().unwrap()).unwrap();
    fs::write(&done, b"hello").unwrap();
    assert!(matches!(open_part(dir.path(), &t), Ok(OnDisk::Done(p)) if p == done));
    // Something else under that name is not taken for the file.
    fs::write(&done, b"jello").unwrap();
    assert!(matches!(open_part(dir.path(), &t), Ok(OnDisk::Part(_))));
}

#[test]
fn a_corrupt_file_is_refused_and_removed() {
    let dir = tempfile::tempdir().unwrap();
    let t = transfer(b"abcdefgh", 0);
    let Ok(OnDisk::Part(mut part)) = open_part(dir.path(), &t) else {
        panic!("expected a part file");
    };
    let chunks = vec![b"abcd".to_vec(), b"XXXX".to_vec()];
    let done = write_batch(dir.path(), &t.manifest, &mut part, chunks);
    assert!(matches!(done, Some(Written::Finished(None))));
    assert!(!part_path(dir.path(), &t.manifest.id).exists());
    assert!(!final_path(dir.path(), &t.manifest).exists());
}

fn manifest(size: u64) -> Manifest {
    Manifest {
        id: rand::random(),
        name: "f.bin".into(),
        size,
        mime: "application/octet-stream".into(),
        hash: [3; 32],
        chunk_size: CHUNK_SIZE,
    }
}

#[test]
fn offers_over_a_contact_or_the_total_quota_are_refused() {
    const MIB: u64 = 1 << 20;
    let dir = tempfile::tempdir().unwrap();
    let store = crate::store::Store::open(dir.path().join("p.db")).unwrap();
    let (x, y) = (
        Identity::generate().fingerprint(),
        Identity::generate().fingerprint(),
    );
    let outcome = store
        .with_conn(|c| {
            for conv in [&x, &y] {
                chat::ensure_conversation(c, conv)?;
            }
            crate::store::settings::set_setting(c, limits::CONTACT_QUOTA_KEY, "3145728")?;
            crate::store::settings::set_setting(c, limits::TOTAL_QUOTA_KEY, "5242880")?;
            let first = manifest(2 * MIB);
            let offers = [
                (&x, first.clone()),
                // X has 2 MiB unfinished: 1 more fits its 3 MiB, 2 more do not.
                (&x, manifest(2 * MIB)),
                (&x, manifest(MIB)),
                // Y's own quota has room; the total (5 MiB, 3 used) has 2 MiB.
                (&y, manifest(3 * MIB)),
                (&y, manifest(2 * MIB)),
                // Over the size limit; a known id.
                (&y, manifest(11 * MIB)),
                (&y, first),
            ];
            Ok(offers.map(|(conv, m)| offer(c, conv, &m, 10 * MIB, 1).unwrap()))
        })
        .unwrap();
    assert_eq!(
        outcome,
        [
            Offer::Accepted,
            Offer::Refused("over the receiver's quota of unfinished files from one contact"),
            Offer::Accepted,
            Offer::Refused("over the receiver's quota of unfinished files"),
            Offer::Accepted,
            Offer::Refused("larger than the receiver's size limit"),
            Offer::Ignored,
        ]
    );
}

mod nodes {
    use std::time::Duration;

    use tokio::sync::mpsc::UnboundedReceiver;

    use super::*;
    use crate::node::tests::{alice_and_bob, befriend, config, next, server, started, until};

    const MIB: u64 = 1 << 20;
    const DAY_MS: u64 = 24 * 3600 * 1000;

    /// The next `FileDone` of transfer `id` on this side (`ok`); a `FileReceived` of it fails.
    async fn done(events: &mut UnboundedReceiver<NodeEvent>, want: &Id) -> bool {
        loop {
            match next(events).await {
                NodeEvent::FileDone { id, ok, .. } if id == hex_id(want) => return ok,
                NodeEvent::FileReceived { id, .. } if id == hex_id(want) => {
                    panic!("the file was received")
                }
                _ => {}
            }
        }
    }

    fn rows(node: &Node) -> Vec<(String, u64, FileState)> {
        node.inner
            .store
            .with_conn(|c| {
                Ok(file::incoming_unfinished(c, None)
                    .unwrap()
                    .into_iter()
                    .map(|t| (t.manifest.name, t.next_index, t.state))
                    .collect())
            })
            .unwrap()
    }

    /// Alice sends `stalled.bin` (600 KiB) and then `second.bin` (600 KiB) while Bob is
    /// offline, and loses her copy of the first: Bob gets both offers when he returns and
    /// the first never makes progress. Returns Bob (restarted) and both messages.
    async fn one_stalled_offer(
        url: &str,
        da: &std::path::Path,
        db: &std::path::Path,
        a: &Node,
        b: Node,
        quota: Option<u64>,
    ) -> (Node, UnboundedReceiver<NodeEvent>, Message, Message) {
        if let Some(q) = quota {
            b.set_incoming_quota(q, 100 * MIB).await.unwrap();
        }
        b.stop().await;
        let fb = b.identity().fingerprint;
        let mut sent = vec![];
        for name in ["stalled.bin", "second.bin"] {
            let src = da.join(name);
            std::fs::write(&src, vec![7u8; 600 * 1024]).unwrap();
            sent.push(a.send_file(&fb, src.to_str().unwrap()).await.unwrap());
        }
        std::fs::remove_file(out_path(&a.inner.files_dir, &sent[0].id)).unwrap();
        let b = started(config(db, url, None)).await.unwrap();
        let eb = b.subscribe();
        let second = sent.pop().unwrap();
        (b, eb, sent.pop().unwrap(), second)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_offer_over_the_contact_quota_is_refused() {
        let server = server().await;
        let url = server.url();
        let (da, db, a, b) = alice_and_bob(&url).await;
        befriend(&a, &b).await;
        let mut ea = a.subscribe();
        let (b, mut eb, stalled, second) =
            one_stalled_offer(&url, da.path(), db.path(), &a, b, Some(MIB)).await;
        // 600 KiB unfinished + 600 KiB offered > 1 MiB: refused on both sides.
        assert!(!done(&mut eb, &second.id).await);
        assert!(!done(&mut ea, &second.id).await);
        assert_eq!(
            rows(&b),
            [("stalled.bin".into(), 0, FileState::Transferring)]
        );
        // Both messages are shown.
        let shown = b.messages(&a.identity().fingerprint, 10).await.unwrap();
        assert_eq!(
            shown.iter().map(|m| m.id).collect::<Vec<_>>(),
            [stalled.id, second.id]
        );
        a.stop().await;
        b.stop().await;
        server.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_transfer_without_progress_expires() {
        let server = server().await;
        let url = server.url();
        let (da, db, a, b) = alice_and_bob(&url).await;
        befriend(&a, &b).await;
        let mut ea = a.subscribe();
        let (b, mut eb, stalled, second) =
            one_stalled_offer(&url, da.path(), db.path(), &a, b, None).await;
        // The second arrives; the first waits with an empty part file.
        loop {
            match next(&mut eb).await {
                NodeEvent::FileReceived { id, .. } if id == hex_id(&second.id) => break,
                NodeEvent::FileDone { id, .. } if id == hex_id(&second.id) => panic!("refused"),
                _ => {}
            }
        }
        let part = part_path(&b.inner.files_dir, &stalled.id);
        until(10, "the stalled part file", async || part.exists()).await;
        // Six days on nothing expires; with an expiry of one day, two days on it does.
        let now = unix_ms();
        assert_eq!(b.inner.expire_stale(now + 6 * DAY_MS).await, 0);
        assert_eq!(rows(&b).len(), 1);
        b.set_file_expiry(Duration::from_secs(24 * 3600))
            .await
            .unwrap();
        assert_eq!(b.inner.expire_stale(now + 2 * DAY_MS).await, 1);
        assert!(!done(&mut eb, &stalled.id).await);
        assert!(rows(&b).is_empty() && !part.exists());
        let t = b.inner.db(move |c| file::get(c, &stalled.id)).await;
        assert_eq!(t.unwrap().unwrap().state, FileState::Refused);
        // The sender hears of it and ends its side too.
        assert!(!done(&mut ea, &stalled.id).await);
        a.stop().await;
        b.stop().await;
        server.shutdown().await;
    }

    /// The receiver says a transfer ended once, on the link it has then: a sender that was
    /// away (or whose link closed first) asks on its next link and hears it again, for a file
    /// received whole and for one the receiver dropped meanwhile.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_end_the_sender_missed_is_said_again_on_its_next_link() {
        let server = server().await;
        let url = server.url();
        let (da, db, a, b) = alice_and_bob(&url).await;
        befriend(&a, &b).await;
        let mut ea = a.subscribe();
        let (b, mut eb, stalled, whole) =
            one_stalled_offer(&url, da.path(), db.path(), &a, b, None).await;
        assert!(done(&mut ea, &whole.id).await);
        let part = part_path(&b.inner.files_dir, &stalled.id);
        until(10, "the stalled part file", async || part.exists()).await;
        // As if Alice's link had closed before the end of `whole` reached her.
        let id = whole.id;
        a.inner
            .db(move |c| file::set_state(c, &id, FileState::Transferring))
            .await
            .unwrap();
        a.stop().await;
        let fa = a.identity().fingerprint.parse().unwrap();
        until(10, "Bob's link to Alice closed", async || {
            b.inner.link(&fa).is_none()
        })
        .await;
        // Bob drops the stalled one while Alice is away: nobody to tell.
        assert_eq!(b.inner.expire_stale(unix_ms() + 8 * DAY_MS).await, 1);
        assert!(!done(&mut eb, &stalled.id).await);
        // Alice back: she links to Bob again and asks about her two unfinished files; he
        // answers both.
        let a = started(config(da.path(), &url, None)).await.unwrap();
        let mut ea = a.subscribe();
        let mut ended = HashMap::new();
        while ended.len() < 2 {
            if let NodeEvent::FileDone {
                id, ok, outgoing, ..
            } = next(&mut ea).await
            {
                assert!(outgoing);
                ended.insert(id, ok);
            }
        }
        assert_eq!(
            ended,
            HashMap::from([(hex_id(&whole.id), true), (hex_id(&stalled.id), false)])
        );
        let left = a.inner.db(|c| file::outgoing_unfinished(c, None, 0)).await;
        assert!(left.unwrap().is_empty());
        a.stop().await;
        b.stop().await;
        server.shutdown().await;
    }

    /// A sender dials the receiver of a file that may have ended unheard, but not again soon
    /// after asking without an answer (an older build ignores the question) and not for a file
    /// without progress for 8 days; a file asked about on a link is remembered until it ends.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_sender_dials_for_an_unheard_end_for_a_bounded_time() {
        let server = server().await;
        let url = server.url();
        let (da, db, a, b) = alice_and_bob(&url).await;
        befriend(&a, &b).await;
        b.stop().await;
        let fb = b.identity().fingerprint;
        let src = da.path().join("notes.txt");
        std::fs::write(&src, b"notes").unwrap();
        let sent = a.send_file(&fb, src.to_str().unwrap()).await.unwrap();
        let now = unix_ms();
        let bob = fb.parse().unwrap();
        assert_eq!(a.inner.receivers_to_ask(now).await, [bob]);
        lock(&a.inner.asked).insert(sent.id, now);
        assert!(a.inner.receivers_to_ask(now + 1000).await.is_empty());
        let hour = asking::ASK_AGAIN.as_millis() as u64;
        assert_eq!(a.inner.receivers_to_ask(now + hour + 1).await, [bob]);
        assert_eq!(a.inner.receivers_to_ask(now + 7 * DAY_MS).await, [bob]);
        assert!(a.inner.receivers_to_ask(now + 9 * DAY_MS).await.is_empty());
        // Asked on a link: remembered until its end (which may come at once) forgets it.
        lock(&a.inner.asked).clear();
        let mut ea = a.subscribe();
        let b = started(config(db.path(), &url, None)).await.unwrap();
        let link = Inner::dial_contact(&a.inner, &bob).await.unwrap();
        a.inner.ask_outgoing(&link).await;
        // Read in this order: an end forgets the ask after it records the file done.
        let asked = lock(&a.inner.asked).contains_key(&sent.id);
        let state = a
            .file_transfer(&hex_id(&sent.id))
            .await
            .unwrap()
            .unwrap()
            .state;
        assert!(asked || state == FileState::Done);
        assert!(done(&mut ea, &sent.id).await);
        assert!(lock(&a.inner.asked).is_empty());
        assert!(a.inner.receivers_to_ask(unix_ms()).await.is_empty());
        a.stop().await;
        b.stop().await;
        server.shutdown().await;
    }

    /// A contact signs a manifest with one id and announces it under an op with another, or
    /// announces it properly and then again in a second op: both are refused, nothing of them
    /// is stored, and the stream goes on.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_manifest_under_another_ops_id_is_refused_and_nothing_stored() {
        let server = server().await;
        let url = server.url();
        let (_da, _db, a, b) = alice_and_bob(&url).await;
        befriend(&a, &b).await;
        let (fa, fb) = (a.identity().fingerprint, b.identity().fingerprint);
        let link = a.inner.link(&fb.parse().unwrap()).unwrap();
        let m = manifest(1000);
        let op = |seq, id, kind, body: Vec<u8>| Op {
            from: a.inner.fingerprint.0,
            to: link.fp.0,
            seq,
            id,
            kind,
            target: None,
            sent_ms: 1,
            body,
        };
        let body = m.sign(&a.inner.identity);
        for forged in [
            op(1, rand::random(), OpKind::File, body.clone()),
            op(1, m.id, OpKind::File, body.clone()),
            op(2, rand::random(), OpKind::File, body),
            op(2, rand::random(), OpKind::Text, b"genuine".to_vec()),
        ] {
            link.send(&Frame::Op(forged)).await.unwrap();
        }
        until(10, "the text after the forged ops", async || {
            b.messages(&fa, 10).await.unwrap().len() == 2
        })
        .await;
        let shown = b.messages(&fa, 10).await.unwrap();
        assert_eq!(shown[0].manifest(), Some(m.clone()));
        assert_eq!(shown[1].text(), Some("genuine"));
        let ids: Vec<Vec<u8>> = b
            .inner
            .store
            .with_conn(|c| {
                let mut st = c.prepare("SELECT id FROM files")?;
                let ids = st.query_map([], |r| r.get(0))?;
                Ok(ids.collect::<Result<_, _>>()?)
            })
            .unwrap();
        assert_eq!(ids, [m.id.to_vec()]);
        a.stop().await;
        b.stop().await;
        server.shutdown().await;
    }
}
