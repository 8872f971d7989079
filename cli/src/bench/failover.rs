//! Group-call failover (`media_resume_*`): `participants` `peerns group call` processes (this
//! binary, test-pattern video and a tone) in one group through a local signaling server. Once
//! every participant receives every other's video, the router is SIGKILLed, and for every
//! remaining pair the time until the receiver's count of the sender's video frames grows by
//! 10 (a third of a second at 30 fps) is a sample; counts are printed every 100 ms.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use peerns_core::node::groups;
use peerns_core::store::Profile;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::Result;

/// How long everyone may take to see everyone, and the remaining pairs to resume.
const CONVERGE: Duration = Duration::from_secs(60);
const RESUME: Duration = Duration::from_secs(30);
/// New frames that count as "receiving again".
const GROWTH: u64 = 10;

#[derive(Default)]
struct Seen {
    /// Sender fingerprint → video frames received.
    video: BTreeMap<String, u64>,
    router: bool,
}

struct Proc {
    fp: String,
    child: Child,
    seen: Arc<Mutex<Seen>>,
}

impl Proc {
    fn from(&self, other: &Proc) -> u64 {
        let s = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        s.video.get(&other.fp).copied().unwrap_or(0)
    }
}

fn spawn(profile: &Path, url: &str, gid: &str) -> Result<(Child, Arc<Mutex<Seen>>)> {
    let mut child = Command::new(std::env::current_exe()?)
        .arg("--profile")
        .arg(profile)
        .args(["group", "call", "--signal", url, "--loopback", gid])
        .args([
            "--video",
            "test",
            "--audio",
            "test",
            "--json",
            "--stats-ms",
            "100",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let seen = Arc::new(Mutex::new(Seen::default()));
    let s = seen.clone();
    let mut lines = BufReader::new(child.stdout.take().ok_or("no stdout")?).lines();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            let Ok(v) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            let mut s = s.lock().unwrap_or_else(|e| e.into_inner());
            match v["event"].as_str() {
                Some("media_stats") if v["kind"] == "video" => {
                    if let (Some(from), Some(n)) = (v["from"].as_str(), v["frames"].as_u64()) {
                        s.video.insert(from.to_owned(), n);
                    }
                }
                Some("role") => s.router = v["role"] == "router",
                _ => {}
            }
        }
    });
    Ok((child, seen))
}

/// One trial: the resume time of every remaining pair, seconds.
async fn trial(url: &str, participants: usize) -> Result<Vec<f64>> {
    let dirs: Vec<tempfile::TempDir> = (0..participants)
        .map(|_| tempfile::tempdir())
        .collect::<std::io::Result<_>>()?;
    let profiles: Vec<Profile> = dirs
        .iter()
        .map(|d| Profile::open_desktop(d.path()))
        .collect::<std::result::Result<_, _>>()?;
    let gid = groups::create(&profiles[0], "bench")?;
    for p in &profiles[1..] {
        let link = groups::invite(&profiles[0], &gid, &p.identity().fingerprint())?;
        groups::join(p, &link)?;
    }
    let fps: Vec<String> = profiles
        .iter()
        .map(|p| p.identity().fingerprint().to_hex())
        .collect();
    drop(profiles);
    let mut procs = vec![];
    for (d, fp) in dirs.iter().zip(fps) {
        let (child, seen) = spawn(d.path(), url, &gid.to_hex())?;
        procs.push(Proc { fp, child, seen });
    }
    let pairs = |alive: &[usize]| -> Vec<(usize, usize)> {
        alive
            .iter()
            .flat_map(|&i| alive.iter().map(move |&j| (i, j)))
            .filter(|(i, j)| i != j)
            .collect()
    };
    let everyone: Vec<usize> = (0..participants).collect();
    let start = Instant::now();
    while !pairs(&everyone)
        .iter()
        .all(|&(i, j)| procs[i].from(&procs[j]) > 0)
    {
        if start.elapsed() > CONVERGE {
            return Err("the call did not converge".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let r = procs
        .iter()
        .position(|p| p.seen.lock().is_ok_and(|s| s.router))
        .ok_or("no router")?;
    let alive: Vec<usize> = everyone.into_iter().filter(|&i| i != r).collect();
    let before: BTreeMap<(usize, usize), u64> = pairs(&alive)
        .into_iter()
        .map(|(i, j)| ((i, j), procs[i].from(&procs[j])))
        .collect();
    procs[r].child.start_kill()?;
    let killed = Instant::now();
    let mut resumed = BTreeMap::new();
    while resumed.len() < before.len() {
        if killed.elapsed() > RESUME {
            return Err(format!("media did not resume within {RESUME:?}").into());
        }
        for (&(i, j), &n) in &before {
            if !resumed.contains_key(&(i, j)) && procs[i].from(&procs[j]) >= n + GROWTH {
                resumed.insert((i, j), killed.elapsed().as_secs_f64());
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for p in &mut procs {
        let _ = p.child.start_kill();
    }
    Ok(resumed.into_values().collect())
}

/// `trials` failovers of a `participants`-person call: every remaining pair's resume time.
pub async fn resume_times(url: &str, participants: usize, trials: usize) -> Result<Vec<f64>> {
    let mut out = vec![];
    for _ in 0..trials {
        out.extend(trial(url, participants).await?);
    }
    Ok(out)
}
