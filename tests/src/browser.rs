//! Headless Chromium running peerjs 1.5.5, inside a loopback-only network namespace.
//!
//! - [`run_in_netns`]: re-runs the calling test in a fresh network namespace that has only `lo`
//!   (with a default route on `lo`, which webrtc-rs needs), so a browser and native nodes can
//!   talk over UDP/TCP without touching the host network.
//! - [`Browser`]: serves `tests/browser/` and `peerjs.min.js` on 127.0.0.1, launches Chromium on
//!   that page and remote-controls it over a WebSocket (see `tests/browser/interop.js`).
//!
//! In a loopback-only namespace Chromium gathers only any-address candidates and signals none;
//! connections still work through Chromium's peer-reflexive 127.0.0.1 candidate because the
//! native side signals 127.0.0.1 host candidates (`TransportConfig::loopback()`).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

use crate::peerjs_dir;

/// Set (to `1`) in the environment of a test re-run inside its own network namespace.
pub const IN_NETNS_ENV: &str = "PEERNS_IN_NETNS";
/// Overrides the Chromium binary (default: `chromium` or `chromium-browser` on `PATH`).
pub const CHROMIUM_ENV: &str = "PEERNS_CHROMIUM";

/// Flags for headless Chromium in a loopback-only namespace (toolchain.md §7).
pub const CHROMIUM_FLAGS: &[&str] = &[
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--allow-loopback-in-peer-connection",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
    // Media calls (browser_media.rs): a generated camera and microphone, no permission prompt.
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
    "--enable-logging=stderr",
    "--v=0",
];

/// Makes the calling test run inside a fresh network namespace with only `lo`.
///
/// Outside one (env [`IN_NETNS_ENV`] unset) this runs
/// `unshare -n -- <this test binary> --exact <test_name> --nocapture --test-threads=1
/// --include-ignored` with `PEERNS_IN_NETNS=1` (the rest of the environment, e.g. `PEERNS_BIN`,
/// is inherited), prints the child's output, asserts that exactly that one test ran and passed,
/// and returns `false`: the caller then returns. Inside (the re-run), it brings `lo` up, adds
/// `default dev lo` and returns `true`: the caller runs the test body. `unshare -n` needs root;
/// as another user `unshare -r -n` (a user namespace) is used instead.
///
/// `test_name` is the test's path inside its test binary (`my_test`, or `module::my_test`).
pub fn run_in_netns(test_name: &str) -> bool {
    if std::env::var_os(IN_NETNS_ENV).is_some() {
        setup_loopback_netns();
        return true;
    }
    let exe = std::env::current_exe().expect("path of the test executable");
    let mut cmd = std::process::Command::new("unshare");
    if !is_root() {
        cmd.arg("-r");
    }
    cmd.args(["-n", "--"])
        .arg(&exe)
        .args(["--exact", test_name, "--nocapture", "--test-threads=1"])
        .arg("--include-ignored")
        .env(IN_NETNS_ENV, "1")
        .stdin(Stdio::null());
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run `unshare` (util-linux) for {test_name}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    print!("{stdout}");
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success(),
        "{test_name} failed inside its network namespace ({})",
        out.status
    );
    assert!(
        stdout.contains("test result: ok. 1 passed"),
        "the re-run inside the network namespace did not run test {test_name:?} (wrong name?)"
    );
    false
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}

/// `ip link set lo up; ip route replace default dev lo`, after checking that this namespace has
/// no other interface (so a stray `PEERNS_IN_NETNS` can never reroute the host).
fn setup_loopback_netns() {
    // /proc/self/net follows the caller's namespace (/sys/class/net would show the host's).
    let dev = std::fs::read_to_string("/proc/self/net/dev").expect("/proc/self/net/dev");
    let ifaces: Vec<&str> = dev
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next().map(str::trim))
        .collect();
    assert!(
        ifaces.iter().all(|i| *i == "lo"),
        "{IN_NETNS_ENV} is set but this is not a loopback-only network namespace: {ifaces:?}"
    );
    for args in [
        &["link", "set", "lo", "up"][..],
        &["route", "replace", "default", "dev", "lo"][..],
    ] {
        let st = std::process::Command::new("ip")
            .args(args)
            .status()
            .unwrap_or_else(|e| panic!("cannot run `ip` (iproute2): {e}"));
        assert!(st.success(), "`ip {}` failed: {st}", args.join(" "));
    }
}

/// The folder of the browser-side files (`tests/browser`).
pub fn browser_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("browser")
}

/// The version of the `peerjs` package the page loads (from its `package.json`).
pub fn peerjs_version() -> String {
    let p = peerjs_dir().join("node_modules/peerjs/package.json");
    let text = std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("{}: {e} (run `npm ci` in tests/peerjs)", p.display()));
    let v: Value = serde_json::from_str(&text).expect("peerjs package.json");
    v["version"].as_str().unwrap_or_default().to_string()
}

/// The Chromium binary: `$PEERNS_CHROMIUM`, else `chromium` / `chromium-browser` on `PATH`.
/// Panics with install instructions when there is none.
pub fn chromium_path() -> PathBuf {
    if let Some(p) = std::env::var_os(CHROMIUM_ENV) {
        return p.into();
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        for name in ["chromium", "chromium-browser"] {
            let p = dir.join(name);
            if p.is_file() {
                return p;
            }
        }
    }
    panic!(
        "Chromium is not installed: the browser interop tests need it. Install it with \
         `apt-get install chromium` (tests/run.sh does) or set {CHROMIUM_ENV}."
    );
}

/// Kills a whole process group (Chromium and its helper processes) when dropped.
struct ProcessGroup(u32);

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.0)])
            .stderr(Stdio::null())
            .status();
    }
}

/// A headless Chromium on the interop page, remote-controlled over a WebSocket.
pub struct Browser {
    ws: WebSocketStream<TcpStream>,
    next_id: u64,
    /// The page's greeting: `{ua, browser, isolated, supports}` (`isolated`: cross-origin
    /// isolated, `browser` and `supports`: `peerjs.util`'s view).
    pub hello: Value,
    log: PathBuf,
    http: JoinHandle<()>,
    // Drop order: the group kill runs before the child handle and the profile go.
    _group: ProcessGroup,
    _child: Child,
    _dir: tempfile::TempDir,
}

impl Browser {
    /// Serves the page, launches Chromium on it and waits until the page has connected back.
    pub async fn launch() -> Browser {
        let chromium = chromium_path();
        let http = TcpListener::bind("127.0.0.1:0").await.expect("bind http");
        let ctl = TcpListener::bind("127.0.0.1:0").await.expect("bind ctl");
        let http_port = http.local_addr().unwrap().port();
        let ctl_port = ctl.local_addr().unwrap().port();
        let http = tokio::spawn(serve_http(http));
        let dir = tempfile::tempdir().expect("temp dir");
        let log = dir.path().join("chromium.log");
        let log_file = File::create(&log).expect("chromium log");
        let url = format!("http://127.0.0.1:{http_port}/interop.html?ctl={ctl_port}");
        let mut child = Command::new(&chromium)
            .args(CHROMIUM_FLAGS)
            .arg(format!(
                "--user-data-dir={}",
                dir.path().join("profile").display()
            ))
            .arg(&url)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("log fd"))
            .stderr(log_file)
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", chromium.display()));
        let group = ProcessGroup(child.id().expect("chromium pid"));
        let page = async {
            let (stream, _) = ctl.accept().await.map_err(|e| e.to_string())?;
            let mut ws = tokio_tungstenite::accept_async(stream)
                .await
                .map_err(|e| e.to_string())?;
            loop {
                match ws.next().await {
                    Some(Ok(Message::Text(t))) => {
                        let v: Value =
                            serde_json::from_str(t.as_str()).map_err(|e| e.to_string())?;
                        if v["type"] == "hello" {
                            return Ok::<_, String>((ws, v));
                        }
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(e.to_string()),
                    None => return Err("control socket closed before hello".into()),
                }
            }
        };
        let (ws, hello) = tokio::select! {
            r = tokio::time::timeout(Duration::from_secs(30), page) => match r {
                Ok(Ok(x)) => x,
                Ok(Err(e)) => panic!("interop page failed to connect: {e}\n{}", tail(&log, 40)),
                Err(_) => panic!("interop page did not connect within 30 s\n{}", tail(&log, 40)),
            },
            st = child.wait() => panic!("chromium exited early ({st:?})\n{}", tail(&log, 40)),
        };
        Browser {
            ws,
            next_id: 0,
            hello,
            log,
            http,
            _group: group,
            _child: child,
            _dir: dir,
        }
    }

    /// Runs page op `op` with `args` (a JSON object) and returns its result, or the page's
    /// error (or a timeout / control-socket error) as text. Page logs are printed meanwhile.
    pub async fn call(
        &mut self,
        op: &str,
        args: Value,
        timeout: Duration,
    ) -> Result<Value, String> {
        self.next_id += 1;
        let id = self.next_id;
        let mut cmd = args;
        cmd["req"] = id.into();
        cmd["op"] = op.into();
        self.ws
            .send(Message::text(cmd.to_string()))
            .await
            .map_err(|e| format!("control socket: {e}"))?;
        let ws = &mut self.ws;
        let reply = async {
            loop {
                let msg = match ws.next().await {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => return Err(format!("control socket: {e}")),
                    None => return Err("control socket closed (page or browser gone)".into()),
                };
                let v: Value = serde_json::from_str(msg.as_str())
                    .map_err(|e| format!("bad control message: {e}"))?;
                match v["type"].as_str() {
                    Some("log") => println!("[page] {}", v["text"].as_str().unwrap_or_default()),
                    Some("reply") if v["req"] == id => {
                        return if v["ok"] == true {
                            Ok(v["result"].clone())
                        } else {
                            Err(v["error"].as_str().unwrap_or("unknown error").to_string())
                        };
                    }
                    _ => {}
                }
            }
        };
        tokio::time::timeout(timeout, reply)
            .await
            .unwrap_or_else(|_| Err(format!("page did not finish {op} within {timeout:?}")))
    }

    /// The last `lines` lines of Chromium's stderr (which includes the page's console).
    pub fn log_tail(&self, lines: usize) -> String {
        tail(&self.log, lines)
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        self.http.abort();
    }
}

/// The last `lines` lines of a Chromium log, without the D-Bus noise of a machine without D-Bus.
fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text
        .lines()
        .filter(|l| !l.contains("dbus") && !l.contains("unexpected operator"))
        .collect();
    let start = all.len().saturating_sub(lines);
    format!(
        "--- chromium log, last {} lines (D-Bus noise left out) ---\n{}",
        all.len() - start,
        all[start..].join("\n")
    )
}

/// A minimal static HTTP/1.1 server for the page, its script and `peerjs.min.js` (one request
/// per connection). COOP/COEP make the page cross-origin isolated, which gives
/// `performance.now()` 5 µs instead of 100 µs resolution.
async fn serve_http(listener: TcpListener) {
    while let Ok((stream, _)) = listener.accept().await {
        tokio::spawn(async move {
            let _ = serve_one(stream).await;
        });
    }
}

async fn serve_one(mut s: TcpStream) -> std::io::Result<()> {
    let mut req = Vec::new();
    let mut buf = [0u8; 4096];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = s.read(&mut buf).await?;
        if n == 0 || req.len() > 64 * 1024 {
            return Ok(());
        }
        req.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&req);
    let target = head.split(' ').nth(1).unwrap_or("/");
    let path = target.split('?').next().unwrap_or("/");
    let file = match path {
        "/" | "/interop.html" => Some((browser_dir().join("interop.html"), "text/html")),
        "/interop.js" => Some((browser_dir().join("interop.js"), "text/javascript")),
        "/peerjs.min.js" => Some((
            peerjs_dir().join("node_modules/peerjs/dist/peerjs.min.js"),
            "text/javascript",
        )),
        _ => None,
    };
    let (status, ctype, body) = match file {
        Some((p, ctype)) => match tokio::fs::read(&p).await {
            Ok(b) => ("200 OK", ctype, b),
            Err(e) => (
                "404 Not Found",
                "text/plain",
                format!("{}: {e}", p.display()).into_bytes(),
            ),
        },
        None => ("404 Not Found", "text/plain", b"not found".to_vec()),
    };
    let header = format!(
        "HTTP/1.1 {status}\r\ncontent-type: {ctype}; charset=utf-8\r\ncontent-length: {}\r\n\
         cache-control: no-store\r\ncross-origin-opener-policy: same-origin\r\n\
         cross-origin-embedder-policy: require-corp\r\ncross-origin-resource-policy: same-origin\r\n\
         connection: close\r\n\r\n",
        body.len()
    );
    s.write_all(header.as_bytes()).await?;
    s.write_all(&body).await?;
    s.shutdown().await
}
