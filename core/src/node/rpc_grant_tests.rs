//! Where grants end, between real nodes against an in-process signaling server: folders on
//! the way to a glob, the monitor's stream and sound alerts (who sends and takes them), and
//! the audit log under a flood of refusals (and past it, what the handler answered).

use std::time::Duration;

use serde_json::json;

use super::platform::NotificationCategory;
use super::rpc_tests::{WAIT, alice_noted_and_bob, code, grant};
use super::tests::{Recorder, alice_and_bob, befriend, server, until};
use super::*;

/// Alice and Bob, contacts, with their profiles' folders and fingerprints.
async fn befriended(
    url: &str,
) -> (
    (tempfile::TempDir, tempfile::TempDir),
    Node,
    Node,
    String,
    String,
) {
    let (da, db, a, b) = alice_and_bob(url).await;
    befriend(&a, &b).await;
    let (fa, fb) = (a.identity().fingerprint, b.identity().fingerprint);
    ((da, db), a, b, fa, fb)
}

/// `node` serves `root` as `/public`, with no quotas.
fn serve_public(node: &Node, root: &std::path::Path) {
    node.rpc_serve(ServeConfig {
        roots: vec![("public".into(), root.into())],
        max_file: 0,
        quotas: vec![],
    })
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn folders_on_the_way_to_a_glob_are_listed_and_stated_but_not_their_files() {
    let srv = server().await;
    let (_dirs, a, b, fa, fb) = befriended(&srv.url()).await;
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("a/b")).unwrap();
    std::fs::write(root.path().join("a/b/keep.txt"), b"ok").unwrap();
    std::fs::write(root.path().join("a/b/secret.txt"), b"no").unwrap();
    std::fs::write(root.path().join("top.txt"), b"no").unwrap();
    serve_public(&b, root.path());
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_monitor_stops_streaming_to_a_viewer_that_loses_trust_its_grant_or_the_contact() {
    let srv = server().await;
    let (_dirs, a, b, fa, fb) = befriended(&srv.url()).await;
    b.rpc_serve(ServeConfig::default()).unwrap();
    b.rpc_arm_camera(Some("environment")).unwrap();
    let cam = "media:stream:camera:environment";
    let no_calls = async || a.active_call().is_none() && b.active_call().is_none();
    // Each way of taking the right away, in turn: the stream's call ends on both sides.
    for how in ["trust", "grant", "contact"] {
        b.set_trust(&fa, Trust::FullAccess).await.unwrap();
        grant(&b, &fa, cam).await;
        let call = a.rpc_watch(&fb, "environment", WAIT).await.unwrap();
        let streaming = async || lock(&b.inner.rpc.streaming).is_some();
        until(10, "the monitor knows its stream", streaming).await;
        assert_eq!(b.active_call().unwrap().call, call);
        match how {
            "trust" => b.set_trust(&fa, Trust::Trusted).await.unwrap(),
            "grant" => {
                // Another scope going leaves the stream on.
                grant(&b, &fa, "sys:status:battery").await;
                b.rpc_revoke(&fa, &["sys:status:battery".into()])
                    .await
                    .unwrap();
                assert_eq!(b.active_call().unwrap().call, call);
                b.rpc_revoke(&fa, &[cam.into()]).await.unwrap();
            }
            _ => b.remove_contact(&fa).await.unwrap(),
        }
        until(10, &format!("the stream ended ({how})"), no_calls).await;
        assert!(lock(&b.inner.rpc.streaming).is_none());
    }
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sound_alerts_are_taken_from_trusted_monitors_we_asked_to_watch_only() {
    let srv = server().await;
    let (_dirs, a, b, _, fb) = befriended(&srv.url()).await;
    let fpb = parse_fp(&fb).unwrap();
    let link = a.inner.link(&fpb).unwrap();
    let mut ea = a.subscribe();
    let alert = |trust| {
        let (inner, link) = (a.inner.clone(), link.clone());
        async move {
            lock(&inner.rpc.alerts_in).clear();
            let frame = crate::chat::wire::Frame::RpcSoundAlert { below_db: 20 };
            Inner::on_rpc_frame(&inner, &link, Some(trust), frame).await;
        }
    };
    // Not watched: dropped at every trust.
    for t in [Trust::Known, Trust::Trusted, Trust::FullAccess] {
        alert(t).await;
    }
    // Asked for its camera (refused: bob serves nothing): watched from now on, remembered.
    let r = a
        .rpc_call(&fb, "media.stream", json!({"facing": "user"}), WAIT)
        .await
        .unwrap();
    assert_eq!(code(&r), 403);
    let stored = a
        .inner
        .db(|c| crate::store::settings::get_setting(c, "rpc.watched"))
        .await
        .unwrap();
    assert_eq!(stored.as_deref(), Some(fb.as_str()));
    // A Known contact's alert is still refused; at Trusted it is taken.
    alert(Trust::Known).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    while let Ok(ev) = ea.try_recv() {
        assert!(!matches!(ev, NodeEvent::MonitorAlert { .. }), "{ev:?}");
    }
    assert!(a.monitor_alerts().is_empty());
    alert(Trust::Trusted).await;
    assert_eq!(a.monitor_alerts().len(), 1);
    // Watches noted at once all stay (one database call each), also as the first after a
    // start (nothing in memory yet).
    *lock(&a.inner.rpc.watched) = None;
    let others: Vec<Fingerprint> = (1..=20u8).map(|i| Fingerprint([i; 32])).collect();
    let tasks: Vec<_> = others
        .iter()
        .map(|fp| {
            let (inner, fp) = (a.inner.clone(), *fp);
            tokio::spawn(async move { inner.note_watched(fp).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let stored_list = async || {
        a.inner
            .db(|c| crate::store::settings::get_setting(c, "rpc.watched"))
            .await
            .unwrap()
            .unwrap_or_default()
    };
    let list = stored_list().await;
    assert!(others.iter().all(|f| list.contains(&f.to_hex())), "{list}");
    // A removed contact is no longer watched, in the store and in memory.
    a.remove_contact(&fb).await.unwrap();
    assert!(!stored_list().await.contains(&fb));
    alert(Trust::Trusted).await;
    assert_eq!(a.monitor_alerts().len(), 1);
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trusted_contact_refused_again_and_again_cannot_flood_the_audit_log() {
    let srv = server().await;
    let (_dirs, a, b, _, fb) = befriended(&srv.url()).await;
    b.rpc_serve(ServeConfig::default()).unwrap();
    // Trusted (2): every request is 403; each is answered, not each is written.
    for _ in 0..60 {
        let r = a
            .rpc_call(&fb, "sys.status", json!({"what": "battery"}), WAIT)
            .await
            .unwrap();
        assert_eq!(code(&r), 403);
    }
    let log = b
        .inner
        .db(|c| crate::rpc::store::audit_log(c, 1000))
        .await
        .unwrap();
    let burst = crate::rpc::refusals::BURST as usize;
    assert!(
        (burst..burst + 5).contains(&log.len()),
        "{} rows",
        log.len()
    );
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_full_access_contact_is_answered_is_always_logged_past_the_refusal_limit() {
    let srv = server().await;
    let (_dirs, a, b, fa, fb) = befriended(&srv.url()).await;
    let root = tempfile::tempdir().unwrap();
    serve_public(&b, root.path());
    b.set_trust(&fa, Trust::FullAccess).await.unwrap();
    grant(&b, &fa, "fs:read:/public/**").await;
    // A granted read of a missing file reaches the handler: its 404 is no refusal.
    let n = crate::rpc::refusals::BURST as usize + 10;
    for i in 0..n {
        let params = json!({"path": format!("/public/new{i}.jpg")});
        let r = a.rpc_call(&fb, "fs.read", params, WAIT).await.unwrap();
        assert_eq!(code(&r), 404);
    }
    let log = b
        .inner
        .db(|c| crate::rpc::store::audit_log(c, 1000))
        .await
        .unwrap();
    assert_eq!(log.iter().filter(|e| e.code == 404).count(), n);
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_armed_monitor_alerts_the_contacts_allowed_to_watch_it_on_a_held_loud_sound() {
    let srv = server().await;
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b, notes) = alice_noted_and_bob(&srv.url(), da.path(), db.path()).await;
    befriend(&a, &b).await;
    let (fa, fb) = (a.identity().fingerprint, b.identity().fingerprint);
    let mut ea = a.subscribe();
    b.set_trust(&fa, Trust::FullAccess).await.unwrap();
    assert!(b.rpc_sound_alert(Some(3.0)).is_err());
    b.rpc_sound_alert(Some(-30.0)).unwrap();
    // Not armed: levels are ignored.
    for _ in 0..5 {
        b.rpc_sound_level(-10.0);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    b.rpc_arm_camera(Some("environment")).unwrap();
    // Armed, but nobody may watch: nothing is sent (nor to a without a grant).
    for _ in 0..5 {
        b.rpc_sound_level(-10.0);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    grant(&b, &fa, "media:stream:camera:*").await;
    // Alice takes alerts only from a monitor whose camera she asked for (even if refused).
    let r = a
        .rpc_call(&fb, "media.stream", json!({"facing": "user"}), WAIT)
        .await
        .unwrap();
    assert_eq!(code(&r), 403);
    // The cooldown of the first alert (no watcher then) has to pass: a new detector.
    b.rpc_sound_alert(Some(-30.0)).unwrap();
    for _ in 0..5 {
        b.rpc_sound_level(-12.0);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let alert = async {
        while let Some(ev) = ea.recv().await {
            if let NodeEvent::MonitorAlert {
                fingerprint,
                level_dbfs,
            } = ev
            {
                return (fingerprint, level_dbfs);
            }
        }
        unreachable!("a stopped")
    };
    let got = tokio::time::timeout(WAIT, alert).await.unwrap();
    assert_eq!(got, (fb.clone(), -12));
    // And a notification (no stream of bob's is on the screen): a phone in a pocket hears it.
    let alarms: Vec<_> = lock(&notes.0)
        .iter()
        .filter(|n| n.category == NotificationCategory::MonitorAlert)
        .cloned()
        .collect();
    assert_eq!(alarms.len(), 1, "{alarms:?}");
    // Kept for a monitor screen opened from that notification.
    let seen = a.monitor_alerts();
    assert_eq!(
        seen.iter()
            .map(|s| (s.fingerprint.as_str(), s.level_dbfs))
            .collect::<Vec<_>>(),
        [(fb.as_str(), -12)]
    );
    assert!(seen[0].at_ms > 0);
    assert_eq!(alarms[0].conversation.as_deref(), Some(fb.as_str()));
    assert!(alarms[0].body.contains("-12 dBFS"), "{:?}", alarms[0]);
    // Only one per sound: more loud reports within the cooldown raise nothing.
    for _ in 0..5 {
        b.rpc_sound_level(-12.0);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    while let Ok(ev) = ea.try_recv() {
        assert!(!matches!(ev, NodeEvent::MonitorAlert { .. }), "{ev:?}");
    }
    let count = |notes: &Recorder| {
        lock(&notes.0)
            .iter()
            .filter(|n| n.category == NotificationCategory::MonitorAlert)
            .count()
    };
    assert_eq!(count(&notes), 1);
    // While alice watches bob's stream on her screen, an alert is an event only.
    let watching = a.call(&fb, Kinds::AUDIO).await.unwrap();
    until(10, "the watch call is up", async || {
        a.active_call().is_some_and(|c| c.call == watching)
    })
    .await;
    lock(&a.inner.rpc.alerts_in).clear();
    a.inner.on_sound_alert(&parse_fp(&fb).unwrap(), 20).await;
    assert_eq!(
        count(&notes),
        1,
        "notified while the stream was on the screen"
    );
    // In the background it is not on the screen: notified.
    a.set_app_active(false);
    lock(&a.inner.rpc.alerts_in).clear();
    a.inner.on_sound_alert(&parse_fp(&fb).unwrap(), 20).await;
    assert_eq!(count(&notes), 2);
    // Three taken in all, newest last; the list keeps the last RECENT_ALERTS.
    assert_eq!(
        a.monitor_alerts()
            .iter()
            .map(|s| s.level_dbfs)
            .collect::<Vec<_>>(),
        [-12, -20, -20]
    );
    for _ in 0..super::rpc_alert::RECENT_ALERTS {
        lock(&a.inner.rpc.alerts_in).clear();
        a.inner.on_sound_alert(&parse_fp(&fb).unwrap(), 30).await;
    }
    let seen = a.monitor_alerts();
    assert_eq!(seen.len(), super::rpc_alert::RECENT_ALERTS);
    assert!(seen.iter().all(|s| s.level_dbfs == -30));
    a.stop().await;
    b.stop().await;
}
