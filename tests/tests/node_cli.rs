//! `peerns node` as a phone runs it: it starts at once without a reachable signaling server,
//! and a second process on the same profile exits at once with a clear error.

use std::process::Stdio;
use std::time::{Duration, Instant};

use peerns_tests::{free_port, peerns_bin};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

#[tokio::test]
async fn node_starts_offline_and_a_second_one_on_the_profile_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens on this port.
    let url = format!("ws://127.0.0.1:{}/", free_port());
    let node = |extra: &[&str]| {
        let mut cmd = Command::new(peerns_bin());
        cmd.arg("--profile")
            .arg(dir.path())
            .args(["node", "--signal", &url, "--loopback", "--json"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        cmd
    };
    let t = Instant::now();
    let mut first = node(&[]).spawn().unwrap();
    let mut lines = BufReader::new(first.stdout.take().unwrap()).lines();
    let started = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let line = lines.next_line().await.unwrap().expect("stdout ended");
            let v: serde_json::Value = serde_json::from_str(&line).unwrap();
            if v["event"] == "started" {
                return v;
            }
        }
    })
    .await
    .expect("no started event");
    assert!(started["fingerprint"].as_str().unwrap().len() == 64);
    // Process start and profile creation included; the server is never reached.
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());

    let t = Instant::now();
    let second = tokio::time::timeout(Duration::from_secs(10), node(&[]).output())
        .await
        .expect("the second node did not exit")
        .unwrap();
    assert!(!second.status.success());
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(err.contains("in use by another running node"), "{err}");
    assert!(t.elapsed() < Duration::from_secs(5));

    first.kill().await.unwrap();
    first.wait().await.unwrap();
    // The OS released the lock with the process: the profile starts again.
    let mut again = node(&["--seconds", "1"]).spawn().unwrap();
    assert!(again.wait().await.unwrap().success());
}
