//! Links coming and going: our router (member side), the members' links (router side), and
//! whom we trust with what on them.

use std::time::{Duration, Instant};

use super::{Engine, GroupEvent, PeerLink, Refusal, RouterLink};
use crate::groups::history::{History, VersionVector};
use crate::groups::log::MAX_MEMBERS;
use crate::groups::wire::{GroupFrame, RefuseCode};
use crate::identity::Fingerprint;

/// A former member that links to us gets our log (it adopts it and departs) at most this
/// often: one that keeps sending frames does not get the whole log for each.
const TELL_GONE_EVERY: Duration = Duration::from_secs(30);

impl<H: History> Engine<H> {
    /// Whether we take `peer` as our router when it says it routes: a former member never,
    /// and one our log cannot place only while no router it can place is linked (anyone who
    /// knows the group ID may say it routes; we only pull the log from such a link).
    pub fn takes_router(&self, peer: &Fingerprint) -> bool {
        let state = self.log.state();
        !self.router
            && *peer != self.me
            && !state.gone.contains_key(peer)
            && (state.is_member(peer) || self.router_peer().is_none())
    }

    /// Our `Hello` to our router. One our log cannot place yet gets no version vector: it
    /// names every author.
    pub(super) fn router_hello(&self) -> GroupFrame {
        let mut hello = self.hello();
        let verified = self.router_link.as_ref().is_some_and(|l| l.verified);
        if let GroupFrame::Hello { vv, .. } = &mut hello
            && !verified
        {
            *vv = VersionVector::default();
        }
        hello
    }

    /// Sends the verified router our proposals not appended yet: one may have been lost, or
    /// made while no router was linked.
    pub(super) fn push_proposals(&mut self) {
        let Some(router) = self.router_peer() else {
            return;
        };
        for p in self.proposals.clone() {
            self.send(router, GroupFrame::Propose(p));
        }
    }

    /// Whether `peer` is a former member due to be sent our log (at most every
    /// [`TELL_GONE_EVERY`]). A router dials such peers it sees: one that missed its removal
    /// (offline then) learns of it from nobody else.
    pub fn gone_to_tell(&self, peer: &Fingerprint, now: Instant) -> bool {
        self.log.state().gone.contains_key(peer)
            && self
                .told_gone
                .get(peer)
                .is_none_or(|t| now >= *t + TELL_GONE_EVERY)
    }

    /// Whether former member `peer` is to be sent our log now; if so, it counts as told.
    pub(super) fn tell_gone(&mut self, peer: Fingerprint, now: Instant) -> bool {
        let due = self.gone_to_tell(&peer, now);
        if due {
            self.told_gone.insert(peer, now);
        }
        due
    }

    pub(super) fn on_router_up(&mut self, router: Fingerprint, now: Instant) {
        if self.router || router == self.me {
            return;
        }
        let state = self.log.state();
        if state.gone.contains_key(&router) {
            self.drop_peer(router, "a former member cannot route");
            self.event(GroupEvent::RouterRefused { router });
            return;
        }
        if !self.takes_router(&router) {
            self.refused(
                router,
                Refusal::Unexpected("a router our log cannot place while ours is linked"),
            );
            return;
        }
        self.router_link = Some(RouterLink {
            fp: router,
            verified: state.is_member(&router),
        });
        self.router_holds_ours = None;
        self.sent = self.acked;
        self.wanting.clear();
        let hello = self.router_hello();
        self.send(router, hello);
        self.sync_at = Some(self.next_sync(now));
    }

    pub(super) fn on_became_router(&mut self) {
        if self.router {
            return;
        }
        self.router = true;
        self.router_link = None;
        self.sync_at = None;
        self.resend_at = None;
        self.pace_at = None;
        self.wanting.clear();
        self.acked = self.vv.get(&self.me);
        self.event(GroupEvent::Role(true));
        if self.acked > 0 {
            let seq = self.acked;
            self.event(GroupEvent::Acked { seq });
        }
        let proposals = std::mem::take(&mut self.proposals);
        for p in proposals {
            self.repropose(p);
        }
    }

    pub(super) fn on_peer_up(&mut self, peer: Fingerprint, now: Instant) {
        if !self.router {
            self.drop_peer(peer, "not routing");
            return;
        }
        let state = self.log.state();
        let admitted = state.is_member(&peer);
        let probation = self.peers.values().filter(|l| !l.admitted).count();
        let full = state.open && self.peers.len() + 1 >= MAX_MEMBERS;
        let gone = state.gone.contains_key(&peer);
        if gone
            || (!admitted && probation >= self.cfg.max_probation)
            || (full && !self.peers.contains_key(&peer))
        {
            if gone && self.tell_gone(peer, now) {
                // A former member that missed its removal (offline then): our log tells it,
                // as if it had been online (it adopts the longer log and departs).
                let hello = self.hello();
                self.send(peer, hello);
                self.send_log(peer, 0);
            }
            let why = if full {
                "the room is full"
            } else {
                "not a member"
            };
            self.refuse_frame(peer, RefuseCode::NotMember, why);
            self.drop_peer(peer, why);
            self.refused(peer, Refusal::NotMember);
            return;
        }
        self.peers.insert(
            peer,
            PeerLink {
                admitted,
                tokens: f64::from(self.cfg.member_rate) * 2.0,
                token_at: now,
            },
        );
        if admitted {
            let hello = self.hello();
            self.send(peer, hello);
        } else if !state.is_member(&self.me) {
            // We route on a log that does not hold us yet (an invitee whose link carried the
            // creation alone won the election) and dialled this peer to learn the log from
            // it: a member takes us as router only once greeted, then shows its longer log
            // (`probation_frame`). The greeting names no authors (it may be a stranger).
            let mut hello = self.hello();
            if let GroupFrame::Hello { vv, .. } = &mut hello {
                *vv = VersionVector::default();
            }
            self.send(peer, hello);
        }
    }

    /// Whether we route on a log that does not make us a member yet (a pending invitee that
    /// won the election): the node then dials namespace peers the log cannot place, to learn
    /// the log from one that can.
    pub fn routes_unplaced(&self) -> bool {
        self.router && !self.log.state().is_member(&self.me)
    }
}
