//! `peerns bench rpc`: two nodes (real profiles and sessions) through a local signaling server;
//! the desktop serves `/incoming` to the phone at trust 3. RPC round trip (p50) and requests/s
//! with a window in flight, an upload as `peerns backup` does it next to the same bytes as a
//! 1:1 file transfer, and the baby monitor: request to the stream's call connected.

use std::time::{Duration, Instant};

use peerns_core::node::{CallState, Kinds, NodeEvent, ServeConfig, Trust};
use peerns_core::rpc::store as rpc_store;
use serde_json::json;

use super::messaging::{file, start, until};
use crate::Result;
use crate::servers::ServerProcess;

const MB: f64 = 1_000_000.0;
const TIMEOUT: Duration = Duration::from_secs(30);

/// Runs the benchmark and prints a table or one JSON object.
pub async fn run(json_out: bool, calls: usize, megabytes: usize) -> Result<()> {
    let server = ServerProcess::embedded(&[]).await?;
    let url = server.url();
    let (da, db, root) = (
        tempfile::tempdir()?,
        tempfile::tempdir()?,
        tempfile::tempdir()?,
    );
    let a = start(&url, da.path(), "phone").await?;
    let b = start(&url, db.path(), "desktop").await?;
    let (mut ea, mut eb) = (a.subscribe(), b.subscribe());
    let (fa, fb) = (a.identity().fingerprint, b.identity().fingerprint);
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
    b.set_trust(&fa, Trust::FullAccess).await?;
    let scopes: Vec<_> = [
        "fs:write:/incoming/**",
        "sys:status:*",
        "media:stream:camera:environment",
    ]
    .iter()
    .map(|s| peerns_core::rpc::scope::Scope::parse(s))
    .collect::<std::result::Result<_, _>>()
    .map_err(|e| e.message)?;
    let fpa = fa.parse().map_err(|_| "fingerprint")?;
    peerns_core::store::Profile::open_desktop(db.path())?
        .store()
        .with_conn(|c| Ok(rpc_store::grant(c, &fpa, &scopes, 1)))??;
    b.rpc_serve(ServeConfig {
        roots: vec![("incoming".into(), root.path().into())],
        max_file: 0,
    })?;
    a.connect(&fb).await?;

    // Round trips, one at a time.
    let status = json!({"what": "network"});
    let mut rtts = vec![];
    for _ in 0..calls {
        let t = Instant::now();
        a.rpc_call(&fb, "sys.status", status.clone(), TIMEOUT)
            .await?
            .outcome
            .map_err(|e| e.message)?;
        rtts.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let p50 = super::percentile(&mut rtts, 50.0);
    // Requests per second, 64 in flight.
    let t = Instant::now();
    let mut inflight = std::collections::VecDeque::new();
    for _ in 0..calls {
        if inflight.len() >= 64 {
            let rx: tokio::sync::oneshot::Receiver<_> = inflight.pop_front().expect("non-empty");
            rx.await?;
        }
        let req = a.rpc_sign(&fb, "sys.status", status.clone()).await?;
        inflight.push_back(a.rpc_start(&fb, &req).await?);
    }
    for rx in inflight {
        rx.await?;
    }
    let per_s = calls as f64 / t.elapsed().as_secs_f64();

    // The same bytes by backup upload and by 1:1 file transfer.
    let total = megabytes << 20;
    let src = da.path().join("bench.bin");
    std::fs::write(
        &src,
        (0..total)
            .map(|i| (i * 7 + i / 4099) as u8)
            .collect::<Vec<u8>>(),
    )?;
    let item = crate::rpc::Item {
        local: src.clone(),
        remote: "/incoming/bench.bin".into(),
    };
    let t = Instant::now();
    crate::rpc::upload(&a, &fb, &item, total as u64, 0, false).await?;
    let backup_mb_s = total as f64 / MB / t.elapsed().as_secs_f64();
    let (file_mb_s, _) = file(&a, &fb, &mut eb, &src, total).await?;

    // The monitor: request to the stream's call connected on the viewer.
    b.rpc_arm_camera(Some("environment"))?;
    let t = Instant::now();
    a.rpc_call(
        &fb,
        "media.stream",
        json!({"facing": "environment"}),
        TIMEOUT,
    )
    .await?
    .outcome
    .map_err(|e| e.message)?;
    let call = until(&mut ea, |e| match e {
        NodeEvent::IncomingCall { call, .. } => Some(call.clone()),
        _ => None,
    })
    .await?;
    a.accept_call(&call, Kinds::default())?;
    until(&mut ea, |e| {
        matches!(
            e,
            NodeEvent::CallState {
                state: CallState::Connected,
                ..
            }
        )
        .then_some(())
    })
    .await?;
    let monitor_connected_ms = t.elapsed().as_secs_f64() * 1000.0;
    let _ = a.hang_up(&call);

    a.stop().await;
    b.stop().await;
    drop(server);
    if json_out {
        println!(
            "{}",
            json!({
                "rpc_rtt_p50_ms": p50,
                "rpc_per_s": per_s,
                "backup_mb_s": backup_mb_s,
                "baseline_file_mb_s": file_mb_s,
                "backup_ratio": backup_mb_s / file_mb_s,
                "monitor_connected_ms": monitor_connected_ms,
                "calls": calls, "megabytes": megabytes,
            })
        );
    } else {
        println!("rpc bench (loopback)");
        println!("  RPC round trip p50, ms (sys.status):        {p50:.2}");
        println!("  RPC requests/s (64 in flight):              {per_s:.0}");
        println!("  backup upload MB/s (40 KiB chunks, 16 in flight): {backup_mb_s:.1}");
        println!("  1:1 file transfer MB/s (same bytes):        {file_mb_s:.1}");
        println!("  monitor: request to call connected, ms:     {monitor_connected_ms:.0}");
    }
    Ok(())
}
