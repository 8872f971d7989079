//! `peerns group …`: groups of this profile, offline (decision 0011), and `group chat`, which
//! runs a node and chats in one group.

use std::path::PathBuf;

use clap::Subcommand;
use futures_util::StreamExt;
use futures_util::stream::FuturesOrdered;
use peerns_core::groups::GroupId;
use peerns_core::identity::Fingerprint;
use peerns_core::node::groups::{self, GroupFileRef, GroupMessageView, GroupRole};
use peerns_core::store::Profile;
use serde_json::json;

use std::time::Duration;

use peerns_core::node::{GroupUpdate, Node, NodeError};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::Result;
use crate::messaging::{NetArgs, profile_dir, start_offline};

/// How long a typed line waits for us to become a member (an invitee's log arrives from
/// the group once it is online).
const MEMBER_WAIT: Duration = Duration::from_secs(60);

#[derive(Subcommand)]
pub enum GroupCmd {
    /// Create a group (offline); prints {"group": GID}.
    Create {
        /// Its name.
        name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Invite someone by fingerprint (offline, admin); prints {"invite": LINK}.
    Invite {
        /// The group.
        gid: String,
        /// The invitee's fingerprint.
        fingerprint: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Join by an invite link naming us (offline); prints {"group": GID}.
    Join {
        /// The link.
        link: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove a member (admin); takes effect when online.
    Remove {
        /// The group.
        gid: String,
        /// The member's fingerprint.
        fingerprint: String,
    },
    /// Delete a group from this profile (offline): its messages and files. Nobody is told:
    /// a member that can still reach the group leaves from a running node (the apps do).
    Delete {
        /// The group.
        gid: String,
    },
    /// Groups, members and our role.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// A group's stored messages (offline).
    History {
        /// The group.
        gid: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Chat in a group (online): each stdin line is sent, each message (live or backfilled)
    /// printed once. Runs until Ctrl-C or SIGTERM (the end of stdin only stops sending).
    Chat {
        #[command(flatten)]
        net: NetArgs,
        /// The group.
        gid: String,
        /// One JSON object per line: `queued` (a typed line is stored), `message`, `role`,
        /// `file_progress` and `file` (a shared file arrived: its `path`, `null` if given up).
        /// A line `/file PATH` shares that file with the group.
        #[arg(long)]
        json: bool,
    },
    /// Take part in the group's call (online): media goes through the group's elected
    /// router and survives its departure.
    Call {
        #[command(flatten)]
        net: NetArgs,
        /// The group.
        gid: String,
        #[command(flatten)]
        args: crate::group_call::CallArgs,
    },
}

fn role(r: GroupRole) -> &'static str {
    match r {
        GroupRole::Admin => "admin",
        GroupRole::Member => "member",
        GroupRole::Pending => "pending",
        GroupRole::Former => "former",
    }
}

fn gid(s: &str) -> Result<GroupId> {
    Ok(s.parse().map_err(|_| "a group ID is 32 hex characters")?)
}

fn fp(s: &str) -> Result<Fingerprint> {
    Ok(s.parse()
        .map_err(|_| "a fingerprint is 64 hex characters")?)
}

/// Runs a group command.
pub async fn run(cmd: GroupCmd, profile: Option<PathBuf>) -> Result<()> {
    let cmd = match cmd {
        GroupCmd::Chat { net, gid: g, json } => return chat(&net, profile, gid(&g)?, json).await,
        GroupCmd::Call { net, gid: g, args } => {
            return crate::group_call::run(&net, profile, gid(&g)?, args).await;
        }
        other => other,
    };
    let profile = Profile::open_desktop(&profile_dir(profile)?)?;
    match cmd {
        GroupCmd::Create { name, json } => {
            let g = groups::create(&profile, &name)?;
            if json {
                println!("{}", json!({"group": g.to_hex()}));
            } else {
                println!("{g}");
            }
        }
        GroupCmd::Invite {
            gid: g,
            fingerprint,
            json,
        } => {
            let link = groups::invite(&profile, &gid(&g)?, &fp(&fingerprint)?)?;
            if json {
                println!("{}", json!({"invite": link}));
            } else {
                println!("{link}");
            }
        }
        GroupCmd::Join { link, json } => {
            let g = groups::join(&profile, &link)?;
            if json {
                println!("{}", json!({"group": g.to_hex()}));
            } else {
                println!("{g}");
            }
        }
        GroupCmd::Remove {
            gid: g,
            fingerprint,
        } => groups::remove(&profile, &gid(&g)?, &fp(&fingerprint)?)?,
        GroupCmd::Delete { gid: g } => groups::delete(&profile, &gid(&g)?)?,
        GroupCmd::List { json } => {
            let list = groups::list(&profile)?;
            if json {
                let groups: Vec<_> = list
                    .iter()
                    .map(|g| {
                        let members: Vec<_> = g
                            .members
                            .iter()
                            .map(|(fp, admin)| json!({"fingerprint": fp.to_hex(), "admin": admin}))
                            .collect();
                        json!({"group": g.gid.to_hex(), "name": g.name, "role": role(g.role),
                               "members": members})
                    })
                    .collect();
                println!("{}", json!({ "groups": groups }));
            } else {
                for g in list {
                    println!(
                        "{}  {}  ({}, {} members)",
                        g.gid,
                        g.name,
                        role(g.role),
                        g.members.len()
                    );
                }
            }
        }
        GroupCmd::Chat { .. } | GroupCmd::Call { .. } => unreachable!("handled above"),
        GroupCmd::History { gid: g, json } => {
            let msgs = groups::history(&profile, &gid(&g)?, usize::MAX >> 1)?;
            if json {
                let messages: Vec<_> = msgs
                    .iter()
                    .map(|m| {
                        json!({"id": m.id, "author": m.author.to_hex(), "seq": m.seq,
                               "text": m.text, "sent_ms": m.sent_ms, "file": file_json(&m.file)})
                    })
                    .collect();
                println!("{}", json!({ "messages": messages }));
            } else {
                for m in msgs {
                    println!("[{}] {}: {}", m.sent_ms, m.author.short(), shown(&m));
                }
            }
        }
    }
    Ok(())
}

/// Runs `op` until it stops failing because we are not a member yet (an invitee's log is
/// still on its way), for up to a minute.
pub(crate) async fn as_member<T, F: Future<Output = std::result::Result<T, NodeError>>>(
    mut op: impl FnMut() -> F,
) -> Result<T> {
    let deadline = tokio::time::Instant::now() + MEMBER_WAIT;
    loop {
        match op().await {
            Err(NodeError::NotAllowed(_)) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            r => return Ok(r?),
        }
    }
}

/// The file a message announces, as JSON (`null` for a text).
fn file_json(f: &Option<GroupFileRef>) -> serde_json::Value {
    match f {
        Some(f) => json!({"id": f.id, "name": f.name, "size": f.size, "mime": f.mime}),
        None => serde_json::Value::Null,
    }
}

/// A message as a line of text shows it.
fn shown(m: &GroupMessageView) -> String {
    match &m.file {
        Some(f) => format!("[file {} ({} bytes)]", f.name, f.size),
        None => m.text.clone(),
    }
}

fn print_update(u: &GroupUpdate, g: &GroupId, json: bool) {
    match u {
        GroupUpdate::Message { group, message } if group == g => {
            if json {
                println!(
                    "{}",
                    json!({"event": "message", "id": message.id, "author": message.author.to_hex(),
                           "seq": message.seq, "text": message.text,
                           "file": file_json(&message.file)})
                );
            } else {
                println!("[{}] {}", message.author.short(), shown(message));
            }
        }
        GroupUpdate::FileProgress {
            group,
            file,
            received,
            size,
        } if group == g && json => {
            println!(
                "{}",
                json!({"event": "file_progress", "file": file, "received": received, "size": size})
            );
        }
        GroupUpdate::FileDone { group, file, path } if group == g => {
            if json {
                println!("{}", json!({"event": "file", "file": file, "path": path}));
            } else {
                match path {
                    Some(p) => println!("-- file received: {p}"),
                    None => println!("-- file {file} could not be verified; given up"),
                }
            }
        }
        GroupUpdate::Role { group, router } if group == g => {
            let role = if *router { "router" } else { "member" };
            if json {
                println!("{}", json!({"event": "role", "role": role}));
            } else {
                println!("-- role: {role}");
            }
        }
        GroupUpdate::Departed { group } if group == g && !json => {
            println!("-- we are no longer a member");
        }
        _ => {}
    }
}

async fn chat(net: &NetArgs, profile: Option<PathBuf>, g: GroupId, json: bool) -> Result<()> {
    let node = start_offline(net, profile).await?;
    let updates = node.group_events();
    if !node.running_groups().contains(&g) {
        node.stop().await;
        return Err(format!("group {g} is not one of ours").into());
    }
    let result = chat_loop(&node, updates, g, json, |_| {}).await;
    node.stop().await;
    result
}

/// Most texts queued and not yet stored by `chat_loop` (more lines wait in stdin).
const MAX_IN_FLIGHT: usize = 256;

/// Prints what became of a text or file sent (`queued` once it is stored).
fn print_queued(sent: Result<GroupMessageView>, json: bool) {
    match sent {
        Ok(m) if json => {
            println!(
                "{}",
                json!({"event": "queued", "id": m.id, "text": m.text,
                       "file": file_json(&m.file)})
            );
        }
        Ok(_) => {}
        Err(e) => eprintln!("not sent: {e}"),
    }
}

/// Sends each stdin line to group `g` and prints its updates until Ctrl-C or SIGTERM (the end
/// of stdin only stops sending). `GroupUpdate::Room` (the meeting room merged into another)
/// moves the loop to that room and is passed to `on_room`.
pub(crate) async fn chat_loop(
    node: &Node,
    mut updates: tokio::sync::mpsc::UnboundedReceiver<GroupUpdate>,
    mut g: GroupId,
    json: bool,
    on_room: impl Fn(&GroupId),
) -> Result<()> {
    let mut lines = Some(BufReader::new(tokio::io::stdin()).lines());
    // Texts queued and not stored yet, in order. The first send waits (and retries until we
    // are a member); after it, lines are queued without waiting for each to be stored, so a
    // burst is signed, stored and sent together.
    let mut pending: FuturesOrdered<_> = FuturesOrdered::new();
    let mut member = false;
    loop {
        tokio::select! {
            line = async { lines.as_mut().expect("only polled while open").next_line().await },
                if lines.is_some() && pending.len() < MAX_IN_FLIGHT =>
            {
                let text = match line {
                    Ok(Some(l)) => l,
                    Ok(None) => {
                        lines = None;
                        continue;
                    }
                    Err(e) => return Err(e.into()),
                };
                let text = text.trim_end();
                if text.is_empty() {
                    continue;
                }
                let sent = match text.strip_prefix("/file ") {
                    Some(path) => {
                        // After the texts typed before it.
                        while let Some(r) = pending.next().await {
                            let r: std::result::Result<GroupMessageView, NodeError> = r;
                            print_queued(r.map_err(Into::into), json);
                        }
                        as_member(|| node.group_send_file(&g, path.trim())).await
                    }
                    None if member => match node.group_queue(&g, text).await {
                        Ok(q) => {
                            pending.push_back(q.stored());
                            continue;
                        }
                        Err(e) => Err(e.into()),
                    },
                    None => as_member(|| node.group_send(&g, text)).await,
                };
                member |= sent.is_ok();
                print_queued(sent, json);
            }
            Some(r) = pending.next(), if !pending.is_empty() => {
                print_queued(r.map_err(Into::into), json);
            }
            u = updates.recv() => match u {
                Some(GroupUpdate::Room { group: Some(room) }) if room != g => {
                    g = room;
                    on_room(&g);
                }
                Some(u) => print_update(&u, &g, json),
                None => return Ok(()),
            },
            _ = crate::shutdown_signal() => return Ok(()),
        }
    }
}
