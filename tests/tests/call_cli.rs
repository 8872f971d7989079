//! A 1:1 call between real processes through the real PeerJS server (`peer` 1.0.2): `peerns
//! call --video test --audio test` to `peerns node --answer auto --record-dir DIR`. The
//! caller prints `media_stats` for the callee's tone; the callee's recording decodes with
//! ffprobe, holds ≥ 80 % of the video frames the caller sent at 320×240, and the audio; the
//! caller's `--record` holds the callee's tone.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use peerns_tests::{
    ServerKind, ServerOpts, TestServer, ffprobe, peerns_cmd as peerns, peerns_online as online,
};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Child;

/// Starts `peerns node ARGS --json`; returns it, its fingerprint and link, and its later lines.
async fn node(
    profile: &Path,
    url: &str,
    args: &[&str],
) -> (
    Child,
    String,
    String,
    tokio::sync::mpsc::UnboundedReceiver<Value>,
) {
    let mut child = peerns(profile, &["node", "--signal", url, "--loopback", "--json"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start peerns node");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let hello = peerns_tests::node_started(&mut lines, 20).await;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Ok(j) = serde_json::from_str::<Value>(&line) {
                let _ = tx.send(j);
            }
        }
    });
    let fp = hello["fingerprint"].as_str().unwrap().to_owned();
    let link = hello["link"].as_str().unwrap().to_owned();
    (child, fp, link, rx)
}

fn interrupt(child: &Child) {
    let pid = child.id().expect("running") as i32;
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(pid, libc::SIGINT) };
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cli_call_sends_pattern_and_tone_and_the_callee_records_them() {
    let server = TestServer::start(ServerKind::Peer, ServerOpts::default()).await;
    let url = server.url();
    let (da, db, rec) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    // Contacts first, trusted for calls on both sides.
    let (mut b, fb, link, _) = node(db.path(), &url, &["--accept", "all"]).await;
    online(
        da.path(),
        &url,
        &["contacts", "add", "--name", "bob", &link],
    )
    .await;
    interrupt(&b);
    b.wait().await.unwrap();
    let fa = peerns_core::store::Profile::open_desktop(da.path())
        .unwrap()
        .identity()
        .fingerprint()
        .to_hex();
    online(da.path(), &url, &["contacts", "trust", &fb, "2"]).await;
    online(db.path(), &url, &["contacts", "trust", &fa, "2"]).await;

    let record_dir = rec.path().to_str().unwrap();
    let caller_rec = da.path().join("heard.mkv");
    let (b, _, _, mut b_events) = node(
        db.path(),
        &url,
        &["--answer", "auto", "--record-dir", record_dir],
    )
    .await;
    let out = peerns(
        da.path(),
        &[
            "call",
            "--signal",
            &url,
            "--loopback",
            "--to",
            &fb,
            "--video",
            "test",
            "--audio",
            "test",
            "--seconds",
            "6",
            "--json",
            "--record",
            caller_rec.to_str().unwrap(),
        ],
    )
    .output();
    let out = tokio::time::timeout(Duration::from_secs(40), out)
        .await
        .expect("the call ended in time")
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let states: Vec<&str> = lines
        .iter()
        .filter(|j| j["event"] == "call")
        .filter_map(|j| j["state"].as_str())
        .collect();
    assert!(states.contains(&"connected"), "{states:?}");
    assert_eq!(states.last(), Some(&"ended"));
    // The caller heard bob's tone, second by second.
    let heard: Vec<u64> = lines
        .iter()
        .filter(|j| j["event"] == "media_stats" && j["kind"] == "audio")
        .map(|j| {
            assert_eq!(j["from"], fb.as_str());
            j["frames"].as_u64().unwrap()
        })
        .collect();
    assert!(heard.len() >= 4, "{heard:?}");
    assert!(heard.windows(2).all(|w| w[0] <= w[1]), "{heard:?}");
    assert!(*heard.last().unwrap() >= 200, "{heard:?}");
    let sent = |kind: &str| {
        lines
            .iter()
            .find(|j| j["event"] == "media_sent" && j["kind"] == kind)
            .and_then(|j| j["frames"].as_u64())
            .unwrap_or_else(|| panic!("no media_sent {kind}"))
    };
    let (video_sent, audio_sent) = (sent("video"), sent("audio"));

    // Bob's node logs the call, then closes the recording when it stops.
    tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(j) = b_events.recv().await {
            if j["event"] == "call_logged" {
                return;
            }
        }
    })
    .await
    .expect("bob logged the call");
    tokio::time::sleep(Duration::from_millis(500)).await;
    interrupt(&b);
    let mut b = b;
    b.wait().await.unwrap();
    drop(server);

    let files: Vec<_> = std::fs::read_dir(rec.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(files[0].extension().unwrap(), "mkv");
    let streams = ffprobe(&files[0]);
    eprintln!("sent video {video_sent} audio {audio_sent}; ffprobe {streams:?}");
    assert_eq!(streams.len(), 2, "{streams:?}");
    let video = streams.iter().find(|s| s.0 == "h264").expect("video");
    assert_eq!((video.1, video.2), (320, 240));
    assert!(video_sent >= 120, "6 s at 30 fps: {video_sent}");
    assert!(
        video.3 * 10 >= video_sent * 8,
        "video: {} of {video_sent}",
        video.3
    );
    let audio = streams.iter().find(|s| s.0 == "opus").expect("audio");
    assert!(
        audio.3 * 10 >= audio_sent * 8,
        "audio: {} of {audio_sent}",
        audio.3
    );
}
