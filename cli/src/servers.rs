//! Signaling servers as child processes, for the benchmarks: the official PeerJS server
//! (`peer`, from `tests/peerjs/node_modules`) and our own (`peerns signal`), started alike.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

use crate::Result;

/// A signaling server child process on a loopback port; killed on drop.
pub struct ServerProcess {
    _child: Child,
    port: u16,
}

impl ServerProcess {
    /// `ws://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        format!("ws://127.0.0.1:{}/", self.port)
    }

    /// Starts `peerns signal` (this executable) on a free port with extra `args`.
    pub async fn embedded(args: &[&str]) -> Result<Self> {
        let port = free_port()?;
        let mut cmd = Command::new(std::env::current_exe()?);
        cmd.args(["signal", "--host", "127.0.0.1", "--port", &port.to_string()]);
        cmd.args(args);
        Self::spawn(cmd, port).await
    }

    /// Starts the official PeerJS server with Node.
    pub async fn peer() -> Result<Self> {
        let port = free_port()?;
        let mut cmd = Command::new("node");
        cmd.arg(peer_server_script()?)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()]);
        Self::spawn(cmd, port).await
    }

    async fn spawn(mut cmd: Command, port: u16) -> Result<Self> {
        cmd.stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        let child = cmd.spawn()?;
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            if Instant::now() > deadline {
                return Err(format!("server did not start on {addr}").into());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(Self {
            _child: child,
            port,
        })
    }
}

pub(crate) fn free_port() -> Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

/// Finds `peer`'s start script: `$PEERNS_PEER_SERVER`, else `tests/peerjs/node_modules/...`
/// under the current directory or the source tree this binary was built from.
fn peer_server_script() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("PEERNS_PEER_SERVER") {
        return Ok(p.into());
    }
    let rel = "tests/peerjs/node_modules/peer/dist/bin/peerjs.js";
    let source_root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    [PathBuf::from("."), source_root]
        .into_iter()
        .map(|root| root.join(rel))
        .find(|p| p.exists())
        .ok_or_else(|| {
            "the PeerJS server is not installed: run `npm ci` in tests/peerjs (tests/run.sh does)"
                .into()
        })
}

/// coturn (`turnserver` from Debian) on a free loopback port, for TURN-relayed measurements.
pub struct TurnProcess {
    _child: Child,
    port: u16,
}

/// TURN user and password the bench's coturn accepts.
pub const TURN_USER: (&str, &str) = ("peerns", "bench-secret");

impl TurnProcess {
    /// Starts coturn, or `Ok(None)` when `turnserver` is not installed.
    pub async fn start() -> Result<Option<Self>> {
        let port = free_port()?;
        let relay_base = 50_000 + (port % 100) * 100;
        let mut cmd = Command::new("turnserver");
        cmd.args([
            "-n",
            "--listening-ip=127.0.0.1",
            "--relay-ip=127.0.0.1",
            "--no-cli",
            "--no-tls",
        ])
        .args([
            "--no-dtls",
            "--allow-loopback-peers",
            "--lt-cred-mech",
            "--realm=peerns.bench",
        ])
        .arg(format!("--listening-port={port}"))
        .arg(format!("--min-port={relay_base}"))
        .arg(format!("--max-port={}", relay_base + 99))
        .arg(format!("--user={}:{}", TURN_USER.0, TURN_USER.1))
        .args(["--log-file=stdout", "--simple-log"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true);
        let child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        // coturn also listens on TCP on the same port: wait for that.
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            if Instant::now() > deadline {
                return Err(format!("turnserver did not start on {addr}").into());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(Some(Self {
            _child: child,
            port,
        }))
    }

    /// `turn:127.0.0.1:PORT?transport=udp`.
    pub fn url(&self) -> String {
        format!("turn:127.0.0.1:{}?transport=udp", self.port)
    }
}
