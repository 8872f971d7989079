//! 1:1 messaging with real processes through the real PeerJS server (`peer` 1.0.2): `peerns
//! node` accepts a contact made with `peerns contacts add`; `peerns send` is killed with
//! SIGKILL in the middle of a burst and run again to flush its outbox; then `peerns send --file`
//! delivers a file. Afterwards both profile databases are read: every message the sender stored
//! arrived exactly once, in order. Then both move to new persistent IDs (`peerns id
//! --new-peer-id`) and still reach each other, through their rendezvous.

use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use peerns_core::chat::store::messages;
use peerns_core::identity::Fingerprint;
use peerns_core::store::Profile;
use peerns_tests::{ServerKind, ServerOpts, TestServer, peerns_cmd as peerns};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Child;

/// Runs `peerns ARGS --signal URL --loopback` on `profile` to its end; panics with `what` if it
/// fails.
async fn online(profile: &Path, url: &str, args: &[&str], what: &str) {
    let status = peerns(profile, args)
        .args(["--signal", url, "--loopback"])
        .stdout(Stdio::null())
        .status()
        .await
        .unwrap();
    assert!(status.success(), "{what}");
}

/// Texts of the conversation with `with` in `profile`: (outgoing, text) in display order.
fn stored(profile: &Path, with: &Fingerprint) -> Vec<(bool, u64, String)> {
    let p = Profile::open_desktop(profile).unwrap();
    let all = p
        .store()
        .with_conn(|c| Ok(messages(c, with, 100_000)))
        .unwrap()
        .unwrap();
    all.into_iter()
        .map(|m| (m.outgoing, m.seq, m.text().unwrap_or("").to_owned()))
        .collect()
}

struct Receiver {
    child: Child,
    link: String,
    fingerprint: String,
    received: Arc<Mutex<u64>>,
    files: Arc<Mutex<Vec<String>>>,
}

async fn receiver(profile: &Path, url: &str) -> Receiver {
    let mut child = peerns(
        profile,
        &[
            "node",
            "--signal",
            url,
            "--loopback",
            "--name",
            "bob",
            "--accept",
            "all",
            "--json",
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .expect("start peerns node");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let hello = peerns_tests::node_started(&mut lines, 20).await;
    let received = Arc::new(Mutex::new(0));
    let files = Arc::new(Mutex::new(vec![]));
    let (r, f) = (received.clone(), files.clone());
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            let Ok(j) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            match j["event"].as_str() {
                Some("message") => *r.lock().unwrap() += 1,
                Some("file") => f
                    .lock()
                    .unwrap()
                    .push(j["path"].as_str().unwrap_or_default().to_owned()),
                _ => {}
            }
        }
    });
    Receiver {
        child,
        link: hello["link"].as_str().unwrap().to_owned(),
        fingerprint: hello["fingerprint"].as_str().unwrap().to_owned(),
        received,
        files,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sender_killed_mid_burst_loses_and_duplicates_nothing() {
    let mut server = TestServer::start(ServerKind::Peer, ServerOpts::default()).await;
    let url = server.url();
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut b = receiver(db.path(), &url).await;

    online(
        da.path(),
        &url,
        &["contacts", "add", "--name", "alice", &b.link],
        "contacts add failed",
    )
    .await;

    let mut burst = peerns(
        da.path(),
        &[
            "send",
            "--signal",
            &url,
            "--loopback",
            "--to",
            &b.fingerprint,
            "--count",
            "3000",
            "--wait",
            "60",
            "burst",
        ],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    // Kill the sender once some messages have arrived.
    tokio::time::timeout(Duration::from_secs(60), async {
        while *b.received.lock().unwrap() < 300 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the burst did not start arriving");
    burst.start_kill().unwrap();
    burst.wait().await.unwrap();
    let at_kill = *b.received.lock().unwrap();

    // Run again with nothing new: the outbox is flushed.
    online(
        da.path(),
        &url,
        &[
            "send",
            "--to",
            &b.fingerprint,
            "--count",
            "0",
            "--wait",
            "60",
        ],
        "the outbox was not flushed",
    )
    .await;

    // A file through the same processes: verified and exposed in B's profile.
    let src = da.path().join("photo.jpg");
    let content: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&src, &content).unwrap();
    online(
        da.path(),
        &url,
        &[
            "send",
            "--to",
            &b.fingerprint,
            "--file",
            src.to_str().unwrap(),
            "--wait",
            "60",
        ],
        "the file was not delivered",
    )
    .await;
    let path = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Some(p) = b.files.lock().unwrap().first().cloned() {
                return p;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("B reported the file");
    assert!(path.ends_with("photo.jpg"));
    assert_eq!(std::fs::read(&path).unwrap(), content);
    b.child.start_kill().unwrap();
    b.child.wait().await.unwrap();

    let fa = Profile::open_desktop(da.path())
        .unwrap()
        .identity()
        .fingerprint();
    let fb: Fingerprint = b.fingerprint.parse().unwrap();
    let sent: Vec<(u64, String)> = stored(da.path(), &fb)
        .into_iter()
        .filter(|m| m.0)
        .map(|m| (m.1, m.2))
        .collect();
    let got: Vec<(u64, String)> = stored(db.path(), &fa)
        .into_iter()
        .filter(|m| !m.0)
        .map(|m| (m.1, m.2))
        .collect();
    eprintln!(
        "stored by the sender before SIGKILL: {}, arrived before the kill: {at_kill}, in the end: {}",
        sent.len(),
        got.len()
    );
    assert!(sent.len() as u64 > at_kill, "the kill came after the burst");
    assert_eq!(got, sent, "every stored message exactly once, in order");
    let seqs: Vec<u64> = got.iter().map(|m| m.0).collect();
    assert_eq!(seqs, (1..=sent.len() as u64).collect::<Vec<_>>());

    // Both move to new persistent IDs while apart: neither can dial the other's known ID.
    // They meet at their rendezvous and the next message is delivered on the new IDs.
    for dir in [da.path(), db.path()] {
        let status = peerns(dir, &["id", "--new-peer-id"])
            .stdout(Stdio::null())
            .status()
            .await
            .unwrap();
        assert!(status.success(), "peerns id --new-peer-id failed");
    }
    let new_b = Profile::open_desktop(db.path())
        .unwrap()
        .identity()
        .peer_id()
        .to_owned();
    let mut b = receiver(db.path(), &url).await;
    online(
        da.path(),
        &url,
        &["send", "--to", &b.fingerprint, "--wait", "60", "found you"],
        "not delivered after both moved",
    )
    .await;
    b.child.start_kill().unwrap();
    b.child.wait().await.unwrap();
    let last = stored(db.path(), &fa).pop().unwrap();
    assert_eq!((last.0, last.2.as_str()), (false, "found you"));
    let route = Profile::open_desktop(da.path())
        .unwrap()
        .store()
        .with_conn(|c| Ok(peerns_core::contacts::get(c, &fb)))
        .unwrap()
        .unwrap()
        .unwrap()
        .peer_id;
    assert_eq!(route, Some(new_b), "alice stored bob's new ID");
    server.kill().await;
}

/// `peerns contacts add` to someone whose node is not running (decision 0019): the link is kept
/// and `contacts list` shows it waiting; the command keeps trying while `--wait` lasts, and when
/// bob's node comes up the request goes out and his accept ends it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adding_someone_offline_asks_once_they_are_online() {
    let mut server = TestServer::start(ServerKind::Peer, ServerOpts::default()).await;
    let url = server.url();
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let link = peerns(db.path(), &["contacts", "link"])
        .output()
        .await
        .unwrap();
    let link = String::from_utf8(link.stdout).unwrap().trim().to_owned();
    let mut add = peerns(
        da.path(),
        &["contacts", "add", "--name", "alice", "--wait", "60", &link],
    )
    .args(["--signal", &url, "--loopback"])
    .stdout(Stdio::piped())
    .spawn()
    .unwrap();
    let mut lines = BufReader::new(add.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(Duration::from_secs(40), lines.next_line())
        .await
        .expect("contacts add says what it did")
        .unwrap()
        .unwrap();
    assert!(first.contains("cannot be reached now"), "{first}");
    let list = peerns(da.path(), &["contacts", "list"])
        .output()
        .await
        .unwrap();
    let list = String::from_utf8(list.stdout).unwrap();
    assert!(list.contains(r#""request":"waiting""#), "{list}");

    let mut b = receiver(db.path(), &url).await;
    let status = tokio::time::timeout(Duration::from_secs(70), add.wait())
        .await
        .expect("contacts add ended")
        .unwrap();
    let mut rest = vec![];
    while let Ok(Some(l)) = lines.next_line().await {
        rest.push(l);
    }
    assert!(status.success(), "contacts add failed: {rest:?}");
    assert!(rest.iter().any(|l| l.starts_with("requested")), "{rest:?}");
    assert_eq!(rest.last().map(String::as_str), Some("bob accepted"));
    b.child.start_kill().unwrap();
    b.child.wait().await.unwrap();
    server.kill().await;
}
