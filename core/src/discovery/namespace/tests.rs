//! Engine-level tests that drive one [`Namespace`] by hand: attacks that need exact control of
//! which connection says what (the simulator covers whole namespaces).

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Action, ConnId, Input, Namespace, NsConfig, RoleKind};
use crate::discovery::msg::Msg;
use crate::discovery::presence::{Presence, SignedPresence, VerifyCache};
use crate::identity::Identity;

const NS: &str = "peerns2-ns-unit";
const EPOCH_MS: u64 = 1_800_000_000_000;

fn engine(seed: u64, now: Instant) -> Namespace {
    Namespace::new(
        NsConfig::default(),
        NS,
        Arc::new(Identity::generate()),
        "node",
        Arc::new(VerifyCache::new(1024)),
        seed,
        now,
        EPOCH_MS,
    )
}

/// An engine that holds level 1.
fn router(now: Instant) -> Namespace {
    let mut ns = engine(1, now);
    ns.start(now);
    let disc = ns.disc_id().to_owned();
    ns.handle(Input::Claimed { id: disc }, now);
    ns.handle(
        Input::Claimed {
            id: ns.router_id(1),
        },
        now,
    );
    assert_eq!(ns.role(), RoleKind::Router(1));
    ns.drain_actions();
    ns
}

fn record(id: &Identity, disc: &str, issued_ms: u64) -> SignedPresence {
    SignedPresence::sign(
        id,
        Presence {
            namespace: NS.into(),
            disc_id: disc.into(),
            key: [0; 32],
            issued_ms,
            name: "member".into(),
            geo: None,
            note: vec![],
        },
    )
}

fn check_in(rec: &SignedPresence) -> Vec<u8> {
    Msg::CheckIn(Box::new(rec.clone())).encode()
}

/// Knocks at the router from the reverse slot a second after `now` (knocks closer together
/// than that start no probe); returns the probe it opens, already reported open.
fn probe_slot(ns: &mut Namespace, now: Instant) -> (ConnId, Instant) {
    let now = now + Duration::from_secs(1);
    let slot = format!("{NS}-p1");
    ns.handle(Input::Knock { from: slot.clone() }, now);
    let probe = ns.drain_actions().into_iter().find_map(|a| match a {
        Action::Connect { conn, to, .. } if to == slot => Some(conn),
        _ => None,
    });
    let conn = probe.expect("the router did not probe the reverse slot");
    ns.handle(Input::Connected { conn }, now);
    (conn, now)
}

/// Review item 4: whoever holds the reverse slot used to be able to check in any record; a
/// replayed member record evicted that member. Now the router only calls the named discovery
/// ID back, and refuses a record of a live member outright.
#[test]
fn a_record_replayed_through_the_reverse_slot_evicts_nobody() {
    let t0 = Instant::now();
    let mut ns = router(t0);
    let victim = Identity::generate();
    let vdisc = format!("{NS}-d-00000000000000aa");
    let vconn = ConnId::incoming(0);
    ns.handle(
        Input::Incoming {
            conn: vconn,
            local: ns.router_id(1),
            remote: vdisc.clone(),
        },
        t0,
    );
    let rec = record(&victim, &vdisc, EPOCH_MS);
    ns.handle(
        Input::Data {
            conn: vconn,
            bytes: check_in(&rec),
        },
        t0,
    );
    assert!(ns.knows(&victim.fingerprint()));
    ns.drain_actions();
    // The attacker sits in the slot and replays the victim's record.
    let (probe, now) = probe_slot(&mut ns, t0);
    ns.handle(
        Input::Data {
            conn: probe,
            bytes: check_in(&rec),
        },
        now,
    );
    let actions = ns.drain_actions();
    assert!(
        !actions.contains(&Action::Close { conn: vconn }),
        "the victim's connection was closed: {actions:?}"
    );
    assert!(ns.knows(&victim.fingerprint()));
    // Its connection still counts as the victim's: a beat from it keeps it, and a fresh
    // check-in on it is accepted as an update, not refused.
    let newer = record(&victim, &vdisc, EPOCH_MS + 500);
    ns.handle(
        Input::Data {
            conn: vconn,
            bytes: check_in(&newer),
        },
        now,
    );
    assert!(
        !ns.drain_actions()
            .iter()
            .any(|a| matches!(a, Action::Close { conn } if *conn == vconn))
    );
}

/// A newcomer that checks in over the slot is called back at the discovery ID its record
/// names, and admitted only once it checks in there; a record naming something that is not a
/// discovery ID of the namespace (a persistent ID, say) makes the router connect nowhere.
#[test]
fn the_reverse_slot_holder_is_called_back_at_its_discovery_id() {
    let t0 = Instant::now();
    let mut ns = router(t0);
    let newcomer = Identity::generate();
    let ndisc = format!("{NS}-d-00000000000000bb");
    let (probe, now) = probe_slot(&mut ns, t0);
    ns.handle(
        Input::Data {
            conn: probe,
            bytes: check_in(&record(&newcomer, &ndisc, EPOCH_MS)),
        },
        now,
    );
    assert!(!ns.knows(&newcomer.fingerprint()), "admitted over the slot");
    let back = ns
        .drain_actions()
        .into_iter()
        .find_map(|a| match a {
            Action::Connect { conn, to, .. } if to == ndisc => Some(conn),
            _ => None,
        })
        .expect("no call-back to the record's discovery ID");
    ns.handle(Input::Connected { conn: back }, now);
    assert!(ns.drain_actions().iter().any(|a| matches!(
        a,
        Action::Send { conn, bytes } if *conn == back
            && bytes == &Msg::ReverseWelcome { level: 1 }.encode()
    )));
    ns.handle(
        Input::Data {
            conn: back,
            bytes: check_in(&record(&newcomer, &ndisc, EPOCH_MS + 10)),
        },
        now,
    );
    assert!(ns.knows(&newcomer.fingerprint()));

    // A record naming the victim's persistent PeerJS ID: refused, nothing dialled.
    let mallory = Identity::generate();
    let (probe, now) = probe_slot(&mut ns, now);
    ns.handle(
        Input::Data {
            conn: probe,
            bytes: check_in(&record(&mallory, "victim-persistent-id", EPOCH_MS)),
        },
        now,
    );
    let actions = ns.drain_actions();
    assert!(
        !actions
            .iter()
            .any(|a| matches!(a, Action::Connect { to, .. } if to == "victim-persistent-id")),
        "{actions:?}"
    );
    assert!(actions.contains(&Action::Close { conn: probe }));
}

/// An engine with a small registry cap that joined the router at level 1; returns the
/// connection to the router, with the check-in already sent.
fn member(now: Instant, cap: usize) -> (Namespace, ConnId) {
    let cfg = NsConfig {
        registry_cap: cap,
        ..NsConfig::default()
    };
    let mut ns = Namespace::new(
        cfg,
        NS,
        Arc::new(Identity::generate()),
        "member",
        Arc::new(VerifyCache::new(1024)),
        2,
        now,
        EPOCH_MS,
    );
    ns.start(now);
    let disc = ns.disc_id().to_owned();
    ns.handle(Input::Claimed { id: disc }, now);
    let id = ns.router_id(1);
    ns.handle(Input::ClaimFailed { id, taken: true }, now);
    let conn = ns
        .drain_actions()
        .into_iter()
        .find_map(|a| match a {
            Action::Connect { conn, .. } => Some(conn),
            _ => None,
        })
        .expect("no connect to the router");
    ns.handle(Input::Connected { conn }, now);
    ns.drain_actions();
    (ns, conn)
}

fn page(n: usize, at: u64) -> Vec<(u64, SignedPresence)> {
    (0..n)
        .map(|i| {
            let disc = format!("{NS}-d-{:016x}", at + i as u64);
            (i as u64 + 1, record(&Identity::generate(), &disc, EPOCH_MS))
        })
        .collect()
}

fn closed_misbehaving(actions: &[Action], conn: ConnId, reason: &str) -> bool {
    actions.contains(&Action::Close { conn })
        && actions.iter().any(|a| {
            matches!(a, Action::Event(super::NsEvent::Misbehaved { reason: r, .. })
                if r.contains(reason))
        })
}

/// Review item 5: a router cannot grow a member's memory without bound, neither with a
/// snapshot that never ends nor with deltas of ever new records.
#[test]
fn a_lying_router_cannot_grow_a_members_view() {
    let t0 = Instant::now();
    let cap = 10;
    // A snapshot whose pages never say `last`.
    let (mut ns, conn) = member(t0, cap);
    let mut dropped = false;
    for i in 0..10 {
        let msg = Msg::Welcome {
            level: 1,
            records: page(5, i * 100),
            last: false,
        };
        ns.handle(
            Input::Data {
                conn,
                bytes: msg.encode(),
            },
            t0,
        );
        if closed_misbehaving(&ns.drain_actions(), conn, "snapshot too large") {
            dropped = true;
            break;
        }
    }
    assert!(dropped, "the endless snapshot was swallowed");
    // Deltas of new records after an honest-looking snapshot.
    let (mut ns, conn) = member(t0, cap);
    let msg = Msg::Welcome {
        level: 1,
        records: page(3, 0),
        last: true,
    };
    ns.handle(
        Input::Data {
            conn,
            bytes: msg.encode(),
        },
        t0,
    );
    assert_eq!(ns.role(), RoleKind::Member(1));
    let mut dropped = false;
    for i in 1..10 {
        let msg = Msg::Delta {
            added: page(5, i * 100),
            removed: vec![],
        };
        ns.handle(
            Input::Data {
                conn,
                bytes: msg.encode(),
            },
            t0,
        );
        assert!(ns.peers().len() <= cap + 2, "{} peers", ns.peers().len());
        if closed_misbehaving(&ns.drain_actions(), conn, "too many records") {
            dropped = true;
            break;
        }
    }
    assert!(dropped, "the delta flood was swallowed");
}

/// A router with one checked-in member; returns the member's connection.
fn router_with_member(now: Instant) -> (Namespace, ConnId) {
    let mut ns = router(now);
    let conn = ConnId::incoming(0);
    let disc = format!("{NS}-d-00000000000000cc");
    ns.handle(
        Input::Incoming {
            conn,
            local: ns.router_id(1),
            remote: disc.clone(),
        },
        now,
    );
    let rec = record(&Identity::generate(), &disc, EPOCH_MS);
    ns.handle(
        Input::Data {
            conn,
            bytes: check_in(&rec),
        },
        now,
    );
    ns.drain_actions();
    (ns, conn)
}

/// The router's registration of level 1 is lost and someone else claims it first: returns the
/// router's probe of the new holder.
fn lose_level_to_another(ns: &mut Namespace, now: Instant) -> ConnId {
    let id = ns.router_id(1);
    ns.handle(Input::Lost { id: id.clone() }, now);
    ns.drain_actions();
    let taken = true;
    ns.handle(
        Input::ClaimFailed {
            id: id.clone(),
            taken,
        },
        now,
    );
    ns.drain_actions()
        .into_iter()
        .find_map(|a| match a {
            Action::Connect { conn, to, .. } if to == id => Some(conn),
            _ => None,
        })
        .expect("no probe of the new holder")
}

/// Found by the network-fault tests: while the signaling server restarts, a router's
/// registration is lost. Claimed back, it is kept (it used to be released at once); taken by
/// a newcomer meanwhile, the router probes the holder and brings its members there (it used to
/// stay a second router nobody could find).
#[test]
fn a_router_that_lost_its_registration_keeps_or_merges_its_namespace() {
    let t0 = Instant::now();
    let id = |ns: &Namespace| ns.router_id(1);
    // Claimed back.
    let (mut ns, _) = router_with_member(t0);
    ns.handle(Input::Lost { id: id(&ns) }, t0);
    assert!(ns.drain_actions().contains(&Action::Claim { id: id(&ns) }));
    ns.handle(Input::Claimed { id: id(&ns) }, t0);
    let actions = ns.drain_actions();
    assert!(
        !actions.contains(&Action::Release { id: id(&ns) }),
        "{actions:?}"
    );
    assert_eq!(ns.role(), RoleKind::Router(1));

    // Taken meanwhile by a live router: merge into it.
    let (mut ns, member) = router_with_member(t0);
    let probe = lose_level_to_another(&mut ns, t0);
    ns.handle(Input::Connected { conn: probe }, t0);
    let actions = ns.drain_actions();
    assert!(actions.contains(&Action::Send {
        conn: member,
        bytes: Msg::Migrate { level: 1 }.encode()
    }));
    assert!(
        actions
            .iter()
            .any(|a| matches!(a, Action::Send { conn, bytes } if *conn == probe && bytes[0] == 1))
    );
    assert_eq!(ns.role(), RoleKind::Searching);

    // Taken by a registration that does not answer: the monitor claims it again.
    let (mut ns, _) = router_with_member(t0);
    let probe = lose_level_to_another(&mut ns, t0);
    let unavailable = false;
    ns.handle(
        Input::ConnectFailed {
            conn: probe,
            unavailable,
        },
        t0,
    );
    let mut now = t0;
    let mut reclaimed = false;
    for _ in 0..50 {
        now += Duration::from_millis(100);
        ns.handle_timeout(now);
        reclaimed |= ns.drain_actions().contains(&Action::Claim { id: id(&ns) });
    }
    assert!(reclaimed, "the lost level was never claimed again");
}

/// Found by the property test: a member whose connection closed and who checked in again
/// (same discovery ID) within one batch was announced as added, then removed, to the others,
/// who lost it for good. The batch now leaves out removals of IDs that are present again.
#[test]
fn a_member_that_reconnects_within_one_batch_stays_in_the_others_views() {
    let t0 = Instant::now();
    let (mut ns, watcher) = router_with_member(t0);
    let disc = format!("{NS}-d-00000000000000dd");
    let id = Identity::generate();
    let mut now = t0;
    for (i, conn) in [ConnId::incoming(1), ConnId::incoming(2)]
        .into_iter()
        .enumerate()
    {
        ns.handle(
            Input::Incoming {
                conn,
                local: ns.router_id(1),
                remote: disc.clone(),
            },
            now,
        );
        let rec = record(&id, &disc, EPOCH_MS + i as u64);
        ns.handle(
            Input::Data {
                conn,
                bytes: check_in(&rec),
            },
            now,
        );
        if i == 0 {
            ns.handle(Input::Closed { conn }, now);
        }
        now += Duration::from_millis(1);
    }
    // Run the batch and replay what the watcher hears, in order.
    let cache = VerifyCache::new(64);
    let mut view = std::collections::BTreeSet::new();
    now += NsConfig::default().batch_interval * 2;
    ns.handle_timeout(now);
    for a in ns.drain_actions() {
        let Action::Send { conn, bytes } = a else {
            continue;
        };
        if conn != watcher {
            continue;
        }
        if let Ok(Msg::Delta { added, removed }) = Msg::decode(&bytes, &cache) {
            view.extend(added.iter().map(|(_, r)| r.presence().disc_id.clone()));
            for d in removed {
                view.remove(&d);
            }
        }
    }
    assert!(
        view.contains(&disc),
        "the reconnected member vanished: {view:?}"
    );
}

#[test]
fn without_a_reachable_server_the_election_parks_until_our_discovery_id_opens() {
    let t0 = Instant::now();
    let mut ns = engine(5, t0);
    ns.start(t0);
    ns.drain_actions();
    // Nothing is ever answered (the server is out of reach): after the first claim's
    // deadline the engine parks with no timer but the record refresh, minutes away.
    let mut now = t0;
    for _ in 0..5 {
        let Some(t) = ns.poll_timeout() else { break };
        if t > now + Duration::from_secs(60) {
            break;
        }
        now = t;
        ns.handle_timeout(now);
    }
    assert_eq!(ns.role(), RoleKind::Searching);
    let parked = ns.poll_timeout().expect("the record refresh");
    assert!(parked > now + Duration::from_secs(60), "{:?}", parked - now);
    assert!(
        ns.drain_actions()
            .iter()
            .all(|a| !matches!(a, Action::Claim { .. }))
    );
    // Back online: our discovery ID opens, and the election starts over at once.
    now += Duration::from_secs(120);
    let disc = ns.disc_id().to_owned();
    ns.handle(Input::Claimed { id: disc }, now);
    assert_eq!(ns.poll_timeout(), Some(now));
    ns.handle_timeout(now);
    let level1 = ns.router_id(1);
    assert!(
        ns.drain_actions()
            .iter()
            .any(|a| matches!(a, Action::Claim { id } if *id == level1))
    );
    ns.handle(Input::Claimed { id: level1 }, now);
    assert_eq!(ns.role(), RoleKind::Router(1));
}

#[test]
fn a_knock_from_the_reverse_slot_makes_the_router_probe_it_at_once() {
    let t0 = Instant::now();
    let mut ns = router(t0);
    let slot = format!("{NS}-p1");
    let probes = |ns: &mut Namespace| {
        ns.drain_actions()
            .into_iter()
            .filter_map(|a| match a {
                Action::Connect { conn, to, .. } if to == slot => Some(conn),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    // A knock from any other ID is ignored.
    let stranger = format!("{NS}-d-0123456789abcdef");
    ns.handle(Input::Knock { from: stranger }, t0);
    assert!(probes(&mut ns).is_empty());
    // The slot's knock: a probe at once (the periodic one is 20 s away).
    ns.handle(Input::Knock { from: slot.clone() }, t0);
    let first = probes(&mut ns);
    assert_eq!(first.len(), 1);
    // Nobody is there after all; knocks within a second of that probe start none.
    let t1 = t0 + Duration::from_millis(300);
    ns.handle(
        Input::ConnectFailed {
            conn: first[0],
            unavailable: true,
        },
        t1,
    );
    ns.handle(Input::Knock { from: slot.clone() }, t1);
    assert!(probes(&mut ns).is_empty());
    let t2 = t0 + Duration::from_millis(1100);
    ns.handle(Input::Knock { from: slot.clone() }, t2);
    assert_eq!(probes(&mut ns).len(), 1);
}

#[test]
fn a_member_knocks_at_the_router_once_it_holds_the_reverse_slot() {
    let t0 = Instant::now();
    let mut ns = engine(2, t0);
    ns.start(t0);
    let disc = ns.disc_id().to_owned();
    ns.handle(Input::Claimed { id: disc }, t0);
    // Level 1 is taken; joining its router times out.
    let mut now = t0;
    ns.handle(
        Input::ClaimFailed {
            id: ns.router_id(1),
            taken: true,
        },
        now,
    );
    let slot = format!("{NS}-p1");
    let mut claimed_slot = false;
    for _ in 0..100 {
        now += Duration::from_millis(100);
        ns.handle_timeout(now);
        if ns
            .drain_actions()
            .iter()
            .any(|a| matches!(a, Action::Claim { id } if *id == slot))
        {
            claimed_slot = true;
            break;
        }
    }
    assert!(claimed_slot, "the member never tried the reverse slot");
    ns.handle(Input::Claimed { id: slot.clone() }, now);
    let knocks: Vec<Action> = ns
        .drain_actions()
        .into_iter()
        .filter(|a| matches!(a, Action::Knock { .. }))
        .collect();
    assert_eq!(
        knocks,
        vec![Action::Knock {
            from: slot,
            to: ns.router_id(1),
        }]
    );
}

/// Every action of `ns` at each `step_ms` step from `from` for `secs`, with its wall-clock
/// time; a probe of the reverse slot finds nobody there.
fn run_for(
    ns: &mut Namespace,
    (from, unix_from): (Instant, u64),
    secs: u64,
    step_ms: u64,
) -> Vec<(u64, Action)> {
    let slot = format!("{NS}-p1");
    let mut seen = vec![];
    for i in 1..=secs * 1000 / step_ms {
        let now = from + Duration::from_millis(step_ms * i);
        ns.handle_timeout(now);
        for a in ns.drain_actions() {
            if let Action::Connect { conn, to, .. } = &a
                && *to == slot
            {
                ns.handle(
                    Input::ConnectFailed {
                        conn: *conn,
                        unavailable: true,
                    },
                    now,
                );
            }
            seen.push((unix_from + step_ms * i, a));
        }
    }
    seen
}

#[test]
fn heartbeats_fall_on_the_wall_clock_grid() {
    let t0 = Instant::now();
    // Joined 130 ms after a point of the 0.8 s and 2.4 s grids (EPOCH_MS is one).
    let t0 = t0 + Duration::from_millis(130);
    let (mut ns, conn) = member(t0 - Duration::from_millis(130), 10);
    let welcome = Msg::Welcome {
        level: 1,
        records: page(1, 0),
        last: true,
    };
    ns.handle(
        Input::Data {
            conn,
            bytes: welcome.encode(),
        },
        t0,
    );
    assert_eq!(ns.role(), RoleKind::Member(1));
    ns.drain_actions();
    let unix0 = EPOCH_MS + 130;
    // The router beats too, every 0.8 s, so we keep it.
    let mut beats = vec![];
    for second in 0..10u64 {
        let from = t0 + Duration::from_secs(second);
        // Timers run late by up to 7 ms: the beats stay on the grid all the same.
        for (at, a) in run_for(&mut ns, (from, unix0 + second * 1000), 1, 7) {
            if let Action::Send { conn: c, bytes } = a
                && c == conn
                && bytes == Msg::Beat.encode()
            {
                beats.push(at);
            }
        }
        let heard = Input::Data {
            conn,
            bytes: Msg::Beat.encode(),
        };
        ns.handle(heard, from + Duration::from_secs(1));
    }
    assert_eq!(ns.role(), RoleKind::Member(1));
    // A member beats at the member pace (2.4 s), on that grid's points, which are also
    // points of the router's 0.8 s grid.
    assert!(beats.len() >= 3, "{beats:?}");
    assert!(beats.iter().all(|t| t % 2_400 < 7), "{beats:?}");
    assert!(beats.windows(2).all(|w| w[1] - w[0] < 2_410), "{beats:?}");
}

#[test]
fn a_router_probes_the_reverse_slot_on_the_grid_backing_off_more_in_the_background() {
    let t0 = Instant::now();
    let mut ns = router(t0);
    let slot = format!("{NS}-p1");
    let probes = |seen: Vec<(u64, Action)>| -> Vec<u64> {
        seen.into_iter()
            .filter(|(_, a)| matches!(a, Action::Connect { to, .. } if *to == slot))
            .map(|(at, _)| at)
            .collect()
    };
    let fg = probes(run_for(&mut ns, (t0, EPOCH_MS), 120, 10));
    // Finding nobody, the probes back off: 20 s, then 40 s apart or more.
    assert_eq!(fg.len(), 2, "{fg:?}");
    assert!(fg[1] - fg[0] >= 40_000, "{fg:?}");
    assert!(fg.iter().all(|t| t % 20_000 == 0), "{fg:?}");
    let t1 = t0 + Duration::from_secs(120);
    ns.set_active(false, t1);
    let bg = probes(run_for(&mut ns, (t1, EPOCH_MS + 120_000), 180, 10));
    // The probe already due (80 s after the last), then none: in the background they are
    // 60 s × 2ⁿ apart (here 480 s).
    assert_eq!(bg, [fg[1] + 80_000], "{bg:?}");
    // Back in the foreground the backoff starts over: within 20 s again.
    let t2 = t1 + Duration::from_secs(180);
    ns.set_active(true, t2);
    let again = probes(run_for(&mut ns, (t2, EPOCH_MS + 300_000), 20, 10));
    assert_eq!(again.len(), 1, "{again:?}");
}

/// Refusals count in a row only at one level and while they keep coming: one at another
/// level, or after a quiet window as long as the last backoff, starts over at 30 s; routing
/// at that level forgets it, going back to a higher one does not.
#[test]
fn refusals_count_in_a_row_only_at_one_level_and_while_they_keep_coming() {
    let t0 = Instant::now();
    let mut ns = router(t0);
    let at = |s: u64| t0 + Duration::from_secs(s);
    let wait = |ns: &Namespace, now: Instant| ns.refused.map(|(_, until, _)| until - now);
    ns.note_refusal(1, at(0));
    ns.note_refusal(1, at(35));
    assert_eq!(wait(&ns, at(35)), Some(Duration::from_secs(60)));
    // Another level: a fresh count.
    ns.note_refusal(2, at(40));
    assert_eq!(wait(&ns, at(40)), Some(Duration::from_secs(30)));
    ns.note_refusal(2, at(75));
    ns.note_refusal(2, at(140));
    assert_eq!(wait(&ns, at(140)), Some(Duration::from_secs(120)));
    // Quiet for the 2 min after the backoff ended: a fresh count.
    ns.note_refusal(2, at(140 + 120 + 121));
    assert_eq!(wait(&ns, at(381)), Some(Duration::from_secs(30)));
    // Routing above the refused level keeps it; at it, forgets it.
    ns.become_router(3, at(382));
    assert!(ns.refused.is_some());
    ns.become_router(2, at(383));
    assert_eq!(ns.refused, None);
}
