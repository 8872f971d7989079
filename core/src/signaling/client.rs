//! The sans-IO signaling state machine: every PeerJS registration of one node (persistent ID,
//! later discovery and router IDs) against one signaling server.
//!
//! Inputs are method calls carrying the current time; outputs are [`Output`]s drained with
//! [`Signaling::poll_output`] and a wake-up time from [`Signaling::poll_timeout`]. No sockets, no
//! clocks, no tasks: the tokio [`driver`](super::driver) does the I/O, and tests run on virtual time.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use rand::{SeedableRng, rngs::SmallRng};

use super::backoff::Debounce;
pub use super::config::{BadServerUrl, ServerUrl, SignalingConfig};
use super::limiter::RegistrationLimiter;
use super::protocol::{Message, MessageType, is_throttle_error};

mod events;
pub use events::*;

#[derive(Debug, Clone)]
enum Phase {
    /// Waiting for `not_before` (backoff) and then for the limiter.
    Pending { not_before: Instant },
    /// Dialing, or upgraded and waiting for OPEN (`reattach_at` is set once upgraded).
    Dialing {
        conn: ConnId,
        deadline: Instant,
        reattach_at: Option<Instant>,
    },
    /// Registered.
    Open {
        conn: ConnId,
        next_heartbeat: Instant,
    },
    /// Not trying. `permanent` refusals are not revived by a network change.
    Offline { permanent: bool },
}

#[derive(Debug, Clone)]
struct Registration {
    id: String,
    token: String,
    phase: Phase,
    /// Failed attempts since the last OPEN.
    failures: u32,
    claimed_once: bool,
    state: Option<SignalingState>,
}

/// All registrations of one node against one server.
#[derive(Debug)]
pub struct Signaling {
    config: SignalingConfig,
    regs: BTreeMap<RegId, Registration>,
    limiter: RegistrationLimiter,
    debounce: Debounce,
    pending_path: NetworkPath,
    /// The settled path the sockets were last (re)opened on.
    path: NetworkPath,
    next_conn: u64,
    rng: SmallRng,
    out: VecDeque<Output>,
    stats: Stats,
    /// The last connection to the server failed and no registration is open. Every
    /// registration would fail the same way, so only one (the probe, the earliest due; among
    /// equals the oldest registration, usually the persistent ID) tries, and the others wait for
    /// it: they dial once it opens and, when it fails, wait for its next retry. An offline phone
    /// then wakes once per backoff round, not once per registration.
    unreachable: bool,
    /// The app is in the background: heartbeats every [`SignalingConfig::background_heartbeat`].
    background: bool,
}

impl Signaling {
    /// A machine with no registrations.
    pub fn new(config: SignalingConfig) -> Self {
        Self {
            limiter: RegistrationLimiter::new(config.limiter),
            debounce: Debounce::new(config.debounce),
            rng: SmallRng::seed_from_u64(config.seed),
            config,
            regs: BTreeMap::new(),
            pending_path: NetworkPath::unknown(),
            path: NetworkPath::unknown(),
            next_conn: 0,
            out: VecDeque::new(),
            stats: Stats::default(),
            unreachable: false,
            background: false,
        }
    }

    /// The app moved to the foreground (`true`) or the background: heartbeats from the next
    /// one on come every [`SignalingConfig::heartbeat`] or
    /// [`SignalingConfig::background_heartbeat`].
    pub fn set_active(&mut self, active: bool) {
        self.background = !active;
    }

    /// The heartbeat period now.
    fn heartbeat(&self) -> Duration {
        if self.background {
            self.config.background_heartbeat
        } else {
            self.config.heartbeat
        }
    }

    /// The configuration.
    pub fn config(&self) -> &SignalingConfig {
        &self.config
    }

    /// Diagnostic counters.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// True while `conn` is the live socket of some registration (stale sockets must be closed).
    pub fn is_current(&self, conn: ConnId) -> bool {
        self.reg_of(conn).is_some()
    }

    /// Current UI state of a registration.
    pub fn state(&self, reg: RegId) -> Option<&SignalingState> {
        self.regs.get(&reg)?.state.as_ref()
    }

    /// Starts registering `id` with `token` (reuse the stored token to re-attach after a restart).
    pub fn register(
        &mut self,
        now: Instant,
        reg: RegId,
        id: &str,
        token: &str,
    ) -> Result<(), SignalingError> {
        if self.regs.contains_key(&reg) || self.regs.values().any(|r| r.id == id) {
            return Err(SignalingError::Duplicate(id.into()));
        }
        let phase = if self.path.online {
            Phase::Pending { not_before: now }
        } else {
            Phase::Offline { permanent: false }
        };
        self.regs.insert(
            reg,
            Registration {
                id: id.into(),
                token: token.into(),
                phase,
                failures: 0,
                claimed_once: false,
                state: None,
            },
        );
        if self.path.online {
            self.set_state(reg, SignalingState::Connecting);
        } else {
            self.set_state(reg, offline_no_network());
        }
        self.handle_timeout(now);
        Ok(())
    }

    /// Releases the ID: a graceful LEAVE so the server frees it at once, then close.
    pub fn unregister(&mut self, reg: RegId) -> Result<(), SignalingError> {
        let r = self
            .regs
            .remove(&reg)
            .ok_or(SignalingError::UnknownRegistration)?;
        match r.phase {
            Phase::Open { conn, .. } => {
                self.transmit(conn, &Message::new(MessageType::Leave));
                self.out.push_back(Output::Disconnect { conn });
            }
            Phase::Dialing { conn, .. } => self.out.push_back(Output::Disconnect { conn }),
            Phase::Pending { .. } | Phase::Offline { .. } => {}
        }
        Ok(())
    }

    /// Sends a frame on a registered socket (OFFER, ANSWER, CANDIDATE, LEAVE to a peer).
    pub fn send(&mut self, reg: RegId, msg: &Message) -> Result<(), SignalingError> {
        let r = self
            .regs
            .get(&reg)
            .ok_or(SignalingError::UnknownRegistration)?;
        match r.phase {
            Phase::Open { conn, .. } => {
                self.transmit(conn, msg);
                Ok(())
            }
            _ => Err(SignalingError::NotConnected),
        }
    }

    /// The platform says the network changed. Debounced: nothing happens until the network
    /// has been quiet for the debounce delay; then the sockets are reopened only if the usable
    /// path really changed (see [`NetworkPath`]).
    pub fn network_changed(&mut self, now: Instant, path: NetworkPath) {
        self.pending_path = path;
        self.debounce.trigger(now);
    }

    /// The WebSocket of `conn` could not be opened.
    pub fn handle_connect_failed(&mut self, now: Instant, conn: ConnId, failure: ConnectFailure) {
        let Some(reg) = self.reg_of(conn) else { return };
        match failure {
            ConnectFailure::Throttled => self.throttled(now, reg),
            ConnectFailure::Other(reason) => {
                tracing::debug!(?reg, %reason, "signaling connect failed");
                self.retry_later(now, reg);
                let open = self
                    .regs
                    .values()
                    .any(|r| matches!(r.phase, Phase::Open { .. }));
                if !open {
                    self.unreachable = true;
                    self.follow_probe(reg);
                }
            }
        }
    }

    /// The WebSocket of `conn` is open (HTTP upgrade done); the server's answer comes next.
    pub fn handle_connected(&mut self, now: Instant, conn: ConnId) {
        let Some(reg) = self.reg_of(conn) else { return };
        let grace = self.config.reattach_grace;
        if let Phase::Dialing { reattach_at, .. } = &mut self.regs.get_mut(&reg).unwrap().phase {
            *reattach_at = Some(now + grace);
        }
    }

    /// The WebSocket of `conn` closed (or errored) after it was opened.
    pub fn handle_closed(&mut self, now: Instant, conn: ConnId) {
        let Some(reg) = self.reg_of(conn) else { return };
        self.retry_later(now, reg);
    }

    /// A text frame arrived on `conn`.
    pub fn handle_text(&mut self, now: Instant, conn: ConnId, text: &str) {
        let Some(reg) = self.reg_of(conn) else { return };
        let msg = match Message::parse(text) {
            Ok(m) => m,
            Err(e) => {
                self.stats.malformed += 1;
                tracing::warn!(?reg, error = %e, "ignoring bad signaling frame");
                return;
            }
        };
        self.stats.frames_in += 1;
        let open = matches!(self.regs[&reg].phase, Phase::Open { .. });
        match msg.kind {
            MessageType::Open if !open => self.opened(now, reg, conn),
            MessageType::IdTaken => self.refused(reg, conn, ClaimResult::Taken, "ID is taken"),
            MessageType::InvalidKey => {
                let result = ClaimResult::Error("Invalid key provided".into());
                self.refused(reg, conn, result, "invalid API key")
            }
            MessageType::Error => self.server_error(now, reg, conn, msg.error_msg().unwrap_or("")),
            kind if kind.is_relayed() && open => self
                .out
                .push_back(Output::Event(SignalingEvent::Message { reg, msg })),
            _ => {
                self.stats.unexpected += 1;
                tracing::debug!(?reg, kind = ?msg.kind, "unexpected signaling frame");
            }
        }
    }

    /// Advances time: fires debounce, heartbeats, open timeouts and pending registrations.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.debounce.fire(now) {
            self.apply_network(now);
        }
        // Heartbeats are coalesced: when one registration's is due, every open one due within
        // half a period beats too, so after one round they share a single wake-up (a node in
        // stadium mode holds several registrations). Early by at most half a period, far
        // inside the server's timeout.
        let beat_by = self
            .regs
            .values()
            .any(|r| matches!(r.phase, Phase::Open { next_heartbeat, .. } if now >= next_heartbeat))
            .then(|| now + self.heartbeat() / 2);
        let regs: Vec<RegId> = self.regs.keys().copied().collect();
        for reg in regs {
            match self.regs[&reg].phase {
                Phase::Open {
                    conn,
                    next_heartbeat,
                } if beat_by.is_some_and(|by| next_heartbeat <= by) => {
                    self.transmit(conn, &Message::new(MessageType::Heartbeat));
                    let hb = self.next_heartbeat(now);
                    self.regs.get_mut(&reg).unwrap().phase = Phase::Open {
                        conn,
                        next_heartbeat: hb,
                    };
                }
                Phase::Dialing {
                    conn,
                    reattach_at: Some(t),
                    ..
                } if now >= t => {
                    tracing::debug!(?reg, "no refusal after the upgrade: re-attached");
                    self.opened(now, reg, conn);
                }
                Phase::Dialing { conn, deadline, .. } if now >= deadline => {
                    tracing::debug!(?reg, "signaling open timed out");
                    self.out.push_back(Output::Disconnect { conn });
                    self.retry_later(now, reg);
                }
                _ => {}
            }
        }
        self.dial_due(now);
    }

    /// When `handle_timeout` should next be called.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        let mut next = self.debounce.deadline();
        let mut earliest_pending: Option<Instant> = None;
        // While the probe is out, the registrations waiting for it have nothing to time.
        let waiting_for_probe = self.unreachable && self.probing();
        for r in self.regs.values() {
            let t = match r.phase {
                Phase::Pending { .. } if waiting_for_probe => continue,
                Phase::Pending { not_before } => {
                    earliest_pending =
                        Some(earliest_pending.map_or(not_before, |e| e.min(not_before)));
                    continue;
                }
                Phase::Dialing {
                    deadline,
                    reattach_at,
                    ..
                } => reattach_at.map_or(deadline, |r| r.min(deadline)),
                Phase::Open { next_heartbeat, .. } => next_heartbeat,
                Phase::Offline { .. } => continue,
            };
            next = Some(next.map_or(t, |n| n.min(t)));
        }
        if let Some(p) = earliest_pending {
            let t = self.limiter.check(p).map_or(p, |w| w.until().max(p));
            next = Some(next.map_or(t, |n| n.min(t)));
        }
        next
    }

    /// The next instruction or event, if any.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    fn reg_of(&self, conn: ConnId) -> Option<RegId> {
        self.regs.iter().find_map(|(id, r)| match r.phase {
            Phase::Dialing { conn: c, .. } | Phase::Open { conn: c, .. } if c == conn => Some(*id),
            _ => None,
        })
    }

    fn transmit(&mut self, conn: ConnId, msg: &Message) {
        self.stats.frames_out += 1;
        self.out.push_back(Output::Transmit {
            conn,
            text: msg.to_text(),
        });
    }

    fn set_state(&mut self, reg: RegId, state: SignalingState) {
        let r = self
            .regs
            .get_mut(&reg)
            .expect("state of a known registration");
        if r.state.as_ref() != Some(&state) {
            r.state = Some(state.clone());
            self.out
                .push_back(Output::Event(SignalingEvent::State { reg, state }));
        }
    }

    fn claim(&mut self, reg: RegId, result: ClaimResult) {
        let id = self.regs[&reg].id.clone();
        self.out
            .push_back(Output::Event(SignalingEvent::Claim { reg, id, result }));
    }

    /// When a registration that beats (or opened) at `now` beats next.
    fn next_heartbeat(&self, now: Instant) -> Instant {
        let period = self.heartbeat();
        match self.config.wall_clock {
            Some(clock) => clock.next_after(now, period),
            None => now + period,
        }
    }

    fn opened(&mut self, now: Instant, reg: RegId, conn: ConnId) {
        let next_heartbeat = self.next_heartbeat(now);
        let r = self.regs.get_mut(&reg).unwrap();
        r.phase = Phase::Open {
            conn,
            next_heartbeat,
        };
        r.failures = 0;
        let first = !std::mem::replace(&mut r.claimed_once, true);
        if std::mem::take(&mut self.unreachable) {
            // The server is back: whoever waited for the probe dials now (limiter-spaced).
            for r in self.regs.values_mut() {
                if let Phase::Pending { not_before } = &mut r.phase {
                    *not_before = (*not_before).min(now);
                }
            }
        }
        self.set_state(reg, SignalingState::Connected);
        if first {
            self.claim(reg, ClaimResult::Claimed);
        }
    }

    fn refused(&mut self, reg: RegId, conn: ConnId, result: ClaimResult, reason: &str) {
        self.out.push_back(Output::Disconnect { conn });
        self.regs.get_mut(&reg).unwrap().phase = Phase::Offline { permanent: true };
        self.set_state(
            reg,
            SignalingState::Offline {
                reason: reason.into(),
            },
        );
        self.claim(reg, result);
    }

    fn server_error(&mut self, now: Instant, reg: RegId, conn: ConnId, msg: &str) {
        let open = matches!(self.regs[&reg].phase, Phase::Open { .. });
        if is_throttle_error(msg) {
            if !open {
                self.out.push_back(Output::Disconnect { conn });
                self.throttled(now, reg);
            } else {
                tracing::warn!(?reg, %msg, "signaling server throttles this socket");
            }
        } else if open {
            tracing::warn!(?reg, %msg, "signaling server error");
        } else {
            let first = !self.regs[&reg].claimed_once;
            self.refused(reg, conn, ClaimResult::Error(msg.into()), msg);
            if !first {
                tracing::warn!(?reg, %msg, "server refused a re-registration");
            }
        }
    }

    fn throttled(&mut self, now: Instant, reg: RegId) {
        let until = self.limiter.throttled(now);
        tracing::warn!(
            ?reg,
            "signaling server throttled us; holding registrations back"
        );
        let r = self.regs.get_mut(&reg).unwrap();
        r.failures += 1;
        r.phase = Phase::Pending { not_before: until };
        self.set_state(reg, SignalingState::RateLimited { until });
    }

    fn retry_later(&mut self, now: Instant, reg: RegId) {
        let r = self.regs.get_mut(&reg).unwrap();
        if matches!(r.phase, Phase::Offline { .. }) {
            return;
        }
        let delay = self.config.backoff.delay(r.failures, &mut self.rng);
        r.failures += 1;
        let attempt = r.failures;
        r.phase = Phase::Pending {
            not_before: now + delay,
        };
        self.set_state(
            reg,
            SignalingState::Reconnecting {
                attempt,
                next_in: delay,
            },
        );
    }

    /// Whether a registration is dialling (while unreachable: the probe is out).
    fn probing(&self) -> bool {
        self.regs
            .values()
            .any(|r| matches!(r.phase, Phase::Dialing { .. }))
    }

    /// The probe `probe` failed: every other registration waiting to retry waits at least
    /// until the probe's next try.
    fn follow_probe(&mut self, probe: RegId) {
        let Some(Phase::Pending { not_before: next }) =
            self.regs.get(&probe).map(|r| r.phase.clone())
        else {
            return;
        };
        for (id, r) in self.regs.iter_mut() {
            if *id != probe
                && let Phase::Pending { not_before } = &mut r.phase
            {
                *not_before = (*not_before).max(next);
            }
        }
    }

    fn dial_due(&mut self, now: Instant) {
        let mut due: Vec<(Instant, RegId)> = self
            .regs
            .iter()
            .filter_map(|(id, r)| match r.phase {
                Phase::Pending { not_before } if not_before <= now => Some((not_before, *id)),
                _ => None,
            })
            .collect();
        if self.unreachable {
            // One registration probes the server; the others wait for it (see `unreachable`).
            if self.probing() {
                return;
            }
            due.truncate(1);
        }
        due.sort();
        for (_, reg) in due {
            match self.limiter.check(now) {
                None => self.dial(now, reg),
                Some(wait) => {
                    if wait.is_rate_limit() {
                        let until = wait.until();
                        for (_, r) in self.pending_regs() {
                            self.set_state(r, SignalingState::RateLimited { until });
                        }
                    }
                    break;
                }
            }
        }
    }

    fn pending_regs(&self) -> Vec<(Instant, RegId)> {
        self.regs
            .iter()
            .filter_map(|(id, r)| match r.phase {
                Phase::Pending { not_before } => Some((not_before, *id)),
                _ => None,
            })
            .collect()
    }

    fn dial(&mut self, now: Instant, reg: RegId) {
        self.limiter.record(now);
        self.stats.dials += 1;
        self.next_conn += 1;
        let conn = ConnId(self.next_conn);
        let r = self.regs.get_mut(&reg).unwrap();
        r.phase = Phase::Dialing {
            conn,
            deadline: now + self.config.open_timeout,
            reattach_at: None,
        };
        let url = self.config.server.socket_url(&r.id, &r.token);
        let after_limit = matches!(r.state, Some(SignalingState::RateLimited { .. }));
        let state = if r.claimed_once || r.failures > 0 {
            SignalingState::Reconnecting {
                attempt: r.failures.max(1),
                next_in: Duration::ZERO,
            }
        } else {
            SignalingState::Connecting
        };
        self.out.push_back(Output::Connect { reg, conn, url });
        if after_limit {
            self.set_state(reg, state);
        }
    }

    fn apply_network(&mut self, now: Instant) {
        let next = std::mem::replace(&mut self.pending_path, NetworkPath::unknown());
        let same_path = next.online && self.path.online && next.same_as(&self.path);
        self.path = next;
        if self.path.online && !same_path {
            // A fresh network: every registration tries it.
            self.unreachable = false;
        }
        let regs: Vec<RegId> = self.regs.keys().copied().collect();
        for reg in regs {
            let phase = self.regs[&reg].phase.clone();
            match phase {
                Phase::Offline { permanent: true } => continue,
                // The same usable path (e.g. iOS reporting an attribute change): sockets that are
                // up or being dialled stay; only those waiting for a retry go at once.
                Phase::Open { .. } | Phase::Dialing { .. } if same_path => continue,
                Phase::Dialing { conn, .. } | Phase::Open { conn, .. } => {
                    self.out.push_back(Output::Disconnect { conn });
                }
                _ => {}
            }
            let r = self.regs.get_mut(&reg).unwrap();
            if self.path.online {
                // A fresh network: retry at once (through the limiter), with a clean backoff.
                r.failures = 0;
                r.phase = Phase::Pending { not_before: now };
                let state = if r.claimed_once {
                    SignalingState::Reconnecting {
                        attempt: 1,
                        next_in: Duration::ZERO,
                    }
                } else {
                    SignalingState::Connecting
                };
                self.set_state(reg, state);
            } else {
                r.phase = Phase::Offline { permanent: false };
                self.set_state(reg, offline_no_network());
            }
        }
    }
}

fn offline_no_network() -> SignalingState {
    SignalingState::Offline {
        reason: "no network".into(),
    }
}

#[cfg(test)]
#[path = "client_tests.rs"]
mod tests;
