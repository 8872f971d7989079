//! The member side: checking in with the router, taking its snapshot and deltas (each record
//! verified), following its level changes, and adopting a router that reached us through the
//! reverse-connect slot.

use super::*;

impl Namespace {
    pub(super) fn on_connected(&mut self, conn: ConnId, now: Instant) {
        if let Some((_, target)) = self.probe.filter(|(c, _)| *c == conn) {
            // A live router holds that level: bring our members there and join it ourselves.
            self.probe = None;
            if let Role::Router { level } = self.role {
                self.broadcast(&Msg::Migrate { level: target }, now);
                self.drop_all_members();
                if !std::mem::take(&mut self.lost_level) {
                    self.push(Action::Release {
                        id: self.router_id(level),
                    });
                }
                self.set_role(Role::Joining {
                    level: target,
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

    /// Checks in with a record signed now: a router refuses records older than
    /// `checkin_max_age`, and a re-join may come any number of minutes after the last refresh.
    pub(super) fn check_in(&mut self, conn: ConnId, now: Instant) {
        self.router_heard = now;
        self.router_pace = self.cfg.heartbeat;
        self.snapshot = Some(vec![]);
        self.sign_record(now);
        if let Some(rec) = self.my_record.clone() {
            self.send_msg(conn, &Msg::CheckIn(Box::new(rec)), now);
        }
        if self.pace != self.cfg.heartbeat {
            let m = self.pace_msg();
            self.send_msg(conn, &m, now);
        }
    }

    pub(super) fn on_closed(&mut self, conn: ConnId, now: Instant) {
        self.slot_conns.retain(|s| s.conn != conn);
        if self.probe.is_some_and(|(c, _)| c == conn) {
            self.probe = None;
            return;
        }
        if self.members.contains_key(&conn) {
            self.drop_member(conn, now);
            return;
        }
        match self.role {
            Role::Member { conn: c, .. } if c == conn => self.failover(false, now),
            // Closed before a welcome: a restart or a network blip as often as a refusal, so
            // only an explicit `Refused` keeps us away from that level.
            Role::Joining { conn: Some(c), .. } if c == conn => self.abandon_join(now),
            _ => {}
        }
    }

    pub(super) fn on_data(&mut self, conn: ConnId, bytes: &[u8], now: Instant) {
        self.stats.msgs_in += 1;
        self.stats.bytes_in += bytes.len() as u64;
        if self.members.contains_key(&conn) {
            self.on_member_data(conn, bytes, now);
            return;
        }
        if self.slot_conns.iter().any(|s| s.conn == conn) {
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
            Err(e) => return self.router_misbehaved(conn, e.to_string(), now),
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
                        if !self.accept_record(seq, rec, now) {
                            return self.router_misbehaved(conn, "too many records".into(), now);
                        }
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
                match self.role {
                    Role::Member { conn, .. } => {
                        self.role = Role::Member { level, conn };
                        self.event(NsEvent::Role(RoleKind::Member(level)));
                    }
                    Role::Joining { conn, .. } => self.role = Role::Joining { level, conn },
                    _ => {}
                }
            }
            Msg::Migrate { level } if (1..=self.cfg.max_level).contains(&level) => {
                self.push(Action::Close { conn });
                self.snapshot = None;
                self.join(level, now);
            }
            Msg::Refused { reason } => {
                tracing::debug!(ns = %self.prefix, %reason, "router refused our check-in");
                if let Role::Joining { level, .. } | Role::Member { level, .. } = self.role {
                    self.note_refusal(level, now);
                }
                self.push(Action::Close { conn });
                self.abandon_join(now);
            }
            _ => {}
        }
    }

    pub(super) fn on_welcome(
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
        if snapshot.len() > self.view_cap() {
            return self.router_misbehaved(conn, "snapshot too large".into(), now);
        }
        if !last {
            return;
        }
        let records = self.snapshot.take().unwrap_or_default();
        // The router's own word on its level: it may have moved down (`Relevel`) between our
        // connection and its snapshot.
        let level = match self.role {
            Role::Joining { level: l, .. } if !(1..=self.cfg.max_level).contains(&level) => l,
            _ => level,
        };
        // Replace the view with the router's snapshot (verified record by record); leavers
        // go first, so the view never holds more than the snapshot.
        let seen: BTreeSet<Fingerprint> = records.iter().map(|(_, r)| r.fingerprint()).collect();
        let gone: Vec<Fingerprint> = self
            .peers
            .keys()
            .filter(|fp| **fp != self.me && !seen.contains(fp))
            .copied()
            .collect();
        for fp in gone {
            self.peers.remove(&fp);
            self.event(NsEvent::PeerGone(fp));
        }
        for (seq, rec) in records {
            self.accept_record(seq, rec, now);
        }
        self.become_member(level, conn, now);
    }

    /// An untrusted router broke the rules: drop it and look for another.
    fn router_misbehaved(&mut self, conn: ConnId, reason: String, now: Instant) {
        self.event(NsEvent::Misbehaved {
            remote: "router".into(),
            reason,
        });
        self.push(Action::Close { conn });
        match self.role {
            Role::Member { .. } => self.failover(true, now),
            _ => self.abandon_join(now),
        }
    }

    /// Most peers a member keeps: what a router may hold, with itself and us.
    fn view_cap(&self) -> usize {
        self.cfg.registry_cap + 2
    }

    /// Takes a record pushed by the router if it verifies for us too. `false`: a new peer
    /// that would grow the view past [`Namespace::view_cap`] (a router lying about its size).
    pub(super) fn accept_record(&mut self, seq: u64, rec: SignedPresence, now: Instant) -> bool {
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
            return true;
        }
        let fp = rec.fingerprint();
        if fp == self.me {
            if let Some(e) = self.peers.get_mut(&fp) {
                e.seq = seq;
            } else if let Some(mine) = self.my_record.clone() {
                self.peers.insert(fp, Entry::new(seq, mine));
            }
            return true;
        }
        let full = self.peers.len() >= self.view_cap();
        match self.peers.get_mut(&fp) {
            Some(e) if e.record.presence().issued_ms > rec.presence().issued_ms => {}
            Some(e) if e.record == rec => e.seq = seq,
            None if full => return false,
            _ => {
                let peer = info(fp, &rec);
                self.peers.insert(fp, Entry::new(seq, rec));
                self.event(NsEvent::PeerSeen(peer));
            }
        }
        true
    }

    pub(super) fn remove_by_disc(&mut self, disc_id: &str) {
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

    /// We sit in the reverse slot and a router connected to us.
    /// A router reached us at the reverse slot, or called us back at our discovery ID after we
    /// checked in over the slot: take the connection as our router link and check in on it.
    pub(super) fn on_reverse_data(&mut self, conn: ConnId, bytes: &[u8], now: Instant) {
        let Some(i) = self.slot_conns.iter().position(|s| s.conn == conn) else {
            return;
        };
        let slot = self.slot_conns.remove(i);
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
        // Over the slot, the router cannot tell whose record we send: it calls us back.
        self.callback_from = slot.at_slot.then_some((conn, slot.remote));
        self.deadline = Some(now + self.cfg.join_timeout);
        self.check_in(conn, now);
    }
}
