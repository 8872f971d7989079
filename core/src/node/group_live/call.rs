//! The driver of a group's call on a running node (`calls::group` is the machine): it runs in
//! the group's task, feeds the machine what the group knows (who routes, who is a member, which
//! links are up), and carries out its actions on links, media connections and, when we route,
//! the forwarder ([`SfuHub`]).
//!
//! A media OFFER reaches the router through the node's media offers: it is answered only if a
//! `Join` on the member's Noise session announced its connection ID and DTLS fingerprint, and it
//! comes from the member's persistent PeerJS ID. A member keeps its connection only if the
//! ANSWER carries the fingerprint the router's `Welcome` named (`docs/decisions/0016`).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Instant;

mod api;
mod guests;
mod hub;
mod links;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::call_media::{
    CONNECT_TIMEOUT, GroupCallMedia, Shared, read_uplink, receive_kinds, view_as_router,
};
use super::{Cmd, Live, Reply};
use crate::calls::binding::check_dtls;
use crate::calls::group::{
    Action, GroupCall, GroupCallConfig, GroupCallEvent, GroupCallFrame, Input, Layout, MAX_SLOTS,
    RosterEntry, THUMBNAIL_SLOTS, Uplinking,
};
use crate::calls::{DtlsFingerprint, Kinds, MediaState};
use crate::chat::wire::ErrorCode;
use crate::groups::GroupId;
use crate::identity::Fingerprint;
use crate::media::sfu::{ParticipantId, SfuConfig, SlotId, TrackKind};
use crate::media::sfu_hub::{SfuHub, slot_track_name};
use crate::node::call_media::track_specs;
use crate::node::{Inner, NodeError, lock};
use crate::session::{FEATURE_CALL_PAIRS, FEATURE_GROUP_CALLS};
use crate::transport::{
    IncomingMedia, MediaCertificate, MediaConnection, MediaKind, MediaOptions,
    MediaState as ConnState, TrackSpec,
};

/// Commands of the call, queued on the group's task.
pub(in crate::node) enum CallCmd {
    Frame(Fingerprint, GroupCallFrame),
    Join(Kinds, Reply<GroupCallMedia>),
    Leave(Reply<()>),
    SetMedia(MediaState, Reply<()>),
    Roster(Reply<Vec<RosterEntry>>),
    Offer(IncomingMedia),
    /// Router side: a participant's connection is up.
    Answered {
        peer: Fingerprint,
        media_id: String,
        conn: MediaConnection,
    },
    /// Member side: our connection to the router is up.
    Uplinked {
        media_id: String,
        conn: MediaConnection,
    },
    Down {
        peer: Fingerprint,
        media_id: String,
    },
    Slots(ParticipantId, Vec<(SlotId, Option<ParticipantId>)>),
    /// Router side: the participants the forwarder hears speaking, and whether we speak.
    Speakers(Vec<ParticipantId>, bool),
    /// Hub: the rotation a participant's video packets carry changed (degrees).
    Rotation(ParticipantId, u16),
    /// A dial to a pair's partner ended.
    Dialed(Fingerprint),
    /// Let the browser with this PeerJS ID into the call.
    AllowGuest(String, Reply<()>),
    /// A media OFFER from a browser let into the call.
    GuestOffer(IncomingMedia),
}

/// What the router (or a pair's host) admitted: the OFFER it will answer, and how.
struct Admit {
    peer: Fingerprint,
    dtls: DtlsFingerprint,
    router_kinds: Kinds,
    layout: Layout,
    /// Our certificate in the ANSWER (the router's, or a host's own).
    cert: MediaCertificate,
    /// A browser guest's PeerJS ID (its OFFER comes from there).
    browser: Option<String>,
}

/// Our connection to the router (or our pair's host).
struct Uplink {
    to: Fingerprint,
    media_id: String,
    conn: Option<MediaConnection>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Uplink {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        if let Some(c) = self.conn.take() {
            tokio::spawn(async move { c.close().await });
        }
    }
}

/// The forwarder and what we keep about its participants.
struct Hub {
    hub: Arc<SfuHub>,
    ids: Arc<Mutex<HashMap<ParticipantId, Fingerprint>>>,
    next: u64,
    admits: HashMap<String, Admit>,
    /// Connected participants: their number and connection.
    conns: HashMap<Fingerprint, (ParticipantId, String, MediaConnection)>,
    events: JoinHandle<()>,
}

impl Drop for Hub {
    fn drop(&mut self) {
        self.events.abort();
        for (_, _, c) in self.conns.values() {
            let c = c.clone();
            tokio::spawn(async move { c.close().await });
        }
    }
}

/// The call side of a group's task.
pub(super) struct CallIo {
    machine: GroupCall,
    layout: Layout,
    shared: Option<Arc<Shared>>,
    cert: Option<MediaCertificate>,
    router_cert: Option<MediaCertificate>,
    uplink: Option<Uplink>,
    hub: Option<Hub>,
    /// Frames to send at the next flush.
    outbox: Vec<(Fingerprint, GroupCallFrame)>,
    /// What the machine was last told.
    told_routing: bool,
    told_router: Option<Fingerprint>,
    told_members: BTreeSet<Fingerprint>,
    told_linked: HashSet<Fingerprint>,
    /// Whether we speak (from our own audio frames' levels), for the router's speaker list.
    speaking: watch::Sender<bool>,
    /// Members we dial to reach (a pair's host or guest we have no link to).
    dialing: HashSet<Fingerprint>,
    /// Browsers let into the call: participant ID → PeerJS ID.
    guests: HashMap<Fingerprint, String>,
    /// Their OFFERs waiting for the machine's admission (answered or refused at the flush).
    guest_offers: Vec<IncomingMedia>,
}

impl CallIo {
    pub(super) fn new(group: GroupId, me: Fingerprint) -> Self {
        let cfg = GroupCallConfig::default();
        Self {
            machine: GroupCall::new(group, me, cfg),
            layout: cfg.layout,
            shared: None,
            cert: None,
            router_cert: None,
            uplink: None,
            hub: None,
            outbox: vec![],
            told_routing: false,
            told_router: None,
            told_members: BTreeSet::new(),
            told_linked: HashSet::new(),
            speaking: watch::channel(false).0,
            dialing: HashSet::new(),
            guests: HashMap::new(),
            guest_offers: vec![],
        }
    }
}

fn media_kind(k: TrackKind) -> MediaKind {
    match k {
        TrackKind::Audio => MediaKind::Audio,
        TrackKind::Video | TrackKind::Screen => MediaKind::Video,
    }
}

/// A fresh prefix for our group-call connection IDs (`mc_…g`, then a counter).
fn new_id_prefix() -> String {
    format!("{}g", crate::node::calls::new_media_id())
}

fn dtls_of(cert: &MediaCertificate) -> Option<DtlsFingerprint> {
    DtlsFingerprint::parse(cert.fingerprint())
}

impl Live {
    fn call_input(&mut self, input: Input) {
        self.call.machine.handle(input, Instant::now());
    }

    /// Tells the call machine what changed in the group since the last time.
    fn sync_call(&mut self) {
        let routing = self.engine.is_router();
        if routing != self.call.told_routing {
            self.call.told_routing = routing;
            if routing {
                let cert = MediaCertificate::generate().ok();
                match cert.as_ref().and_then(dtls_of) {
                    Some(d) => {
                        self.call.router_cert = cert;
                        self.call_input(Input::Routing(Some(d)));
                    }
                    None => tracing::warn!(group = %self.gid, "no certificate to route calls"),
                }
            } else {
                self.call_input(Input::Routing(None));
                self.call.router_cert = None;
            }
        }
        if !routing && self.router != self.call.told_router {
            self.call.told_router = self.router;
            self.call_input(Input::Router(self.router));
        }
        if self.members != self.call.told_members {
            self.call.told_members = self.members.clone();
            self.call_input(Input::Members(self.members.clone()));
        }
        if self.linked != self.call.told_linked {
            let up: Vec<Fingerprint> = self
                .linked
                .difference(&self.call.told_linked)
                .copied()
                .collect();
            let gone: Vec<Fingerprint> = self
                .call
                .told_linked
                .difference(&self.linked)
                .copied()
                .collect();
            self.call.told_linked = self.linked.clone();
            for p in gone {
                self.call_input(Input::PeerGone(p));
            }
            let inner = self.inner.upgrade();
            for peer in up {
                let pairs = inner
                    .as_ref()
                    .and_then(|i| i.link(&peer))
                    .is_some_and(|l| l.features & FEATURE_CALL_PAIRS != 0);
                self.call_input(Input::PeerUp { peer, pairs });
            }
        }
    }

    /// When the call machine wants [`Live::on_call_timeout`].
    pub(super) fn call_timeout(&self) -> Option<Instant> {
        self.call.machine.poll_timeout()
    }

    /// Runs the call machine's due timers (join retries, connect timeouts).
    pub(super) fn on_call_timeout(&mut self) {
        let now = Instant::now();
        if self.call_timeout().is_some_and(|t| t <= now) {
            self.call.machine.handle_timeout(now);
        }
    }

    pub(super) fn on_call_cmd(&mut self, cmd: CallCmd) {
        self.sync_call();
        self.sync_layout();
        match cmd {
            CallCmd::Frame(from, frame) => {
                tracing::debug!(group = %self.gid, %from, ?frame, "group call frame");
                self.call_input(Input::Frame { from, frame });
            }
            CallCmd::Join(kinds, reply) => {
                let _ = reply.send(self.join_call(kinds));
            }
            CallCmd::Leave(reply) => {
                self.call_input(Input::Leave);
                if let Some(s) = self.call.shared.take() {
                    s.clear();
                }
                self.call.cert = None;
                let _ = reply.send(Ok(()));
            }
            CallCmd::SetMedia(state, reply) => {
                let r = if self.call.machine.in_call() {
                    if let Some(s) = &self.call.shared {
                        s.set_rotation(state.rotation);
                    }
                    self.call_input(Input::SetMedia(state));
                    Ok(())
                } else {
                    Err(NodeError::NotAllowed("not in the group's call".into()))
                };
                let _ = reply.send(r);
            }
            CallCmd::Roster(reply) => {
                let _ = reply.send(Ok(self.call.machine.roster().to_vec()));
            }
            CallCmd::Offer(inc) => self.on_offer(inc),
            CallCmd::Answered {
                peer,
                media_id,
                conn,
            } => self.on_answered(peer, media_id, conn),
            CallCmd::Uplinked { media_id, conn } => self.on_uplinked(media_id, conn),
            CallCmd::Down { peer, media_id } => {
                self.call_input(Input::MediaDown { peer, media_id })
            }
            CallCmd::Slots(to, slots) => self.on_slots(to, slots),
            CallCmd::Speakers(heard, ourselves) => self.on_speakers(heard, ourselves),
            CallCmd::Rotation(id, degrees) => self.on_rotation(id, degrees),
            CallCmd::Dialed(peer) => {
                self.call.dialing.remove(&peer);
            }
            CallCmd::AllowGuest(peer_id, reply) => {
                let _ = reply.send(self.allow_guest(peer_id));
            }
            CallCmd::GuestOffer(inc) => self.on_guest_offer(inc),
        }
    }

    /// Last-N as set now, for the calls we route from here on (not while we forward one).
    fn sync_layout(&mut self) {
        if self.call.hub.is_some() {
            return;
        }
        let Some(inner) = self.inner.upgrade() else {
            return;
        };
        let n = inner.call_last_n.load(std::sync::atomic::Ordering::SeqCst);
        if self.call.layout.last_n() != n {
            let layout = Layout {
                video: n + THUMBNAIL_SLOTS,
                ..Layout::default()
            };
            self.call.layout = layout;
            self.call.machine.set_layout(layout);
        }
    }

    fn join_call(&mut self, kinds: Kinds) -> Result<GroupCallMedia, NodeError> {
        if !self.members.contains(&self.me) {
            return Err(NodeError::NotAllowed("not a member of the group".into()));
        }
        let cert = MediaCertificate::generate()?;
        let dtls = dtls_of(&cert)
            .ok_or_else(|| NodeError::InvalidInput("no SHA-256 certificate fingerprint".into()))?;
        let (media, shared) = GroupCallMedia::new(self.call.speaking.clone());
        self.call.cert = Some(cert);
        if let Some(old) = self.call.shared.replace(shared) {
            old.clear();
        }
        // A second join replaces the first: its connections go.
        self.call.uplink = None;
        self.call_input(Input::Leave);
        self.call_input(Input::Join {
            kinds,
            state: MediaState::default(),
            dtls,
            id_prefix: new_id_prefix(),
        });
        self.tap_hub();
        // Routing already: our tracks on the participants' connections carry our media again
        // (a leave cleared them; those connections stay as they are).
        if let (Some(hub), Some(shared)) = (&self.call.hub, &self.call.shared) {
            for (_, _, conn) in hub.conns.values() {
                shared.add_sources(conn);
            }
        }
        Ok(media)
    }

    /// Router side, in the call: the forwarder's input feeds our own view (the hub tells a
    /// new tap the tracks already published).
    fn tap_hub(&mut self) {
        if let (Some(hub), Some(shared)) = (&self.call.hub, &self.call.shared) {
            let tap = view_as_router(shared, &hub.hub, hub.ids.clone());
            let h = hub.hub.clone();
            tokio::spawn(async move { h.tap(tap).await });
        }
    }

    fn on_offer(&mut self, inc: IncomingMedia) {
        let Some(inner) = self.inner.upgrade() else {
            return;
        };
        let Some(hub) = self.call.hub.as_mut() else {
            inc.refuse();
            return;
        };
        let Some(admit) = hub.admits.remove(inc.connection_id()) else {
            inc.refuse();
            return;
        };
        inner.forget_call_offer(inc.connection_id());
        let from_member = self.ns_peers.get(&admit.peer).map(String::as_str) == Some(inc.peer())
            || admit.browser.as_deref() == Some(inc.peer())
            || inner
                .link(&admit.peer)
                .is_some_and(|l| l.peer == inc.peer());
        if !from_member {
            tracing::info!(group = %self.gid, peer = inc.peer(), "group call offer from another ID");
            inc.refuse();
            return;
        }
        if let Err(e) = check_dtls(&admit.dtls, inc.remote_dtls()) {
            tracing::info!(group = %self.gid, error = %e, "group call offer refused");
            inc.refuse();
            return;
        }
        let cert = admit.cert;
        let mut tracks: Vec<TrackSpec> = admit
            .layout
            .slots()
            .into_iter()
            .map(|s| TrackSpec::forwarding(slot_track_name(s.kind, s.index), media_kind(s.kind)))
            .collect();
        tracks.extend(track_specs(admit.router_kinds));
        let (tx, peer) = (self.tx.clone(), admit.peer);
        tokio::spawn(async move {
            let media_id = inc.connection_id().to_owned();
            let cmd = match inc.accept_for_forwarding(tracks, Some(cert)).await {
                Ok(conn) => match conn.connected(CONNECT_TIMEOUT).await {
                    Ok(()) => CallCmd::Answered {
                        peer,
                        media_id,
                        conn,
                    },
                    Err(_) => {
                        conn.close().await;
                        CallCmd::Down { peer, media_id }
                    }
                },
                Err(_) => CallCmd::Down { peer, media_id },
            };
            let _ = tx.send(Cmd::Call(cmd)).await;
        });
    }

    fn on_answered(&mut self, peer: Fingerprint, media_id: String, conn: MediaConnection) {
        let current = self.call.machine.answers(&peer);
        let Some(hub) = self.call.hub.as_mut().filter(|_| current) else {
            tokio::spawn(async move { conn.close().await });
            return;
        };
        hub.next += 1;
        let pid = ParticipantId(hub.next);
        lock(&hub.ids).insert(pid, peer);
        if let Some((old, old_id, c)) = hub
            .conns
            .insert(peer, (pid, media_id.clone(), conn.clone()))
        {
            let h = hub.hub.clone();
            if let Some(s) = &self.call.shared {
                s.remove_sources(&old_id);
            }
            tokio::spawn(async move {
                h.leave(old).await;
                c.close().await;
            });
        }
        let h = hub.hub.clone();
        let c = conn.clone();
        tokio::spawn(async move { h.join(pid, c).await });
        if let Some(s) = &self.call.shared {
            s.add_sources(&conn);
        }
        watch_closed(&conn, peer, media_id.clone(), self.tx.clone());
        self.call_input(Input::MediaUp { peer, media_id });
    }

    fn on_uplinked(&mut self, media_id: String, conn: MediaConnection) {
        let (Some(up), Some(shared)) = (self.call.uplink.as_mut(), &self.call.shared) else {
            tokio::spawn(async move { conn.close().await });
            return;
        };
        if up.media_id != media_id {
            tokio::spawn(async move { conn.close().await });
            return;
        }
        let host = up.to;
        shared.add_sources(&conn);
        up.tasks.push(read_uplink(shared, conn.clone(), host));
        up.tasks
            .push(watch_closed(&conn, host, media_id.clone(), self.tx.clone()));
        up.conn = Some(conn);
        self.call_input(Input::MediaUp {
            peer: host,
            media_id,
        });
    }

    /// Carries out the call machine's actions (after the group's own ones).
    pub(super) async fn flush_call(&mut self, inner: &Arc<Inner>) {
        self.sync_call();
        let actions = self.call.machine.drain_actions();
        for a in actions {
            tracing::debug!(group = %self.gid, action = ?a, "group call");
            match a {
                Action::Send { to, frame } => self.call.outbox.push((to, frame)),
                Action::Broadcast(frame) => {
                    for to in &self.linked {
                        self.call.outbox.push((*to, frame.clone()));
                    }
                }
                Action::Admit {
                    peer,
                    media_id,
                    dtls,
                    router_kinds,
                    layout,
                } => {
                    let browser = self.call.guests.get(&peer).cloned();
                    let admit = |cert| Admit {
                        peer,
                        dtls,
                        router_kinds,
                        layout,
                        cert,
                        browser,
                    };
                    // A router answers with its routing certificate, a pair's host with the
                    // one its own join announced.
                    let cert = if self.engine.is_router() {
                        self.call.router_cert.clone()
                    } else {
                        self.call.cert.clone()
                    };
                    if let Some(cert) = cert {
                        self.admit(inner, media_id, admit(cert));
                    }
                }
                Action::Expel { peer } => self.expel(inner, peer),
                Action::Connect(to) => self.connect(inner, to),
                Action::Disconnect => {
                    if let Some(up) = self.call.uplink.take()
                        && let Some(s) = &self.call.shared
                    {
                        s.remove_sources(&up.media_id);
                        lock(&s.slots).clear();
                    }
                }
                Action::Refuse { to, reason } => {
                    if let Some(link) = inner.link(&to) {
                        link.refuse(ErrorCode::NotAllowed, reason).await;
                    }
                }
                Action::Event(GroupCallEvent::Roster(participants)) => {
                    inner.emit_group(super::GroupUpdate::CallRoster {
                        group: self.gid,
                        participants,
                    });
                }
                Action::Event(GroupCallEvent::Phase(phase)) => {
                    inner.emit_group(super::GroupUpdate::CallPhase {
                        group: self.gid,
                        phase,
                        media_peer: self.call.machine.media_peer(),
                    });
                }
                Action::Event(GroupCallEvent::Speakers(speaking)) => {
                    inner.emit_group(super::GroupUpdate::CallSpeakers {
                        group: self.gid,
                        speaking,
                    });
                }
                Action::Event(GroupCallEvent::Slots(slots)) => {
                    if let Some(s) = &self.call.shared {
                        let mut map = lock(&s.slots);
                        map.clear();
                        map.extend(slots.into_iter().filter_map(|(s, w)| w.map(|w| (s, w))));
                    }
                }
            }
        }
        if !self.call.machine.hosts() && self.call.hub.is_some() {
            self.call.hub = None;
        }
        self.answer_guests();
        self.send_call_frames(inner).await;
    }

    fn admit(&mut self, inner: &Arc<Inner>, media_id: String, admit: Admit) {
        if self.call.hub.is_none() {
            let layout = self.call.layout;
            let (hub, events) = SfuHub::start(SfuConfig {
                last_n: usize::from(layout.last_n()),
                audio_slots: usize::from(layout.audio),
                ..SfuConfig::default()
            });
            let forward =
                hub::forward_events(events, self.tx.clone(), self.call.speaking.subscribe());
            self.call.hub = Some(Hub {
                hub: Arc::new(hub),
                ids: Arc::default(),
                next: 0,
                admits: HashMap::new(),
                conns: HashMap::new(),
                events: forward,
            });
            self.tap_hub();
        }
        let hub = self.call.hub.as_mut().expect("made above");
        hub.admits.retain(|_, a| a.peer != admit.peer);
        hub.admits.insert(media_id.clone(), admit);
        inner.expect_call_offer(media_id, self.gid);
    }

    fn expel(&mut self, inner: &Arc<Inner>, peer: Fingerprint) {
        let Some(hub) = self.call.hub.as_mut() else {
            return;
        };
        hub.admits.retain(|id, a| {
            let keep = a.peer != peer;
            if !keep {
                inner.forget_call_offer(id);
            }
            keep
        });
        if let Some((pid, media_id, conn)) = hub.conns.remove(&peer) {
            lock(&hub.ids).remove(&pid);
            if let Some(s) = &self.call.shared {
                s.remove_sources(&media_id);
            }
            let h = hub.hub.clone();
            tokio::spawn(async move {
                h.leave(pid).await;
                conn.close().await;
            });
        }
    }

    fn connect(&mut self, inner: &Arc<Inner>, to: Uplinking) {
        let Uplinking {
            host,
            media_id,
            dtls,
            layout,
            router_kinds,
            kinds,
        } = to;
        let Some(cert) = self.call.cert.clone() else {
            return;
        };
        let peer_id = self
            .ns_peers
            .get(&host)
            .cloned()
            .or_else(|| inner.link(&host).map(|l| l.peer.clone()));
        let Some(peer_id) = peer_id else {
            self.call_input(Input::MediaDown {
                peer: host,
                media_id,
            });
            return;
        };
        let opts = MediaOptions {
            tracks: track_specs(kinds),
            receive: receive_kinds(&layout, router_kinds, kinds),
            metadata: serde_json::json!({ "group": self.gid.to_hex() }),
            connection_id: Some(media_id.clone()),
            certificate: Some(cert),
        };
        let (tx, weak, id) = (self.tx.clone(), self.inner.clone(), media_id.clone());
        let task = tokio::spawn(async move {
            let Some(inner) = weak.upgrade() else { return };
            let transport = inner.transport();
            drop(inner);
            let cmd = match transport.call(&peer_id, opts).await {
                Ok(conn) => match conn.connected(CONNECT_TIMEOUT).await {
                    Ok(()) if check_dtls(&dtls, conn.remote_dtls()).is_ok() => {
                        CallCmd::Uplinked { media_id: id, conn }
                    }
                    r => {
                        if r.is_ok() {
                            tracing::warn!("group call answer with another certificate");
                        }
                        conn.close().await;
                        CallCmd::Down {
                            peer: host,
                            media_id: id,
                        }
                    }
                },
                Err(e) => {
                    tracing::info!(error = %e, "could not offer group call media");
                    CallCmd::Down {
                        peer: host,
                        media_id: id,
                    }
                }
            };
            let _ = tx.send(Cmd::Call(cmd)).await;
        });
        self.call.uplink = Some(Uplink {
            to: host,
            media_id,
            conn: None,
            tasks: vec![task],
        });
    }
}

/// Reports `Down` when `conn` closes.
fn watch_closed(
    conn: &MediaConnection,
    peer: Fingerprint,
    media_id: String,
    tx: mpsc::Sender<Cmd>,
) -> JoinHandle<()> {
    let mut state = conn.state();
    tokio::spawn(async move {
        let _ = state.wait_for(|s| *s == ConnState::Closed).await;
        let _ = tx.send(Cmd::Call(CallCmd::Down { peer, media_id })).await;
    })
}

impl Inner {
    /// Router side: the media OFFER `media_id` belongs to group `gid`'s call.
    fn expect_call_offer(self: &Arc<Self>, media_id: String, gid: GroupId) {
        lock(&self.groups).call_offers.insert(media_id, gid);
        Inner::take_media_offers(self);
    }

    fn forget_call_offer(&self, media_id: &str) {
        lock(&self.groups).call_offers.remove(media_id);
    }

    /// A media OFFER no 1:1 call announced: a group call's, if one admitted it. Returns it
    /// otherwise.
    pub(in crate::node) fn route_call_offer(&self, inc: IncomingMedia) -> Option<IncomingMedia> {
        let g = lock(&self.groups);
        let Some(tx) = g
            .call_offers
            .get(inc.connection_id())
            .and_then(|gid| g.running.get(gid))
            .cloned()
        else {
            drop(g);
            return self.route_guest_offer(inc);
        };
        drop(g);
        // A full queue drops the offer, which refuses it; the member joins again.
        let _ = tx.try_send(Cmd::Call(CallCmd::Offer(inc)));
        None
    }

    /// A group-call frame arrived on `link`: queued for its group's task.
    pub(in crate::node) async fn on_group_call_frame(
        &self,
        link: &Arc<crate::node::link::Link>,
        bytes: Vec<u8>,
    ) {
        if link.features & FEATURE_GROUP_CALLS == 0 {
            link.refuse(ErrorCode::NotAllowed, "group calls were not negotiated")
                .await;
            return;
        }
        let frame = match GroupCallFrame::decode(&bytes) {
            Ok(f) => f,
            Err(e) => {
                link.refuse(ErrorCode::Malformed, &e.to_string()).await;
                return;
            }
        };
        let tx = lock(&self.groups).running.get(&frame.group()).cloned();
        if let Some(tx) = tx
            && tx
                .try_send(Cmd::Call(CallCmd::Frame(link.fp, frame)))
                .is_err()
        {
            tracing::debug!(peer = %link.peer, "group queue full; call frame dropped");
        }
    }
}
