//! Browser interop: headless Chromium running peerjs 1.5.5 and a native node exchange 200
//! sequential, order- and content-checked round trips per case, in both directions (the page
//! connects to the native node, and the native node connects to the page), with PeerJS's `json`
//! and `binary` serializations (`binary` includes byte payloads and messages over 16,300 bytes,
//! so PeerJS chunking runs both ways). Every case runs through our embedded server and through
//! the official `peer` server.
//!
//! One Chromium launch serves every case (`tests/browser/interop.js`, remote-controlled by this
//! test). The test re-runs itself inside a loopback-only network namespace
//! ([`peerns_tests::browser::run_in_netns`]), so it needs root (or user namespaces) and
//! Chromium (`apt-get install chromium`); without Chromium it fails.

use std::fmt;
use std::time::{Duration, Instant};

use peerns_core::transport::payload::Serialization;
use peerns_core::transport::{ConnectOptions, Payload};
use peerns_tests::browser::{Browser, peerjs_version, run_in_netns};
use peerns_tests::{ServerKind, ServerOpts, TestNode, TestServer, peerns_bin, test_node};
use serde_json::{Value, json};

/// Round trips per case.
const N: usize = 200;
/// Longest wait for one echo or one connection.
const STEP: Duration = Duration::from_secs(15);

#[derive(Debug, Clone, Copy, PartialEq)]
enum Dir {
    /// The page calls `peer.connect(native)`; the native node echoes.
    BrowserToNative,
    /// The native node calls `transport.connect(browser)`; the page echoes.
    NativeToBrowser,
}

#[derive(Clone, Copy)]
struct Case {
    server: ServerKind,
    ser: Serialization,
    dir: Dir,
}

impl fmt::Display for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dir = match self.dir {
            Dir::BrowserToNative => "browser→native",
            Dir::NativeToBrowser => "native→browser",
        };
        write!(f, "{:?}/{}/{dir}", self.server, ser_name(self.ser))
    }
}

const CASES: &[Case] = {
    use Dir::*;
    use Serialization::*;
    use ServerKind::*;
    &[
        Case {
            server: Embedded,
            ser: Json,
            dir: BrowserToNative,
        },
        Case {
            server: Embedded,
            ser: Json,
            dir: NativeToBrowser,
        },
        Case {
            server: Embedded,
            ser: Binary,
            dir: BrowserToNative,
        },
        Case {
            server: Embedded,
            ser: Binary,
            dir: NativeToBrowser,
        },
        Case {
            server: Peer,
            ser: Json,
            dir: BrowserToNative,
        },
        Case {
            server: Peer,
            ser: Json,
            dir: NativeToBrowser,
        },
        Case {
            server: Peer,
            ser: Binary,
            dir: BrowserToNative,
        },
        Case {
            server: Peer,
            ser: Binary,
            dir: NativeToBrowser,
        },
    ]
};

fn ser_name(s: Serialization) -> &'static str {
    match s {
        Serialization::Json => "json",
        Serialization::Binary => "binary",
        Serialization::Raw => "raw",
        Serialization::BinaryUtf8 => "binary-utf8",
    }
}

fn bytes(i: usize, len: usize) -> Vec<u8> {
    (0..len).map(|j| ((i * 7 + j * 31) & 255) as u8).collect()
}

/// Message number `i` of a run; must stay identical to `gen()` in `tests/browser/interop.js`.
fn message(ser: Serialization, i: usize) -> Payload {
    if ser == Serialization::Binary {
        match i {
            5 => return Payload::Bytes(bytes(i, 0)),
            // 34 kB of mixed-width UTF-8: chunked, and chunk borders split characters.
            100 => {
                let text = format!("{}{i}", "peerns é✓🚀 ".repeat(2000));
                return Payload::Json(json!({"seq": i, "kind": "big-text", "text": text}));
            }
            150 => return Payload::Bytes(bytes(i, 40_000)),
            _ if i % 4 == 1 => return Payload::Bytes(bytes(i, i % 50)),
            _ => {}
        }
    } else if i == 100 {
        // Just under PeerJS's 16,300-byte limit for JSON messages.
        let text = format!("{}é✓🚀", "x".repeat(15_900));
        return Payload::Json(json!({"seq": i, "kind": "big-text", "text": text}));
    }
    if i % 4 == 2 {
        Payload::Json(json!({
            "seq": i, "kind": "mixed", "f": i as f64 + 0.5, "neg": -(i as i64),
            "big": (1u64 << 40) + i as u64, "t": true, "n": null,
            "arr": [i, "s", false, 1.25], "nested": {"u": "héllo ✓ 🚀"},
        }))
    } else {
        Payload::Json(json!({"seq": i, "text": format!("hello {i}")}))
    }
}

/// A short description of a payload for failure messages.
fn short(p: &Payload) -> String {
    match p {
        Payload::Bytes(b) => {
            let head: String = b.iter().take(8).map(|x| format!("{x:02x}")).collect();
            format!("bytes[{}] {head}…", b.len())
        }
        Payload::Json(v) => {
            let s = v.to_string();
            if s.len() > 200 {
                let cut = (0..=200)
                    .rev()
                    .find(|&k| s.is_char_boundary(k))
                    .unwrap_or(0);
                format!("json {}… ({} bytes)", &s[..cut], s.len())
            } else {
                format!("json {s}")
            }
        }
    }
}

/// Nearest-rank percentile of sorted milliseconds.
fn pct(sorted: &[f64], p: f64) -> f64 {
    let k = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[k.saturating_sub(1).min(sorted.len() - 1)]
}

fn fmt_rtt(p50: f64, p99: f64, max: f64) -> String {
    format!("rtt p50 {p50:.3} ms, p99 {p99:.3} ms, max {max:.3} ms")
}

/// Accepts the page's connection and echoes every message, checking each against
/// [`message`]. Returns how many were echoed, or what went wrong.
async fn echo_side(
    node: &mut TestNode,
    ser: Serialization,
    browser: &str,
) -> Result<usize, String> {
    let mut conn = tokio::time::timeout(STEP, node.incoming.recv())
        .await
        .map_err(|_| "no incoming connection from the page".to_string())?
        .ok_or("transport stopped")?;
    let info = conn.info().clone();
    if info.peer != browser || info.serialization != ser || !info.reliable {
        return Err(format!("unexpected incoming connection {info:?}"));
    }
    let mut problems = Vec::new();
    let mut i = 0;
    loop {
        let next = tokio::time::timeout(STEP, conn.recv())
            .await
            .map_err(|_| format!("no message {i} (nor a close) from the page"))?;
        let Some(msg) = next else { break };
        let got = match msg {
            Ok(p) => p,
            Err(e) => {
                problems.push(format!("message {i}: undecodable: {e}"));
                i += 1;
                continue;
            }
        };
        let want = message(ser, i);
        if got != want && problems.len() < 3 {
            problems.push(format!(
                "message {i}: expected {}, got {}",
                short(&want),
                short(&got)
            ));
        }
        conn.send(&got)
            .await
            .map_err(|e| format!("echo of message {i}: {e}"))?;
        i += 1;
    }
    if problems.is_empty() {
        Ok(i)
    } else {
        Err(format!("native side received: {}", problems.join("; ")))
    }
}

async fn browser_to_native(
    browser: &mut Browser,
    node: &mut TestNode,
    ser: Serialization,
    browser_id: &str,
) -> Result<String, String> {
    let (ping, echoed) = tokio::join!(
        browser.call(
            "ping",
            json!({"id": browser_id, "to": node.id, "serialization": ser_name(ser), "n": N}),
            Duration::from_secs(60),
        ),
        echo_side(node, ser, browser_id),
    );
    let r = ping.map_err(|e| format!("page: {e}"))?;
    let echoed = echoed?;
    if echoed != N {
        return Err(format!("native side echoed {echoed} messages, not {N}"));
    }
    let rtt = &r["rtt"];
    let f = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
    Ok(format!(
        "connect {:.1} ms (signaling ms: {}), browser-measured {}, pair {}",
        f(&r["connectMs"]),
        r["signals"].as_str().unwrap_or("?"),
        fmt_rtt(f(&rtt["p50"]), f(&rtt["p99"]), f(&rtt["max"])),
        r["pair"].as_str().unwrap_or("?")
    ))
}

async fn native_to_browser(
    browser: &mut Browser,
    node: &mut TestNode,
    ser: Serialization,
    browser_id: &str,
) -> Result<String, String> {
    let t0 = Instant::now();
    let mut conn = tokio::time::timeout(
        STEP,
        node.transport
            .connect(browser_id, ConnectOptions::peerjs(ser)),
    )
    .await
    .map_err(|_| "connect timed out".to_string())?
    .map_err(|e| format!("connect: {e}"))?;
    let connect_ms = t0.elapsed().as_secs_f64() * 1e3;
    let mut rtts = Vec::with_capacity(N);
    for i in 0..N {
        let m = message(ser, i);
        let t = Instant::now();
        conn.send(&m)
            .await
            .map_err(|e| format!("send {i} ({}): {e}", short(&m)))?;
        let got = tokio::time::timeout(STEP, conn.recv())
            .await
            .map_err(|_| format!("no echo of message {i} ({})", short(&m)))?
            .ok_or_else(|| format!("connection closed before the echo of message {i}"))?
            .map_err(|e| format!("echo of message {i} undecodable: {e}"))?;
        rtts.push(t.elapsed().as_secs_f64() * 1e3);
        if got != m {
            return Err(format!(
                "echo {i} differs: sent {}, got {}",
                short(&m),
                short(&got)
            ));
        }
    }
    if let Ok(extra) = tokio::time::timeout(Duration::from_millis(50), conn.recv()).await {
        return Err(format!("unexpected extra message: {extra:?}"));
    }
    conn.close().await;
    let stats = browser
        .call("stats", json!({"id": browser_id}), STEP)
        .await
        .map_err(|e| format!("page stats: {e}"))?;
    let conns = stats["conns"].as_array().cloned().unwrap_or_default();
    let [c] = &conns[..] else {
        return Err(format!("page saw {} connections: {stats}", conns.len()));
    };
    let expected = json!({
        "peer": node.id, "serialization": ser_name(ser), "reliable": true,
        "received": N, "mismatches": [],
    });
    for (k, v) in expected.as_object().unwrap() {
        if &c[k] != v {
            return Err(format!("page side: {k} is {}, expected {v}; {c}", c[k]));
        }
    }
    rtts.sort_by(f64::total_cmp);
    Ok(format!(
        "connect {connect_ms:.1} ms, native-measured {}, browser pair {}, page got {}",
        fmt_rtt(pct(&rtts, 50.0), pct(&rtts, 99.0), rtts[N - 1]),
        c["pair"].as_str().unwrap_or("?"),
        c["types"]
    ))
}

async fn run_case(
    browser: &mut Browser,
    server: &TestServer,
    k: usize,
    case: Case,
) -> Result<String, String> {
    let native_id = format!("peerns-bi-native-{k}");
    let browser_id = format!("peerns-bi-browser-{k}");
    let mut node = test_node(&server.url(), &native_id).await;
    browser
        .call(
            "register",
            json!({"id": browser_id, "server": server.port()}),
            STEP,
        )
        .await
        .map_err(|e| format!("page register: {e}"))?;
    let r = match case.dir {
        Dir::BrowserToNative => browser_to_native(browser, &mut node, case.ser, &browser_id).await,
        Dir::NativeToBrowser => native_to_browser(browser, &mut node, case.ser, &browser_id).await,
    };
    let _ = browser
        .call("destroy", json!({"id": browser_id}), STEP)
        .await;
    node.transport.shutdown().await;
    r
}

async fn all_cases() {
    let t0 = Instant::now();
    assert!(
        peerns_bin().exists(),
        "{} is missing: run `cargo build -p peerns-cli` first (or set PEERNS_BIN)",
        peerns_bin().display()
    );
    let (embedded, peer, mut browser) = tokio::join!(
        TestServer::start(ServerKind::Embedded, ServerOpts::default()),
        TestServer::start(ServerKind::Peer, ServerOpts::default()),
        Browser::launch(),
    );
    println!(
        "browser up after {:.2} s: {}",
        t0.elapsed().as_secs_f64(),
        browser.hello
    );
    assert_eq!(
        peerjs_version(),
        "1.5.5",
        "peerjs version served to the page"
    );
    assert_eq!(browser.hello["browser"], "chrome", "peerjs.util.browser");
    let mut failures = Vec::new();
    for (k, case) in CASES.iter().enumerate() {
        let server = match case.server {
            ServerKind::Embedded => &embedded,
            ServerKind::Peer => &peer,
        };
        let t = Instant::now();
        let r = tokio::time::timeout(
            Duration::from_secs(90),
            run_case(&mut browser, server, k, *case),
        )
        .await
        .unwrap_or_else(|_| Err("case timed out".into()));
        let secs = t.elapsed().as_secs_f64();
        match r {
            Ok(summary) => println!("ok   {case} ({secs:.2} s): {summary}"),
            Err(e) => {
                println!("FAIL {case} ({secs:.2} s): {e}");
                failures.push(format!("{case}: {e}"));
            }
        }
    }
    println!("all cases in {:.2} s", t0.elapsed().as_secs_f64());
    if !failures.is_empty() {
        println!("{}", browser.log_tail(60));
        panic!(
            "{} of {} cases failed:\n{}",
            failures.len(),
            CASES.len(),
            failures.join("\n")
        );
    }
}

/// Every case, with one Chromium, inside a fresh loopback-only network namespace.
#[test]
fn chromium_peerjs_round_trips() {
    if !run_in_netns("chromium_peerjs_round_trips") {
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(300), all_cases())
            .await
            .expect("browser interop cases finished within 300 s")
    });
}
