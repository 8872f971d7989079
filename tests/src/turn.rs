//! coturn on loopback, started by the harness.
//!
//! [`TurnServer::start`] runs Debian's `turnserver` (coturn 4.6) as a child process on 127.0.0.1:
//! a free UDP listening port, a relay port range of [`RELAY_RANGE`] ports that no other
//! `TurnServer` of this process uses (the first range starts at a random port in 49152–65000, so
//! parallel test processes rarely share one; if they do, coturn skips relay ports in use), no TLS,
//! DTLS or TCP, long-term credentials, and verbose logging to stdout, which the harness keeps so a
//! test can prove traffic really went through the relay (`ALLOCATE`, `CHANNEL_BIND` and the
//! `peer usage` lines coturn prints when an allocation ends).
//!
//! `-n` keeps coturn away from `/etc/turnserver.conf` (Debian's sends the log to syslog); the pid
//! file and the user database live in a temporary folder instead of `/var/run` and `/var/lib/turn`,
//! so instances never share them and running as root in a container needs nothing else.
//! Set `PEERNS_TURN_LOG=1` to echo coturn's log to the test output.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::net::{Ipv4Addr, SocketAddr, UdpSocket as StdUdpSocket};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use peerns_core::transport::IceServer;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::net::UdpSocket;
use tokio::process::{Child, Command};

/// How many relay ports each server gets.
pub const RELAY_RANGE: u16 = 200;
const RELAY_LOW: u16 = 49152;
const RELAY_HIGH: u16 = 65000;
const REALM: &str = "peerns.test";
const USERNAME: &str = "peerns";
const CREDENTIAL: &str = "peerns-turn-secret";

/// Traffic coturn reports for ended allocations (`peer usage:` lines): what it relayed between
/// its relay ports and the peers, summed over sessions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PeerUsage {
    /// Allocations that reported.
    pub sessions: usize,
    /// Packets received from peers.
    pub rp: u64,
    /// Bytes received from peers.
    pub rb: u64,
    /// Packets sent to peers.
    pub sp: u64,
    /// Bytes sent to peers.
    pub sb: u64,
}

/// A coturn server running as a child process on 127.0.0.1.
pub struct TurnServer {
    // Declared before `dir`: the process is killed before its folder goes away.
    child: Child,
    port: u16,
    relay: RangeInclusive<u16>,
    log: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
}

/// Where `turnserver` is, if it is on `PATH`.
fn find_turnserver() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("turnserver"))
        .find(|p| p.is_file())
}

/// A number that differs between processes and calls (std's hasher keys are random per process).
fn random_u64() -> u64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
}

/// The next relay range of this process: a random first range, then the following ones.
fn next_relay_range() -> RangeInclusive<u16> {
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let slots = u32::from((RELAY_HIGH - RELAY_LOW + 1) / RELAY_RANGE);
    let first = (random_u64() % u64::from(slots)) as u32;
    let _ = NEXT.compare_exchange(u32::MAX, first, Ordering::SeqCst, Ordering::SeqCst);
    let slot = NEXT.fetch_add(1, Ordering::SeqCst) % slots;
    let min = RELAY_LOW + slot as u16 * RELAY_RANGE;
    min..=min + RELAY_RANGE - 1
}

/// A UDP port on 127.0.0.1 outside `avoid` that was free a moment ago.
fn free_udp_port(avoid: &RangeInclusive<u16>) -> u16 {
    loop {
        let port = StdUdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|s| s.local_addr())
            .expect("bind a UDP socket on 127.0.0.1")
            .port();
        if !avoid.contains(&port) {
            return port;
        }
    }
}

/// A STUN Binding request (RFC 5389) with transaction id `tid`.
fn binding_request(tid: &[u8; 12]) -> [u8; 20] {
    let mut m = [0u8; 20];
    m[0..2].copy_from_slice(&0x0001u16.to_be_bytes()); // Binding request
    m[2..4].copy_from_slice(&0u16.to_be_bytes()); // no attributes
    m[4..8].copy_from_slice(&0x2112_A442u32.to_be_bytes()); // magic cookie
    m[8..20].copy_from_slice(tid);
    m
}

/// Whether `resp` is the Binding success response to `tid`.
fn is_binding_success(resp: &[u8], tid: &[u8; 12]) -> bool {
    resp.len() >= 20 && resp[0..2] == [0x01, 0x01] && resp[8..20] == tid[..]
}

fn keep_lines(
    stream: impl AsyncRead + Unpin + Send + 'static,
    log: Arc<Mutex<Vec<String>>>,
    echo: bool,
) {
    tokio::spawn(async move {
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if echo {
                eprintln!("[coturn] {line}");
            }
            log.lock().unwrap().push(line);
        }
    });
}

/// The `key=<n>` number of a coturn usage line.
fn field(line: &str, key: &str) -> u64 {
    line.split([' ', ','])
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

impl TurnServer {
    /// Starts coturn and waits until it answers a STUN Binding request. Panics if `turnserver`
    /// is not installed (`tests/run.sh` installs Debian's `coturn`) or does not come up.
    pub async fn start() -> Self {
        let bin = find_turnserver().unwrap_or_else(|| {
            panic!(
                "`turnserver` (coturn) is not installed or not on PATH: run tests/run.sh, which \
                 installs it, or `apt-get install coturn`"
            )
        });
        let relay = next_relay_range();
        let port = free_udp_port(&relay);
        let dir = tempfile::tempdir().expect("temporary folder for coturn");
        let mut cmd = Command::new(&bin);
        cmd.args(Self::args(port, &relay, dir.path()))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let log = Arc::new(Mutex::new(Vec::new()));
        let echo = std::env::var_os("PEERNS_TURN_LOG").is_some_and(|v| v != "0");
        keep_lines(child.stdout.take().expect("stdout"), log.clone(), echo);
        keep_lines(child.stderr.take().expect("stderr"), log.clone(), echo);
        let mut server = Self {
            child,
            port,
            relay,
            log,
            _dir: dir,
        };
        server.wait_ready().await;
        server
    }

    fn args(port: u16, relay: &RangeInclusive<u16>, dir: &Path) -> Vec<String> {
        let mut args: Vec<String> = [
            "-n", // no configuration file: command line only
            "-v", // session events (allocations, permissions, usage)
            "--listening-ip=127.0.0.1",
            "--relay-ip=127.0.0.1",
            "--lt-cred-mech",
            "--no-cli",
            "--no-tls",
            "--no-dtls",
            "--no-tcp",
            "--no-tcp-relay",
            "--allow-loopback-peers",
            "--log-file=stdout",
            "--simple-log",
        ]
        .map(String::from)
        .into();
        args.extend([
            format!("--listening-port={port}"),
            format!("--min-port={}", relay.start()),
            format!("--max-port={}", relay.end()),
            format!("--user={USERNAME}:{CREDENTIAL}"),
            format!("--realm={REALM}"),
            format!("--pidfile={}", dir.join("turnserver.pid").display()),
            format!("--userdb={}", dir.join("turndb").display()),
        ]);
        args
    }

    async fn wait_ready(&mut self) {
        let sock = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("bind a UDP socket");
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut buf = [0u8; 1500];
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "turnserver exited ({status}) before it was ready:\n{}",
                    self.log().join("\n")
                );
            }
            assert!(
                Instant::now() < deadline,
                "turnserver did not answer STUN on {addr}:\n{}",
                self.log().join("\n")
            );
            let mut tid = [0u8; 12];
            tid[..8].copy_from_slice(&random_u64().to_be_bytes());
            tid[8..].copy_from_slice(&u32::from(self.port).to_be_bytes());
            let _ = sock.send_to(&binding_request(&tid), addr).await;
            let answered = tokio::time::timeout(Duration::from_millis(100), async {
                loop {
                    match sock.recv_from(&mut buf).await {
                        Ok((n, from)) if from == addr && is_binding_success(&buf[..n], &tid) => {
                            return true;
                        }
                        Ok(_) => continue,
                        // ICMP port unreachable while coturn is not listening yet.
                        Err(_) => return false,
                    }
                }
            })
            .await
            .unwrap_or(false);
            if answered {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The UDP listening port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The ports coturn may allocate relay addresses from.
    pub fn relay_ports(&self) -> RangeInclusive<u16> {
        self.relay.clone()
    }

    /// `turn:127.0.0.1:PORT?transport=udp`.
    pub fn url(&self) -> String {
        format!("turn:127.0.0.1:{}?transport=udp", self.port)
    }

    /// The long-term credential user name.
    pub fn username(&self) -> &str {
        USERNAME
    }

    /// The long-term credential password.
    pub fn credential(&self) -> &str {
        CREDENTIAL
    }

    /// The realm.
    pub fn realm(&self) -> &str {
        REALM
    }

    /// This server as a transport ICE server.
    pub fn ice_server(&self) -> IceServer {
        IceServer::turn(&self.url(), USERNAME, CREDENTIAL)
    }

    /// coturn's output so far (stdout and stderr, line by line).
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// How many log lines so far contain `needle`.
    pub fn count(&self, needle: &str) -> usize {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(needle))
            .count()
    }

    /// Successful TURN requests of `method` so far (`ALLOCATE`, `CREATE_PERMISSION`,
    /// `CHANNEL_BIND`, `REFRESH`).
    pub fn successes(&self, method: &str) -> usize {
        self.count(&format!("incoming packet {method} processed, success"))
    }

    /// Allocations that have ended so far (coturn logs `delete:` for each).
    pub fn deleted_allocations(&self) -> usize {
        self.count(": delete: realm=")
    }

    /// The relayed traffic of the allocations that have ended so far.
    pub fn peer_usage(&self) -> PeerUsage {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(": peer usage: "))
            .fold(PeerUsage::default(), |u, l| PeerUsage {
                sessions: u.sessions + 1,
                rp: u.rp + field(l, "rp"),
                rb: u.rb + field(l, "rb"),
                sp: u.sp + field(l, "sp"),
                sb: u.sb + field(l, "sb"),
            })
    }

    /// Waits up to `timeout` until `done(self)` holds; returns whether it did.
    pub async fn wait_until(&self, timeout: Duration, done: impl Fn(&Self) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if done(self) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_fields_parse() {
        let l = "7: : session 001000000000000002: peer usage: realm=<peerns.test>, \
                 username=<peerns>, rp=5, rb=850, sp=6, sb=851";
        assert_eq!(
            (
                field(l, "rp"),
                field(l, "rb"),
                field(l, "sp"),
                field(l, "sb")
            ),
            (5, 850, 6, 851)
        );
    }

    #[test]
    fn relay_ranges_stay_in_bounds_and_differ() {
        let a = next_relay_range();
        let b = next_relay_range();
        for r in [&a, &b] {
            assert!(*r.start() >= RELAY_LOW && *r.end() <= RELAY_HIGH, "{r:?}");
            assert_eq!(r.end() - r.start() + 1, RELAY_RANGE);
        }
        assert_ne!(a, b);
    }

    #[test]
    fn stun_binding_shapes() {
        let tid = *b"0123456789ab";
        let req = binding_request(&tid);
        assert_eq!(&req[..4], &[0, 1, 0, 0]);
        let mut resp = req;
        resp[0..2].copy_from_slice(&[0x01, 0x01]);
        assert!(is_binding_success(&resp, &tid));
        assert!(!is_binding_success(&req, &tid));
    }
}
