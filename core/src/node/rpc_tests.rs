//! Signed RPC between real nodes against an in-process signaling server: trust levels, grants,
//! the signature bound to the session, replays, escapes and the audit log.

use std::time::Duration;

use serde_json::json;

use super::tests::{alice_and_bob, befriend, server};
use super::*;
use crate::rpc::store as rpc_store;
use crate::rpc::wire::Request;

const WAIT: Duration = Duration::from_secs(10);

fn code(r: &crate::rpc::wire::Response) -> u16 {
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
    let fpa = parse_fp(&fa).unwrap();
    b.inner
        .db(move |c| {
            let s = crate::rpc::scope::Scope::parse("fs:read:/public/*").unwrap();
            rpc_store::grant(c, &fpa, &[s], 1).map_err(|e| NodeError::NotAllowed(e.to_string()))
        })
        .await
        .unwrap();
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
    let fpa = parse_fp(&fa).unwrap();
    b.inner
        .db(move |c| {
            let s = crate::rpc::scope::Scope::parse("db:read:messages:timestamp>1000").unwrap();
            rpc_store::grant(c, &fpa, &[s], 1).map_err(|e| NodeError::NotAllowed(e.to_string()))
        })
        .await
        .unwrap();
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
    let log = b.inner.db(|c| rpc_store::audit_log(c, 100)).await.unwrap();
    assert_eq!(log.len(), n + 3);

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
