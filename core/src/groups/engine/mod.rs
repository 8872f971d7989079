//! The group engine (sans-IO), one per group and node. A member keeps one link to the
//! router; the router keeps one per admitted member. Both sides run the same anti-entropy on
//! every link: `Hello` (log length and head, version vector) both ways, then each side pulls
//! what the other holds and it lacks (`LogWant`/`LogEntries`, `Want`/`Page`). Live traffic is
//! `Msg` (member → router → every other member) and `Ack`. Feed [`GroupInput`]s with
//! [`Engine::handle`], call [`Engine::handle_timeout`] at [`Engine::poll_timeout`], and perform
//! [`Engine::drain_actions`].
//!
//! Who routes is decided outside (the discovery namespace engine on
//! [`namespace_prefix`](super::namespace_prefix)); this engine only refuses a router that is
//! not a current member, and as router admits only current members.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::GroupId;
use super::history::{History, VersionVector};
use super::log::{Log, LogOp, SignedEntry};
use super::message::{Body, GroupMessage, MAX_LAMPORT, SignedMessage};
use super::wire::{GroupFrame, MAX_PAGE_BYTES, MAX_PAGE_MSGS, RefuseCode};
use crate::crypto::SigKey;
use crate::identity::{Fingerprint, Identity};
use crate::wake_grid::WallClock;

#[cfg(test)]
mod batch_tests;
mod io;
mod links;
#[cfg(test)]
mod pace_tests;
mod sync;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod trust_tests;

pub use io::{EngineConfig, EngineStats, GroupAction, GroupEvent, GroupInput, Refusal};

/// Most own messages the outbox waits to have tokens for before it sends again.
const PACE_BATCH: u64 = 32;
/// Most a message's Lamport clock may leap above the highest we hold when its author hands
/// it to us as router (honest clocks move one past what their author saw); no leap may land
/// within this of [`MAX_LAMPORT`] either, so a member cannot use up everyone's clock.
const MAX_LAMPORT_LEAP: u64 = 1 << 32;

/// Why a local send or proposal failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// We are not a member.
    #[error("not a member of this group")]
    NotMember,
    /// Too many messages wait for the router.
    #[error("outbox full")]
    OutboxFull,
    /// Too large, or the op does not apply.
    #[error("invalid: {0}")]
    Invalid(String),
}

/// The link to our router (member side).
#[derive(Debug, Clone)]
struct RouterLink {
    fp: Fingerprint,
    /// Its identity is a member in our log (until then only log sync runs on the link).
    verified: bool,
}

/// A link at the router.
#[derive(Debug, Clone)]
struct PeerLink {
    admitted: bool,
    tokens: f64,
    token_at: Instant,
}

/// Most authors' keys kept decoded (an open room's strangers beyond it start the cache over).
const MAX_KEYS: usize = 1024;

/// Decoded Ed25519 keys of message authors.
#[derive(Default)]
struct KeyCache(std::collections::HashMap<[u8; 32], SigKey>);

impl KeyCache {
    /// The decoded key, or a refusal if the bytes are not a key.
    fn get(&mut self, bytes: &[u8; 32]) -> Result<SigKey, Refusal> {
        if let Some(k) = self.0.get(bytes) {
            return Ok(*k);
        }
        let k = SigKey::from_bytes(bytes)
            .ok_or(Refusal::Message(super::message::MsgError::BadSignature))?;
        if self.0.len() >= MAX_KEYS {
            self.0.clear();
        }
        self.0.insert(*bytes, k);
        Ok(k)
    }
}

/// One group's engine.
pub struct Engine<H: History> {
    cfg: EngineConfig,
    identity: Arc<Identity>,
    me: Fingerprint,
    log: Log,
    history: H,
    vv: VersionVector,
    lamports: BTreeMap<Fingerprint, u64>,
    max_lamport: u64,
    /// Authors' keys as decoded once (decompressing a key is a fifth of a signature check).
    keys: KeyCache,
    /// The message being taken had its signature checked in a batch that held (set around
    /// each message of a batch, taken by `accept`).
    batch_checked: bool,
    /// Out-of-order messages waiting for the gap before them.
    pending: BTreeMap<(Fingerprint, u64), SignedMessage>,
    /// Own messages up to this seq are stored at the router.
    acked: u64,
    /// Own messages up to this seq went to the current router (at least once).
    sent: u64,
    /// Member side: send tokens (paced to `member_rate`) and when they were counted (`None`:
    /// never, the bucket is full).
    pace: (f64, Option<Instant>),
    /// When the outbox may send again (tokens refilled).
    pace_at: Option<Instant>,
    /// Peers we sent a `Want` that no `Page` answered yet: a gap does not ask again.
    wanting: BTreeSet<Fingerprint>,
    router: bool,
    router_link: Option<RouterLink>,
    /// Member side: our own seq the current router holds, from its last `Hello`.
    router_holds_ours: Option<u64>,
    peers: BTreeMap<Fingerprint, PeerLink>,
    /// Own entries signed on some head, waiting to be appended.
    proposals: Vec<SignedEntry>,
    /// `proposals` as last reported ([`GroupEvent::Proposals`]), for the node to store.
    proposals_told: Vec<SignedEntry>,
    /// A whole log being received from a peer after a fork: (peer, entries so far).
    candidate: Option<(Fingerprint, Vec<SignedEntry>)>,
    /// When each former member that linked to us was last sent our log.
    told_gone: BTreeMap<Fingerprint, Instant>,
    sync_at: Option<Instant>,
    /// How often a member re-announces its state now (foreground or background).
    sync_every: Duration,
    /// Puts `sync_at` on the wall-clock grid, if set.
    clock: Option<WallClock>,
    resend_at: Option<Instant>,
    departed: bool,
    actions: Vec<GroupAction>,
    stats: EngineStats,
}

impl<H: History> Engine<H> {
    /// An engine for `log`'s group with the messages already in `history`.
    pub fn new(cfg: EngineConfig, identity: Arc<Identity>, log: Log, history: H) -> Self {
        let pace = (f64::from(cfg.member_rate), None);
        let sync_every = cfg.sync_interval;
        let me = identity.fingerprint();
        let mut vv = VersionVector::default();
        let mut lamports = BTreeMap::new();
        let mut max_lamport = 0;
        for (author, seq, lamport) in history.heads() {
            vv.set(author, seq);
            lamports.insert(author, lamport);
            max_lamport = max_lamport.max(lamport);
        }
        Self {
            cfg,
            identity,
            me,
            log,
            history,
            vv,
            lamports,
            max_lamport,
            keys: KeyCache::default(),
            batch_checked: false,
            pending: BTreeMap::new(),
            acked: 0,
            sent: 0,
            pace,
            pace_at: None,
            wanting: BTreeSet::new(),
            router: false,
            router_link: None,
            router_holds_ours: None,
            peers: BTreeMap::new(),
            proposals: vec![],
            proposals_told: vec![],
            candidate: None,
            told_gone: BTreeMap::new(),
            sync_at: None,
            sync_every,
            clock: None,
            resend_at: None,
            departed: false,
            actions: vec![],
            stats: EngineStats::default(),
        }
    }

    /// Puts the periodic state announcements on the wall-clock grid ([`crate::wake_grid`]), so
    /// they leave in the same wake-up as the node's other periodic work. Without a clock they
    /// run every interval from whenever they started.
    pub fn with_wall_clock(mut self, clock: WallClock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// When the next state announcement is due, when one went out at `now`.
    fn next_sync(&self, now: Instant) -> Instant {
        match self.clock {
            Some(clock) => clock.next_after(now, self.sync_every),
            None => now + self.sync_every,
        }
    }

    /// Restores the router's last acknowledgement of our messages (from the store).
    pub fn set_acked(&mut self, seq: u64) {
        self.acked = seq.min(self.vv.get(&self.me));
    }

    /// The group.
    pub fn group(&self) -> GroupId {
        self.log.group()
    }

    /// The verified membership log.
    pub fn log(&self) -> &Log {
        &self.log
    }

    /// The stored history.
    pub fn history(&self) -> &H {
        &self.history
    }

    /// What we hold.
    pub fn version_vector(&self) -> &VersionVector {
        &self.vv
    }

    /// Highest own seq the router acknowledged.
    pub fn acked(&self) -> u64 {
        self.acked
    }

    /// Whether we route the group now.
    pub fn is_router(&self) -> bool {
        self.router
    }

    /// The router we are linked to, once its membership is verified.
    pub fn router_peer(&self) -> Option<Fingerprint> {
        self.router_link
            .as_ref()
            .filter(|l| l.verified)
            .map(|l| l.fp)
    }

    /// Members linked to us while we route.
    pub fn linked_members(&self) -> Vec<Fingerprint> {
        self.peers
            .iter()
            .filter(|(_, l)| l.admitted)
            .map(|(fp, _)| *fp)
            .collect()
    }

    /// Whether we know our own latest seq in the group: we route, or our router greeted us
    /// and we hold every message of ours it holds. A node that keeps no history (an open
    /// room after a restart) must not send before: its next seq would repeat one the group
    /// already has.
    pub fn knows_own_seq(&self) -> bool {
        self.router
            || self
                .router_holds_ours
                .is_some_and(|theirs| self.vv.get(&self.me) >= theirs)
    }

    /// Counters.
    pub fn stats(&self) -> EngineStats {
        self.stats
    }

    /// Whether we left or were removed.
    pub fn departed(&self) -> bool {
        self.departed
    }

    /// Takes every pending action.
    pub fn drain_actions(&mut self) -> Vec<GroupAction> {
        if self.proposals != self.proposals_told {
            self.proposals_told = self.proposals.clone();
            self.event(GroupEvent::Proposals(self.proposals.clone()));
        }
        std::mem::take(&mut self.actions)
    }

    /// Our proposals that were not appended when the node last stopped (as last reported by
    /// [`GroupEvent::Proposals`]): sent to the router once one is linked, signed again on the
    /// current head if the log moved, dropped if they no longer apply or are appended already.
    pub fn restore_proposals(&mut self, stored: Vec<SignedEntry>) {
        self.proposals_told = stored.clone();
        for p in stored.into_iter().take(self.cfg.max_proposals) {
            self.repropose(p);
        }
    }

    /// When [`Engine::handle_timeout`] must run next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [self.sync_at, self.resend_at, self.pace_at]
            .into_iter()
            .flatten()
            .min()
    }

    fn send(&mut self, peer: Fingerprint, frame: GroupFrame) {
        self.stats.frames_out += 1;
        self.actions.push(GroupAction::Send { peer, frame });
    }

    fn event(&mut self, e: GroupEvent) {
        self.actions.push(GroupAction::Event(e));
    }

    fn drop_peer(&mut self, peer: Fingerprint, reason: &str) {
        self.actions.push(GroupAction::Drop {
            peer,
            reason: reason.to_owned(),
        });
    }

    fn refused(&mut self, peer: Fingerprint, reason: Refusal) {
        tracing::debug!(group = %self.group(), %peer, %reason, "group input refused");
        self.stats.refused += 1;
        self.event(GroupEvent::Refused { peer, reason });
    }

    fn refuse_frame(&mut self, peer: Fingerprint, code: RefuseCode, text: &str) {
        let group = self.group();
        self.send(
            peer,
            GroupFrame::Refuse {
                group,
                code,
                text: text.to_owned(),
            },
        );
    }

    fn hello(&self) -> GroupFrame {
        GroupFrame::Hello {
            group: self.group(),
            log_len: u32::try_from(self.log.len()).unwrap_or(u32::MAX),
            head: self.log.head(),
            vv: self.vv.clone(),
            routing: self.router,
        }
    }

    /// Sends `peer` a `Want` for what we lack.
    fn want(&mut self, peer: Fingerprint) {
        self.wanting.insert(peer);
        let want = GroupFrame::Want {
            group: self.group(),
            vv: self.vv.clone(),
            limit: self.cfg.page_limit,
        };
        self.send(peer, want);
    }

    /// A gap showed: asks `peer` for what we lack unless a `Want` to it is still unanswered
    /// (each out-of-order message would otherwise ask for the same page again).
    fn want_gap(&mut self, peer: Fingerprint) {
        if !self.wanting.contains(&peer) {
            self.want(peer);
        }
    }

    /// Sends a text or file message; returns it once stored (it stays in the outbox until
    /// the router acknowledges it).
    pub fn send_message(
        &mut self,
        body: Body,
        now_ms: u64,
        now: Instant,
    ) -> Result<SignedMessage, SendError> {
        if self.departed || !self.log.state().is_member(&self.me) {
            return Err(SendError::NotMember);
        }
        let seq = self.vv.get(&self.me) + 1;
        if seq - 1 - self.acked >= self.cfg.max_outbox {
            return Err(SendError::OutboxFull);
        }
        if self.max_lamport >= MAX_LAMPORT {
            // A message no member would take: it would block the outbox forever.
            return Err(SendError::Invalid("the group's clock is used up".into()));
        }
        let msg = SignedMessage::sign(
            &self.identity,
            GroupMessage {
                group: self.group(),
                author: [0; 32],
                seq,
                lamport: self.max_lamport + 1,
                sent_ms: now_ms,
                body,
            },
        );
        // Our own signature: only the fields need checking.
        msg.check_fields(&self.group(), self.log.state())
            .map_err(|e| SendError::Invalid(e.to_string()))?;
        self.store(&msg, None);
        if self.router {
            self.acked = seq;
        } else {
            self.push_outbox(now);
        }
        Ok(msg)
    }

    /// Proposes a membership change signed by us (an admin; `Leave` by anyone). The router
    /// appends it on its head; if the head moved, we sign it again on the new one.
    pub fn propose(&mut self, op: LogOp, now_ms: u64) -> Result<SignedEntry, SendError> {
        if self.proposals.len() >= self.cfg.max_proposals {
            return Err(SendError::Invalid("too many pending proposals".into()));
        }
        let entry = self.log.sign_next(&self.identity, op, now_ms);
        let mut trial = self.log.clone();
        trial
            .append(entry.clone())
            .map_err(|e| SendError::Invalid(e.to_string()))?;
        if self.router {
            self.append_local(vec![entry.clone()]);
        } else {
            self.proposals.push(entry.clone());
            if let Some(router) = self.router_peer() {
                self.send(router, GroupFrame::Propose(entry.clone()));
            }
        }
        Ok(entry)
    }

    /// Leaves the group: proposes our `Leave` (cutoff: every message we stored).
    pub fn leave(&mut self, now_ms: u64) -> Result<SignedEntry, SendError> {
        let cutoff = self.vv.get(&self.me);
        self.propose(LogOp::Leave { cutoff }, now_ms)
    }

    /// Stores a verified message that is its author's next, then any held ones it unblocks;
    /// the router relays each to every admitted member but `from` and the author.
    fn store(&mut self, msg: &SignedMessage, from: Option<Fingerprint>) {
        let mut next = Some(msg.clone());
        while let Some(m) = next.take() {
            let author = m.author_fp();
            let seq = m.msg.seq;
            self.history.insert(&m);
            self.vv.set(author, seq);
            self.lamports.insert(author, m.msg.lamport);
            self.max_lamport = self.max_lamport.max(m.msg.lamport);
            self.stats.stored += 1;
            if self.router {
                let targets: Vec<Fingerprint> = self
                    .peers
                    .iter()
                    .filter(|(fp, l)| l.admitted && Some(**fp) != from && **fp != author)
                    .map(|(fp, _)| *fp)
                    .collect();
                for t in targets {
                    self.send(t, GroupFrame::Msg(m.clone()));
                }
            }
            self.event(GroupEvent::Message(m));
            next = self.pending.remove(&(author, seq + 1));
            if let Some(n) = &next
                && n.msg.lamport <= self.lamports.get(&author).copied().unwrap_or(0)
            {
                next = None;
            }
        }
    }

    /// Takes a message from `peer`: verifies it, dedups, stores it if it is its author's
    /// next, holds it (bounded) if earlier ones are missing. `Ok(true)` if a gap was found.
    /// A duplicate is ignored before its signature is checked (nothing of it is kept), so
    /// the copies a burst's repair brings cost little.
    fn accept(&mut self, msg: SignedMessage, peer: Fingerprint) -> Result<bool, Refusal> {
        let batch_checked = std::mem::take(&mut self.batch_checked);
        let author = msg.author_fp();
        let have = self.vv.get(&author);
        let seq = msg.msg.seq;
        if seq <= have || self.pending.contains_key(&(author, seq)) {
            self.stats.duplicates += 1;
            return if seq <= have {
                Err(Refusal::Duplicate)
            } else {
                Ok(true)
            };
        }
        if !self.log.state().may_author(&author, seq) {
            // Checked before the key is decoded and kept.
            return Err(Refusal::Message(super::message::MsgError::NotMember));
        }
        if self.router && author == peer && self.leaps(msg.msg.lamport) {
            return Err(Refusal::Message(super::message::MsgError::ClockLeap));
        }
        let key = self.keys.get(&msg.msg.author)?;
        msg.check_fields(&self.group(), self.log.state())?;
        if !batch_checked {
            msg.check_signature(&key)?;
        }
        if seq > have + 1 {
            if self.pending.len() < self.cfg.max_pending {
                self.pending.insert((author, seq), msg);
            }
            return Ok(true);
        }
        if msg.msg.lamport <= self.lamports.get(&author).copied().unwrap_or(0) {
            return Err(Refusal::Message(super::message::MsgError::BadClock));
        }
        self.store(&msg, Some(peer));
        Ok(false)
    }

    /// Whether a Lamport clock handed to us by its author leaps too far: more than
    /// [`MAX_LAMPORT_LEAP`] above the highest we hold, or into the last such span below
    /// [`MAX_LAMPORT`]. One past the highest is always fine. Checked only at the router an
    /// author hands its message to: one passed on by another peer was taken by a router
    /// before, and a member still backfilling holds less than the group.
    fn leaps(&self, lamport: u64) -> bool {
        lamport > self.max_lamport + 1
            && (lamport - self.max_lamport > MAX_LAMPORT_LEAP
                || lamport > MAX_LAMPORT - MAX_LAMPORT_LEAP)
    }

    /// Checks at once the signatures of the messages of `msgs` that [`accept`](Self::accept)
    /// would check (new, from members, keys that decode): for each message, whether its
    /// signature is known good. When the batch does not hold, none is, and each is checked
    /// alone as it is taken.
    fn check_batch(&mut self, msgs: &[SignedMessage]) -> Vec<bool> {
        let mut ok = vec![false; msgs.len()];
        let mut todo: Vec<(usize, SigKey)> = vec![];
        for (i, m) in msgs.iter().enumerate() {
            let author = m.author_fp();
            let seq = m.msg.seq;
            if seq <= self.vv.get(&author)
                || self.pending.contains_key(&(author, seq))
                || !self.log.state().may_author(&author, seq)
            {
                continue;
            }
            if let Ok(key) = self.keys.get(&m.msg.author) {
                todo.push((i, key));
            }
        }
        if todo.len() < 2 {
            return ok;
        }
        let pairs: Vec<(&SignedMessage, &SigKey)> =
            todo.iter().map(|(i, k)| (&msgs[*i], k)).collect();
        if SignedMessage::signatures_hold(&pairs) {
            for (i, _) in &todo {
                ok[*i] = true;
            }
            self.stats.batched += todo.len() as u64;
        } else {
            self.stats.batch_failures += 1;
        }
        ok
    }

    /// The page of messages beyond `theirs` (each author's in seq order), bounded by count,
    /// bytes and `limit`; `true` if more remain.
    fn page_for(&self, theirs: &VersionVector, limit: u16) -> (Vec<SignedMessage>, bool) {
        let limit = usize::from(limit).clamp(1, MAX_PAGE_MSGS);
        let mut out: Vec<SignedMessage> = vec![];
        let mut bytes = 0;
        for (author, have) in &self.vv.0 {
            let from = theirs.get(author);
            if from >= *have {
                continue;
            }
            if out.len() >= limit {
                return (out, true);
            }
            for m in self.history.range(author, from, limit - out.len()) {
                let len = m.encoded_len();
                if bytes + len > MAX_PAGE_BYTES && !out.is_empty() {
                    return (out, true);
                }
                bytes += len;
                out.push(m);
            }
            if out
                .last()
                .is_some_and(|m| m.msg.seq < *have && m.author_fp() == *author)
            {
                return (out, true);
            }
        }
        (out, false)
    }

    /// Sends the router the outbox not sent yet: as many as the send window and the pace
    /// tokens allow; the rest when acknowledgements open the window or tokens refill.
    fn push_outbox(&mut self, now: Instant) {
        self.pace_at = None;
        let Some(router) = self.router_peer() else {
            return;
        };
        let head = self.vv.get(&self.me);
        if self.acked < head {
            self.resend_at.get_or_insert(now + self.cfg.resend_after);
        }
        let rate = f64::from(self.cfg.member_rate.max(1));
        let (tokens, at) = &mut self.pace;
        let dt = at.map_or(0.0, |at| now.saturating_duration_since(at).as_secs_f64());
        *tokens = (*tokens + dt * rate).min(rate);
        *at = Some(now);
        self.sent = self.sent.max(self.acked);
        let window = (self.acked + self.cfg.send_window).saturating_sub(self.sent);
        let n = (head - self.sent).min(window).min(*tokens as u64);
        *tokens -= n as f64;
        let tokens = *tokens;
        for m in self.history.range(
            &self.me,
            self.sent,
            usize::try_from(n).unwrap_or(usize::MAX),
        ) {
            self.send(router, GroupFrame::Msg(m));
        }
        self.sent += n;
        if self.sent < head && self.sent < self.acked + self.cfg.send_window {
            // Out of tokens: wake when a few are back (not for every single one).
            let want = (head - self.sent).min(PACE_BATCH) as f64;
            let wait = ((want - tokens) / rate).max(0.001);
            self.pace_at = Some(now + Duration::from_secs_f64(wait));
        }
    }

    /// The app moved to the foreground (`true`) or the background: a member re-announces its
    /// state every [`EngineConfig::sync_interval`] or [`EngineConfig::background_sync_interval`].
    pub fn set_active(&mut self, active: bool, now: Instant) {
        self.sync_every = if active {
            self.cfg.sync_interval
        } else {
            self.cfg.background_sync_interval
        };
        if let Some(t) = self.sync_at {
            self.sync_at = Some(t.min(self.next_sync(now)));
        }
    }

    /// Runs timers: a member re-announces its state and resends its outbox.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.sync_at.is_some_and(|t| t <= now) {
            self.sync_at = None;
            if let Some(link) = self.router_link.clone() {
                let hello = self.router_hello();
                self.send(link.fp, hello);
                if link.verified {
                    self.want(link.fp);
                    self.push_proposals();
                }
                self.sync_at = Some(self.next_sync(now));
            }
        }
        if self.resend_at.is_some_and(|t| t <= now) {
            // No acknowledgement for a while: what was sent is lost; send again from it.
            self.resend_at = None;
            self.sent = self.acked;
            self.push_outbox(now);
        } else if self.pace_at.is_some_and(|t| t <= now) {
            self.push_outbox(now);
        }
    }

    /// Feeds one input.
    pub fn handle(&mut self, input: GroupInput, now: Instant) {
        if self.departed {
            return;
        }
        match input {
            GroupInput::RouterUp { router } => self.on_router_up(router, now),
            GroupInput::RouterDown => {
                self.router_link = None;
                self.sync_at = None;
                self.resend_at = None;
                self.pace_at = None;
            }
            GroupInput::BecameRouter => self.on_became_router(),
            GroupInput::StoppedRouting => {
                if self.router {
                    self.router = false;
                    let peers: Vec<Fingerprint> = self.peers.keys().copied().collect();
                    for p in peers {
                        self.drop_peer(p, "stopped routing");
                    }
                    self.peers.clear();
                    self.event(GroupEvent::Role(false));
                }
            }
            GroupInput::PeerUp { peer } => self.on_peer_up(peer, now),
            GroupInput::PeerDown { peer } => {
                self.peers.remove(&peer);
                self.wanting.remove(&peer);
            }
            GroupInput::Frame { peer, frame } => self.on_frame(peer, *frame, now),
            GroupInput::Batch { peer, msgs } => {
                let checked = self.check_batch(&msgs);
                for (m, ok) in msgs.into_iter().zip(checked) {
                    self.batch_checked = ok;
                    self.on_frame(peer, GroupFrame::Msg(m), now);
                    self.batch_checked = false;
                }
            }
        }
    }

    /// A frame from `peer`, to the router or the member side.
    fn on_frame(&mut self, peer: Fingerprint, frame: GroupFrame, now: Instant) {
        if frame.group() != self.group() {
            self.refused(peer, Refusal::Unexpected("frame of another group"));
        } else if self.router {
            self.router_frame(peer, frame, now);
        } else if self.router_link.as_ref().is_some_and(|l| l.fp == peer) {
            self.member_frame(peer, frame, now);
        } else if matches!(frame, GroupFrame::Hello { routing: true, .. })
            && self.log.state().gone.contains_key(&peer)
        {
            // A former member routes (it was offline when it was removed and won the
            // election): it gets our log, learns it is out and leaves the election.
            if self.tell_gone(peer, now) {
                self.send_log(peer, 0);
            }
            self.drop_peer(peer, "a former member cannot route");
            self.event(GroupEvent::RouterRefused { router: peer });
        } else {
            self.refused(
                peer,
                Refusal::Unexpected("frame from a peer that is not our router"),
            );
        }
    }
}
