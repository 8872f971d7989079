//! `peerns bench messaging`: two nodes (real profiles, authenticated sessions, SQLite) through a
//! local signaling server. Messages/s end to end (stored by the sender, encrypted, stored by
//! the receiver, acknowledged), MB/s of a file (copied into the profile and hashed, signed
//! manifest, encrypted chunks written and synced, verified) and of raw session data, side by
//! side with the bare transport (same size messages on a plain data connection) in one run.

use std::time::{Duration, Instant};

use peerns_core::node::{Node, NodeConfig, NodeEvent, Trust};
use peerns_core::transport::TransportConfig;
use serde_json::json;
use tokio::sync::mpsc::UnboundedReceiver;

use super::transport::{bare_sink_throughput, transport_sink};
use crate::Result;
use crate::servers::ServerProcess;

const MB: f64 = 1_000_000.0;
/// Size of each data frame (the largest a session frame carries).
const BLOCK: usize = 60 * 1024;

/// A loopback node on `dir`, registered at `url`.
pub(super) async fn start(url: &str, dir: &std::path::Path, name: &str) -> Result<Node> {
    let node = Node::start(NodeConfig {
        profile_dir: dir.to_owned(),
        signaling_url: url.to_owned(),
        transport: TransportConfig::loopback(),
        display_name: Some(name.into()),
        platform: Default::default(),
        discovery: Default::default(),
    })
    .await?;
    if !node.wait_connected(Duration::from_secs(20)).await {
        return Err(format!("{name} did not register at {url}").into());
    }
    Ok(node)
}

pub(super) async fn until<T>(
    rx: &mut UnboundedReceiver<NodeEvent>,
    mut f: impl FnMut(&NodeEvent) -> Option<T>,
) -> Result<T> {
    loop {
        match tokio::time::timeout(Duration::from_secs(60), rx.recv()).await {
            Ok(Some(ev)) => {
                if let Some(t) = f(&ev) {
                    return Ok(t);
                }
            }
            _ => return Err("the bench stalled".into()),
        }
    }
}

/// `n` messages from `a` to `b`: messages/s until `b` stored the last one, and messages/s of
/// the sending calls alone (storing in the outbox).
async fn messages(
    a: &Node,
    fb: &str,
    eb: &mut UnboundedReceiver<NodeEvent>,
    n: usize,
) -> Result<(f64, f64)> {
    let t0 = Instant::now();
    let mut got = 0;
    for i in 0..n {
        a.send_message(fb, &format!("message {i} of the bench"))
            .await?;
        while let Ok(ev) = eb.try_recv() {
            got += usize::from(matches!(ev, NodeEvent::MessageReceived { .. }));
        }
    }
    let stored = n as f64 / t0.elapsed().as_secs_f64();
    while got < n {
        until(eb, |e| {
            matches!(e, NodeEvent::MessageReceived { .. }).then_some(())
        })
        .await?;
        got += 1;
    }
    Ok((n as f64 / t0.elapsed().as_secs_f64(), stored))
}

/// `total` bytes of session data from `a` to `b`; MB/s until `b` has all of it.
async fn session_data(
    a: &Node,
    fb: &str,
    eb: &mut UnboundedReceiver<NodeEvent>,
    total: usize,
) -> Result<f64> {
    let block = vec![0x5Au8; BLOCK];
    let t0 = Instant::now();
    let mut got = 0usize;
    for _ in 0..total / BLOCK {
        a.send(fb, block.clone()).await?;
        while let Ok(ev) = eb.try_recv() {
            if let NodeEvent::DataReceived { data, .. } = ev {
                got += data.len();
            }
        }
    }
    while got < total / BLOCK * BLOCK {
        got += until(eb, |e| match e {
            NodeEvent::DataReceived { data, .. } => Some(data.len()),
            _ => None,
        })
        .await?;
    }
    Ok(got as f64 / MB / t0.elapsed().as_secs_f64())
}

/// A `total`-byte file from `a` to `b`; MB/s from `send_file` (copy into the profile and hash)
/// until `b` verified the whole file and exposed it, and the milliseconds `send_file` took.
pub(super) async fn file(
    a: &Node,
    fb: &str,
    eb: &mut UnboundedReceiver<NodeEvent>,
    path: &std::path::Path,
    total: usize,
) -> Result<(f64, f64)> {
    let t0 = Instant::now();
    let m = a.send_file(fb, &path.to_string_lossy()).await?;
    let prepared = t0.elapsed().as_secs_f64() * 1000.0;
    let id = hex::encode(m.id);
    until(eb, |e| match e {
        NodeEvent::FileReceived { id: got, .. } if *got == id => Some(()),
        _ => None,
    })
    .await?;
    Ok((total as f64 / MB / t0.elapsed().as_secs_f64(), prepared))
}

/// Runs the benchmark and prints a table or one JSON object.
pub async fn run(json_out: bool, count: usize, megabytes: usize, rounds: usize) -> Result<()> {
    let server = ServerProcess::embedded(&[]).await?;
    let url = server.url();
    let (da, db) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let a = start(&url, da.path(), "bench-a").await?;
    let b = start(&url, db.path(), "bench-b").await?;
    let (mut ea, mut eb) = (a.subscribe(), b.subscribe());
    let fa = a.identity().fingerprint;
    a.request_contact(&b.share_link()).await?;
    until(&mut eb, |e| {
        matches!(e, NodeEvent::ContactRequest { .. }).then_some(())
    })
    .await?;
    b.accept_request(&fa).await?;
    until(&mut ea, |e| {
        matches!(e, NodeEvent::ContactAdded { .. }).then_some(())
    })
    .await?;
    drop(ea);
    let fb = b.identity().fingerprint;
    // Known contacts are enough for messages and data.
    b.set_trust(&fa, Trust::Known).await?;
    a.connect(&fb).await?;

    let sink = transport_sink(&url).await?;
    let total = (megabytes << 20) / BLOCK * BLOCK;
    let src = da.path().join("bench.bin");
    std::fs::write(&src, vec![0xC3u8; total])?;
    let (mut msgs, mut stored) = (vec![], vec![]);
    let (mut data, mut files, mut bare, mut prep) = (vec![], vec![], vec![], vec![]);
    for _ in 0..rounds.max(1) {
        let (m, s) = messages(&a, &fb, &mut eb, count).await?;
        msgs.push(m);
        stored.push(s);
        data.push(session_data(&a, &fb, &mut eb, total).await?);
        let (mb_s, prep_ms) = file(&a, &fb, &mut eb, &src, total).await?;
        files.push(mb_s);
        prep.push(prep_ms);
        bare.push(bare_sink_throughput(&sink, BLOCK, total).await?);
    }
    sink.stop().await;
    a.stop().await;
    b.stop().await;
    drop(server);
    let prep = super::percentile(&mut prep, 50.0);
    let (msgs, stored, data, file_mb_s, bare) = (
        super::percentile(&mut msgs, 50.0),
        super::percentile(&mut stored, 50.0),
        super::percentile(&mut data, 50.0),
        super::percentile(&mut files, 50.0),
        super::percentile(&mut bare, 50.0),
    );
    if json_out {
        println!(
            "{}",
            json!({
                "msgs_per_s": msgs,
                "send_calls_per_s": stored,
                "file_mb_s": file_mb_s,
                "file_ratio": file_mb_s / bare,
                "file_prepare_ms": prep,
                "session_data_mb_s": data,
                "baseline_file_mb_s": bare,
                "session_data_ratio": data / bare,
                "messages": count, "megabytes": megabytes, "block_bytes": BLOCK, "rounds": rounds,
            })
        );
    } else {
        println!("messaging bench (median of {rounds} rounds, loopback)");
        println!("  messages/s end to end (stored, encrypted, stored, acked): {msgs:.0}");
        println!("  send_message calls/s (storing in the outbox):           {stored:.0}");
        println!("  session data MB/s ({BLOCK} B frames, encrypted):         {data:.1}");
        println!("  file MB/s (copy+hash, chunks, write, verify):           {file_mb_s:.1}");
        println!("  of which send_file (copy into the profile + hash), ms:  {prep:.0}");
        println!("  bare transport MB/s (same frames, no session):          {bare:.1}");
        println!(
            "  ratio file / bare:                                      {:.2}",
            file_mb_s / bare
        );
        println!(
            "  ratio session / bare:                                   {:.2}",
            data / bare
        );
    }
    Ok(())
}
