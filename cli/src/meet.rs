//! `peerns meet`: the meeting room for everyone nearby (decision 0011). Stadium mode at a
//! fixed position; joins the room advertised nearby or starts one; the same input and output
//! as `peerns group chat`, plus `{"event":"room","group":GID}` when we enter a room (first,
//! and again if it merges into another).

use std::path::PathBuf;
use std::time::Duration;

use peerns_core::groups::GroupId;
use serde_json::json;

use crate::Result;
use crate::discover::PositionArgs;
use crate::group::chat_loop;
use crate::messaging::{NetArgs, start_offline};

/// How long we wait for the signaling server before looking for a room anyway.
const CONNECT_WAIT: Duration = Duration::from_secs(30);

/// `peerns meet`.
#[derive(clap::Args)]
pub struct MeetArgs {
    #[command(flatten)]
    net: NetArgs,
    #[command(flatten)]
    at: PositionArgs,
    /// One JSON object per line: `room`, `queued`, `message`, `role`.
    #[arg(long)]
    json: bool,
}

fn print_room(gid: &GroupId, json: bool) {
    if json {
        println!("{}", json!({"event": "room", "group": gid.to_hex()}));
    } else {
        println!("-- meeting room {gid}");
    }
}

/// Runs the meeting room until Ctrl-C or SIGTERM (the end of stdin only stops sending).
pub async fn meet(a: MeetArgs, profile: Option<PathBuf>) -> Result<()> {
    let node = start_offline(&a.net, profile).await?;
    let updates = node.group_events();
    node.start_stadium(Default::default())?;
    node.set_location(a.at.fix())?;
    // Rooms are found in the stadium cells, which need the signaling server.
    if !node.wait_connected(CONNECT_WAIT).await {
        eprintln!("signaling server not reached yet; looking for a room anyway");
    }
    let room = match node.meeting_room_join().await {
        Ok(g) => g,
        Err(e) => {
            node.stop().await;
            return Err(e.into());
        }
    };
    let json = a.json;
    print_room(&room, json);
    let result = chat_loop(&node, updates, room, json, |g| print_room(g, json)).await;
    node.stop_stadium().await;
    node.stop().await;
    result
}
