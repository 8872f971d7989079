//! Frame handling on both sides, and keeping the membership log in sync.

use std::time::Instant;

use super::{Engine, GroupEvent, Refusal};
use crate::groups::history::{History, VersionVector};
use crate::groups::log::{Hash, Log, LogError, MAX_LOG_ENTRIES, SignedEntry};
use crate::groups::message::{MsgError, SignedMessage};
use crate::groups::wire::{GroupFrame, MAX_PAGE_ENTRIES, RefuseCode};
use crate::identity::Fingerprint;

impl<H: History> Engine<H> {
    /// A frame from our router (member side).
    pub(super) fn member_frame(&mut self, peer: Fingerprint, frame: GroupFrame, now: Instant) {
        let verified = self.router_link.as_ref().is_some_and(|l| l.verified);
        match frame {
            GroupFrame::Hello {
                log_len, head, vv, ..
            } => {
                // A router our log cannot place is only pulled from: it may be anyone who
                // knows the group ID, and our log names the group and every member.
                self.log_hello(peer, log_len, head, verified);
                if verified {
                    self.router_state(peer, &vv, now);
                }
            }
            GroupFrame::LogWant { from, .. } => {
                if verified {
                    self.send_log(peer, from as usize);
                } else {
                    self.refused(peer, Refusal::Unexpected("router not verified yet"));
                }
            }
            GroupFrame::LogEntries {
                from,
                entries,
                done,
                ..
            } => self.on_log_entries(peer, from as usize, entries, done),
            GroupFrame::Refuse { code, text, .. } => {
                tracing::debug!(group = %self.group(), ?code, %text, "router refused a frame");
                if code == RefuseCode::StaleHead {
                    let hello = self.router_hello();
                    self.send(peer, hello);
                } else if code == RefuseCode::Throttled {
                    // We outran the router's rate: what follows the refused message is sent
                    // again once tokens allow (the refused one needs a token too).
                    self.sent = self.acked;
                    self.pace = (0.0, Some(now));
                    self.push_outbox(now);
                } else if code == RefuseCode::Invalid {
                    // The router will not take one of ours (its history may lag ours): the
                    // outbox goes again at the pace of our state announcements, not every
                    // `resend_after`.
                    self.resend_at = Some(now + self.sync_every);
                }
            }
            _ if !verified => self.refused(peer, Refusal::Unexpected("router not verified yet")),
            GroupFrame::Msg(m) => match self.accept(m, peer) {
                Ok(true) => self.want_gap(peer),
                Ok(false) | Err(Refusal::Duplicate) => {}
                Err(Refusal::Message(MsgError::NotMember)) => self.log_behind(peer),
                Err(e) => self.router_misbehaved(peer, e),
            },
            GroupFrame::Ack { seq, .. } => self.on_ack(seq, now),
            GroupFrame::Want { vv, limit, .. } => self.answer_want(peer, &vv, limit),
            GroupFrame::Page { msgs, more, .. } => match self.accept_page(peer, msgs) {
                Err(Refusal::Message(MsgError::NotMember)) => self.log_behind(peer),
                Err(e) => self.router_misbehaved(peer, e),
                Ok(()) if more => self.want(peer),
                Ok(()) => {}
            },
            GroupFrame::Propose(_) => {
                self.refused(peer, Refusal::Unexpected("proposal to a member"))
            }
        }
    }

    /// The router relayed a message whose author our log does not hold yet: our log is
    /// behind (relays race the log sync of a new link). Nothing is stored; we ask for the
    /// entries we lack, and the next `Want` brings the message again.
    fn log_behind(&mut self, peer: Fingerprint) {
        let group = self.group();
        let from = u32::try_from(self.log.len()).unwrap_or(u32::MAX);
        self.send(peer, GroupFrame::LogWant { group, from });
    }

    /// The router sent something that does not verify: it tampered. Nothing was stored; we
    /// drop it (the election finds another).
    fn router_misbehaved(&mut self, peer: Fingerprint, e: Refusal) {
        self.refused(peer, e.clone());
        self.drop_peer(peer, &format!("router misbehaved: {e}"));
        self.router_link = None;
        self.sync_at = None;
        self.resend_at = None;
    }

    /// The verified router's state (its `Hello`): take its acknowledgement of our messages,
    /// pull what it has and we lack, push our outbox.
    fn router_state(&mut self, router: Fingerprint, vv: &VersionVector, now: Instant) {
        self.router_holds_ours = Some(vv.get(&self.me));
        self.on_ack(vv.get(&self.me).min(self.vv.get(&self.me)), now);
        if self.vv.lacks_from(vv) {
            self.want(router);
        }
        self.push_outbox(now);
        self.push_proposals();
    }

    /// The router stored our messages up to `seq`: the resend timer restarts and the send
    /// window opens.
    fn on_ack(&mut self, seq: u64, now: Instant) {
        if seq > self.acked && seq <= self.vv.get(&self.me) {
            self.acked = seq;
            self.event(GroupEvent::Acked { seq });
            self.resend_at =
                (self.acked < self.vv.get(&self.me)).then(|| now + self.cfg.resend_after);
            self.push_outbox(now);
        }
    }

    fn answer_want(&mut self, peer: Fingerprint, vv: &VersionVector, limit: u16) {
        let (msgs, more) = self.page_for(vv, limit);
        let group = self.group();
        self.send(peer, GroupFrame::Page { group, msgs, more });
    }

    /// Takes a page (the answer to our `Want`, if one is out); stops at the first message
    /// that does not verify.
    fn accept_page(&mut self, peer: Fingerprint, msgs: Vec<SignedMessage>) -> Result<(), Refusal> {
        self.wanting.remove(&peer);
        let mut gap = false;
        let checked = self.check_batch(&msgs);
        for (m, ok) in msgs.into_iter().zip(checked) {
            self.batch_checked = ok;
            let taken = self.accept(m, peer);
            self.batch_checked = false;
            match taken {
                Ok(g) => gap |= g,
                // Another author's message later in the page may be what lets it in.
                Err(Refusal::Duplicate | Refusal::Message(MsgError::ClockLeap)) => {}
                Err(e) => return Err(e),
            }
        }
        if gap {
            self.want_gap(peer);
        }
        Ok(())
    }

    /// A frame at the router.
    pub(super) fn router_frame(&mut self, peer: Fingerprint, frame: GroupFrame, now: Instant) {
        let Some(link) = self.peers.get(&peer) else {
            self.refused(peer, Refusal::Unexpected("frame without a link"));
            return;
        };
        if !link.admitted {
            self.probation_frame(peer, frame);
            return;
        }
        match frame {
            GroupFrame::Hello {
                log_len, head, vv, ..
            } => {
                self.log_hello(peer, log_len, head, true);
                if self.vv.lacks_from(&vv) {
                    self.want(peer);
                }
                self.ack(peer);
            }
            GroupFrame::Msg(m) => {
                if !self.take_token(peer, now) {
                    return;
                }
                if m.author_fp() != peer {
                    self.refused(peer, Refusal::NotAuthor);
                    self.refuse_frame(peer, RefuseCode::Invalid, "not your message");
                    return;
                }
                match self.accept(m, peer) {
                    Ok(true) => self.want_gap(peer),
                    Ok(false) | Err(Refusal::Duplicate) => {}
                    Err(e) => {
                        self.refuse_frame(peer, RefuseCode::Invalid, &e.to_string());
                        self.refused(peer, e);
                    }
                }
                self.ack(peer);
            }
            GroupFrame::Propose(entry) => {
                if self.take_token(peer, now) {
                    self.on_propose(peer, entry);
                }
            }
            GroupFrame::Want { vv, limit, .. } => self.answer_want(peer, &vv, limit),
            GroupFrame::Page { msgs, more, .. } => {
                if let Err(e) = self.accept_page(peer, msgs) {
                    self.refuse_frame(peer, RefuseCode::Invalid, &e.to_string());
                    self.refused(peer, e);
                } else if more {
                    self.want(peer);
                }
                self.ack(peer);
            }
            GroupFrame::LogWant { from, .. } => self.send_log(peer, from as usize),
            GroupFrame::LogEntries {
                from,
                entries,
                done,
                ..
            } => self.on_log_entries(peer, from as usize, entries, done),
            GroupFrame::Ack { .. } => self.refused(peer, Refusal::Unexpected("ack to the router")),
            GroupFrame::Refuse { code, text, .. } => {
                tracing::debug!(group = %self.group(), %peer, ?code, %text, "member refused a frame");
            }
        }
    }

    /// A frame from a link whose identity is not (yet) a member in our log: it may only show
    /// log entries that make it one.
    fn probation_frame(&mut self, peer: Fingerprint, frame: GroupFrame) {
        match frame {
            GroupFrame::Hello { log_len, .. } if log_len as usize > self.log.len() => {
                let group = self.group();
                let from = u32::try_from(self.log.len()).unwrap_or(u32::MAX);
                self.send(peer, GroupFrame::LogWant { group, from });
            }
            GroupFrame::LogEntries {
                from,
                entries,
                done,
                ..
            } if from as usize == self.log.len() => {
                let old = self.log.len();
                for e in entries {
                    if let Err(e) = self.log.append(e) {
                        self.refused(peer, Refusal::Log(e));
                        break;
                    }
                }
                if self.log.len() > old {
                    self.after_log_change(old, Some(peer));
                }
                let admitted = self.peers.get(&peer).is_some_and(|l| l.admitted);
                if !admitted && (done || self.log.len() == old) {
                    self.turn_away(peer);
                }
            }
            _ => self.turn_away(peer),
        }
    }

    fn turn_away(&mut self, peer: Fingerprint) {
        self.peers.remove(&peer);
        self.refuse_frame(peer, RefuseCode::NotMember, "not a member");
        self.drop_peer(peer, "not a member");
        self.refused(peer, Refusal::NotMember);
    }

    fn take_token(&mut self, peer: Fingerprint, now: Instant) -> bool {
        let rate = f64::from(self.cfg.member_rate);
        let Some(link) = self.peers.get_mut(&peer) else {
            return false;
        };
        let dt = now.saturating_duration_since(link.token_at).as_secs_f64();
        link.tokens = (link.tokens + dt * rate).min(rate * 2.0);
        link.token_at = now;
        if link.tokens >= 1.0 {
            link.tokens -= 1.0;
            true
        } else {
            self.refused(peer, Refusal::Throttled);
            self.refuse_frame(peer, RefuseCode::Throttled, "slow down");
            false
        }
    }

    fn ack(&mut self, peer: Fingerprint) {
        let seq = self.vv.get(&peer);
        if seq > 0 {
            let group = self.group();
            self.send(peer, GroupFrame::Ack { group, seq });
        }
    }

    fn on_propose(&mut self, peer: Fingerprint, entry: SignedEntry) {
        let e = &entry.entry;
        if e.index as usize != self.log.len() || e.prev != self.log.head() {
            self.refuse_frame(
                peer,
                RefuseCode::StaleHead,
                "sign again on the current head",
            );
            return;
        }
        let old = self.log.len();
        match self.log.append(entry) {
            Ok(()) => self.after_log_change(old, None),
            Err(err) => {
                self.refuse_frame(peer, RefuseCode::Invalid, &err.to_string());
                self.refused(peer, Refusal::Log(err));
            }
        }
    }

    /// Compares logs on a `Hello` and starts whatever transfer reconciles them; with `push`
    /// false only the pulls (`peer` is not to see our log).
    fn log_hello(&mut self, peer: Fingerprint, len: u32, head: Hash, push: bool) {
        let len = len as usize;
        let ours = self.log.len();
        let group = self.group();
        if len == ours && head == self.log.head() {
            return;
        }
        if len > 0 && len <= ours && self.log.hash_at(len - 1) == Some(head) {
            if push {
                self.send_log(peer, len);
            }
        } else if len > ours {
            let from = u32::try_from(ours).unwrap_or(u32::MAX);
            self.send(peer, GroupFrame::LogWant { group, from });
        } else if len < ours || self.log.head() < head {
            // A fork our log wins: send all of it.
            if push {
                self.send_log(peer, 0);
            }
        } else {
            self.send(peer, GroupFrame::LogWant { group, from: 0 });
        }
    }

    /// Sends our entries from `from` on, in pages.
    pub(super) fn send_log(&mut self, peer: Fingerprint, from: usize) {
        let group = self.group();
        let entries = self.log.entries().get(from..).unwrap_or_default().to_vec();
        if entries.is_empty() {
            let from = u32::try_from(from).unwrap_or(u32::MAX);
            self.send(
                peer,
                GroupFrame::LogEntries {
                    group,
                    from,
                    entries: vec![],
                    done: true,
                },
            );
            return;
        }
        let pages = entries.len().div_ceil(MAX_PAGE_ENTRIES);
        for (i, page) in entries.chunks(MAX_PAGE_ENTRIES).enumerate() {
            let at = u32::try_from(from + i * MAX_PAGE_ENTRIES).unwrap_or(u32::MAX);
            self.send(
                peer,
                GroupFrame::LogEntries {
                    group,
                    from: at,
                    entries: page.to_vec(),
                    done: i + 1 == pages,
                },
            );
        }
    }

    fn on_log_entries(
        &mut self,
        peer: Fingerprint,
        from: usize,
        entries: Vec<SignedEntry>,
        done: bool,
    ) {
        if self.log.is_open() {
            // An open room's log is fixed by its ID: nothing can extend or replace it.
            self.refused(peer, Refusal::Unexpected("log entries for an open room"));
            return;
        }
        let continues = self
            .candidate
            .as_ref()
            .is_some_and(|(p, c)| *p == peer && c.len() == from && from > 0);
        if from == 0 || continues {
            // A whole log (after a fork), possibly over several pages.
            let (_, c) = self.candidate.get_or_insert((peer, vec![]));
            if from == 0 {
                c.clear();
            }
            c.extend(entries);
            if c.len() > MAX_LOG_ENTRIES {
                self.candidate = None;
                self.refused(peer, Refusal::Log(LogError::Full));
            } else if done && let Some((_, c)) = self.candidate.take() {
                self.consider_log(peer, &c);
            }
            return;
        }
        let old = self.log.len();
        for (i, e) in entries.into_iter().enumerate() {
            let idx = from + i;
            if idx < self.log.len() {
                if self.log.hash_at(idx) != Some(e.hash()) {
                    let group = self.group();
                    self.send(peer, GroupFrame::LogWant { group, from: 0 });
                    break;
                }
                continue;
            }
            match self.log.append(e) {
                Ok(()) => {}
                Err(LogError::NotOnHead { .. }) => {
                    // At our next index but naming another head: a fork, fetch the whole
                    // log; beyond it: a gap, fetch from our end.
                    let group = self.group();
                    let from = if idx == self.log.len() {
                        0
                    } else {
                        u32::try_from(self.log.len()).unwrap_or(u32::MAX)
                    };
                    self.send(peer, GroupFrame::LogWant { group, from });
                    break;
                }
                Err(err) => {
                    if self.router {
                        self.refused(peer, Refusal::Log(err));
                    } else {
                        self.router_misbehaved(peer, Refusal::Log(err));
                    }
                    break;
                }
            }
        }
        if self.log.len() > old {
            self.after_log_change(old, Some(peer));
        }
    }

    /// A whole log from `peer`: adopted if it verifies and beats ours (longer, then lower
    /// head); our own entries it lacks are proposed again.
    fn consider_log(&mut self, peer: Fingerprint, entries: &[SignedEntry]) {
        let new = match Log::from_entries(entries) {
            // A fork shares our `Create` entry: the ID alone is no secret, anyone could sign
            // a longer log under it.
            Ok(l) if l.group() == self.group() && l.hash_at(0) == self.log.hash_at(0) => l,
            Ok(l) if l.group() == self.group() => {
                return self.refused(peer, Refusal::Log(LogError::BadCreate));
            }
            Ok(_) => return self.refused(peer, Refusal::Log(LogError::WrongGroup)),
            Err(e) => return self.refused(peer, Refusal::Log(e)),
        };
        if !new.beats(&self.log) {
            return;
        }
        let common = (0..self.log.len().min(new.len()))
            .find(|i| self.log.hash_at(*i) != new.hash_at(*i))
            .unwrap_or(self.log.len().min(new.len()));
        let lost: Vec<SignedEntry> = self.log.entries()[common..]
            .iter()
            .filter(|e| {
                e.signer_fp() == self.me && new.entries().iter().all(|n| n.entry.op != e.entry.op)
            })
            .cloned()
            .collect();
        self.log = new;
        self.proposals.extend(lost);
        self.after_log_change(common, Some(peer));
    }

    /// Appends entries we accepted as router (our own or a member's proposal).
    pub(super) fn append_local(&mut self, entries: Vec<SignedEntry>) {
        let old = self.log.len();
        for e in entries {
            if let Err(err) = self.log.append(e.clone()) {
                self.event(GroupEvent::ProposalDropped(e.entry.op));
                tracing::debug!(%err, "own entry did not apply");
            }
        }
        if self.log.len() > old {
            self.after_log_change(old, None);
        }
    }

    /// Signs a pending proposal again on the current head (or drops it if it no longer
    /// applies, or is already in the log).
    pub(super) fn repropose(&mut self, p: SignedEntry) {
        let i = p.entry.index as usize;
        if self.log.hash_at(i) == Some(p.hash()) {
            return;
        }
        let entry = if i == self.log.len() && p.entry.prev == self.log.head() {
            p
        } else {
            self.log
                .sign_next(&self.identity, p.entry.op.clone(), p.entry.time_ms)
        };
        let mut trial = self.log.clone();
        if trial.append(entry.clone()).is_err() {
            self.event(GroupEvent::ProposalDropped(entry.entry.op));
            return;
        }
        if self.router {
            self.append_local(vec![entry]);
        } else {
            if let Some(router) = self.router_peer() {
                self.send(router, GroupFrame::Propose(entry.clone()));
            }
            self.proposals.push(entry);
        }
    }

    /// After the log grew (from index `from`) or was replaced: purge what former members may
    /// no longer have posted, re-check every link, propagate, re-sign our proposals.
    fn after_log_change(&mut self, from: usize, source: Option<Fingerprint>) {
        self.event(GroupEvent::LogUpdated { from });
        let state = self.log.state().clone();
        let authors: Vec<(Fingerprint, u64)> = self.vv.0.iter().map(|(a, s)| (*a, *s)).collect();
        for (author, seq) in authors {
            if state.may_author(&author, seq) {
                continue;
            }
            let cutoff = state.gone.get(&author).copied().unwrap_or(0).min(seq);
            self.history.purge_above(&author, cutoff);
            self.vv.set(author, cutoff);
            let lamport = match cutoff {
                0 => 0,
                c => self
                    .history
                    .range(&author, c - 1, 1)
                    .first()
                    .map_or(0, |m| m.msg.lamport),
            };
            self.lamports.insert(author, lamport);
            self.event(GroupEvent::Purged { author, cutoff });
        }
        self.pending.retain(|(a, s), _| state.may_author(a, *s));
        if state.gone.contains_key(&self.me) {
            self.departed = true;
            let peers: Vec<Fingerprint> = self
                .peers
                .keys()
                .copied()
                .chain(self.router_link.as_ref().map(|l| l.fp))
                .collect();
            for p in peers {
                if self.router {
                    self.send_log(p, from);
                }
                self.drop_peer(p, "we left the group");
            }
            self.peers.clear();
            self.router_link = None;
            self.event(GroupEvent::Departed);
            return;
        }
        if self.router {
            let links: Vec<(Fingerprint, bool)> =
                self.peers.iter().map(|(p, l)| (*p, l.admitted)).collect();
            for (p, admitted) in links {
                if !state.is_member(&p) {
                    if admitted {
                        self.send_log(p, from);
                        self.turn_away(p);
                    }
                    continue;
                }
                if !admitted {
                    if let Some(l) = self.peers.get_mut(&p) {
                        l.admitted = true;
                    }
                    let hello = self.hello();
                    self.send(p, hello);
                } else if Some(p) != source {
                    self.send_log(p, from);
                }
            }
        } else if let Some(link) = self.router_link.clone() {
            if state.gone.contains_key(&link.fp) {
                self.drop_peer(link.fp, "the router is no longer a member");
                self.router_link = None;
                self.event(GroupEvent::RouterRefused { router: link.fp });
            } else if !link.verified && state.is_member(&link.fp) {
                if let Some(l) = self.router_link.as_mut() {
                    l.verified = true;
                }
                let hello = self.hello();
                self.send(link.fp, hello);
                self.want(link.fp);
            }
        }
        let proposals = std::mem::take(&mut self.proposals);
        for p in proposals {
            self.repropose(p);
        }
    }
}
