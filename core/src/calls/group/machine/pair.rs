//! Direct pairs: a call with two participants whose router does not take part sends their
//! media straight between them. The router picks the host (the lower fingerprint) and tells
//! both (`Pair`); the guest joins the host with the usual `Join`/`Welcome` on their own Noise
//! session, and the host answers the guest's OFFER with its own tracks and no slots. The router
//! keeps the roster (both stay in it, shown connected), mute states and leaving. When a third
//! participant joins, the router joins the call, either of the two leaves, or the direct
//! connection fails (the guest joins the router again), the router ends the pair and both join
//! it (`docs/decisions/0016-group-calls.md`, "Two participants").

use std::time::{Duration, Instant};

use super::{Action, GroupCall, Participant, Phase, Role};
use crate::calls::DtlsFingerprint;
use crate::calls::group::wire::{GroupCallFrame, Layout};
use crate::identity::Fingerprint;

/// Joins a guest sends its host (one every join retry) before it goes back to the router.
pub(super) const GUEST_TRIES: u32 = 3;

/// A member's part in a direct pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Paired {
    /// None: our media goes to the router.
    No,
    /// We join this host.
    Guest(Fingerprint),
    /// We answer the guest.
    Host(Hosting),
}

/// The host's side of a pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Hosting {
    /// The other participant.
    pub(super) guest: Fingerprint,
    /// Its admitted connection: ID, since when, whether up.
    joined: Option<(String, Instant, bool)>,
}

impl Hosting {
    /// When an admitted connection that has not come up is dropped.
    pub(super) fn deadline(&self, timeout: Duration) -> Option<Instant> {
        match &self.joined {
            Some((_, at, false)) => Some(*at + timeout),
            _ => None,
        }
    }
}

impl GroupCall {
    /// Member side: leaves whatever pair or uplink we had for `next` (no join yet).
    pub(super) fn set_pair(&mut self, next: Paired) {
        let Role::Member { uplink, pair, .. } = &mut self.role else {
            return;
        };
        if uplink.take().is_some() {
            self.actions.push_back(Action::Disconnect);
        }
        if let Paired::Host(Hosting {
            guest,
            joined: Some(_),
        }) = pair
        {
            self.actions.push_back(Action::Expel { peer: *guest });
        }
        *pair = next;
    }

    /// Member side: our router pairs us, or ends our pair.
    pub(super) fn on_pair(
        &mut self,
        from: Fingerprint,
        pair: Option<(Fingerprint, Fingerprint)>,
        now: Instant,
    ) {
        let Role::Member {
            router, pair: ours, ..
        } = &self.role
        else {
            return;
        };
        if *router != from || self.local.is_none() {
            return;
        }
        let next = match pair {
            Some((host, guest)) if host == self.me => Paired::Host(Hosting {
                guest,
                joined: None,
            }),
            Some((host, guest)) if guest == self.me => Paired::Guest(host),
            _ => Paired::No,
        };
        let same = match (ours, &next) {
            (Paired::Host(a), Paired::Host(b)) => a.guest == b.guest,
            (a, b) => a == b,
        };
        if same {
            return;
        }
        self.set_pair(next);
        if matches!(
            self.role,
            Role::Member {
                pair: Paired::Host(_),
                ..
            }
        ) {
            self.set_phase(Phase::Waiting);
        } else {
            self.rejoin(now);
        }
    }

    /// Host side: the guest's join; admitted and welcomed like a router's participant, with
    /// our own tracks and no slots.
    pub(super) fn host_join(
        &mut self,
        from: Fingerprint,
        media_id: String,
        dtls: DtlsFingerprint,
        now: Instant,
    ) {
        let Some(local) = &self.local else {
            return;
        };
        let (ours, our_kinds) = (local.dtls, local.kinds);
        let Role::Member {
            pair: Paired::Host(h),
            ..
        } = &mut self.role
        else {
            return;
        };
        if h.guest != from {
            return;
        }
        let fresh = h.joined.as_ref().is_none_or(|(id, _, _)| *id != media_id);
        if fresh {
            if h.joined.is_some() {
                self.actions.push_back(Action::Expel { peer: from });
            }
            h.joined = Some((media_id.clone(), now, false));
            self.actions.push_back(Action::Admit {
                peer: from,
                media_id: media_id.clone(),
                dtls,
                router_kinds: our_kinds,
                layout: Layout::NONE,
            });
        }
        let welcome = GroupCallFrame::Welcome {
            group: self.group,
            media_id,
            dtls: ours,
            layout: Layout::NONE,
            router_kinds: our_kinds,
        };
        self.send(from, welcome);
    }

    /// Host side: the guest's connection came up or went down.
    pub(super) fn host_media(&mut self, peer: Fingerprint, media_id: &str, up: bool) {
        let Role::Member {
            pair: Paired::Host(h),
            ..
        } = &mut self.role
        else {
            return;
        };
        let Some((id, _, connected)) = h.joined.as_mut().filter(|_| h.guest == peer) else {
            return;
        };
        if *id != media_id {
            return;
        }
        if up {
            *connected = true;
            self.set_phase(Phase::Connected);
        } else {
            // The guest tries again, or goes back to the router.
            h.joined = None;
            self.actions.push_back(Action::Expel { peer });
            self.set_phase(Phase::Waiting);
        }
    }

    /// Host side: a guest whose media never came is dropped (it goes back to the router).
    pub(super) fn host_timeout(&mut self, now: Instant) {
        let timeout = self.cfg.connect_timeout;
        if let Role::Member {
            pair: Paired::Host(h),
            ..
        } = &mut self.role
            && h.deadline(timeout).is_some_and(|t| t <= now)
        {
            h.joined = None;
            let peer = h.guest;
            self.actions.push_back(Action::Expel { peer });
        }
    }

    /// Router side: pairs the participants when there are two and we are not one of them
    /// (and both sessions can be paired, and they have not failed to connect before); ends a
    /// pair otherwise. Both hear it; the pair's connections to us are dropped.
    pub(super) fn sync_pair(&mut self, now: Instant) {
        let Role::Router {
            participants,
            pair,
            unpairable,
            ..
        } = &mut self.role
        else {
            return;
        };
        if unpairable
            .is_some_and(|(a, b)| !participants.contains_key(&a) || !participants.contains_key(&b))
        {
            *unpairable = None;
        }
        let mut two = participants.keys().copied();
        let want = match (self.local.is_none(), two.next(), two.next(), two.next()) {
            (true, Some(a), Some(b), None)
                if self.pairable.contains(&a)
                    && self.pairable.contains(&b)
                    && *unpairable != Some((a, b)) =>
            {
                Some((a, b))
            }
            _ => None,
        };
        if *pair == want {
            return;
        }
        let mut told = vec![];
        if let Some((h, g)) = pair.take() {
            for fp in [h, g] {
                if !participants.contains_key(&fp) {
                    continue;
                }
                // It joins us again (unless it already has: its fresh join stands); until then
                // it counts as connecting, and its old connection's end is no news.
                if let Some(p) = participants.get_mut(&fp).filter(|p| p.paired) {
                    *p = Participant {
                        media_id: String::new(),
                        connected: false,
                        admitted: now,
                        paired: false,
                        ..p.clone()
                    };
                }
                told.push((fp, None));
            }
        }
        if let Some((h, g)) = want {
            for fp in [h, g] {
                if let Some(p) = participants.get_mut(&fp) {
                    p.paired = true;
                    p.connected = true;
                }
                self.actions.push_back(Action::Expel { peer: fp });
                told.retain(|(t, _)| *t != fp);
                told.push((fp, want));
            }
            *pair = want;
        }
        let group = self.group;
        for (to, pair) in told {
            self.send(to, GroupCallFrame::Pair { group, pair });
        }
    }
}
