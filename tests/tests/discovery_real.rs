//! Discovery with real processes through the real PeerJS server (`peer` 1.0.2): 20 `peerns
//! discover` processes join one custom namespace and all see each other; the router process is
//! killed with SIGKILL and the other 19 re-converge under one new router. Then 20 `peerns
//! nearby` processes a few metres apart join stadium mode and all see each other.

use std::collections::BTreeSet;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use peerns_tests::{ServerKind, ServerOpts, TestServer, peerns_bin};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// What a process printed last.
#[derive(Default)]
struct View {
    fingerprint: Option<String>,
    role: String,
    peers: BTreeSet<String>,
}

struct Proc {
    child: Child,
    view: Arc<Mutex<View>>,
}

fn spawn(args: &[String]) -> Proc {
    let mut child = Command::new(peerns_bin())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start peerns");
    let view = Arc::new(Mutex::new(View::default()));
    let out = child.stdout.take().unwrap();
    let v = view.clone();
    tokio::spawn(async move {
        let mut lines = BufReader::new(out).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let Ok(j) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            let mut v = v.lock().unwrap();
            if let Some(fp) = j["fingerprint"].as_str() {
                v.fingerprint = Some(fp.to_owned());
            }
            if let Some(role) = j["role"].as_str() {
                v.role = role.to_owned();
                v.peers = j["peers"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|p| p["fingerprint"].as_str().map(str::to_owned))
                    .collect();
            }
        }
    });
    Proc { child, view }
}

/// Whether every process sees exactly the others' fingerprints and one of them is the router.
fn converged(procs: &[&Proc]) -> bool {
    let fps: Vec<Option<String>> = procs
        .iter()
        .map(|p| p.view.lock().unwrap().fingerprint.clone())
        .collect();
    if fps.iter().any(Option::is_none) {
        return false;
    }
    let all: BTreeSet<String> = fps.iter().flatten().cloned().collect();
    let mut routers = 0;
    for p in procs {
        let v = p.view.lock().unwrap();
        let mut want = all.clone();
        want.remove(v.fingerprint.as_ref().unwrap());
        if v.peers != want {
            return false;
        }
        if !v.role.starts_with("router") && !v.role.starts_with("member") {
            return false;
        }
        if v.role.starts_with("router") {
            routers += 1;
        }
    }
    routers == 1
}

/// Stadium mode: every phone sees all the others, each under one pseudonym (strangers never
/// see each other's identity fingerprints; decision 0010).
fn all_nearby(procs: &[Proc]) -> bool {
    let views: Vec<(Option<String>, BTreeSet<String>)> = procs
        .iter()
        .map(|p| {
            let v = p.view.lock().unwrap();
            (v.fingerprint.clone(), v.peers.clone())
        })
        .collect();
    let identities: BTreeSet<String> = views.iter().filter_map(|(f, _)| f.clone()).collect();
    let seen: BTreeSet<&String> = views.iter().flat_map(|(_, peers)| peers).collect();
    identities.len() == procs.len()
        && views
            .iter()
            .all(|(_, peers)| peers.len() == procs.len() - 1)
        && seen.len() == procs.len()
        && seen.iter().all(|fp| !identities.contains(*fp))
}

async fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> Option<Duration> {
    let t0 = Instant::now();
    while t0.elapsed() < limit {
        if done() {
            return Some(t0.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

/// SIGKILLs the process that is router (no goodbye, no LEAVE) and returns how long the rest
/// took to see each other under one router again.
async fn kill_router_and_reconverge(procs: &mut Vec<Proc>, limit: Duration) -> Duration {
    let router = procs
        .iter()
        .position(|p| p.view.lock().unwrap().role.starts_with("router"))
        .unwrap();
    let mut dead = procs.remove(router);
    dead.child.start_kill().unwrap();
    let _ = dead.child.wait().await;
    wait_until(limit, || converged(&procs.iter().collect::<Vec<_>>()))
        .await
        .unwrap_or_else(|| {
            panic!(
                "the {} survivors never re-converged under one router",
                procs.len()
            )
        })
}

fn common(url: &str, name: String) -> Vec<String> {
    ["--signal", url, "--name", &name, "--loopback", "--json"]
        .map(str::to_owned)
        .into()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_processes_discover_fail_over_and_find_each_other_nearby() {
    let server = TestServer::start(ServerKind::Peer, ServerOpts::default()).await;
    let url = server.url();

    // One custom namespace.
    let mut procs: Vec<Proc> = (0..20)
        .map(|i| {
            let mut args = vec!["discover".to_owned(), "--ns".into(), "real twenty".into()];
            args.extend(common(&url, format!("node{i}")));
            spawn(&args)
        })
        .collect();
    let took = wait_until(Duration::from_secs(60), || {
        converged(&procs.iter().collect::<Vec<_>>())
    })
    .await
    .expect("20 processes never all saw each other under one router");
    eprintln!("20 processes: full visibility after {took:?}");

    let took = kill_router_and_reconverge(&mut procs, Duration::from_secs(60)).await;
    eprintln!("router SIGKILLed: re-converged after {took:?}");
    drop(procs);

    // One stadium cell (or two, on a border): 20 phones within ~15 m of each other.
    let procs: Vec<Proc> = (0..20)
        .map(|i| {
            let lat = format!("{:.6}", 52.520_00 + (i % 5) as f64 * 0.000_02);
            let lon = format!("{:.6}", 13.405_00 + (i / 5) as f64 * 0.000_03);
            let mut args = vec![
                "nearby".to_owned(),
                "--lat".into(),
                lat,
                "--lon".into(),
                lon,
            ];
            args.extend(common(&url, format!("phone{i}")));
            spawn(&args)
        })
        .collect();
    let took = wait_until(Duration::from_secs(60), || all_nearby(&procs))
        .await
        .expect("20 phones in stadium mode never all saw each other");
    eprintln!("20 phones nearby: full visibility after {took:?}");
}

/// Review item 3: a member re-joins with a record it signs then, so a router that dies more
/// than a minute after everyone joined (when their first records are too old for a check-in)
/// is replaced as fast as one that dies at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn router_killed_a_minute_after_joining_is_replaced_within_seconds() {
    let server = TestServer::start(ServerKind::Peer, ServerOpts::default()).await;
    let url = server.url();
    let mut procs: Vec<Proc> = (0..4)
        .map(|i| {
            let mut args = vec!["discover".to_owned(), "--ns".into(), "late failover".into()];
            args.extend(common(&url, format!("node{i}")));
            spawn(&args)
        })
        .collect();
    wait_until(Duration::from_secs(30), || {
        converged(&procs.iter().collect::<Vec<_>>())
    })
    .await
    .expect("4 processes never all saw each other under one router");
    tokio::time::sleep(Duration::from_secs(65)).await;
    assert!(converged(&procs.iter().collect::<Vec<_>>()));
    let took = kill_router_and_reconverge(&mut procs, Duration::from_secs(30)).await;
    eprintln!("router SIGKILLed 65 s after joining: the rest re-converged after {took:?}");
    assert!(took <= Duration::from_secs(3), "{took:?}");
}

/// The same-network namespace: two nodes learn their public address from a STUN server
/// (coturn on loopback, so the address is 127.0.0.1, accepted in loopback mode) and meet in
/// `peerns2-127-0-0-1` through the real `peer` server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_network_namespace_via_stun() {
    use peerns_core::node::NodeConfig;
    use peerns_core::transport::{IceServer, TransportConfig};

    let server = TestServer::start(ServerKind::Peer, ServerOpts::default()).await;
    let stun = peerns_tests::turn::TurnServer::start().await;
    let transport = TransportConfig {
        ice_servers: vec![IceServer::stun(&format!("stun:127.0.0.1:{}", stun.port()))],
        ..TransportConfig::loopback()
    };
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let config = |dir: &std::path::Path, name: &str| NodeConfig {
        profile_dir: dir.to_owned(),
        signaling_url: server.url(),
        transport: transport.clone(),
        display_name: Some(name.into()),
        platform: Default::default(),
        discovery: Default::default(),
    };
    let a = peerns_tests::started_node(config(da.path(), "ada"))
        .await
        .unwrap();
    let b = peerns_tests::started_node(config(db.path(), "bob"))
        .await
        .unwrap();
    assert_eq!(
        a.join_local_network().await.unwrap(),
        std::net::Ipv4Addr::LOCALHOST
    );
    b.join_local_network().await.unwrap();
    let fb = b.identity().fingerprint;
    let t0 = Instant::now();
    loop {
        let (_, peers) = a.local_network_peers().await.unwrap();
        if peers.iter().any(|p| p.fingerprint == fb && p.name == "bob") {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(20), "ada never saw bob");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Kept across restarts.
    a.stop().await;
    let a = peerns_tests::started_node(config(da.path(), "ada"))
        .await
        .unwrap();
    assert_eq!(a.local_network(), Some(std::net::Ipv4Addr::LOCALHOST));
    a.stop().await;
    b.stop().await;
}
