//! `peerns meet`: the meeting room for everyone nearby (decision 0011). Stadium mode at a
//! fixed position; joins the room advertised nearby or starts one; the same input and output
//! as `peerns group chat`, plus `{"event":"room","group":GID}` when we enter a room (first,
//! and again if it merges into another).

use std::path::PathBuf;
use std::time::Duration;

use peerns_core::node::GroupUpdate;
use peerns_core::node::platform::LocationFix;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::Result;
use crate::group::print_update;
use crate::messaging::{NetArgs, start_offline};

/// How long we wait for the signaling server before looking for a room anyway.
const CONNECT_WAIT: Duration = Duration::from_secs(30);

/// `peerns meet`.
#[derive(clap::Args)]
pub struct MeetArgs {
    #[command(flatten)]
    net: NetArgs,
    /// Latitude, degrees.
    #[arg(long, allow_hyphen_values = true)]
    lat: f64,
    /// Longitude, degrees.
    #[arg(long, allow_hyphen_values = true)]
    lon: f64,
    /// Position accuracy, metres.
    #[arg(long, default_value_t = 10.0)]
    accuracy: f64,
    /// One JSON object per line: `room`, `queued`, `message`, `role`.
    #[arg(long)]
    json: bool,
}

fn print_room(gid: &str, json: bool) {
    if json {
        println!("{}", json!({"event": "room", "group": gid}));
    } else {
        println!("-- meeting room {gid}");
    }
}

/// Runs the meeting room until Ctrl-C or SIGTERM (the end of stdin only stops sending).
pub async fn meet(a: MeetArgs, profile: Option<PathBuf>) -> Result<()> {
    let node = start_offline(&a.net, profile).await?;
    let mut updates = node.group_events();
    node.start_stadium(Default::default())?;
    node.set_location(LocationFix {
        latitude: a.lat,
        longitude: a.lon,
        accuracy_m: a.accuracy,
    })?;
    // Rooms are found in the stadium cells, which need the signaling server.
    if !node.wait_connected(CONNECT_WAIT).await {
        eprintln!("signaling server not reached yet; looking for a room anyway");
    }
    let mut room = match node.meeting_room_join().await {
        Ok(g) => g,
        Err(e) => {
            node.stop().await;
            return Err(e.into());
        }
    };
    print_room(&room.to_hex(), a.json);
    let mut lines = Some(BufReader::new(tokio::io::stdin()).lines());
    let result = loop {
        tokio::select! {
            line = async { lines.as_mut().expect("only polled while open").next_line().await },
                if lines.is_some() =>
            {
                let text = match line {
                    Ok(Some(l)) => l,
                    Ok(None) => {
                        lines = None;
                        continue;
                    }
                    Err(e) => break Err(e.into()),
                };
                let text = text.trim_end();
                if text.is_empty() {
                    continue;
                }
                match node.group_send(&room, text).await {
                    Ok(m) if a.json => {
                        println!("{}", json!({"event": "queued", "id": m.id, "text": m.text}));
                    }
                    Ok(_) => {}
                    Err(e) => eprintln!("not sent: {e}"),
                }
            }
            u = updates.recv() => match u {
                Some(GroupUpdate::Room { group: Some(g) }) if g != room => {
                    room = g;
                    print_room(&room.to_hex(), a.json);
                }
                Some(u) => print_update(&u, &room, a.json),
                None => break Ok(()),
            },
            _ = crate::shutdown_signal() => break Ok(()),
        }
    };
    node.stop_stadium().await;
    node.stop().await;
    result
}
