//! Election and joining: claiming router levels, joining a router, failing over by rank when
//! it goes, and what the signaling server says about our claims.

use super::router::LOST_LEVEL_RETRY;
use super::*;

/// After a router refused our check-in (its clock is off, say), we bring no members to its
/// level for this long, doubling with each refusal in a row (at that level, each before a
/// window as long as the last backoff passed after it)...
const REFUSED_BACKOFF: Duration = Duration::from_secs(30);
/// ...up to this.
const REFUSED_BACKOFF_MAX: Duration = Duration::from_secs(10 * 60);

impl Namespace {
    pub(super) fn elect(&mut self, level: u8, now: Instant) {
        self.set_role(Role::Electing { level });
        self.deadline = Some(now + self.cfg.join_timeout);
        self.push(Action::Claim {
            id: self.router_id(level),
        });
    }

    pub(super) fn join(&mut self, level: u8, now: Instant) {
        self.set_role(Role::Joining { level, conn: None });
        self.deadline = Some(now + self.cfg.join_timeout);
        if self.disc_open {
            self.connect_router(level);
        }
    }

    pub(super) fn connect_router(&mut self, level: u8) {
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
    pub(super) fn escalate(&mut self, level: u8, now: Instant) {
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

    pub(super) fn abandon_join(&mut self, now: Instant) {
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

    pub(super) fn claim_slot(&mut self, now: Instant) {
        if self.slot_until.is_none() {
            self.slot_until = Some(now + self.cfg.slot_wait);
            self.push(Action::Claim { id: self.slot_id() });
        }
    }

    pub(super) fn release_slot(&mut self) {
        self.slot_until = None;
        if self.slot_claimed {
            self.slot_claimed = false;
            self.push(Action::Release { id: self.slot_id() });
        }
    }

    pub(super) fn become_router(&mut self, level: u8, now: Instant) {
        self.deadline = None;
        self.dead_level = None;
        self.snapshot = None;
        // Above level 1 we keep waiting in the reverse slot: the level-1 router may reach us.
        if level == 1 {
            self.release_slot();
        }
        self.forget_refusal(level);
        self.set_role(Role::Router { level });
        // A member's beat may be a member's pace away; members time us by ours from now.
        self.next_beat = self.next_beat.min(self.clock.next_after(now, self.pace));
        self.monitor_next = 1;
        self.monitor_misses = 0;
        // Members check our record against their clocks: hand them a fresh one.
        self.sign_record(now);
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
        self.monitor_at = Some(self.next_monitor(now, level));
    }

    pub(super) fn become_member(&mut self, level: u8, conn: ConnId, now: Instant) {
        self.deadline = None;
        self.dead_level = None;
        self.forget_refusal(level);
        if level == 1 {
            self.release_slot();
        }
        self.router_heard = now;
        self.set_role(Role::Member { level, conn });
    }

    /// The router is gone: wait by rank, then contact the next router.
    pub(super) fn failover(&mut self, silent: bool, now: Instant) {
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

    pub(super) fn on_claimed(&mut self, id: &str, now: Instant) {
        if id == self.disc_id {
            self.disc_open = true;
            match self.role {
                Role::Joining { level, conn: None } => self.connect_router(level),
                // Parked while the server was out of reach: start over now.
                Role::Waiting { .. } if self.deadline.is_none() => self.deadline = Some(now),
                _ => {}
            }
            return;
        }
        if id == self.slot_id() {
            if self.slot_until.is_some() {
                self.slot_claimed = true;
                // The level-1 router probes the slot when knocked, not only periodically.
                self.push(Action::Knock {
                    from: id.to_owned(),
                    to: self.router_id(1),
                });
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
            // Our own level, claimed back after the registration was lost: keep it.
            Role::Router { level: own } if level == own => {
                self.lost_level = false;
                self.monitor_misses = 0;
            }
            // The monitor claimed a free lower level: move everyone down.
            Role::Router { level: old } if level < old => {
                self.push(Action::Release {
                    id: self.router_id(old),
                });
                self.broadcast(&Msg::Relevel { level }, now);
                self.role = Role::Router { level };
                self.event(NsEvent::Role(RoleKind::Router(level)));
                self.forget_refusal(level);
                self.monitor_next = 1;
                self.monitor_misses = 0;
                if level == 1 {
                    self.release_slot();
                }
                self.monitor_at = Some(self.next_monitor(now, level));
            }
            _ => self.push(Action::Release { id: id.to_owned() }),
        }
    }

    pub(super) fn on_claim_failed(&mut self, id: &str, taken: bool, now: Instant) {
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
            // A lower level is held while we route higher, or our own level was taken while
            // our registration was lost (a newcomer claimed it during a server restart): by a
            // live router (merge into it) or a stale registration (the monitor tries again).
            Role::Router { level: old }
                if taken
                    && level <= old
                    && self.disc_open
                    && self.probe.is_none()
                    && !self.refuses_us(level, now) =>
            {
                let conn = self.new_conn();
                self.probe = Some((conn, level));
                self.push(Action::Connect {
                    conn,
                    from: self.disc_id.clone(),
                    to: self.router_id(level),
                });
            }
            _ => {}
        }
    }

    pub(super) fn on_lost(&mut self, id: &str, now: Instant) {
        if id == self.disc_id {
            self.disc_open = false;
            self.push(Action::Claim { id: id.to_owned() });
        } else if let Role::Router { level } = self.role
            && self.level_of(id) == Some(level)
        {
            // Our router ID is gone from the server: reclaim it (members keep their links),
            // and let the monitor look again soon if someone else takes it meanwhile.
            self.lost_level = true;
            self.monitor_misses = 0;
            self.push(Action::Claim { id: id.to_owned() });
            let soon = now + LOST_LEVEL_RETRY;
            self.monitor_at = Some(self.monitor_at.map_or(soon, |t| t.min(soon)));
        }
    }

    pub(super) fn on_connect_failed(&mut self, conn: ConnId, unavailable: bool, now: Instant) {
        if self.probe.is_some_and(|(c, _)| c == conn) {
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

    /// The router at `level` refused our check-in: keep away from that level for a while,
    /// longer at each refusal in a row, so one router that refuses everyone (a clock off by
    /// more than the allowed skew) cannot keep the namespace migrating to it and back.
    pub(super) fn note_refusal(&mut self, level: u8, now: Instant) {
        let times = match self.refused {
            Some((l, until, n)) if l == level && now < until + refused_wait(n) => {
                n.saturating_add(1)
            }
            _ => 1,
        };
        self.refused = Some((level, now + refused_wait(times), times));
    }

    /// We route or are a member at `level`: a refusal at that level or above is past (we
    /// are where its router was, or below it). Not one below: after a refusal we go back up,
    /// and forgetting it there would undo the backoff.
    fn forget_refusal(&mut self, level: u8) {
        if self.refused.is_some_and(|(l, ..)| level <= l) {
            self.refused = None;
        }
    }

    fn refuses_us(&self, level: u8, now: Instant) -> bool {
        self.refused
            .is_some_and(|(l, until, _)| l == level && now < until)
    }

    pub(super) fn level_of(&self, id: &str) -> Option<u8> {
        let rest = id.strip_prefix(&self.prefix)?.strip_prefix('-')?;
        let level: u8 = rest.parse().ok()?;
        (1..=self.cfg.max_level).contains(&level).then_some(level)
    }
}

/// How long we keep away from a level after `times` refusals in a row.
fn refused_wait(times: u32) -> Duration {
    REFUSED_BACKOFF
        .saturating_mul(1 << times.saturating_sub(1).min(16))
        .min(REFUSED_BACKOFF_MAX)
}
