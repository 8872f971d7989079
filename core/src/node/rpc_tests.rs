//! Signed RPC between real nodes against an in-process signaling server: trust levels, grants,
//! the signature bound to the session, replays, escapes and the audit log.

use std::time::{Duration, Instant};

use serde_json::json;

use super::platform::NotificationCategory;
use super::tests::{Recorder, alice_and_bob, befriend, config, next, server, started, until};
use super::*;
use crate::rpc::store as rpc_store;
use crate::rpc::wire::Request;

pub(super) const WAIT: Duration = Duration::from_secs(10);

/// `owner` grants contact `to` (hex fingerprint) the scope `scope`, as stored by a grant.
pub(super) async fn grant(owner: &Node, to: &str, scope: &str) {
    let (fp, s) = (
        parse_fp(to).unwrap(),
        crate::rpc::scope::Scope::parse(scope).unwrap(),
    );
    owner
        .inner
        .db(move |c| {
            rpc_store::grant(c, &fp, &[s], 1).map_err(|e| NodeError::NotAllowed(e.to_string()))
        })
        .await
        .unwrap();
}

/// `b` serves `/incoming` (with a quota, if given) and lets `a`, at Full Access, write there
/// (`fs:write:/incoming/**`): the folder it writes into.
async fn incoming_served(a: &Node, b: &Node, quota: Option<u64>) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    b.rpc_serve(ServeConfig {
        roots: vec![("incoming".into(), root.path().into())],
        max_file: 0,
        quotas: quota.map(|q| ("incoming".into(), q)).into_iter().collect(),
    })
    .unwrap();
    let fa = a.identity().fingerprint;
    b.set_trust(&fa, Trust::FullAccess).await.unwrap();
    grant(b, &fa, "fs:write:/incoming/**").await;
    root
}

pub(super) fn code(r: &crate::rpc::wire::Response) -> u16 {
    r.outcome.as_ref().map_or_else(|e| e.code, |_| 200)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpc_needs_full_access_a_grant_and_a_fresh_request_signed_for_this_session() {
    let srv = server().await;
    let (_da, _db, a, b) = alice_and_bob(&srv.url()).await;
    befriend(&a, &b).await;
    let (fa, fb) = (a.identity().fingerprint, b.identity().fingerprint);
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("hello.txt"), b"hi").unwrap();
    b.rpc_serve(ServeConfig {
        roots: vec![("public".into(), root.path().into())],
        max_file: 0,
        quotas: vec![],
    })
    .unwrap();
    let mut audit = b.rpc_audit_events();
    let list = json!({"path": "/public"});

    // Level 2: every request gets 403, even with a grant in the table from before.
    let r = a
        .rpc_call(&fb, "fs.list", list.clone(), WAIT)
        .await
        .unwrap();
    assert_eq!(code(&r), 403, "{r:?}");
    assert_eq!(audit.recv().await.unwrap().code, 403);

    // Level 3 without a grant: 403; with it: served.
    b.set_trust(&fa, Trust::FullAccess).await.unwrap();
    let r = a
        .rpc_call(&fb, "fs.list", list.clone(), WAIT)
        .await
        .unwrap();
    assert_eq!(code(&r), 403);
    grant(&b, &fa, "fs:read:/public/*").await;
    let r = a
        .rpc_call(&fb, "fs.list", list.clone(), WAIT)
        .await
        .unwrap();
    assert_eq!(r.outcome.unwrap()["entries"][0]["name"], "hello.txt");
    let r = a
        .rpc_call(&fb, "fs.read", json!({"path": "/public/hello.txt"}), WAIT)
        .await
        .unwrap();
    assert_eq!(r.outcome.unwrap()["data_b64"], "aGk=");

    // Escapes and writes outside the grant.
    for (method, params, want) in [
        ("fs.read", json!({"path": "/public/../etc/passwd"}), 400),
        ("fs.read", json!({"path": "/public/%2e%2e/x"}), 400),
        (
            "fs.write",
            json!({"path": "/public/x", "data_b64": "aGk="}),
            403,
        ),
        ("sys.status", json!({"what": "battery"}), 403),
        ("fs.nope", json!({}), 404),
    ] {
        let r = a.rpc_call(&fb, method, params, WAIT).await.unwrap();
        assert_eq!(code(&r), want, "{method}: {r:?}");
    }
    assert!(!root.path().join("x").exists());

    // The same signed request twice: the second is a replay.
    let req = a.rpc_sign(&fb, "fs.list", list.clone()).await.unwrap();
    assert_eq!(code(&a.rpc_send(&fb, &req, WAIT).await.unwrap()), 200);
    let again = a.rpc_send(&fb, &req, WAIT).await.unwrap();
    assert_eq!(again.outcome.unwrap_err().message, "replayed request id");
    // Signed for another session, or by someone else: refused.
    let other_session = Request::sign(
        &a.inner.identity,
        &[9; 32],
        "fs.list",
        list.clone(),
        "s1",
        unix_ms(),
    );
    assert_eq!(
        code(&a.rpc_send(&fb, &other_session, WAIT).await.unwrap()),
        403
    );
    let mallory = crate::identity::Identity::generate();
    let binding = a.inner.link(&parse_fp(&fb).unwrap()).unwrap().binding;
    let forged = Request::sign(&mallory, &binding, "fs.list", list.clone(), "m1", unix_ms());
    assert_eq!(code(&a.rpc_send(&fb, &forged, WAIT).await.unwrap()), 403);
    // An old request (its time outside the window).
    let old = Request::sign(
        &a.inner.identity,
        &binding,
        "fs.list",
        list,
        "o1",
        unix_ms() - 120_000,
    );
    assert_eq!(code(&a.rpc_send(&fb, &old, WAIT).await.unwrap()), 400);

    // Everything is in the audit log, in order.
    let log = b.inner.db(|c| rpc_store::audit_log(c, 100)).await.unwrap();
    let codes: Vec<u16> = log.iter().map(|e| e.code).collect();
    assert_eq!(
        codes,
        [
            403, 403, 200, 200, 400, 400, 403, 403, 404, 200, 400, 403, 403, 400
        ]
    );
    assert!(log.iter().all(|e| e.fingerprint == fa));
    assert_eq!(log[3].target, "/public/hello.txt");

    // Message sync: only what the grant's time allows.
    a.send_message(&fb, "sync me").await.unwrap();
    let n = b
        .inner
        .db(|c| rpc_store::audit_log(c, 100))
        .await
        .unwrap()
        .len();
    super::tests::until(10, "the message arrived", async || {
        let fpa = parse_fp(&fa).unwrap();
        b.inner
            .db(move |c| crate::chat::store::messages(c, &fpa, 10))
            .await
            .is_ok_and(|m| !m.is_empty())
    })
    .await;
    grant(&b, &fa, "db:read:messages:timestamp>1000").await;
    let r = a
        .rpc_call(&fb, "db.messages", json!({"since": 999}), WAIT)
        .await
        .unwrap();
    assert_eq!(code(&r), 403);
    let r = a
        .rpc_call(&fb, "db.messages", json!({"since": 1000}), WAIT)
        .await
        .unwrap();
    let msgs = r.outcome.unwrap()["messages"].clone();
    assert_eq!(msgs[0]["text"], "sync me", "{msgs}");
    assert_eq!(msgs[0]["conversation"], fa.as_str());
    let now = unix_ms();
    let r = a
        .rpc_call(&fb, "db.messages", json!({"since": now}), WAIT)
        .await
        .unwrap();
    assert_eq!(r.outcome.unwrap()["messages"], json!([]));
    // A time past i64 passes `since >= T` but must not wrap to "everything" (-1).
    let r = a
        .rpc_call(&fb, "db.messages", json!({"since": u64::MAX}), WAIT)
        .await
        .unwrap();
    assert_eq!(code(&r), 400, "{r:?}");
    let log = b.inner.db(|c| rpc_store::audit_log(c, 100)).await.unwrap();
    assert_eq!(log.len(), n + 4);

    // Known (level 1): the request never reaches the RPC layer (no answer, nothing logged).
    b.set_trust(&fa, Trust::Known).await.unwrap();
    let r = a
        .rpc_call(
            &fb,
            "fs.list",
            json!({"path": "/public"}),
            Duration::from_secs(1),
        )
        .await;
    assert!(matches!(r, Err(NodeError::Timeout(_))), "{r:?}");
    let n = b
        .inner
        .db(|c| rpc_store::audit_log(c, 100))
        .await
        .unwrap()
        .len();
    assert_eq!(n, log.len());
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_stream_binary_chunks_within_the_grant_the_hash_and_the_quota() {
    let srv = server().await;
    let (_da, _db, a, b) = alice_and_bob(&srv.url()).await;
    befriend(&a, &b).await;
    let fb = b.identity().fingerprint;
    let (root, src) = (
        incoming_served(&a, &b, Some(3 << 20)).await,
        tempfile::tempdir().unwrap(),
    );
    let data: Vec<u8> = (0..5u32 << 19)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect();
    let size = data.len() as u64;
    let path = src.path().join("a.bin");
    std::fs::write(&path, &data).unwrap();
    let local = LocalFile::Path(path);

    // Backed up in binary chunks, with progress acknowledged on the way.
    let mut seen = vec![];
    let f = a
        .rpc_backup_file(&fb, &local, "/incoming/d/a.bin", &mut |n, _| seen.push(n))
        .await
        .unwrap();
    assert_eq!((f.size, f.sent, f.skipped), (size, size, false));
    assert_eq!(std::fs::read(root.path().join("d/a.bin")).unwrap(), data);
    assert!(seen.len() >= 3 && seen.is_sorted(), "{seen:?}");
    assert_eq!(seen.last(), Some(&size));
    // The same content is skipped.
    let f = a
        .rpc_backup_file(&fb, &local, "/incoming/d/a.bin", &mut |_, _| {})
        .await
        .unwrap();
    assert!(f.skipped && f.sent == 0);

    // Bytes whose hash is not the one the request signed are not placed.
    let small = LocalFile::Path(src.path().join("small.bin"));
    std::fs::write(small.name(), [7u8; 100_000]).unwrap();
    let e = a
        .rpc_upload(
            &fb,
            &small,
            "/incoming/s.bin",
            100_000,
            0,
            [0; 32],
            &mut |_| {},
        )
        .await
        .unwrap_err();
    assert!(matches!(&e, NodeError::Rpc(r) if r.code == 400), "{e}");
    assert!(!root.path().join("s.bin").exists());
    // Over the root's quota (2.5 of 3 MiB used): 413, nothing written.
    let big = LocalFile::Path(src.path().join("big.bin"));
    std::fs::write(big.name(), vec![1u8; 1 << 20]).unwrap();
    let e = a
        .rpc_backup_file(&fb, &big, "/incoming/big.bin", &mut |_, _| {})
        .await
        .unwrap_err();
    assert!(matches!(&e, NodeError::Rpc(r) if r.code == 413), "{e}");
    // Outside the grant: 403.
    let e = a
        .rpc_upload(
            &fb,
            &small,
            "/other/s.bin",
            100_000,
            0,
            [0; 32],
            &mut |_| {},
        )
        .await
        .unwrap_err();
    assert!(matches!(&e, NodeError::Rpc(r) if r.code == 403), "{e}");
    let names: Vec<_> = std::fs::read_dir(root.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["d"]);

    // A chunk for no upload open on this session gets 404.
    let link = a.inner.link(&parse_fp(&fb).unwrap()).unwrap();
    let (tx, mut rx) = tokio::sync::watch::channel(None);
    lock(&a.inner.rpc.uploads).insert((link.binding, 77), tx);
    let chunk = crate::chat::wire::Frame::RpcChunk {
        upload: 77,
        offset: 0,
        data: vec![1; 10],
    };
    link.send(&chunk).await.unwrap();
    tokio::time::timeout(WAIT, rx.changed())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rx.borrow().as_ref().map(|s| s.code), Some(404));

    // The audit log has each upload's opening and its end.
    let log = b.inner.db(|c| rpc_store::audit_log(c, 100)).await.unwrap();
    let uploads: Vec<(u16, &str)> = log
        .iter()
        .filter(|e| e.method == "fs.upload")
        .map(|e| (e.code, e.target.as_str()))
        .collect();
    assert_eq!(
        uploads,
        [
            (200, "/incoming/d/a.bin"),
            (200, "/incoming/d/a.bin"),
            (200, "/incoming/s.bin"),
            (400, "/incoming/s.bin"),
            (413, "/incoming/big.bin"),
            (403, "/other/s.bin"),
        ]
    );
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unmetered_only_backup_waits_on_a_metered_path_and_resumes_mid_file() {
    let srv = server().await;
    let (_da, _db, a, b) = alice_and_bob(&srv.url()).await;
    let metered = NetworkPath::online("test:lo").with_metered(true);
    a.network_changed(metered.clone()).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(a.wait_connected(WAIT).await);
    befriend(&a, &b).await;
    let fb = b.identity().fingerprint;
    let (root, src) = (
        incoming_served(&a, &b, None).await,
        tempfile::tempdir().unwrap(),
    );
    let d = src.path().join("d");
    std::fs::create_dir(&d).unwrap();
    let big: Vec<u8> = (0..24u32 << 20).map(|i| (i >> 7) as u8).collect();
    std::fs::write(d.join("1.txt"), b"one").unwrap();
    std::fs::write(d.join("2.big"), &big).unwrap();
    std::fs::write(d.join("3.txt"), b"three").unwrap();
    let placed = |name: &str| root.path().join("d").join(name).exists();

    // The path turns metered again once the peer has acknowledged part of the big file.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<BackupProgress>();
    let mut flipped = false;
    let mut report = |p: &BackupProgress| {
        if !flipped && p.path.ends_with("2.big") && p.bytes > 0 && p.bytes < p.size {
            flipped = true;
            a.network_changed(metered.clone()).unwrap();
        }
        tx.send(p.clone()).unwrap();
    };
    let options = BackupOptions {
        unmetered_only: true,
    };
    let paths = [d.clone()];
    let backup = a.rpc_backup(&fb, &paths, "/incoming", options, &mut report);
    let drive = async {
        let mut waits = vec![];
        while let Some(p) = rx.recv().await {
            if !p.waiting {
                continue;
            }
            // Nothing moves while the path is metered: no progress, nothing placed.
            tokio::time::sleep(Duration::from_millis(500)).await;
            assert!(rx.is_empty(), "progress while metered");
            waits.push((
                p.files_done,
                p.path.clone(),
                placed("1.txt"),
                placed("2.big"),
            ));
            a.network_changed(NetworkPath::online("test:lo")).unwrap();
            if waits.len() == 2 {
                break;
            }
        }
        // The big file resumes from what the peer holds.
        let resumed = loop {
            let p = rx.recv().await.unwrap();
            assert!(!p.waiting);
            if p.path.ends_with("2.big") {
                break p.bytes;
            }
        };
        (waits, resumed)
    };
    let (sum, (waits, resumed)) =
        tokio::time::timeout(WAIT * 3, async { tokio::join!(backup, drive) })
            .await
            .unwrap();
    let sum = sum.unwrap();
    assert_eq!(
        waits,
        [
            (0, "/incoming/d/1.txt".to_owned(), false, false),
            (1, "/incoming/d/2.big".to_owned(), true, false),
        ]
    );
    assert!(
        resumed >= 1 << 20 && resumed < big.len() as u64,
        "{resumed}"
    );
    assert_eq!((sum.files, sum.skipped), (3, 0), "{sum:?}");
    assert_eq!(std::fs::read(root.path().join("d/2.big")).unwrap(), big);
    assert_eq!(
        std::fs::read(root.path().join("d/3.txt")).unwrap(),
        b"three"
    );
    // The link stayed up through the metered changes of the same path.
    assert!(a.is_connected(&fb));
    a.stop().await;
    b.stop().await;
}

/// A phone backs up documents its platform opens for the core (Android: a picked folder's
/// files through their provider), none copied first: each is opened when its turn comes (to
/// hash it, then to send it); names a request path cannot carry, or that an earlier one took,
/// are left out and counted; a document that cannot be opened any more is skipped and counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_the_platform_opens_are_backed_up_as_they_are_listed() {
    let srv = server().await;
    let (_da, _db, a, b) = alice_and_bob(&srv.url()).await;
    befriend(&a, &b).await;
    let fb = b.identity().fingerprint;
    let (root, src) = (
        incoming_served(&a, &b, None).await,
        tempfile::tempdir().unwrap(),
    );
    // A name no request path carries; one a provider lists twice; a file where a folder is.
    let names: Vec<String> = [
        "Camera/IMG_1.jpg",
        "Camera/50%.jpg",
        "Camera/trip/IMG_2.jpg",
        "Camera/IMG_1.jpg",
        "Camera/trip",
    ]
    .map(str::to_owned)
    .to_vec();
    let content = |i: usize| vec![i as u8 + 1; 300_000 * (i + 1)];
    let opened = Arc::new(Mutex::new(vec![]));
    let documents = |missing: Option<usize>| {
        let (plan, left_out) = documents_plan(&names, "/incoming/").unwrap();
        let plan = plan
            .into_iter()
            .map(|(i, remote)| {
                let (opened, path) = (opened.clone(), src.path().join(format!("doc{i}")));
                std::fs::write(&path, content(i)).unwrap();
                let open: Opener = Arc::new(move || {
                    lock(&opened).push(i);
                    if missing == Some(i) {
                        return Err(std::io::Error::other("permission revoked"));
                    }
                    std::fs::File::open(&path)
                });
                let name = names[i].clone();
                (LocalFile::Opened { name, open }, remote)
            })
            .collect();
        (plan, left_out)
    };
    let (plan, left_out) = documents(None);
    let options = BackupOptions::default();
    let sum = a
        .rpc_backup_files(&fb, plan, left_out, options, &mut |_| {})
        .await
        .unwrap();
    assert_eq!(
        (
            sum.files,
            sum.skipped,
            sum.left_out,
            sum.unreadable,
            sum.bytes
        ),
        (2, 0, 3, 0, 1_200_000)
    );
    for (i, name) in [(0, "Camera/IMG_1.jpg"), (2, "Camera/trip/IMG_2.jpg")] {
        assert_eq!(std::fs::read(root.path().join(name)).unwrap(), content(i));
    }
    // Opened one at a time, in order: hashed, then sent.
    assert_eq!(*lock(&opened), [0, 0, 2, 2]);
    // Again: the peer has both, each opened once to hash it.
    lock(&opened).clear();
    let (plan, left_out) = documents(None);
    let sum = a
        .rpc_backup_files(&fb, plan, left_out, options, &mut |_| {})
        .await
        .unwrap();
    assert_eq!((sum.files, sum.skipped), (0, 2));
    assert_eq!(*lock(&opened), [0, 2]);
    // A document the platform cannot open any more (gone, its permission taken back) is
    // skipped and counted; the backup goes on to the next.
    lock(&opened).clear();
    let (plan, left_out) = documents(Some(0));
    let sum = a
        .rpc_backup_files(&fb, plan, left_out, options, &mut |_| {})
        .await
        .unwrap();
    assert_eq!((sum.files, sum.skipped, sum.unreadable), (0, 1, 1));
    assert_eq!(*lock(&opened), [0, 2]);
    // A document whose bytes change between its reads: the peer refuses them as not the
    // hash signed, and it is counted as unreadable.
    let changing = src.path().join("changing");
    let reads = Arc::new(Mutex::new(0u8));
    let count = reads.clone();
    let open: Opener = Arc::new(move || {
        *lock(&count) += 1;
        std::fs::write(&changing, vec![*lock(&count); 100_000])?;
        std::fs::File::open(&changing)
    });
    let name = "Camera/live.jpg".to_owned();
    let plan = vec![(
        LocalFile::Opened { name, open },
        "/incoming/live.jpg".into(),
    )];
    let sum = a
        .rpc_backup_files(&fb, plan, 0, options, &mut |_| {})
        .await
        .unwrap();
    assert_eq!((sum.files, sum.unreadable), (0, 1));
    assert!(!root.path().join("live.jpg").exists());
    // The peer refusing every file (here: a file where the target folder would be) stops the
    // backup with its reason; a bad fingerprint is an error at once.
    std::fs::write(root.path().join("blocked"), b"x").unwrap();
    let plan = |into| {
        let (plan, left_out) = documents_plan(&names, into).unwrap();
        let plan = plan.into_iter().map(|(i, remote)| {
            let path = src.path().join(format!("doc{i}"));
            (LocalFile::Path(path), remote)
        });
        (plan.collect(), left_out)
    };
    let (blocked, left_out) = plan("/incoming/blocked");
    let e = a
        .rpc_backup_files(&fb, blocked, left_out, options, &mut |_| {})
        .await
        .unwrap_err();
    assert!(matches!(&e, NodeError::Rpc(r) if r.code == 400), "{e}");
    let (files, left_out) = plan("/incoming");
    let e = a
        .rpc_backup_files("zz", files, left_out, options, &mut |_| {})
        .await
        .unwrap_err();
    assert!(matches!(e, NodeError::InvalidInput(_)), "{e}");
    a.stop().await;
    b.stop().await;
}

/// Alice (whose notifications are recorded) and bob, started in `da` and `db`.
pub(super) async fn alice_noted_and_bob(
    url: &str,
    da: &std::path::Path,
    db: &std::path::Path,
) -> (Node, Node, Arc<Recorder>) {
    let notes = Arc::new(Recorder::default());
    let mut ca = config(da, url, Some("alice"));
    ca.platform.notifier = Some(notes.clone());
    let a = started(ca).await.unwrap();
    let b = started(config(db, url, Some("bob"))).await.unwrap();
    (a, b, notes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_monitor_viewer_answers_only_the_call_of_the_armed_device_it_asked() {
    let srv = server().await;
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b, notes) = alice_noted_and_bob(&srv.url(), da.path(), db.path()).await;
    let dc = tempfile::tempdir().unwrap();
    let c = started(config(dc.path(), &srv.url(), Some("carol")))
        .await
        .unwrap();
    befriend(&a, &b).await;
    befriend(&c, &b).await;
    let (fa, fb) = (a.identity().fingerprint, b.identity().fingerprint);
    b.rpc_serve(ServeConfig::default()).unwrap();
    // Alice and carol may both watch bob's camera.
    for viewer in [fa.clone(), c.identity().fingerprint] {
        b.set_trust(&viewer, Trust::FullAccess).await.unwrap();
        grant(&b, &viewer, "media:stream:camera:environment").await;
    }
    // Not armed: refused, no call.
    let e = a.rpc_watch(&fb, "environment", WAIT).await.unwrap_err();
    assert!(matches!(&e, NodeError::Rpc(r) if r.code == 403), "{e}");
    b.rpc_arm_camera(Some("environment")).unwrap();
    let e = a.rpc_watch(&fb, "user", WAIT).await.unwrap_err();
    assert!(matches!(&e, NodeError::Rpc(r) if r.code == 403), "{e}");

    let (mut ea, mut eb) = (a.subscribe(), b.subscribe());
    let call = a.rpc_watch(&fb, "environment", WAIT).await.unwrap();
    let active = a.active_call().unwrap();
    assert_eq!(active.call, call);
    assert_eq!(active.direction, CallDirection::Incoming);
    // The armed side placed it (sending audio and video); it connects, and the armed side is
    // told which call streams its camera, and to whom (once the call is placed: before or
    // after it connects).
    let (mut connected, mut told) = (false, None);
    let both = async {
        while let Some(ev) = eb.recv().await {
            match ev {
                NodeEvent::CallState {
                    call: c,
                    state: CallState::Connected,
                    ..
                } if c == call => connected = true,
                NodeEvent::MonitorStream {
                    call,
                    fingerprint,
                    facing,
                } => told = Some((call, fingerprint, facing)),
                _ => {}
            }
            if connected && told.is_some() {
                return;
            }
        }
    };
    tokio::time::timeout(WAIT, both).await.unwrap();
    assert_eq!(told, Some((call.clone(), fa.clone(), "environment".into())));
    // The viewer's phone did not ring for the stream it asked for.
    while let Ok(ev) = ea.try_recv() {
        assert!(!matches!(ev, NodeEvent::IncomingCall { .. }), "{ev:?}");
    }
    assert!(
        lock(&notes.0)
            .iter()
            .all(|n| n.category != NotificationCategory::IncomingCall)
    );
    assert!(lock(&a.inner.calls).watching.is_empty());
    // A second viewer while the camera streams to alice is told at once that it is busy (the
    // node holds one call), not left waiting for a call that cannot come.
    let asked = Instant::now();
    let e = c.rpc_watch(&fb, "environment", WAIT).await.unwrap_err();
    assert!(matches!(&e, NodeError::Rpc(r) if r.code == 409), "{e}");
    assert!(asked.elapsed() < WAIT / 2, "{:?}", asked.elapsed());
    assert!(c.active_call().is_none());
    assert_eq!(b.active_call().unwrap().call, call);
    a.hang_up(&call).unwrap();
    let no_calls = async || a.active_call().is_none() && b.active_call().is_none();
    until(10, "the call ended on both sides", no_calls).await;
    // Before a stream's call is the active one (while it is placed), another viewer is refused
    // as well; the viewer being served may ask again.
    let (rpc, fpc) = (&b.inner.rpc, parse_fp(&c.identity().fingerprint).unwrap());
    let fpa = parse_fp(&fa).unwrap();
    rpc.take_viewer(&b.inner.calls, fpa).unwrap();
    assert_eq!(rpc.take_viewer(&b.inner.calls, fpc).unwrap_err().code, 409);
    rpc.take_viewer(&b.inner.calls, fpa).unwrap();
    rpc.placed(fpa);
    rpc.take_viewer(&b.inner.calls, fpc).unwrap();
    rpc.placed(fpc);

    // Watch tapped twice: the second watch takes the first's registration, and the first is
    // told so (it ends cancelled); the second answers the stream.
    let fpb = parse_fp(&fb).unwrap();
    let mut first = rpc::Watch::register(&a.inner, fpb);
    let call = a.rpc_watch(&fb, "environment", WAIT).await.unwrap();
    assert!(matches!(
        first.stream.try_recv(),
        Ok(calls::Watched::Replaced)
    ));
    drop(first);
    assert_eq!(a.active_call().unwrap().call, call);
    a.hang_up(&call).unwrap();
    until(10, "the call ended on both sides", no_calls).await;

    // Both of those requests reach the armed phone, at once: it places one call (a second
    // would ring at the viewer once the first ended).
    let mut ea = a.subscribe();
    let params = json!({"facing": "environment"});
    let reqs = [
        a.rpc_sign(&fb, "media.stream", params.clone())
            .await
            .unwrap(),
        a.rpc_sign(&fb, "media.stream", params).await.unwrap(),
    ];
    let answers = [
        a.rpc_start(&fb, &reqs[0]).await.unwrap(),
        a.rpc_start(&fb, &reqs[1]).await.unwrap(),
    ];
    for answer in answers {
        assert!(answer.await.unwrap().outcome.is_ok());
    }
    let rang = loop {
        if let NodeEvent::IncomingCall { call, .. } = next(&mut ea).await {
            break call;
        }
    };
    a.decline_call(&rang).unwrap();
    until(10, "the call ended on both sides", no_calls).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    while let Ok(ev) = ea.try_recv() {
        assert!(!matches!(ev, NodeEvent::IncomingCall { .. }), "{ev:?}");
    }
    assert!(a.active_call().is_none());

    // A watch dropped once its call came (before it could answer it) declines that call: it
    // would not ring, and nobody would answer it.
    let placed = b.call(&fa, Kinds::AUDIO).await.unwrap();
    let ringing = async || {
        a.active_call()
            .is_some_and(|c| c.state == CallState::Ringing)
    };
    until(10, "the call rings at alice", ringing).await;
    let id = calls::parse_call(&placed).unwrap();
    let watch = rpc::Watch::register(&a.inner, fpb);
    let (_, came) = lock(&a.inner.calls).watching.remove(&fpb).unwrap();
    came.send(calls::Watched::Call(id)).unwrap();
    drop(watch);
    let declined = async || {
        b.call_log(None, 10)
            .await
            .is_ok_and(|log| log.iter().any(|e| e.id == id && e.reason == "declined"))
    };
    until(10, "bob's call was declined", declined).await;
    assert!(a.active_call().is_none());
    a.stop().await;
    b.stop().await;
    c.stop().await;
}
