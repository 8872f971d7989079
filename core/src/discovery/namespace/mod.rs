//! The namespace engine (sans-IO): one state machine per namespace that elects a router by
//! claiming `<prefix>-<level>` at the signaling server, keeps the signed registry there, pushes
//! changes to members, watches liveness with heartbeats and re-elects by rank when the router
//! goes. It takes [`Input`]s and time and returns [`Action`]s; a driver does the I/O (the tokio
//! driver for real nodes, the simulator for hundreds of virtual ones).
//!
//! IDs: `<prefix>-1 … -5` are router levels, `<prefix>-p1` is the reverse-connect slot, and each
//! node registers its own `<prefix>-d-<random>` discovery ID, fresh per namespace and per run,
//! from which it opens every connection here. The persistent PeerJS ID never appears.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::msg::{MAX_MESSAGE_BYTES, MAX_RECORDS_PER_MESSAGE, Msg, Ranked};
use super::presence::{GeoStamp, Presence, SignedPresence, VerifyCache};
use crate::identity::{Fingerprint, Identity};
use crate::wake_grid::WallClock;

mod config;
mod election;
mod io;
mod liveness;
mod member;
mod router;
#[cfg(test)]
mod tests;

pub use config::NsConfig;
pub use io::{Action, ConnId, Input, NsEvent, NsStats, PeerInfo, RoleKind};

/// A registry entry.
#[derive(Debug, Clone)]
struct Entry {
    seq: u64,
    record: SignedPresence,
    /// At a new router: an entry kept from the old registry until its owner checks in again
    /// (so members see no flicker), dropped if that has not happened by then.
    confirm_by: Option<Instant>,
}

impl Entry {
    /// An entry whose owner is confirmed present.
    fn new(seq: u64, record: SignedPresence) -> Self {
        Self {
            seq,
            record,
            confirm_by: None,
        }
    }
}

/// A member connection at the router.
#[derive(Debug)]
struct MemberConn {
    remote: String,
    /// The member's key once it checked in.
    key: Option<Fingerprint>,
    last_heard: Instant,
    last_sent: Instant,
    tokens: f64,
    token_at: Instant,
    /// A connection we opened (a reverse-slot probe or a call-back), before it answered.
    reverse: bool,
    /// A slot probe whose holder checked in: we called it back at its discovery ID.
    called_back: bool,
    /// Its snapshot already held every pending change up to this generation.
    welcomed: u64,
    /// Its announced heartbeat interval.
    pace: Duration,
}

/// A connection a router opened to us (at the reverse-connect slot, or its call-back at our
/// discovery ID), before its `ReverseWelcome`.
#[derive(Debug, Clone)]
struct SlotConn {
    conn: ConnId,
    /// The router's discovery ID.
    remote: String,
    /// It came in at the slot (not at our discovery ID).
    at_slot: bool,
}

impl MemberConn {
    /// A connection from (or, `reverse`, to) `remote`, not checked in yet.
    fn new(remote: String, reverse: bool, cfg: &NsConfig, now: Instant) -> Self {
        Self {
            remote,
            key: None,
            last_heard: now,
            last_sent: now,
            tokens: f64::from(cfg.member_rate) * 2.0,
            token_at: now,
            reverse,
            called_back: false,
            welcomed: u64::MAX,
            pace: cfg.heartbeat,
        }
    }
}

/// What we are doing.
#[derive(Debug, Clone, PartialEq)]
enum Role {
    Idle,
    /// Claim of the router ID at `level` in flight.
    Electing {
        level: u8,
    },
    /// Waiting (failover rank wait or retry backoff) before contacting `level`.
    Waiting {
        level: u8,
        claim: bool,
    },
    /// Connecting to (or awaiting the registry from) the router at `level`.
    Joining {
        level: u8,
        conn: Option<ConnId>,
    },
    Member {
        level: u8,
        conn: ConnId,
    },
    Router {
        level: u8,
    },
}

/// The namespace state machine.
pub struct Namespace {
    cfg: NsConfig,
    prefix: String,
    identity: Arc<Identity>,
    me: Fingerprint,
    name: String,
    geo: Option<GeoStamp>,
    note: Vec<u8>,
    cache: Arc<VerifyCache>,
    rng: SmallRng,
    /// The wall clock, for record times and the heartbeat grid ([`crate::wake_grid`]).
    clock: WallClock,

    disc_id: String,
    disc_open: bool,
    my_record: Option<SignedPresence>,
    role: Role,
    deadline: Option<Instant>,
    /// Router level we believe dead (its ID may still be registered).
    dead_level: Option<u8>,
    /// Holding the reverse-connect slot until then.
    slot_until: Option<Instant>,
    slot_claimed: bool,

    /// Known peers by fingerprint (members: the router's view, verified; router: the registry).
    peers: BTreeMap<Fingerprint, Entry>,
    next_seq: u64,

    /// The app is in the foreground.
    active: bool,
    /// Our heartbeat interval now (by role, active or background; see [`Namespace::role_pace`]).
    pace: Duration,
    /// The router's announced heartbeat interval.
    router_pace: Duration,

    // Member side.
    router_heard: Instant,
    router_sent: Instant,
    /// Records of the snapshot being received.
    snapshot: Option<Vec<Ranked>>,

    // Router side.
    members: BTreeMap<ConnId, MemberConn>,
    /// Changed records not pushed yet, each with the generation it was added at.
    pending_added: Vec<(u64, Ranked)>,
    /// Counts additions to `pending_added`.
    generation: u64,
    pending_removed: Vec<String>,
    flush_at: Option<Instant>,
    monitor_at: Option<Instant>,
    /// The lower level the monitor of a router above level 1 claims next: it cycles through
    /// every level below ours, since a lower one may be held by a live router while level 1
    /// is still held by a dead router's registration (the server keeps it for a minute).
    monitor_next: u8,
    /// The probe of a router level someone else holds (a lower level while we route higher,
    /// or our own level after our registration was lost): the connection and the level.
    probe: Option<(ConnId, u8)>,
    /// When we last connected to the reverse slot (a level-1 router).
    slot_probed: Option<Instant>,
    /// Monitor rounds in a row that found nobody (a lower level still held by someone who
    /// does not answer, our lost level still taken, an empty reverse slot): the next round
    /// waits twice as long per miss, up to [`NsConfig::monitor_backoff_max`].
    monitor_misses: u32,
    /// The level whose router last refused our check-in (an explicit `Refused`), until when
    /// we do not bring our members there again, and how many refusals in a row set that.
    refused: Option<(u8, Instant, u32)>,
    /// A router whose registration of its level was lost (a signaling server restart) and not
    /// claimed back yet.
    lost_level: bool,
    /// Connections a router opened to us while we held the reverse-connect slot.
    slot_conns: Vec<SlotConn>,
    /// The router that reached us through the slot, which will call us back at our discovery
    /// ID: (the slot connection we checked in over, the router's discovery ID).
    callback_from: Option<(ConnId, String)>,

    next_beat: Instant,
    refresh_at: Instant,
    next_conn: u64,
    actions: Vec<Action>,
    stats: NsStats,
    stopped: bool,
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Namespace {
    /// A namespace engine for IDs starting with `prefix`. `now`/`unix_ms` anchor the clock;
    /// `seed` drives every random choice (discovery ID, jitter) so simulations replay exactly.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        cfg: NsConfig,
        prefix: &str,
        identity: Arc<Identity>,
        name: &str,
        cache: Arc<VerifyCache>,
        seed: u64,
        now: Instant,
        unix_ms: u64,
    ) -> Self {
        let mut rng = SmallRng::seed_from_u64(seed);
        let disc_id = format!("{prefix}-d-{:016x}", rng.random::<u64>());
        let me = identity.fingerprint();
        let heartbeat = cfg.heartbeat;
        Self {
            cfg,
            prefix: prefix.to_owned(),
            identity,
            me,
            name: name.to_owned(),
            geo: None,
            note: Vec::new(),
            cache,
            rng,
            clock: WallClock::new(now, unix_ms),
            disc_id,
            disc_open: false,
            my_record: None,
            role: Role::Idle,
            deadline: None,
            dead_level: None,
            slot_until: None,
            slot_claimed: false,
            peers: BTreeMap::new(),
            next_seq: 1,
            active: true,
            pace: heartbeat,
            router_pace: heartbeat,
            router_heard: now,
            router_sent: now,
            snapshot: None,
            members: BTreeMap::new(),
            pending_added: vec![],
            generation: 0,
            pending_removed: vec![],
            flush_at: None,
            monitor_at: None,
            monitor_next: 1,
            probe: None,
            slot_probed: None,
            monitor_misses: 0,
            refused: None,
            lost_level: false,
            slot_conns: vec![],
            callback_from: None,
            next_beat: now,
            refresh_at: now,
            next_conn: 1,
            actions: vec![],
            stats: NsStats::default(),
            stopped: false,
        }
    }

    /// The router ID at `level`.
    pub fn router_id(&self, level: u8) -> String {
        format!("{}-{level}", self.prefix)
    }

    fn slot_id(&self) -> String {
        format!("{}-p1", self.prefix)
    }

    /// Whether `id` has the form of a discovery ID of this namespace (`<prefix>-d-<16 hex>`).
    fn is_disc_id(&self, id: &str) -> bool {
        id.strip_prefix(&self.prefix)
            .and_then(|rest| rest.strip_prefix("-d-"))
            .is_some_and(|r| r.len() == 16 && r.bytes().all(|b| b.is_ascii_hexdigit()))
    }

    /// Our discovery ID in this namespace.
    pub fn disc_id(&self) -> &str {
        &self.disc_id
    }

    /// The namespace prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Our role.
    pub fn role(&self) -> RoleKind {
        match self.role {
            Role::Member { level, .. } => RoleKind::Member(level),
            Role::Router { level } => RoleKind::Router(level),
            _ => RoleKind::Searching,
        }
    }

    /// Every other peer we know, in no particular order.
    pub fn peers(&self) -> Vec<PeerInfo> {
        self.peers
            .iter()
            .filter(|(fp, _)| **fp != self.me)
            .map(|(fp, e)| info(*fp, &e.record))
            .collect()
    }

    /// Whether the peer with this fingerprint is known.
    pub fn knows(&self, fp: &Fingerprint) -> bool {
        *fp != self.me && self.peers.contains_key(fp)
    }

    /// Traffic counters.
    pub fn stats(&self) -> NsStats {
        self.stats
    }

    /// The next action to perform, if any.
    pub fn poll_action(&mut self) -> Option<Action> {
        if self.actions.is_empty() {
            None
        } else {
            Some(self.actions.remove(0))
        }
    }

    /// The actions not taken yet.
    pub fn pending_actions(&self) -> &[Action] {
        &self.actions
    }

    /// Takes every pending action at once.
    pub fn drain_actions(&mut self) -> Vec<Action> {
        std::mem::take(&mut self.actions)
    }

    /// When [`Namespace::handle_timeout`] must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.stopped {
            return None;
        }
        [
            self.deadline,
            self.flush_at,
            self.monitor_at,
            self.slot_until,
            self.beats().then_some(self.next_beat),
            Some(self.refresh_at),
            self.router_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Whether the heartbeat has anything to do: a member beats to its router, a router with
    /// members beats to them and evicts the silent. Otherwise it wakes nobody (an electing,
    /// joining or waiting node, or a router alone, sleeps until its next real timer).
    fn beats(&self) -> bool {
        match self.role {
            Role::Member { .. } => true,
            Role::Router { .. } => !self.members.is_empty(),
            _ => false,
        }
    }

    fn router_deadline(&self) -> Option<Instant> {
        matches!(self.role, Role::Member { .. })
            .then(|| self.router_heard + self.router_pace * self.cfg.missed_beats)
    }

    fn unix_ms(&self, now: Instant) -> u64 {
        self.clock.unix_ms(now)
    }

    /// Starts: registers the discovery ID and tries to become the level-1 router.
    pub fn start(&mut self, now: Instant) {
        self.push(Action::Claim {
            id: self.disc_id.clone(),
        });
        self.sign_record(now);
        self.next_beat = self.clock.next_after(now, self.pace);
        self.elect(1, now);
    }

    /// Changes the display name or position; the new signed record goes out at once. The
    /// position goes into the record only coarsely ([`GeoStamp::coarse`]).
    pub fn set_presence(&mut self, name: &str, geo: Option<GeoStamp>, now: Instant) {
        self.name = name.to_owned();
        self.geo = geo.map(GeoStamp::coarse);
        self.sign_record(now);
        self.announce(now);
    }

    /// Sets the note carried in our record (at most
    /// [`MAX_NOTE_BYTES`](super::presence::MAX_NOTE_BYTES)); call before [`Namespace::start`].
    pub fn set_note(&mut self, note: Vec<u8>) {
        self.note = note;
    }

    /// Changes the note of a running namespace: our record is signed again and announced.
    pub fn update_note(&mut self, note: Vec<u8>, now: Instant) {
        self.note = note;
        self.sign_record(now);
        self.announce(now);
    }

    /// The app moved to the foreground (`true`) or the background: beat at the matching
    /// interval and tell the other side, so it waits accordingly before declaring us gone. In
    /// the foreground the router monitor's backoff starts over.
    pub fn set_active(&mut self, active: bool, now: Instant) {
        self.active = active;
        if active {
            // Someone looks at the screen: the monitor's backoff starts over.
            self.monitor_misses = 0;
        }
        let pace = self.role_pace();
        if pace == self.pace {
            return;
        }
        self.pace = pace;
        self.next_beat = self.next_beat.min(self.clock.next_after(now, pace));
        if let (Role::Router { level }, Some(at)) = (&self.role, self.monitor_at) {
            // Back in the foreground, the reverse slot is probed at the foreground pace again.
            self.monitor_at = Some(at.min(self.next_monitor(now, *level)));
        }
        self.announce_pace(now);
    }

    /// The heartbeat interval for our role: a router's beats are what its members time its
    /// death by; a member's (and a node on its way to being one) only keep it in the registry.
    /// In the background both beat at the background pace.
    fn role_pace(&self) -> Duration {
        if !self.active {
            self.cfg.background_heartbeat
        } else if matches!(self.role, Role::Router { .. }) {
            self.cfg.heartbeat
        } else {
            self.cfg.member_heartbeat
        }
    }

    fn pace_msg(&self) -> Msg {
        Msg::Pace {
            ms: u32::try_from(self.pace.as_millis()).unwrap_or(u32::MAX),
        }
    }

    fn announce_pace(&mut self, now: Instant) {
        match self.role {
            Role::Member { conn, .. } => {
                let m = self.pace_msg();
                self.send_msg(conn, &m, now);
            }
            Role::Router { .. } => {
                let m = self.pace_msg();
                self.broadcast(&m, now);
            }
            _ => {}
        }
    }

    /// Leaves on purpose: says goodbye on every connection and releases every ID.
    pub fn stop(&mut self, now: Instant) {
        if self.stopped {
            return;
        }
        let leave = Msg::Leave.encode();
        let conns: Vec<ConnId> = match &self.role {
            Role::Member { conn, .. } => vec![*conn],
            Role::Joining { conn: Some(c), .. } => vec![*c],
            _ => vec![],
        }
        .into_iter()
        .chain(self.members.keys().copied())
        .chain(self.probe.map(|(c, _)| c))
        .collect();
        for c in conns {
            self.send_raw(c, leave.clone(), now);
            self.push(Action::Close { conn: c });
        }
        if let Role::Router { level } = self.role {
            self.push(Action::Release {
                id: self.router_id(level),
            });
        }
        if self.slot_claimed {
            self.push(Action::Release { id: self.slot_id() });
        }
        self.push(Action::Release {
            id: self.disc_id.clone(),
        });
        self.members.clear();
        self.role = Role::Idle;
        self.stopped = true;
    }

    fn push(&mut self, a: Action) {
        self.actions.push(a);
    }

    fn event(&mut self, e: NsEvent) {
        self.push(Action::Event(e));
    }

    fn set_role(&mut self, role: Role) {
        let before = self.role();
        self.role = role;
        // Entries awaiting their owner's check-in are a router's business: a former router
        // keeps them as plain entries, which its next router's snapshot replaces.
        if !matches!(self.role, Role::Router { .. }) {
            for e in self.peers.values_mut() {
                e.confirm_by = None;
            }
        }
        let after = self.role();
        if before != after {
            self.event(NsEvent::Role(after));
        }
        // Who needs to hear of it is told where that happens: a member in its check-in, a
        // router's members in their welcome.
        self.pace = self.role_pace();
    }

    fn sign_record(&mut self, now: Instant) {
        let rec = SignedPresence::sign(
            &self.identity,
            Presence {
                namespace: self.prefix.clone(),
                disc_id: self.disc_id.clone(),
                key: [0; 32],
                issued_ms: self.unix_ms(now),
                name: self.name.clone(),
                geo: self.geo,
                note: self.note.clone(),
            },
        );
        self.my_record = Some(rec.clone());
        self.refresh_at = now + self.cfg.record_refresh;
        if let Role::Router { .. } = self.role {
            self.peers.insert(self.me, Entry::new(0, rec));
        }
    }

    /// Sends our current record where it belongs.
    fn announce(&mut self, now: Instant) {
        let Some(rec) = self.my_record.clone() else {
            return;
        };
        match self.role {
            Role::Member { conn, .. } => {
                self.send_msg(conn, &Msg::CheckIn(Box::new(rec)), now);
            }
            Role::Router { .. } => {
                self.generation += 1;
                self.pending_added.push((self.generation, (0, rec)));
                self.schedule_flush(now);
            }
            _ => {}
        }
    }

    fn new_conn(&mut self) -> ConnId {
        let id = ConnId(self.next_conn);
        self.next_conn += 1;
        id
    }

    fn send_raw(&mut self, conn: ConnId, bytes: Vec<u8>, now: Instant) {
        self.stats.msgs_out += 1;
        self.stats.bytes_out += bytes.len() as u64;
        if let Some(m) = self.members.get_mut(&conn) {
            m.last_sent = now;
        } else {
            self.router_sent = now;
        }
        self.push(Action::Send { conn, bytes });
    }

    fn send_msg(&mut self, conn: ConnId, msg: &Msg, now: Instant) {
        self.send_raw(conn, msg.encode(), now);
    }

    /// Feeds one input.
    pub fn handle(&mut self, input: Input, now: Instant) {
        if self.stopped {
            if let Input::Incoming { conn, .. } = input {
                self.push(Action::Close { conn });
            }
            return;
        }
        match input {
            Input::Claimed { id } => self.on_claimed(&id, now),
            Input::ClaimFailed { id, taken } => self.on_claim_failed(&id, taken, now),
            Input::Lost { id } => self.on_lost(&id, now),
            Input::Connected { conn } => self.on_connected(conn, now),
            Input::ConnectFailed { conn, unavailable } => {
                self.on_connect_failed(conn, unavailable, now)
            }
            Input::Incoming {
                conn,
                local,
                remote,
            } => self.on_incoming(conn, &local, remote, now),
            Input::Data { conn, bytes } => self.on_data(conn, &bytes, now),
            Input::Closed { conn } => self.on_closed(conn, now),
            Input::Knock { from } => self.on_knock(&from, now),
        }
    }
}

/// A peer's announced heartbeat interval, kept within sane bounds.
fn pace_of(ms: u32) -> Duration {
    Duration::from_millis(u64::from(ms.clamp(100, 60_000)))
}

fn info(fp: Fingerprint, rec: &SignedPresence) -> PeerInfo {
    let p = rec.presence();
    PeerInfo {
        fingerprint: fp,
        disc_id: p.disc_id.clone(),
        name: p.name.clone(),
        geo: p.geo,
        note: p.note.clone(),
    }
}
