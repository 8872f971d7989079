//! Contacts and chat between three nodes through the real PeerJS server (`peer` 1.0.2): requests
//! accepted, put off ("later") and accepted later; 1,000 messages (and smaller streams around
//! the triangle) while the receiver goes offline and online at random, each delivered once and
//! in order; edits and deletes made while a contact is offline reach it when it returns; a
//! 50 MiB file across two restarts of its receiver resumes and arrives intact.

use std::path::Path;
use std::time::Duration;

use peerns_core::node::{Node, NodeConfig, NodeEvent};
use peerns_core::transport::TransportConfig;
use peerns_tests::{ServerKind, ServerOpts, TestServer, until};
use tokio::sync::mpsc::UnboundedReceiver;

/// A random number below `n`.
fn below(n: u64) -> u64 {
    u64::from_le_bytes(peerns_core::crypto::random_bytes::<8>()) % n
}

fn config(dir: &Path, url: &str, name: &str) -> NodeConfig {
    NodeConfig {
        profile_dir: dir.to_owned(),
        signaling_url: url.to_owned(),
        transport: TransportConfig::loopback(),
        display_name: Some(name.into()),
        platform: Default::default(),
        discovery: Default::default(),
    }
}

/// The next event matching `f`, within 20 s.
async fn event<T>(
    rx: &mut UnboundedReceiver<NodeEvent>,
    mut f: impl FnMut(NodeEvent) -> Option<T>,
) -> T {
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if let Some(t) = f(rx.recv().await.expect("events end")) {
                return t;
            }
        }
    })
    .await
    .expect("no such event within 20 s")
}

/// (outgoing, text, edited, deleted) of every message `node` received from `conv`, in order.
async fn log(node: &Node, conv: &str) -> Vec<(bool, String, bool, bool)> {
    node.messages(conv, 10_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|m| !m.outgoing)
        .map(|m| {
            let text = m.text().unwrap_or("").to_owned();
            (m.outgoing, text, m.edited, m.deleted)
        })
        .collect()
}

/// `from` asks `to`; `to` accepts (after putting it off, if `later`).
async fn befriend(from: &Node, to: &Node, later: bool) {
    let mut ev_to = to.subscribe();
    let mut ev_from = from.subscribe();
    let ff = from.identity().fingerprint;
    from.request_contact(&to.share_link()).await.unwrap();
    event(&mut ev_to, |e| match e {
        NodeEvent::ContactRequest { fingerprint, .. } if fingerprint == ff => Some(()),
        _ => None,
    })
    .await;
    if later {
        to.later_request(&ff).await.unwrap();
        let req = to.requests().await.unwrap();
        assert!(req.iter().any(|r| r.fingerprint.to_hex() == ff && r.later));
    }
    to.accept_request(&ff).await.unwrap();
    let ft = to.identity().fingerprint;
    event(&mut ev_from, |e| match e {
        NodeEvent::ContactAdded { fingerprint, .. } if fingerprint == ft => Some(()),
        _ => None,
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_through_the_real_server() {
    let mut server = TestServer::start(ServerKind::Peer, ServerOpts::default()).await;
    let url = server.url();
    let dirs = [(); 3].map(|()| tempfile::tempdir().unwrap());
    let a = peerns_tests::started_node(config(dirs[0].path(), &url, "ada"))
        .await
        .unwrap();
    let b = peerns_tests::started_node(config(dirs[1].path(), &url, "bob"))
        .await
        .unwrap();
    let mut c = peerns_tests::started_node(config(dirs[2].path(), &url, "cyd"))
        .await
        .unwrap();
    let (fa, fb, fc) = (
        a.identity().fingerprint,
        b.identity().fingerprint,
        c.identity().fingerprint,
    );
    befriend(&a, &b, false).await;
    befriend(&b, &c, true).await;
    befriend(&c, &a, false).await;
    for (n, others) in [(&a, [&fb, &fc]), (&b, [&fa, &fc])] {
        let mut names: Vec<String> = n
            .contacts()
            .await
            .unwrap()
            .iter()
            .map(|c| c.fingerprint.to_hex())
            .collect();
        names.sort();
        let mut want: Vec<String> = others.iter().map(|s| s.to_string()).collect();
        want.sort();
        assert_eq!(names, want);
    }

    // Around the triangle while Cyd goes offline and online at random: 1,000 messages from Ada
    // to Cyd, 100 from Ada to Bob and from Bob to Cyd, then 100 from Cyd to Ada.
    const N: usize = 1000;
    const M: usize = 100;
    let sends = async {
        for i in 0..N {
            a.send_message(&fc, &format!("a→c {i}")).await.unwrap();
            if i < M {
                a.send_message(&fb, &format!("a→b {i}")).await.unwrap();
                b.send_message(&fc, &format!("b→c {i}")).await.unwrap();
            }
            if i % 20 == 0 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    };
    let restarts = async {
        for _ in 0..5 {
            tokio::time::sleep(Duration::from_millis(100 + below(400))).await;
            c.stop().await;
            tokio::time::sleep(Duration::from_millis(below(500))).await;
            c = peerns_tests::started_node(config(dirs[2].path(), &url, "cyd"))
                .await
                .unwrap();
        }
    };
    tokio::join!(sends, restarts);
    for i in 0..M {
        c.send_message(&fa, &format!("c→a {i}")).await.unwrap();
    }
    let want = |tag: &str, n: usize| -> Vec<(bool, String, bool, bool)> {
        (0..n)
            .map(|i| (false, format!("{tag} {i}"), false, false))
            .collect()
    };
    let mut last = vec![];
    let done = tokio::time::timeout(Duration::from_secs(120), async {
        loop {
            let got = [
                log(&c, &fa).await,
                log(&b, &fa).await,
                log(&a, &fc).await,
                log(&c, &fb).await,
            ];
            last = got.iter().map(Vec::len).collect::<Vec<_>>();
            if got[0] == want("a→c", N)
                && got[1] == want("a→b", M)
                && got[2] == want("c→a", M)
                && got[3] == want("b→c", M)
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(
        done.is_ok(),
        "not every message arrived once and in order; counts a→c, a→b, c→a, b→c: {last:?}"
    );
    let seqs: Vec<u64> = c
        .messages(&fa, 10_000)
        .await
        .unwrap()
        .iter()
        .filter(|m| !m.outgoing)
        .map(|m| m.seq)
        .collect();
    assert_eq!(seqs, (1..=N as u64).collect::<Vec<_>>());

    // Cyd goes away; Ada edits one message, deletes another and writes a new one.
    c.stop().await;
    let sent = a.messages(&fc, 10_000).await.unwrap();
    let (first, second) = (hex::encode(sent[0].id), hex::encode(sent[1].id));
    a.edit_message(&fc, &first, "a→c 0 (edited)").await.unwrap();
    a.delete_message(&fc, &second).await.unwrap();
    a.send_message(&fc, "while you were away").await.unwrap();
    let mut c = peerns_tests::started_node(config(dirs[2].path(), &url, "cyd"))
        .await
        .unwrap();
    until(30, "the offline edit, delete and message", async || {
        let got = log(&c, &fa).await;
        got.len() == N + 1
            && got[0] == (false, "a→c 0 (edited)".into(), true, false)
            && got[1].3
            && got[N] == (false, "while you were away".into(), false, false)
    })
    .await;

    // A 50 MiB file from Bob to Cyd while Cyd restarts twice: it resumes, and the file Cyd
    // exposes is byte for byte Bob's.
    let content: Vec<u8> = (0..50u32 << 20).map(|i| (i % 253) as u8).collect();
    let src = dirs[1].path().join("video.bin");
    std::fs::write(&src, &content).unwrap();
    let sent = b.send_file(&fc, src.to_str().unwrap()).await.unwrap();
    let id = hex::encode(sent.id);
    for cut in [10u64 << 20, 30 << 20] {
        let mut ec = c.subscribe();
        event(&mut ec, |e| match e {
            NodeEvent::FileProgress { id: got, bytes, .. } if got == id && bytes >= cut => Some(()),
            _ => None,
        })
        .await;
        c.stop().await;
        c = peerns_tests::started_node(config(dirs[2].path(), &url, "cyd"))
            .await
            .unwrap();
    }
    let mut ec = c.subscribe();
    let path = event(&mut ec, |e| match e {
        NodeEvent::FileReceived { id: got, path, .. } if got == id => Some(path),
        _ => None,
    })
    .await;
    assert!(
        std::fs::read(&path).unwrap() == content,
        "the received file differs"
    );

    for n in [&a, &b, &c] {
        n.stop().await;
    }
    server.kill().await;
}
