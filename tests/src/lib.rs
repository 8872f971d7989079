//! Test harness for PeerNS native: starts real signaling servers — the official PeerJS server
//! (npm `peer`, pinned in `peerjs/package.json`) and our embedded one (`peerns signal`) — as child
//! processes on free loopback ports, so a test can SIGKILL and restart them like a real outage.

pub mod browser;
pub mod netns;
pub mod turn;

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use peerns_core::signaling::client::{ClaimResult, ServerUrl, SignalingConfig, SignalingEvent};
use peerns_core::signaling::driver::SignalingHandle;
use peerns_core::signaling::limiter::LimiterConfig;
use peerns_core::transport::{DataConnection, Transport, TransportConfig};
use tokio::process::{Child, Command};
use tokio::sync::mpsc::UnboundedReceiver;

/// Which signaling server implementation a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerKind {
    /// The official PeerJS server, `peer` 1.0.2 on Node.
    Peer,
    /// Our embedded server, `peerns signal`.
    Embedded,
}

/// Server timeouts a test may shorten.
#[derive(Debug, Clone, Copy)]
pub struct ServerOpts {
    /// Queued messages expire after this long (EXPIRE to the sender).
    pub expire_timeout: Duration,
    /// Clients silent for this long are evicted.
    pub alive_timeout: Duration,
}

impl Default for ServerOpts {
    fn default() -> Self {
        Self {
            expire_timeout: Duration::from_millis(5000),
            alive_timeout: Duration::from_millis(60_000),
        }
    }
}

/// A signaling server running as a child process.
pub struct TestServer {
    kind: ServerKind,
    opts: ServerOpts,
    port: u16,
    child: Option<Child>,
}

/// The folder holding the pinned npm packages (`tests/peerjs`).
pub fn peerjs_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("peerjs")
}

/// Path of the `peerns` binary: `$PEERNS_BIN`, else next to the test executable's target dir.
pub fn peerns_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("PEERNS_BIN") {
        return p.into();
    }
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test-binary> → target/<profile>/peerns
    exe.parent()
        .and_then(|deps| deps.parent())
        .expect("target dir")
        .join("peerns")
}

/// `peerns --profile PROFILE ARGS…` from [`peerns_bin`], killed when dropped.
pub fn peerns_cmd(profile: &std::path::Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(peerns_bin());
    cmd.arg("--profile").arg(profile).args(args);
    cmd.kill_on_drop(true);
    cmd
}

/// Runs `peerns ARGS --signal URL --loopback` on `profile` to its end and asserts success.
pub async fn peerns_online(profile: &std::path::Path, url: &str, args: &[&str]) {
    let status = peerns_cmd(profile, args)
        .args(["--signal", url, "--loopback"])
        .stdout(Stdio::null())
        .status()
        .await
        .unwrap();
    assert!(status.success(), "peerns {args:?}");
}

/// Waits until `f` holds (checked every 20 ms), for at most `secs`; panics naming `what`.
pub async fn until<F: AsyncFnMut() -> bool>(secs: u64, what: &str, mut f: F) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(secs);
    while !f().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl TestServer {
    /// Starts a server of `kind` on a free port and waits until it accepts connections.
    pub async fn start(kind: ServerKind, opts: ServerOpts) -> Self {
        let mut s = Self {
            kind,
            opts,
            port: free_port(),
            child: None,
        };
        s.spawn().await;
        s
    }

    /// The implementation under test.
    pub fn kind(&self) -> ServerKind {
        self.kind
    }

    /// Base URL, e.g. `ws://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        format!("ws://127.0.0.1:{}/", self.port)
    }

    /// The server's TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    async fn spawn(&mut self) {
        let expire = self.opts.expire_timeout.as_millis().to_string();
        let alive = self.opts.alive_timeout.as_millis().to_string();
        let port = self.port.to_string();
        let mut cmd = match self.kind {
            ServerKind::Peer => {
                let mut c = Command::new("node");
                c.arg(peerjs_dir().join("node_modules/peer/dist/bin/peerjs.js"));
                c.args(["--host", "127.0.0.1", "--port", &port]);
                c.args(["--expire_timeout", &expire, "--alive_timeout", &alive]);
                c
            }
            ServerKind::Embedded => {
                let mut c = Command::new(peerns_bin());
                c.args(["signal", "--host", "127.0.0.1", "--port", &port]);
                c.args(["--expire-timeout-ms", &expire, "--alive-timeout-ms", &alive]);
                // Every test node dials from 127.0.0.1: no per-address cap.
                c.args(["--max-conns-per-ip", "0"]);
                c
            }
        };
        cmd.stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {:?} server: {e}", self.kind));
        self.child = Some(child);
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            assert!(
                Instant::now() < deadline,
                "{:?} server did not start on {addr}",
                self.kind
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGKILLs the server process: every socket drops without a goodbye.
    pub async fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.start_kill().expect("kill server");
            let _ = c.wait().await;
        }
    }

    /// Starts the server again on the same port.
    pub async fn restart(&mut self) {
        self.kill().await;
        self.spawn().await;
    }
}

/// Client settings for tests: no registration spacing, fast retries, fixed jitter seed.
pub fn test_config(url: &str) -> SignalingConfig {
    let mut c = SignalingConfig::new(ServerUrl::parse(url).expect("server url"));
    c.limiter = LimiterConfig::local();
    c.backoff.base = Duration::from_millis(100);
    c.backoff.max = Duration::from_millis(1000);
    c.reattach_grace = Duration::from_millis(500);
    c.seed = 7;
    c
}

/// A signaling client driver for `url` with [`test_config`].
pub fn client(url: &str) -> SignalingHandle {
    SignalingHandle::spawn(test_config(url))
}

/// Waits up to `timeout` for the first event matching `pred`, skipping others.
pub async fn wait_for(
    rx: &mut UnboundedReceiver<SignalingEvent>,
    timeout: Duration,
    mut pred: impl FnMut(&SignalingEvent) -> bool,
) -> Option<SignalingEvent> {
    tokio::time::timeout(timeout, async {
        while let Some(ev) = rx.recv().await {
            if pred(&ev) {
                return Some(ev);
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
}

/// A node for transport tests: a registered PeerJS ID with its signaling and transport.
pub struct TestNode {
    /// The node's PeerJS ID.
    pub id: String,
    /// Its signaling driver.
    pub signaling: SignalingHandle,
    /// Its data-connection layer.
    pub transport: Transport,
    /// Connections other peers opened to it.
    pub incoming: UnboundedReceiver<DataConnection>,
}

/// Registers `id` at `url` and starts a loopback-only transport for it.
pub async fn test_node(url: &str, id: &str) -> TestNode {
    test_node_with(url, id, TransportConfig::loopback()).await
}

/// Like [`test_node`] with a given transport configuration.
pub async fn test_node_with(url: &str, id: &str, config: TransportConfig) -> TestNode {
    let signaling = client(url);
    let (reg, result) = signaling.claim(id, "tok").await.expect("signaling");
    assert_eq!(result, ClaimResult::Claimed, "claim {id}");
    let (transport, incoming) =
        Transport::start(signaling.clone(), reg, id.into(), config).expect("transport");
    TestNode {
        id: id.into(),
        signaling,
        transport,
        incoming,
    }
}

/// Waits for the next incoming connection.
pub async fn accept(node: &mut TestNode) -> DataConnection {
    tokio::time::timeout(Duration::from_secs(15), node.incoming.recv())
        .await
        .expect("incoming connection in time")
        .expect("transport running")
}

/// Declares, for each async `fn name(kind: ServerKind)`, a module `name` with two tests: one
/// against the official PeerJS server and one against ours.
#[macro_export]
macro_rules! against_both_servers {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            use $crate::ServerKind;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn peer_server() {
                super::$name(ServerKind::Peer).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn embedded_server() {
                super::$name(ServerKind::Embedded).await
            }
        }
    )*};
}

/// Starts a node and waits until its persistent ID is registered (nodes start offline; a test
/// usually wants the node reachable before it acts).
pub async fn started_node(
    config: peerns_core::node::NodeConfig,
) -> Result<peerns_core::node::Node, peerns_core::node::NodeError> {
    let node = peerns_core::node::Node::start(config).await?;
    assert!(
        node.wait_connected(Duration::from_secs(30)).await,
        "the node did not register within 30 s"
    );
    Ok(node)
}

/// Reads a `peerns node --json` output: its first line (the `started` event, printed at once)
/// and then on until its ID is registered (`{"event":"signaling","state":"connected"}`).
/// Returns the `started` event; panics if either takes longer than `secs`.
pub async fn node_started<R: tokio::io::AsyncBufRead + Unpin>(
    lines: &mut tokio::io::Lines<R>,
    secs: u64,
) -> serde_json::Value {
    tokio::time::timeout(Duration::from_secs(secs), async {
        let first = lines.next_line().await.expect("reading peerns node");
        let started: serde_json::Value =
            serde_json::from_str(&first.expect("peerns node printed nothing")).unwrap();
        assert_eq!(started["event"], "started", "{started}");
        while let Some(line) = lines.next_line().await.expect("reading peerns node") {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
                && v["event"] == "signaling"
                && v["state"] == "connected"
            {
                return started;
            }
        }
        panic!("peerns node exited before registering");
    })
    .await
    .expect("peerns node did not start and register")
}

/// The streams of a media file as ffprobe counts them: (codec, width, height, frames decoded).
pub fn ffprobe(path: &std::path::Path) -> Vec<(String, u64, u64, u64)> {
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-show_entries"])
        .arg("stream=codec_name,width,height,nb_read_frames")
        .args(["-of", "json"])
        .arg(path)
        .output()
        .expect("ffprobe (apt-get install ffmpeg)");
    assert!(
        out.status.success(),
        "ffprobe: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("ffprobe json");
    v["streams"]
        .as_array()
        .expect("streams")
        .iter()
        .map(|s| {
            let n = |k: &str| s[k].as_u64().unwrap_or(0);
            let frames = s["nb_read_frames"]
                .as_str()
                .and_then(|x| x.parse().ok())
                .unwrap_or(0);
            let codec = s["codec_name"].as_str().unwrap_or("").to_owned();
            (codec, n("width"), n("height"), frames)
        })
        .collect()
}
