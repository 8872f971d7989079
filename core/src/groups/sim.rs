//! A deterministic simulator of one group: many engines, a virtual network with latency and
//! loss, member churn, and router failover modelled on the namespace engine (when the router
//! dies, members notice after a detection delay and one online member — drawn from the
//! seed — takes the router slot; the rest link to it). Same seed, same run.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::GroupId;
use super::engine::{Engine, EngineConfig, GroupAction, GroupEvent, GroupInput, Refusal};
use super::history::MemHistory;
use super::log::{Log, LogOp};
use super::message::{Body, SignedMessage};
use super::wire::GroupFrame;
use crate::identity::{Fingerprint, Identity};

/// Network and failure model.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// One-way latency range, ms.
    pub latency_ms: (u64, u64),
    /// Probability a frame is lost.
    pub loss: f64,
    /// Time for members to notice a dead router and elect another.
    pub failover: Duration,
    /// Each node's bounded inbound queue and processing time (as the live driver's), or
    /// `None`: frames are handled the moment they arrive.
    pub inbox: Option<Inbox>,
}

/// A node's inbound frame queue: frames wait while the node is busy and are dropped when
/// `capacity` already wait.
#[derive(Debug, Clone)]
pub struct Inbox {
    /// Most frames waiting.
    pub capacity: usize,
    /// Time to handle one message in a frame (a frame without messages counts one).
    pub per_msg: Duration,
    /// Time to send one frame.
    pub per_send: Duration,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            latency_ms: (5, 40),
            loss: 0.0,
            failover: Duration::from_millis(2500),
            inbox: None,
        }
    }
}

/// One simulated phone.
pub struct Node {
    /// Its identity.
    pub identity: Arc<Identity>,
    /// Its engine (rebuilt from its log and history on restart).
    pub engine: Engine<MemHistory>,
    /// Whether it runs.
    pub online: bool,
    /// Refusals it reported.
    pub refusals: Vec<(Fingerprint, Refusal)>,
    /// Messages it was told about (each should come once).
    pub heard: Vec<String>,
}

#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct InFlight {
    at: Instant,
    n: u64,
    from: usize,
    to: usize,
    /// A frame, or `None`: the sender closes the link (after what it sent before).
    bytes: Option<Vec<u8>>,
    /// In the receiver's inbox (handled at `at`), not on the wire.
    queued: bool,
}

/// The simulated group.
pub struct Sim {
    /// Nodes by index; node 0 created the group.
    pub nodes: Vec<Node>,
    cfg: SimConfig,
    ecfg: EngineConfig,
    rng: SmallRng,
    /// Virtual now.
    pub now: Instant,
    start: Instant,
    queue: BinaryHeap<Reverse<InFlight>>,
    n: u64,
    /// Links (member, router).
    links: BTreeSet<(usize, usize)>,
    /// The router's index.
    pub router: Option<usize>,
    elect_at: Option<Instant>,
    /// Nodes some member refused as router; never elected again.
    pub banned: BTreeSet<usize>,
    /// The next election's winner, if set (to test refusal of a bad router).
    pub forced: Option<usize>,
    by_fp: BTreeMap<Fingerprint, usize>,
    /// Every message sent, by ID.
    pub sent: BTreeSet<String>,
    /// Frames delivered.
    pub delivered: u64,
    /// Frames dropped because the receiver's inbox was full.
    pub overflowed: u64,
    /// Per node: busy until, frames waiting in its inbox.
    busy: Vec<(Instant, usize)>,
}

impl Sim {
    /// A group of `members` nodes, all invited by node 0 before the run.
    pub fn new(members: usize, seed: u64, cfg: SimConfig, ecfg: EngineConfig) -> Self {
        let mut rng = SmallRng::seed_from_u64(seed);
        let ids: Vec<Arc<Identity>> = (0..members)
            .map(|_| Arc::new(Identity::from_secret(&rng.random(), "peerns2-sim")))
            .collect();
        let mut log = Log::create_with_id(GroupId(rng.random()), &ids[0], "sim", 1);
        for id in &ids[1..] {
            let e = log.sign_next(&ids[0], LogOp::Invite(id.fingerprint()), 2);
            log.append(e).expect("invite applies");
        }
        let now = Instant::now();
        let nodes = ids
            .iter()
            .map(|id| Node {
                identity: id.clone(),
                engine: Engine::new(ecfg.clone(), id.clone(), log.clone(), MemHistory::default()),
                online: true,
                refusals: vec![],
                heard: vec![],
            })
            .collect();
        let by_fp = ids
            .iter()
            .enumerate()
            .map(|(i, id)| (id.fingerprint(), i))
            .collect();
        let mut sim = Self {
            nodes,
            cfg,
            ecfg,
            rng,
            now,
            start: now,
            queue: BinaryHeap::new(),
            n: 0,
            links: BTreeSet::new(),
            router: None,
            elect_at: Some(now),
            banned: BTreeSet::new(),
            forced: None,
            by_fp,
            sent: BTreeSet::new(),
            delivered: 0,
            overflowed: 0,
            busy: vec![(now, 0); members],
        };
        sim.step_until(now);
        sim
    }

    fn ms(&self) -> u64 {
        1_700_000_000_000 + (self.now - self.start).as_millis() as u64
    }

    /// Node `i` sends a text; `false` if it could not (offline, not a member, outbox full).
    pub fn send(&mut self, i: usize, text: &str) -> bool {
        if !self.nodes[i].online {
            return false;
        }
        let (ms, now) = (self.ms(), self.now);
        match self.nodes[i]
            .engine
            .send_message(Body::Text(text.into()), ms, now)
        {
            Ok(m) => {
                self.sent.insert(m.id());
                self.pump(i);
                true
            }
            Err(_) => false,
        }
    }

    /// Node `i` proposes a membership change.
    pub fn propose(&mut self, i: usize, op: LogOp) {
        let ms = self.ms();
        self.nodes[i]
            .engine
            .propose(op, ms)
            .expect("proposal applies");
        self.pump(i);
    }

    /// Node `i` crashes: its links die, its state is rebuilt from what it stored.
    pub fn kill(&mut self, i: usize) {
        if !self.nodes[i].online {
            return;
        }
        self.nodes[i].online = false;
        let dead: Vec<(usize, usize)> = self
            .links
            .iter()
            .filter(|(m, r)| *m == i || *r == i)
            .copied()
            .collect();
        for (m, r) in dead {
            self.unlink(m, r);
        }
        if self.router == Some(i) {
            self.router = None;
            self.elect_at = Some(self.now + self.cfg.failover);
        }
        let node = &mut self.nodes[i];
        let log = node.engine.log().clone();
        let history = node.engine.history().clone();
        node.engine = Engine::new(self.ecfg.clone(), node.identity.clone(), log, history);
    }

    /// Node `i` comes back and links to the router, if there is one.
    pub fn revive(&mut self, i: usize) {
        if self.nodes[i].online {
            return;
        }
        self.nodes[i].online = true;
        if let Some(r) = self.router {
            self.link(i, r);
        } else if self.elect_at.is_none() {
            self.elect_at = Some(self.now);
        }
    }

    /// Sets the loss rate.
    pub fn set_loss(&mut self, loss: f64) {
        self.cfg.loss = loss;
    }

    fn link(&mut self, m: usize, r: usize) {
        if m == r || !self.links.insert((m, r)) {
            return;
        }
        let (fm, fr) = (
            self.nodes[m].identity.fingerprint(),
            self.nodes[r].identity.fingerprint(),
        );
        let now = self.now;
        self.nodes[r]
            .engine
            .handle(GroupInput::PeerUp { peer: fm }, now);
        self.nodes[m]
            .engine
            .handle(GroupInput::RouterUp { router: fr }, now);
        self.pump(r);
        self.pump(m);
    }

    fn unlink(&mut self, m: usize, r: usize) {
        if !self.links.remove(&(m, r)) {
            return;
        }
        let fm = self.nodes[m].identity.fingerprint();
        let now = self.now;
        if self.nodes[r].online {
            self.nodes[r]
                .engine
                .handle(GroupInput::PeerDown { peer: fm }, now);
        }
        if self.nodes[m].online {
            self.nodes[m].engine.handle(GroupInput::RouterDown, now);
        }
    }

    fn elect(&mut self) {
        self.elect_at = None;
        let candidates: Vec<usize> = (0..self.nodes.len())
            .filter(|i| {
                let n = &self.nodes[*i];
                n.online
                    && !n.engine.departed()
                    && n.engine.log().state().is_member(&n.identity.fingerprint())
            })
            .collect();
        let eligible: Vec<usize> = candidates
            .iter()
            .filter(|i| !self.banned.contains(i))
            .copied()
            .collect();
        if eligible.is_empty() {
            return;
        }
        let r = match self.forced.take() {
            Some(f) if candidates.contains(&f) => f,
            _ => eligible[self.rng.random_range(0..eligible.len())],
        };
        self.router = Some(r);
        let now = self.now;
        self.nodes[r].engine.handle(GroupInput::BecameRouter, now);
        self.pump(r);
        for m in candidates {
            self.link(m, r);
        }
    }

    /// Performs node `i`'s actions.
    fn pump(&mut self, i: usize) {
        let actions = self.nodes[i].engine.drain_actions();
        if let Some(inbox) = &self.cfg.inbox {
            let sends = actions
                .iter()
                .filter(|a| matches!(a, GroupAction::Send { .. }))
                .count();
            let busy = &mut self.busy[i].0;
            *busy = (*busy).max(self.now) + inbox.per_send * u32::try_from(sends).unwrap_or(0);
        }
        for a in actions {
            match a {
                GroupAction::Send { peer, frame } => {
                    let Some(&to) = self.by_fp.get(&peer) else {
                        continue;
                    };
                    if !(self.links.contains(&(i, to)) || self.links.contains(&(to, i))) {
                        continue;
                    }
                    if self.rng.random_bool(self.cfg.loss) {
                        continue;
                    }
                    let delay = self
                        .rng
                        .random_range(self.cfg.latency_ms.0..=self.cfg.latency_ms.1);
                    self.n += 1;
                    self.queue.push(Reverse(InFlight {
                        at: self.now + Duration::from_millis(delay),
                        n: self.n,
                        from: i,
                        to,
                        bytes: Some(frame.encode()),
                        queued: false,
                    }));
                }
                GroupAction::Drop { peer, .. } => {
                    if let Some(&to) = self.by_fp.get(&peer) {
                        self.n += 1;
                        self.queue.push(Reverse(InFlight {
                            at: self.now + Duration::from_millis(self.cfg.latency_ms.1 + 1),
                            n: self.n,
                            from: i,
                            to,
                            bytes: None,
                            queued: false,
                        }));
                    }
                }
                GroupAction::Event(GroupEvent::RouterRefused { router }) => {
                    let r = self.by_fp[&router];
                    self.banned.insert(r);
                    if self.router == Some(r) {
                        self.router = None;
                        let now = self.now;
                        self.nodes[r].engine.handle(GroupInput::StoppedRouting, now);
                        let links: Vec<(usize, usize)> =
                            self.links.iter().filter(|l| l.1 == r).copied().collect();
                        for (m, r) in links {
                            self.unlink(m, r);
                        }
                        self.elect_at = Some(self.now + self.cfg.failover);
                    }
                }
                GroupAction::Event(GroupEvent::Refused { peer, reason }) => {
                    self.nodes[i].refusals.push((peer, reason));
                }
                GroupAction::Event(GroupEvent::Message(m)) => self.nodes[i].heard.push(m.id()),
                GroupAction::Event(_) => {}
            }
        }
    }

    /// Runs until virtual time `until`.
    pub fn step_until(&mut self, until: Instant) {
        loop {
            let timer = (0..self.nodes.len())
                .filter(|i| self.nodes[*i].online)
                .filter_map(|i| self.nodes[i].engine.poll_timeout().map(|t| (t, i)))
                .min();
            let frame = self.queue.peek().map(|Reverse(f)| f.at);
            let next = [timer.map(|t| t.0), frame, self.elect_at]
                .into_iter()
                .flatten()
                .min();
            let Some(t) = next.filter(|t| *t <= until) else {
                self.now = until;
                return;
            };
            self.now = self.now.max(t);
            if self.elect_at.is_some_and(|e| e <= t) {
                self.elect();
            } else if frame == Some(t) {
                let Reverse(f) = self.queue.pop().expect("peeked");
                let linked =
                    self.links.contains(&(f.from, f.to)) || self.links.contains(&(f.to, f.from));
                let Some(bytes) = f.bytes else {
                    self.unlink(f.from, f.to);
                    self.unlink(f.to, f.from);
                    continue;
                };
                if f.queued {
                    self.busy[f.to].1 -= 1;
                }
                if linked && self.nodes[f.to].online {
                    let frame = GroupFrame::decode(&bytes).expect("frames decode");
                    if !f.queued && self.enqueue(f.from, f.to, &frame, bytes) {
                        continue;
                    }
                    self.delivered += 1;
                    let peer = self.nodes[f.from].identity.fingerprint();
                    let now = self.now;
                    self.nodes[f.to].engine.handle(
                        GroupInput::Frame {
                            peer,
                            frame: Box::new(frame),
                        },
                        now,
                    );
                    self.pump(f.to);
                }
            } else if let Some((_, i)) = timer {
                let now = self.now;
                self.nodes[i].engine.handle_timeout(now);
                self.pump(i);
            }
        }
    }

    /// With an inbox model, a frame off the wire waits in the receiver's inbox (or is
    /// dropped when it is full); `true` if it is not to be handled now.
    fn enqueue(&mut self, from: usize, to: usize, frame: &GroupFrame, bytes: Vec<u8>) -> bool {
        let Some(inbox) = &self.cfg.inbox else {
            return false;
        };
        let (busy, waiting) = &mut self.busy[to];
        if *waiting >= inbox.capacity {
            self.overflowed += 1;
            return true;
        }
        let msgs = match frame {
            GroupFrame::Page { msgs, .. } => msgs.len().max(1),
            _ => 1,
        };
        *busy = (*busy).max(self.now) + inbox.per_msg * u32::try_from(msgs).unwrap_or(1);
        *waiting += 1;
        self.n += 1;
        self.queue.push(Reverse(InFlight {
            at: *busy,
            n: self.n,
            from,
            to,
            bytes: Some(bytes),
            queued: true,
        }));
        true
    }

    /// Runs for `d`.
    pub fn run(&mut self, d: Duration) {
        let until = self.now + d;
        self.step_until(until);
    }

    /// A node's history in display order, as message IDs.
    pub fn history_of(&self, i: usize) -> Vec<String> {
        self.nodes[i]
            .engine
            .history()
            .ordered()
            .iter()
            .map(SignedMessage::id)
            .collect()
    }

    /// A random number from the simulation's seed.
    pub fn rand(&mut self, below: usize) -> usize {
        self.rng.random_range(0..below)
    }
}
