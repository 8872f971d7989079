//! A group call between four real processes (`peerns group call`, test-pattern video and a
//! tone) through the real PeerJS server: media goes through the group's elected router. Once
//! everyone sees everyone, the router is SIGKILLed; every remaining participant must receive
//! every other remaining one again (their `media_stats` frames grow), and each recording of a
//! remaining participant decodes with `ffprobe` and holds at least 80 % of the frames its sender
//! sent while a router was up (the failover window is left out).
//!
//! With Last-N set to 1, each participant gets the video of one other participant through the
//! router's forwarder and the other one's as thumbnails: single keyframes every 2 s, each
//! recorded and decoded like the rest.
//!
//! Two participants while a third member routes the group: their media goes directly between
//! them. Each reports the other as its media peer, and their media keeps flowing while the
//! router's process is frozen (SIGSTOP), which no relayed packet could.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use peerns_core::store::Profile;
use peerns_tests::{ServerKind, ServerOpts, TestServer, ffprobe, peerns_cmd as peerns};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Child;

const PARTICIPANTS: usize = 4;
/// Seconds of the call once everyone sees everyone, before and after the kill.
const BEFORE_KILL: u64 = 8;
const AFTER_KILL: u64 = 12;
/// The calls here run one at a time: each is four processes encoding and decoding video, and
/// two at once on two cores would measure the machine rather than the call.
static ONE_CALL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
/// Longest failover the test accepts (loaded CI machine; the goal, 4 s, is a benchmark's).
const RESUME_LIMIT: Duration = Duration::from_secs(12);

async fn offline(profile: &Path, args: &[&str]) -> Value {
    let out = peerns(profile, args).output().await.unwrap();
    assert!(out.status.success(), "peerns {args:?}");
    serde_json::from_slice(&out.stdout).unwrap()
}

fn fingerprint(profile: &Path) -> String {
    Profile::open_desktop(profile)
        .unwrap()
        .identity()
        .fingerprint()
        .to_hex()
}

/// What one process reported so far.
#[derive(Default)]
struct Seen {
    /// (sender, kind) → video/audio frames received.
    received: BTreeMap<(String, String), u64>,
    /// Our video frames sent (queued on a connection).
    sent_video: u64,
    router: bool,
    /// The latest `speakers` list.
    speaking: Vec<String>,
    /// The latest `call` event: its state and media peer.
    call: (String, Option<String>),
}

struct Participant {
    fp: String,
    dir: PathBuf,
    rec: PathBuf,
    child: Option<Child>,
    seen: Arc<Mutex<Seen>>,
}

impl Participant {
    fn start(&mut self, url: &str, gid: &str, extra: &[&str]) {
        let rec = self.rec.to_str().unwrap().to_owned();
        let mut args = vec![
            "group",
            "call",
            "--signal",
            url,
            "--loopback",
            gid,
            "--video",
            "test",
            "--audio",
            "test",
            "--record-dir",
            &rec,
            "--json",
        ];
        args.extend_from_slice(extra);
        let mut child = peerns(&self.dir, &args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start peerns group call");
        let seen = self.seen.clone();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                let v: Value = serde_json::from_str(&line).expect("a JSON line");
                let mut s = seen.lock().unwrap();
                match v["event"].as_str() {
                    Some("media_stats") => {
                        let key = (
                            v["from"].as_str().unwrap().to_owned(),
                            v["kind"].as_str().unwrap().to_owned(),
                        );
                        s.received.insert(key, v["frames"].as_u64().unwrap());
                    }
                    Some("media_sent") if v["kind"] == "video" => {
                        s.sent_video = v["frames"].as_u64().unwrap();
                    }
                    Some("role") => s.router = v["role"] == "router",
                    Some("speakers") => {
                        s.speaking = v["speaking"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|f| f.as_str().unwrap().to_owned())
                            .collect();
                    }
                    Some("call") => {
                        s.call = (
                            v["state"].as_str().unwrap().to_owned(),
                            v["media_peer"].as_str().map(str::to_owned),
                        );
                    }
                    Some("media_sent" | "roster") => {}
                    other => panic!("unexpected event {other:?}"),
                }
            }
        });
        self.child = Some(child);
    }

    fn video_from(&self, other: &str) -> u64 {
        let key = (other.to_owned(), "video".to_owned());
        self.seen
            .lock()
            .unwrap()
            .received
            .get(&key)
            .copied()
            .unwrap_or(0)
    }

    fn sent(&self) -> u64 {
        self.seen.lock().unwrap().sent_video
    }
}

/// Waits until `cond` holds (checked every 100 ms); how long it took, or `None` after `limit`.
async fn wait(limit: Duration, mut cond: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if cond() {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

/// A group of `n` profiles made offline (the first creates it and invites the others): the
/// profiles and the group's ID.
async fn group_of(n: usize) -> (Vec<tempfile::TempDir>, String) {
    let tmp: Vec<tempfile::TempDir> = (0..n).map(|_| tempfile::tempdir().unwrap()).collect();
    for t in &tmp {
        Profile::open_desktop(t.path()).unwrap();
    }
    let admin = tmp[0].path();
    let created = offline(admin, &["group", "create", "call", "--json"]).await;
    let gid = created["group"].as_str().unwrap().to_owned();
    for t in &tmp[1..] {
        let fp = fingerprint(t.path());
        let inv = offline(admin, &["group", "invite", &gid, &fp, "--json"]).await;
        offline(
            t.path(),
            &["group", "join", inv["invite"].as_str().unwrap(), "--json"],
        )
        .await;
    }
    (tmp, gid)
}

/// Participants (not started) for `profiles`, recording under `recs`.
fn participants(profiles: &[tempfile::TempDir], recs: &Path) -> Vec<Participant> {
    profiles
        .iter()
        .enumerate()
        .map(|(i, t)| Participant {
            fp: fingerprint(t.path()),
            dir: t.path().to_owned(),
            rec: recs.join(format!("p{i}")),
            child: None,
            seen: Arc::default(),
        })
        .collect()
}

/// A group of `PARTICIPANTS` and their participants, each started with `extra` arguments;
/// the recordings' directory.
async fn call_of_four(
    url: &str,
    extra: &[&str],
) -> (Vec<tempfile::TempDir>, tempfile::TempDir, Vec<Participant>) {
    let (tmp, gid) = group_of(PARTICIPANTS).await;
    let recs = tempfile::tempdir().unwrap();
    let mut ps = participants(&tmp, recs.path());
    for p in &mut ps {
        p.start(url, &gid, extra);
    }
    // Everyone sees everyone.
    let everyone: Vec<usize> = (0..PARTICIPANTS).collect();
    let took = wait(Duration::from_secs(60), || all_pairs(&ps, &everyone)).await;
    assert!(
        took.is_some(),
        "not every participant saw every other within 60 s"
    );
    (tmp, recs, ps)
}

/// Whether every participant in `alive` received video from every other one.
fn all_pairs(ps: &[Participant], alive: &[usize]) -> bool {
    alive.iter().all(|&i| {
        alive
            .iter()
            .filter(|&&j| j != i)
            .all(|&j| ps[i].video_from(&ps[j].fp) > 0)
    })
}

/// Stops the participants in `which` with SIGTERM (recordings are finished) and waits.
async fn stop(ps: &mut [Participant], which: &[usize]) {
    for &i in which {
        let c = ps[i].child.as_mut().unwrap();
        unsafe { libc::kill(c.id().unwrap() as i32, libc::SIGTERM) };
    }
    for &i in which {
        let c = ps[i].child.as_mut().unwrap();
        let status = tokio::time::timeout(Duration::from_secs(20), c.wait())
            .await
            .expect("exits after SIGTERM")
            .unwrap();
        assert!(status.success(), "p{i} exited with {status}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_four_person_group_call_survives_the_routers_death() {
    let _one = ONE_CALL.lock().await;
    let server = TestServer::start(ServerKind::Peer, ServerOpts::default()).await;
    let url = server.url();
    let (_tmp, _recs, mut ps) = call_of_four(&url, &[]).await;
    let everyone: Vec<usize> = (0..PARTICIPANTS).collect();
    // Everyone sends a tone, so everyone hears everyone speaking (the router from the audio
    // levels on the packets it forwards, and its own).
    let all_speak = wait(Duration::from_secs(10), || {
        ps.iter().all(|p| {
            let mut s = p.seen.lock().unwrap().speaking.clone();
            s.sort();
            let mut all: Vec<String> = ps.iter().map(|p| p.fp.clone()).collect();
            all.sort();
            s == all
        })
    })
    .await;
    assert!(all_speak.is_some(), "not everyone was heard speaking");
    let t0_sent: Vec<u64> = ps.iter().map(Participant::sent).collect();
    tokio::time::sleep(Duration::from_secs(BEFORE_KILL)).await;

    // Kill the router.
    let r = ps
        .iter()
        .position(|p| p.seen.lock().unwrap().router)
        .expect("one participant routes");
    let snapshot: BTreeMap<(usize, usize), u64> = everyone
        .iter()
        .flat_map(|&i| everyone.iter().map(move |&j| (i, j)))
        .filter(|(i, j)| i != j)
        .map(|(i, j)| ((i, j), ps[i].video_from(&ps[j].fp)))
        .collect();
    let kill_sent: Vec<u64> = ps.iter().map(Participant::sent).collect();
    ps[r].child.as_mut().unwrap().start_kill().unwrap();
    let killed_at = Instant::now();
    let alive: Vec<usize> = everyone.iter().copied().filter(|&i| i != r).collect();

    // Every remaining pair receives again (a second's worth of new frames).
    let mut resumed: BTreeMap<(usize, usize), Duration> = BTreeMap::new();
    let mut resume_sent: BTreeMap<usize, u64> = BTreeMap::new();
    while resumed.len() < alive.len() * (alive.len() - 1) && killed_at.elapsed() < RESUME_LIMIT {
        for &i in &alive {
            for &j in alive.iter().filter(|&&j| j != i) {
                if !resumed.contains_key(&(i, j))
                    && ps[i].video_from(&ps[j].fp) > snapshot[&(i, j)] + 30
                {
                    resumed.insert((i, j), killed_at.elapsed());
                    resume_sent.entry(j).or_insert_with(|| ps[j].sent());
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("router p{r} killed; media resumed after {resumed:?}");
    assert_eq!(
        resumed.len(),
        alive.len() * (alive.len() - 1),
        "every remaining pair receives again within {RESUME_LIMIT:?}: {resumed:?}"
    );
    tokio::time::sleep(Duration::from_secs(AFTER_KILL)).await;

    // Stop the others (SIGTERM: recordings are finished) and check the recordings.
    let end_sent: Vec<u64> = ps.iter().map(Participant::sent).collect();
    stop(&mut ps, &alive).await;
    for &i in &alive {
        for &j in alive.iter().filter(|&&j| j != i) {
            let file = ps[i].rec.join(format!("{}-video.mkv", ps[j].fp));
            let streams = ffprobe(&file);
            assert_eq!(streams.len(), 1, "{file:?}");
            let (codec, w, h, frames) = &streams[0];
            assert_eq!((codec.as_str(), *w, *h), ("h264", 320, 240), "{file:?}");
            // Frames j sent while both were in the call and a router was up.
            let failover = resume_sent[&j].saturating_sub(kill_sent[j]);
            let expected = end_sent[j] - t0_sent[j] - failover;
            assert!(
                *frames * 5 >= expected * 4,
                "p{i} recorded {frames} frames of p{j}; {expected} were sent outside the failover"
            );
        }
        // The killed router's streams were recorded up to its death, decodably.
        let file = ps[i].rec.join(format!("{}-video.mkv", ps[r].fp));
        let (_, _, _, frames) = ffprobe(&file)[0].clone();
        assert!(frames > 0, "p{i} recorded the router before it died");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_last_n_one_the_others_arrive_as_decodable_thumbnails() {
    let _one = ONE_CALL.lock().await;
    let server = TestServer::start(ServerKind::Peer, ServerOpts::default()).await;
    let url = server.url();
    let (_tmp, _recs, mut ps) = call_of_four(&url, &["--last-n", "1"]).await;
    // Let the speaker ranking settle (everyone sends a steady tone), then watch 10 s.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let everyone: Vec<usize> = (0..PARTICIPANTS).collect();
    let received = |ps: &[Participant]| -> BTreeMap<(usize, usize), u64> {
        everyone
            .iter()
            .flat_map(|&i| everyone.iter().map(move |&j| (i, j)))
            .filter(|(i, j)| i != j)
            .map(|(i, j)| ((i, j), ps[i].video_from(&ps[j].fp)))
            .collect()
    };
    let t0_sent: Vec<u64> = ps.iter().map(Participant::sent).collect();
    let t0 = received(&ps);
    tokio::time::sleep(Duration::from_secs(10)).await;
    let end_sent: Vec<u64> = ps.iter().map(Participant::sent).collect();
    let end = received(&ps);
    let r = ps
        .iter()
        .position(|p| p.seen.lock().unwrap().router)
        .expect("one participant routes");
    stop(&mut ps, &everyone).await;
    // Each participant other than the router gets the router's own video in full (its own
    // tracks), one other participant through the Last-N slot and the third as thumbnails.
    let members: Vec<usize> = everyone.iter().copied().filter(|&i| i != r).collect();
    for &i in &members {
        let mut counts = vec![];
        for &j in members.iter().filter(|&&j| j != i) {
            counts.push((end[&(i, j)] - t0[&(i, j)], j));
            // Whatever came, stills included, was recorded and decodes.
            let file = ps[i].rec.join(format!("{}-video.mkv", ps[j].fp));
            let streams = ffprobe(&file);
            assert_eq!(streams.len(), 1, "{file:?}");
            let (codec, w, h, frames) = &streams[0];
            assert_eq!((codec.as_str(), *w, *h), ("h264", 320, 240), "{file:?}");
            let watched = end[&(i, j)] - t0[&(i, j)];
            assert!(
                *frames * 10 >= watched * 9,
                "p{i} recorded {frames} frames of p{j}, received {watched} in the 10 s"
            );
        }
        // Together about one stream: one in full, the other a still every 2 s (the Last-N
        // choice may move between them when a budget estimate dips, so the sum is checked).
        let window = end_sent[r] - t0_sent[r];
        eprintln!("p{i}: frames of the two others in 10 s {counts:?}; {window} sent by each");
        let sum: u64 = counts.iter().map(|(n, _)| n).sum();
        assert!(
            sum * 2 >= window && sum * 10 <= window * 14,
            "p{i}: {counts:?} frames of the two others in 10 s, {window} sent by each"
        );
        assert!(
            counts.iter().all(|(n, _)| *n >= 2),
            "p{i}: both others came through, one as thumbnails: {counts:?}"
        );
        let from_router = end[&(i, r)] - t0[&(i, r)];
        assert!(
            from_router * 2 >= end_sent[r] - t0_sent[r],
            "p{i} gets the router's video in full"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_participants_talk_directly_while_a_third_member_routes() {
    let _one = ONE_CALL.lock().await;
    let server = TestServer::start(ServerKind::Peer, ServerOpts::default()).await;
    let url = server.url();
    let (tmp, gid) = group_of(3).await;
    // The third member comes online first, in the group's chat: it routes the group.
    let mut chat = peerns(
        tmp[2].path(),
        &[
            "group",
            "chat",
            "--signal",
            &url,
            "--loopback",
            &gid,
            "--json",
        ],
    )
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .expect("start peerns group chat");
    let _stdin = chat.stdin.take();
    let mut lines = BufReader::new(chat.stdout.take().unwrap()).lines();
    let routes = tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(Some(line)) = lines.next_line().await {
            let v: Value = serde_json::from_str(&line).expect("a JSON line");
            if v["event"] == "role" && v["role"] == "router" {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(routes, Ok(true), "the chat member routes the group");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

    let recs = tempfile::tempdir().unwrap();
    let mut ps = participants(&tmp[..2], recs.path());
    for p in &mut ps {
        p.start(&url, &gid, &[]);
    }
    // Each names the other as its media peer, and sees it.
    let direct = |ps: &[Participant]| {
        (0..2).all(|i| {
            let s = ps[i].seen.lock().unwrap();
            s.call == ("connected".to_owned(), Some(ps[1 - i].fp.clone())) && !s.router
        }) && all_pairs(ps, &[0, 1])
    };
    let took = wait(Duration::from_secs(60), || direct(&ps)).await;
    assert!(
        took.is_some(),
        "the two did not connect directly: {:?}",
        ps.iter()
            .map(|p| p.seen.lock().unwrap().call.clone())
            .collect::<Vec<_>>()
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let t0_sent: Vec<u64> = ps.iter().map(Participant::sent).collect();

    // Freeze the router: media between the two goes on.
    let router_pid = chat.id().unwrap() as i32;
    let before = [ps[0].video_from(&ps[1].fp), ps[1].video_from(&ps[0].fp)];
    unsafe { libc::kill(router_pid, libc::SIGSTOP) };
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let during = [ps[0].video_from(&ps[1].fp), ps[1].video_from(&ps[0].fp)];
    unsafe { libc::kill(router_pid, libc::SIGCONT) };
    eprintln!(
        "video frames received while the router was frozen for 2.5 s: {before:?} -> {during:?}"
    );
    for i in 0..2 {
        assert!(
            during[i] >= before[i] + 25,
            "p{i} received {} frames in 2.5 s with the router frozen",
            during[i] - before[i]
        );
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let end_sent: Vec<u64> = ps.iter().map(Participant::sent).collect();
    stop(&mut ps, &[0, 1]).await;
    chat.start_kill().unwrap();
    let _ = chat.wait().await;
    for i in 0..2 {
        let file = ps[i].rec.join(format!("{}-video.mkv", ps[1 - i].fp));
        let streams = ffprobe(&file);
        assert_eq!(streams.len(), 1, "{file:?}");
        let (codec, w, h, frames) = &streams[0];
        assert_eq!((codec.as_str(), *w, *h), ("h264", 320, 240), "{file:?}");
        let sent = end_sent[1 - i] - t0_sent[1 - i];
        assert!(
            *frames * 5 >= sent * 4,
            "p{i} recorded {frames} frames; {sent} were sent while paired"
        );
    }
}
