//! Groups on [`PeernsNode`] (decision 0011): create, invite links, join, remove, leave, list,
//! send text, history pages, and group events through their own listener.
//!
//! Group events have their own listener (like the call media ones) rather than `NodeEvent`:
//! the core delivers them on a stream of their own ([`node::GroupUpdate`]), so a separate
//! subscription keeps their order without merging two streams, and apps that exhaustively
//! match `NodeEvent` are not broken by new variants.

use std::sync::Arc;

use peerns_core::groups::GroupId;
use peerns_core::groups::store::Cursor;
use peerns_core::identity::Fingerprint;
use peerns_core::node::{self, groups as offline};

use crate::{PeernsError, PeernsNode, RUNTIME, Subscription, on_runtime};

/// A member of a group.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct GroupMember {
    /// Identity key fingerprint, 64 hex characters.
    pub fingerprint: String,
    /// May invite and remove.
    pub admin: bool,
    /// Present in the group's namespace now (always `false` for ourselves and while the
    /// group is not running).
    #[uniffi(default = false)]
    pub online: bool,
}

/// Our membership of a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum GroupMembership {
    /// An admin.
    Admin,
    /// A member.
    Member,
    /// Joined by link; a member once the group's log arrives from the group.
    Pending,
    /// Left or removed.
    Former,
}

impl From<offline::GroupRole> for GroupMembership {
    fn from(r: offline::GroupRole) -> Self {
        match r {
            offline::GroupRole::Admin => Self::Admin,
            offline::GroupRole::Member => Self::Member,
            offline::GroupRole::Pending => Self::Pending,
            offline::GroupRole::Former => Self::Former,
        }
    }
}

/// A group as lists show it.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Group {
    /// The group ID, 32 hex characters.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Current members.
    pub members: Vec<GroupMember>,
    /// Our membership.
    pub membership: GroupMembership,
    /// The group runs on this node (we are a member and the node is started).
    pub running: bool,
    /// We route the group now (otherwise we are a member of another router, or searching).
    pub router: bool,
}

/// A group message.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct GroupMessage {
    /// Message ID, 32 hex characters.
    pub id: String,
    /// The author's fingerprint.
    pub author: String,
    /// The author's sequence number (1, 2, ...).
    pub seq: u64,
    /// The text (empty for files).
    pub text: String,
    /// The author's clock, Unix ms.
    pub sent_ms: u64,
    /// The file a file message announces (see `group_file`).
    #[uniffi(default = None)]
    pub file: Option<crate::group_files::GroupFileRef>,
}

impl From<offline::GroupMessageView> for GroupMessage {
    fn from(m: offline::GroupMessageView) -> Self {
        Self {
            id: m.id,
            author: m.author.to_hex(),
            seq: m.seq,
            text: m.text,
            sent_ms: m.sent_ms,
            file: m.file.map(Into::into),
        }
    }
}

/// A page of a group's history.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct GroupHistoryPage {
    /// Messages in display order (the same on every member).
    pub messages: Vec<GroupMessage>,
    /// Pass as `before` for the next older page (which may be empty); `None` when this page
    /// is shorter than the limit (it holds the oldest message).
    pub older: Option<String>,
}

/// Something that happened in a group.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum GroupEvent {
    /// A message was stored (live, backfilled or our own); each exactly once.
    Message {
        /// The group.
        group: String,
        /// The message.
        message: GroupMessage,
    },
    /// Someone became a member.
    MemberJoined {
        /// The group.
        group: String,
        /// The member.
        fingerprint: String,
    },
    /// Someone left or was removed.
    MemberLeft {
        /// The group.
        group: String,
        /// The former member.
        fingerprint: String,
    },
    /// We route the group (`router`), or follow another router.
    Role {
        /// The group.
        group: String,
        /// Whether we route it.
        router: bool,
    },
    /// A page of missed messages arrived: `received` stored from it; `more` remain.
    Backfill {
        /// The group.
        group: String,
        /// Messages stored from the page.
        received: u64,
        /// More pages follow.
        more: bool,
    },
    /// We are no longer a member (removed, or our leave was appended).
    Departed {
        /// The group.
        group: String,
    },
    /// A former member's messages after `cutoff` were deleted (its removal or leave came
    /// after them): a chat showing them drops them.
    Purged {
        /// The group.
        group: String,
        /// The former member's fingerprint.
        author: String,
        /// Its last message kept (its seq).
        cutoff: u64,
    },
    /// A contact who may invite us (trust level 2 or more) sent us an invite link, and we
    /// joined its group.
    Invited {
        /// The group.
        group: String,
        /// Who sent it (fingerprint).
        by: String,
    },
    /// Who is in the group's call now (empty: nobody), whether we take part or not.
    CallRoster {
        /// The group.
        group: String,
        /// The participants.
        participants: Vec<crate::group_calls::CallParticipant>,
    },
    /// Who speaks in the group's call now (empty: nobody), as its router hears them.
    CallSpeakers {
        /// The group.
        group: String,
        /// The participants speaking (fingerprints).
        speaking: Vec<String>,
    },
    /// A member came online in the group (present in its namespace) or went offline.
    Presence {
        /// The group.
        group: String,
        /// The member.
        fingerprint: String,
        /// Online now.
        online: bool,
    },
    /// We entered the meeting room nearby (its ID; after a merge, the room we moved to) or
    /// left it (`None`).
    Room {
        /// The room, 32 hex characters.
        group: Option<String>,
    },
    /// More of a group file is on disk (every few MiB).
    FileProgress {
        /// The group.
        group: String,
        /// The file ID.
        file: String,
        /// Bytes received.
        received: u64,
        /// Its size.
        size: u64,
    },
    /// A group file arrived whole and verified (`path`), or was given up (`None`: no
    /// member's bytes matched the author's hash).
    FileDone {
        /// The group.
        group: String,
        /// The file ID.
        file: String,
        /// Where it is.
        path: Option<String>,
    },
    /// Our part in the group's call moved on.
    CallPhase {
        /// The group.
        group: String,
        /// Where we are.
        phase: crate::group_calls::GroupCallPhase,
        /// The fingerprint of the member our media goes to: the router, or in a call of two
        /// the router does not join, the other participant (direct); `None` when we route.
        media_peer: Option<String>,
    },
}

impl From<node::GroupUpdate> for GroupEvent {
    fn from(u: node::GroupUpdate) -> Self {
        use node::GroupUpdate as U;
        match u {
            U::Message { group, message } => Self::Message {
                group: group.to_hex(),
                message: message.into(),
            },
            U::MemberJoined { group, fingerprint } => Self::MemberJoined {
                group: group.to_hex(),
                fingerprint: fingerprint.to_hex(),
            },
            U::MemberLeft { group, fingerprint } => Self::MemberLeft {
                group: group.to_hex(),
                fingerprint: fingerprint.to_hex(),
            },
            U::Role { group, router } => Self::Role {
                group: group.to_hex(),
                router,
            },
            U::Backfill {
                group,
                received,
                more,
            } => Self::Backfill {
                group: group.to_hex(),
                received,
                more,
            },
            U::Departed { group } => Self::Departed {
                group: group.to_hex(),
            },
            U::Purged {
                group,
                author,
                cutoff,
            } => Self::Purged {
                group: group.to_hex(),
                author: author.to_hex(),
                cutoff,
            },
            U::Invited { group, by } => Self::Invited {
                group: group.to_hex(),
                by: by.to_hex(),
            },
            U::CallRoster {
                group,
                participants,
            } => Self::CallRoster {
                group: group.to_hex(),
                participants: participants.iter().map(Into::into).collect(),
            },
            U::CallSpeakers { group, speaking } => Self::CallSpeakers {
                group: group.to_hex(),
                speaking: speaking.iter().map(|f| f.to_hex()).collect(),
            },
            U::Presence {
                group,
                fingerprint,
                online,
            } => Self::Presence {
                group: group.to_hex(),
                fingerprint: fingerprint.to_hex(),
                online,
            },
            U::FileProgress {
                group,
                file,
                received,
                size,
            } => Self::FileProgress {
                group: group.to_hex(),
                file,
                received,
                size,
            },
            U::FileDone { group, file, path } => Self::FileDone {
                group: group.to_hex(),
                file,
                path,
            },
            U::Room { group } => Self::Room {
                group: group.map(|g| g.to_hex()),
            },
            U::CallPhase {
                group,
                phase,
                media_peer,
            } => Self::CallPhase {
                group: group.to_hex(),
                phase: phase.into(),
                media_peer: media_peer.map(|f| f.to_hex()),
            },
        }
    }
}

/// Receives group events, one at a time and in order, on a library thread.
#[uniffi::export(with_foreign)]
pub trait GroupListener: Send + Sync {
    /// One event.
    fn on_group_event(&self, event: GroupEvent);
}

fn invalid(msg: String) -> PeernsError {
    PeernsError::InvalidInput { msg }
}

pub(crate) fn group_id(s: &str) -> Result<GroupId, PeernsError> {
    s.parse()
        .map_err(|_| invalid(format!("bad group id {s:?}")))
}

pub(crate) fn fingerprint(s: &str) -> Result<Fingerprint, PeernsError> {
    s.parse()
        .map_err(|_| invalid(format!("bad fingerprint {s:?}")))
}

/// A cursor as the app holds it: `lamport:author:seq`.
fn encode_cursor((lamport, author, seq): Cursor) -> String {
    format!("{lamport}:{author}:{seq}")
}

fn decode_cursor(s: &str) -> Result<Cursor, PeernsError> {
    let bad = || invalid(format!("bad history cursor {s:?}"));
    let mut parts = s.split(':');
    let (Some(l), Some(a), Some(q), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    Ok((
        l.parse().map_err(|_| bad())?,
        a.parse().map_err(|_| bad())?,
        q.parse().map_err(|_| bad())?,
    ))
}

#[uniffi::export(async_runtime = "tokio")]
impl PeernsNode {
    /// Creates a group with us as its only member and admin (and first router); returns its ID.
    pub async fn group_create(&self, name: String) -> Result<String, PeernsError> {
        let node = self.running()?;
        let gid = on_runtime(async move { node.group_create(&name).await }).await??;
        Ok(gid.to_hex())
    }

    /// Invites the identity `fingerprint` (we must be an admin) and returns the link only it
    /// can use (inviting a member again returns its link again). Send it over any channel.
    pub async fn group_invite(
        &self,
        group: String,
        fingerprint: String,
    ) -> Result<String, PeernsError> {
        let (node, gid, fp) = (
            self.running()?,
            group_id(&group)?,
            self::fingerprint(&fingerprint)?,
        );
        Ok(on_runtime(async move { node.group_invite(&gid, &fp).await }).await??)
    }

    /// Invites our contact `fingerprint` (we must be an admin) by sending it the link as a chat
    /// message, delivered when the contact is reachable; a contact that trusts us at level 2
    /// or more joins at once, others see a link to open. Returns the message.
    pub async fn group_send_invite(
        &self,
        group: String,
        fingerprint: String,
    ) -> Result<crate::ChatMessage, PeernsError> {
        let (node, gid, fp) = (
            self.running()?,
            group_id(&group)?,
            self::fingerprint(&fingerprint)?,
        );
        let m = on_runtime(async move { node.group_send_invite(&gid, &fp).await }).await??;
        Ok(m.into())
    }

    /// Joins by an invite link naming us (opening it is the user's consent); returns the
    /// group ID. Messages can be sent once the group's log arrives (`Pending` until then).
    pub async fn group_join(&self, link: String) -> Result<String, PeernsError> {
        let node = self.running()?;
        let gid = on_runtime(async move { node.group_join(&link).await }).await??;
        Ok(gid.to_hex())
    }

    /// Removes a member (we must be an admin): it receives nothing sent afterwards.
    pub async fn group_remove(
        &self,
        group: String,
        fingerprint: String,
    ) -> Result<(), PeernsError> {
        let (node, gid, fp) = (
            self.running()?,
            group_id(&group)?,
            self::fingerprint(&fingerprint)?,
        );
        Ok(on_runtime(async move { node.group_remove(&gid, &fp).await }).await??)
    }

    /// Leaves the group.
    pub async fn group_leave(&self, group: String) -> Result<(), PeernsError> {
        let (node, gid) = (self.running()?, group_id(&group)?);
        Ok(on_runtime(async move { node.group_leave(&gid).await }).await??)
    }

    /// Deletes the group from this phone: its messages and files. A member leaves it first;
    /// the others hear of it if our router is reachable now, otherwise they list us until an
    /// admin removes us. Leaving cannot be undone (an admin cannot invite a former member
    /// again). `NotAllowed` for the meeting room (leave it instead).
    pub async fn group_delete(&self, group: String) -> Result<(), PeernsError> {
        let (node, gid) = (self.running()?, group_id(&group)?);
        Ok(on_runtime(async move { node.group_delete(&gid).await }).await??)
    }

    /// Every group of this profile, with members and our place in it.
    pub async fn groups(&self) -> Result<Vec<Group>, PeernsError> {
        let node = self.running()?;
        let (list, running, live) = on_runtime(async move {
            let list = node.group_list().await?;
            let running = node.running_groups();
            let live: Vec<(bool, Vec<Fingerprint>)> = list
                .iter()
                .map(|g| (node.group_routing(&g.gid), node.group_online(&g.gid)))
                .collect();
            Ok::<_, node::NodeError>((list, running, live))
        })
        .await??;
        Ok(list
            .into_iter()
            .zip(live)
            .map(|(g, (router, online))| Group {
                id: g.gid.to_hex(),
                name: g.name,
                members: g
                    .members
                    .into_iter()
                    .map(|(fp, admin)| GroupMember {
                        fingerprint: fp.to_hex(),
                        admin,
                        online: online.contains(&fp),
                    })
                    .collect(),
                membership: g.role.into(),
                running: running.contains(&g.gid),
                router,
            })
            .collect())
    }

    /// Sends a text to the group; returns the message once it is stored (durable). It is
    /// delivered through the router, and resent until the router acknowledges it.
    /// `NotAllowed` while we are not (yet) a member.
    pub async fn group_send(
        &self,
        group: String,
        text: String,
    ) -> Result<GroupMessage, PeernsError> {
        let (node, gid) = (self.running()?, group_id(&group)?);
        let m = on_runtime(async move { node.group_send(&gid, &text).await }).await??;
        Ok(m.into())
    }

    /// Opens the meeting room for everyone nearby (stadium mode must be on with a
    /// position): joins the room advertised nearby or starts one; returns its ID. Send with
    /// `group_send`; its messages arrive as group events of that ID, `GroupEvent.Room` tells
    /// when it merged into another. Nothing of it is stored.
    pub async fn meeting_room_join(&self) -> Result<String, PeernsError> {
        let node = self.running()?;
        let gid = on_runtime(async move { node.meeting_room_join().await }).await??;
        Ok(gid.to_hex())
    }

    /// The meeting room we are in.
    pub fn meeting_room(&self) -> Result<Option<String>, PeernsError> {
        Ok(self.running()?.meeting_room().map(|g| g.to_hex()))
    }

    /// Leaves the meeting room (its history goes with it).
    pub async fn meeting_room_leave(&self) -> Result<(), PeernsError> {
        let node = self.running()?;
        on_runtime(async move { node.meeting_room_leave().await }).await?;
        Ok(())
    }

    /// The meeting room's messages in display order (held in memory only).
    pub async fn meeting_room_history(&self) -> Result<Vec<GroupMessage>, PeernsError> {
        let node = self.running()?;
        let msgs = on_runtime(async move { node.meeting_room_history().await }).await??;
        Ok(msgs.into_iter().map(Into::into).collect())
    }

    /// Up to `limit` messages in display order, ending just before the cursor `before`
    /// (the newest page when `None`); the page's `older` continues.
    pub async fn group_history(
        &self,
        group: String,
        before: Option<String>,
        limit: u32,
    ) -> Result<GroupHistoryPage, PeernsError> {
        let (node, gid) = (self.running()?, group_id(&group)?);
        let before = before.as_deref().map(decode_cursor).transpose()?;
        let page =
            on_runtime(async move { node.group_history(&gid, before, limit as usize).await })
                .await??;
        Ok(GroupHistoryPage {
            messages: page.messages.into_iter().map(Into::into).collect(),
            older: page.older.map(encode_cursor),
        })
    }

    /// Delivers every group event from now on to `listener`, in order, until the
    /// subscription is cancelled or dropped or the node stops.
    pub fn subscribe_groups(
        &self,
        listener: Arc<dyn GroupListener>,
    ) -> Result<Arc<Subscription>, PeernsError> {
        let mut events = self.running()?.group_events();
        let task = RUNTIME.spawn(async move {
            while let Some(update) = events.recv().await {
                let listener = listener.clone();
                let event = GroupEvent::from(update);
                // Foreign code may block; awaiting each call keeps the order.
                if tokio::task::spawn_blocking(move || listener.on_group_event(event))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        });
        Ok(Arc::new(Subscription {
            task: task.abort_handle(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_bad_input_is_refused() {
        let c: Cursor = (7, Fingerprint([0xab; 32]), 3);
        assert_eq!(decode_cursor(&encode_cursor(c)).unwrap(), c);
        for bad in ["", "1:2", "x:ab:1", &format!("1:{}:2:3", "ab".repeat(32))] {
            assert!(matches!(
                decode_cursor(bad),
                Err(PeernsError::InvalidInput { .. })
            ));
        }
        assert!(group_id("zz").is_err() && fingerprint("00").is_err());
    }
}
