//! `peerns bench transport`: connect time, RTT and throughput of our PeerJS-compatible data
//! connections through a local signaling server, TURN-relayed RTT through coturn, and the same
//! figures for a bare webrtc-rs baseline (direct SDP exchange in process, no PeerJS layer),
//! alternating in one run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use peerns_core::transport::peer::{PcEvent, PcEventKind, new_peer_connection};
use peerns_core::transport::{ConnectOptions, DataConnection, IceServer, Payload, TransportConfig};
use serde_json::json;
use tokio::sync::mpsc;
use webrtc::data_channel::{DataChannel, DataChannelEvent, RTCDataChannelInit};
use webrtc::peer_connection::PeerConnection;

use super::percentile;
use crate::Result;
use crate::local_node::LocalNode;
use crate::servers::{ServerProcess, TURN_USER, TurnProcess};

const MB: f64 = 1_000_000.0;

/// What the bench asks of the answering node, carried in the offer's metadata.
fn opts(mode: &str) -> ConnectOptions {
    let mut o = ConnectOptions::native();
    o.metadata = json!({"peerns": 1, "bench": mode});
    o
}

/// The answering side: echo every message, or (sink) count bytes and, when the sender announces
/// its total, acknowledge it. The channel is ordered, so every byte has arrived by then.
async fn serve(mut node: LocalNode) {
    while let Some(mut conn) = node.incoming.recv().await {
        let sink = conn.info().metadata["bench"] == "sink";
        tokio::spawn(async move {
            let mut bytes = 0u64;
            while let Some(Ok(p)) = conn.recv().await {
                let reply = match p {
                    Payload::Bytes(b) if sink => {
                        bytes += b.len() as u64;
                        continue;
                    }
                    Payload::Json(v) if sink && v.get("expect").is_some() => {
                        Payload::Json(json!({"got": std::mem::take(&mut bytes)}))
                    }
                    other => other,
                };
                if conn.send(&reply).await.is_err() {
                    return;
                }
            }
        });
    }
}

async fn recv(conn: &mut DataConnection) -> Result<Payload> {
    match tokio::time::timeout(Duration::from_secs(30), conn.recv()).await {
        Ok(Some(Ok(p))) => Ok(p),
        other => Err(format!("receive failed: {other:?}").into()),
    }
}

async fn rtt_ours(conn: &mut DataConnection, n: usize) -> Result<Vec<f64>> {
    let mut samples = Vec::with_capacity(n);
    for i in 0..n as u64 {
        let ping = Payload::Bytes(i.to_le_bytes().to_vec());
        let t0 = Instant::now();
        conn.send(&ping).await?;
        if recv(conn).await? != ping {
            return Err("echo mismatch".into());
        }
        samples.push(t0.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(samples)
}

/// Sends `total` bytes in `size`-byte messages; MB/s until the receiver acknowledged all of it.
async fn throughput_ours(conn: &mut DataConnection, size: usize, total: usize) -> Result<f64> {
    let block = vec![0xA5u8; size];
    let t0 = Instant::now();
    for _ in 0..total / size {
        conn.send(&Payload::Bytes(block.clone())).await?;
    }
    conn.send(&Payload::Json(json!({"expect": total}))).await?;
    match recv(conn).await? {
        Payload::Json(v) if v["got"].as_u64() == Some(total as u64) => {}
        other => return Err(format!("bad ack {other:?}").into()),
    }
    Ok(total as f64 / MB / t0.elapsed().as_secs_f64())
}

/// A bare webrtc-rs data channel pair: direct SDP exchange, candidates passed in process.
struct Bare {
    pcs: [Arc<dyn PeerConnection>; 2],
    tx: Arc<dyn DataChannel>,
    rx: Arc<dyn DataChannel>,
}

async fn forward_candidates(
    mut events: mpsc::UnboundedReceiver<PcEvent>,
    to: Arc<dyn PeerConnection>,
) -> mpsc::UnboundedReceiver<PcEvent> {
    // Both descriptions are set before this runs, so candidates can be added at once.
    let mut rest = Vec::new();
    while let Ok(ev) = events.try_recv() {
        rest.push(ev);
    }
    let (tx, out) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut pending = rest.into_iter();
        loop {
            let ev = match pending.next() {
                Some(ev) => ev,
                None => match events.recv().await {
                    Some(ev) => ev,
                    None => return,
                },
            };
            match ev.kind {
                PcEventKind::Candidate(c) => {
                    let _ = to.add_ice_candidate(c).await;
                }
                _ => {
                    let _ = tx.send(ev);
                }
            }
        }
    });
    out
}

impl Bare {
    async fn connect(config: &TransportConfig) -> Result<(Self, f64)> {
        let t0 = Instant::now();
        let (atx, arx) = mpsc::unbounded_channel();
        let (btx, brx) = mpsc::unbounded_channel();
        let a = new_peer_connection(config, "bare-a", atx, None, false).await?;
        let b = new_peer_connection(config, "bare-b", btx, None, false).await?;
        let tx = a
            .create_data_channel(
                "bench",
                Some(RTCDataChannelInit {
                    ordered: true,
                    ..Default::default()
                }),
            )
            .await?;
        let offer = a.create_offer(None).await?;
        a.set_local_description(offer.clone()).await?;
        b.set_remote_description(offer).await?;
        let answer = b.create_answer(None).await?;
        b.set_local_description(answer.clone()).await?;
        a.set_remote_description(answer).await?;
        let _a_events = forward_candidates(arx, b.clone()).await;
        let mut b_events = forward_candidates(brx, a.clone()).await;
        loop {
            match tx.poll().await {
                Some(DataChannelEvent::OnOpen) => break,
                None | Some(DataChannelEvent::OnClose) => return Err("bare channel closed".into()),
                _ => {}
            }
        }
        let elapsed = t0.elapsed().as_secs_f64() * 1000.0;
        let rx = loop {
            match b_events.recv().await {
                Some(PcEvent {
                    kind: PcEventKind::DataChannel(dc),
                    ..
                }) => break dc,
                Some(_) => {}
                None => return Err("no remote channel".into()),
            }
        };
        Ok((
            Self {
                pcs: [a, b],
                tx,
                rx,
            },
            elapsed,
        ))
    }

    async fn next_message(dc: &Arc<dyn DataChannel>) -> Result<BytesMut> {
        loop {
            match dc.poll().await {
                Some(DataChannelEvent::OnMessage(m)) => return Ok(m.data),
                None | Some(DataChannelEvent::OnClose) => return Err("bare channel closed".into()),
                _ => {}
            }
        }
    }

    async fn rtt(&self, n: usize) -> Result<Vec<f64>> {
        let rx = self.rx.clone();
        let echo = tokio::spawn(async move {
            for _ in 0..n {
                let m = Self::next_message(&rx).await?;
                rx.send(m).await?;
            }
            Result::Ok(())
        });
        let mut samples = Vec::with_capacity(n);
        for i in 0..n as u64 {
            let t0 = Instant::now();
            self.tx.send(BytesMut::from(&i.to_le_bytes()[..])).await?;
            Self::next_message(&self.tx).await?;
            samples.push(t0.elapsed().as_secs_f64() * 1000.0);
        }
        echo.await??;
        Ok(samples)
    }

    async fn throughput(&self, size: usize, total: usize) -> Result<f64> {
        let rx = self.rx.clone();
        let sink = tokio::spawn(async move {
            let mut got = 0;
            while got < total {
                got += Self::next_message(&rx).await?.len();
            }
            rx.send(BytesMut::from(&b"ack"[..])).await?;
            Result::Ok(())
        });
        let block = vec![0xA5u8; size];
        let t0 = Instant::now();
        for _ in 0..total / size {
            self.tx.send(BytesMut::from(&block[..])).await?;
        }
        Self::next_message(&self.tx).await?;
        let rate = total as f64 / MB / t0.elapsed().as_secs_f64();
        sink.await??;
        Ok(rate)
    }

    async fn close(self) {
        for pc in self.pcs {
            let _ = pc.close().await;
        }
    }
}

#[derive(Default)]
struct Figures {
    connect_ms: Vec<f64>,
    rtt_ms: Vec<f64>,
    tp_1k: Vec<f64>,
    tp_16k: Vec<f64>,
}

fn median(v: &mut [f64]) -> f64 {
    percentile(v, 50.0)
}

async fn node_pair(url: &str, tag: &str, config: TransportConfig) -> Result<LocalNode> {
    let b = LocalNode::start(url, &format!("peerns2-bench-{tag}-b"), "t", config.clone()).await?;
    let b_id = b.id.clone();
    tokio::spawn(serve(b));
    let a = LocalNode::start(url, &format!("peerns2-bench-{tag}-a"), "t", config).await?;
    // Warm up: the first connection pays one-time costs (certificate generation paths, JIT-less
    // but cold caches); both stacks get one.
    let warm = a.transport.connect(&b_id, opts("echo")).await?;
    warm.close().await;
    Ok(a)
}

/// A plain data-connection pair whose answering side counts bytes: the baseline of other
/// benches (no session, no storage).
pub(super) struct Sink {
    a: LocalNode,
    b_id: String,
}

impl Sink {
    pub(super) async fn stop(self) {
        self.a.stop().await;
    }
}

/// Starts a [`Sink`] pair on the signaling server at `url`.
pub(super) async fn transport_sink(url: &str) -> Result<Sink> {
    let a = node_pair(url, "sink", TransportConfig::loopback()).await?;
    Ok(Sink {
        a,
        b_id: "peerns2-bench-sink-b".into(),
    })
}

/// MB/s of `total` bytes in `size`-byte messages over a fresh connection of `sink`.
pub(super) async fn bare_sink_throughput(sink: &Sink, size: usize, total: usize) -> Result<f64> {
    let mut c = sink.a.transport.connect(&sink.b_id, opts("sink")).await?;
    let r = throughput_ours(&mut c, size, total).await;
    c.close().await;
    r
}

/// Runs the benchmark and prints a table or one JSON object.
pub async fn run(json_out: bool, connects: usize, pings: usize, rounds: usize) -> Result<()> {
    let server = ServerProcess::embedded(&[]).await?;
    let url = server.url();
    let config = TransportConfig::loopback();
    let a = node_pair(&url, "direct", config.clone()).await?;
    let b_id = "peerns2-bench-direct-b";
    let (mut ours, mut bare) = (Figures::default(), Figures::default());
    let (total_1k, total_16k) = (8 << 20, 64 << 20);

    // Connect times: ours through signaling, bare with direct SDP exchange.
    for _ in 0..connects {
        let t0 = Instant::now();
        let c = a.transport.connect(b_id, opts("echo")).await?;
        ours.connect_ms.push(t0.elapsed().as_secs_f64() * 1000.0);
        c.close().await;
        let (pair, ms) = Bare::connect(&config).await?;
        bare.connect_ms.push(ms);
        pair.close().await;
    }
    for _ in 0..rounds.max(1) {
        let mut echo = a.transport.connect(b_id, opts("echo")).await?;
        ours.rtt_ms
            .extend(rtt_ours(&mut echo, pings / rounds.max(1)).await?);
        echo.close().await;
        let mut sink = a.transport.connect(b_id, opts("sink")).await?;
        ours.tp_1k
            .push(throughput_ours(&mut sink, 1024, total_1k).await?);
        ours.tp_16k
            .push(throughput_ours(&mut sink, 16 * 1024, total_16k).await?);
        sink.close().await;

        let (pair, _) = Bare::connect(&config).await?;
        bare.rtt_ms.extend(pair.rtt(pings / rounds.max(1)).await?);
        bare.tp_1k.push(pair.throughput(1024, total_1k).await?);
        bare.tp_16k
            .push(pair.throughput(16 * 1024, total_16k).await?);
        pair.close().await;
    }
    a.stop().await;

    // TURN relay-only through coturn, when it is installed.
    let (turn_rtt, turn_connect) = match TurnProcess::start().await? {
        Some(turn) => {
            let relay = TransportConfig {
                ice_servers: vec![IceServer::turn(&turn.url(), TURN_USER.0, TURN_USER.1)],
                relay_only: true,
                ..TransportConfig::loopback()
            };
            let a = node_pair(&url, "turn", relay).await?;
            let t0 = Instant::now();
            let mut c = a
                .transport
                .connect("peerns2-bench-turn-b", opts("echo"))
                .await?;
            let connect = t0.elapsed().as_secs_f64() * 1000.0;
            let mut rtt = rtt_ours(&mut c, 200).await?;
            c.close().await;
            a.stop().await;
            (Some(median(&mut rtt)), Some(connect))
        }
        None => (None, None),
    };

    if std::env::var_os("PEERNS_BENCH_SAMPLES").is_some() {
        eprintln!("connect samples (ms): {:?}", ours.connect_ms);
    }
    let r = |x: f64| (x * 1000.0).round() / 1000.0;
    let (c50, c95) = (
        percentile(&mut ours.connect_ms, 50.0),
        percentile(&mut ours.connect_ms, 95.0),
    );
    let (b50, b95) = (
        percentile(&mut bare.connect_ms, 50.0),
        percentile(&mut bare.connect_ms, 95.0),
    );
    let (rtt50, rtt99) = (
        percentile(&mut ours.rtt_ms, 50.0),
        percentile(&mut ours.rtt_ms, 99.0),
    );
    let (brtt50, brtt99) = (
        percentile(&mut bare.rtt_ms, 50.0),
        percentile(&mut bare.rtt_ms, 99.0),
    );
    let (t1, t16) = (median(&mut ours.tp_1k), median(&mut ours.tp_16k));
    let (bt1, bt16) = (median(&mut bare.tp_1k), median(&mut bare.tp_16k));
    let out = json!({
        "connects": connects, "pings": pings, "rounds": rounds,
        "connect_p50_ms": r(c50), "connect_p95_ms": r(c95),
        "rtt_p50_ms": r(rtt50), "rtt_p99_ms": r(rtt99),
        "throughput_1k_mb_s": r(t1), "throughput_16k_mb_s": r(t16),
        "turn_rtt_p50_ms": turn_rtt.map(r), "turn_connect_ms": turn_connect.map(r),
        "baseline_connect_p50_ms": r(b50), "baseline_connect_p95_ms": r(b95),
        "baseline_rtt_p50_ms": r(brtt50), "baseline_rtt_p99_ms": r(brtt99),
        "baseline_throughput_1k_mb_s": r(bt1), "baseline_throughput_16k_mb_s": r(bt16),
        "throughput_16k_ratio": r(t16 / bt16), "throughput_1k_ratio": r(t1 / bt1),
    });
    if json_out {
        println!("{out}");
        return Ok(());
    }
    let turn = |v: Option<f64>| {
        v.map_or("n/a (coturn not installed)".to_string(), |x| {
            format!("{x:.3}")
        })
    };
    println!("transport bench: {connects} connects, {pings} pings, {rounds} rounds (loopback)");
    println!("                          ours (PeerJS layer)   bare webrtc-rs   ratio");
    println!("connect p50 / p95 (ms)    {c50:>7.2} / {c95:<7.2}     {b50:>6.2} / {b95:<6.2}");
    println!(
        "rtt p50 / p99 (ms)        {rtt50:>7.3} / {rtt99:<7.3}     {brtt50:>6.3} / {brtt99:<6.3}"
    );
    println!(
        "throughput 1 KiB (MB/s)   {t1:>17.1}   {bt1:>14.1}   {:.2}",
        t1 / bt1
    );
    println!(
        "throughput 16 KiB (MB/s)  {t16:>17.1}   {bt16:>14.1}   {:.2}",
        t16 / bt16
    );
    println!(
        "TURN relay: connect {} ms, rtt p50 {} ms",
        turn(turn_connect),
        turn(turn_rtt)
    );
    Ok(())
}
