//! `peerns bench discovery`: time until every node sees every other, failover times after a
//! graceful exit and a silent death of the router, traffic per node and router CPU time —
//! in the deterministic simulator (`--sim N`) or with real `peerns discover` processes through
//! a local signaling server (`--real N`).

use std::collections::BTreeSet;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use peerns_core::discovery::sim::{Sim, SimConfig, failover_time};
use peerns_core::signaling::server::{EmbeddedServer, ServerConfig};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::percentile;
use crate::Result;

/// What one run measured.
struct Report {
    mode: &'static str,
    nodes: usize,
    full_visibility_s: f64,
    graceful: Vec<f64>,
    silent: Vec<f64>,
    router_bytes_per_node: Option<f64>,
    member_bytes_in: Option<f64>,
    msgs_per_node: Option<f64>,
    router_cpu_ms: Option<f64>,
}

/// Runs the benchmark.
pub async fn run(json: bool, sim: Option<usize>, real: Option<usize>, trials: usize) -> Result<()> {
    let report = match (sim, real) {
        (_, Some(n)) => real_run(n, trials).await?,
        (n, None) => sim_run(n.unwrap_or(1000), trials),
    };
    print(&report, json);
    Ok(())
}

/// The simulated network: 15–25 ms links, 20 ms to the signaling server, and a phone's
/// processing time: about 40 µs per input, 150 µs per KiB received (mostly signature checks
/// on a mid-range phone) and 10 µs per KiB sent (about 100 MB/s through DTLS and SCTP).
fn phone_network(seed: u64) -> SimConfig {
    SimConfig {
        cpu_per_input: Duration::from_micros(40),
        cpu_per_kib: Duration::from_micros(150),
        cpu_per_kib_out: Duration::from_micros(10),
        seed,
        ..SimConfig::default()
    }
}

fn sim_run(n: usize, trials: usize) -> Report {
    let mut sim = Sim::new(phone_network(1));
    let engines = sim.crowd("peerns2-ns-bench", n, Duration::ZERO);
    let took = sim
        .run_until_true(Duration::from_secs(120), Duration::from_millis(50), |s| {
            s.converged(&engines)
        })
        .map_or(f64::NAN, |d| d.as_secs_f64());
    let router = sim.routers(&engines).first().copied();
    let stats: Vec<_> = engines.iter().map(|&e| sim.engine(e).stats()).collect();
    let members: Vec<_> = engines
        .iter()
        .filter(|&&e| Some(e) != router)
        .map(|&e| sim.engine(e).stats())
        .collect();
    let per = |x: u64| x as f64 / n as f64;
    let msgs: u64 = stats.iter().map(|s| s.msgs_out).sum();
    let (graceful, silent) = (0..trials as u64)
        .map(|seed| {
            let cfg = phone_network(seed);
            let g = failover_time(cfg.clone(), 8, false).map_or(f64::NAN, |d| d.as_secs_f64());
            let s = failover_time(cfg, 8, true).map_or(f64::NAN, |d| d.as_secs_f64());
            (g, s)
        })
        .unzip();
    Report {
        mode: "sim",
        nodes: n,
        full_visibility_s: took,
        graceful,
        silent,
        router_bytes_per_node: router.map(|r| per(sim.engine(r).stats().bytes_out)),
        member_bytes_in: Some(
            members.iter().map(|s| s.bytes_in).sum::<u64>() as f64 / members.len().max(1) as f64,
        ),
        msgs_per_node: Some(per(msgs)),
        router_cpu_ms: router.map(|r| sim.busy(r).as_secs_f64() * 1000.0),
    }
}

/// A `peerns discover` child process and what it printed last.
struct Proc {
    child: Child,
    fingerprint: Arc<Mutex<Option<String>>>,
    view: Arc<Mutex<(String, BTreeSet<String>)>>,
}

fn spawn(url: &str, ns: &str, name: &str) -> Result<Proc> {
    let mut child = Command::new(std::env::current_exe()?)
        .args(["discover", "--signal", url, "--ns", ns, "--name", name])
        .args(["--loopback", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let out = child.stdout.take().ok_or("no stdout")?;
    let fingerprint = Arc::new(Mutex::new(None));
    let view = Arc::new(Mutex::new((String::new(), BTreeSet::new())));
    let (f, v) = (fingerprint.clone(), view.clone());
    tokio::spawn(async move {
        let mut lines = BufReader::new(out).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let Ok(j) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            if let Some(fp) = j["fingerprint"].as_str() {
                *f.lock().unwrap_or_else(|e| e.into_inner()) = Some(fp.to_owned());
            }
            if let Some(role) = j["role"].as_str() {
                let peers = j["peers"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|p| p["fingerprint"].as_str().map(str::to_owned))
                    .collect();
                *v.lock().unwrap_or_else(|e| e.into_inner()) = (role.to_owned(), peers);
            }
        }
    });
    Ok(Proc {
        child,
        fingerprint,
        view,
    })
}

fn converged(procs: &[Proc]) -> bool {
    let fps: Option<BTreeSet<String>> = procs
        .iter()
        .map(|p| {
            p.fingerprint
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone()
        })
        .collect();
    let Some(all) = fps else { return false };
    let mut routers = 0;
    for p in procs {
        let me = p
            .fingerprint
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let (role, peers) = p.view.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let mut want = all.clone();
        if let Some(me) = me {
            want.remove(&me);
        }
        if peers != want {
            return false;
        }
        if !role.starts_with("router") && !role.starts_with("member") {
            return false;
        }
        routers += usize::from(role.starts_with("router"));
    }
    routers == 1
}

async fn until_converged(procs: &[Proc], limit: Duration) -> Option<f64> {
    let t0 = Instant::now();
    while t0.elapsed() < limit {
        if converged(procs) {
            return Some(t0.elapsed().as_secs_f64());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    None
}

/// Spawns `n` nodes in a fresh namespace; returns them and the time to full visibility.
async fn crowd(url: &str, n: usize, round: usize) -> Result<(Vec<Proc>, f64)> {
    let ns = format!("bench-{round}-{}", std::process::id());
    let procs = (0..n)
        .map(|i| spawn(url, &ns, &format!("node{i}")))
        .collect::<Result<Vec<_>>>()?;
    let took = until_converged(&procs, Duration::from_secs(30))
        .await
        .ok_or("nodes never saw each other")?;
    Ok((procs, took))
}

async fn real_run(n: usize, trials: usize) -> Result<Report> {
    // Every node of the crowd dials from 127.0.0.1.
    let server = EmbeddedServer::start(ServerConfig {
        port: 0,
        max_conns_per_ip: 0,
        ..ServerConfig::default()
    })
    .await?;
    let url = server.url();
    let mut visibility = vec![];
    let (mut graceful, mut silent) = (vec![], vec![]);
    for round in 0..trials * 2 {
        let (mut procs, took) = crowd(&url, n, round).await?;
        visibility.push(took);
        tokio::time::sleep(Duration::from_millis(1500 + (round as u64 % 5) * 193)).await;
        let router = procs
            .iter()
            .position(|p| {
                p.view
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .0
                    .starts_with("router")
            })
            .ok_or("no router")?;
        let mut dead = procs.remove(router);
        let is_silent = round % 2 == 1;
        if is_silent {
            dead.child.start_kill()?;
        } else if let Some(pid) = dead.child.id() {
            // SIGTERM: the node leaves gracefully.
            std::process::Command::new("kill")
                .arg(pid.to_string())
                .status()?;
        }
        let took = until_converged(&procs, Duration::from_secs(30))
            .await
            .unwrap_or(f64::NAN);
        if is_silent {
            &mut silent
        } else {
            &mut graceful
        }
        .push(took);
        let _ = dead.child.wait().await;
    }
    server.shutdown().await;
    Ok(Report {
        mode: "real",
        nodes: n,
        full_visibility_s: percentile(&mut visibility, 50.0),
        graceful,
        silent,
        router_bytes_per_node: None,
        member_bytes_in: None,
        msgs_per_node: None,
        router_cpu_ms: None,
    })
}

fn print(r: &Report, json: bool) {
    let (mut g, mut s) = (r.graceful.clone(), r.silent.clone());
    let (g50, g95) = (percentile(&mut g, 50.0), percentile(&mut g, 95.0));
    let (s50, s95) = (percentile(&mut s, 50.0), percentile(&mut s, 95.0));
    if json {
        let v = serde_json::json!({
            "mode": r.mode,
            "nodes": r.nodes,
            "full_visibility_s": r.full_visibility_s,
            "failover_graceful_p50_s": g50,
            "failover_graceful_p95_s": g95,
            "failover_silent_p50_s": s50,
            "failover_silent_p95_s": s95,
            "failover_trials": r.graceful.len(),
            "router_bytes_per_node": r.router_bytes_per_node,
            "member_bytes_in": r.member_bytes_in,
            "msgs_per_node": r.msgs_per_node,
            "router_cpu_ms": r.router_cpu_ms,
        });
        println!("{v}");
        return;
    }
    let opt = |v: Option<f64>| v.map_or("n/a".to_owned(), |x| format!("{x:.0}"));
    println!("discovery bench ({}, {} nodes)", r.mode, r.nodes);
    println!("  full visibility          {:>8.3} s", r.full_visibility_s);
    println!(
        "  failover graceful p50/p95 {g50:.3} / {g95:.3} s  ({} trials)",
        r.graceful.len()
    );
    println!(
        "  failover silent   p50/p95 {s50:.3} / {s95:.3} s  ({} trials)",
        r.silent.len()
    );
    println!(
        "  router bytes sent / node {:>8}",
        opt(r.router_bytes_per_node)
    );
    println!("  member bytes received    {:>8}", opt(r.member_bytes_in));
    println!("  messages sent / node     {:>8}", opt(r.msgs_per_node));
    println!("  router CPU (engine)      {:>8} ms", opt(r.router_cpu_ms));
}
