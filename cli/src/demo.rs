//! `peerns demo`: an embedded signaling server and four nodes with fresh profiles in one
//! process. They register their persistent IDs, open WebRTC data connections to each other
//! through the server and exchange messages; a timeline with timings is printed. Then six
//! phones scattered within ~60 m of a point turn on stadium mode and each prints who is near.

use std::time::{Duration, Instant};

use peerns_core::node::platform::LocationFix;
use peerns_core::node::{Node, NodeConfig};
use peerns_core::signaling::client::ServerUrl;
use peerns_core::signaling::server::{EmbeddedServer, ServerConfig};
use peerns_core::store::Profile;
use peerns_core::transport::{ConnectOptions, DataConnection, Payload, TransportConfig};
use serde_json::json;

use crate::Result;
use crate::local_node::LocalNode;

const NAMES: [&str; 4] = ["alice", "bob", "carol", "dave"];

struct Timeline(Instant);

impl Timeline {
    fn say(&self, line: impl AsRef<str>) {
        println!(
            "[{:>8.2} ms] {}",
            self.0.elapsed().as_secs_f64() * 1000.0,
            line.as_ref()
        );
    }
}

struct DemoNode {
    name: &'static str,
    short_fp: String,
    node: LocalNode,
    _dir: tempfile::TempDir,
}

async fn start_node(name: &'static str, url: &str) -> Result<DemoNode> {
    let dir = tempfile::tempdir()?;
    let profile = Profile::open_desktop(dir.path())?;
    let id = profile.identity().peer_id().to_owned();
    let server = ServerUrl::parse(url)?.label();
    let token = profile.store().peerjs_token_or_create(&server, &id)?;
    let node = LocalNode::start(url, &id, &token, TransportConfig::loopback()).await?;
    let short_fp = profile.identity().fingerprint().short();
    Ok(DemoNode {
        name,
        short_fp,
        node,
        _dir: dir,
    })
}

async fn recv(conn: &mut DataConnection) -> Result<Payload> {
    match tokio::time::timeout(Duration::from_secs(10), conn.recv()).await {
        Ok(Some(Ok(p))) => Ok(p),
        other => Err(format!("no message from {}: {other:?}", conn.peer()).into()),
    }
}

/// Answers every greeting on every incoming connection with the node's name and fingerprint.
fn answer_greetings(mut n: DemoNode) {
    tokio::spawn(async move {
        while let Some(mut conn) = n.node.incoming.recv().await {
            let (name, fp) = (n.name, n.short_fp.clone());
            tokio::spawn(async move {
                while let Some(Ok(Payload::Json(msg))) = conn.recv().await {
                    let reply = json!({"from": name, "fingerprint": fp, "re": msg["text"]});
                    if conn.send(&Payload::Json(reply)).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
}

pub async fn run() -> Result<()> {
    let t = Timeline(Instant::now());
    let server = EmbeddedServer::start(ServerConfig {
        port: 0,
        ..ServerConfig::default()
    })
    .await?;
    let url = server.url();
    t.say(format!("embedded signaling server listening on {url}"));

    let mut nodes = Vec::new();
    for name in NAMES {
        let n = start_node(name, &url).await?;
        t.say(format!(
            "{name:<5} registered {} (fingerprint {})",
            n.node.id, n.short_fp
        ));
        nodes.push(n);
    }
    let alice = nodes.remove(0);
    let others: Vec<(&'static str, String)> =
        nodes.iter().map(|n| (n.name, n.node.id.clone())).collect();
    let mut handles = Vec::new();
    for n in nodes {
        handles.push(n.node.transport.clone());
        answer_greetings(n);
    }

    // Alice opens data connections to everyone at once.
    let (t, alice_ref) = (&t, &alice);
    let connects = others.iter().map(|(name, id)| async move {
        let started = Instant::now();
        let conn = alice_ref
            .node
            .transport
            .connect(id, ConnectOptions::native())
            .await;
        t.say(format!(
            "alice ⇄ {name:<5} data channel open ({:.1} ms after connect())",
            started.elapsed().as_secs_f64() * 1000.0
        ));
        conn.map(|c| (*name, c))
    });
    let mut conns = Vec::new();
    for conn in futures_util::future::join_all(connects).await {
        conns.push(conn?);
    }
    for (name, conn) in &mut conns {
        let sent = Instant::now();
        conn.send(&Payload::Json(
            json!({"text": format!("hello {name}, this is alice")}),
        ))
        .await?;
        let reply = recv(conn).await?;
        let Payload::Json(r) = reply else {
            return Err("unexpected bytes".into());
        };
        t.say(format!(
            "alice ← {:<5} {:?} from {} (round trip {:.2} ms)",
            r["from"].as_str().unwrap_or("?"),
            r["re"].as_str().unwrap_or(""),
            r["fingerprint"].as_str().unwrap_or("?"),
            sent.elapsed().as_secs_f64() * 1000.0
        ));
    }
    for (_, conn) in &conns {
        conn.close().await;
    }
    alice.node.stop().await;
    for transport in handles {
        transport.shutdown().await;
    }
    t.say("4 nodes, 3 WebRTC data connections, every greeting answered");
    stadium(t, &url).await?;
    server.shutdown().await;
    t.say("demo finished");
    Ok(())
}

/// Six phones around the Brandenburg Gate, up to ~60 m apart, in stadium mode.
async fn stadium(t: &Timeline, url: &str) -> Result<()> {
    const PHONES: [(&str, f64, f64); 6] = [
        ("erin", 52.516_27, 13.377_70),
        ("frank", 52.516_35, 13.377_85),
        ("grace", 52.516_10, 13.377_55),
        ("heidi", 52.516_45, 13.378_10),
        ("ivan", 52.516_20, 13.378_30),
        ("judy", 52.516_05, 13.377_95),
    ];
    let mut phones = vec![];
    for (name, lat, lon) in PHONES {
        let dir = tempfile::tempdir()?;
        let node = Node::start(NodeConfig {
            profile_dir: dir.path().to_owned(),
            signaling_url: url.to_owned(),
            transport: TransportConfig::loopback(),
            display_name: Some(name.into()),
            platform: Default::default(),
            discovery: Default::default(),
        })
        .await?;
        node.start_stadium(Default::default())?;
        node.set_location(LocationFix {
            latitude: lat,
            longitude: lon,
            accuracy_m: 5.0,
        })?;
        phones.push((name, node, dir));
    }
    t.say("6 phones in stadium mode (precision-7 geohash cells, 30 m border radius)");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let mut all = true;
        for (_, node, _) in &phones {
            all &= node.nearby().await.len() == phones.len() - 1;
        }
        if all || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for (name, node, _) in &phones {
        let near = node.nearby().await;
        let list: Vec<String> = near
            .iter()
            .map(|p| format!("{} {:.0} m", p.name, p.distance_m.unwrap_or(f64::NAN)))
            .collect();
        t.say(format!(
            "{name:<5} in {} sees {}: {}",
            node.stadium_cells().join("+"),
            near.len(),
            list.join(", ")
        ));
    }
    let complete = {
        let mut ok = true;
        for (_, node, _) in &phones {
            ok &= node.nearby().await.len() == phones.len() - 1;
        }
        ok
    };
    futures_util::future::join_all(phones.iter().map(|(_, node, _)| node.stop())).await;
    if !complete {
        return Err("stadium mode: not every phone saw every other within 15 s".into());
    }
    Ok(())
}
