//! Calls from the desktop shell: `peerns call` (call a contact, print the call's events, hang up
//! after `--seconds`) and `peerns calls` (the call log, offline). `peerns node --answer auto`
//! answers calls (see `messaging.rs`). The call's media (`call_media.rs`) starts once the call
//! connects: the test pattern and tone go out, the peer's tracks are counted or recorded.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use peerns_core::node::{CallDirection, CallEntry, CallState, Kinds, NodeEvent};
use peerns_core::store::Profile;
use serde_json::json;

use crate::Result;
use crate::messaging::{NetArgs, profile_dir, start};

/// `peerns call`.
#[derive(clap::Args)]
pub struct CallArgs {
    #[command(flatten)]
    net: NetArgs,
    /// The contact's fingerprint.
    #[arg(long)]
    to: String,
    /// Send video: `test` (pattern), a `.y4m` file, or a V4L2 camera `/dev/videoN` (via ffmpeg).
    #[arg(long)]
    video: Option<String>,
    /// Send audio: `test` (a tone) or `none`.
    #[arg(long, default_value = "test")]
    audio: String,
    /// Share a screen: `test`.
    #[arg(long)]
    screen: Option<String>,
    /// Record the incoming media to this file.
    #[arg(long)]
    record: Option<PathBuf>,
    /// Hang up this many seconds after the call connects; default: wait for the peer.
    #[arg(long)]
    seconds: Option<f64>,
    /// Print one JSON object per line.
    #[arg(long)]
    json: bool,
}

/// `peerns calls`.
#[derive(clap::Args)]
pub struct CallsArgs {
    /// Print one JSON object per line.
    #[arg(long)]
    json: bool,
    /// At most this many calls, newest first.
    #[arg(long, default_value_t = 100)]
    limit: usize,
}

/// The media kinds the `--audio`, `--video` and `--screen` flags ask for.
pub fn kinds_of(audio: &str, video: Option<&str>, screen: Option<&str>) -> Result<Kinds> {
    let mut k = Kinds::default();
    match audio {
        "none" => {}
        "test" => k = k.union(Kinds::AUDIO),
        other => return Err(format!("--audio takes test or none, not {other:?}").into()),
    }
    if video.is_some() {
        k = k.union(Kinds::VIDEO);
    }
    if let Some(s) = screen {
        if s != "test" {
            return Err(format!("--screen takes test, not {s:?}").into());
        }
        k = k.union(Kinds::SCREEN);
    }
    Ok(k)
}

/// A call event as one JSON line: `{"event":"call","state":…,"reason"?}` (also an incoming
/// call: state `ringing`), `call_media` and `call_logged`; `None` for other events.
pub fn call_event_json(e: &NodeEvent) -> Option<serde_json::Value> {
    Some(match e {
        NodeEvent::IncomingCall {
            call,
            fingerprint,
            name,
            kinds,
        } => json!({
            "event": "call", "state": "ringing", "call": call, "from": fingerprint,
            "name": name, "kinds": kinds.names(), "incoming": true,
        }),
        NodeEvent::CallState {
            call,
            fingerprint,
            state,
        } => {
            let mut j = json!({
                "event": "call", "state": state.as_str(), "call": call, "peer": fingerprint,
            });
            if let CallState::Ended(r) = state {
                j["reason"] = r.as_str().into();
            }
            j
        }
        NodeEvent::CallMedia {
            call,
            fingerprint,
            state,
        } => json!({
            "event": "call_media", "call": call, "from": fingerprint, "muted": state.muted,
            "camera_off": state.camera_off, "screen": state.screen,
            "back_camera": state.back_camera, "rotation": state.rotation,
        }),
        NodeEvent::CallLogged { entry } => {
            let mut j = entry_json(entry);
            j["event"] = "call_logged".into();
            j
        }
        _ => return None,
    })
}

fn entry_json(e: &CallEntry) -> serde_json::Value {
    json!({
        "call": hex::encode(e.id), "peer": e.peer.to_hex(),
        "direction": if e.direction == CallDirection::Outgoing { "outgoing" } else { "incoming" },
        "kinds": e.kinds.names(), "started_ms": e.started_ms, "duration_ms": e.duration_ms,
        "outcome": e.outcome.as_str(), "reason": e.reason,
    })
}

/// `peerns calls`: the call log, newest first (offline: reads the profile).
pub fn calls(a: CallsArgs, profile: Option<PathBuf>) -> Result<()> {
    let profile = Profile::open_desktop(&profile_dir(profile)?)?;
    let limit = a.limit.clamp(1, 10_000);
    let log = profile
        .store()
        .with_conn(|c| Ok(peerns_core::calls::log::list(c, None, limit)))??;
    for e in &log {
        if a.json {
            println!("{}", entry_json(e));
        } else {
            let secs = e.duration_ms / 1000;
            println!(
                "{} {} {} {} {}:{:02} {}",
                e.started_ms,
                if e.direction == CallDirection::Outgoing {
                    "→"
                } else {
                    "←"
                },
                e.peer.short(),
                e.kinds.names().join("+"),
                secs / 60,
                secs % 60,
                e.outcome.as_str()
            );
        }
    }
    Ok(())
}

/// `peerns call`: rings the contact, prints the call's events, hangs up after `--seconds` once
/// connected (or on Ctrl-C); ends when the call ends.
pub async fn call(a: CallArgs, profile: Option<PathBuf>) -> Result<()> {
    let kinds = kinds_of(&a.audio, a.video.as_deref(), a.screen.as_deref())?;
    crate::call_media::check_video(a.video.as_deref())?;
    let sources = crate::call_media::Sources {
        video: a.video.clone(),
        audio: a.audio == "test",
    };
    let node = Arc::new(start(&a.net, profile).await?);
    let mut events = node.subscribe();
    let mut media = None;
    let result: Result<()> = async {
        let call = node.call(&a.to, kinds).await?;
        let mut hang_up_at = None;
        loop {
            let sleep = async {
                match hang_up_at {
                    Some(t) => tokio::time::sleep_until(t).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                ev = events.recv() => {
                    let Some(ev) = ev else { break };
                    let Some(j) = call_event_json(&ev) else { continue };
                    if j["call"] != call.as_str() {
                        continue;
                    }
                    if a.json {
                        println!("{j}");
                    } else {
                        println!("call {}{}", j["state"].as_str().unwrap_or(""),
                                 j.get("reason").map(|r| format!(" ({r})")).unwrap_or_default());
                    }
                    match ev {
                        NodeEvent::CallState { state: CallState::Connected, .. } => {
                            let expect = node
                                .active_call()
                                .map_or(0, |c| track_count(c.callee_kinds));
                            media = Some(tokio::spawn(crate::call_media::serve(
                                node.clone(),
                                call.clone(),
                                sources.clone(),
                                expect,
                                a.record.clone(),
                                a.json,
                                None,
                            )));
                            hang_up_at = a.seconds.map(|s| {
                                tokio::time::Instant::now() + Duration::from_secs_f64(s)
                            });
                        }
                        NodeEvent::CallState { state: CallState::Ended(_), .. } => break,
                        _ => {}
                    }
                }
                _ = sleep => {
                    hang_up_at = None;
                    node.hang_up(&call)?;
                }
                _ = crate::shutdown_signal() => node.hang_up(&call)?,
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
    // Let the hang-up and the log entry be written before the node stops.
    tokio::time::sleep(Duration::from_millis(200)).await;
    node.stop().await;
    result
}

/// How many tracks a peer sending `kinds` sends.
pub fn track_count(kinds: Kinds) -> usize {
    kinds.bits().count_ones() as usize
}
