//! The group-call machine on a small simulated network: frames are delivered in order, a
//! media connection comes up when a member's `Connect` matches the router's `Admit` (same
//! connection ID, both DTLS fingerprints as announced).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use super::*;
use crate::calls::{DtlsFingerprint, Kinds, MediaState};
use crate::groups::GroupId;
use crate::identity::Fingerprint;

const G: GroupId = GroupId([7; 16]);

fn fp(n: u8) -> Fingerprint {
    Fingerprint([n; 32])
}

fn dtls(n: u8) -> DtlsFingerprint {
    DtlsFingerprint([n; 32])
}

struct Net {
    now: Instant,
    nodes: BTreeMap<Fingerprint, GroupCall>,
    /// Router → participant → (connection ID, the participant's announced fingerprint).
    admitted: BTreeMap<(Fingerprint, Fingerprint), (String, DtlsFingerprint)>,
    /// The routers' certificates.
    router_dtls: BTreeMap<Fingerprint, DtlsFingerprint>,
    /// Media connections up: (router, participant) → connection ID.
    media: BTreeMap<(Fingerprint, Fingerprint), String>,
    events: BTreeMap<Fingerprint, Vec<GroupCallEvent>>,
    /// (router, participant) whose media the router dropped.
    expelled: Vec<(Fingerprint, Fingerprint)>,
    /// The router elected last.
    router: Option<Fingerprint>,
    /// Direct connections between members fail.
    no_direct: bool,
}

impl Net {
    fn new(n: u8) -> Self {
        let members: BTreeSet<Fingerprint> = (1..=n).map(fp).collect();
        let now = Instant::now();
        let mut nodes = BTreeMap::new();
        for m in &members {
            let mut c = GroupCall::new(G, *m, GroupCallConfig::default());
            c.handle(Input::Members(members.clone()), now);
            nodes.insert(*m, c);
        }
        Self {
            now,
            nodes,
            admitted: BTreeMap::new(),
            router_dtls: BTreeMap::new(),
            media: BTreeMap::new(),
            events: BTreeMap::new(),
            expelled: vec![],
            router: None,
            no_direct: false,
        }
    }

    /// `r` routes; every other node follows it.
    fn elect(&mut self, r: Fingerprint) {
        let d = dtls(r.0[0]);
        self.router_dtls.insert(r, d);
        self.router = Some(r);
        self.input(r, Input::Routing(Some(d)));
        let others: Vec<Fingerprint> = self.nodes.keys().filter(|f| **f != r).copied().collect();
        for o in others {
            self.input(o, Input::Router(Some(r)));
        }
    }

    /// The router's links to every other node come up, able to pair or not.
    fn link_all(&mut self, pairs: bool) {
        let r = self.router.expect("a router");
        let others: Vec<Fingerprint> = self.nodes.keys().filter(|f| **f != r).copied().collect();
        for peer in others {
            self.input(r, Input::PeerUp { peer, pairs });
        }
    }

    fn join(&mut self, who: Fingerprint, kinds: Kinds) {
        let input = Input::Join {
            kinds,
            state: MediaState::default(),
            dtls: dtls(100 + who.0[0]),
            id_prefix: format!("mc_{}x", who.0[0]),
        };
        self.input(who, input);
    }

    fn input(&mut self, to: Fingerprint, input: Input) {
        let now = self.now;
        if let Some(n) = self.nodes.get_mut(&to) {
            n.handle(input, now);
        }
        self.pump();
    }

    fn advance(&mut self, d: Duration) {
        self.now += d;
        let now = self.now;
        for n in self.nodes.values_mut() {
            if n.poll_timeout().is_some_and(|t| t <= now) {
                n.handle_timeout(now);
            }
        }
        self.pump();
    }

    /// Runs every node's actions until none are left.
    fn pump(&mut self) {
        loop {
            let mut work = vec![];
            for (fp, n) in &mut self.nodes {
                for a in n.drain_actions() {
                    work.push((*fp, a));
                }
            }
            if work.is_empty() {
                return;
            }
            for (from, a) in work {
                self.perform(from, a);
            }
        }
    }

    fn deliver(&mut self, from: Fingerprint, to: Fingerprint, frame: GroupCallFrame) {
        let now = self.now;
        if let Some(n) = self.nodes.get_mut(&to) {
            n.handle(Input::Frame { from, frame }, now);
        }
    }

    fn perform(&mut self, from: Fingerprint, a: Action) {
        let now = self.now;
        match a {
            Action::Send { to, frame } => self.deliver(from, to, frame),
            Action::Broadcast(frame) => {
                let to: Vec<Fingerprint> =
                    self.nodes.keys().filter(|f| **f != from).copied().collect();
                for t in to {
                    self.deliver(from, t, frame.clone());
                }
            }
            Action::Admit {
                peer,
                media_id,
                dtls,
                ..
            } => {
                self.admitted.insert((from, peer), (media_id, dtls));
            }
            Action::Expel { peer } => {
                self.admitted.remove(&(from, peer));
                self.media.remove(&(from, peer));
                self.expelled.push((from, peer));
            }
            Action::Connect(Uplinking {
                host: router,
                media_id,
                dtls: router_dtls,
                ..
            }) => {
                let theirs = self.admitted.get(&(router, from)).cloned();
                let ours = dtls(100 + from.0[0]);
                // A router answers with its routing certificate, a pair's host with its own.
                let answer = if self.router == Some(router) {
                    self.router_dtls.get(&router).copied()
                } else {
                    Some(dtls(100 + router.0[0]))
                };
                let ok = theirs.is_some_and(|(id, d)| id == media_id && d == ours)
                    && answer == Some(router_dtls)
                    && self.nodes.contains_key(&router);
                if self.no_direct && self.router != Some(router) {
                    self.nodes.get_mut(&from).unwrap().handle(
                        Input::MediaDown {
                            peer: router,
                            media_id,
                        },
                        now,
                    );
                } else if ok {
                    self.media.insert((router, from), media_id.clone());
                    for (node, peer) in [(router, from), (from, router)] {
                        if let Some(n) = self.nodes.get_mut(&node) {
                            n.handle(
                                Input::MediaUp {
                                    peer,
                                    media_id: media_id.clone(),
                                },
                                now,
                            );
                        }
                    }
                }
            }
            Action::Disconnect => {
                self.media.retain(|(_, p), _| *p != from);
            }
            // The link counts refusals; the stranger test checks the action itself.
            Action::Refuse { .. } => {}
            Action::Event(e) => self.events.entry(from).or_default().push(e),
        }
    }

    fn roster(&self, at: Fingerprint) -> Vec<(Fingerprint, bool)> {
        self.nodes[&at]
            .roster()
            .iter()
            .map(|p| (p.member, p.connected))
            .collect()
    }

    fn phase(&self, at: Fingerprint) -> Phase {
        self.nodes[&at].phase()
    }
}

#[test]
fn members_join_through_the_router_and_all_see_one_roster() {
    let mut net = Net::new(3);
    net.elect(fp(1));
    net.join(fp(2), Kinds::AUDIO.union(Kinds::VIDEO));
    net.join(fp(3), Kinds::AUDIO);
    assert_eq!(net.phase(fp(2)), Phase::Connected);
    assert_eq!(net.phase(fp(3)), Phase::Connected);
    let want = vec![(fp(2), true), (fp(3), true)];
    for n in 1..=3 {
        assert_eq!(net.roster(fp(n)), want, "node {n}");
    }
    assert!(net.media.contains_key(&(fp(1), fp(2))));
    assert!(net.media.contains_key(&(fp(1), fp(3))));
    // The router takes part too: it is listed, and members join again so that their
    // connections carry its tracks.
    let before = net.media[&(fp(1), fp(2))].clone();
    net.join(fp(1), Kinds::VIDEO);
    assert_eq!(net.roster(fp(3)).len(), 3);
    assert_ne!(net.media[&(fp(1), fp(2))], before, "a new connection");
    assert_eq!(net.phase(fp(2)), Phase::Connected);
}

#[test]
fn the_call_moves_to_a_new_router_when_the_old_one_dies() {
    let mut net = Net::new(4);
    net.elect(fp(1));
    for n in 1..=4 {
        net.join(fp(n), Kinds::AUDIO.union(Kinds::VIDEO));
    }
    assert_eq!(net.roster(fp(4)).len(), 4);
    // Router 1 crashes: 2 is elected; the others follow it.
    net.nodes.remove(&fp(1));
    net.media.retain(|(r, _), _| *r != fp(1));
    net.elect(fp(2));
    for n in 2..=4 {
        assert_eq!(net.phase(fp(n)), Phase::Connected, "node {n}");
    }
    let want = vec![(fp(2), true), (fp(3), true), (fp(4), true)];
    assert_eq!(net.roster(fp(3)), want);
    assert_eq!(net.roster(fp(4)), want);
    assert!(net.media.contains_key(&(fp(2), fp(3))));
    assert!(net.media.contains_key(&(fp(2), fp(4))));
}

#[test]
fn a_lost_join_is_repeated_and_a_failed_connection_retried_with_a_new_id() {
    let mut net = Net::new(2);
    // The member knows the router before the router knows it routes: the join is lost.
    net.input(fp(2), Input::Router(Some(fp(1))));
    net.join(fp(2), Kinds::AUDIO);
    assert_eq!(net.phase(fp(2)), Phase::Waiting);
    net.router_dtls.insert(fp(1), dtls(1));
    net.router = Some(fp(1));
    net.input(fp(1), Input::Routing(Some(dtls(1))));
    net.advance(Duration::from_secs(2));
    assert_eq!(net.phase(fp(2)), Phase::Connected);
    let first = net.media[&(fp(1), fp(2))].clone();
    // The media connection drops: after a pause the member joins with a new connection ID.
    let now = net.now;
    for (node, peer) in [(fp(1), fp(2)), (fp(2), fp(1))] {
        net.nodes.get_mut(&node).unwrap().handle(
            Input::MediaDown {
                peer,
                media_id: first.clone(),
            },
            now,
        );
    }
    net.pump();
    assert_eq!(net.phase(fp(2)), Phase::Waiting);
    assert!(net.roster(fp(1)).is_empty());
    net.advance(Duration::from_secs(2));
    assert_eq!(net.phase(fp(2)), Phase::Connected);
    assert_ne!(net.media[&(fp(1), fp(2))], first);
}

#[test]
fn strangers_other_groups_and_removed_members_get_nothing() {
    let mut net = Net::new(3);
    net.elect(fp(1));
    // A join from a non-member, and one for another group.
    let join = |group| GroupCallFrame::Join {
        group,
        media_id: "mc_zz".into(),
        dtls: dtls(9),
        kinds: Kinds::AUDIO,
        state: MediaState::default(),
    };
    // The stranger is refused (its link counts the refusal), the other group ignored.
    net.deliver(fp(9), fp(1), join(G));
    net.deliver(fp(2), fp(1), join(GroupId([8; 16])));
    assert_eq!(
        net.nodes.get_mut(&fp(1)).unwrap().drain_actions(),
        vec![Action::Refuse {
            to: fp(9),
            reason: "not a member of the group"
        }]
    );
    // A welcome from someone who is not our router is ignored.
    net.join(fp(3), Kinds::AUDIO);
    net.input(fp(2), Input::Router(Some(fp(1))));
    net.join(fp(2), Kinds::AUDIO);
    assert_eq!(net.roster(fp(1)).len(), 2);
    // Member 2 is removed: the router drops its media and lists it no more; 2 leaves.
    let now = net.now;
    let members: BTreeSet<Fingerprint> = [fp(1), fp(3)].into();
    for n in 1..=3 {
        net.nodes
            .get_mut(&fp(n))
            .unwrap()
            .handle(Input::Members(members.clone()), now);
    }
    net.pump();
    assert!(net.expelled.contains(&(fp(1), fp(2))));
    assert_eq!(net.roster(fp(3)), vec![(fp(3), true)]);
    assert_eq!(net.phase(fp(2)), Phase::Out);
}

#[test]
fn leaving_and_silent_participants_leave_the_roster() {
    let mut net = Net::new(3);
    net.elect(fp(1));
    net.join(fp(2), Kinds::AUDIO);
    net.join(fp(3), Kinds::AUDIO);
    net.input(fp(2), Input::Leave);
    assert_eq!(net.phase(fp(2)), Phase::Out);
    assert_eq!(net.roster(fp(3)), vec![(fp(3), true)]);
    assert!(net.expelled.contains(&(fp(1), fp(2))));
    // A join whose media never arrives is dropped after the connect timeout.
    let now = net.now;
    net.nodes.get_mut(&fp(1)).unwrap().handle(
        Input::Frame {
            from: fp(2),
            frame: GroupCallFrame::Join {
                group: G,
                media_id: "mc_never".into(),
                dtls: dtls(50),
                kinds: Kinds::AUDIO,
                state: MediaState::default(),
            },
        },
        now,
    );
    net.pump();
    assert_eq!(net.roster(fp(1)).len(), 2);
    net.advance(GroupCallConfig::default().connect_timeout);
    assert_eq!(net.roster(fp(1)), vec![(fp(3), true)]);
}

#[test]
fn a_router_our_log_does_not_list_yet_is_followed() {
    // An invitee's log may not list the other invitees yet; the group layer chose the router.
    let mut net = Net::new(3);
    let now = net.now;
    net.nodes
        .get_mut(&fp(3))
        .unwrap()
        .handle(Input::Members([fp(1), fp(3)].into()), now);
    net.elect(fp(2));
    net.join(fp(3), Kinds::AUDIO);
    assert_eq!(net.phase(fp(3)), Phase::Connected);
    assert_eq!(net.roster(fp(3)), vec![(fp(3), true)]);
}

#[test]
fn the_router_tells_everyone_who_speaks_and_the_list_follows_the_roster() {
    let mut net = Net::new(4);
    net.elect(fp(1));
    for n in 1..=3 {
        net.join(fp(n), Kinds::AUDIO);
    }
    let speaking = |net: &Net, n: u8| net.nodes[&fp(n)].speaking().to_vec();
    // Only the router's word counts; those not in the call (4), and repeats, are left out.
    net.input(fp(2), Input::Speakers(vec![fp(3)]));
    assert!(
        speaking(&net, 2).is_empty(),
        "a member ignores its own input"
    );
    net.input(fp(1), Input::Speakers(vec![fp(3), fp(4), fp(3), fp(1)]));
    for n in 1..=4 {
        assert_eq!(speaking(&net, n), vec![fp(3), fp(1)], "node {n}");
    }
    assert!(matches!(
        net.events[&fp(2)].last(),
        Some(GroupCallEvent::Speakers(s)) if *s == vec![fp(3), fp(1)]
    ));
    // The same list again is not sent again.
    let events = net.events[&fp(2)].len();
    net.input(fp(1), Input::Speakers(vec![fp(3), fp(1)]));
    assert_eq!(net.events[&fp(2)].len(), events);
    // A frame from someone else than the router is ignored.
    net.deliver(
        fp(3),
        fp(2),
        GroupCallFrame::Speakers {
            group: G,
            speaking: vec![fp(2)],
        },
    );
    assert_eq!(speaking(&net, 2), vec![fp(3), fp(1)]);
    // A speaker who leaves stops speaking everywhere.
    net.input(fp(3), Input::Leave);
    for n in 1..=2 {
        assert_eq!(speaking(&net, n), vec![fp(1)], "node {n}");
    }
    // With the router gone, nobody speaks.
    net.nodes.remove(&fp(1));
    net.elect(fp(2));
    assert!(speaking(&net, 2).is_empty());
}

/// Media connections up, as (answering side, offering side).
fn links(net: &Net) -> Vec<(u8, u8)> {
    net.media.keys().map(|(a, b)| (a.0[0], b.0[0])).collect()
}

#[test]
fn two_participants_talk_directly_until_a_third_joins() {
    let mut net = Net::new(4);
    net.elect(fp(1));
    net.link_all(true);
    let av = Kinds::AUDIO.union(Kinds::VIDEO);
    net.join(fp(2), av);
    net.join(fp(3), av);
    // The router (1) is not in the call: 3 joins 2 (the lower fingerprint hosts), and the
    // router keeps no media of theirs.
    assert_eq!(links(&net), vec![(2, 3)]);
    assert!(net.expelled.contains(&(fp(1), fp(2))));
    for n in 1..=4 {
        assert_eq!(
            net.roster(fp(n)),
            vec![(fp(2), true), (fp(3), true)],
            "node {n}"
        );
    }
    assert_eq!(net.phase(fp(2)), Phase::Connected);
    assert_eq!(net.phase(fp(3)), Phase::Connected);
    assert_eq!(net.nodes[&fp(3)].media_peer(), Some(fp(2)));
    assert_eq!(net.nodes[&fp(2)].media_peer(), Some(fp(3)));
    assert!(net.nodes[&fp(2)].hosts() && net.nodes[&fp(2)].answers(&fp(3)));
    // The host tells its guest who speaks; mute goes through the router's roster.
    net.input(fp(2), Input::Speakers(vec![fp(3), fp(2)]));
    assert_eq!(net.nodes[&fp(3)].speaking(), [fp(3), fp(2)]);
    net.input(
        fp(3),
        Input::SetMedia(MediaState {
            muted: true,
            ..MediaState::default()
        }),
    );
    assert!(net.nodes[&fp(2)].roster()[1].state.muted);
    // A third participant: everyone's media goes through the router again.
    net.join(fp(4), Kinds::AUDIO);
    assert_eq!(links(&net), vec![(1, 2), (1, 3), (1, 4)]);
    assert!(!net.nodes[&fp(2)].hosts());
    for n in 2..=4 {
        assert_eq!(net.phase(fp(n)), Phase::Connected, "node {n}");
        assert_eq!(net.nodes[&fp(n)].media_peer(), Some(fp(1)));
    }
    // It leaves: the two are paired again. Then the router joins: routed again.
    net.input(fp(4), Input::Leave);
    assert_eq!(links(&net), vec![(2, 3)]);
    net.join(fp(1), Kinds::AUDIO);
    assert_eq!(links(&net), vec![(1, 2), (1, 3)]);
    assert_eq!(net.roster(fp(3)).len(), 3);
    // The router leaves the call: a pair once more; then the host leaves: the guest is
    // routed alone, and the router lists it alone.
    net.input(fp(1), Input::Leave);
    assert_eq!(links(&net), vec![(2, 3)]);
    net.input(fp(2), Input::Leave);
    assert_eq!(links(&net), vec![(1, 3)]);
    assert_eq!(net.roster(fp(1)), vec![(fp(3), true)]);
    assert_eq!(net.phase(fp(3)), Phase::Connected);
}

#[test]
fn a_pair_whose_direct_connection_fails_is_routed() {
    let mut net = Net::new(3);
    net.no_direct = true;
    net.elect(fp(1));
    net.link_all(true);
    net.join(fp(2), Kinds::AUDIO);
    net.join(fp(3), Kinds::AUDIO);
    // The guest's connection to its host failed: it joins the router again at its next
    // retry, and the router routes both for as long as they are the two.
    assert!(links(&net).is_empty());
    net.advance(GroupCallConfig::default().join_retry);
    assert_eq!(links(&net), vec![(1, 2), (1, 3)]);
    assert_eq!(net.phase(fp(2)), Phase::Connected);
    assert_eq!(net.phase(fp(3)), Phase::Connected);
    net.advance(Duration::from_secs(30));
    assert_eq!(links(&net), vec![(1, 2), (1, 3)]);
    assert_eq!(net.roster(fp(2)), vec![(fp(2), true), (fp(3), true)]);
}

#[test]
fn a_silent_host_sends_its_guest_back_to_the_router() {
    let mut net = Net::new(3);
    net.elect(fp(1));
    net.link_all(true);
    net.join(fp(2), Kinds::AUDIO);
    // The host (2) is gone from the network but its router link still looks up: the
    // guest's joins are lost, and after a few it joins the router, which routes them.
    let host = net.nodes.remove(&fp(2)).unwrap();
    net.join(fp(3), Kinds::AUDIO);
    assert!(links(&net).is_empty());
    // (Three joins, one per retry, then back to the router.)
    for _ in 0..3 {
        net.advance(GroupCallConfig::default().join_retry);
    }
    assert_eq!(links(&net), vec![(1, 3)]);
    assert_eq!(net.phase(fp(3)), Phase::Connected);
    net.nodes.insert(fp(2), host);
}

#[test]
fn members_that_cannot_pair_are_routed() {
    let mut net = Net::new(3);
    net.elect(fp(1));
    net.link_all(false);
    net.join(fp(2), Kinds::AUDIO);
    net.join(fp(3), Kinds::AUDIO);
    assert_eq!(links(&net), vec![(1, 2), (1, 3)]);
}

#[test]
fn a_pair_follows_a_new_router() {
    let mut net = Net::new(4);
    net.elect(fp(1));
    net.link_all(true);
    net.join(fp(3), Kinds::AUDIO);
    net.join(fp(4), Kinds::AUDIO);
    assert_eq!(links(&net), vec![(3, 4)]);
    // The router dies; 2 is elected and pairs them again (a new connection).
    net.nodes.remove(&fp(1));
    net.elect(fp(2));
    net.link_all(true);
    net.advance(GroupCallConfig::default().join_retry);
    assert_eq!(links(&net), vec![(3, 4)]);
    assert_eq!(net.roster(fp(4)), vec![(fp(3), true), (fp(4), true)]);
    assert_eq!(net.phase(fp(4)), Phase::Connected);
}

#[test]
fn a_browser_guest_is_admitted_listed_and_bounded() {
    let mut net = Net::new(3);
    net.elect(fp(1));
    net.link_all(true);
    net.join(fp(2), Kinds::AUDIO);
    let guest = |n: u8| Input::Guest {
        guest: fp(200 + n),
        media_id: format!("mc_browser{n}"),
        dtls: dtls(200 + n),
    };
    net.input(fp(1), guest(0));
    assert!(net.admitted.contains_key(&(fp(1), fp(200))));
    // A guest is never paired (it has no session), is listed, and stays when the members'
    // list changes.
    assert_eq!(net.roster(fp(2)), vec![(fp(2), true), (fp(200), false)]);
    let now = net.now;
    net.nodes
        .get_mut(&fp(1))
        .unwrap()
        .handle(Input::Members((1..=3).map(fp).collect()), now);
    net.pump();
    assert_eq!(net.roster(fp(2)).len(), 2);
    // At most MAX_GUESTS; a member's fingerprint is never a guest; outside the router nothing.
    for n in 1..=MAX_GUESTS as u8 {
        net.input(fp(1), guest(n));
    }
    assert_eq!(net.roster(fp(2)).len(), 1 + MAX_GUESTS);
    net.input(
        fp(1),
        Input::Guest {
            guest: fp(3),
            media_id: "mc_member".into(),
            dtls: dtls(9),
        },
    );
    net.input(fp(2), guest(9));
    assert_eq!(net.roster(fp(2)).len(), 1 + MAX_GUESTS);
    // A guest whose media never comes is dropped after the connect timeout.
    net.advance(GroupCallConfig::default().connect_timeout);
    assert_eq!(net.roster(fp(2)), vec![(fp(2), true)]);
}

#[test]
fn a_browser_guests_rotation_from_its_packets_is_listed_and_a_members_is_its_own() {
    let mut net = Net::new(3);
    net.elect(fp(1));
    net.link_all(true);
    net.join(fp(2), Kinds::AUDIO.union(Kinds::VIDEO));
    net.input(
        fp(1),
        Input::Guest {
            guest: fp(200),
            media_id: "mc_browser".into(),
            dtls: dtls(200),
        },
    );
    let rotation_at = |net: &Net, of: Fingerprint| {
        net.nodes[&fp(2)]
            .roster()
            .iter()
            .find(|p| p.member == of)
            .map(|p| p.state.rotation)
    };
    assert_eq!(rotation_at(&net, fp(200)), Some(0));
    net.input(
        fp(1),
        Input::GuestRotation {
            guest: fp(200),
            degrees: 268,
        },
    );
    assert_eq!(rotation_at(&net, fp(200)), Some(270));
    // A member announces its own state; what its packets say changes nothing.
    net.input(
        fp(1),
        Input::GuestRotation {
            guest: fp(2),
            degrees: 90,
        },
    );
    assert_eq!(rotation_at(&net, fp(2)), Some(0));
    // Only the router lists guests.
    net.input(
        fp(2),
        Input::GuestRotation {
            guest: fp(200),
            degrees: 90,
        },
    );
    assert_eq!(rotation_at(&net, fp(200)), Some(270));
}
