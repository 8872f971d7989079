//! `peerns bench idle`: what a phone pays to sit at an event for hours. One `peerns node`
//! process (the one measured) with N contacts linked, stadium mode on and a group with a few
//! of them (it routes it), idle; its thread
//! wake-ups (context switches of all its threads, `getrusage`), CPU and resident memory come
//! from its `usage` events (SIGUSR1). The contacts run in this process and are not measured.
//! Then every app goes to the background (SIGUSR2 for the measured node) and the window is
//! measured again (`wakeups_background_per_s`): a phone at an event mostly has its screen off.
//! Last, once the measured node closed its links idle in the background (all but its group's;
//! its limit is set to end just after that window), once more
//! (`wakeups_background_idle_per_s`): a phone in a pocket for hours. Apart, through those
//! background windows, a second process with a message for a contact who stays away
//! (`wakeups_waiting_per_s`): its outbox waits and it redials with backoff.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use peerns_core::node::NodeEvent;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};
use tokio::sync::mpsc::UnboundedReceiver;

use super::messaging::start;
use crate::Result;
use crate::servers::ServerProcess;

/// Wait before a measured window: the idle blocking threads of the work before it exit after
/// 10 s (tokio's keep-alive), once.
const SETTLE: Duration = Duration::from_secs(12);
/// Where the measured node stands in stadium mode.
const STADIUM: &str = "52.5163,13.3777";
/// Contacts that are also members of the measured node's group.
const GROUP_MEMBERS: usize = 3;
/// How long after the first background window the measured node's idle links close.
const LINK_IDLE_MARGIN: Duration = Duration::from_secs(3);

/// One reading of the measured process's counters (its `usage` event).
#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Instant,
    /// Voluntary + involuntary context switches of all its threads so far.
    switches: u64,
    cpu_ms: f64,
    rss_kb: u64,
}

/// The measured `peerns node`: asked for its usage with SIGUSR1.
struct Measured {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Measured {
    fn signal(&self, sig: libc::c_int) -> Result<()> {
        let pid = self.child.id().ok_or("peerns node exited")?;
        // SAFETY: kill only sends a signal to our own child.
        if unsafe { libc::kill(pid as i32, sig) } != 0 {
            return Err("cannot signal peerns node".into());
        }
        Ok(())
    }

    async fn sample(&mut self) -> Result<Sample> {
        self.signal(libc::SIGUSR1)?;
        let at = Instant::now();
        let v = tokio::time::timeout(Duration::from_secs(10), async {
            while let Some(line) = self.lines.next_line().await? {
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
                    && v["event"] == "usage"
                {
                    return Ok(v);
                }
            }
            Err::<_, Box<dyn std::error::Error + Send + Sync>>("peerns node exited".into())
        })
        .await
        .map_err(|_| "no usage answer")??;
        Ok(Sample {
            at,
            switches: v["ctx_switches"].as_u64().ok_or("bad usage")?,
            cpu_ms: v["cpu_ms"].as_f64().ok_or("bad usage")?,
            rss_kb: v["rss_kb"].as_u64().ok_or("bad usage")?,
        })
    }

    /// Reads (and drops) its output for `d`, so it never blocks on a full pipe.
    async fn idle(&mut self, d: Duration) {
        let _ = tokio::time::timeout(d, async {
            while let Ok(Some(_)) = self.lines.next_line().await {}
        })
        .await;
    }

    /// [`Measured::idle`] of this one and `other` at once.
    async fn idle_with(&mut self, other: &mut Measured, d: Duration) {
        tokio::join!(self.idle(d), other.idle(d));
    }
}

/// Wake-ups per second and CPU percent between two samples.
fn rates(a: &Sample, b: &Sample) -> (f64, f64) {
    let secs = b.at.duration_since(a.at).as_secs_f64();
    (
        b.switches.saturating_sub(a.switches) as f64 / secs,
        (b.cpu_ms - a.cpu_ms) / 10.0 / secs,
    )
}

async fn next_matching(
    rx: &mut UnboundedReceiver<NodeEvent>,
    f: impl Fn(&NodeEvent) -> bool,
) -> Result<()> {
    tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(e) = rx.recv().await {
            if f(&e) {
                return Ok(());
            }
        }
        Err("events ended".into())
    })
    .await
    .map_err(|_| "the bench stalled")?
}

/// The measured node: `peerns node` on `profile`, in stadium mode; returns once it started.
/// A measured `peerns node` on `profile`, in stadium mode at [`STADIUM`] if `stadium`.
async fn spawn_node(
    url: &str,
    profile: &Path,
    link_idle: Duration,
    stadium: bool,
) -> Result<Measured> {
    let stadium = if stadium {
        vec!["--stadium", STADIUM]
    } else {
        vec![]
    };
    let mut child = Command::new(std::env::current_exe()?)
        .arg("--profile")
        .arg(profile)
        .args(["node", "--signal", url, "--loopback", "--json"])
        .args(stadium)
        .arg("--background-link-idle")
        .arg(link_idle.as_secs_f64().to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let mut lines = BufReader::new(child.stdout.take().ok_or("no stdout")?).lines();
    tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(line) = lines.next_line().await? {
            if line.contains("\"started\"") {
                return Ok(());
            }
        }
        Err::<(), Box<dyn std::error::Error + Send + Sync>>("peerns node exited".into())
    })
    .await
    .map_err(|_| "peerns node did not start")??;
    Ok(Measured { child, lines })
}

/// Runs the benchmark and prints a table or one JSON object.
pub async fn run(json_out: bool, contacts: usize, seconds: f64) -> Result<()> {
    let server = ServerProcess::embedded(&[]).await?;
    let url = server.url();
    // The measured node's links idle in the background close just after the first
    // background window (which therefore holds every link).
    let link_idle = SETTLE + Duration::from_secs_f64(seconds) + LINK_IDLE_MARGIN;
    let hub_dir = tempfile::tempdir()?;
    let dirs = (0..contacts)
        .map(|_| tempfile::tempdir())
        .collect::<std::io::Result<Vec<_>>>()?;

    // Befriend every contact with the hub, in this process.
    let hub = start(&url, hub_dir.path(), "hub").await?;
    let mut eh = hub.subscribe();
    let hub_fp = hub.identity().fingerprint;
    let mut nodes = vec![];
    for (i, d) in dirs.iter().enumerate() {
        let n = start(&url, d.path(), &format!("contact-{i}")).await?;
        let mut en = n.subscribe();
        n.request_contact(&hub.share_link()).await?;
        next_matching(&mut eh, |e| matches!(e, NodeEvent::ContactRequest { .. })).await?;
        hub.accept_request(&n.identity().fingerprint).await?;
        next_matching(&mut en, |e| matches!(e, NodeEvent::ContactAdded { .. })).await?;
        nodes.push(n);
    }
    // A group of the hub and a few contacts, made while they are online: its router and
    // members keep their links and namespace through the idle run.
    let group = hub.group_create("idle").await?;
    for n in nodes.iter().take(GROUP_MEMBERS) {
        let link = hub
            .group_invite(&group, &n.identity().fingerprint.parse()?)
            .await?;
        n.group_join(&link).await?;
    }
    hub.stop().await;
    drop((hub, eh));
    // The contacts go away while the measured node starts alone (its start dials recently seen
    // contacts; they must not answer yet), then come back and link.
    for n in nodes.drain(..) {
        n.stop().await;
    }

    // A phone with a message for a contact who stays away: its outbox waits and it redials
    // with backoff. Measured apart through the background windows, once its backoff has grown.
    let (waiting_dir, absent_dir) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let mut waiting = {
        let w = start(&url, waiting_dir.path(), "waiting").await?;
        let absent = start(&url, absent_dir.path(), "absent").await?;
        let (mut ew, mut ea) = (w.subscribe(), absent.subscribe());
        absent.request_contact(&w.share_link()).await?;
        next_matching(&mut ew, |e| matches!(e, NodeEvent::ContactRequest { .. })).await?;
        let absent_fp = absent.identity().fingerprint;
        w.accept_request(&absent_fp).await?;
        next_matching(&mut ea, |e| matches!(e, NodeEvent::ContactAdded { .. })).await?;
        absent.stop().await;
        w.send_message(&absent_fp, "are you there?").await?;
        w.stop().await;
        spawn_node(&url, waiting_dir.path(), link_idle, false).await?
    };

    // Offline: a signaling server nobody answers at (a free port); the node starts at once
    // and must sleep while it waits.
    let offline_dir = tempfile::tempdir()?;
    let nowhere = format!("ws://127.0.0.1:{}/", crate::servers::free_port()?);
    let mut offline = spawn_node(&nowhere, offline_dir.path(), link_idle, true).await?;
    offline
        .idle_with(&mut waiting, Duration::from_secs(2))
        .await;
    let off_start = offline.sample().await?;
    offline
        .idle_with(&mut waiting, Duration::from_secs_f64(seconds.min(10.0)))
        .await;
    let off_end = offline.sample().await?;
    let _ = offline.child.kill().await;
    let (wakeups_offline, _) = rates(&off_start, &off_end);

    let mut node = spawn_node(&url, hub_dir.path(), link_idle, true).await?;
    // Alone (signaling and stadium mode only), then with every contact linked.
    node.idle_with(&mut waiting, Duration::from_secs(2)).await;
    let start_alone = node.sample().await?;
    node.idle_with(&mut waiting, Duration::from_secs_f64(seconds.min(10.0)))
        .await;
    let alone = node.sample().await?;
    let (wakeups_alone, _) = rates(&start_alone, &alone);

    for (i, d) in dirs.iter().enumerate() {
        let n = start(&url, d.path(), &format!("contact-{i}")).await?;
        // Only the measured node closes idle links, when the bench says.
        n.set_background_link_idle(Duration::from_secs(24 * 3600));
        nodes.push(n);
    }
    for n in &nodes {
        n.connect(&hub_fp).await?;
    }
    // Settle: handshakes done, pumps quiet, and the blocking threads the start-up work spawned
    // gone (tokio keeps an idle one 10 s; each one's exit would count as a wake-up of this
    // window though it happens once, not every second).
    node.idle_with(&mut waiting, SETTLE).await;
    let linked = nodes.iter().filter(|n| n.is_connected(&hub_fp)).count();
    let first = node.sample().await?;
    node.idle_with(&mut waiting, Duration::from_secs_f64(seconds))
        .await;
    let last = node.sample().await?;
    let still = nodes.iter().filter(|n| n.is_connected(&hub_fp)).count();
    // The screens turn off: the measured node (SIGUSR2) and its contacts go to the
    // background; after the new paces are announced (and the threads of that switch idle
    // out), the same window again.
    node.signal(libc::SIGUSR2)?;
    for n in &nodes {
        n.set_app_active(false);
    }
    node.idle_with(&mut waiting, SETTLE).await;
    let bg_first = node.sample().await?;
    let waiting_first = waiting.sample().await?;
    // As long as the foreground window: the background work comes in 10 s bursts, so a short
    // window holds one or two of them and its rate is mostly chance.
    node.idle_with(&mut waiting, Duration::from_secs_f64(seconds))
        .await;
    let bg_last = node.sample().await?;
    let (wakeups_bg, cpu_bg) = rates(&bg_first, &bg_last);
    // The links nothing uses close (those of the group stay); the same window once more.
    let grouped = GROUP_MEMBERS.min(nodes.len());
    let closing = tokio::time::timeout(link_idle + Duration::from_secs(30), async {
        while nodes[grouped..].iter().any(|n| n.is_connected(&hub_fp)) {
            waiting.idle(Duration::from_millis(200)).await;
        }
    });
    closing
        .await
        .map_err(|_| "the idle links did not close in the background")?;
    node.idle_with(&mut waiting, SETTLE).await;
    let idle_first = node.sample().await?;
    node.idle_with(&mut waiting, Duration::from_secs_f64(seconds))
        .await;
    let idle_last = node.sample().await?;
    let (wakeups_bg_idle, cpu_bg_idle) = rates(&idle_first, &idle_last);
    let waiting_last = waiting.sample().await?;
    let (wakeups_waiting, _) = rates(&waiting_first, &waiting_last);
    let _ = waiting.child.kill().await;
    let linked_bg_idle = nodes.iter().filter(|n| n.is_connected(&hub_fp)).count();
    let _ = node.child.kill().await;
    for n in &nodes {
        n.stop().await;
    }

    let secs = last.at.duration_since(first.at).as_secs_f64();
    let (wakeups, cpu) = rates(&first, &last);
    let rss_mb = last.rss_kb as f64 / 1024.0;
    let per_conn = if linked == 0 {
        0.0
    } else {
        last.rss_kb.saturating_sub(alone.rss_kb) as f64 / linked as f64
    };
    if json_out {
        println!(
            "{}",
            json!({
                "contacts": contacts, "linked": linked, "still_linked": still,
                "stadium": true, "groups": 1,
                "group_members": GROUP_MEMBERS.min(contacts) + 1, "seconds": secs,
                "wakeups_per_s": wakeups, "cpu_pct": cpu, "rss_mb": rss_mb,
                "rss_alone_mb": alone.rss_kb as f64 / 1024.0, "rss_per_conn_kb": per_conn,
                "wakeups_alone_per_s": wakeups_alone,
                "wakeups_offline_per_s": wakeups_offline,
                "wakeups_background_per_s": wakeups_bg, "cpu_background_pct": cpu_bg,
                "wakeups_background_idle_per_s": wakeups_bg_idle,
                "cpu_background_idle_pct": cpu_bg_idle,
                "linked_background_idle": linked_bg_idle,
                "rss_background_idle_mb": idle_last.rss_kb as f64 / 1024.0,
                "background_link_idle_s": link_idle.as_secs_f64(),
                "wakeups_waiting_per_s": wakeups_waiting,
            })
        );
    } else {
        println!(
            "idle node: {linked} of {contacts} contacts linked ({still} at the end), stadium mode, {secs:.0} s"
        );
        println!("  wake-ups/s   {wakeups:.1} ({wakeups_alone:.1} before the contacts linked)");
        println!("  offline      {wakeups_offline:.1} wake-ups/s (no signaling server answers)");
        println!(
            "  waiting      {wakeups_waiting:.1} wake-ups/s (a message for a contact who stays away)"
        );
        println!(
            "  background   {wakeups_bg:.1} wake-ups/s, CPU {cpu_bg:.2} % (every app in the background)"
        );
        println!(
            "  idle links closed {wakeups_bg_idle:.1} wake-ups/s, CPU {cpu_bg_idle:.2} % ({linked_bg_idle} links left: the group's)"
        );
        println!("  CPU          {cpu:.2} %");
        println!(
            "  RSS          {rss_mb:.1} MB ({:.1} MB before the contacts linked)",
            alone.rss_kb as f64 / 1024.0
        );
        println!("  RSS per link {per_conn:.0} kB");
    }
    Ok(())
}
