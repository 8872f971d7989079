//! `peerns discover` and `peerns nearby`: run a node in one namespace (or stadium mode at a
//! fixed position) and print the live peer list whenever it changes.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use peerns_core::node::platform::LocationFix;
use peerns_core::node::{DiscoveredPeer, NamespaceRole, Node, NodeConfig};
use peerns_core::transport::{IceServer, TransportConfig};

use crate::Result;

/// Options shared by both commands.
#[derive(clap::Args)]
pub struct NodeArgs {
    /// PeerJS signaling server, e.g. ws://127.0.0.1:9000/?key=peerjs
    #[arg(long)]
    signal: String,
    /// Display name.
    #[arg(long)]
    name: String,
    /// Exit (leaving gracefully) after this many seconds; default: run until Ctrl-C.
    #[arg(long)]
    seconds: Option<f64>,
    /// STUN server URL (repeatable). Default: none with --loopback, else Google's.
    #[arg(long)]
    stun: Vec<String>,
    /// Gather ICE candidates on loopback only (local tests and demos).
    #[arg(long)]
    loopback: bool,
    /// Print one JSON object per line instead of a table.
    #[arg(long)]
    json: bool,
}

/// `peerns discover`.
#[derive(clap::Args)]
pub struct DiscoverArgs {
    #[command(flatten)]
    node: NodeArgs,
    /// Namespace name.
    #[arg(long)]
    ns: String,
}

/// A fixed position for stadium mode.
#[derive(clap::Args)]
pub struct PositionArgs {
    /// Latitude, degrees.
    #[arg(long, allow_hyphen_values = true)]
    lat: f64,
    /// Longitude, degrees.
    #[arg(long, allow_hyphen_values = true)]
    lon: f64,
    /// Position accuracy, metres.
    #[arg(long, default_value_t = 10.0)]
    accuracy: f64,
}

impl PositionArgs {
    /// The fix the node is given.
    pub fn fix(&self) -> LocationFix {
        LocationFix {
            latitude: self.lat,
            longitude: self.lon,
            accuracy_m: self.accuracy,
        }
    }
}

/// `peerns nearby`.
#[derive(clap::Args)]
pub struct NearbyArgs {
    #[command(flatten)]
    node: NodeArgs,
    #[command(flatten)]
    at: PositionArgs,
}

async fn start(
    args: &NodeArgs,
    profile: Option<PathBuf>,
) -> Result<(Node, Option<tempfile::TempDir>)> {
    let (dir, temp) = match profile {
        Some(d) => (d, None),
        None => {
            let t = tempfile::tempdir()?;
            (t.path().to_owned(), Some(t))
        }
    };
    let mut transport = if args.loopback {
        TransportConfig::loopback()
    } else {
        TransportConfig::default()
    };
    if !args.stun.is_empty() {
        transport.ice_servers = args.stun.iter().map(|u| IceServer::stun(u)).collect();
    }
    let node = Node::start(NodeConfig {
        profile_dir: dir,
        signaling_url: args.signal.clone(),
        transport,
        display_name: Some(args.name.clone()),
        platform: Default::default(),
        discovery: Default::default(),
    })
    .await?;
    Ok((node, temp))
}

fn role_text(role: NamespaceRole) -> String {
    match role {
        NamespaceRole::Searching => "searching".into(),
        NamespaceRole::Member(l) => format!("member {l}"),
        NamespaceRole::Router(l) => format!("router {l}"),
    }
}

fn print(json: bool, started: Instant, role: &str, peers: &[DiscoveredPeer]) {
    if json {
        let list: Vec<serde_json::Value> = peers
            .iter()
            .map(|p| {
                serde_json::json!({
                    "name": p.name, "short": p.short, "fingerprint": p.fingerprint,
                    "distance_m": p.distance_m,
                })
            })
            .collect();
        let line = serde_json::json!({
            "t_ms": started.elapsed().as_millis() as u64, "role": role, "peers": list,
        });
        println!("{line}");
    } else {
        println!("-- {} peer(s), {role}", peers.len());
        for p in peers {
            match p.distance_m {
                Some(d) => println!("  {:<24} {}  {:>6.0} m", p.name, p.short, d),
                None => println!("  {:<24} {}", p.name, p.short),
            }
        }
    }
}

/// Runs until the deadline or Ctrl-C, printing the list after each change (debounced).
async fn follow<F, Fut>(node: &Node, args: &NodeArgs, query: F) -> Result<()>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<(String, Vec<DiscoveredPeer>)>>,
{
    let started = Instant::now();
    let id = node.identity();
    if args.json {
        println!(
            "{}",
            serde_json::json!({"ready": true, "fingerprint": id.fingerprint, "name": args.name})
        );
    } else {
        println!("{} ({})", args.name, id.short);
    }
    let mut events = node.subscribe();
    let deadline = args
        .seconds
        .map(|s| tokio::time::Instant::now() + Duration::from_secs_f64(s));
    let until = async {
        match deadline {
            Some(d) => tokio::time::sleep_until(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(until);
    let stop = crate::shutdown_signal();
    tokio::pin!(stop);
    let mut last: Option<(String, Vec<String>)> = None;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tokio::select! {
            _ = &mut until => break,
            _ = &mut stop => break,
            ev = events.recv() => if ev.is_none() { break },
            _ = tick.tick() => {
                let (role, peers) = query().await?;
                let key = (role.clone(), peers.iter().map(|p| p.fingerprint.clone()).collect());
                if last.as_ref() != Some(&key) {
                    print(args.json, started, &role, &peers);
                    last = Some(key);
                }
            }
        }
    }
    Ok(())
}

/// `peerns discover`: joins a namespace and prints who is there.
pub async fn discover(args: DiscoverArgs, profile: Option<PathBuf>) -> Result<()> {
    let (node, _temp) = start(&args.node, profile).await?;
    let slug = node.join_namespace(&args.ns).await?;
    let result = follow(&node, &args.node, || {
        let (node, slug) = (&node, slug.clone());
        async move {
            let (role, mut peers) = node.namespace_peers(&slug).await?;
            peers.sort_by(|a, b| a.name.cmp(&b.name));
            Ok((role_text(role), peers))
        }
    })
    .await;
    // A one-off run should not leave the namespace saved in a real profile.
    let _ = node.leave_namespace(&slug).await;
    node.stop().await;
    result
}

/// `peerns nearby`: stadium mode at a fixed position; prints who is near, nearest first.
pub async fn nearby(args: NearbyArgs, profile: Option<PathBuf>) -> Result<()> {
    let (node, _temp) = start(&args.node, profile).await?;
    node.start_stadium(Default::default())?;
    node.set_location(args.at.fix())?;
    let result = follow(&node, &args.node, || async {
        let cells = node.stadium_cells().join(",");
        Ok((format!("cells {cells}"), node.nearby().await))
    })
    .await;
    node.stop().await;
    result
}
