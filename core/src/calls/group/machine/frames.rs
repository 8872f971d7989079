//! The call's frames from the other participants and the router: joins, welcomes, rosters,
//! pairs, speakers and leaves, as the router or as a member handles them.

use super::*;

impl GroupCall {
    pub(super) fn on_frame(&mut self, from: Fingerprint, frame: GroupCallFrame, now: Instant) {
        // Members speak to the router; only our router (whom the group layer chose) speaks to
        // us, so its frames count even before our copy of the log lists it.
        let to_router = matches!(
            frame,
            GroupCallFrame::Join { .. }
                | GroupCallFrame::Leave { .. }
                | GroupCallFrame::Media { .. }
        );
        if frame.group() != self.group {
            return;
        }
        if to_router && !self.members.contains(&from) {
            self.actions.push_back(Action::Refuse {
                to: from,
                reason: "not a member of the group",
            });
            return;
        }
        match frame {
            GroupCallFrame::Join {
                media_id,
                dtls,
                kinds,
                state,
                ..
            } => {
                let router_kinds = self.local.as_ref().map(|l| l.kinds).unwrap_or_default();
                if matches!(self.role, Role::Member { .. }) {
                    self.host_join(from, media_id, dtls, now);
                    return;
                }
                let Role::Router {
                    dtls: ours,
                    participants,
                    pair,
                    unpairable,
                } = &mut self.role
                else {
                    return;
                };
                let ours = *ours;
                let fresh = participants
                    .get(&from)
                    .is_none_or(|p| p.media_id != media_id);
                if let Some((h, g)) = *pair
                    && (from == h || from == g)
                {
                    if !fresh {
                        // A join sent before our `Pair` reached it: the pair stands.
                        return;
                    }
                    // It comes back to us: their direct connection failed.
                    *unpairable = Some((h, g));
                }
                if fresh
                    && !participants.contains_key(&from)
                    && participants.len() + 1 >= MAX_PARTICIPANTS
                {
                    // Full: no welcome; the member keeps asking and gets in when someone leaves.
                    return;
                }
                if fresh {
                    if participants.contains_key(&from) {
                        self.actions.push_back(Action::Expel { peer: from });
                    }
                    participants.insert(
                        from,
                        Participant {
                            kinds,
                            state,
                            media_id: media_id.clone(),
                            connected: false,
                            admitted: now,
                            paired: false,
                            guest: false,
                        },
                    );
                    self.actions.push_back(Action::Admit {
                        peer: from,
                        media_id: media_id.clone(),
                        dtls,
                        router_kinds,
                        layout: self.cfg.layout,
                    });
                }
                let welcome = GroupCallFrame::Welcome {
                    group: self.group,
                    media_id,
                    dtls: ours,
                    layout: self.cfg.layout,
                    router_kinds,
                };
                self.send(from, welcome);
                if fresh {
                    self.publish_roster(now);
                }
            }
            GroupCallFrame::Leave { .. } => {
                if let Role::Router { participants, .. } = &mut self.role
                    && participants.remove(&from).is_some()
                {
                    self.actions.push_back(Action::Expel { peer: from });
                    self.publish_roster(now);
                }
            }
            GroupCallFrame::Media { state, .. } => {
                if let Role::Router { participants, .. } = &mut self.role
                    && let Some(p) = participants.get_mut(&from)
                    && p.state != state
                {
                    p.state = state;
                    self.publish_roster(now);
                }
            }
            GroupCallFrame::Pair { pair, .. } => self.on_pair(from, pair, now),
            GroupCallFrame::Welcome {
                media_id,
                dtls,
                layout,
                router_kinds,
                ..
            } => {
                let Some(kinds) = self.local.as_ref().map(|l| l.kinds) else {
                    return;
                };
                let Role::Member {
                    uplink: Some(u), ..
                } = &mut self.role
                else {
                    return;
                };
                if u.to != from || u.media_id != media_id || u.welcomed.is_some() {
                    return;
                }
                u.welcomed = Some(Welcomed {
                    router_kinds,
                    connected: false,
                });
                // The media connection must come up within the connect timeout.
                u.retry_at = Some(now + self.cfg.connect_timeout);
                self.actions.push_back(Action::Connect(Uplinking {
                    host: from,
                    media_id,
                    dtls,
                    layout,
                    router_kinds,
                    kinds,
                }));
                self.set_phase(Phase::Connecting);
            }
            GroupCallFrame::Roster { participants, .. } => {
                let Role::Member { router, uplink, .. } = &self.role else {
                    return;
                };
                if *router != from {
                    return;
                }
                // Connected but left out (the router lost us), or the router now sends media
                // our connection has no tracks for: join again. (A failed connection waits
                // for its retry instead.)
                let stale = uplink
                    .as_ref()
                    .and_then(|u| u.welcomed.as_ref())
                    .is_some_and(|w| {
                        let me = participants.iter().any(|p| p.member == self.me);
                        let router_kinds = participants
                            .iter()
                            .find(|p| p.member == from)
                            .map(|p| p.kinds)
                            .unwrap_or_default();
                        (w.connected && !me) || !w.router_kinds.contains(router_kinds)
                    });
                self.set_roster(participants);
                if stale {
                    self.rejoin(now);
                }
            }
            GroupCallFrame::Slots { slots, .. } => {
                if matches!(&self.role, Role::Member { uplink: Some(u), .. } if u.to == from) {
                    self.actions
                        .push_back(Action::Event(GroupCallEvent::Slots(slots)));
                }
            }
            GroupCallFrame::Speakers { speaking, .. } => {
                // From whoever forwards to us: the router, or our pair's host.
                let heard = match &self.role {
                    Role::Member {
                        pair: Paired::Guest(host),
                        ..
                    } => *host == from,
                    Role::Member {
                        router,
                        pair: Paired::No,
                        ..
                    } => *router == from,
                    _ => false,
                };
                if heard {
                    self.set_speaking(speaking);
                }
            }
        }
    }
}
