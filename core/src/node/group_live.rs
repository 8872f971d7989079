//! Groups on a running node (decision 0011). Each group we belong to runs its sans-IO
//! [`Engine`] in one task, driven by:
//! - a discovery namespace under [`namespace_prefix`] that elects the router (router slots,
//!   rank failover, level monitor, reverse slot); our record's note carries our persistent
//!   PeerJS ID;
//! - links (Noise sessions of the persistent ID) that carry the group frames, only on
//!   sessions where both sides announced [`FEATURE_GROUPS`]. The router dials every current
//!   member it sees in the namespace; a member takes as its router the member whose `Hello`
//!   says it routes.
//!
//! What the engine reports is written to the store (one transaction per batch) before any
//! frame of that batch goes out, so an acknowledgement never precedes the stored message.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Weak;
use std::time::Instant;

use tokio::sync::{mpsc, oneshot};

mod api;
mod batch;
mod call;
mod call_media;
mod files;
mod invites;
mod member_links;
mod notify;
mod room;
mod task_loop;
mod tasks;

pub use api::QueuedSend;
use call::{CallCmd, CallIo};
pub use call_media::{GroupCallMedia, GroupCallPublisher, ReceivedFrame};
pub(super) use room::parse_room_note;

use super::groups::{self as offline, GroupError, GroupMessageView, view};
use super::{Inner, NodeError, lock, unix_ms};
use crate::contacts;
use crate::discovery::namespace::{NsEvent, RoleKind};
use crate::groups::engine::SendError;
use crate::groups::message::SignedMessage;
use crate::groups::store as gstore;
use crate::groups::{
    Body, Engine, GroupAction, GroupEvent, GroupFrame, GroupId, GroupInput, InviteLink, LogOp,
    MemHistory,
};
use crate::identity::Fingerprint;

/// Commands queued for one group's task.
const CMD_QUEUE: usize = 4096;
/// Most queued inputs handled before the batch is stored and sent.
const BATCH: usize = 512;

/// What happened in a group, for the application.
#[derive(Debug, Clone, PartialEq)]
pub enum GroupUpdate {
    /// A message was stored (live, backfilled or our own); each exactly once.
    Message {
        /// The group.
        group: GroupId,
        /// The message.
        message: GroupMessageView,
    },
    /// A contact we trust (level 2 or more) sent us an invite link and we joined its group.
    Invited {
        /// The group.
        group: GroupId,
        /// Who sent the link.
        by: Fingerprint,
    },
    /// Someone became a member.
    MemberJoined {
        /// The group.
        group: GroupId,
        /// The member.
        fingerprint: Fingerprint,
    },
    /// Someone left or was removed.
    MemberLeft {
        /// The group.
        group: GroupId,
        /// The former member.
        fingerprint: Fingerprint,
    },
    /// We route the group (`true`), or stopped routing / linked to a new router (`false`).
    Role {
        /// The group.
        group: GroupId,
        /// Whether we route it.
        router: bool,
    },
    /// A page of missed messages arrived: `received` stored from it; `more` remain.
    Backfill {
        /// The group.
        group: GroupId,
        /// Messages stored from the page.
        received: u64,
        /// The sender has more.
        more: bool,
    },
    /// We are no longer a member (removed, or our leave was appended).
    Departed {
        /// The group.
        group: GroupId,
    },
    /// A former member's messages after `cutoff` were deleted (its removal or leave came
    /// after them): a chat showing them drops them.
    Purged {
        /// The group.
        group: GroupId,
        /// The former member.
        author: Fingerprint,
        /// Its last message kept.
        cutoff: u64,
    },
    /// Who is in the group's call now (empty: nobody), whether we take part or not.
    CallRoster {
        /// The group.
        group: GroupId,
        /// The participants.
        participants: Vec<crate::calls::group::RosterEntry>,
    },
    /// Who speaks in the group's call now (empty: nobody), as its router hears them.
    CallSpeakers {
        /// The group.
        group: GroupId,
        /// The participants speaking, in the router's order.
        speaking: Vec<Fingerprint>,
    },
    /// A member appeared in the group's namespace (`online`) or left it.
    Presence {
        /// The group.
        group: GroupId,
        /// The member.
        fingerprint: Fingerprint,
        /// Whether it is online now.
        online: bool,
    },
    /// More of a group file is on disk (every few MiB).
    FileProgress {
        /// The group.
        group: GroupId,
        /// The file (its [`GroupFileRef::id`](super::groups::GroupFileRef::id)).
        file: String,
        /// Bytes received.
        received: u64,
        /// Its size.
        size: u64,
    },
    /// A group file arrived whole and verified (`path`), or was given up (`None`: no holder's
    /// bytes matched the author's hash).
    FileDone {
        /// The group.
        group: GroupId,
        /// The file.
        file: String,
        /// Where it is.
        path: Option<String>,
    },
    /// We entered the meeting room nearby (`Some`: its ID; after a merge, the room we moved
    /// to) or are out of it (`None`).
    Room {
        /// The room.
        group: Option<GroupId>,
    },
    /// Our part in the group's call moved on (waiting for a router, connecting, connected,
    /// out).
    CallPhase {
        /// The group.
        group: GroupId,
        /// Where we are.
        phase: crate::calls::group::Phase,
        /// The member our media connection goes to: the router, or in a call of two that the
        /// router does not join, the other participant (`None`: we route, or are out).
        media_peer: Option<Fingerprint>,
    },
}

/// The running groups of a node and who listens to them.
#[derive(Default)]
pub(super) struct LiveGroups {
    running: HashMap<GroupId, mpsc::Sender<Cmd>>,
    /// Groups we route now.
    routing: HashSet<GroupId>,
    /// Members other than us present in each running group's namespace.
    online: HashMap<GroupId, BTreeSet<Fingerprint>>,
    /// `None` once the node stopped.
    subscribers: Option<Vec<mpsc::UnboundedSender<GroupUpdate>>>,
    /// Media OFFERs a group call admitted: connection ID → group.
    call_offers: HashMap<String, GroupId>,
    /// The meeting room we are in (it runs among `running`).
    room: Option<GroupId>,
    /// Group files being received.
    files: files::Transfers,
    /// The router each running group's task is linked to (member side).
    router_of: HashMap<GroupId, Fingerprint>,
    /// The current members of each running group.
    members_of: HashMap<GroupId, BTreeSet<Fingerprint>>,
    /// Browsers let into a group's call: PeerJS ID → group.
    call_guests: HashMap<String, GroupId>,
    /// The pause before a group whose events could not be stored starts again (doubling while
    /// it keeps failing; forgotten once something is stored).
    restarts: HashMap<GroupId, std::time::Duration>,
    /// Groups deleted (or being deleted) while the node runs: no task or file fetch starts for
    /// them again (a restart or a fetch's successor may be on its way); joining one again by a
    /// link takes it out.
    deleted: HashSet<GroupId>,
}

impl LiveGroups {
    pub(super) fn new() -> Self {
        Self {
            running: HashMap::new(),
            routing: HashSet::new(),
            online: HashMap::new(),
            subscribers: Some(vec![]),
            call_offers: HashMap::new(),
            room: None,
            files: files::Transfers::default(),
            router_of: HashMap::new(),
            call_guests: HashMap::new(),
            restarts: HashMap::new(),
            members_of: HashMap::new(),
            deleted: HashSet::new(),
        }
    }

    /// Whom our running groups hold links with: the routers of the groups we are members of,
    /// and the members of the groups we route.
    pub(super) fn linked_peers(&self) -> HashSet<Fingerprint> {
        let routed = self.routing.iter().filter_map(|g| self.members_of.get(g));
        self.router_of
            .values()
            .copied()
            .chain(routed.flatten().copied())
            .collect()
    }
}

type Reply<T> = oneshot::Sender<Result<T, NodeError>>;

enum Cmd {
    Frame(Fingerprint, Box<GroupFrame>),
    /// A batch of messages, taken as one `Msg` frame each.
    Batch(Fingerprint, Vec<SignedMessage>),
    LinkGone(Fingerprint),
    Dialed(Fingerprint, bool),
    Send(String, Reply<GroupMessageView>),
    /// A signed file manifest to post.
    SendFile(Vec<u8>, Reply<GroupMessageView>),
    Propose(ProposeOp, Reply<()>),
    Invite(Fingerprint, Reply<String>),
    Call(CallCmd),
    /// The messages held (an open room's history lives only in its task).
    History(oneshot::Sender<Vec<GroupMessageView>>),
    /// The app moved to the foreground (`true`) or the background.
    Active(bool),
    Stop(oneshot::Sender<()>),
}

enum ProposeOp {
    Remove(Fingerprint),
    Leave,
}

impl From<GroupError> for NodeError {
    fn from(e: GroupError) -> Self {
        match e {
            GroupError::Store(s) => NodeError::Store(s),
            GroupError::UnknownGroup => NodeError::InvalidInput("unknown group".into()),
            GroupError::NotAllowed(w) => NodeError::NotAllowed(w.into()),
            GroupError::Invalid(w) => NodeError::InvalidInput(w),
        }
    }
}

impl From<SendError> for NodeError {
    fn from(e: SendError) -> Self {
        match e {
            SendError::NotMember => NodeError::NotAllowed(e.to_string()),
            SendError::OutboxFull => NodeError::Timeout(e.to_string()),
            SendError::Invalid(w) => NodeError::InvalidInput(w),
        }
    }
}

/// One group's task state.
struct Live {
    inner: Weak<Inner>,
    gid: GroupId,
    me: Fingerprint,
    engine: Engine<MemHistory>,
    tx: mpsc::Sender<Cmd>,
    /// Namespace peers that are or may be members: fingerprint → persistent PeerJS ID.
    ns_peers: HashMap<Fingerprint, String>,
    /// Router side: peers the engine was told are up.
    linked: HashSet<Fingerprint>,
    dialing: HashSet<Fingerprint>,
    /// Namespace peers our log could not place that gave us nothing while it did not hold us
    /// (not dialled, turned away, quiet), with our log's length then: `dial_members` tries
    /// them again only once it has grown, and forgets them once the log holds us.
    turned_away: HashMap<Fingerprint, usize>,
    /// When each peer last sent a group frame.
    heard: HashMap<Fingerprint, Instant>,
    /// Member side: the router the engine was given.
    router: Option<Fingerprint>,
    members: BTreeSet<Fingerprint>,
    sends: Vec<(Reply<GroupMessageView>, Result<GroupMessageView, NodeError>)>,
    proposals: Vec<(Reply<()>, Result<(), NodeError>)>,
    invites: Vec<(Reply<String>, Result<String, NodeError>)>,
    /// The group's call.
    call: CallIo,
    /// An open room: nothing is stored, and sends wait until we know our own seq there.
    room: bool,
    /// Room sends waiting for that.
    held: Vec<(String, Reply<GroupMessageView>)>,
    /// The router and log length last published in [`LiveGroups`] (file transfers read them).
    published: Option<(Option<Fingerprint>, usize)>,
    /// A foreground/background change for the group's namespace, taken by the task's loop.
    app_active: Option<bool>,
}

/// Most room sends held until we know our own seq in the room.
const MAX_HELD: usize = 256;

impl Live {
    fn input(&mut self, input: GroupInput) {
        self.engine.handle(input, Instant::now());
    }

    pub(super) fn on_cmd(&mut self, cmd: Cmd) -> Option<oneshot::Sender<()>> {
        match cmd {
            Cmd::Frame(peer, frame) => self.on_frame(peer, frame),
            Cmd::Batch(peer, msgs) => {
                self.heard.insert(peer, Instant::now());
                if self.engine.is_router() && self.linked.insert(peer) {
                    self.input(GroupInput::PeerUp { peer });
                }
                self.input(GroupInput::Batch { peer, msgs });
            }
            Cmd::LinkGone(peer) => {
                if self.linked.remove(&peer) {
                    self.input(GroupInput::PeerDown { peer });
                }
                if self.router == Some(peer) {
                    self.router = None;
                    self.input(GroupInput::RouterDown);
                }
            }
            Cmd::Dialed(peer, ok) => {
                self.dialing.remove(&peer);
                if !ok {
                    self.unplaced_gave_nothing(peer);
                }
                if ok && self.engine.is_router() && self.linked.insert(peer) {
                    self.heard.insert(peer, Instant::now());
                    self.input(GroupInput::PeerUp { peer });
                }
            }
            Cmd::Send(text, reply) if self.room && !self.engine.knows_own_seq() => {
                if self.held.len() < MAX_HELD {
                    self.held.push((text, reply));
                } else {
                    let _ = reply.send(Err(NodeError::Timeout(
                        "not connected to the room yet".into(),
                    )));
                }
            }
            Cmd::Send(text, reply) => self.send_body(Body::Text(text), reply),
            Cmd::SendFile(manifest, reply) => self.send_body(Body::File(manifest), reply),
            Cmd::Propose(op, reply) => {
                let r = match op {
                    ProposeOp::Remove(member) => {
                        let cutoff = self.engine.version_vector().get(&member);
                        self.engine
                            .propose(LogOp::Remove { member, cutoff }, unix_ms())
                    }
                    ProposeOp::Leave => self.engine.leave(unix_ms()),
                };
                self.proposals
                    .push((reply, r.map(drop).map_err(NodeError::from)));
            }
            Cmd::Invite(invitee, reply) => {
                let r = self.invite(invitee);
                self.invites.push((reply, r));
            }
            Cmd::Call(c) => self.on_call_cmd(c),
            Cmd::History(reply) => {
                let _ = reply.send(self.engine.history().ordered().iter().map(view).collect());
            }
            Cmd::Active(active) => {
                self.engine.set_active(active, Instant::now());
                self.app_active = Some(active);
            }
            Cmd::Stop(done) => return Some(done),
        }
        None
    }

    fn send_body(&mut self, body: Body, reply: Reply<GroupMessageView>) {
        let r = self
            .engine
            .send_message(body, unix_ms(), Instant::now())
            .map(|m| view(&m))
            .map_err(NodeError::from);
        self.sends.push((reply, r));
    }

    /// Tells the node's file transfers who our router is and who the members are, when that
    /// changed.
    fn publish(&mut self, inner: &Inner) {
        let now = (self.router, self.engine.log().entries().len());
        if self.published == Some(now) {
            return;
        }
        self.published = Some(now);
        let members = self.engine.log().state().members.keys().copied().collect();
        let mut g = lock(&inner.groups);
        match self.router {
            Some(r) => g.router_of.insert(self.gid, r),
            None => g.router_of.remove(&self.gid),
        };
        g.members_of.insert(self.gid, members);
    }

    /// Proposes inviting `invitee` (a member already invited gets its existing entry) and
    /// returns the link only it can use.
    fn invite(&mut self, invitee: Fingerprint) -> Result<String, NodeError> {
        let log = self.engine.log();
        let existing = log
            .entries()
            .iter()
            .find(|e| e.entry.op == LogOp::Invite(invitee))
            .filter(|_| log.state().is_member(&invitee))
            .cloned();
        let entry = match existing {
            Some(e) => e,
            None if !log.state().is_admin(&self.me) => {
                return Err(NodeError::NotAllowed("only admins invite".into()));
            }
            None => self.engine.propose(LogOp::Invite(invitee), unix_ms())?,
        };
        InviteLink::new(self.engine.log(), &entry)
            .map(|l| l.encode())
            .map_err(|e| NodeError::InvalidInput(e.to_string()))
    }

    fn on_frame(&mut self, peer: Fingerprint, frame: Box<GroupFrame>) {
        self.heard.insert(peer, Instant::now());
        if self.engine.is_router() {
            if self.linked.insert(peer) {
                self.input(GroupInput::PeerUp { peer });
            }
        } else if self.router != Some(peer)
            && matches!(*frame, GroupFrame::Hello { routing: true, .. })
            && self.engine.takes_router(&peer)
        {
            // The newest router that greets us wins (the election decided who it is), but
            // never over a member with one our log cannot place (anyone may claim to route).
            if self.router.take().is_some() {
                self.input(GroupInput::RouterDown);
            }
            self.router = Some(peer);
            self.input(GroupInput::RouterUp { router: peer });
            self.emit(GroupUpdate::Role {
                group: self.gid,
                router: false,
            });
        }
        let page = match &*frame {
            GroupFrame::Page { more, .. } if !self.engine.is_router() => Some(*more),
            _ => None,
        };
        let before = self.engine.stats().stored;
        self.input(GroupInput::Frame { peer, frame });
        if let Some(more) = page {
            let received = self.engine.stats().stored - before;
            if received > 0 {
                self.emit(GroupUpdate::Backfill {
                    group: self.gid,
                    received,
                    more,
                });
            }
        }
    }

    fn on_ns(&mut self, ev: NsEvent) {
        match ev {
            NsEvent::PeerSeen(p) => {
                let Ok(id) = String::from_utf8(p.note) else {
                    return;
                };
                if !contacts::valid_peer_id(&id) || p.fingerprint == self.me {
                    return;
                }
                let old = self.ns_peers.insert(p.fingerprint, id.clone());
                if self.engine.is_router() && old.is_some_and(|o| o != id) {
                    // It moved to another persistent ID: what we hold is stale.
                    self.forget(p.fingerprint);
                }
                self.sync_online();
                self.dial_members();
            }
            NsEvent::PeerGone(fp) => {
                self.ns_peers.remove(&fp);
                self.turned_away.remove(&fp);
                self.sync_online();
            }
            NsEvent::Role(RoleKind::Router(_)) => {
                if !self.engine.is_router() {
                    self.router = None;
                    self.input(GroupInput::BecameRouter);
                    self.dial_members();
                }
            }
            NsEvent::Role(_) => {
                if self.engine.is_router() {
                    self.linked.clear();
                    self.input(GroupInput::StoppedRouting);
                }
            }
            NsEvent::Misbehaved { remote, reason } => {
                tracing::info!(group = %self.gid, %remote, %reason, "group namespace peer dropped");
            }
        }
    }

    /// Publishes which members are present in the namespace (signed presence records), and
    /// each change as [`GroupUpdate::Presence`].
    fn sync_online(&mut self) {
        if self.room {
            // A room's members are the people in it now (its call admits only them).
            self.members = std::iter::once(self.me)
                .chain(self.ns_peers.keys().copied())
                .collect();
        }
        let state = self.engine.log().state();
        let now: BTreeSet<Fingerprint> = self
            .ns_peers
            .keys()
            .filter(|fp| state.is_member(fp))
            .copied()
            .collect();
        let Some(inner) = self.inner.upgrade() else {
            return;
        };
        let before = lock(&inner.groups)
            .online
            .insert(self.gid, now.clone())
            .unwrap_or_default();
        let group = self.gid;
        for (fp, online) in now
            .difference(&before)
            .map(|f| (*f, true))
            .chain(before.difference(&now).map(|f| (*f, false)))
        {
            self.emit(GroupUpdate::Presence {
                group,
                fingerprint: fp,
                online,
            });
        }
    }

    fn emit(&self, update: GroupUpdate) {
        if let Some(inner) = self.inner.upgrade() {
            inner.emit_group(update);
        }
    }

    /// An open room's held sends go once we know our own seq there.
    fn release_held(&mut self) {
        if self.held.is_empty() || !self.engine.knows_own_seq() {
            return;
        }
        for (text, reply) in std::mem::take(&mut self.held) {
            self.on_cmd(Cmd::Send(text, reply));
        }
    }

    /// Stores what the engine reported, then sends its frames, answers local callers and
    /// tells the application. `false`: it could not be stored (a full disk): nothing of it
    /// went out, and the engine is ahead of the store (the task starts again from the store).
    async fn flush(&mut self) -> bool {
        let Some(inner) = self.inner.upgrade() else {
            return true;
        };
        let actions = self.engine.drain_actions();
        let events: Vec<GroupEvent> = actions
            .iter()
            .filter_map(|a| match a {
                GroupAction::Event(e) => Some(e.clone()),
                _ => None,
            })
            .collect();
        let stored = if !self.room && events.iter().any(persisted) {
            let (log, evs, gid, max) = (
                self.engine.log().clone(),
                events.clone(),
                self.gid,
                inner.max_file(),
            );
            let offered: Vec<_> = events
                .iter()
                .filter_map(|e| match e {
                    GroupEvent::Message(m) if m.author_fp() != self.me => files::offered_file(m),
                    _ => None,
                })
                .collect();
            inner
                .db(move |c| {
                    let now = unix_ms();
                    let tx = c.transaction().map_err(crate::store::StoreError::from)?;
                    gstore::persist(&tx, &log, &evs, now)?;
                    let fetch = files::record_group_files(&tx, &gid, offered, max, now)?;
                    tx.commit().map_err(crate::store::StoreError::from)?;
                    Ok::<_, NodeError>(fetch)
                })
                .await
        } else {
            Ok(vec![])
        };
        for (reply, r) in self.sends.drain(..) {
            let _ = reply.send(unless_unstored(&stored, r));
        }
        for (reply, r) in self.proposals.drain(..) {
            let _ = reply.send(unless_unstored(&stored, r));
        }
        for (reply, r) in self.invites.drain(..) {
            let _ = reply.send(unless_unstored(&stored, r));
        }
        match &stored {
            // Sent, its messages would be held by the others and not by us: our next ones
            // would reuse their seqs and be dropped everywhere as duplicates.
            Err(e) => {
                tracing::warn!(group = %self.gid, error = %e, "could not store group events");
                return false;
            }
            Ok(fetch) => {
                if !self.room && events.iter().any(persisted) {
                    lock(&inner.groups).restarts.remove(&self.gid);
                }
                Inner::fetch_new_group_files(&inner, self.gid, fetch.clone());
            }
        }
        self.notify(&inner, &events).await;
        let mut out = batch::Outgoing::default();
        for a in actions {
            match a {
                GroupAction::Send { peer, frame } => out.push(peer, frame),
                GroupAction::Drop { peer, reason } => {
                    tracing::info!(group = %self.gid, %peer, %reason, "group peer dropped");
                    self.linked.remove(&peer);
                    self.unplaced_gave_nothing(peer);
                    if self.router == Some(peer) {
                        self.router = None;
                    }
                }
                GroupAction::Event(e) => self.on_event(e),
            }
        }
        out.send(&inner, self.gid).await;
        self.publish(&inner);
        self.flush_call(&inner).await;
        true
    }

    /// This task no longer runs the group.
    fn forget_running(&self) {
        if let Some(inner) = self.inner.upgrade() {
            let mut g = lock(&inner.groups);
            g.running.remove(&self.gid);
            g.routing.remove(&self.gid);
            g.online.remove(&self.gid);
            g.router_of.remove(&self.gid);
            g.members_of.remove(&self.gid);
            if g.room == Some(self.gid) {
                g.room = None;
            }
        }
    }

    fn on_event(&mut self, e: GroupEvent) {
        let group = self.gid;
        match e {
            GroupEvent::Message(m) => {
                self.emit(GroupUpdate::Message {
                    group,
                    message: view(&m),
                });
            }
            GroupEvent::LogUpdated { .. } => {
                let now: BTreeSet<Fingerprint> =
                    self.engine.log().state().members.keys().copied().collect();
                for fp in now.difference(&self.members) {
                    self.emit(GroupUpdate::MemberJoined {
                        group,
                        fingerprint: *fp,
                    });
                }
                for fp in self.members.difference(&now) {
                    self.emit(GroupUpdate::MemberLeft {
                        group,
                        fingerprint: *fp,
                    });
                }
                self.members = now;
                self.sync_online();
                self.dial_members();
            }
            GroupEvent::Role(router) => {
                if let Some(inner) = self.inner.upgrade() {
                    let mut g = lock(&inner.groups);
                    if router {
                        g.routing.insert(group);
                    } else {
                        g.routing.remove(&group);
                    }
                }
                self.emit(GroupUpdate::Role { group, router });
            }
            GroupEvent::Departed => self.emit(GroupUpdate::Departed { group }),
            GroupEvent::Purged { author, cutoff } => self.emit(GroupUpdate::Purged {
                group,
                author,
                cutoff,
            }),
            GroupEvent::Refused { peer, reason } => {
                tracing::info!(%group, %peer, %reason, "refused group input");
            }
            GroupEvent::RouterRefused { router } => {
                tracing::info!(%group, %router, "refused a router that is not a member");
                if self.router == Some(router) {
                    self.router = None;
                }
            }
            GroupEvent::ProposalDropped(op) => {
                tracing::info!(%group, ?op, "a membership change no longer applies");
            }
            GroupEvent::Acked { .. } | GroupEvent::Proposals(_) => {}
        }
    }
}

fn persisted(e: &GroupEvent) -> bool {
    matches!(
        e,
        GroupEvent::Message(_)
            | GroupEvent::Purged { .. }
            | GroupEvent::LogUpdated { .. }
            | GroupEvent::Acked { .. }
            | GroupEvent::Proposals(_)
    )
}

/// `r`, or an error if what it answers could not be stored.
fn unless_unstored<T, U>(
    stored: &Result<U, NodeError>,
    r: Result<T, NodeError>,
) -> Result<T, NodeError> {
    match (stored, r) {
        (Err(e), Ok(_)) => Err(NodeError::InvalidInput(format!("not stored: {e}"))),
        (_, r) => r,
    }
}

/// Runs an offline group operation on the blocking pool.
pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, GroupError> + Send + 'static,
) -> Result<T, NodeError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| NodeError::Store(crate::store::StoreError::Task(e)))?
        .map_err(NodeError::from)
}
