//! Browser media interop: headless Chromium running peerjs 1.5.5 with fake capture
//! (`--use-fake-device-for-media-stream`) and a native node exchange PeerJS media calls, in both
//! directions (the native node calls the page, and the page calls the native node). In each
//! direction the native side sends OpenH264 test-pattern video and an Opus tone and records the
//! browser's camera and microphone: the browser's `getStats()` must show `framesDecoded`
//! growing from our video at 320×240 (shown turned when our packets' video-orientation
//! extension says so), and our Matroska recording of the browser's video and
//! audio must decode with `ffprobe`.
//!
//! Those two run at the transport layer (`Transport::call`, `Transport::media_offers`). A
//! browser has no Noise session, so the node's call rules (decision 0013) never admit its calls
//! as calls; a third case has the page call a real `peerns node --allow-browser-call ID`
//! process (`Node::allow_browser_calls`), which answers with the test pattern and records the
//! browser. A fourth has the page join a group call as a browser guest, exactly as the PeerNS
//! PWA calls a group call's participant (metadata `{groupCall: true, groupId}`), to the router
//! of a two-member group (`peerns group call --allow-browser ID`, an admin): the page decodes
//! the router's video (H.264), and the other member lists the page in the call, receives its
//! camera through the router's forwarder and records it decodably. Like `browser_interop`, the test re-runs itself in a loopback-only
//! network namespace.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use peerns_core::media::record::Recording;
use peerns_core::media::track::{EncoderControl, MediaSource, Push};
use peerns_core::store::Profile;
use peerns_core::transport::{MediaConnection, MediaKind, MediaOptions, RemoteTrack, TrackSpec};
use peerns_media_desktop::audio::OpusEncoder;
use peerns_media_desktop::sources::{TestPattern, Tone};
use peerns_media_desktop::video::H264Encoder;
use peerns_tests::browser::{Browser, peerjs_version, run_in_netns};
use peerns_tests::{ServerKind, ServerOpts, TestNode, TestServer, ffprobe, peerns_bin, test_node};
use serde_json::{Value, json};
use tokio::io::AsyncBufReadExt;
use tokio::sync::mpsc;

/// Media per direction.
const SECONDS: u64 = 4;
const FPS: u64 = 30;
const STEP: Duration = Duration::from_secs(15);

/// Sends the test pattern (320×240) and a tone on `conn` for [`SECONDS`]; returns the video
/// frames queued.
async fn send_media(conn: MediaConnection) -> u64 {
    let (video, mut ctl) = MediaSource::start(&conn, conn.local_track("video").expect("video"));
    let (audio, _) = MediaSource::start(&conn, conn.local_track("audio").expect("audio"));
    let tone = tokio::spawn(async move {
        let mut enc = OpusEncoder::new(32_000).expect("opus");
        let mut tone = Tone::new(440.0);
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        for i in 0..SECONDS * 50 {
            tick.tick().await;
            let _ = audio.push(enc.encode(&tone.next_frame(), i * 20_000).expect("opus"));
        }
    });
    let mut enc = H264Encoder::new(FPS as f32, 600_000).expect("encoder");
    let mut pattern = TestPattern::new(320, 240);
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / FPS));
    let mut pushed = 0;
    for i in 0..SECONDS * FPS {
        tick.tick().await;
        while let Ok(c) = ctl.try_recv() {
            match c {
                EncoderControl::KeyframeRequest => enc.request_keyframe(),
                EncoderControl::TargetBitrate(b) => enc.set_target_bitrate(b).expect("bitrate"),
            }
        }
        if let Some(f) = enc
            .encode(&pattern.next_frame(), i * 1_000_000 / FPS)
            .expect("encode")
            && video.push(f) == Push::Queued
        {
            pushed += 1;
        }
    }
    tone.await.unwrap();
    pushed
}

/// The browser's audio and video tracks, video first.
async fn browser_tracks(conn: &MediaConnection) -> Vec<RemoteTrack> {
    let mut out = vec![];
    while out.len() < 2 {
        let t = tokio::time::timeout(STEP, conn.next_remote_track())
            .await
            .expect("the browser's tracks in time")
            .expect("connection open");
        out.push(t);
    }
    out.sort_by_key(|t| t.kind() == MediaKind::Audio);
    out
}

/// Runs one call on the connected `conn`: we send, saying our picture must be turned
/// `rotation` degrees (the video-orientation extension), record the browser and sample its
/// stats twice. Returns a summary line.
async fn exchange(
    browser: &mut Browser,
    bid: &str,
    conn: MediaConnection,
    rotation: u16,
) -> String {
    conn.connected(STEP).await.expect("media connected");
    conn.local_track("video")
        .expect("video")
        .set_rotation(rotation);
    let tracks = browser_tracks(&conn).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("browser.mkv");
    let rec = Recording::start(tracks, std::fs::File::create(&path).unwrap());
    let sender = tokio::spawn(send_media(conn.clone()));
    tokio::time::sleep(Duration::from_secs(SECONDS / 2)).await;
    let mid = stats(browser, bid).await;
    let pushed = sender.await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let end = stats(browser, bid).await;
    let received: Vec<u64> = rec
        .tracks()
        .iter()
        .map(|(_, s)| s.frames.load(Ordering::Relaxed))
        .collect();
    rec.finish().await.expect("recording");
    browser
        .call("hangUp", json!({"id": bid}), STEP)
        .await
        .expect("hang up");
    conn.close().await;

    let decoded = |v: &Value| v["inVideo"]["framesDecoded"].as_u64().unwrap_or(0);
    let (d_mid, d_end) = (decoded(&mid), decoded(&end));
    assert!(
        d_mid > 0 && d_end > d_mid,
        "framesDecoded grows in the browser: {mid} then {end}"
    );
    assert!(
        d_end * 10 >= pushed * 6,
        "the browser decoded {d_end} of {pushed} frames"
    );
    assert_eq!(end["inVideo"]["codec"], "video/H264", "{end}");
    assert_eq!(
        (&end["inVideo"]["width"], &end["inVideo"]["height"]),
        (&json!(320), &json!(240)),
        "{end}"
    );
    // The browser shows the picture turned as our packets say.
    let shown = if rotation % 180 == 90 {
        json!({"width": 240, "height": 320})
    } else {
        json!({"width": 320, "height": 240})
    };
    assert_eq!(end["shown"], shown, "turned {rotation}°: {end}");
    let streams = ffprobe(&path);
    assert_eq!(streams.len(), 2, "video and audio recorded: {streams:?}");
    let (vcodec, w, h, vframes) = &streams[0];
    assert!(
        ["h264", "vp8"].contains(&vcodec.as_str()) && (*w, *h) == (320, 240),
        "the browser's video: {streams:?}"
    );
    assert!(
        *vframes >= SECONDS * 10,
        "the browser's video decodes: {vframes} frames ({streams:?})"
    );
    assert_eq!(streams[1].0, "opus", "{streams:?}");
    assert!(
        streams[1].3 >= SECONDS * 25,
        "the browser's audio: {streams:?}"
    );
    format!(
        "we pushed {pushed} frames, browser decoded {d_mid} → {d_end} ({}); we received \
         {received:?}, recording {streams:?}",
        end["inVideo"]["codec"]
    )
}

async fn stats(browser: &mut Browser, bid: &str) -> Value {
    browser
        .call("mediaStats", json!({"id": bid}), STEP)
        .await
        .expect("mediaStats")
}

fn tracks() -> Vec<TrackSpec> {
    vec![TrackSpec::audio(), TrackSpec::video()]
}

/// The native node calls the page, which answers with its fake camera.
async fn native_to_browser(browser: &mut Browser, node: &TestNode, bid: &str) -> String {
    browser
        .call("answerCalls", json!({"id": bid}), STEP)
        .await
        .expect("answerCalls");
    let conn = node
        .transport
        .call(
            bid,
            MediaOptions {
                tracks: tracks(),
                metadata: json!({"call": "native"}),
                ..Default::default()
            },
        )
        .await
        .expect("call the browser");
    exchange(browser, bid, conn, 90).await
}

/// The page calls the native node, which answers.
async fn browser_to_native(browser: &mut Browser, node: &TestNode, bid: &str) -> String {
    let mut offers = node.transport.media_offers(2);
    let (tx, mut rx) = mpsc::channel(1);
    let accept = tokio::spawn(async move {
        let inc = tokio::time::timeout(STEP, offers.recv())
            .await
            .expect("the browser's OFFER in time")
            .expect("subscribed");
        let peer = inc.peer().to_owned();
        let conn = inc.accept(tracks()).await.expect("accept");
        tx.send((peer, conn)).await.unwrap();
    });
    let called = browser
        .call("call", json!({"id": bid, "to": node.id}), STEP)
        .await
        .expect("the page's call");
    accept.await.unwrap();
    let (peer, conn) = rx.recv().await.unwrap();
    assert_eq!(peer, bid);
    assert!(
        called["connectionId"]
            .as_str()
            .is_some_and(|c| c.starts_with("mc_")),
        "{called}"
    );
    exchange(browser, bid, conn, 0).await
}

/// The page calls `peerns node --allow-browser-call BID`, which answers with the test
/// pattern and records the browser until it hangs up.
async fn browser_to_cli(browser: &mut Browser, server: &TestServer, bid: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let rec_dir = dir.path().join("rec");
    std::fs::create_dir(&rec_dir).unwrap();
    let mut child = tokio::process::Command::new(peerns_bin())
        .arg("--profile")
        .arg(dir.path().join("profile"))
        .args(["node", "--signal", &server.url(), "--loopback", "--json"])
        .args([
            "--video",
            "test",
            "--allow-browser-call",
            bid,
            "--record-dir",
        ])
        .arg(&rec_dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(dir.path().join("node.err")).unwrap())
        .kill_on_drop(true)
        .spawn()
        .expect("start peerns node");
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    // Its `started` line, then registration (on failure, with the node's log).
    let mut hello = Value::Null;
    let registered = tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(Some(l)) = lines.next_line().await {
            let v: Value = serde_json::from_str(&l).unwrap_or(Value::Null);
            if v["event"] == "started" {
                hello = v;
            } else if v["event"] == "signaling" && v["state"] == "connected" {
                return true;
            }
        }
        false
    })
    .await;
    assert!(
        registered == Ok(true),
        "peerns node did not register ({hello}): {}",
        std::fs::read_to_string(dir.path().join("node.err")).unwrap_or_default()
    );
    let to = hello["peer_id"].as_str().unwrap().to_owned();
    browser
        .call("call", json!({"id": bid, "to": to}), STEP)
        .await
        .expect("the page calls peerns node");
    tokio::time::sleep(Duration::from_secs(SECONDS / 2)).await;
    let mid = stats(browser, bid).await;
    tokio::time::sleep(Duration::from_secs(SECONDS / 2)).await;
    let end = stats(browser, bid).await;
    browser
        .call("hangUp", json!({"id": bid}), STEP)
        .await
        .expect("hang up");
    let mut events = vec![];
    let ended = tokio::time::timeout(STEP, async {
        while let Ok(Some(l)) = lines.next_line().await {
            let v: Value = serde_json::from_str(&l).unwrap_or(Value::Null);
            let done = v["event"] == "browser_call" && v["state"] == "ended";
            events.push(v);
            if done {
                return;
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "peerns node saw the hang-up: {events:?}");
    // The recording is closed right after `ended` is printed.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _ = child.start_kill();
    let decoded = |v: &Value| v["inVideo"]["framesDecoded"].as_u64().unwrap_or(0);
    assert!(
        decoded(&mid) > 0 && decoded(&end) > decoded(&mid),
        "the browser decodes peerns node's video: {mid} then {end}"
    );
    let files: Vec<_> = std::fs::read_dir(&rec_dir).unwrap().flatten().collect();
    assert_eq!(files.len(), 1, "one recording: {files:?}");
    let streams = ffprobe(&files[0].path());
    assert_eq!(streams.len(), 2, "{streams:?}");
    let video = streams.iter().find(|s| s.0 == "vp8" || s.0 == "h264");
    assert!(
        video.is_some_and(|v| (v.1, v.2) == (320, 240) && v.3 >= SECONDS * 10),
        "the browser's video decodes: {streams:?}"
    );
    assert!(
        streams.iter().any(|s| s.0 == "opus" && s.3 >= SECONDS * 25),
        "the browser's audio decodes: {streams:?}"
    );
    assert!(
        events.iter().any(|e| e["event"] == "media_stats"),
        "media_stats lines: {events:?}"
    );
    format!(
        "browser decoded {} → {}, recording {streams:?}",
        decoded(&mid),
        decoded(&end)
    )
}

/// One `peerns` process whose JSON lines are collected.
struct Cli {
    child: tokio::process::Child,
    lines: std::sync::Arc<std::sync::Mutex<Vec<Value>>>,
}

impl Cli {
    fn start(profile: &std::path::Path, args: &[&str]) -> Cli {
        let mut child = tokio::process::Command::new(peerns_bin())
            .arg("--profile")
            .arg(profile)
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start peerns");
        let lines = std::sync::Arc::new(std::sync::Mutex::new(vec![]));
        let (out, seen) = (child.stdout.take().unwrap(), lines.clone());
        tokio::spawn(async move {
            let mut r = tokio::io::BufReader::new(out).lines();
            while let Ok(Some(l)) = r.next_line().await {
                if let Ok(v) = serde_json::from_str(&l) {
                    seen.lock().unwrap().push(v);
                }
            }
        });
        Cli { child, lines }
    }

    /// Whether a line matches `f`.
    fn saw(&self, f: impl Fn(&Value) -> bool) -> bool {
        self.lines.lock().unwrap().iter().any(f)
    }

    /// The latest `media_stats` video frames from `sender`.
    fn video_from(&self, sender: &str) -> u64 {
        self.latest_video_stats(sender, "frames")
    }

    /// Whether a keyframe from `sender` has arrived (its size, read from the SPS, is known):
    /// a recording starts at the first keyframe.
    fn keyframe_from(&self, sender: &str) -> bool {
        self.latest_video_stats(sender, "width") > 0
    }

    fn latest_video_stats(&self, sender: &str, field: &str) -> u64 {
        let lines = self.lines.lock().unwrap();
        lines
            .iter()
            .rev()
            .find(|v| v["event"] == "media_stats" && v["from"] == sender && v["kind"] == "video")
            .and_then(|v| v[field].as_u64())
            .unwrap_or(0)
    }

    async fn stop(mut self) {
        unsafe { libc::kill(self.child.id().unwrap() as i32, libc::SIGTERM) };
        let _ = tokio::time::timeout(STEP, self.child.wait()).await;
    }
}

async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < STEP * 3,
            "{what}: not within {:?}",
            STEP * 3
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn offline(profile: &std::path::Path, args: &[&str]) -> Value {
    let out = tokio::process::Command::new(peerns_bin())
        .arg("--profile")
        .arg(profile)
        .args(args)
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "peerns {args:?}");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The page joins a group's call as a browser guest of its router (an admin that allowed it);
/// it sees the router's camera, and the other member sees the page's through the router.
async fn browser_in_group_call(browser: &mut Browser, server: &TestServer, bid: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let (a_fp, a_id) = {
        let p = Profile::open_desktop(&a).unwrap();
        (
            p.identity().fingerprint().to_hex(),
            p.identity().peer_id().to_owned(),
        )
    };
    let b_fp = Profile::open_desktop(&b)
        .unwrap()
        .identity()
        .fingerprint()
        .to_hex();
    let gid = offline(&a, &["group", "create", "call", "--json"]).await["group"]
        .as_str()
        .unwrap()
        .to_owned();
    let invite = offline(&a, &["group", "invite", &gid, &b_fp, "--json"]).await;
    offline(
        &b,
        &[
            "group",
            "join",
            invite["invite"].as_str().unwrap(),
            "--json",
        ],
    )
    .await;
    let url = server.url();
    let call = |extra: &[&str]| -> Vec<String> {
        let mut args: Vec<String> = [
            "group",
            "call",
            "--signal",
            &url,
            "--loopback",
            &gid,
            "--video",
            "test",
            "--json",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };
    // The router's camera, as a phone held sideways sends it, says it must be turned 90°.
    let a_args = call(&["--allow-browser", bid, "--video-rotation", "90"]);
    let a_cli = Cli::start(&a, &a_args.iter().map(String::as_str).collect::<Vec<_>>());
    // Routing and in the call: connected, with nobody to send our media to.
    until("the admin routes the call", || {
        a_cli
            .saw(|v| v["event"] == "call" && v["state"] == "connected" && v["media_peer"].is_null())
    })
    .await;
    let rec = dir.path().join("rec");
    let b_args = call(&["--record-dir", rec.to_str().unwrap()]);
    let b_cli = Cli::start(&b, &b_args.iter().map(String::as_str).collect::<Vec<_>>());
    until("the member sees the router", || b_cli.video_from(&a_fp) > 0).await;

    // So does the page's (its packets carry it: a browser tells no media state).
    let metadata = json!({"groupCall": true, "groupId": gid, "kind": "video"});
    browser
        .call(
            "call",
            json!({"id": bid, "to": a_id, "metadata": metadata, "rotation": 270}),
            STEP,
        )
        .await
        .expect("the page calls the group's router");
    let guest = peerns_core::calls::group::guest_fingerprint(bid).to_hex();
    until("the router receives the browser's video", || {
        a_cli.video_from(&guest) > 30
    })
    .await;
    let mid = stats(browser, bid).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let end = stats(browser, bid).await;
    // (A member whose congestion estimate dips under load gets the page as thumbnails only,
    // a keyframe every 2 s: any frame counts, but the recording checked below starts at a
    // keyframe, so one must have come before the member stops.)
    until(
        "the member receives the browser's video through the router, a keyframe too",
        || b_cli.video_from(&guest) > 0 && b_cli.keyframe_from(&guest),
    )
    .await;
    until(
        "the member lists the browser in the call, turned as its packets say",
        || {
            b_cli.saw(|v| {
                v["event"] == "roster"
                    && v["participants"].as_array().is_some_and(|p| {
                        p.iter()
                            .any(|e| e["fingerprint"] == guest.as_str() && e["rotation"] == 270)
                    })
            })
        },
    )
    .await;
    let (at_router, at_member) = (a_cli.video_from(&guest), b_cli.video_from(&guest));
    browser
        .call("hangUp", json!({"id": bid}), STEP)
        .await
        .expect("hang up");
    b_cli.stop().await;
    a_cli.stop().await;
    let decoded = |v: &Value| v["inVideo"]["framesDecoded"].as_u64().unwrap_or(0);
    assert!(
        decoded(&mid) > 0 && decoded(&end) > decoded(&mid),
        "the browser decodes the router's video: {mid} then {end}"
    );
    assert_eq!(
        end["inVideo"]["codec"], "video/H264",
        "the router answers a browser with H.264 only (what its slots forward)"
    );
    assert_eq!(
        end["shown"],
        json!({"width": 240, "height": 320}),
        "the browser turns the router's picture as its packets say: {end}"
    );
    let streams = ffprobe(&rec.join(format!("{guest}-video.mkv")));
    assert!(
        streams
            .first()
            .is_some_and(|v| (v.0.as_str(), v.1, v.2) == ("h264", 320, 240) && v.3 >= 1),
        "the member's recording of the browser decodes: {streams:?}"
    );
    format!(
        "browser decoded {} → {}; the router received {at_router} of its frames, the member \
         {at_member}, recorded {streams:?}",
        decoded(&mid),
        decoded(&end)
    )
}

async fn run() {
    let t0 = Instant::now();
    let (server, mut browser) = tokio::join!(
        TestServer::start(ServerKind::Embedded, ServerOpts::default()),
        Browser::launch(),
    );
    assert_eq!(
        peerjs_version(),
        "1.5.5",
        "peerjs version served to the page"
    );
    let bid = "peerns-bm-browser";
    browser
        .call(
            "register",
            json!({"id": bid, "server": server.port()}),
            STEP,
        )
        .await
        .expect("page register");
    let node = test_node(&server.url(), "peerns-bm-native").await;
    for (name, dir) in [("native→browser", 0), ("browser→native", 1)] {
        let t = Instant::now();
        let summary = match dir {
            0 => native_to_browser(&mut browser, &node, bid).await,
            _ => browser_to_native(&mut browser, &node, bid).await,
        };
        println!("ok {name} ({:.2} s): {summary}", t.elapsed().as_secs_f64());
    }
    node.transport.shutdown().await;
    let t = Instant::now();
    let summary = browser_to_cli(&mut browser, &server, bid).await;
    println!(
        "ok browser→peerns node ({:.2} s): {summary}",
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let summary = browser_in_group_call(&mut browser, &server, bid).await;
    println!(
        "ok browser in a group call ({:.2} s): {summary}",
        t.elapsed().as_secs_f64()
    );
    println!("all cases in {:.2} s", t0.elapsed().as_secs_f64());
}

/// Both directions, with one Chromium, inside a fresh loopback-only network namespace.
#[test]
fn chromium_peerjs_media_calls() {
    if !run_in_netns("chromium_peerjs_media_calls") {
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(180), run())
            .await
            .expect("browser media calls finished within 180 s")
    });
}
