//! Signed RPC from the shell (decision 0014): `peerns rpc grant|revoke|grants` (offline),
//! `peerns rpc call` (prints the `RPC_RES` object), `peerns serve` (serves the chosen roots and
//! prints the audit events), `peerns backup` (uploads into the peer's `/incoming`, resumable,
//! skipping files whose content hash is there already) and `peerns monitor` (the baby-monitor
//! viewer: asks for the camera stream and records the call that follows). `serve --arm-mic`
//! feeds a microphone's level to the monitor's sound alert.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use peerns_core::node::{
    BackupOptions, BackupProgress, CallState, NodeEvent, ServeConfig, backup_plan,
};
use peerns_core::rpc::fs::Roots;
use peerns_core::rpc::scope::Scope;
use peerns_core::rpc::store as rpc_store;
use peerns_core::rpc::wire::{Request, Response};
use peerns_core::store::Profile;
use peerns_media_desktop::mic::Mic;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::Result;
use crate::messaging::{NetArgs, print_event, profile_dir, start};

/// How long one request may wait for its answer.
const TIMEOUT: Duration = Duration::from_secs(30);

/// `peerns rpc ...`.
#[derive(clap::Subcommand)]
pub enum RpcCmd {
    /// Grant scopes to a contact at trust 3 (offline), e.g. `fs:write:/incoming/**`.
    Grant {
        /// The contact's fingerprint.
        fingerprint: String,
        /// `category:action:resource` (fs, db, media, sys).
        #[arg(required = true)]
        scopes: Vec<String>,
    },
    /// Revoke some or all scopes of a contact (offline).
    Revoke {
        /// The contact's fingerprint.
        fingerprint: String,
        /// Scopes to revoke; none = all.
        scopes: Vec<String>,
    },
    /// List grants (offline).
    Grants {
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Sign and send one request; print the answer.
    Call(CallArgs),
    /// Print the audit log (offline), oldest first.
    Audit {
        /// Newest entries to show.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
}

/// `peerns rpc call`.
#[derive(clap::Args)]
pub struct CallArgs {
    #[command(flatten)]
    net: NetArgs,
    /// The serving contact's fingerprint.
    #[arg(long)]
    to: String,
    /// e.g. `fs.list`.
    method: String,
    /// Parameters as a JSON object.
    #[arg(default_value = "{}")]
    params: String,
    /// Print the `RPC_RES` object as one JSON line.
    #[arg(long)]
    json: bool,
    /// Send the same signed request a second time (shows replay protection).
    #[arg(long)]
    replay: bool,
    /// Also write the signed request to FILE.
    #[arg(long, value_name = "FILE")]
    save_request: Option<PathBuf>,
    /// Send the signed request stored in FILE as it is (instead of METHOD/PARAMS).
    #[arg(long, value_name = "FILE")]
    send_request: Option<PathBuf>,
}

/// `peerns serve`.
#[derive(clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    net: NetArgs,
    /// A root: request paths `/NAME/...` map into DIR (repeatable).
    #[arg(long = "root", value_name = "NAME=DIR", value_parser = Roots::parse_arg)]
    roots: Vec<(String, PathBuf)>,
    /// Arm the camera (`test` pattern or a `.y4m` file): `media.stream` may start it.
    #[arg(long, value_name = "SOURCE")]
    arm_camera: Option<String>,
    /// Listen to a microphone for the sound alert: `test` (quiet, a loud burst 8 s after the
    /// start, again every minute), `alsa:DEVICE`, `pulse:DEVICE` or an audio file (ffmpeg).
    #[arg(long, value_name = "SOURCE", requires = "arm_camera")]
    arm_mic: Option<String>,
    /// The sound alert's threshold, in dBFS (with `--arm-mic`).
    #[arg(long, default_value_t = -30.0, allow_hyphen_values = true)]
    alert_dbfs: f32,
    /// Largest file an upload may create, in bytes.
    #[arg(long)]
    max_file: Option<u64>,
    /// A size quota for a root, e.g. `incoming=20G` (K, M, G, T: powers of 1024; repeatable).
    #[arg(long = "quota", value_name = "NAME=SIZE", value_parser = parse_quota)]
    quotas: Vec<(String, u64)>,
    /// Print one JSON object per line.
    #[arg(long)]
    json: bool,
    /// Stop after this many seconds; default: run until Ctrl-C.
    #[arg(long)]
    seconds: Option<f64>,
}

/// `peerns backup`.
#[derive(clap::Args)]
pub struct BackupArgs {
    #[command(flatten)]
    net: NetArgs,
    /// The home desktop's fingerprint.
    #[arg(long)]
    to: String,
    /// Files or folders to back up.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// The remote root to write into.
    #[arg(long, default_value = "/incoming")]
    into: String,
    /// Print progress and the summary as JSON lines.
    #[arg(long)]
    json: bool,
}

/// `peerns monitor`.
#[derive(clap::Args)]
pub struct MonitorArgs {
    #[command(flatten)]
    net: NetArgs,
    /// The armed device's fingerprint.
    #[arg(long)]
    to: String,
    /// Which camera.
    #[arg(long, default_value = "environment")]
    facing: String,
    /// Record the stream to FILE (.mkv).
    #[arg(long)]
    record: Option<PathBuf>,
    /// Watch this long, then hang up.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Print JSON lines.
    #[arg(long)]
    json: bool,
}

fn open_profile(profile: Option<PathBuf>) -> Result<Profile> {
    Ok(Profile::open_desktop(&profile_dir(profile)?)?)
}

/// `NAME=SIZE`, the size in bytes or with a K, M, G or T suffix (powers of 1024).
fn parse_quota(s: &str) -> std::result::Result<(String, u64), String> {
    let (name, size) = s.split_once('=').ok_or("a quota is NAME=SIZE")?;
    let (digits, shift) = match size.as_bytes().last() {
        Some(b'K' | b'k') => (&size[..size.len() - 1], 10),
        Some(b'M' | b'm') => (&size[..size.len() - 1], 20),
        Some(b'G' | b'g') => (&size[..size.len() - 1], 30),
        Some(b'T' | b't') => (&size[..size.len() - 1], 40),
        _ => (size, 0),
    };
    let n: u64 = digits.parse().map_err(|_| format!("size {size:?}"))?;
    let bytes = n
        .checked_mul(1 << shift)
        .ok_or_else(|| format!("size {size:?} is too large"))?;
    Ok((name.to_owned(), bytes))
}

fn parse_scopes(list: &[String]) -> Result<Vec<Scope>> {
    list.iter()
        .map(|s| Scope::parse(s).map_err(|e| format!("{s}: {}", e.message).into()))
        .collect()
}

/// `peerns rpc ...`.
pub async fn rpc(cmd: RpcCmd, profile: Option<PathBuf>) -> Result<()> {
    match cmd {
        RpcCmd::Grant {
            fingerprint,
            scopes,
        } => {
            let fp = fingerprint
                .trim()
                .parse()
                .map_err(|_| "not a fingerprint")?;
            let scopes = parse_scopes(&scopes)?;
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_millis() as u64;
            open_profile(profile)?
                .store()
                .with_conn(|c| Ok(rpc_store::grant(c, &fp, &scopes, now)))??;
            Ok(())
        }
        RpcCmd::Revoke {
            fingerprint,
            scopes,
        } => {
            let fp = fingerprint
                .trim()
                .parse()
                .map_err(|_| "not a fingerprint")?;
            let scopes = parse_scopes(&scopes)?;
            let list = (!scopes.is_empty()).then_some(scopes.as_slice());
            let n = open_profile(profile)?
                .store()
                .with_conn(|c| Ok(rpc_store::revoke(c, &fp, list)))??;
            println!("revoked {n}");
            Ok(())
        }
        RpcCmd::Grants { json } => {
            let grants = open_profile(profile)?
                .store()
                .with_conn(|c| rpc_store::grants(c))?;
            for g in grants {
                if json {
                    println!("{}", serde_json::to_string(&g)?);
                } else {
                    println!("{} {}", g.fingerprint, g.scope);
                }
            }
            Ok(())
        }
        RpcCmd::Audit { limit } => {
            let log = open_profile(profile)?
                .store()
                .with_conn(|c| rpc_store::audit_log(c, limit.clamp(1, 10_000)))?;
            for e in log {
                println!("{}", serde_json::to_string(&e)?);
            }
            Ok(())
        }
        RpcCmd::Call(a) => call(a, profile).await,
    }
}

async fn call(a: CallArgs, profile: Option<PathBuf>) -> Result<()> {
    let node = start(&a.net, profile).await?;
    let result = async {
        let as_object = a.send_request.is_some() || a.save_request.is_some() || a.replay;
        if !as_object {
            // Signed and sent on one link: a newer link in between would refuse it (403).
            let params: Value = serde_json::from_str(&a.params)?;
            let res = node.rpc_call(&a.to, &a.method, params, TIMEOUT).await?;
            print_response(&res, a.json);
            return Ok(res.outcome.is_ok());
        }
        // The signed request itself is kept, sent twice or read from a file.
        let req = match &a.send_request {
            Some(f) => {
                let bytes = std::fs::read(f)?;
                Request::decode(&bytes).map_err(|(_, e)| format!("{f:?}: {}", e.message))?
            }
            None => {
                let params: Value = serde_json::from_str(&a.params)?;
                node.rpc_sign(&a.to, &a.method, params).await?
            }
        };
        if let Some(f) = &a.save_request {
            std::fs::write(f, serde_json::to_vec(&req.to_json())?)?;
        }
        let times = if a.replay { 2 } else { 1 };
        let mut ok = true;
        for _ in 0..times {
            let res = node.rpc_send(&a.to, &req, TIMEOUT).await?;
            ok &= res.outcome.is_ok();
            print_response(&res, a.json);
        }
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(ok)
    }
    .await;
    node.stop().await;
    match result? {
        true => Ok(()),
        false => Err("the request was refused".into()),
    }
}

fn print_response(res: &Response, json: bool) {
    if json {
        println!("{}", res.to_json());
    } else {
        match &res.outcome {
            Ok(v) => println!("{}", serde_json::to_string_pretty(v).unwrap_or_default()),
            Err(e) => println!("error {}: {}", e.code, e.message),
        }
    }
}

/// `peerns serve`.
pub async fn serve(a: ServeArgs, profile: Option<PathBuf>) -> Result<()> {
    if let Some(v) = &a.arm_camera {
        crate::call_media::check_video(Some(v))?;
    }
    let mic = a.arm_mic.as_deref().map(Mic::open).transpose()?;
    let node = Arc::new(start(&a.net, profile).await?);
    node.rpc_serve(ServeConfig {
        roots: a.roots.clone(),
        max_file: a.max_file.unwrap_or(0),
        quotas: a.quotas.clone(),
    })?;
    if a.arm_camera.is_some() {
        node.rpc_arm_camera(Some("environment"))?;
    }
    if mic.is_some() {
        node.rpc_sound_alert(Some(a.alert_dbfs))?;
    }
    let mut levels = mic.map(mic_levels);
    let mut loud = false;
    let mut audit = node.rpc_audit_events();
    let mut events = node.subscribe();
    let id = node.identity();
    let roots: Vec<&str> = a.roots.iter().map(|(n, _)| n.as_str()).collect();
    println!(
        "{}",
        json!({"event": "serving", "fingerprint": id.fingerprint, "peer_id": id.peer_id,
               "link": node.share_link(), "roots": roots, "armed": a.arm_camera.is_some(),
               "mic": a.arm_mic})
    );
    let until = a
        .seconds
        .map(|s| Instant::now() + Duration::from_secs_f64(s));
    let sleep_until = async {
        match until {
            Some(t) => tokio::time::sleep_until(t.into()).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(sleep_until);
    let mut media = vec![];
    loop {
        tokio::select! {
            e = audit.recv() => {
                let Some(e) = e else { break };
                if a.json {
                    let mut v = serde_json::to_value(&e)?;
                    v["event"] = json!("rpc");
                    println!("{v}");
                } else {
                    println!("rpc {} {} {} {} {}", e.fingerprint, e.method, e.target, e.code, e.message);
                }
            }
            ev = events.recv() => {
                let Some(ev) = ev else { break };
                print_event(a.json, &ev);
                // The monitor stream: our call to the viewer connected; only now the camera starts.
                if let (Some(source), NodeEvent::CallState { call, state: CallState::Connected, .. }) = (&a.arm_camera, &ev) {
                    println!("{}", json!({"event": "camera_started", "call": call, "source": source}));
                    let sources = crate::call_media::Sources { video: Some(source.clone()), audio: true };
                    let task = crate::call_media::serve(node.clone(), call.clone(), sources, 0, None, a.json, None);
                    media.push(tokio::spawn(async move {
                        if let Err(e) = task.await {
                            eprintln!("monitor media: {e}");
                        }
                    }));
                }
            }
            level = next_level(&mut levels) => match level {
                Some(Ok(dbfs)) => {
                    node.rpc_sound_level(dbfs);
                    // Each loud stretch once, when it starts.
                    if dbfs >= a.alert_dbfs && !loud {
                        if a.json {
                            let j = json!({"event": "sound", "dbfs": dbfs, "unix_ms": unix_ms()});
                            println!("{j}");
                        } else {
                            println!("sound {dbfs:.1} dBFS");
                        }
                    }
                    loud = dbfs >= a.alert_dbfs;
                }
                Some(Err(e)) => {
                    eprintln!("microphone: {e}");
                    levels = None;
                }
                None => levels = None,
            },
            _ = crate::shutdown_signal() => break,
            _ = &mut sleep_until => break,
        }
    }
    if let Some(c) = node.active_call() {
        let _ = node.hang_up(&c.call);
    }
    for m in media {
        let _ = tokio::time::timeout(Duration::from_secs(5), m).await;
    }
    node.stop().await;
    Ok(())
}

type Levels = mpsc::Receiver<std::result::Result<f32, String>>;

/// The microphone's levels, read on a thread of their own until the receiver is dropped.
fn mic_levels(mut mic: Mic) -> Levels {
    let (tx, rx) = mpsc::channel(16);
    std::thread::spawn(move || {
        loop {
            let level = mic.next_level().map_err(|e| e.to_string());
            let end = level.is_err();
            if tx.blocking_send(level).is_err() || end {
                return;
            }
        }
    });
    rx
}

/// The next level, if there is a microphone.
async fn next_level(levels: &mut Option<Levels>) -> Option<std::result::Result<f32, String>> {
    match levels {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// `peerns backup`.
pub async fn backup(a: BackupArgs, profile: Option<PathBuf>) -> Result<()> {
    // Checked before going online.
    backup_plan(&a.paths, &a.into)?;
    let node = start(&a.net, profile).await?;
    let started = Instant::now();
    let mut last_report = Instant::now();
    let mut progress = |p: &BackupProgress| {
        if a.json && last_report.elapsed() > Duration::from_secs(1) {
            last_report = Instant::now();
            println!(
                "{}",
                json!({"event": "progress", "path": p.path, "bytes": p.bytes, "size": p.size,
                       "files_done": p.files_done, "files_total": p.files_total})
            );
        }
    };
    let result = node
        .rpc_backup(
            &a.to,
            &a.paths,
            &a.into,
            BackupOptions::default(),
            &mut progress,
        )
        .await;
    node.stop().await;
    let s = result?;
    let summary = json!({"files": s.files, "bytes": s.bytes, "skipped": s.skipped,
                         "left_out": s.left_out, "unreadable": s.unreadable,
                         "seconds": started.elapsed().as_secs_f64()});
    println!("{summary}");
    Ok(())
}

/// `peerns monitor`.
pub async fn monitor(a: MonitorArgs, profile: Option<PathBuf>) -> Result<()> {
    let node = Arc::new(start(&a.net, profile).await?);
    let mut events = node.subscribe();
    let asked = Instant::now();
    let res = node
        .rpc_call(&a.to, "media.stream", json!({"facing": a.facing}), TIMEOUT)
        .await?;
    print_response(&res, a.json);
    if let Err(e) = res.outcome {
        node.stop().await;
        return Err(format!("media.stream refused: {} {}", e.code, e.message).into());
    }
    let to = a.to.trim().to_lowercase();
    let mut media = None;
    let mut hang_up_at = None;
    let result: Result<()> = async {
        loop {
            let sleep = async {
                match hang_up_at {
                    Some(t) => tokio::time::sleep_until(t).await,
                    None => tokio::time::sleep(TIMEOUT).await,
                }
            };
            tokio::select! {
                ev = events.recv() => {
                    let Some(ev) = ev else { break };
                    match &ev {
                        NodeEvent::IncomingCall { call, fingerprint, .. } if *fingerprint == to => {
                            node.accept_call(call, Default::default())?;
                        }
                        NodeEvent::CallState { call, state: CallState::Connected, .. } => {
                            if a.json {
                                println!("{}", json!({"event": "stream_connected", "call": call,
                                    "ms_since_request": asked.elapsed().as_millis() as u64,
                                    "unix_ms": unix_ms()}));
                            }
                            let expect = node.active_call().map_or(0, |c| crate::calls::track_count(c.caller_kinds));
                            media = Some(tokio::spawn(crate::call_media::serve(
                                node.clone(), call.clone(),
                                crate::call_media::Sources { video: None, audio: false },
                                expect, a.record.clone(), a.json, Some(asked),
                            )));
                            hang_up_at = Some(tokio::time::Instant::now() + Duration::from_secs_f64(a.seconds));
                        }
                        NodeEvent::CallState { state: CallState::Ended(_), .. } => break,
                        NodeEvent::MonitorAlert { fingerprint, level_dbfs } if a.json => {
                            println!("{}", json!({"event": "monitor_alert", "from": fingerprint,
                                "level_dbfs": level_dbfs, "unix_ms": unix_ms()}));
                        }
                        NodeEvent::MonitorAlert { level_dbfs, .. } => {
                            println!("sound alert: {level_dbfs} dBFS");
                        }
                        _ => {}
                    }
                }
                _ = sleep => {
                    match node.active_call() {
                        Some(c) if hang_up_at.is_some() => node.hang_up(&c.call)?,
                        _ => return Err("no stream arrived".into()),
                    }
                    hang_up_at = None;
                }
                _ = crate::shutdown_signal() => {
                    if let Some(c) = node.active_call() {
                        node.hang_up(&c.call)?;
                    }
                }
            }
        }
        Ok(())
    }
    .await;
    if let Some(m) = media
        && let Ok(Err(e)) = m.await
    {
        eprintln!("media: {e}");
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    node.stop().await;
    result
}

#[cfg(test)]
mod tests {
    use super::parse_quota;

    #[test]
    fn quotas_parse_with_binary_suffixes() {
        assert_eq!(
            parse_quota("incoming=20G"),
            Ok(("incoming".into(), 20 << 30))
        );
        assert_eq!(parse_quota("a=512k"), Ok(("a".into(), 512 << 10)));
        assert_eq!(parse_quota("a=1000"), Ok(("a".into(), 1000)));
        assert!(parse_quota("a").is_err());
        assert!(parse_quota("a=x").is_err());
        assert!(parse_quota("a=-1M").is_err());
        assert!(parse_quota("a=99999999999T").is_err());
    }
}
