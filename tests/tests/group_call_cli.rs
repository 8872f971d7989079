//! A group call between four real processes (`peerns group call`, test-pattern video and a
//! tone) through the real PeerJS server: media goes through the group's elected router. Once
//! everyone sees everyone, the router is SIGKILLed; every remaining participant must receive
//! every other remaining one again (their `media_stats` frames grow), and each recording of a
//! remaining participant decodes with `ffprobe` and holds at least 80 % of the frames its sender
//! sent while a router was up (the failover window is left out).

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
}

struct Participant {
    fp: String,
    dir: PathBuf,
    rec: PathBuf,
    child: Option<Child>,
    seen: Arc<Mutex<Seen>>,
}

impl Participant {
    fn start(&mut self, url: &str, gid: &str) {
        let rec = self.rec.to_str().unwrap().to_owned();
        let mut child = peerns(
            &self.dir,
            &[
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
            ],
        )
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
                    Some("media_sent" | "call" | "roster") => {}
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_four_person_group_call_survives_the_routers_death() {
    let server = TestServer::start(ServerKind::Peer, ServerOpts::default()).await;
    let url = server.url();
    let tmp: Vec<tempfile::TempDir> = (0..PARTICIPANTS)
        .map(|_| tempfile::tempdir().unwrap())
        .collect();
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
    let recs = tempfile::tempdir().unwrap();
    let mut ps: Vec<Participant> = tmp
        .iter()
        .enumerate()
        .map(|(i, t)| Participant {
            fp: fingerprint(t.path()),
            dir: t.path().to_owned(),
            rec: recs.path().join(format!("p{i}")),
            child: None,
            seen: Arc::default(),
        })
        .collect();
    for p in &mut ps {
        p.start(&url, &gid);
    }

    // Everyone sees everyone.
    let all_pairs = |ps: &[Participant], alive: &[usize]| {
        alive.iter().all(|&i| {
            alive
                .iter()
                .filter(|&&j| j != i)
                .all(|&j| ps[i].video_from(&ps[j].fp) > 0)
        })
    };
    let everyone: Vec<usize> = (0..PARTICIPANTS).collect();
    let took = wait(Duration::from_secs(60), || all_pairs(&ps, &everyone)).await;
    assert!(
        took.is_some(),
        "not every participant saw every other within 60 s"
    );
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
    for &i in &alive {
        let c = ps[i].child.as_mut().unwrap();
        unsafe { libc::kill(c.id().unwrap() as i32, libc::SIGTERM) };
    }
    for &i in &alive {
        let c = ps[i].child.as_mut().unwrap();
        let status = tokio::time::timeout(Duration::from_secs(20), c.wait())
            .await
            .expect("exits after SIGTERM")
            .unwrap();
        assert!(status.success(), "p{i} exited with {status}");
    }
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
