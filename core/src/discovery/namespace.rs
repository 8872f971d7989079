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

/// Timings and limits of a namespace.
#[derive(Debug, Clone)]
pub struct NsConfig {
    /// Heartbeat interval. 0.8 s by default: with 3 missed beats a silent death is noticed
    /// 1.6–2.4 s after it happens, which leaves room for re-election within 3 s.
    pub heartbeat: Duration,
    /// Heartbeat interval while the app is in the background (announced to the other side,
    /// which then waits that much longer before declaring us gone).
    pub background_heartbeat: Duration,
    /// The router is dead after this many missed heartbeats.
    pub missed_beats: u32,
    /// How long connecting to a router and receiving its registry may take.
    pub join_timeout: Duration,
    /// Members of rank ≥ 1 wait this long before contacting the new router after a failover
    /// (signaling servers hold an offer until its target registers, so early is safe).
    pub rank_step: Duration,
    /// Extra wait per rank, spreading a large namespace's reconnects.
    pub rank_spread: Duration,
    /// Highest router level.
    pub max_level: u8,
    /// A router above level 1 checks this often whether level 1 is free or alive.
    pub monitor_interval: Duration,
    /// A level-1 router probes the reverse-connect slot this often.
    pub slot_probe: Duration,
    /// A node holds the reverse-connect slot at most this long.
    pub slot_wait: Duration,
    /// Records older than this are dropped.
    pub record_max_age: Duration,
    /// Own record is re-signed and re-sent this often.
    pub record_refresh: Duration,
    /// Allowed clock difference between peers.
    pub clock_skew: Duration,
    /// A check-in record must be at most this old when the router receives it.
    pub checkin_max_age: Duration,
    /// Most members a router keeps.
    pub registry_cap: usize,
    /// Changes are pushed to members at most this often.
    pub batch_interval: Duration,
    /// Messages per second a member may send to the router (burst: twice that).
    pub member_rate: u32,
    /// Wait before trying again after every level failed.
    pub retry_backoff: Duration,
}

impl Default for NsConfig {
    fn default() -> Self {
        Self {
            heartbeat: Duration::from_millis(800),
            background_heartbeat: Duration::from_secs(5),
            missed_beats: 3,
            join_timeout: Duration::from_secs(2),
            rank_step: Duration::from_millis(30),
            rank_spread: Duration::from_millis(2),
            max_level: 5,
            monitor_interval: Duration::from_secs(5),
            slot_probe: Duration::from_secs(2),
            slot_wait: Duration::from_secs(6),
            record_max_age: Duration::from_secs(30 * 60),
            record_refresh: Duration::from_secs(10 * 60),
            clock_skew: Duration::from_secs(60),
            checkin_max_age: Duration::from_secs(60),
            registry_cap: 2_000,
            batch_interval: Duration::from_millis(50),
            member_rate: 10,
            retry_backoff: Duration::from_secs(5),
        }
    }
}

/// A data connection of this namespace. The engine numbers the connections it opens; the
/// driver numbers incoming ones with [`ConnId::incoming`], so the two never collide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

impl ConnId {
    const INCOMING: u64 = 1 << 63;

    /// The id of the driver's `n`th incoming connection.
    pub fn incoming(n: u64) -> Self {
        Self(n | Self::INCOMING)
    }
}

/// What the driver reports.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// Our registration of `id` is open.
    Claimed {
        /// The PeerJS ID.
        id: String,
    },
    /// Registering `id` failed; `taken` = someone else holds it.
    ClaimFailed {
        /// The PeerJS ID.
        id: String,
        /// ID-TAKEN (as opposed to a network or server error).
        taken: bool,
    },
    /// A registration we held was lost (signaling dropped it).
    Lost {
        /// The PeerJS ID.
        id: String,
    },
    /// A connection we asked for is open.
    Connected {
        /// The connection.
        conn: ConnId,
    },
    /// A connection we asked for failed; `unavailable` = the ID is not registered.
    ConnectFailed {
        /// The connection.
        conn: ConnId,
        /// The signaling server said the peer does not exist.
        unavailable: bool,
    },
    /// A peer connected to one of our IDs.
    Incoming {
        /// The connection (numbered with [`ConnId::incoming`]).
        conn: ConnId,
        /// Our ID it arrived at.
        local: String,
        /// The remote peer's ID.
        remote: String,
    },
    /// A message arrived.
    Data {
        /// The connection.
        conn: ConnId,
        /// The message.
        bytes: Vec<u8>,
    },
    /// A connection closed.
    Closed {
        /// The connection.
        conn: ConnId,
    },
}

/// What the engine asks the driver to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Register `id` at the signaling server (answer with `Claimed` or `ClaimFailed`).
    Claim {
        /// The PeerJS ID.
        id: String,
    },
    /// Unregister `id`.
    Release {
        /// The PeerJS ID.
        id: String,
    },
    /// Open a data connection from our registration `from` to `to`.
    Connect {
        /// The number for it.
        conn: ConnId,
        /// Our registered ID to connect from.
        from: String,
        /// The remote ID.
        to: String,
    },
    /// Send a message.
    Send {
        /// The connection.
        conn: ConnId,
        /// The message.
        bytes: Vec<u8>,
    },
    /// Close a connection.
    Close {
        /// The connection.
        conn: ConnId,
    },
    /// Tell the application.
    Event(NsEvent),
}

/// A peer in the namespace, as its verified record says.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerInfo {
    /// Identity key fingerprint.
    pub fingerprint: Fingerprint,
    /// Its discovery ID here (connect to it to reach the peer).
    pub disc_id: String,
    /// Display name.
    pub name: String,
    /// Position, in geo namespaces.
    pub geo: Option<GeoStamp>,
    /// The note in its record (empty when none).
    pub note: Vec<u8>,
}

/// The engine's place in the namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleKind {
    /// Looking for a router (electing, joining, failing over).
    Searching,
    /// Member of the router at `level`.
    Member(u8),
    /// Router at `level`.
    Router(u8),
}

/// What the application hears.
#[derive(Debug, Clone, PartialEq)]
pub enum NsEvent {
    /// A peer appeared or its record changed.
    PeerSeen(PeerInfo),
    /// A peer left.
    PeerGone(Fingerprint),
    /// The engine's role changed.
    Role(RoleKind),
    /// A peer broke the rules (bad message, flood); it was dropped.
    Misbehaved {
        /// Its ID.
        remote: String,
        /// What it did.
        reason: String,
    },
}

/// Counters for benchmarks and diagnostics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NsStats {
    /// Messages sent.
    pub msgs_out: u64,
    /// Bytes sent.
    pub bytes_out: u64,
    /// Messages received.
    pub msgs_in: u64,
    /// Bytes received.
    pub bytes_in: u64,
}

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
    /// Our probe of the reverse-connect slot, before it answered.
    reverse: bool,
    /// Its snapshot already held every pending change up to this generation.
    welcomed: u64,
    /// Its announced heartbeat interval.
    pace: Duration,
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
    epoch: Instant,
    epoch_unix_ms: u64,

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

    /// Our heartbeat interval now (active or background).
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
    /// The monitor's probe connection to level 1.
    probe: Option<ConnId>,
    /// Connections a router opened to us while we held the reverse-connect slot.
    slot_conns: Vec<ConnId>,

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
            epoch: now,
            epoch_unix_ms: unix_ms,
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
            probe: None,
            slot_conns: vec![],
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
            Some(self.next_beat),
            Some(self.refresh_at),
            self.router_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn router_deadline(&self) -> Option<Instant> {
        matches!(self.role, Role::Member { .. })
            .then(|| self.router_heard + self.router_pace * self.cfg.missed_beats)
    }

    fn unix_ms(&self, now: Instant) -> u64 {
        self.epoch_unix_ms + ms(now.saturating_duration_since(self.epoch))
    }

    /// Starts: registers the discovery ID and tries to become the level-1 router.
    pub fn start(&mut self, now: Instant) {
        self.push(Action::Claim {
            id: self.disc_id.clone(),
        });
        self.sign_record(now);
        self.next_beat = now + self.pace;
        self.elect(1, now);
    }

    /// Changes the display name or position; the new signed record goes out at once.
    pub fn set_presence(&mut self, name: &str, geo: Option<GeoStamp>, now: Instant) {
        self.name = name.to_owned();
        self.geo = geo;
        self.sign_record(now);
        self.announce(now);
    }

    /// Sets the note carried in our record (at most
    /// [`MAX_NOTE_BYTES`](super::presence::MAX_NOTE_BYTES)); call before [`Namespace::start`].
    pub fn set_note(&mut self, note: Vec<u8>) {
        self.note = note;
    }

    /// The app moved to the foreground (`true`) or the background: beat at the matching
    /// interval and tell the other side, so it waits accordingly before declaring us gone.
    pub fn set_active(&mut self, active: bool, now: Instant) {
        let pace = if active {
            self.cfg.heartbeat
        } else {
            self.cfg.background_heartbeat
        };
        if pace == self.pace {
            return;
        }
        self.pace = pace;
        self.next_beat = self.next_beat.min(now + pace);
        self.announce_pace(now);
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
        .chain(self.probe)
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
        let after = self.role();
        if before != after {
            self.event(NsEvent::Role(after));
        }
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

    // ---- election and joining -------------------------------------------------------------

    fn elect(&mut self, level: u8, now: Instant) {
        self.set_role(Role::Electing { level });
        self.deadline = Some(now + self.cfg.join_timeout);
        self.push(Action::Claim {
            id: self.router_id(level),
        });
    }

    fn join(&mut self, level: u8, now: Instant) {
        self.set_role(Role::Joining { level, conn: None });
        self.deadline = Some(now + self.cfg.join_timeout);
        if self.disc_open {
            self.connect_router(level);
        }
    }

    fn connect_router(&mut self, level: u8) {
        let conn = self.new_conn();
        self.role = Role::Joining {
            level,
            conn: Some(conn),
        };
        self.push(Action::Connect {
            conn,
            from: self.disc_id.clone(),
            to: self.router_id(level),
        });
    }

    /// The level after `level`, or wait and start over from 1.
    fn escalate(&mut self, level: u8, now: Instant) {
        if level < self.cfg.max_level {
            self.elect(level + 1, now);
        } else {
            self.dead_level = None;
            self.set_role(Role::Waiting {
                level: 1,
                claim: true,
            });
            self.deadline = Some(now + self.cfg.retry_backoff);
        }
    }

    fn abandon_join(&mut self, now: Instant) {
        if let Role::Joining { level, conn } = self.role.clone() {
            if let Some(c) = conn {
                self.push(Action::Close { conn: c });
            }
            self.snapshot = None;
            // A router that holds its ID but does not answer: try the reverse slot (for NATs
            // that block our side) while moving on to the next level.
            if level == 1 && self.dead_level != Some(1) {
                self.claim_slot(now);
            }
            self.escalate(level, now);
        }
    }

    fn claim_slot(&mut self, now: Instant) {
        if self.slot_until.is_none() {
            self.slot_until = Some(now + self.cfg.slot_wait);
            self.push(Action::Claim { id: self.slot_id() });
        }
    }

    fn release_slot(&mut self) {
        self.slot_until = None;
        if self.slot_claimed {
            self.slot_claimed = false;
            self.push(Action::Release { id: self.slot_id() });
        }
    }

    fn become_router(&mut self, level: u8, now: Instant) {
        self.deadline = None;
        self.dead_level = None;
        self.snapshot = None;
        // Above level 1 we keep waiting in the reverse slot: the level-1 router may reach us.
        if level == 1 {
            self.release_slot();
        }
        self.set_role(Role::Router { level });
        self.next_seq = self.next_seq.max(1);
        // Keep what we knew as members (no flicker); their seqs restart in our order.
        let mut known: Vec<Entry> = self
            .peers
            .split_off(&Fingerprint([0; 32]))
            .into_iter()
            .filter(|(fp, _)| *fp != self.me)
            .map(|(_, e)| e)
            .collect();
        known.sort_by_key(|e| e.seq);
        let confirm_by = now
            + self.cfg.join_timeout * 2
            + self.cfg.rank_step
            + self.cfg.rank_spread * u32::try_from(known.len()).unwrap_or(u32::MAX);
        for e in known {
            let seq = self.next_seq;
            self.next_seq += 1;
            self.peers.insert(
                e.record.fingerprint(),
                Entry {
                    seq,
                    record: e.record,
                    confirm_by: Some(confirm_by),
                },
            );
        }
        if let Some(rec) = self.my_record.clone() {
            self.peers.insert(self.me, Entry::new(0, rec));
        }
        self.monitor_at = Some(
            now + if level > 1 {
                self.cfg.monitor_interval
            } else {
                self.cfg.slot_probe
            },
        );
    }

    fn become_member(&mut self, level: u8, conn: ConnId, now: Instant) {
        self.deadline = None;
        self.dead_level = None;
        if level == 1 {
            self.release_slot();
        }
        self.router_heard = now;
        self.set_role(Role::Member { level, conn });
    }

    /// The router is gone: wait by rank, then contact the next router.
    fn failover(&mut self, silent: bool, now: Instant) {
        let level = match self.role {
            Role::Member { level, .. } => level,
            _ => return,
        };
        self.snapshot = None;
        let target = if silent {
            self.dead_level = Some(level);
            if level < self.cfg.max_level {
                level + 1
            } else {
                1
            }
        } else {
            self.dead_level = None;
            1
        };
        // The router's own entry has seq 0; members rank by join order.
        let my_seq = self.peers.get(&self.me).map(|e| e.seq).unwrap_or(u64::MAX);
        let rank = self
            .peers
            .values()
            .filter(|e| e.seq > 0 && e.seq < my_seq)
            .count();
        // Forget the old router.
        let router_fp = self
            .peers
            .iter()
            .find(|(_, e)| e.seq == 0)
            .map(|(fp, _)| *fp);
        if let Some(fp) = router_fp
            && fp != self.me
        {
            self.peers.remove(&fp);
            self.event(NsEvent::PeerGone(fp));
        }
        if rank == 0 {
            self.elect(target, now);
        } else {
            let spread = self.cfg.rank_spread * u32::try_from(rank).unwrap_or(u32::MAX);
            let jitter = self.rng.random_range(0..=ms(self.cfg.rank_step / 4).max(1));
            self.set_role(Role::Waiting {
                level: target,
                claim: false,
            });
            self.deadline = Some(now + self.cfg.rank_step + spread + Duration::from_millis(jitter));
        }
    }

    // ---- inputs ----------------------------------------------------------------------------

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
        }
    }

    fn level_of(&self, id: &str) -> Option<u8> {
        let rest = id.strip_prefix(&self.prefix)?.strip_prefix('-')?;
        let level: u8 = rest.parse().ok()?;
        (1..=self.cfg.max_level).contains(&level).then_some(level)
    }

    fn on_claimed(&mut self, id: &str, now: Instant) {
        if id == self.disc_id {
            self.disc_open = true;
            if let Role::Joining { level, conn: None } = self.role {
                self.connect_router(level);
            }
            return;
        }
        if id == self.slot_id() {
            if self.slot_until.is_some() {
                self.slot_claimed = true;
            } else {
                self.push(Action::Release { id: id.to_owned() });
            }
            return;
        }
        let Some(level) = self.level_of(id) else {
            return;
        };
        match self.role.clone() {
            Role::Electing { level: l } if l == level => self.become_router(level, now),
            // The monitor reclaimed level 1: move everyone down.
            Role::Router { level: old } if level == 1 && old > 1 => {
                self.push(Action::Release {
                    id: self.router_id(old),
                });
                self.broadcast(&Msg::Relevel { level: 1 }, now);
                self.role = Role::Router { level: 1 };
                self.event(NsEvent::Role(RoleKind::Router(1)));
                self.monitor_at = Some(now + self.cfg.slot_probe);
            }
            _ => self.push(Action::Release { id: id.to_owned() }),
        }
    }

    fn on_claim_failed(&mut self, id: &str, taken: bool, now: Instant) {
        if id == self.disc_id {
            // A collision with another node's random ID: pick another.
            self.disc_id = format!("{}-d-{:016x}", self.prefix, self.rng.random::<u64>());
            self.sign_record(now);
            self.push(Action::Claim {
                id: self.disc_id.clone(),
            });
            return;
        }
        if id == self.slot_id() {
            self.slot_until = None;
            return;
        }
        let Some(level) = self.level_of(id) else {
            return;
        };
        match self.role {
            Role::Electing { level: l } if l == level => {
                if !taken {
                    self.set_role(Role::Waiting { level, claim: true });
                    self.deadline = Some(now + self.cfg.retry_backoff);
                } else if self.dead_level == Some(level) {
                    self.escalate(level, now);
                } else {
                    self.join(level, now);
                }
            }
            // Level 1 is held: by a live router (merge into it) or a stale registration.
            Role::Router { level: old }
                if level == 1 && old > 1 && self.disc_open && self.probe.is_none() =>
            {
                let conn = self.new_conn();
                self.probe = Some(conn);
                self.push(Action::Connect {
                    conn,
                    from: self.disc_id.clone(),
                    to: self.router_id(1),
                });
            }
            _ => {}
        }
    }

    fn on_lost(&mut self, id: &str, now: Instant) {
        if id == self.disc_id {
            self.disc_open = false;
            self.push(Action::Claim { id: id.to_owned() });
        } else if let Role::Router { level } = self.role
            && self.level_of(id) == Some(level)
        {
            // Our router ID is gone from the server: reclaim it (members keep their links).
            self.push(Action::Claim { id: id.to_owned() });
        }
        let _ = now;
    }

    fn on_connected(&mut self, conn: ConnId, now: Instant) {
        if Some(conn) == self.probe {
            // A live router holds level 1: bring our members there and join it ourselves.
            self.probe = None;
            if let Role::Router { level } = self.role {
                self.broadcast(&Msg::Migrate { level: 1 }, now);
                self.drop_all_members();
                self.push(Action::Release {
                    id: self.router_id(level),
                });
                self.set_role(Role::Joining {
                    level: 1,
                    conn: Some(conn),
                });
                self.deadline = Some(now + self.cfg.join_timeout);
                self.check_in(conn, now);
            } else {
                self.push(Action::Close { conn });
            }
            return;
        }
        if let Some(m) = self.members.get_mut(&conn)
            && m.reverse
        {
            m.reverse = false;
            m.last_heard = now;
            let level = match self.role {
                Role::Router { level } => level,
                _ => 1,
            };
            self.send_msg(conn, &Msg::ReverseWelcome { level }, now);
            return;
        }
        if let Role::Joining { conn: Some(c), .. } = self.role
            && c == conn
        {
            self.check_in(conn, now);
        }
    }

    fn check_in(&mut self, conn: ConnId, now: Instant) {
        self.router_heard = now;
        self.router_pace = self.cfg.heartbeat;
        self.snapshot = Some(vec![]);
        if let Some(rec) = self.my_record.clone() {
            self.send_msg(conn, &Msg::CheckIn(Box::new(rec)), now);
        }
        if self.pace != self.cfg.heartbeat {
            let m = self.pace_msg();
            self.send_msg(conn, &m, now);
        }
    }

    fn on_connect_failed(&mut self, conn: ConnId, unavailable: bool, now: Instant) {
        if Some(conn) == self.probe {
            self.probe = None;
            return;
        }
        if self.members.remove(&conn).is_some() {
            return;
        }
        let Role::Joining {
            level,
            conn: Some(c),
        } = self.role
        else {
            return;
        };
        if c != conn {
            return;
        }
        if unavailable {
            // Nobody holds the router ID: claim it.
            self.elect(level, now);
        } else {
            self.abandon_join(now);
        }
    }

    fn on_incoming(&mut self, conn: ConnId, local: &str, remote: String, now: Instant) {
        let router_here =
            matches!(self.role, Role::Router { level } if self.router_id(level) == local);
        if local == self.slot_id() && self.slot_claimed && self.slot_conns.len() < 4 {
            // A router answered our reverse-connect slot: it will send ReverseWelcome.
            self.slot_conns.push(conn);
            return;
        }
        if !router_here || self.members.len() >= self.cfg.registry_cap + 16 {
            self.push(Action::Close { conn });
            return;
        }
        let burst = f64::from(self.cfg.member_rate) * 2.0;
        self.members.insert(
            conn,
            MemberConn {
                remote,
                key: None,
                last_heard: now,
                last_sent: now,
                tokens: burst,
                token_at: now,
                reverse: false,
                welcomed: u64::MAX,
                pace: self.cfg.heartbeat,
            },
        );
    }

    fn on_closed(&mut self, conn: ConnId, now: Instant) {
        self.slot_conns.retain(|c| *c != conn);
        if Some(conn) == self.probe {
            self.probe = None;
            return;
        }
        if self.members.contains_key(&conn) {
            self.drop_member(conn, now);
            return;
        }
        match self.role {
            Role::Member { conn: c, .. } if c == conn => self.failover(false, now),
            Role::Joining { conn: Some(c), .. } if c == conn => self.abandon_join(now),
            _ => {}
        }
    }

    fn on_data(&mut self, conn: ConnId, bytes: &[u8], now: Instant) {
        self.stats.msgs_in += 1;
        self.stats.bytes_in += bytes.len() as u64;
        if self.members.contains_key(&conn) {
            self.on_member_data(conn, bytes, now);
            return;
        }
        if self.slot_conns.contains(&conn) {
            self.on_reverse_data(conn, bytes, now);
            return;
        }
        let from_router = match self.role {
            Role::Member { conn: c, .. } => c == conn,
            Role::Joining { conn: Some(c), .. } => c == conn,
            _ => false,
        };
        if !from_router {
            return;
        }
        self.router_heard = now;
        let msg = match Msg::decode(bytes, &self.cache) {
            Ok(m) => m,
            Err(e) => {
                // An untrusted router sent garbage: drop it and look for another.
                self.event(NsEvent::Misbehaved {
                    remote: "router".into(),
                    reason: e.to_string(),
                });
                self.push(Action::Close { conn });
                match self.role {
                    Role::Member { .. } => self.failover(true, now),
                    _ => self.abandon_join(now),
                }
                return;
            }
        };
        match msg {
            Msg::Welcome {
                level,
                records,
                last,
            } => self.on_welcome(conn, level, records, last, now),
            Msg::Delta { added, removed } => {
                if matches!(self.role, Role::Member { .. }) {
                    for (seq, rec) in added {
                        self.accept_record(seq, rec, now);
                    }
                    for id in removed {
                        self.remove_by_disc(&id);
                    }
                }
            }
            Msg::Beat => {}
            Msg::Pace { ms } => self.router_pace = pace_of(ms),
            Msg::Leave => {
                self.push(Action::Close { conn });
                if matches!(self.role, Role::Member { .. }) {
                    self.failover(false, now);
                } else {
                    self.abandon_join(now);
                }
            }
            Msg::Relevel { level } if (1..=self.cfg.max_level).contains(&level) => {
                if let Role::Member { conn, .. } = self.role {
                    self.role = Role::Member { level, conn };
                    self.event(NsEvent::Role(RoleKind::Member(level)));
                }
            }
            Msg::Migrate { level } if (1..=self.cfg.max_level).contains(&level) => {
                self.push(Action::Close { conn });
                self.snapshot = None;
                self.join(level, now);
            }
            Msg::Refused { reason } => {
                tracing::debug!(ns = %self.prefix, %reason, "router refused our check-in");
                self.push(Action::Close { conn });
                self.abandon_join(now);
            }
            _ => {}
        }
    }

    fn on_welcome(
        &mut self,
        conn: ConnId,
        level: u8,
        records: Vec<Ranked>,
        last: bool,
        now: Instant,
    ) {
        let Some(snapshot) = self.snapshot.as_mut() else {
            return;
        };
        snapshot.extend(records);
        if !last {
            return;
        }
        let records = self.snapshot.take().unwrap_or_default();
        let level = match self.role {
            Role::Joining { level: l, .. } => l,
            _ => level,
        };
        // Replace the view with the router's snapshot (verified record by record).
        let before: Vec<Fingerprint> = self.peers.keys().copied().collect();
        let mut seen = BTreeSet::new();
        for (seq, rec) in records {
            seen.insert(rec.fingerprint());
            self.accept_record(seq, rec, now);
        }
        for fp in before {
            if !seen.contains(&fp) && fp != self.me {
                self.peers.remove(&fp);
                self.event(NsEvent::PeerGone(fp));
            }
        }
        self.become_member(level, conn, now);
    }

    /// Takes a record pushed by the router if it verifies for us too.
    fn accept_record(&mut self, seq: u64, rec: SignedPresence, now: Instant) {
        let now_ms = self.unix_ms(now);
        if rec
            .check(
                &self.prefix,
                now_ms,
                ms(self.cfg.record_max_age),
                ms(self.cfg.clock_skew),
            )
            .is_err()
        {
            return;
        }
        let fp = rec.fingerprint();
        if fp == self.me {
            if let Some(e) = self.peers.get_mut(&fp) {
                e.seq = seq;
            } else if let Some(mine) = self.my_record.clone() {
                self.peers.insert(fp, Entry::new(seq, mine));
            }
            return;
        }
        match self.peers.get_mut(&fp) {
            Some(e) if e.record.presence().issued_ms > rec.presence().issued_ms => {}
            Some(e) if e.record == rec => e.seq = seq,
            _ => {
                let peer = info(fp, &rec);
                self.peers.insert(fp, Entry::new(seq, rec));
                self.event(NsEvent::PeerSeen(peer));
            }
        }
    }

    fn remove_by_disc(&mut self, disc_id: &str) {
        let fp = self
            .peers
            .iter()
            .find(|(_, e)| e.record.presence().disc_id == disc_id)
            .map(|(fp, _)| *fp);
        if let Some(fp) = fp
            && fp != self.me
        {
            self.peers.remove(&fp);
            self.event(NsEvent::PeerGone(fp));
        }
    }

    // ---- router side -----------------------------------------------------------------------

    fn misbehaved(&mut self, conn: ConnId, reason: String, now: Instant) {
        if let Some(m) = self.members.get(&conn) {
            let remote = m.remote.clone();
            self.event(NsEvent::Misbehaved { remote, reason });
        }
        self.push(Action::Close { conn });
        self.drop_member(conn, now);
    }

    fn on_member_data(&mut self, conn: ConnId, bytes: &[u8], now: Instant) {
        let Some(m) = self.members.get_mut(&conn) else {
            return;
        };
        m.last_heard = now;
        // Token bucket per member.
        let rate = f64::from(self.cfg.member_rate);
        let elapsed = now.saturating_duration_since(m.token_at).as_secs_f64();
        m.tokens = (m.tokens + elapsed * rate).min(rate * 2.0);
        m.token_at = now;
        if m.tokens < 1.0 {
            self.misbehaved(conn, "message flood".into(), now);
            return;
        }
        m.tokens -= 1.0;
        if bytes.len() > super::presence::MAX_RECORD_BYTES + 8 {
            self.misbehaved(conn, format!("{}-byte message", bytes.len()), now);
            return;
        }
        let msg = match Msg::decode(bytes, &self.cache) {
            Ok(m) => m,
            Err(e) => {
                self.misbehaved(conn, e.to_string(), now);
                return;
            }
        };
        match msg {
            Msg::CheckIn(rec) => self.on_checkin(conn, *rec, now),
            Msg::Beat => {}
            Msg::Pace { ms } => {
                if let Some(m) = self.members.get_mut(&conn) {
                    m.pace = pace_of(ms);
                }
            }
            Msg::Leave => {
                self.push(Action::Close { conn });
                self.drop_member(conn, now);
            }
            other => self.misbehaved(conn, format!("unexpected {other:?}"), now),
        }
    }

    fn refuse(&mut self, conn: ConnId, reason: &str, now: Instant) {
        let msg = Msg::Refused {
            reason: reason.into(),
        };
        self.send_msg(conn, &msg, now);
        self.misbehaved(conn, reason.into(), now);
    }

    fn on_checkin(&mut self, conn: ConnId, rec: SignedPresence, now: Instant) {
        let Role::Router { level } = self.role else {
            self.push(Action::Close { conn });
            return;
        };
        let Some(m) = self.members.get(&conn) else {
            return;
        };
        let p = rec.presence();
        let fp = rec.fingerprint();
        // The record must name the discovery ID the connection comes from (a connection we
        // opened to the reverse slot comes from the slot ID, whoever holds it).
        if p.disc_id != m.remote && m.remote != self.slot_id() {
            return self.refuse(conn, "record is for another discovery id", now);
        }
        if let Err(e) = rec.check(
            &self.prefix,
            self.unix_ms(now),
            ms(self.cfg.checkin_max_age),
            ms(self.cfg.clock_skew),
        ) {
            return self.refuse(conn, &e.to_string(), now);
        }
        if m.key.is_some_and(|k| k != fp) {
            return self.refuse(conn, "a connection cannot change identity", now);
        }
        if fp == self.me {
            return self.refuse(conn, "that is the router's identity", now);
        }
        let first = m.key.is_none();
        if let Some(old) = self.peers.get(&fp) {
            if old.record.presence().issued_ms >= p.issued_ms && old.record != rec {
                return self.refuse(conn, "replayed record", now);
            }
        } else if self.peers.len() > self.cfg.registry_cap {
            return self.refuse(conn, "namespace full", now);
        }
        // Same identity on another connection (a reconnect with a new discovery ID): the
        // new one replaces the old.
        let stale: Vec<ConnId> = self
            .members
            .iter()
            .filter(|(c, mc)| **c != conn && mc.key == Some(fp))
            .map(|(c, _)| *c)
            .collect();
        for c in stale {
            self.members.remove(&c);
            self.push(Action::Close { conn: c });
        }
        if let Some(old) = self.peers.get(&fp)
            && old.record.presence().disc_id != p.disc_id
        {
            self.pending_removed
                .push(old.record.presence().disc_id.clone());
        }
        if let Some(mc) = self.members.get_mut(&conn) {
            mc.key = Some(fp);
        }
        let seq = match self.peers.get(&fp) {
            Some(e) => e.seq,
            None => {
                self.next_seq += 1;
                self.next_seq - 1
            }
        };
        let unchanged = self.peers.get(&fp).is_some_and(|e| e.record == rec);
        self.peers.insert(fp, Entry::new(seq, rec.clone()));
        if !unchanged {
            self.event(NsEvent::PeerSeen(info(fp, &rec)));
            self.generation += 1;
            self.pending_added.push((self.generation, (seq, rec)));
            self.schedule_flush(now);
        }
        if first {
            if let Some(mc) = self.members.get_mut(&conn) {
                mc.welcomed = self.generation;
            }
            self.send_snapshot(conn, level, now);
            if self.pace != self.cfg.heartbeat {
                let m = self.pace_msg();
                self.send_msg(conn, &m, now);
            }
        }
    }

    fn send_snapshot(&mut self, conn: ConnId, level: u8, now: Instant) {
        let mut all: Vec<Ranked> = self
            .peers
            .values()
            .map(|e| (e.seq, e.record.clone()))
            .collect();
        all.sort_by_key(|(s, _)| *s);
        let mut pages: Vec<Vec<Ranked>> = vec![];
        let mut page: Vec<Ranked> = vec![];
        let mut size = 16;
        for r in all {
            let len = r.1.encoded_len() + 8;
            if page.len() == MAX_RECORDS_PER_MESSAGE || size + len > MAX_MESSAGE_BYTES - 64 {
                pages.push(std::mem::take(&mut page));
                size = 16;
            }
            size += len;
            page.push(r);
        }
        pages.push(page);
        let n = pages.len();
        for (i, records) in pages.into_iter().enumerate() {
            let msg = Msg::Welcome {
                level,
                records,
                last: i + 1 == n,
            };
            self.send_msg(conn, &msg, now);
        }
    }

    fn schedule_flush(&mut self, now: Instant) {
        if self.flush_at.is_none() {
            self.flush_at = Some(now + self.cfg.batch_interval);
        }
    }

    fn flush(&mut self, now: Instant) {
        self.flush_at = None;
        if self.pending_added.is_empty() && self.pending_removed.is_empty() {
            return;
        }
        let mut added = std::mem::take(&mut self.pending_added);
        let removed = std::mem::take(&mut self.pending_removed);
        // Keep only the newest record per identity.
        added.sort_by_key(|(_, (_, r))| std::cmp::Reverse(r.presence().issued_ms));
        let mut seen = BTreeSet::new();
        added.retain(|(_, (_, r))| seen.insert(r.fingerprint()));
        added.sort_by_key(|(generation, _)| *generation);
        let encode = |records: &[Ranked]| -> Vec<Vec<u8>> {
            records
                .chunks(MAX_RECORDS_PER_MESSAGE / 2)
                .map(|c| {
                    Msg::Delta {
                        added: c.to_vec(),
                        removed: vec![],
                    }
                    .encode()
                })
                .collect()
        };
        let all: Vec<Ranked> = added.iter().map(|(_, r)| r.clone()).collect();
        let everything = encode(&all);
        let removals: Vec<Vec<u8>> = removed
            .chunks(super::msg::MAX_REMOVALS_PER_MESSAGE / 2)
            .map(|c| {
                Msg::Delta {
                    added: vec![],
                    removed: c.to_vec(),
                }
                .encode()
            })
            .collect();
        let targets: Vec<(ConnId, Option<Fingerprint>, u64)> = self
            .members
            .iter()
            .filter(|(_, m)| m.key.is_some() && !m.reverse)
            .map(|(c, m)| (*c, m.key, m.welcomed))
            .collect();
        let oldest = added.first().map_or(u64::MAX, |(g, _)| *g);
        for (conn, key, welcomed) in targets {
            // What its snapshot did not hold, without its own record echoed back.
            let needs_all =
                welcomed < oldest && !all.iter().any(|(_, r)| Some(r.fingerprint()) == key);
            let msgs = if needs_all {
                everything.clone()
            } else {
                let mine: Vec<Ranked> = added
                    .iter()
                    .filter(|(g, (_, r))| *g > welcomed && Some(r.fingerprint()) != key)
                    .map(|(_, r)| r.clone())
                    .collect();
                encode(&mine)
            };
            for bytes in msgs.into_iter().chain(removals.iter().cloned()) {
                self.send_raw(conn, bytes, now);
            }
        }
    }

    fn broadcast(&mut self, msg: &Msg, now: Instant) {
        let bytes = msg.encode();
        let conns: Vec<ConnId> = self
            .members
            .iter()
            .filter(|(_, m)| !m.reverse)
            .map(|(c, _)| *c)
            .collect();
        for c in conns {
            self.send_raw(c, bytes.clone(), now);
        }
    }

    fn drop_member(&mut self, conn: ConnId, now: Instant) {
        let Some(m) = self.members.remove(&conn) else {
            return;
        };
        if let Some(fp) = m.key
            && !self.members.values().any(|o| o.key == Some(fp))
            && self.peers.contains_key(&fp)
        {
            let disc = self.peers[&fp].record.presence().disc_id.clone();
            self.peers.remove(&fp);
            self.event(NsEvent::PeerGone(fp));
            self.pending_removed.push(disc);
            self.schedule_flush(now);
        }
    }

    fn drop_all_members(&mut self) {
        let conns: Vec<ConnId> = self.members.keys().copied().collect();
        for c in conns {
            self.members.remove(&c);
            self.push(Action::Close { conn: c });
        }
    }

    /// We sit in the reverse slot and a router connected to us.
    fn on_reverse_data(&mut self, conn: ConnId, bytes: &[u8], now: Instant) {
        self.slot_conns.retain(|c| *c != conn);
        let Ok(Msg::ReverseWelcome { level }) = Msg::decode(bytes, &self.cache) else {
            self.push(Action::Close { conn });
            return;
        };
        if matches!(
            self.role,
            Role::Member { level: 1, .. } | Role::Router { level: 1 }
        ) {
            self.push(Action::Close { conn });
            return;
        }
        // Adopt the reverse connection as our router link.
        match self.role.clone() {
            Role::Router { level: old } => {
                self.broadcast(&Msg::Migrate { level }, now);
                self.drop_all_members();
                self.push(Action::Release {
                    id: self.router_id(old),
                });
            }
            Role::Member { conn: c, .. } | Role::Joining { conn: Some(c), .. } => {
                self.push(Action::Close { conn: c });
            }
            _ => {}
        }
        self.release_slot();
        self.set_role(Role::Joining {
            level,
            conn: Some(conn),
        });
        self.deadline = Some(now + self.cfg.join_timeout);
        self.check_in(conn, now);
    }

    // ---- time ------------------------------------------------------------------------------

    /// Runs every timer that is due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.stopped {
            return;
        }
        if self.flush_at.is_some_and(|t| t <= now) {
            self.flush(now);
        }
        if self.refresh_at <= now {
            self.sign_record(now);
            self.announce(now);
        }
        if self.slot_until.is_some_and(|t| t <= now) {
            self.release_slot();
        }
        if self.router_deadline().is_some_and(|t| t <= now) {
            self.failover(true, now);
        }
        if self.deadline.is_some_and(|t| t <= now) {
            self.deadline = None;
            match self.role.clone() {
                Role::Electing { level } => {
                    // The server never answered the claim: treat as taken and try joining.
                    self.join(level, now);
                }
                Role::Joining { .. } => self.abandon_join(now),
                Role::Waiting { level, claim } => {
                    if claim {
                        self.elect(level, now);
                    } else {
                        self.join(level, now);
                    }
                }
                _ => {}
            }
        }
        if self.monitor_at.is_some_and(|t| t <= now) {
            self.monitor(now);
        }
        if self.next_beat <= now {
            self.beat(now);
        }
    }

    fn monitor(&mut self, now: Instant) {
        let Role::Router { level } = self.role else {
            self.monitor_at = None;
            return;
        };
        if level > 1 {
            self.monitor_at = Some(now + self.cfg.monitor_interval);
            if self.probe.is_none() {
                self.push(Action::Claim {
                    id: self.router_id(1),
                });
            }
        } else {
            self.monitor_at = Some(now + self.cfg.slot_probe);
            if self.disc_open && !self.members.values().any(|m| m.reverse) {
                let conn = self.new_conn();
                self.members.insert(
                    conn,
                    MemberConn {
                        remote: self.slot_id(),
                        key: None,
                        last_heard: now,
                        last_sent: now,
                        tokens: f64::from(self.cfg.member_rate) * 2.0,
                        token_at: now,
                        reverse: true,
                        welcomed: u64::MAX,
                        pace: self.cfg.heartbeat,
                    },
                );
                self.push(Action::Connect {
                    conn,
                    from: self.disc_id.clone(),
                    to: self.slot_id(),
                });
            }
        }
    }

    fn beat(&mut self, now: Instant) {
        self.next_beat = now + self.pace;
        let beat = Msg::Beat.encode();
        let hb = self.pace;
        // Members: beat to the router when nothing else went out.
        if let Role::Member { conn, .. } = self.role
            && now.saturating_duration_since(self.router_sent) + hb / 10 >= hb
        {
            self.send_raw(conn, beat.clone(), now);
        }
        // Router: beat to members, evict the silent, time out those that never checked in.
        if let Role::Router { .. } = self.role {
            let mut silent = vec![];
            let mut due = vec![];
            for (c, m) in &self.members {
                let quiet = now.saturating_duration_since(m.last_heard);
                let evict_after = m.pace * (self.cfg.missed_beats + 1);
                if (m.key.is_some() && quiet > evict_after)
                    || (m.key.is_none() && quiet > self.cfg.join_timeout * 2)
                {
                    silent.push(*c);
                } else if m.key.is_some()
                    && now.saturating_duration_since(m.last_sent) + hb / 10 >= hb
                {
                    due.push(*c);
                }
            }
            for c in silent {
                self.push(Action::Close { conn: c });
                self.drop_member(c, now);
            }
            for c in due {
                self.send_raw(c, beat.clone(), now);
            }
        }
        // A new router: forget old members that did not check in again.
        let unconfirmed: Vec<(Fingerprint, String)> = self
            .peers
            .iter()
            .filter(|(_, e)| e.confirm_by.is_some_and(|t| t <= now))
            .map(|(fp, e)| (*fp, e.record.presence().disc_id.clone()))
            .collect();
        for (fp, disc) in unconfirmed {
            self.peers.remove(&fp);
            self.event(NsEvent::PeerGone(fp));
            self.pending_removed.push(disc);
            self.schedule_flush(now);
        }
        // Everyone: forget records that grew too old.
        let now_ms = self.unix_ms(now);
        let max_age = ms(self.cfg.record_max_age);
        let old: Vec<Fingerprint> = self
            .peers
            .iter()
            .filter(|(fp, e)| {
                **fp != self.me && now_ms.saturating_sub(e.record.presence().issued_ms) > max_age
            })
            .map(|(fp, _)| *fp)
            .collect();
        for fp in old {
            self.peers.remove(&fp);
            self.event(NsEvent::PeerGone(fp));
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
