//! `peerns bench groups`: `members` real `peerns group chat --json` processes (this binary) in
//! one group through a local signaling server.
//! - `msgs_per_s`: every member types its share of `messages` lines at once; messages per
//!   second until every member has stored every one (each goes through the router).
//! - `migration_*`: the router is SIGKILLed; every survivor then sends a line every 100 ms, and
//!   for every pair of survivors the time until the receiver stored one of the sender's new
//!   lines is a sample. The killed member is restarted (it catches up) before the next trial.
//! - `backfill_*`: one member is stopped while the others send `backfill` messages (in rounds
//!   of `backfill_round`, 500 by default, each stored by everyone before the next); restarted,
//!   it stores them all (rate from its first backfilled message to the last).
//! - `lost` / `duplicated`: at the end, every line whose sender reported it durable
//!   (`queued`) must be in every member's history exactly once (read from the profiles).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use peerns_core::groups::GroupId;
use peerns_core::node::groups;
use peerns_core::store::Profile;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};

use super::percentile;
use crate::Result;
use crate::servers::ServerProcess;

/// How long a phase may take before the bench gives up.
const PHASE: Duration = Duration::from_secs(120);
/// How often the survivors send during a migration.
const TICK: Duration = Duration::from_millis(100);

/// What one member's processes printed (kept across its restarts).
#[derive(Default)]
struct Seen {
    /// Texts stored, with how many times each was printed.
    texts: HashMap<String, u32>,
    /// When each text was first printed.
    at: HashMap<String, Instant>,
    /// Texts this member's node reported durable.
    queued: HashSet<String>,
    router: bool,
}

struct Member {
    dir: tempfile::TempDir,
    child: Child,
    stdin: ChildStdin,
    seen: Arc<Mutex<Seen>>,
}

fn lock(seen: &Mutex<Seen>) -> std::sync::MutexGuard<'_, Seen> {
    seen.lock().unwrap_or_else(|e| e.into_inner())
}

impl Member {
    fn has(&self, text: &str) -> bool {
        lock(&self.seen).texts.contains_key(text)
    }

    /// Whether every one of `texts` was printed. Polled every 20 ms while the processes run,
    /// so the cheap necessary condition (enough distinct texts) comes first: the bench must
    /// not take the CPU it measures.
    fn has_all<'a>(
        &self,
        texts: impl IntoIterator<Item = &'a String, IntoIter: ExactSizeIterator>,
    ) -> bool {
        let texts = texts.into_iter();
        let s = lock(&self.seen);
        s.texts.len() >= texts.len() && { texts }.all(|t| s.texts.contains_key(t))
    }

    async fn say(&mut self, lines: &[String]) -> Result<()> {
        let mut buf = lines.join("\n");
        buf.push('\n');
        self.stdin.write_all(buf.as_bytes()).await?;
        self.stdin.flush().await?;
        Ok(())
    }

    async fn kill(&mut self) -> Result<()> {
        self.child.start_kill()?;
        self.child.wait().await?;
        lock(&self.seen).router = false;
        Ok(())
    }

    async fn restart(&mut self, url: &str, gid: &str) -> Result<()> {
        let (child, stdin) = spawn(self.dir.path(), url, gid, self.seen.clone())?;
        self.child = child;
        self.stdin = stdin;
        Ok(())
    }
}

/// What the bench reads of a `peerns group chat --json` line (the rest is skipped unparsed:
/// the bench must not take the CPU it measures).
#[derive(serde::Deserialize)]
struct Line<'a> {
    event: &'a str,
    #[serde(borrow, default)]
    text: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    role: Option<&'a str>,
}

fn spawn(
    profile: &Path,
    url: &str,
    gid: &str,
    seen: Arc<Mutex<Seen>>,
) -> Result<(Child, ChildStdin)> {
    let mut child = Command::new(std::env::current_exe()?)
        .arg("--profile")
        .arg(profile)
        .args([
            "group",
            "chat",
            "--signal",
            url,
            "--loopback",
            gid,
            "--json",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let stdin = child.stdin.take().ok_or("no stdin")?;
    let mut lines = BufReader::new(child.stdout.take().ok_or("no stdout")?).lines();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            let Ok(v) = serde_json::from_str::<Line>(&line) else {
                continue;
            };
            let text = v.text.unwrap_or_default().into_owned();
            let mut s = lock(&seen);
            match v.event {
                "message" => {
                    s.at.entry(text.clone()).or_insert_with(Instant::now);
                    *s.texts.entry(text).or_default() += 1;
                }
                "queued" => {
                    s.queued.insert(text);
                }
                "role" => s.router = v.role == Some("router"),
                _ => {}
            }
        }
    });
    Ok((child, stdin))
}

/// Waits until `done` holds, checking every 20 ms, for at most [`PHASE`].
async fn until(what: &str, mut done: impl FnMut() -> bool) -> Result<Duration> {
    let t0 = Instant::now();
    while !done() {
        if t0.elapsed() > PHASE {
            return Err(format!("bench groups: {what} did not happen within {PHASE:?}").into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(t0.elapsed())
}

/// What `peerns bench groups` runs.
pub struct Sizes {
    /// Members (processes).
    pub members: usize,
    /// Messages of the throughput burst.
    pub messages: usize,
    /// Router kills.
    pub failovers: usize,
    /// Messages a returning member catches up on.
    pub backfill: usize,
    /// Messages sent per round while that member is away.
    pub backfill_round: usize,
}

/// The figures of [`run`] as one JSON object; `say` prints a table as it goes.
pub async fn figures(sizes: Sizes, say: bool) -> Result<Value> {
    let Sizes {
        members,
        messages,
        failovers,
        backfill,
        backfill_round,
    } = sizes;
    if members < 3 {
        return Err("bench groups needs at least 3 members".into());
    }
    let server = ServerProcess::embedded(&[]).await?;
    let url = server.url();
    let (gid, mut ms) = start_group(&url, members).await?;
    let g = gid.to_hex();
    // Everyone hears everyone.
    for (i, m) in ms.iter_mut().enumerate() {
        m.say(&[format!("hello-{i}")]).await?;
    }
    let hellos: Vec<String> = (0..members).map(|i| format!("hello-{i}")).collect();
    until("the first messages", || {
        ms.iter().all(|m| m.has_all(&hellos))
    })
    .await?;

    // Throughput.
    let per = (messages / members).max(1);
    let burst: Vec<Vec<String>> = (0..members)
        .map(|i| (0..per).map(|n| format!("t-{i}-{n}")).collect())
        .collect();
    let t0 = Instant::now();
    for (m, lines) in ms.iter_mut().zip(&burst) {
        m.say(lines).await?;
    }
    let all: Vec<&String> = burst.iter().flatten().collect();
    until("the burst", || {
        ms.iter().all(|m| m.has_all(all.iter().copied()))
    })
    .await?;
    let msgs_per_s = all.len() as f64 / t0.elapsed().as_secs_f64();
    if say {
        println!(
            "{members} members, {} messages through the router: {msgs_per_s:.0} msgs/s",
            all.len()
        );
    }

    // Migrations.
    let mut samples = vec![];
    for trial in 0..failovers {
        samples.extend(migration(&mut ms, &url, &g, trial).await?);
    }
    let n = samples.len();
    let (m50, m95) = (
        percentile(&mut samples, 50.0),
        percentile(&mut samples, 95.0),
    );
    if say && n > 0 {
        println!(
            "router SIGKILLed {failovers} times ({n} pairs): messages flow again after p50 {m50:.2} s, p95 {m95:.2} s"
        );
    }

    // Backfill.
    let (rate, took) = catch_up(&mut ms, &url, &g, backfill, backfill_round).await?;
    if say {
        println!(
            "a returning member stored {backfill} missed messages at {rate:.0} msgs/s ({took:.2} s after its start)"
        );
    }

    // Exactly once, everywhere.
    let queued: HashSet<String> = ms
        .iter()
        .flat_map(|m| lock(&m.seen).queued.clone())
        .collect();
    until("every durable message everywhere", || {
        ms.iter().all(|m| m.has_all(&queued))
    })
    .await?;
    let (lost, duplicated) = audit(&mut ms, &gid, &queued).await?;
    if say {
        println!(
            "{} durable messages × {members} members: {lost} lost, {duplicated} duplicated",
            queued.len()
        );
    }
    let r2 = |v: f64| (v * 100.0).round() / 100.0;
    Ok(json!({
        "members": members,
        "messages": all.len(),
        "msgs_per_s": msgs_per_s.round(),
        "migration_p50_s": r2(m50),
        "migration_p95_s": r2(m95),
        "migration_samples": n,
        "backfill_msgs": backfill,
        "backfill_msgs_per_s": rate.round(),
        "backfill_s": r2(took),
        "durable_messages": queued.len(),
        "lost": lost,
        "duplicated": duplicated,
    }))
}

/// A group of `members` profiles (created and joined offline), each in a running process.
async fn start_group(url: &str, members: usize) -> Result<(GroupId, Vec<Member>)> {
    let dirs: Vec<tempfile::TempDir> = (0..members)
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
    drop(profiles);
    let mut ms = vec![];
    for dir in dirs {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let (child, stdin) = spawn(dir.path(), url, &gid.to_hex(), seen.clone())?;
        ms.push(Member {
            dir,
            child,
            stdin,
            seen,
        });
    }
    Ok((gid, ms))
}

/// One router kill: the time until each survivor stored a new line of each other survivor.
async fn migration(ms: &mut [Member], url: &str, gid: &str, trial: usize) -> Result<Vec<f64>> {
    until("a router", || {
        ms.iter().filter(|m| lock(&m.seen).router).count() == 1
    })
    .await?;
    let r = ms
        .iter()
        .position(|m| lock(&m.seen).router)
        .ok_or("no router")?;
    ms[r].kill().await?;
    let killed = Instant::now();
    let alive: Vec<usize> = (0..ms.len()).filter(|&i| i != r).collect();
    let mut flowing: BTreeMap<(usize, usize), f64> = BTreeMap::new();
    let pairs = alive.len() * (alive.len() - 1);
    let mut tick = 0usize;
    while flowing.len() < pairs {
        if killed.elapsed() > PHASE {
            return Err(format!("bench groups: no messages {PHASE:?} after a router kill").into());
        }
        for &j in &alive {
            ms[j].say(&[format!("k{trial}-{j}-{tick}")]).await?;
        }
        tick += 1;
        let next = Instant::now() + TICK;
        while Instant::now() < next {
            for &i in &alive {
                for &j in &alive {
                    if i != j
                        && !flowing.contains_key(&(i, j))
                        && (0..tick).any(|n| ms[i].has(&format!("k{trial}-{j}-{n}")))
                    {
                        flowing.insert((i, j), killed.elapsed().as_secs_f64());
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    // Back to full strength: the killed member returns and catches up.
    ms[r].restart(url, gid).await?;
    let sent: Vec<String> = alive
        .iter()
        .flat_map(|&j| (0..tick).map(move |n| format!("k{trial}-{j}-{n}")))
        .collect();
    until("the restarted member's catch-up", || ms[r].has_all(&sent)).await?;
    Ok(flowing.into_values().collect())
}

/// A member misses `n` messages and returns: (messages/s it stored them at, seconds from its
/// restart to the last one).
async fn catch_up(
    ms: &mut [Member],
    url: &str,
    gid: &str,
    n: usize,
    round: usize,
) -> Result<(f64, f64)> {
    let x = ms
        .iter()
        .position(|m| !lock(&m.seen).router)
        .ok_or("no member")?;
    ms[x].kill().await?;
    let others: Vec<usize> = (0..ms.len()).filter(|&i| i != x).collect();
    let texts: Vec<String> = (0..n).map(|i| format!("b-{i}")).collect();
    // Sent in rounds, each stored by everyone before the next: what is measured is the
    // catch-up, not the senders' burst (unless the round is the whole backfill).
    for round in texts.chunks(round.max(1)) {
        for (k, chunk) in round.chunks(round.len().div_ceil(others.len())).enumerate() {
            ms[others[k]].say(chunk).await?;
        }
        let missed = until("the messages the returning member missed", || {
            others.iter().all(|&i| ms[i].has_all(round))
        })
        .await;
        if let Err(e) = missed {
            let counts: Vec<usize> = others
                .iter()
                .map(|&i| round.iter().filter(|t| ms[i].has(t)).count())
                .collect();
            return Err(format!("{e} (stored by each: {counts:?})").into());
        }
    }
    ms[x].restart(url, gid).await?;
    let started = Instant::now();
    until("the returning member's backfill", || ms[x].has_all(&texts)).await?;
    let s = lock(&ms[x].seen);
    let times: Vec<Instant> = texts.iter().filter_map(|t| s.at.get(t).copied()).collect();
    let first = times.iter().min().copied().unwrap_or(started);
    let last = times.iter().max().copied().unwrap_or(started);
    let span = last.duration_since(first).as_secs_f64().max(1e-3);
    Ok((n as f64 / span, last.duration_since(started).as_secs_f64()))
}

/// Stops everyone and reads each profile's history: (copies missing, extra copies) of the
/// durable messages, summed over members; lines printed twice count as extra copies too.
async fn audit(ms: &mut [Member], gid: &GroupId, queued: &HashSet<String>) -> Result<(u64, u64)> {
    let (mut lost, mut duplicated) = (0u64, 0u64);
    for m in ms.iter_mut() {
        m.kill().await?;
        duplicated += lock(&m.seen)
            .texts
            .values()
            .map(|&c| u64::from(c.saturating_sub(1)))
            .sum::<u64>();
        let profile = Profile::open_desktop(m.dir.path())?;
        let mut copies: HashMap<String, u64> = HashMap::new();
        for msg in groups::history(&profile, gid, 1_000_000)? {
            *copies.entry(msg.text).or_default() += 1;
        }
        for t in queued {
            match copies.get(t).copied().unwrap_or(0) {
                0 => lost += 1,
                c => duplicated += c - 1,
            }
        }
    }
    Ok((lost, duplicated))
}

/// `peerns bench groups`: [`figures`], as a table or one JSON object.
pub async fn run(json: bool, sizes: Sizes) -> Result<()> {
    let out = figures(sizes, !json).await?;
    if json {
        println!("{out}");
    }
    Ok(())
}
