//! Resource leaks over many data connections: 200 connect / exchange / close cycles between two
//! native nodes (loopback, embedded signaling server). After a warm-up the process's open file
//! descriptors, threads, resident memory and live tokio tasks are recorded; after the cycles (and
//! a settling period) they must be back where they were.
//!
//! Every cycle ends a different way, so each teardown path is covered: the offerer or the
//! answerer calls `close()`, or drops its `DataConnection` without `close()` (the handle's drop
//! closes the peer connection). The direction alternates too, so both nodes are offerer and
//! answerer. The other side must see the end (`recv()` → `None`) before the cycle counts.
//!
//! The cycles are paced to the embedded server's per-socket rate limit (100 frames/s, bursts of
//! 200; frames over it are dropped, so an OFFER or ANSWER would be lost and `connect()` time
//! out): unpaced, a debug build does a cycle in ~9 ms, ~2.5 frames per node, and hits the limit
//! after ~130 cycles.
//!
//! This file holds a single test on purpose: the figures are the whole process's, so no other
//! test may run in it at the same time.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use peerns_core::transport::{ConnectOptions, DataConnection, Payload};
use peerns_tests::{ServerKind, ServerOpts, TestNode, TestServer, accept, test_node};

const WARMUP: usize = 10;
/// Cycles measured; `PEERNS_LEAK_CYCLES` overrides it (e.g. 1000 to see a slow trend).
const CYCLES: usize = 200;
/// How long the peer may take to notice that a connection ended.
const CLOSE_SEEN: Duration = Duration::from_secs(10);
/// How long resources may take to come back down after the last cycle. Each `connect()` keeps a
/// timer task for `connect_timeout` (10 s by default), so the task count needs that long.
const SETTLE: Duration = Duration::from_secs(15);
/// RSS may grow by this much: the allocator keeps freed memory (glibc arenas per thread, pooled
/// buffers of tokio and webrtc-rs) and code pages of rarely used paths get touched for the first
/// time. A real leak of a peer connection (several hundred KiB of buffers, sockets, a driver task)
/// per cycle would exceed it many times over in 200 cycles.
const RSS_SLACK_KIB: i64 = 30 * 1024;

/// A snapshot of this process's resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Resources {
    fds: i64,
    sockets: i64,
    threads: i64,
    rss_kib: i64,
    tasks: i64,
}

fn status_field(status: &str, key: &str) -> i64 {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{key} in /proc/self/status"))
}

/// Open file descriptors by kind (`socket`, `anon_inode:[eventfd]`, `pipe`, a path, ...).
fn fd_kinds() -> BTreeMap<String, i64> {
    let mut kinds = BTreeMap::new();
    for entry in std::fs::read_dir("/proc/self/fd").expect("/proc/self/fd") {
        let Ok(entry) = entry else { continue };
        let Ok(target) = std::fs::read_link(entry.path()) else {
            continue; // the fd of read_dir itself, closed meanwhile
        };
        let t = target.to_string_lossy();
        let kind = match t.split_once(":[") {
            Some((k, _)) if k != "anon_inode" => k.to_owned(),
            _ => t.into_owned(),
        };
        *kinds.entry(kind).or_default() += 1;
    }
    kinds
}

fn resources() -> Resources {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kinds = fd_kinds();
    Resources {
        fds: kinds.values().sum(),
        sockets: kinds.get("socket").copied().unwrap_or(0),
        threads: status_field(&status, "Threads:"),
        rss_kib: status_field(&status, "VmRSS:"),
        tasks: tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks() as i64,
    }
}

/// What is wrong with `now` compared with `base` (empty: flat).
fn growth(base: &Resources, now: &Resources) -> Vec<String> {
    let mut bad = Vec::new();
    let mut check = |what: &str, before: i64, after: i64, slack: i64| {
        if after > before + slack {
            bad.push(format!("{what}: {before} -> {after} (allowed +{slack})"));
        }
    };
    check("open fds", base.fds, now.fds, 0);
    check("sockets", base.sockets, now.sockets, 0);
    check("threads", base.threads, now.threads, 0);
    check("RSS KiB", base.rss_kib, now.rss_kib, RSS_SLACK_KIB);
    check("tokio tasks", base.tasks, now.tasks, 0);
    bad
}

/// Frames per second per node the cycles may cause, under the server's 100/s.
const FRAMES_PER_SEC: f64 = 70.0;
/// Frames the pacing lets a node send at once, under the server's burst of 200.
const FRAMES_BURST: f64 = 50.0;

/// Frames `node` sent to the signaling server so far.
async fn frames_out(node: &TestNode) -> u64 {
    node.signaling
        .stats()
        .await
        .expect("signaling stats")
        .frames_out
}

/// Waits until neither node has sent more frames since `start` than the pacing allows.
async fn pace(a: &TestNode, b: &TestNode, start: Instant) {
    loop {
        let sent = frames_out(a).await.max(frames_out(b).await) as f64;
        if sent <= FRAMES_BURST + start.elapsed().as_secs_f64() * FRAMES_PER_SEC {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// How a cycle's connection ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Ending {
    OffererCloses,
    AnswererCloses,
    OffererDrops,
    AnswererDrops,
}

fn ending(cycle: usize) -> Ending {
    match cycle % 10 {
        0 | 2 | 4 | 6 => Ending::OffererCloses,
        1 | 3 | 5 | 7 => Ending::AnswererCloses,
        8 => Ending::OffererDrops,
        _ => Ending::AnswererDrops,
    }
}

async fn recv_in(conn: &mut DataConnection, t: Duration) -> Option<Payload> {
    tokio::time::timeout(t, conn.recv())
        .await
        .expect("recv in time")
        .map(|m| m.expect("valid frame"))
}

/// Waits until `conn` reports its end; false if it does not within [`CLOSE_SEEN`].
async fn sees_end(conn: &mut DataConnection) -> bool {
    let deadline = tokio::time::Instant::now() + CLOSE_SEEN;
    loop {
        match tokio::time::timeout_at(deadline, conn.recv()).await {
            Ok(None) => return true,
            Ok(Some(_)) => continue,
            Err(_) => return false,
        }
    }
}

/// One connect / exchange / end cycle; returns whether the peer saw the end.
async fn cycle(i: usize, a: &mut TestNode, b: &mut TestNode) -> bool {
    let (off, ans) = if i.is_multiple_of(2) { (a, b) } else { (b, a) };
    let mut c_off = off
        .transport
        .connect(&ans.id, ConnectOptions::native())
        .await
        .unwrap_or_else(|e| panic!("cycle {i}: connect: {e}"));
    let mut c_ans = accept(ans).await;
    assert_eq!(c_ans.info().connection_id, c_off.info().connection_id);
    let ping = Payload::Bytes(i.to_be_bytes().to_vec());
    c_off.send(&ping).await.expect("ping");
    assert_eq!(recv_in(&mut c_ans, CLOSE_SEEN).await, Some(ping.clone()));
    c_ans.send(&ping).await.expect("pong");
    assert_eq!(recv_in(&mut c_off, CLOSE_SEEN).await, Some(ping));
    match ending(i) {
        Ending::OffererCloses => {
            c_off.close().await;
            sees_end(&mut c_ans).await
        }
        Ending::AnswererCloses => {
            c_ans.close().await;
            sees_end(&mut c_off).await
        }
        Ending::OffererDrops => {
            drop(c_off);
            sees_end(&mut c_ans).await
        }
        Ending::AnswererDrops => {
            drop(c_ans);
            sees_end(&mut c_off).await
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_close_cycles_leave_resources_flat() {
    let server = TestServer::start(ServerKind::Embedded, ServerOpts::default()).await;
    let started = Instant::now();
    let mut a = test_node(&server.url(), "peerns-leak-a").await;
    let mut b = test_node(&server.url(), "peerns-leak-b").await;
    let mut unseen: BTreeMap<Ending, Vec<usize>> = BTreeMap::new();

    for i in 0..WARMUP {
        pace(&a, &b, started).await;
        if !cycle(i, &mut a, &mut b).await {
            unseen.entry(ending(i)).or_default().push(i);
        }
    }
    // Let the warm-up's teardown finish before the baseline.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let base = resources();
    let base_kinds = fd_kinds();
    let cycles = std::env::var("PEERNS_LEAK_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(CYCLES);
    let t0 = Instant::now();
    let frames0 = frames_out(&a).await + frames_out(&b).await;
    for i in WARMUP..WARMUP + cycles {
        pace(&a, &b, started).await;
        if !cycle(i, &mut a, &mut b).await {
            unseen.entry(ending(i)).or_default().push(i);
        }
    }
    let cycles_took = t0.elapsed();
    let frames = frames_out(&a).await + frames_out(&b).await - frames0;
    let right_after = resources();

    let settle_start = Instant::now();
    let mut now = resources();
    while !growth(&base, &now).is_empty() && settle_start.elapsed() < SETTLE {
        tokio::time::sleep(Duration::from_millis(250)).await;
        now = resources();
    }
    let settled_after = settle_start.elapsed();
    let now_kinds = fd_kinds();
    println!(
        "{cycles} cycles in {cycles_took:.2?} ({:.1} ms each, paced; {:.1} signaling frames \
         per node per cycle), total {:.1?}\n\
         baseline after {WARMUP} warm-up cycles: {base:?}\n\
         right after the cycles:                 {right_after:?}\n\
         after settling {settled_after:.1?}:     {now:?}\n\
         RSS growth {} KiB ({:.1} KiB per cycle)\n\
         fds by kind before {base_kinds:?}\n\
         fds by kind after  {now_kinds:?}\n\
         peer did not see the end: {unseen:?}",
        cycles_took.as_secs_f64() * 1000.0 / cycles as f64,
        frames as f64 / 2.0 / cycles as f64,
        started.elapsed(),
        now.rss_kib - base.rss_kib,
        (now.rss_kib - base.rss_kib) as f64 / cycles as f64,
    );
    assert!(
        unseen.is_empty(),
        "the peer never saw the end of these connections: {unseen:?}"
    );
    let bad = growth(&base, &now);
    assert!(
        bad.is_empty(),
        "resources grew over {cycles} connect/close cycles: {bad:?}\nbefore {base_kinds:?}\n\
         after {now_kinds:?}"
    );
}
