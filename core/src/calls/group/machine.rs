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

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use super::wire::{GroupCallFrame, Layout, MAX_PARTICIPANTS, RosterEntry};
use crate::calls::{DtlsFingerprint, Kinds, MediaState};
use crate::groups::GroupId;
use crate::identity::Fingerprint;
use crate::media::sfu::SlotId;

/// Timings and slots of group calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupCallConfig {
    /// Slots a router forwards to each participant.
    pub layout: Layout,
    /// A join not welcomed within this is sent again; a failed media connection is retried
    /// after it.
    pub join_retry: Duration,
    /// An admitted participant whose media does not arrive within this is dropped.
    pub connect_timeout: Duration,
}

impl Default for GroupCallConfig {
    fn default() -> Self {
        Self {
            layout: Layout::default(),
            join_retry: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(20),
        }
    }
}

/// Where we are in the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Not in the call.
    Out,
    /// In the call, waiting for a router (none elected, or not welcomed yet).
    Waiting,
    /// Welcomed: our media connection to the router is being made.
    Connecting,
    /// Media flows through the router (or we are the router).
    Connected,
}

impl Phase {
    /// The phase as printed in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Out => "out",
            Phase::Waiting => "waiting",
            Phase::Connecting => "connecting",
            Phase::Connected => "connected",
        }
    }
}

/// What the machine is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// The user joins the call sending `kinds`; our media connections use the certificate of
    /// `dtls`; their PeerJS IDs start with `id_prefix` (random, `mc_…`).
    Join {
        /// What we send.
        kinds: Kinds,
        /// Mute, camera off, screen.
        state: MediaState,
        /// Our certificate's fingerprint.
        dtls: DtlsFingerprint,
        /// Prefix of our media connection IDs.
        id_prefix: String,
    },
    /// The user leaves the call.
    Leave,
    /// What we send changed.
    SetMedia(MediaState),
    /// We route the group now (our ANSWERs carry `dtls`), or (`None`) no longer.
    Routing(Option<DtlsFingerprint>),
    /// Member side: the group's router is now this member (`None`: none).
    Router(Option<Fingerprint>),
    /// The group's current members.
    Members(BTreeSet<Fingerprint>),
    /// Router side: a link to this member came up.
    PeerUp(Fingerprint),
    /// The link to this member is gone.
    PeerGone(Fingerprint),
    /// A frame from a member, on its authenticated session.
    Frame {
        /// The sender.
        from: Fingerprint,
        /// The frame.
        frame: GroupCallFrame,
    },
    /// The media connection `media_id` with `peer` (router side: a participant; member side:
    /// the router) is up.
    MediaUp {
        /// The other side.
        peer: Fingerprint,
        /// The connection.
        media_id: String,
    },
    /// That media connection failed or closed.
    MediaDown {
        /// The other side.
        peer: Fingerprint,
        /// The connection.
        media_id: String,
    },
    /// Router side: the participants speaking now, from their audio levels (ours included
    /// when we take part).
    Speakers(Vec<Fingerprint>),
}

/// What the machine asks the driver to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send a frame to one member.
    Send {
        /// The member.
        to: Fingerprint,
        /// The frame.
        frame: GroupCallFrame,
    },
    /// Send a frame to every member linked to us (router side).
    Broadcast(GroupCallFrame),
    /// Router side: answer the media OFFER `media_id` from `peer` if its DTLS fingerprint is
    /// `dtls`, with a track per slot of the layout plus our own tracks for `router_kinds`.
    Admit {
        /// The participant.
        peer: Fingerprint,
        /// The announced connection ID.
        media_id: String,
        /// The announced fingerprint.
        dtls: DtlsFingerprint,
        /// What we send ourselves on it.
        router_kinds: Kinds,
    },
    /// Router side: drop the participant's media (and any admission).
    Expel {
        /// The participant.
        peer: Fingerprint,
    },
    /// Member side: send our media OFFER to the router.
    Connect(Uplinking),
    /// Member side: close our media connection to the router, if any.
    Disconnect,
    /// Refuse a frame from someone who may not send it (a link counts such refusals and
    /// closes after a few).
    Refuse {
        /// The sender.
        to: Fingerprint,
        /// Why, for the sender.
        reason: &'static str,
    },
    /// Tell the application.
    Event(GroupCallEvent),
}

/// A member's media connection to the router, as the router's welcome allows it: keep it only
/// if its ANSWER carries `dtls`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uplinking {
    /// The router.
    pub router: Fingerprint,
    /// The connection ID our join announced.
    pub media_id: String,
    /// The router's fingerprint from its welcome.
    pub dtls: DtlsFingerprint,
    /// The slots it forwards to us.
    pub layout: Layout,
    /// What the router sends itself.
    pub router_kinds: Kinds,
    /// What we send.
    pub kinds: Kinds,
}

/// What the application hears.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupCallEvent {
    /// Who is in the call now (empty: nobody).
    Roster(Vec<RosterEntry>),
    /// Whom each of our slots shows now.
    Slots(Vec<(SlotId, Option<Fingerprint>)>),
    /// The participants speaking now (empty: nobody), in the order they joined.
    Speakers(Vec<Fingerprint>),
    /// We moved to another phase.
    Phase(Phase),
}

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

/// Our media link to the router, while we take part and are not the router.
#[derive(Debug, Clone)]
struct Uplink {
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
}

#[derive(Debug, Clone)]
enum Role {
    /// No router known.
    Idle,
    /// Another member routes.
    Member {
        router: Fingerprint,
        uplink: Option<Uplink>,
    },
    /// We route.
    Router {
        dtls: DtlsFingerprint,
        participants: BTreeMap<Fingerprint, Participant>,
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

    /// What the driver should do, in order.
    pub fn drain_actions(&mut self) -> Vec<Action> {
        self.actions.drain(..).collect()
    }

    /// The next moment [`GroupCall::handle_timeout`] has something to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match &self.role {
            Role::Member {
                uplink: Some(u), ..
            } => u.retry_at,
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
        match &mut self.role {
            Role::Member {
                router,
                uplink: Some(u),
            } if u.retry_at.is_some_and(|t| t <= now) => {
                let router = *router;
                if u.welcomed.is_none() {
                    // The router has not answered: say it again, same connection ID.
                    u.retry_at = Some(now + self.cfg.join_retry);
                    let id = u.media_id.clone();
                    let frame = self.join_frame(&id);
                    self.send(router, frame);
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
                    self.publish_roster();
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
                        self.publish_roster();
                    }
                    Role::Member { .. } => self.rejoin(now),
                    Role::Idle => self.set_phase(Phase::Waiting),
                }
            }
            Input::Leave => {
                if self.local.take().is_none() {
                    return;
                }
                match &mut self.role {
                    Role::Router { .. } => self.publish_roster(),
                    Role::Member { router, uplink } => {
                        let router = *router;
                        if uplink.take().is_some() {
                            self.actions.push_back(Action::Disconnect);
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
                    Role::Router { .. } => self.publish_roster(),
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
                if matches!(
                    self.role,
                    Role::Member {
                        uplink: Some(_),
                        ..
                    }
                ) {
                    self.actions.push_back(Action::Disconnect);
                }
                self.role = Role::Router {
                    dtls,
                    participants: BTreeMap::new(),
                };
                if self.local.is_some() {
                    self.set_phase(Phase::Connected);
                }
                self.publish_roster();
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
                        .keys()
                        .filter(|fp| !self.members.contains(fp))
                        .copied()
                        .collect();
                    for fp in &gone {
                        participants.remove(fp);
                    }
                    if !gone.is_empty() {
                        for peer in gone {
                            self.actions.push_back(Action::Expel { peer });
                        }
                        self.publish_roster();
                    }
                }
                if !self.members.contains(&self.me) && self.local.is_some() {
                    self.handle(Input::Leave, now);
                }
            }
            Input::PeerUp(peer) => {
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
                if let Role::Router { participants, .. } = &mut self.role
                    && participants.remove(&peer).is_some()
                {
                    self.actions.push_back(Action::Expel { peer });
                    self.publish_roster();
                }
            }
            Input::Frame { from, frame } => self.on_frame(from, frame, now),
            Input::MediaUp { peer, media_id } => self.on_media(peer, &media_id, true, now),
            Input::MediaDown { peer, media_id } => self.on_media(peer, &media_id, false, now),
            Input::Speakers(speaking) => {
                if matches!(self.role, Role::Router { .. }) && self.set_speaking(speaking) {
                    let frame = self.speakers_frame();
                    self.actions.push_back(Action::Broadcast(frame));
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
        if matches!(
            self.role,
            Role::Member {
                uplink: Some(_),
                ..
            }
        ) {
            self.actions.push_back(Action::Disconnect);
        }
        self.set_roster(vec![]);
        match router {
            Some(router) if router != self.me => {
                self.role = Role::Member {
                    router,
                    uplink: None,
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

    fn on_frame(&mut self, from: Fingerprint, frame: GroupCallFrame, now: Instant) {
        // Members speak to the router; only our router (whom the group layer chose) speaks to
        // us, so its frames count even before our copy of the log lists it.
        let to_router = matches!(
            frame,
            GroupCallFrame::Join { .. }
                | GroupCallFrame::Leave { .. }
                | GroupCallFrame::Media { .. }
        );
        if frame.group() != self.group {
            return;
        }
        if to_router && !self.members.contains(&from) {
            self.actions.push_back(Action::Refuse {
                to: from,
                reason: "not a member of the group",
            });
            return;
        }
        match frame {
            GroupCallFrame::Join {
                media_id,
                dtls,
                kinds,
                state,
                ..
            } => {
                let router_kinds = self.local.as_ref().map(|l| l.kinds).unwrap_or_default();
                let Role::Router {
                    dtls: ours,
                    participants,
                } = &mut self.role
                else {
                    return;
                };
                let ours = *ours;
                let fresh = participants
                    .get(&from)
                    .is_none_or(|p| p.media_id != media_id);
                if fresh
                    && !participants.contains_key(&from)
                    && participants.len() + 1 >= MAX_PARTICIPANTS
                {
                    // Full: no welcome; the member keeps asking and gets in when someone leaves.
                    return;
                }
                if fresh {
                    if participants.contains_key(&from) {
                        self.actions.push_back(Action::Expel { peer: from });
                    }
                    participants.insert(
                        from,
                        Participant {
                            kinds,
                            state,
                            media_id: media_id.clone(),
                            connected: false,
                            admitted: now,
                        },
                    );
                    self.actions.push_back(Action::Admit {
                        peer: from,
                        media_id: media_id.clone(),
                        dtls,
                        router_kinds,
                    });
                }
                let welcome = GroupCallFrame::Welcome {
                    group: self.group,
                    media_id,
                    dtls: ours,
                    layout: self.cfg.layout,
                    router_kinds,
                };
                self.send(from, welcome);
                if fresh {
                    self.publish_roster();
                }
            }
            GroupCallFrame::Leave { .. } => {
                if let Role::Router { participants, .. } = &mut self.role
                    && participants.remove(&from).is_some()
                {
                    self.actions.push_back(Action::Expel { peer: from });
                    self.publish_roster();
                }
            }
            GroupCallFrame::Media { state, .. } => {
                if let Role::Router { participants, .. } = &mut self.role
                    && let Some(p) = participants.get_mut(&from)
                    && p.state != state
                {
                    p.state = state;
                    self.publish_roster();
                }
            }
            GroupCallFrame::Welcome {
                media_id,
                dtls,
                layout,
                router_kinds,
                ..
            } => {
                let Some(kinds) = self.local.as_ref().map(|l| l.kinds) else {
                    return;
                };
                let Role::Member {
                    router,
                    uplink: Some(u),
                } = &mut self.role
                else {
                    return;
                };
                if *router != from || u.media_id != media_id || u.welcomed.is_some() {
                    return;
                }
                u.welcomed = Some(Welcomed {
                    router_kinds,
                    connected: false,
                });
                // The media connection must come up within the connect timeout.
                u.retry_at = Some(now + self.cfg.connect_timeout);
                self.actions.push_back(Action::Connect(Uplinking {
                    router: from,
                    media_id,
                    dtls,
                    layout,
                    router_kinds,
                    kinds,
                }));
                self.set_phase(Phase::Connecting);
            }
            GroupCallFrame::Roster { participants, .. } => {
                let Role::Member { router, uplink } = &self.role else {
                    return;
                };
                if *router != from {
                    return;
                }
                // Connected but left out (the router lost us), or the router now sends media
                // our connection has no tracks for: join again. (A failed connection waits
                // for its retry instead.)
                let stale = uplink
                    .as_ref()
                    .and_then(|u| u.welcomed.as_ref())
                    .is_some_and(|w| {
                        let me = participants.iter().any(|p| p.member == self.me);
                        let router_kinds = participants
                            .iter()
                            .find(|p| p.member == from)
                            .map(|p| p.kinds)
                            .unwrap_or_default();
                        (w.connected && !me) || !w.router_kinds.contains(router_kinds)
                    });
                self.set_roster(participants);
                if stale {
                    self.rejoin(now);
                }
            }
            GroupCallFrame::Slots { slots, .. } => {
                if matches!(&self.role, Role::Member { router, uplink: Some(_) } if *router == from)
                {
                    self.actions
                        .push_back(Action::Event(GroupCallEvent::Slots(slots)));
                }
            }
            GroupCallFrame::Speakers { speaking, .. } => {
                if matches!(&self.role, Role::Member { router, .. } if *router == from) {
                    self.set_speaking(speaking);
                }
            }
        }
    }

    fn on_media(&mut self, peer: Fingerprint, media_id: &str, up: bool, now: Instant) {
        match &mut self.role {
            Role::Router { participants, .. } => {
                let Some(p) = participants
                    .get_mut(&peer)
                    .filter(|p| p.media_id == media_id)
                else {
                    return;
                };
                if up {
                    if !p.connected {
                        p.connected = true;
                        self.publish_roster();
                    }
                } else {
                    participants.remove(&peer);
                    self.actions.push_back(Action::Expel { peer });
                    self.publish_roster();
                }
            }
            Role::Member {
                router,
                uplink: Some(u),
            } if *router == peer && u.media_id == media_id => {
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
    fn rejoin(&mut self, now: Instant) {
        let Role::Member { router, uplink } = &mut self.role else {
            return;
        };
        let Some(local) = &self.local else {
            return;
        };
        let router = *router;
        if uplink.is_some() {
            self.actions.push_back(Action::Disconnect);
        }
        self.next_id += 1;
        let media_id = format!("{}{}", local.id_prefix, self.next_id);
        *uplink = Some(Uplink {
            media_id: media_id.clone(),
            welcomed: None,
            retry_at: Some(now + self.cfg.join_retry),
        });
        let frame = self.join_frame(&media_id);
        self.send(router, frame);
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

    /// Router side: the roster changed; everyone linked hears it.
    fn publish_roster(&mut self) {
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
