//! A deterministic simulator for the namespace engine: many phones, a virtual clock, an
//! in-memory PeerJS-like signaling server and data links with latency, loss and partitions,
//! driving the same [`Namespace`] state machines real nodes run. Runs far faster than real
//! time; the same seed replays the same run.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::namespace::{Action, ConnId, Input, Namespace, NsConfig, NsEvent, PeerInfo, RoleKind};
use super::presence::{GeoStamp, VerifyCache};
use crate::identity::{Fingerprint, Identity};

/// Network model.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// One-way latency of data links.
    pub latency: Duration,
    /// Random extra latency, up to this.
    pub jitter: Duration,
    /// One-way latency to the signaling server.
    pub signaling_latency: Duration,
    /// Probability that a data message is lost once and retransmitted (SCTP is reliable:
    /// a loss costs a retransmission timeout, not the message).
    pub loss: f64,
    /// Retransmission delay of a lost message.
    pub rto: Duration,
    /// How long a dead phone's IDs stay registered at the server (its alive timeout).
    pub alive_timeout: Duration,
    /// How long a connection attempt to an unreachable peer takes to fail.
    pub connect_timeout: Duration,
    /// How long the server holds an offer for an ID nobody has registered (then EXPIRE).
    pub expire_timeout: Duration,
    /// Modelled processing time of each input at a node (0 = infinitely fast). Virtual, so
    /// runs stay deterministic: a busy node queues what arrives meanwhile.
    pub cpu_per_input: Duration,
    /// Modelled processing time per KiB of a received message (signature checks dominate).
    pub cpu_per_kib: Duration,
    /// Modelled time per KiB sent (encoding, DTLS, SCTP): a router's uplink work.
    pub cpu_per_kib_out: Duration,
    /// Seed of every random choice.
    pub seed: u64,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            latency: Duration::from_millis(15),
            jitter: Duration::from_millis(10),
            signaling_latency: Duration::from_millis(20),
            loss: 0.0,
            rto: Duration::from_millis(200),
            alive_timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            expire_timeout: Duration::from_secs(5),
            cpu_per_input: Duration::ZERO,
            cpu_per_kib: Duration::ZERO,
            cpu_per_kib_out: Duration::ZERO,
            seed: 1,
        }
    }
}

/// A namespace engine instance inside the simulator.
pub type EngineId = usize;

struct Engine {
    phone: usize,
    ns: Namespace,
    next_incoming: u64,
}

struct Phone {
    identity: Arc<Identity>,
    alive: bool,
    group: u32,
    /// Behind a NAT that lets no connection it opens through (incoming ones work).
    blocks_outgoing: bool,
    engines: Vec<EngineId>,
}

#[derive(Debug)]
enum Ev {
    Input(EngineId, Input),
    Timer(EngineId),
    Expire(String),
    ExpireOffer(String, EngineId, ConnId),
}

/// Per-engine traffic and a timeline of what it saw.
#[derive(Debug, Default, Clone)]
pub struct Observed {
    /// When each peer was first (last) seen, by fingerprint.
    pub seen_at: BTreeMap<Fingerprint, Duration>,
    /// Role changes with their times.
    pub roles: Vec<(Duration, RoleKind)>,
    /// Misbehaviour reports.
    pub misbehaved: Vec<String>,
    /// The IDs it claimed, with the times.
    pub claims: Vec<(Duration, String)>,
    /// The IDs it connected to, with the times.
    pub connects: Vec<(Duration, String)>,
}

/// The simulator.
pub struct Sim {
    cfg: SimConfig,
    rng: SmallRng,
    start: Instant,
    now: Instant,
    queue: BinaryHeap<Reverse<(Instant, u64, usize)>>,
    events: HashMap<usize, Ev>,
    next_ev: u64,
    phones: Vec<Phone>,
    engines: Vec<Engine>,
    observed: Vec<Observed>,
    /// Registered IDs → engine.
    ids: HashMap<String, EngineId>,
    /// Open link ends: (engine, conn) → (peer engine, peer conn). An end stays open until
    /// its engine closes it or hears that the other end did.
    links: HashMap<(EngineId, ConnId), (EngineId, ConnId)>,
    /// Per engine: the next timer already queued.
    timers: Vec<Option<Instant>>,
    /// Per engine: real time spent inside its state machine (not virtual time).
    busy: Vec<Duration>,
    /// Per engine: until when (virtual) it is busy processing.
    free_at: Vec<Instant>,
    /// The time new events are scheduled from (now, or the end of a node's processing).
    base: Instant,
    /// Offers the server holds for IDs not registered yet.
    held: HashMap<String, Vec<(EngineId, ConnId)>>,
    /// Per directed link: when its last message arrives (data channels are ordered).
    link_clock: HashMap<(EngineId, ConnId), Instant>,
    /// Messages and closes sent across a partition, in order: SCTP retransmits them, so they
    /// arrive once the partition heals (if the link is still there).
    across: Vec<((EngineId, ConnId), Ev)>,
    cache: Arc<VerifyCache>,
}

impl Sim {
    /// An empty simulation.
    pub fn new(cfg: SimConfig) -> Self {
        let now = Instant::now();
        Self {
            rng: SmallRng::seed_from_u64(cfg.seed),
            cfg,
            start: now,
            now,
            queue: BinaryHeap::new(),
            events: HashMap::new(),
            next_ev: 0,
            phones: vec![],
            engines: vec![],
            observed: vec![],
            ids: HashMap::new(),
            links: HashMap::new(),
            timers: vec![],
            link_clock: HashMap::new(),
            across: Vec::new(),
            held: HashMap::new(),
            busy: vec![],
            free_at: vec![],
            base: now,
            cache: Arc::new(VerifyCache::new(1 << 20)),
        }
    }

    /// Virtual time since the start.
    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    /// Adds a phone (an identity) and returns its index.
    pub fn add_phone(&mut self) -> usize {
        let i = self.phones.len();
        let mut secret = [0u8; 32];
        self.rng.fill(&mut secret);
        self.phones.push(Phone {
            identity: Arc::new(Identity::from_secret(&secret, &format!("p{i}"))),
            alive: true,
            group: 0,
            blocks_outgoing: false,
            engines: vec![],
        });
        i
    }

    /// The phone's identity fingerprint.
    pub fn fingerprint(&self, phone: usize) -> Fingerprint {
        self.phones[phone].identity.fingerprint()
    }

    /// Starts a namespace engine on `phone` for `prefix`, now.
    pub fn join(
        &mut self,
        phone: usize,
        prefix: &str,
        cfg: NsConfig,
        geo: Option<GeoStamp>,
    ) -> EngineId {
        self.join_ahead(phone, prefix, cfg, geo, Duration::ZERO)
    }

    /// The same on a phone whose wall clock is `ahead` of everyone else's.
    pub fn join_ahead(
        &mut self,
        phone: usize,
        prefix: &str,
        cfg: NsConfig,
        geo: Option<GeoStamp>,
        ahead: Duration,
    ) -> EngineId {
        let id = self.engines.len();
        let seed = self.rng.random();
        let unix_ms =
            1_800_000_000_000 + u64::try_from((self.elapsed() + ahead).as_millis()).unwrap_or(0);
        let name = format!("phone {phone}");
        let mut ns = Namespace::new(
            cfg,
            prefix,
            self.phones[phone].identity.clone(),
            &name,
            self.cache.clone(),
            seed,
            self.now,
            unix_ms,
        );
        if geo.is_some() {
            ns.set_presence(&name, geo, self.now);
        }
        ns.start(self.now);
        self.engines.push(Engine {
            phone,
            ns,
            next_incoming: 0,
        });
        self.observed.push(Observed::default());
        self.timers.push(None);
        self.busy.push(Duration::ZERO);
        self.free_at.push(self.now);
        self.phones[phone].engines.push(id);
        self.pump(id);
        id
    }

    /// The engine's state machine.
    pub fn engine(&self, e: EngineId) -> &Namespace {
        &self.engines[e].ns
    }

    /// Real (CPU) time the engine's state machine has used so far.
    pub fn busy(&self, e: EngineId) -> Duration {
        self.busy[e]
    }

    /// What the engine saw.
    pub fn observed(&self, e: EngineId) -> &Observed {
        &self.observed[e]
    }

    /// Peers the phone sees across all its engines, de-duplicated by fingerprint.
    pub fn phone_view(&self, phone: usize) -> BTreeMap<Fingerprint, PeerInfo> {
        let mut out = BTreeMap::new();
        for &e in &self.phones[phone].engines {
            for p in self.engines[e].ns.peers() {
                out.entry(p.fingerprint).or_insert(p);
            }
        }
        out
    }

    /// Whether every engine in `engines` sees every other one's phone.
    pub fn all_see_each_other(&self, engines: &[EngineId]) -> bool {
        let fps: Vec<Fingerprint> = engines
            .iter()
            .map(|&o| self.phones[self.engines[o].phone].identity.fingerprint())
            .collect();
        engines.iter().all(|&e| {
            let ns = &self.engines[e].ns;
            let me = self.phones[self.engines[e].phone].identity.fingerprint();
            fps.iter().all(|fp| *fp == me || ns.knows(fp))
        })
    }

    /// Number of engines that are routers.
    pub fn routers(&self, engines: &[EngineId]) -> Vec<EngineId> {
        engines
            .iter()
            .copied()
            .filter(|&e| matches!(self.engines[e].ns.role(), RoleKind::Router(_)))
            .collect()
    }

    /// Stops a phone gracefully (goodbyes, IDs released).
    pub fn leave(&mut self, phone: usize) {
        for e in self.phones[phone].engines.clone() {
            self.engines[e].ns.stop(self.now);
            self.pump(e);
        }
        self.phones[phone].alive = false;
    }

    /// Kills a phone silently: nothing more from it, its links go quiet, its IDs stay
    /// registered until the server's alive timeout.
    pub fn kill(&mut self, phone: usize) {
        self.phones[phone].alive = false;
        let ids: Vec<String> = self
            .ids
            .iter()
            .filter(|(_, e)| self.engines[**e].phone == phone)
            .map(|(id, _)| id.clone())
            .collect();
        for id in ids {
            self.schedule(self.cfg.alive_timeout, Ev::Expire(id));
        }
    }

    /// Puts phones in partition groups: data links between groups carry nothing.
    pub fn partition(&mut self, groups: &[&[usize]]) {
        for (g, phones) in groups.iter().enumerate() {
            for &p in *phones {
                self.phones[p].group = g as u32 + 1;
            }
        }
    }

    /// Puts a phone behind a NAT that fails every connection it opens (those opened to it
    /// still work), the case the reverse-connect slot exists for.
    pub fn block_outgoing(&mut self, phone: usize) {
        self.phones[phone].blocks_outgoing = true;
    }

    /// The phone's app goes to the background (`false`) or comes back.
    pub fn set_active(&mut self, phone: usize, active: bool) {
        for e in self.phones[phone].engines.clone() {
            let now = self.now;
            self.engines[e].ns.set_active(active, now);
            self.pump(e);
        }
    }

    /// A network blip at `phone`: every data link of its engines breaks (both ends hear of
    /// it after the link's latency).
    pub fn blip(&mut self, phone: usize) {
        let mut ends: Vec<(EngineId, ConnId)> = vec![];
        for (&end, &other) in &self.links {
            if self.engines[end.0].phone == phone {
                ends.extend([end, other]);
            }
        }
        ends.sort_unstable();
        ends.dedup();
        for (e, conn) in ends {
            self.schedule(self.cfg.latency, Ev::Input(e, Input::Closed { conn }));
        }
    }

    /// Heals every partition.
    pub fn heal(&mut self) {
        for p in &mut self.phones {
            p.group = 0;
        }
        for (from, ev) in std::mem::take(&mut self.across) {
            let to = match &ev {
                Ev::Input(t, _) => *t,
                _ => continue,
            };
            let open =
                matches!(ev, Ev::Input(_, Input::Closed { .. })) || self.links.contains_key(&from);
            if open && self.phones[self.engines[to].phone].alive {
                self.link_schedule(from, ev);
            }
        }
    }

    fn schedule(&mut self, after: Duration, ev: Ev) {
        let at = self.base.max(self.now) + after;
        let k = self.next_ev;
        self.next_ev += 1;
        self.events.insert(k as usize, ev);
        self.queue.push(Reverse((at, k, k as usize)));
    }

    fn link_delay(&mut self) -> Duration {
        let jitter = self.cfg.jitter.as_micros() as u64;
        let mut d = self.cfg.latency + Duration::from_micros(self.rng.random_range(0..=jitter));
        if self.cfg.loss > 0.0 && self.rng.random_bool(self.cfg.loss.min(1.0)) {
            d += self.cfg.rto;
        }
        d
    }

    /// Delivers on a link in order: never before the link's previous message.
    fn link_schedule(&mut self, from: (EngineId, ConnId), ev: Ev) {
        let d = self.link_delay();
        let base = self.base.max(self.now);
        let last = self.link_clock.get(&from).copied().unwrap_or(base);
        let at = (base + d).max(last + Duration::from_micros(1));
        self.link_clock.insert(from, at);
        self.schedule(at - base, ev);
    }

    /// Delivers on a link now, or after the partition between the two ends heals; nothing
    /// reaches a dead phone.
    fn send_on_link(&mut self, from: (EngineId, ConnId), to: EngineId, ev: Ev) {
        if self.reachable(from.0, to) {
            self.link_schedule(from, ev);
        } else if self.phones[self.engines[from.0].phone].alive
            && self.phones[self.engines[to].phone].alive
        {
            self.across.push((from, ev));
        }
    }

    /// Opens a link from `e`'s `conn` to engine `t` registered as `to`.
    fn setup_link(&mut self, e: EngineId, conn: ConnId, t: EngineId, to: String) {
        let sig = self.cfg.signaling_latency;
        if !self.reachable(e, t) || self.phones[self.engines[e].phone].blocks_outgoing {
            let failed = Input::ConnectFailed {
                conn,
                unavailable: false,
            };
            self.schedule(self.cfg.connect_timeout, Ev::Input(e, failed));
            return;
        }
        let n = self.engines[t].next_incoming;
        self.engines[t].next_incoming += 1;
        let tc = ConnId::incoming(n);
        self.links.insert((e, conn), (t, tc));
        self.links.insert((t, tc), (e, conn));
        let remote = self.engines[e].ns.disc_id().to_owned();
        // Offer/answer through the server, then ICE and DTLS.
        let setup = sig * 4 + self.link_delay() * 2;
        let incoming = Input::Incoming {
            conn: tc,
            local: to,
            remote,
        };
        self.schedule(setup, Ev::Input(t, incoming));
        self.schedule(setup, Ev::Input(e, Input::Connected { conn }));
    }

    fn reachable(&self, a: EngineId, b: EngineId) -> bool {
        let (pa, pb) = (
            &self.phones[self.engines[a].phone],
            &self.phones[self.engines[b].phone],
        );
        pa.alive && pb.alive && pa.group == pb.group
    }

    /// Carries out the engine's actions and re-arms its timer.
    fn pump(&mut self, e: EngineId) {
        let actions = self.engines[e].ns.drain_actions();
        let sig = self.cfg.signaling_latency;
        for a in actions {
            match a {
                Action::Claim { id } => {
                    let t = self.elapsed();
                    self.observed[e].claims.push((t, id.clone()));
                    // The server decides when the request arrives.
                    self.schedule(sig, Ev::Input(e, Input::Claimed { id }));
                }
                Action::Release { id } => {
                    if self.ids.get(&id) == Some(&e) {
                        self.ids.remove(&id);
                    }
                }
                Action::Connect { conn, to, .. } => {
                    let t = self.elapsed();
                    self.observed[e].connects.push((t, to.clone()));
                    match self.ids.get(&to).copied() {
                        // Like PeerJS servers, hold the offer until the ID registers or expires.
                        None => {
                            self.held.entry(to.clone()).or_default().push((e, conn));
                            self.schedule(self.cfg.expire_timeout, Ev::ExpireOffer(to, e, conn));
                        }
                        Some(t) => self.setup_link(e, conn, t, to),
                    }
                }
                Action::Knock { from, to } => {
                    // A signaling frame: the server relays it to whoever holds `to`.
                    if let Some(&t) = self.ids.get(&to)
                        && self.phones[self.engines[t].phone].alive
                    {
                        self.schedule(sig * 2, Ev::Input(t, Input::Knock { from }));
                    }
                }
                Action::Send { conn, bytes } => {
                    if let Some(&(t, tc)) = self.links.get(&(e, conn)) {
                        let ev = Ev::Input(t, Input::Data { conn: tc, bytes });
                        self.send_on_link((e, conn), t, ev);
                    }
                }
                Action::Close { conn } => {
                    // The other end hears of it after what was sent before (a `Refused`, a
                    // `Leave`), as over SCTP.
                    if let Some((t, tc)) = self.links.remove(&(e, conn))
                        && self.links.contains_key(&(t, tc))
                    {
                        let ev = Ev::Input(t, Input::Closed { conn: tc });
                        self.send_on_link((e, conn), t, ev);
                    }
                }
                Action::Event(ev) => self.observe(e, ev),
            }
        }
        if let Some(t) = self.engines[e].ns.poll_timeout()
            && self.timers[e] != Some(t)
        {
            self.timers[e] = Some(t);
            let after = t.saturating_duration_since(self.base.max(self.now));
            self.schedule(after, Ev::Timer(e));
        }
    }

    fn observe(&mut self, e: EngineId, ev: NsEvent) {
        let t = self.elapsed();
        let o = &mut self.observed[e];
        match ev {
            NsEvent::PeerSeen(p) => {
                o.seen_at.insert(p.fingerprint, t);
            }
            NsEvent::PeerGone(fp) => {
                o.seen_at.remove(&fp);
            }
            NsEvent::Role(r) => o.roles.push((t, r)),
            NsEvent::Misbehaved { reason, .. } => o.misbehaved.push(reason),
        }
    }

    /// Feeds raw bytes to engine `to` as if `from_phone` had sent them on a fresh connection
    /// to `local` (for attack scenarios). Returns the connection used.
    pub fn inject(&mut self, to: EngineId, local: &str, remote: &str, msgs: Vec<Vec<u8>>) {
        let n = self.engines[to].next_incoming;
        self.engines[to].next_incoming += 1;
        let conn = ConnId::incoming(n);
        let now = self.now;
        self.engines[to].ns.handle(
            Input::Incoming {
                conn,
                local: local.to_owned(),
                remote: remote.to_owned(),
            },
            now,
        );
        for bytes in msgs {
            self.engines[to].ns.handle(Input::Data { conn, bytes }, now);
        }
        self.pump(to);
    }

    /// Runs until virtual time `elapsed` (since the start).
    pub fn run_until(&mut self, elapsed: Duration) {
        let end = self.start + elapsed;
        while let Some(Reverse((at, _, k))) = self.queue.peek().copied() {
            if at > end {
                break;
            }
            self.queue.pop();
            self.now = self.now.max(at);
            let Some(ev) = self.events.remove(&k) else {
                continue;
            };
            self.dispatch(ev);
        }
        self.now = self.now.max(end);
    }

    /// Runs for `d` more virtual time.
    pub fn run_for(&mut self, d: Duration) {
        let until = self.elapsed() + d;
        self.run_until(until);
    }

    /// Runs until `done(self)` holds, checking every `step`, for at most `limit`; returns the
    /// virtual time it took, or `None`.
    pub fn run_until_true(
        &mut self,
        limit: Duration,
        step: Duration,
        done: impl Fn(&Sim) -> bool,
    ) -> Option<Duration> {
        let t0 = self.elapsed();
        while self.elapsed() - t0 <= limit {
            if done(self) {
                return Some(self.elapsed() - t0);
            }
            self.run_for(step);
        }
        None
    }

    fn dispatch(&mut self, ev: Ev) {
        match ev {
            Ev::ExpireOffer(id, e, conn) => {
                let Some(list) = self.held.get_mut(&id) else {
                    return;
                };
                let before = list.len();
                list.retain(|h| *h != (e, conn));
                if list.len() != before && self.phones[self.engines[e].phone].alive {
                    let now = self.now;
                    self.engines[e].ns.handle(
                        Input::ConnectFailed {
                            conn,
                            unavailable: true,
                        },
                        now,
                    );
                    self.pump(e);
                }
            }
            Ev::Expire(id) => {
                if let Some(&e) = self.ids.get(&id)
                    && !self.phones[self.engines[e].phone].alive
                {
                    self.ids.remove(&id);
                }
            }
            Ev::Timer(e) => {
                if !self.phones[self.engines[e].phone].alive {
                    return;
                }
                if self.free_at[e] > self.now {
                    let wait = self.free_at[e] - self.now;
                    self.schedule(wait, Ev::Timer(e));
                    return;
                }
                if self.timers[e].is_some_and(|t| t <= self.now) {
                    self.timers[e] = None;
                    let now = self.now;
                    let t0 = Instant::now();
                    self.engines[e].ns.handle_timeout(now);
                    self.busy[e] += t0.elapsed();
                    self.processed(e, self.cfg.cpu_per_input);
                }
            }
            Ev::Input(e, input) => {
                if !self.phones[self.engines[e].phone].alive {
                    return;
                }
                if self.free_at[e] > self.now {
                    let wait = self.free_at[e] - self.now;
                    self.schedule(wait, Ev::Input(e, input));
                    return;
                }
                let kib = match &input {
                    Input::Data { bytes, .. } => bytes.len() as f64 / 1024.0,
                    _ => 0.0,
                };
                let input = match input {
                    // The server registers the ID now, or says it is taken.
                    Input::Claimed { id } => match self.ids.get(&id) {
                        Some(&holder) if holder != e => Input::ClaimFailed { id, taken: true },
                        _ => {
                            self.ids.insert(id.clone(), e);
                            // Deliver the offers held for it.
                            for (from, conn) in self.held.remove(&id).unwrap_or_default() {
                                self.setup_link(from, conn, e, id.clone());
                            }
                            Input::Claimed { id }
                        }
                    },
                    Input::Data { conn, bytes } => {
                        if !self.links.contains_key(&(e, conn)) {
                            return;
                        }
                        Input::Data { conn, bytes }
                    }
                    // Only to an end still open (not one its engine closed meanwhile).
                    Input::Closed { conn } => {
                        if self.links.remove(&(e, conn)).is_none() {
                            return;
                        }
                        self.link_clock.remove(&(e, conn));
                        Input::Closed { conn }
                    }
                    other => other,
                };
                let now = self.now;
                let t0 = Instant::now();
                self.engines[e].ns.handle(input, now);
                self.busy[e] += t0.elapsed();
                let cost = self.cfg.cpu_per_input + self.cfg.cpu_per_kib.mul_f64(kib);
                self.processed(e, cost);
            }
        }
    }

    /// The engine worked for `cost` (virtual) plus the cost of what it sends: its output
    /// leaves when the work is done.
    fn processed(&mut self, e: EngineId, cost: Duration) {
        let out: usize = self.engines[e]
            .ns
            .pending_actions()
            .iter()
            .map(|a| match a {
                Action::Send { bytes, .. } => bytes.len(),
                _ => 0,
            })
            .sum();
        let cost = cost + self.cfg.cpu_per_kib_out.mul_f64(out as f64 / 1024.0);
        self.free_at[e] = self.now + cost;
        self.base = self.now + cost;
        self.pump(e);
        self.base = self.now;
    }
}

impl Sim {
    /// Adds `n` phones that join `prefix` `gap` apart (default engine settings); returns
    /// their engines (phone `i` of the crowd has engine `i` of the result).
    pub fn crowd(&mut self, prefix: &str, n: usize, gap: Duration) -> Vec<EngineId> {
        (0..n)
            .map(|_| {
                let p = self.add_phone();
                let e = self.join(p, prefix, NsConfig::default(), None);
                self.run_for(gap);
                e
            })
            .collect()
    }

    /// One router among `engines`, every other engine its member, and every engine sees every
    /// other.
    pub fn converged(&self, engines: &[EngineId]) -> bool {
        let routers = self.routers(engines);
        let [router] = routers[..] else {
            return false;
        };
        let RoleKind::Router(level) = self.engines[router].ns.role() else {
            return false;
        };
        // A member of another level still follows a router that is gone.
        engines
            .iter()
            .all(|&e| e == router || self.engines[e].ns.role() == RoleKind::Member(level))
            && self.all_see_each_other(engines)
    }

    /// The phone an engine runs on.
    pub fn phone_of(&self, e: EngineId) -> usize {
        self.engines[e].phone
    }
}

/// Failover in a namespace of `n`: once converged, the router leaves (gracefully or killed
/// silently); returns how long until the others see each other under one router again and
/// no longer list the old router, or `None` if that takes over 30 s.
pub fn failover_time(cfg: SimConfig, n: usize, silent: bool) -> Option<Duration> {
    failover_time_after(cfg, n, silent, Duration::from_secs(2))
}

/// Like [`failover_time`], with the router dying `settle` (plus a seed-dependent phase) after
/// everyone joined: minutes later, every member re-joins with a record it signs then.
pub fn failover_time_after(
    cfg: SimConfig,
    n: usize,
    silent: bool,
    settle: Duration,
) -> Option<Duration> {
    let seed = cfg.seed;
    let mut sim = Sim::new(cfg);
    let engines = sim.crowd("peerns2-ns-failover", n, Duration::from_millis(50));
    sim.run_until_true(Duration::from_secs(10), Duration::from_millis(10), |s| {
        s.converged(&engines)
    })?;
    // Let heartbeats settle, at a seed-dependent phase.
    sim.run_for(settle + Duration::from_millis((seed % 10) * 97));
    let router = *sim.routers(&engines).first()?;
    let phone = sim.phone_of(router);
    if silent {
        sim.kill(phone);
    } else {
        sim.leave(phone);
    }
    let rest: Vec<EngineId> = engines.iter().copied().filter(|&e| e != router).collect();
    let gone = sim.fingerprint(phone);
    sim.run_until_true(Duration::from_secs(30), Duration::from_millis(5), |s| {
        s.converged(&rest) && rest.iter().all(|&e| !s.engine(e).knows(&gone))
    })
}
