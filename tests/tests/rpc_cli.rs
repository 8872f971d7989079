//! Signed RPC between real processes through the real PeerJS server (`peer` 1.0.2): a desktop
//! `peerns serve` with two roots, a phone-like client at trust 3 with grants, and a contact at
//! trust 2. Allowed calls succeed; escape attempts get 403/400 and touch nothing on disk; the
//! level-2 contact gets 403; a replayed request and one moved to another session are refused;
//! the audit log lists every request. Then `peerns backup` uploads a folder of 200 files and
//! a big one into `/incoming`, is killed twice, resumes, and a last run skips everything.
//! The baby monitor records an armed camera that starts only on request, and its viewer is
//! alerted once the armed microphone (`serve --arm-mic test`) hears a loud burst, not before.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use peerns_tests::{
    ServerKind, ServerOpts, TestServer, peerns_bin, peerns_cmd as peerns, peerns_online as online,
};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Child;

fn offline(profile: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new(peerns_bin())
        .arg("--profile")
        .arg(profile)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "peerns {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn fingerprint(profile: &Path) -> String {
    peerns_core::store::Profile::open_desktop(profile)
        .unwrap()
        .identity()
        .fingerprint()
        .to_hex()
}

fn interrupt(child: &Child) {
    let pid = child.id().expect("running") as i32;
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(pid, libc::SIGINT) };
}

/// `peerns rpc call ... --json`: the printed `RPC_RES` lines.
async fn rpc(
    profile: &Path,
    url: &str,
    to: &str,
    method: &str,
    params: &str,
    extra: &[&str],
) -> Vec<Value> {
    let out = peerns(
        profile,
        &[
            "rpc",
            "call",
            "--signal",
            url,
            "--loopback",
            "--to",
            to,
            method,
            params,
            "--json",
        ],
    )
    .args(extra)
    .output();
    let out = tokio::time::timeout(Duration::from_secs(40), out)
        .await
        .expect("rpc call ended in time")
        .unwrap();
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert!(
        !lines.is_empty(),
        "{method} {params}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for l in &lines {
        assert_eq!(l["type"], "RPC_RES", "{l}");
    }
    lines
}

fn code(v: &Value) -> u64 {
    v["error"]["code"].as_u64().unwrap_or(200)
}

/// Starts `peerns serve` on `profile`; returns it once registered, with its JSON lines.
async fn serve(
    profile: &Path,
    url: &str,
    roots: &[String],
) -> (Child, tokio::sync::mpsc::UnboundedReceiver<Value>) {
    serve_with(profile, url, roots, &[]).await
}

/// `serve` with extra arguments.
async fn serve_with(
    profile: &Path,
    url: &str,
    roots: &[String],
    extra: &[&str],
) -> (Child, tokio::sync::mpsc::UnboundedReceiver<Value>) {
    let mut args = vec![
        "serve".to_owned(),
        "--signal".into(),
        url.into(),
        "--loopback".into(),
        "--json".into(),
    ];
    for r in roots {
        args.extend(["--root".to_owned(), r.clone()]);
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut child = peerns(profile, &args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start peerns serve");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Ok(j) = serde_json::from_str::<Value>(&line) {
                let _ = tx.send(j);
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(j) = rx.recv().await {
            // Printed once the persistent ID is registered.
            if j["event"] == "serving" {
                return;
            }
        }
        panic!("serve exited");
    })
    .await
    .expect("serve registered");
    (child, rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpc_serves_grants_refuses_escapes_replays_and_level_2_and_audits_it_all() {
    let server = TestServer::start(ServerKind::Peer, ServerOpts::default()).await;
    let url = server.url();
    let (desk, phone, other) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let (public, incoming, outside) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    std::fs::create_dir(public.path().join("photos")).unwrap();
    std::fs::write(public.path().join("photos/a.jpg"), b"jpeg").unwrap();
    std::fs::write(outside.path().join("secret"), b"secret").unwrap();
    std::os::unix::fs::symlink(outside.path(), public.path().join("photos/out")).unwrap();

    // Phone and another device become the desktop's contacts (level 2); the phone goes to 3.
    let mut node = peerns(
        desk.path(),
        &[
            "node",
            "--signal",
            &url,
            "--loopback",
            "--accept",
            "all",
            "--json",
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let mut lines = BufReader::new(node.stdout.take().unwrap()).lines();
    let hello = peerns_tests::node_started(&mut lines, 20).await;
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let link = hello["link"].as_str().unwrap().to_owned();
    let fd = hello["fingerprint"].as_str().unwrap().to_owned();
    online(phone.path(), &url, &["contacts", "add", &link]).await;
    online(other.path(), &url, &["contacts", "add", &link]).await;
    interrupt(&node);
    node.wait().await.unwrap();
    let (fp, fo) = (fingerprint(phone.path()), fingerprint(other.path()));
    online(desk.path(), &url, &["contacts", "trust", &fp, "3"]).await;
    offline(
        desk.path(),
        &[
            "rpc",
            "grant",
            &fp,
            "fs:read:/public/photos/*",
            "fs:write:/incoming/**",
            "sys:status:*",
        ],
    );
    // Grants need trust 3: the other device (level 2) cannot get one.
    let refused = std::process::Command::new(peerns_bin())
        .arg("--profile")
        .arg(desk.path())
        .args(["rpc", "grant", &fo, "sys:status:*"])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let grants = offline(desk.path(), &["rpc", "grants", "--json"]);
    assert_eq!(grants.lines().count(), 3, "{grants}");

    let roots = [
        format!("public={}", public.path().display()),
        format!("incoming={}", incoming.path().display()),
    ];
    let (mut srv, mut audit) = serve(desk.path(), &url, &roots).await;

    // Allowed calls.
    let r = &rpc(
        phone.path(),
        &url,
        &fd,
        "fs.read",
        r#"{"path":"/public/photos/a.jpg"}"#,
        &[],
    )
    .await[0];
    assert_eq!(r["result"]["data_b64"], "anBlZw==", "{r}");
    let r = &rpc(
        phone.path(),
        &url,
        &fd,
        "fs.write",
        r#"{"path":"/incoming/new/a.txt","data_b64":"aGk="}"#,
        &[],
    )
    .await[0];
    assert_eq!(r["result"]["done"], true, "{r}");
    assert_eq!(
        std::fs::read(incoming.path().join("new/a.txt")).unwrap(),
        b"hi"
    );
    let r = &rpc(
        phone.path(),
        &url,
        &fd,
        "sys.status",
        r#"{"what":"storage"}"#,
        &[],
    )
    .await[0];
    assert!(
        r["result"]["roots"]
            .as_array()
            .is_some_and(|a| a.len() == 2),
        "{r}"
    );

    // Escape attempts: refused, nothing touched.
    let escapes: &[(&str, &str, u64)] = &[
        (
            "fs.read",
            r#"{"path":"/public/photos/../../etc/passwd"}"#,
            400,
        ),
        ("fs.read", r#"{"path":"/public/photos/%2e%2e/a.jpg"}"#, 400),
        ("fs.read", r#"{"path":"/public//photos/a.jpg"}"#, 400),
        ("fs.read", r#"{"path":"/public/photos\\..\\a.jpg"}"#, 400),
        ("fs.read", r#"{"path":"/public/photos/a.jpg\u0000"}"#, 400),
        ("fs.read", r#"{"path":"/Public/photos/a.jpg"}"#, 403),
        ("fs.read", r#"{"path":"/public/photos/out"}"#, 403),
        (
            "fs.write",
            r#"{"path":"/incoming/./x","data_b64":"aGk="}"#,
            400,
        ),
        (
            "fs.write",
            r#"{"path":"/public/photos/x","data_b64":"aGk="}"#,
            403,
        ),
    ];
    for (method, params, want) in escapes {
        let r = &rpc(phone.path(), &url, &fd, method, params, &[]).await[0];
        assert_eq!(code(r), *want, "{method} {params}: {r}");
    }
    assert_eq!(
        std::fs::read(outside.path().join("secret")).unwrap(),
        b"secret"
    );
    assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 1);
    assert_eq!(
        std::fs::read_dir(public.path().join("photos"))
            .unwrap()
            .count(),
        2
    );
    assert_eq!(std::fs::read_dir(incoming.path()).unwrap().count(), 1);

    // The level-2 contact: 403 for everything.
    let r = &rpc(
        other.path(),
        &url,
        &fd,
        "sys.status",
        r#"{"what":"battery"}"#,
        &[],
    )
    .await[0];
    assert_eq!(code(r), 403, "{r}");

    // A replay in the same session, and a saved request sent in a new session.
    let saved = phone.path().join("req.json");
    let r = rpc(
        phone.path(),
        &url,
        &fd,
        "fs.read",
        r#"{"path":"/public/photos/a.jpg"}"#,
        &["--replay", "--save-request", saved.to_str().unwrap()],
    )
    .await;
    assert_eq!((code(&r[0]), code(&r[1])), (200, 400), "{r:?}");
    assert_eq!(r[1]["error"]["message"], "replayed request id");
    let r = &rpc(
        phone.path(),
        &url,
        &fd,
        "fs.read",
        "{}",
        &["--send-request", saved.to_str().unwrap()],
    )
    .await[0];
    assert_eq!(code(r), 403, "{r}");

    // Every request is in the audit events and the audit log.
    let mut events = vec![];
    while events.len() < 16 {
        let j = tokio::time::timeout(Duration::from_secs(10), audit.recv())
            .await
            .unwrap()
            .unwrap();
        if j["event"] == "rpc" {
            events.push(j);
        }
    }
    interrupt(&srv);
    srv.wait().await.unwrap();
    let log: Vec<Value> = offline(desk.path(), &["rpc", "audit"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let codes: Vec<u64> = log.iter().map(|e| e["code"].as_u64().unwrap()).collect();
    assert_eq!(
        codes,
        [
            200, 200, 200, 400, 400, 400, 400, 400, 403, 403, 400, 403, 403, 200, 400, 403
        ],
        "{log:?}"
    );
    let from_events: Vec<u64> = events.iter().map(|e| e["code"].as_u64().unwrap()).collect();
    assert_eq!(from_events, codes, "{events:?}");
    assert_eq!(log[12]["fingerprint"], fo.as_str());
    assert_eq!(log[1]["target"], "/incoming/new/a.txt");
    drop(server);
}

/// `peerns backup` to the end: its summary line.
async fn backup(profile: &Path, url: &str, to: &str, path: &Path) -> Value {
    let out = peerns(
        profile,
        &["backup", "--signal", url, "--loopback", "--to", to],
    )
    .arg(path)
    .output();
    let out = tokio::time::timeout(Duration::from_secs(60), out)
        .await
        .expect("backup ended in time")
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.lines().last().expect("a summary")).unwrap()
}

fn blake3_of(p: &Path) -> String {
    blake3::hash(&std::fs::read(p).unwrap())
        .to_hex()
        .to_string()
}

/// Files under `dir`, by path relative to it.
fn tree(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![];
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path().strip_prefix(dir).unwrap().to_owned());
            }
        }
    }
    out.sort();
    out
}

/// A folder of `small` files (in subfolders, one empty) and one file of `big_mib` MiB is backed
/// up by `peerns backup`; the run is killed twice while the big file is on its way, the third
/// run resumes and ends with identical files, and a fourth skips everything.
async fn backup_killed_twice(small: usize, big_mib: u32) {
    let server = TestServer::start(ServerKind::Peer, ServerOpts::default()).await;
    let url = server.url();
    let (desk, phone, incoming, src) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let photos = src.path().join("photos");
    // The big file comes first (folders are walked by name), then the small ones.
    std::fs::create_dir_all(photos.join("0-video")).unwrap();
    let big: Vec<u8> = (0..big_mib << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(photos.join("0-video/video.mp4"), &big).unwrap();
    let (mut total, mut empty) = (big.len() as u64, 0);
    for i in 0..small {
        let dir = photos.join(format!("{:02}", i / 25));
        std::fs::create_dir_all(&dir).unwrap();
        let data: Vec<u8> = (0..(i * 997) % 70_000).map(|j| (i + j) as u8).collect();
        total += data.len() as u64;
        empty += u64::from(data.is_empty());
        std::fs::write(dir.join(format!("p{i}.jpg")), data).unwrap();
    }
    let files = small as u64 + 1;

    let mut node = peerns(
        desk.path(),
        &[
            "node",
            "--signal",
            &url,
            "--loopback",
            "--accept",
            "all",
            "--json",
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let mut lines = BufReader::new(node.stdout.take().unwrap()).lines();
    let hello = peerns_tests::node_started(&mut lines, 20).await;
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let fd = hello["fingerprint"].as_str().unwrap().to_owned();
    online(
        phone.path(),
        &url,
        &["contacts", "add", hello["link"].as_str().unwrap()],
    )
    .await;
    interrupt(&node);
    node.wait().await.unwrap();
    let fp = fingerprint(phone.path());
    online(desk.path(), &url, &["contacts", "trust", &fp, "3"]).await;
    offline(desk.path(), &["rpc", "grant", &fp, "fs:write:/incoming/**"]);
    let (mut srv, mut events) = serve(
        desk.path(),
        &url,
        &[format!("incoming={}", incoming.path().display())],
    )
    .await;

    // Two runs killed while the big file is on its way, each after it sent 4 MiB more.
    let part_dir = incoming.path().join("photos/0-video");
    let partial = || {
        std::fs::read_dir(&part_dir).ok().and_then(|d| {
            d.flatten()
                .find(|e| e.file_name().to_string_lossy().starts_with(".peerns-part"))
                .and_then(|e| e.metadata().ok())
                .map(|m| m.len())
        })
    };
    let mut killed_at = 0;
    for _ in 0..2 {
        let mut run = peerns(
            phone.path(),
            &["backup", "--signal", &url, "--loopback", "--to", &fd],
        )
        .arg(&photos)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
        let want = killed_at + (4 << 20);
        tokio::time::timeout(Duration::from_secs(30), async {
            while partial().is_none_or(|n| n < want) {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
        .await
        .unwrap_or_else(|_| {
            while let Ok(e) = events.try_recv() {
                eprintln!("{e}");
            }
            panic!("the big upload reached {want} bytes: {:?}", partial())
        });
        run.start_kill().unwrap();
        run.wait().await.unwrap();
        killed_at = partial().expect("the partial file stays");
        assert!(!part_dir.join("video.mp4").exists());
    }

    // The third run resumes: it sends less than everything and ends with identical files.
    let s = backup(phone.path(), &url, &fd, &photos).await;
    assert!(s["bytes"].as_u64().unwrap() < total, "{s}");
    assert_eq!(
        s["files"].as_u64().unwrap() + s["skipped"].as_u64().unwrap(),
        files,
        "{s}"
    );
    let backed_up = incoming.path().join("photos");
    assert_eq!(tree(&photos), tree(&backed_up));
    for rel in tree(&photos) {
        assert_eq!(
            blake3_of(&photos.join(&rel)),
            blake3_of(&backed_up.join(&rel)),
            "{rel:?}"
        );
    }
    assert!(partial().is_none());
    // The fourth run: everything is there already.
    let s = backup(phone.path(), &url, &fd, &photos).await;
    assert_eq!(
        (
            s["files"].as_u64(),
            s["skipped"].as_u64(),
            s["bytes"].as_u64()
        ),
        (Some(0), Some(files), Some(0)),
        "{s}"
    );
    interrupt(&srv);
    srv.wait().await.unwrap();
    let mut uploads = 0;
    while let Some(e) = events.recv().await {
        if e["event"] == "rpc" && e["method"] == "fs.upload" && e["code"] == 200 {
            uploads += 1;
        }
    }
    // Each small file opened and placed (an empty one at its opening), the big one opened in
    // each of the three runs and placed once.
    assert_eq!(uploads, 2 * (small as u64 - empty) + empty + 4);
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_of_200_files_resumes_after_two_kills_and_then_skips_everything() {
    backup_killed_twice(200, 20).await;
}

/// The issue's size: run with `--ignored` (about a minute in a debug build).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn backup_of_200_files_and_200_mib_resumes_after_two_kills() {
    backup_killed_twice(200, 200).await;
}

/// A desktop (profile, fingerprint) and a phone at trust 3 allowed to watch its camera.
async fn desk_and_watching_phone(url: &str) -> (tempfile::TempDir, tempfile::TempDir, String) {
    let (desk, phone) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut node = peerns(
        desk.path(),
        &[
            "node",
            "--signal",
            url,
            "--loopback",
            "--accept",
            "all",
            "--json",
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let mut lines = BufReader::new(node.stdout.take().unwrap()).lines();
    let hello = peerns_tests::node_started(&mut lines, 20).await;
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let fd = hello["fingerprint"].as_str().unwrap().to_owned();
    online(
        phone.path(),
        url,
        &["contacts", "add", hello["link"].as_str().unwrap()],
    )
    .await;
    interrupt(&node);
    node.wait().await.unwrap();
    let fp = fingerprint(phone.path());
    online(desk.path(), url, &["contacts", "trust", &fp, "3"]).await;
    offline(
        desk.path(),
        &["rpc", "grant", &fp, "media:stream:camera:environment"],
    );
    (desk, phone, fd)
}

/// `peerns monitor ... --json` watching `fd` for `seconds` (plus `extra`): its JSON lines.
async fn monitor(phone: &Path, url: &str, fd: &str, seconds: &str, extra: &[&str]) -> Vec<Value> {
    let out = peerns(
        phone,
        &[
            "monitor",
            "--signal",
            url,
            "--loopback",
            "--to",
            fd,
            "--seconds",
            seconds,
            "--json",
        ],
    )
    .args(extra)
    .output();
    let out = tokio::time::timeout(Duration::from_secs(60), out)
        .await
        .expect("monitor ended")
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_monitor_records_an_armed_camera_that_starts_only_on_request() {
    let server = TestServer::start(ServerKind::Peer, ServerOpts::default()).await;
    let url = server.url();
    let (desk, phone, fd) = desk_and_watching_phone(&url).await;
    let root = tempfile::tempdir().unwrap();
    let roots = [format!("files={}", root.path().display())];
    let (mut srv, mut events) =
        serve_with(desk.path(), &url, &roots, &["--arm-camera", "test"]).await;
    // Armed, but nobody asked: the camera stays off.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut log = vec![];
    while let Ok(e) = events.try_recv() {
        log.push(e);
    }
    assert!(
        log.iter().all(|e| e["event"] != "camera_started"),
        "{log:?}"
    );

    let rec = phone.path().join("monitor.mkv");
    let rec_arg = rec.to_str().unwrap();
    let lines = monitor(phone.path(), &url, &fd, "3", &["--record", rec_arg]).await;
    assert_eq!(lines[0]["result"]["streaming"], true, "{lines:?}");
    // The first picture arrived well within the goal's 500 ms of the request (loopback).
    let frame = lines
        .iter()
        .find(|l| l["event"] == "first_frame")
        .unwrap_or_else(|| panic!("{lines:?}"));
    let ms = frame["ms_since_request"].as_f64().unwrap();
    eprintln!("monitor: first frame {ms:.0} ms after the request");
    assert!(ms <= 500.0, "{frame}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    interrupt(&srv);
    srv.wait().await.unwrap();
    while let Some(e) = events.recv().await {
        log.push(e);
    }
    // The request came first, then the camera.
    let at = |what: &dyn Fn(&Value) -> bool| log.iter().position(what);
    let asked = at(&|e| e["event"] == "rpc" && e["method"] == "media.stream" && e["code"] == 200)
        .expect("request logged");
    let started = at(&|e| e["event"] == "camera_started").expect("camera started");
    assert!(asked < started, "{log:?}");
    let streams = peerns_tests::ffprobe(&rec);
    let video = streams
        .iter()
        .find(|s| s.0 == "h264")
        .unwrap_or_else(|| panic!("{streams:?}"));
    assert_eq!((video.1, video.2), (320, 240));
    assert!(video.3 >= 30, "{streams:?}");
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_monitor_viewer_is_alerted_after_the_armed_microphone_hears_a_loud_burst() {
    let server = TestServer::start(ServerKind::Peer, ServerOpts::default()).await;
    let url = server.url();
    let (desk, phone, fd) = desk_and_watching_phone(&url).await;
    let root = tempfile::tempdir().unwrap();
    let roots = [format!("files={}", root.path().display())];
    // The test microphone is quiet, then loud for 1.5 s from 8 s after the start.
    let extra = ["--arm-camera", "test", "--arm-mic", "test"];
    let (mut srv, mut events) = serve_with(desk.path(), &url, &roots, &extra).await;
    let lines = monitor(phone.path(), &url, &fd, "12", &[]).await;
    interrupt(&srv);
    srv.wait().await.unwrap();
    let mut log = vec![];
    while let Some(e) = events.recv().await {
        log.push(e);
    }
    let ms = |v: &Value| v["unix_ms"].as_u64().unwrap();
    let sounds: Vec<&Value> = log.iter().filter(|e| e["event"] == "sound").collect();
    assert_eq!(sounds.len(), 1, "{log:?}");
    assert!(sounds[0]["dbfs"].as_f64().unwrap() > -30.0, "{log:?}");
    // The viewer listened through the quiet part and heard one alert, after the burst began.
    let connected = lines
        .iter()
        .find(|l| l["event"] == "stream_connected")
        .unwrap_or_else(|| panic!("{lines:?}"));
    assert!(ms(connected) < ms(sounds[0]), "{lines:?} {log:?}");
    let alerts: Vec<&Value> = lines
        .iter()
        .filter(|l| l["event"] == "monitor_alert")
        .collect();
    assert_eq!(alerts.len(), 1, "{lines:?}");
    assert!(ms(alerts[0]) >= ms(sounds[0]), "{lines:?} {log:?}");
    assert_eq!(alerts[0]["from"], fd.as_str());
    assert!(
        alerts[0]["level_dbfs"].as_i64().unwrap() > -30,
        "{alerts:?}"
    );
    drop(server);
}
