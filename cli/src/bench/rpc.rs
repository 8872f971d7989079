//! `peerns bench rpc`: two nodes (real profiles and sessions) through a local signaling server;
//! the desktop serves `/incoming` to the phone at trust 3. RPC round trip (p50) and requests/s
//! with a window in flight; a file backed up as `peerns backup` does it (binary chunks), the
//! same bytes as `fs.write` JSON chunks and as a 1:1 file transfer (medians of alternating
//! rounds); and the baby monitor: request to the stream's call connected and to the first
//! picture the viewer decodes.

use std::path::Path;
use std::time::{Duration, Instant};

use peerns_core::media::track::MediaSink;
use peerns_core::node::{CallState, Kinds, LocalFile, Node, NodeEvent, ServeConfig, Trust};
use peerns_core::rpc::b64;
use peerns_core::rpc::fs::MAX_CHUNK;
use peerns_core::rpc::store as rpc_store;
use peerns_core::transport::MediaKind;
use peerns_media_desktop::video::H264Decoder;
use serde_json::json;

use crate::call_media::Sources;

use super::messaging::{file, start, until};
use crate::Result;
use crate::servers::ServerProcess;

const MB: f64 = 1_000_000.0;
const TIMEOUT: Duration = Duration::from_secs(30);

/// Runs the benchmark and prints a table or one JSON object.
pub async fn run(json_out: bool, calls: usize, megabytes: usize, rounds: usize) -> Result<()> {
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
        quotas: vec![],
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

    // The same bytes by backup (binary chunks), by the JSON form of `fs.write` and by 1:1
    // file transfer, alternating, `rounds` times.
    let total = megabytes << 20;
    let src = da.path().join("bench.bin");
    std::fs::write(
        &src,
        (0..total)
            .map(|i| (i * 7 + i / 4099) as u8)
            .collect::<Vec<u8>>(),
    )?;
    let (mut backup, mut json_form, mut file_tx) = (vec![], vec![], vec![]);
    for round in 0..rounds {
        let t = Instant::now();
        let remote = format!("/incoming/backup-{round}.bin");
        let done = a
            .rpc_backup_file(&fb, &LocalFile::Path(src.clone()), &remote, &mut |_, _| {})
            .await?;
        if done.sent != total as u64 {
            return Err(format!("the backup sent {} bytes", done.sent).into());
        }
        backup.push(total as f64 / MB / t.elapsed().as_secs_f64());
        let t = Instant::now();
        json_upload(&a, &fb, &src, &format!("/incoming/json-{round}.bin")).await?;
        json_form.push(total as f64 / MB / t.elapsed().as_secs_f64());
        file_tx.push(file(&a, &fb, &mut eb, &src, total).await?.0);
    }
    let backup_mb_s = super::percentile(&mut backup, 50.0);
    let json_mb_s = super::percentile(&mut json_form, 50.0);
    let file_mb_s = super::percentile(&mut file_tx, 50.0);

    // The monitor: request to the stream's call connected, and to the first picture the
    // viewer decodes (the armed side sends the test pattern from the moment the call connects).
    b.rpc_arm_camera(Some("environment"))?;
    let mut eb_calls = b.subscribe();
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
    let (camera, first_frame) = tokio::join!(
        async {
            until(&mut eb_calls, |e| match e {
                NodeEvent::CallState {
                    call,
                    state: CallState::Connected,
                    ..
                } => Some(call.clone()),
                _ => None,
            })
            .await?;
            let sources = Sources {
                video: Some("test".into()),
                audio: true,
            };
            crate::call_media::start(&b, &call, &sources, 0, None).await
        },
        async {
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
            let connected = t.elapsed().as_secs_f64() * 1000.0;
            let first = first_picture(&a, &call).await?;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>((connected, first))
        }
    );
    let camera = camera?;
    let (monitor_connected_ms, first_at) = first_frame?;
    let monitor_first_frame_ms = first_at.duration_since(t).as_secs_f64() * 1000.0;
    let _ = a.hang_up(&call);
    camera.finish().await?;

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
                "backup_json_mb_s": json_mb_s,
                "baseline_file_mb_s": file_mb_s,
                "backup_ratio": backup_mb_s / file_mb_s,
                "monitor_connected_ms": monitor_connected_ms,
                "monitor_first_frame_ms": monitor_first_frame_ms,
                "calls": calls, "megabytes": megabytes, "rounds": rounds,
            })
        );
    } else {
        println!("rpc bench (loopback)");
        println!("  RPC round trip p50, ms (sys.status):        {p50:.2}");
        println!("  RPC requests/s (64 in flight):              {per_s:.0}");
        println!("  backup MB/s (binary chunks, median):        {backup_mb_s:.1}");
        println!("  fs.write JSON chunks MB/s (median):         {json_mb_s:.1}");
        println!("  1:1 file transfer MB/s (same bytes):        {file_mb_s:.1}");
        println!("  monitor: request to call connected, ms:     {monitor_connected_ms:.0}");
        println!("  monitor: request to first picture, ms:      {monitor_first_frame_ms:.0}");
    }
    Ok(())
}

/// Uploads `src` as `fs.write` requests with base64 JSON chunks, 16 in flight (the form before
/// binary chunks; kept here to compare).
async fn json_upload(a: &Node, to: &str, src: &Path, remote: &str) -> Result<()> {
    let data = std::fs::read(src)?;
    let total = data.len() as u64;
    let mut inflight = std::collections::VecDeque::new();
    let mut chunks = data.chunks(MAX_CHUNK).enumerate();
    loop {
        while inflight.len() < 16 {
            let Some((i, c)) = chunks.next() else { break };
            let params = json!({"path": remote, "data_b64": b64::encode(c),
                                "offset": (i * MAX_CHUNK) as u64, "total": total,
                                "overwrite": true});
            let req = a.rpc_sign(to, "fs.write", params).await?;
            inflight.push_back(a.rpc_start(to, &req).await?);
        }
        let Some(rx) = inflight.pop_front() else {
            return Ok(());
        };
        tokio::time::timeout(TIMEOUT, rx)
            .await??
            .outcome
            .map_err(|e| e.message)?;
    }
}

/// When the viewer decodes the first picture of call `call`'s video.
async fn first_picture(a: &Node, call: &str) -> Result<Instant> {
    let conn = a.call_media(call, TIMEOUT).await?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    let mut tx = Some(tx);
    let mut sinks = vec![];
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let track = tokio::time::timeout_at(deadline, conn.next_remote_track())
            .await?
            .ok_or("the stream ended without video")?;
        if track.kind() != MediaKind::Video {
            sinks.push(MediaSink::start(track, |_| {}));
            continue;
        }
        let mut dec = H264Decoder::new()?;
        sinks.push(MediaSink::start(track, move |f| {
            if tx.is_some() && matches!(dec.decode(&f.data), Ok(Some(_))) {
                let _ = tx.take().map(|tx| tx.send(Instant::now()));
            }
        }));
        break;
    }
    Ok(tokio::time::timeout_at(deadline, rx).await??)
}
