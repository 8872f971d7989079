//! The router side: admitting members by their signed check-ins, keeping the registry, pushing
//! batched deltas, rate-limiting members, and the level monitor / reverse-slot probe.

use super::*;

/// Least time between two probes of the reverse slot, however often someone knocks.
const KNOCK_GAP: Duration = Duration::from_secs(1);
/// While our level's registration is lost, the monitor looks this soon (it probes whoever
/// took the level, or claims it again), backing off while it stays taken.
pub(super) const LOST_LEVEL_RETRY: Duration = Duration::from_secs(2);
/// In the background the level monitor starts this many times slower and backs off this many
/// times further.
const BACKGROUND_SLOWER: u32 = 4;

impl Namespace {
    pub(super) fn on_incoming(&mut self, conn: ConnId, local: &str, remote: String, now: Instant) {
        let router_here =
            matches!(self.role, Role::Router { level } if self.router_id(level) == local);
        let at_slot = local == self.slot_id() && self.slot_claimed;
        // The router we checked in with over the slot calls us back at our discovery ID.
        let call_back = local == self.disc_id
            && matches!(self.role, Role::Joining { conn: Some(c), .. }
                if self.callback_from.as_ref().is_some_and(|(sc, r)| *sc == c && *r == remote));
        if (at_slot || call_back) && self.slot_conns.len() < 4 {
            // A router answered our reverse-connect slot: it will send ReverseWelcome.
            self.slot_conns.push(SlotConn {
                conn,
                remote,
                at_slot,
            });
            return;
        }
        if !router_here || self.members.len() >= self.cfg.registry_cap + 16 {
            self.push(Action::Close { conn });
            return;
        }
        let m = MemberConn::new(remote, false, &self.cfg, now);
        self.members.insert(conn, m);
    }

    pub(super) fn misbehaved(&mut self, conn: ConnId, reason: String, now: Instant) {
        if let Some(m) = self.members.get(&conn) {
            let remote = m.remote.clone();
            self.event(NsEvent::Misbehaved { remote, reason });
        }
        self.push(Action::Close { conn });
        self.drop_member(conn, now);
    }

    pub(super) fn on_member_data(&mut self, conn: ConnId, bytes: &[u8], now: Instant) {
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
        if bytes.len() > crate::discovery::presence::MAX_RECORD_BYTES + 8 {
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

    pub(super) fn refuse(&mut self, conn: ConnId, reason: &str, now: Instant) {
        let msg = Msg::Refused {
            reason: reason.into(),
        };
        self.send_msg(conn, &msg, now);
        self.misbehaved(conn, reason.into(), now);
    }

    pub(super) fn on_checkin(&mut self, conn: ConnId, rec: SignedPresence, now: Instant) {
        let Role::Router { level } = self.role else {
            self.push(Action::Close { conn });
            return;
        };
        let Some(m) = self.members.get(&conn) else {
            return;
        };
        let p = rec.presence();
        let fp = rec.fingerprint();
        // The record must name the discovery ID the connection comes from. Whoever holds the
        // reverse slot may claim any ID: it is called back there and checks in again.
        let via_slot = m.remote == self.slot_id();
        if p.disc_id != m.remote && !via_slot {
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
        if via_slot {
            return self.call_back(conn, &rec, now);
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

    /// The holder of the reverse slot checked in as `rec`: connect to the discovery ID the
    /// record names. Only the real holder of that ID can check in there, so a replayed record
    /// evicts nobody; the slot connection is left to its owner (or to the check-in timeout).
    fn call_back(&mut self, conn: ConnId, rec: &SignedPresence, now: Instant) {
        let disc = rec.presence().disc_id.clone();
        let fp = rec.fingerprint();
        if !self.is_disc_id(&disc) {
            return self.refuse(conn, "record names no discovery id of this namespace", now);
        }
        if self.members.values().any(|m| m.key == Some(fp)) {
            return self.refuse(conn, "already a member", now);
        }
        let Some(m) = self.members.get_mut(&conn) else {
            return;
        };
        if std::mem::replace(&mut m.called_back, true) || !self.disc_open {
            return;
        }
        self.monitor_found(now);
        let back = self.new_conn();
        let mc = MemberConn::new(disc.clone(), true, &self.cfg, now);
        self.members.insert(back, mc);
        self.push(Action::Connect {
            conn: back,
            from: self.disc_id.clone(),
            to: disc,
        });
    }

    pub(super) fn send_snapshot(&mut self, conn: ConnId, level: u8, now: Instant) {
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

    pub(super) fn schedule_flush(&mut self, now: Instant) {
        if self.flush_at.is_none() {
            self.flush_at = Some(now + self.cfg.batch_interval);
        }
    }

    pub(super) fn flush(&mut self, now: Instant) {
        self.flush_at = None;
        if self.pending_added.is_empty() && self.pending_removed.is_empty() {
            return;
        }
        let mut added = std::mem::take(&mut self.pending_added);
        // Members apply additions before removals: a discovery ID that left and checked in
        // again within one flush is present now, and its removal would erase it.
        let mut removed = std::mem::take(&mut self.pending_removed);
        let present: BTreeSet<&str> = self
            .peers
            .values()
            .map(|e| e.record.presence().disc_id.as_str())
            .collect();
        removed.retain(|d| !present.contains(d.as_str()));
        removed.sort();
        removed.dedup();
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
            .chunks(crate::discovery::msg::MAX_REMOVALS_PER_MESSAGE / 2)
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

    pub(super) fn broadcast(&mut self, msg: &Msg, now: Instant) {
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

    pub(super) fn drop_member(&mut self, conn: ConnId, now: Instant) {
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

    pub(super) fn drop_all_members(&mut self) {
        let conns: Vec<ConnId> = self.members.keys().copied().collect();
        for c in conns {
            self.members.remove(&c);
            self.push(Action::Close { conn: c });
        }
    }

    pub(super) fn monitor(&mut self, now: Instant) {
        let Role::Router { level } = self.role else {
            self.monitor_at = None;
            return;
        };
        // Every round looks for someone; one that finds someone changes our role or level
        // (or resets the count), so each round counts as a miss until then.
        self.monitor_misses = self.monitor_misses.saturating_add(1);
        // Our level's registration was lost and its holder did not answer our probe: claim
        // it again (it frees when a stale holder's registration expires).
        if self.lost_level && self.probe.is_none() {
            self.push(Action::Claim {
                id: self.router_id(level),
            });
        }
        self.monitor_at = Some(self.next_monitor(now, level));
        if level > 1 {
            if self.probe.is_none() {
                let lower = self.monitor_next.clamp(1, level - 1);
                self.monitor_next = if lower + 1 < level { lower + 1 } else { 1 };
                self.push(Action::Claim {
                    id: self.router_id(lower),
                });
            }
        } else {
            self.probe_slot(now);
        }
    }

    /// When a router of `level` looks next: above level 1 at the levels below it, at level 1
    /// into the reverse slot (less often in the background; while our level's registration
    /// is lost, soon). Each round that found nobody doubles the interval, up to
    /// [`NsConfig::monitor_backoff_max`]. On the wall-clock grid, with the heartbeats.
    pub(super) fn next_monitor(&self, now: Instant, level: u8) -> Instant {
        let slower = if self.active { 1 } else { BACKGROUND_SLOWER };
        let base = if level > 1 {
            self.cfg.monitor_interval * slower
        } else if self.lost_level {
            LOST_LEVEL_RETRY * slower
        } else if self.active {
            self.cfg.slot_probe
        } else {
            self.cfg.background_slot_probe
        };
        let max = (self.cfg.monitor_backoff_max * slower).max(base);
        let every = base
            .saturating_mul(1 << self.monitor_misses.min(16))
            .min(max);
        self.clock.next_after(now, every)
    }

    /// A monitor round found someone (a knock, a holder of the slot checking in): look at
    /// the starting pace again.
    pub(super) fn monitor_found(&mut self, now: Instant) {
        self.monitor_misses = 0;
        if let (Role::Router { level }, Some(at)) = (&self.role, self.monitor_at) {
            let level = *level;
            self.monitor_at = Some(at.min(self.next_monitor(now, level)));
        }
    }

    /// Someone waiting in the reverse slot knocked at our level-1 ID: probe the slot now
    /// (a knock from anyone else, or to another role, is ignored).
    pub(super) fn on_knock(&mut self, from: &str, now: Instant) {
        if from == self.slot_id() && self.role == (Role::Router { level: 1 }) {
            self.monitor_found(now);
            self.probe_slot(now);
        }
    }

    /// Connects to the reverse slot, unless a probe is on its way or one went out less than
    /// [`KNOCK_GAP`] ago (knocks cannot make us probe faster than that).
    fn probe_slot(&mut self, now: Instant) {
        let recent = self.slot_probed.is_some_and(|t| now < t + KNOCK_GAP);
        if self.disc_open && !recent && !self.members.values().any(|m| m.reverse) {
            self.slot_probed = Some(now);
            let conn = self.new_conn();
            let m = MemberConn::new(self.slot_id(), true, &self.cfg, now);
            self.members.insert(conn, m);
            self.push(Action::Connect {
                conn,
                from: self.disc_id.clone(),
                to: self.slot_id(),
            });
        }
    }
}
