//! `peerns group …`: groups of this profile, offline (decision 0011). Online group chat is
//! not wired into the node yet.

use std::path::PathBuf;

use clap::Subcommand;
use peerns_core::groups::GroupId;
use peerns_core::identity::Fingerprint;
use peerns_core::node::groups::{self, GroupRole};
use peerns_core::store::Profile;
use serde_json::json;

use crate::Result;
use crate::messaging::profile_dir;

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
pub fn run(cmd: GroupCmd, profile: Option<PathBuf>) -> Result<()> {
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
        GroupCmd::History { gid: g, json } => {
            let msgs = groups::history(&profile, &gid(&g)?, usize::MAX >> 1)?;
            if json {
                let messages: Vec<_> = msgs
                    .iter()
                    .map(|m| {
                        json!({"id": m.id, "author": m.author.to_hex(), "seq": m.seq,
                               "text": m.text, "sent_ms": m.sent_ms})
                    })
                    .collect();
                println!("{}", json!({ "messages": messages }));
            } else {
                for m in msgs {
                    println!("[{}] {}: {}", m.sent_ms, m.author.short(), m.text);
                }
            }
        }
    }
    Ok(())
}
