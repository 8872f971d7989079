//! Where grants end, between real nodes against an in-process signaling server: folders on
//! the way to a glob, and the monitor's stream and alerts once trust or grants go.

use serde_json::json;

use super::rpc_tests::{WAIT, code, grant};
use super::tests::{alice_and_bob, befriend, server};
use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn folders_on_the_way_to_a_glob_are_listed_and_stated_but_not_their_files() {
    let srv = server().await;
    let (_da, _db, a, b) = alice_and_bob(&srv.url()).await;
    befriend(&a, &b).await;
    let (fa, fb) = (a.identity().fingerprint, b.identity().fingerprint);
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("a/b")).unwrap();
    std::fs::write(root.path().join("a/b/keep.txt"), b"ok").unwrap();
    std::fs::write(root.path().join("a/b/secret.txt"), b"no").unwrap();
    std::fs::write(root.path().join("top.txt"), b"no").unwrap();
    b.rpc_serve(ServeConfig {
        roots: vec![("public".into(), root.path().into())],
        max_file: 0,
        quotas: vec![],
    })
    .unwrap();
    b.set_trust(&fa, Trust::FullAccess).await.unwrap();
    grant(&b, &fa, "fs:read:/public/**/keep.txt").await;
    let call = async |method: &str, path: &str| {
        let params = match method {
            "fs.stat" => json!({"path": path, "hash": true}),
            _ => json!({"path": path}),
        };
        a.rpc_call(&fb, method, params, WAIT).await.unwrap()
    };
    // Folders on the way: listed and stated.
    for (m, p) in [
        ("fs.list", "/public"),
        ("fs.list", "/public/a/b"),
        ("fs.stat", "/public/a"),
    ] {
        let r = call(m, p).await;
        assert_eq!(code(&r), 200, "{m} {p}: {r:?}");
    }
    let r = call("fs.stat", "/public/a/b/keep.txt").await;
    assert!(r.outcome.unwrap()["blake3"].is_string());
    // Files the glob does not match: neither stated (size, hash) nor read.
    for (m, p) in [
        ("fs.stat", "/public/a/b/secret.txt"),
        ("fs.stat", "/public/top.txt"),
        ("fs.read", "/public/a/b/secret.txt"),
    ] {
        let r = call(m, p).await;
        assert_eq!(code(&r), 403, "{m} {p}: {r:?}");
    }
    a.stop().await;
    b.stop().await;
}
