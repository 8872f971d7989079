//! The group-call control machine of one group on one node (sans-IO: inputs and the time in,
//! actions out). The group's elected router (`node/group_live.rs`) is also the call's media
//! router: members announce their media connection to it (`Join`), it admits it (`Welcome`,
//! naming the certificate of its ANSWER and the slots it forwards), publishes the roster to
//! every linked member and tells each participant whom its slots show.
//!
//! ```text
//! member:  Join ─▶ (router) ─Welcome─▶ Connect ─media up─▶ Connected
//!          router changes / media down / router forgot us ─▶ Join again (new media id)
//! router:  Join ─▶ Admit + Welcome + Roster ─media up─▶ connected in the roster
//!          Leave / link gone / no longer a member / no media in time ─▶ Expel + Roster
//! ```
//!
//! The call survives the router: when another member is elected, every participant joins it
//! with a fresh media connection; media resumes once the new router forwards again.
//!
//! Two participants and a router that does not take part: the router pairs them (`Pair`), and
//! the guest joins the host exactly as it would join a router, on their own session; the host
//! answers with its own tracks and forwards nothing ([`pair`]). A third participant, the
//! router joining, or a direct connection that fails ends the pair: both join the router.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Instant;

mod frames;
mod guest;
mod io;
mod pair;

pub use guest::{MAX_GUESTS, guest_fingerprint};
pub use io::{Action, GroupCallConfig, GroupCallEvent, Input, Phase, Uplinking};
use pair::Paired;

use super::wire::{GroupCallFrame, Layout, MAX_PARTICIPANTS, RosterEntry};
use crate::calls::{DtlsFingerprint, Kinds, MediaState};
use crate::groups::GroupId;
use crate::identity::Fingerprint;

#[derive(Debug, Clone)]
struct Local {
    kinds: Kinds,
    state: MediaState,
    dtls: DtlsFingerprint,
    id_prefix: String,
}

#[derive(Debug, Clone)]
struct Welcomed {
    router_kinds: Kinds,
    connected: bool,
}

/// Our media link to the router (or our pair's host), while we take part and do not route.
#[derive(Debug, Clone)]
struct Uplink {
    /// The router or the host.
    to: Fingerprint,
    /// Joins sent for this connection ID.
    tries: u32,
    media_id: String,
    welcomed: Option<Welcomed>,
    /// When to send the join again (not welcomed) or to rejoin (media failed).
    retry_at: Option<Instant>,
}

#[derive(Debug, Clone)]
struct Participant {
    kinds: Kinds,
    state: MediaState,
    media_id: String,
    connected: bool,
    admitted: Instant,
    /// Router side: talking to the other participant directly (its media does not reach us).
    paired: bool,
    /// A browser an admin let in ([`Input::Guest`]): no session, not a member.
    guest: bool,
}

#[derive(Debug, Clone)]
enum Role {
    /// No router known.
    Idle,
    /// Another member routes.
    Member {
        router: Fingerprint,
        uplink: Option<Uplink>,
        /// A direct pair the router made us part of.
        pair: Paired,
    },
    /// We route.
    Router {
        dtls: DtlsFingerprint,
        participants: BTreeMap<Fingerprint, Participant>,
        /// The two participants (host, guest) we told to talk directly.
        pair: Option<(Fingerprint, Fingerprint)>,
        /// A pair whose direct connection failed: routed until one of them leaves.
        unpairable: Option<(Fingerprint, Fingerprint)>,
    },
}

/// One group's call state.
pub struct GroupCall {
    group: GroupId,
    me: Fingerprint,
    cfg: GroupCallConfig,
    local: Option<Local>,
    members: BTreeSet<Fingerprint>,
    role: Role,
    roster: Vec<RosterEntry>,
    speaking: Vec<Fingerprint>,
    phase: Phase,
    next_id: u64,
    /// Router side: members whose sessions can be paired.
    pairable: BTreeSet<Fingerprint>,
    actions: VecDeque<Action>,
}

impl GroupCall {
    /// A machine for `group` on the node `me`, with no router known yet.
    pub fn new(group: GroupId, me: Fingerprint, cfg: GroupCallConfig) -> Self {
        Self {
            group,
            me,
            cfg,
            local: None,
            members: BTreeSet::new(),
            role: Role::Idle,
            roster: vec![],
            speaking: vec![],
            phase: Phase::Out,
            next_id: 0,
            pairable: BTreeSet::new(),
            actions: VecDeque::new(),
        }
    }

    /// The slots we give participants when we route a call from now on (welcomes already
    /// sent keep theirs).
    pub fn set_layout(&mut self, layout: Layout) {
        self.cfg.layout = layout;
    }

    /// Whether we take part in the call.
    pub fn in_call(&self) -> bool {
        self.local.is_some()
    }

    /// Where we are.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The roster as we know it (the router's, or ours when we route).
    pub fn roster(&self) -> &[RosterEntry] {
        &self.roster
    }

    /// The participants speaking now, as the router last said.
    pub fn speaking(&self) -> &[Fingerprint] {
        &self.speaking
    }

    /// Whether we answer participants' media: we route, or host a direct pair.
    pub fn hosts(&self) -> bool {
        matches!(
            self.role,
            Role::Router { .. }
                | Role::Member {
                    pair: Paired::Host(_),
                    ..
                }
        )
    }

    /// Whether we answer `peer`'s media now: it takes part in the call we route, or it is our
    /// pair's guest.
    pub fn answers(&self, peer: &Fingerprint) -> bool {
        match &self.role {
            Role::Router { participants, .. } => participants.contains_key(peer),
            Role::Member {
                pair: Paired::Host(h),
                ..
            } => h.guest == *peer,
            _ => false,
        }
    }

    /// Whom our media goes to: the router, or the other participant of our direct pair
    /// (`None`: we route, or are not in the call).
    pub fn media_peer(&self) -> Option<Fingerprint> {
        match &self.role {
            _ if self.local.is_none() => None,
            Role::Member { router, pair, .. } => Some(match pair {
                Paired::No => *router,
                Paired::Guest(host) => *host,
                Paired::Host(h) => h.guest,
            }),
            _ => None,
        }
    }

    /// What the driver should do, in order.
    pub fn drain_actions(&mut self) -> Vec<Action> {
        self.actions.drain(..).collect()
    }

    /// The next moment [`GroupCall::handle_timeout`] has something to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match &self.role {
            Role::Member { uplink, pair, .. } => {
                let hosting = match pair {
                    Paired::Host(h) => h.deadline(self.cfg.connect_timeout),
                    _ => None,
                };
                uplink
                    .as_ref()
                    .and_then(|u| u.retry_at)
                    .into_iter()
                    .chain(hosting)
                    .min()
            }
            Role::Router { participants, .. } => participants
                .values()
                .filter(|p| !p.connected)
                .map(|p| p.admitted + self.cfg.connect_timeout)
                .min(),
            _ => None,
        }
    }

    /// Retries joins and drops participants whose media never came.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.host_timeout(now);
        match &mut self.role {
            Role::Member {
                uplink: Some(u),
                pair,
                ..
            } if u.retry_at.is_some_and(|t| t <= now) => {
                let direct = matches!(pair, Paired::Guest(_));
                if direct && (u.welcomed.is_some() || u.tries >= pair::GUEST_TRIES) {
                    // The direct connection failed, or the host never answered: back to the
                    // router, whose next join from us ends the pair for both.
                    *pair = Paired::No;
                    self.rejoin(now);
                } else if u.welcomed.is_none() {
                    // No answer: say it again, same connection ID.
                    u.retry_at = Some(now + self.cfg.join_retry);
                    u.tries += 1;
                    let (to, id) = (u.to, u.media_id.clone());
                    let frame = self.join_frame(&id);
                    self.send(to, frame);
                } else {
                    self.rejoin(now);
                }
            }
            Role::Router { participants, .. } => {
                let timeout = self.cfg.connect_timeout;
                let late: Vec<Fingerprint> = participants
                    .iter()
                    .filter(|(_, p)| !p.connected && p.admitted + timeout <= now)
                    .map(|(fp, _)| *fp)
                    .collect();
                for fp in &late {
                    participants.remove(fp);
                }
                if !late.is_empty() {
                    for peer in late {
                        self.actions.push_back(Action::Expel { peer });
                    }
                    self.publish_roster(now);
                }
            }
            _ => {}
        }
    }

    /// Feeds one input.
    pub fn handle(&mut self, input: Input, now: Instant) {
        match input {
            Input::Join {
                kinds,
                state,
                dtls,
                id_prefix,
            } => {
                self.local = Some(Local {
                    kinds,
                    state,
                    dtls,
                    id_prefix,
                });
                match &mut self.role {
                    Role::Router { .. } => {
                        self.set_phase(Phase::Connected);
                        self.publish_roster(now);
                    }
                    Role::Member { .. } => {
                        self.set_pair(Paired::No);
                        self.rejoin(now);
                    }
                    Role::Idle => self.set_phase(Phase::Waiting),
                }
            }
            Input::Leave => {
                if self.local.take().is_none() {
                    return;
                }
                match &mut self.role {
                    Role::Router { .. } => self.publish_roster(now),
                    Role::Member {
                        router,
                        uplink,
                        pair,
                    } => {
                        let router = *router;
                        let joined = uplink.is_some() || *pair != Paired::No;
                        self.set_pair(Paired::No);
                        if joined {
                            let group = self.group;
                            self.send(router, GroupCallFrame::Leave { group });
                        }
                    }
                    Role::Idle => {}
                }
                self.set_phase(Phase::Out);
            }
            Input::SetMedia(state) => {
                let Some(local) = self.local.as_mut() else {
                    return;
                };
                local.state = state;
                match &self.role {
                    Role::Router { .. } => self.publish_roster(now),
                    Role::Member { router, .. } => {
                        let (router, group) = (*router, self.group);
                        self.send(router, GroupCallFrame::Media { group, state });
                    }
                    Role::Idle => {}
                }
            }
            Input::Routing(Some(dtls)) => {
                if matches!(self.role, Role::Router { .. }) {
                    return;
                }
                self.set_pair(Paired::No);
                self.role = Role::Router {
                    dtls,
                    participants: BTreeMap::new(),
                    pair: None,
                    unpairable: None,
                };
                if self.local.is_some() {
                    self.set_phase(Phase::Connected);
                }
                self.publish_roster(now);
            }
            Input::Routing(None) => {
                if let Role::Router { participants, .. } = &mut self.role {
                    let gone: Vec<Fingerprint> = participants.keys().copied().collect();
                    for peer in gone {
                        self.actions.push_back(Action::Expel { peer });
                    }
                    self.role = Role::Idle;
                    self.set_roster(vec![]);
                    if self.local.is_some() {
                        self.set_phase(Phase::Waiting);
                    }
                }
            }
            Input::Router(router) => self.on_router(router, now),
            Input::Members(members) => {
                self.members = members;
                if let Role::Router { participants, .. } = &mut self.role {
                    let gone: Vec<Fingerprint> = participants
                        .iter()
                        .filter(|(fp, p)| !p.guest && !self.members.contains(fp))
                        .map(|(fp, _)| *fp)
                        .collect();
                    for fp in &gone {
                        participants.remove(fp);
                    }
                    if !gone.is_empty() {
                        for peer in gone {
                            self.actions.push_back(Action::Expel { peer });
                        }
                        self.publish_roster(now);
                    }
                }
                if !self.members.contains(&self.me) && self.local.is_some() {
                    self.handle(Input::Leave, now);
                }
            }
            Input::PeerUp { peer, pairs } => {
                let changed = if pairs {
                    self.pairable.insert(peer)
                } else {
                    self.pairable.remove(&peer)
                };
                if changed
                    && matches!(&self.role, Role::Router { participants, .. } if participants.contains_key(&peer))
                {
                    self.publish_roster(now);
                }
                if matches!(self.role, Role::Router { .. }) && !self.roster.is_empty() {
                    let frame = self.roster_frame();
                    self.send(peer, frame);
                    if !self.speaking.is_empty() {
                        let frame = self.speakers_frame();
                        self.send(peer, frame);
                    }
                }
            }
            Input::PeerGone(peer) => {
                self.pairable.remove(&peer);
                if let Role::Router { participants, .. } = &mut self.role
                    && participants.remove(&peer).is_some()
                {
                    self.actions.push_back(Action::Expel { peer });
                    self.publish_roster(now);
                }
            }
            Input::Guest {
                guest,
                media_id,
                dtls,
            } => self.on_guest(guest, media_id, dtls, now),
            Input::GuestRotation { guest, degrees } => self.on_guest_rotation(guest, degrees, now),
            Input::Frame { from, frame } => self.on_frame(from, frame, now),
            Input::MediaUp { peer, media_id } => self.on_media(peer, &media_id, true, now),
            Input::MediaDown { peer, media_id } => self.on_media(peer, &media_id, false, now),
            Input::Speakers(speaking) => {
                // The router tells everyone linked; a pair's host its guest.
                let to = match &self.role {
                    Role::Router { .. } => None,
                    Role::Member {
                        pair: Paired::Host(h),
                        ..
                    } => Some(h.guest),
                    _ => return,
                };
                if self.set_speaking(speaking) {
                    let frame = self.speakers_frame();
                    match to {
                        None => self.actions.push_back(Action::Broadcast(frame)),
                        Some(guest) => self.send(guest, frame),
                    }
                }
            }
        }
    }

    fn on_router(&mut self, router: Option<Fingerprint>, now: Instant) {
        if matches!(self.role, Role::Router { .. }) {
            // Our own routing ends only through `Routing(None)`.
            return;
        }
        let same = matches!(&self.role, Role::Member { router: r, .. } if Some(*r) == router);
        if same {
            return;
        }
        self.set_pair(Paired::No);
        self.set_roster(vec![]);
        match router {
            Some(router) if router != self.me => {
                self.role = Role::Member {
                    router,
                    uplink: None,
                    pair: Paired::No,
                };
                if self.local.is_some() {
                    self.rejoin(now);
                }
            }
            _ => {
                self.role = Role::Idle;
                if self.local.is_some() {
                    self.set_phase(Phase::Waiting);
                }
            }
        }
    }

    fn on_media(&mut self, peer: Fingerprint, media_id: &str, up: bool, now: Instant) {
        match &mut self.role {
            Role::Router { participants, .. } => {
                // A paired participant's old connection to us closing is no news.
                let Some(p) = participants
                    .get_mut(&peer)
                    .filter(|p| p.media_id == media_id && !p.paired)
                else {
                    return;
                };
                if up {
                    if !p.connected {
                        p.connected = true;
                        self.publish_roster(now);
                    }
                } else {
                    participants.remove(&peer);
                    self.actions.push_back(Action::Expel { peer });
                    self.publish_roster(now);
                }
            }
            Role::Member {
                pair: Paired::Host(_),
                ..
            } => self.host_media(peer, media_id, up),
            Role::Member {
                uplink: Some(u), ..
            } if u.to == peer && u.media_id == media_id => {
                let Some(w) = u.welcomed.as_mut() else {
                    return;
                };
                if up {
                    w.connected = true;
                    u.retry_at = None;
                    self.set_phase(Phase::Connected);
                } else {
                    // Try again with a new connection after a pause.
                    u.retry_at = Some(now + self.cfg.join_retry);
                    w.connected = false;
                    self.actions.push_back(Action::Disconnect);
                    self.set_phase(Phase::Waiting);
                    // `handle_timeout` rejoins: the welcome is kept until then.
                }
            }
            _ => {}
        }
    }

    /// Member side: a new join (new connection ID) to the current router.
    /// Member side: a new join (new connection ID) to the current router, or to our pair's
    /// host (a host joins no one).
    fn rejoin(&mut self, now: Instant) {
        let Role::Member {
            router,
            uplink,
            pair,
        } = &mut self.role
        else {
            return;
        };
        let Some(local) = &self.local else {
            return;
        };
        let to = match pair {
            Paired::No => *router,
            Paired::Guest(host) => *host,
            Paired::Host(_) => return,
        };
        if uplink.is_some() {
            self.actions.push_back(Action::Disconnect);
        }
        self.next_id += 1;
        let media_id = format!("{}{}", local.id_prefix, self.next_id);
        *uplink = Some(Uplink {
            to,
            tries: 1,
            media_id: media_id.clone(),
            welcomed: None,
            retry_at: Some(now + self.cfg.join_retry),
        });
        let frame = self.join_frame(&media_id);
        self.send(to, frame);
        self.set_phase(Phase::Waiting);
    }

    fn join_frame(&self, media_id: &str) -> GroupCallFrame {
        let local = self.local.as_ref().expect("joins only while in the call");
        GroupCallFrame::Join {
            group: self.group,
            media_id: media_id.to_owned(),
            dtls: local.dtls,
            kinds: local.kinds,
            state: local.state,
        }
    }

    /// Router side: the roster changed; the pair follows it and everyone linked hears it.
    fn publish_roster(&mut self, now: Instant) {
        self.sync_pair(now);
        let Role::Router { participants, .. } = &self.role else {
            return;
        };
        let mut roster: Vec<RosterEntry> = participants
            .iter()
            .map(|(fp, p)| RosterEntry {
                member: *fp,
                kinds: p.kinds,
                state: p.state,
                connected: p.connected,
            })
            .collect();
        if let Some(l) = &self.local {
            roster.push(RosterEntry {
                member: self.me,
                kinds: l.kinds,
                state: l.state,
                connected: true,
            });
        }
        roster.sort_by_key(|p| p.member);
        self.set_roster(roster);
        let frame = self.roster_frame();
        self.actions.push_back(Action::Broadcast(frame));
    }

    fn roster_frame(&self) -> GroupCallFrame {
        GroupCallFrame::Roster {
            group: self.group,
            participants: self.roster.clone(),
        }
    }

    fn set_roster(&mut self, roster: Vec<RosterEntry>) {
        if roster != self.roster {
            self.roster = roster.clone();
            self.actions
                .push_back(Action::Event(GroupCallEvent::Roster(roster)));
            // Nobody speaks who left the call (or with the router that said so).
            let speaking = self.speaking.clone();
            self.set_speaking(speaking);
        }
    }

    /// Keeps those of `speaking` in the roster, once each; true (and an event) if that changed.
    fn set_speaking(&mut self, speaking: Vec<Fingerprint>) -> bool {
        let mut kept: Vec<Fingerprint> = vec![];
        for fp in speaking {
            if self.roster.iter().any(|p| p.member == fp) && !kept.contains(&fp) {
                kept.push(fp);
            }
        }
        if kept == self.speaking {
            return false;
        }
        self.speaking = kept.clone();
        self.actions
            .push_back(Action::Event(GroupCallEvent::Speakers(kept)));
        true
    }

    fn speakers_frame(&self) -> GroupCallFrame {
        GroupCallFrame::Speakers {
            group: self.group,
            speaking: self.speaking.clone(),
        }
    }

    fn set_phase(&mut self, phase: Phase) {
        if phase != self.phase {
            self.phase = phase;
            self.actions
                .push_back(Action::Event(GroupCallEvent::Phase(phase)));
        }
    }

    fn send(&mut self, to: Fingerprint, frame: GroupCallFrame) {
        self.actions.push_back(Action::Send { to, frame });
    }
}
