//! `peerns bench signaling`: ID registrations per second and OFFER relay latency, our embedded
//! server against the official PeerJS server, alternating in one run. Raw WebSocket clients are
//! used so the figures measure the servers, not our client's rate limiter.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use peerns_core::signaling::protocol::{Message, MessageType};
use serde_json::json;
use tokio::net::TcpStream;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, tungstenite::Message as Ws};

use super::percentile;
use crate::Result;
use crate::servers::ServerProcess;

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Concurrent clients registering during the registration test.
const WORKERS: usize = 8;

async fn register(base: &str, id: &str) -> Result<Socket> {
    let url = format!("{base}peerjs?key=peerjs&id={id}&token=t{id}&version=1.5.5");
    let (mut ws, _) = tokio_tungstenite::connect_async(url.as_str()).await?;
    match ws.next().await {
        Some(Ok(Ws::Text(t))) if Message::parse(t.as_str())?.kind == MessageType::Open => Ok(ws),
        other => Err(format!("expected OPEN for {id}, got {other:?}").into()),
    }
}

/// Registers `n` fresh IDs with `WORKERS` concurrent clients; returns registrations per second.
async fn registrations(base: &str, n: usize, round: usize) -> Result<f64> {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..WORKERS {
        let base = base.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut held = Vec::new();
            for i in (w..n).step_by(WORKERS) {
                held.push(register(&base, &format!("bench-r{round}-{i}")).await?);
            }
            Result::Ok(held)
        }));
    }
    let mut sockets = Vec::new();
    for t in tasks {
        sockets.extend(t.await??);
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    for mut s in sockets {
        let _ = s.close(None).await;
    }
    Ok(rate)
}

/// Times `n` OFFER relays (send on one socket → receive on the other), in milliseconds.
async fn relays(base: &str, n: usize, round: usize) -> Result<Vec<f64>> {
    let (a_id, b_id) = (format!("bench-a{round}"), format!("bench-b{round}"));
    let mut a = register(base, &a_id).await?;
    let mut b = register(base, &b_id).await?;
    // A realistic data-channel offer: ~1 KiB of SDP.
    let sdp = format!(
        "v=0\r\n{}",
        "a=candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host\r\n".repeat(18)
    );
    let payload = json!({"sdp":{"type":"offer","sdp":sdp},"type":"data","connectionId":"dc_bench",
        "metadata":null,"label":"dc_bench","reliable":true,"serialization":"raw"});
    let text = Message::to(MessageType::Offer, b_id.clone(), Some(payload)).to_text();
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let t0 = Instant::now();
        a.send(Ws::text(text.clone())).await?;
        loop {
            match tokio::time::timeout(Duration::from_secs(5), b.next()).await? {
                Some(Ok(Ws::Text(t))) if Message::parse(t.as_str())?.kind == MessageType::Offer => {
                    break;
                }
                Some(Ok(_)) => continue,
                other => return Err(format!("relay failed: {other:?}").into()),
            }
        }
        samples.push(t0.elapsed().as_secs_f64() * 1000.0);
    }
    let _ = a.close(None).await;
    let _ = b.close(None).await;
    Ok(samples)
}

#[derive(Default)]
struct Figures {
    rates: Vec<f64>,
    relay_ms: Vec<f64>,
}

impl Figures {
    fn rate(&mut self) -> f64 {
        percentile(&mut self.rates, 50.0)
    }
}

pub async fn run(json_out: bool, n_relays: usize, n_regs: usize, rounds: usize) -> Result<()> {
    // The bench relays back to back (~10k frames/s on one socket); the default per-socket flood
    // limit (100/s) would cut it off, so it is raised far above the bench's rate but left active.
    // Every client dials from 127.0.0.1, so the per-address cap is off.
    let embedded = ServerProcess::embedded(&[
        "--max-msgs-per-sec",
        "1000000",
        "--burst",
        "1000000",
        "--max-conns-per-ip",
        "0",
    ])
    .await?;
    let peer = ServerProcess::peer().await?;
    let (mut e, mut p) = (Figures::default(), Figures::default());
    let per_round = n_relays.div_ceil(rounds.max(1));
    for round in 0..rounds.max(1) {
        // Alternate who goes first so warm-up and noise fall on both.
        let order: [(&ServerProcess, &mut Figures); 2] = if round % 2 == 0 {
            [(&embedded, &mut e), (&peer, &mut p)]
        } else {
            [(&peer, &mut p), (&embedded, &mut e)]
        };
        for (server, fig) in order {
            fig.rates
                .push(registrations(&server.url(), n_regs, round).await?);
            fig.relay_ms
                .extend(relays(&server.url(), per_round, round).await?);
        }
    }
    let (e_rate, p_rate) = (e.rate(), p.rate());
    let (e50, e99) = (
        percentile(&mut e.relay_ms, 50.0),
        percentile(&mut e.relay_ms, 99.0),
    );
    let (p50, p99) = (
        percentile(&mut p.relay_ms, 50.0),
        percentile(&mut p.relay_ms, 99.0),
    );
    let out = json!({
        "rounds": rounds,
        "registrations_per_round": n_regs,
        "relays": e.relay_ms.len(),
        "embedded_registrations_per_s": round2(e_rate),
        "peer_registrations_per_s": round2(p_rate),
        "registrations_ratio": round2(e_rate / p_rate),
        "embedded_relay_p50_ms": round3(e50),
        "embedded_relay_p99_ms": round3(e99),
        "peer_relay_p50_ms": round3(p50),
        "peer_relay_p99_ms": round3(p99),
        "relay_p50_ratio": round2(p50 / e50),
        "relay_p99_ratio": round2(p99 / e99),
    });
    if json_out {
        println!("{out}");
    } else {
        println!(
            "signaling bench ({rounds} alternating rounds, {n_regs} registrations and {per_round} relays per round)"
        );
        println!("                      embedded      peer (npm)   ratio (≥1 = embedded better)");
        println!(
            "registrations/s     {e_rate:>10.1}  {p_rate:>12.1}   {:.2}",
            e_rate / p_rate
        );
        println!(
            "relay p50 (ms)      {e50:>10.3}  {p50:>12.3}   {:.2}",
            p50 / e50
        );
        println!(
            "relay p99 (ms)      {e99:>10.3}  {p99:>12.3}   {:.2}",
            p99 / e99
        );
    }
    Ok(())
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
