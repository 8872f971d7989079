//! Time: heartbeats, eviction of silent members, the router deadline, record expiry and every
//! other timer, run from [`Namespace::handle_timeout`].

use super::*;

impl Namespace {
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
                Role::Electing { .. } | Role::Joining { .. } | Role::Waiting { .. }
                    if !self.disc_open =>
                {
                    // None of our registrations is open: the server is out of reach, and no
                    // claim or join can be answered. Park (no timer: an offline phone
                    // sleeps) and start over when our discovery ID opens again.
                    if let Role::Joining {
                        conn: Some(conn), ..
                    } = self.role
                    {
                        self.push(Action::Close { conn });
                    }
                    self.set_role(Role::Waiting {
                        level: 1,
                        claim: true,
                    });
                }
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

    pub(super) fn beat(&mut self, now: Instant) {
        // On the grid: every namespace of the node (and the keepalives of its connections,
        // in the background) beats in the same wake-up.
        self.next_beat = self.clock.next_after(now, self.pace);
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
        // A new router: forget old members that did not check in again (only routers keep
        // such entries, see `set_role`).
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
