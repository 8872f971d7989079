//! Simulator scenarios: the namespace engine under elections, failover, partitions, a full
//! stadium cell, geohash borders, floods and forged records.

use std::time::Duration;

use super::geo::{self, GeoPoint};
use super::msg::Msg;
use super::namespace::{NsConfig, RoleKind};
use super::presence::{GeoStamp, Presence, SignedPresence};
use super::sim::{EngineId, Sim, SimConfig};
use crate::identity::Identity;

const NS: &str = "peerns2-ns-test";

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

fn crowd(sim: &mut Sim, n: usize, gap: Duration) -> Vec<EngineId> {
    sim.crowd(NS, n, gap)
}

fn converge(sim: &mut Sim, engines: &[EngineId], limit: f64) -> Duration {
    let step = Duration::from_millis(if engines.len() > 50 { 100 } else { 10 });
    sim.run_until_true(secs(limit), step, |s| s.converged(engines))
        .unwrap_or_else(|| {
            panic!(
                "no convergence within {limit} s: routers {:?}, roles {:?}",
                sim.routers(engines),
                engines
                    .iter()
                    .map(|&e| sim.engine(e).role())
                    .collect::<Vec<_>>()
            )
        })
}

#[test]
fn two_claimants_at_once_elect_one_router() {
    for seed in 0..20 {
        let mut sim = Sim::new(SimConfig {
            seed,
            ..SimConfig::default()
        });
        let engines = crowd(&mut sim, 2, Duration::ZERO);
        converge(&mut sim, &engines, 5.0);
        let roles: Vec<RoleKind> = engines.iter().map(|&e| sim.engine(e).role()).collect();
        assert!(roles.contains(&RoleKind::Router(1)), "{roles:?}");
        assert!(roles.contains(&RoleKind::Member(1)), "{roles:?}");
    }
}

/// The router leaves (gracefully or silently) in a namespace of 8; returns how long the
/// others took to see each other again under one router, and checks it stays that way.
fn failover(seed: u64, silent: bool) -> Duration {
    let cfg = SimConfig {
        seed,
        ..SimConfig::default()
    };
    super::sim::failover_time(cfg, 8, silent).expect("no re-convergence")
}

fn p95(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[(v.len() * 95).div_ceil(100) - 1]
}

#[test]
fn graceful_router_exit_reconverges_fast() {
    let times: Vec<Duration> = (0..20).map(|s| failover(s, false)).collect();
    assert!(p95(times.clone()) <= secs(1.5), "{times:?}");
}

#[test]
fn silent_router_death_reconverges() {
    let times: Vec<Duration> = (0..20).map(|s| failover(s, true)).collect();
    assert!(p95(times.clone()) <= secs(3.5), "{times:?}");
}

/// Review item 3: members re-join with a record signed at that moment, however long ago they
/// first signed one (a router refuses check-ins older than 60 s).
#[test]
fn router_dying_minutes_after_everyone_joined_reconverges() {
    for minutes in [5, 30] {
        for silent in [false, true] {
            let times: Vec<Duration> = (0..5)
                .map(|seed| {
                    let cfg = SimConfig {
                        seed,
                        ..SimConfig::default()
                    };
                    let settle = secs(60.0 * f64::from(minutes));
                    super::sim::failover_time_after(cfg, 8, silent, settle).unwrap_or_else(|| {
                        panic!("no re-convergence {minutes} min after joining, silent {silent}")
                    })
                })
                .collect();
            let goal = if silent { secs(3.5) } else { secs(1.5) };
            assert!(
                times.iter().all(|t| *t <= goal),
                "{minutes} min, silent {silent}: {times:?}"
            );
        }
    }
}

#[test]
fn partition_then_heal_gives_one_router() {
    let mut sim = Sim::new(SimConfig::default());
    let engines = crowd(&mut sim, 6, Duration::from_millis(30));
    converge(&mut sim, &engines, 5.0);
    let router = sim.routers(&engines)[0];
    let (a, b): (Vec<usize>, Vec<usize>) = (0..6).partition(|&p| (p == router) || p % 2 == 0);
    sim.partition(&[&a, &b]);
    // The side without the router elects its own.
    sim.run_until_true(secs(10.0), Duration::from_millis(20), |s| {
        s.routers(&b).len() == 1 && s.all_see_each_other(&b)
    })
    .expect("the cut-off side found no router");
    assert_eq!(sim.routers(&engines).len(), 2);
    sim.heal();
    // The level monitor merges the split: one router for everyone again.
    converge(&mut sim, &engines, 30.0);
    assert_eq!(sim.routers(&engines).len(), 1);
}

#[test]
fn five_hundred_phones_in_one_cell() {
    let mut sim = Sim::new(SimConfig::default());
    // Arrivals over 5 s, as at a stadium gate.
    let engines = crowd(&mut sim, 500, Duration::from_millis(10));
    let took = converge(&mut sim, &engines, 20.0);
    assert!(sim.elapsed() <= secs(15.0), "{:?} {took:?}", sim.elapsed());
    // Traffic per member is linear in N (one record per peer), not quadratic.
    let router = sim.routers(&engines)[0];
    let out = sim.engine(router).stats().bytes_out;
    let per_member = out / 499;
    let record = 220; // bytes per record on the wire, roughly
    assert!(
        per_member < 500 * record * 3,
        "router sent {per_member} bytes per member"
    );
}

#[test]
fn loss_and_jitter_still_converge() {
    let mut sim = Sim::new(SimConfig {
        loss: 0.05,
        jitter: Duration::from_millis(40),
        ..SimConfig::default()
    });
    let engines = crowd(&mut sim, 20, Duration::from_millis(20));
    converge(&mut sim, &engines, 10.0);
}

/// Phones a few metres apart across a border join their enrollment cells and see each other.
fn neighbours_across(a: GeoPoint, b: GeoPoint) {
    let mut sim = Sim::new(SimConfig::default());
    let mut phones = vec![];
    for pos in [a, b] {
        let p = sim.add_phone();
        let stamp = GeoStamp {
            lat: pos.lat,
            lon: pos.lon,
            accuracy_m: 5.0,
        };
        for cell in geo::enrollment_cells(pos, geo::DEFAULT_RADIUS_M) {
            sim.join(
                p,
                &format!("peerns2-geo-{cell}"),
                NsConfig::default(),
                Some(stamp),
            );
        }
        phones.push(p);
    }
    assert_ne!(geo::cell_of(a), geo::cell_of(b), "not across a border");
    sim.run_until_true(secs(5.0), Duration::from_millis(10), |s| {
        s.phone_view(phones[0])
            .contains_key(&s.fingerprint(phones[1]))
            && s.phone_view(phones[1])
                .contains_key(&s.fingerprint(phones[0]))
    })
    .expect("the phones never saw each other");
    let seen = sim.phone_view(phones[0]);
    let other = &seen[&sim.fingerprint(phones[1])];
    let g = other.geo.expect("coordinates in the record");
    let d = geo::distance_m(a, GeoPoint::new(g.lat, g.lon).unwrap());
    assert!(d < 20.0, "{d} m");
}

#[test]
fn neighbours_across_borders_see_each_other() {
    let p = |lat, lon| GeoPoint::new(lat, lon).unwrap();
    // The equator (also a precision-7 cell border), the antimeridian, the prime meridian.
    neighbours_across(p(0.00002, 10.0), p(-0.00002, 10.0));
    neighbours_across(p(10.0, 179.99998), p(10.0, -179.99998));
    neighbours_across(p(51.4779, 0.00003), p(51.4779, -0.00003));
    // A cell corner: diagonal neighbours.
    let bbox = geohash::decode_bbox(&geo::cell_of(p(48.8584, 2.2945))).unwrap();
    let (clat, clon) = (bbox.max().y, bbox.max().x);
    neighbours_across(
        p(clat - 0.00003, clon - 0.00003),
        p(clat + 0.00003, clon + 0.00003),
    );
}

#[test]
fn a_flooding_member_is_dropped_and_the_router_keeps_serving() {
    let mut sim = Sim::new(SimConfig::default());
    let engines = crowd(&mut sim, 5, Duration::from_millis(30));
    converge(&mut sim, &engines, 5.0);
    let router = sim.routers(&engines)[0];
    let rid = sim.engine(router).router_id(1);
    // 1,000 garbage messages and 1,000 beats on one connection: dropped after the burst.
    let garbage: Vec<Vec<u8>> = (0..1000).map(|i| vec![0xee, i as u8]).collect();
    sim.inject(router, &rid, "peerns2-ns-test-d-evil1", garbage);
    let beats: Vec<Vec<u8>> = (0..1000).map(|_| Msg::Beat.encode()).collect();
    sim.inject(router, &rid, "peerns2-ns-test-d-evil2", beats);
    let reasons = &sim.observed(router).misbehaved;
    assert!(
        reasons.iter().any(|r| r.contains("malformed")),
        "{reasons:?}"
    );
    assert!(reasons.iter().any(|r| r.contains("flood")), "{reasons:?}");
    // The namespace still works: a newcomer joins and everyone sees it.
    let mut all = engines.clone();
    all.extend(crowd(&mut sim, 1, Duration::ZERO));
    converge(&mut sim, &all, 5.0);
}

#[test]
fn registry_is_capped() {
    let mut sim = Sim::new(SimConfig::default());
    let cfg = NsConfig {
        registry_cap: 5,
        ..NsConfig::default()
    };
    let mut engines = vec![];
    for _ in 0..9 {
        let p = sim.add_phone();
        engines.push(sim.join(p, NS, cfg.clone(), None));
        sim.run_for(Duration::from_millis(50));
    }
    sim.run_for(secs(5.0));
    let router = sim.routers(&engines)[0];
    assert!(sim.engine(router).peers().len() <= 5);
    assert!(
        sim.observed(router)
            .misbehaved
            .iter()
            .any(|r| r.contains("full"))
    );
}

#[test]
fn forged_and_replayed_records_are_refused() {
    let mut sim = Sim::new(SimConfig::default());
    let engines = crowd(&mut sim, 3, Duration::from_millis(30));
    converge(&mut sim, &engines, 5.0);
    let router = sim.routers(&engines)[0];
    let rid = sim.engine(router).router_id(1);
    let before = sim.engine(router).peers().len();
    let now_ms = 1_800_000_000_000 + sim.elapsed().as_millis() as u64;
    let mallory = Identity::generate();
    let rec = |id: &Identity, disc: &str, ns: &str, at: u64| {
        SignedPresence::sign(
            id,
            Presence {
                namespace: ns.into(),
                disc_id: disc.into(),
                key: [0; 32],
                issued_ms: at,
                name: "mallory".into(),
                geo: None,
                note: vec![],
            },
        )
    };
    // A record whose signature does not match (a bit flipped in the name).
    let mut forged =
        Msg::CheckIn(Box::new(rec(&mallory, "peerns2-ns-test-d-m1", NS, now_ms))).encode();
    let i = forged.len() - 70;
    forged[i] ^= 1;
    sim.inject(router, &rid, "peerns2-ns-test-d-m1", vec![forged]);
    // A stale record (an old capture).
    let stale = rec(&mallory, "peerns2-ns-test-d-m2", NS, now_ms - 3_600_000);
    sim.inject(
        router,
        &rid,
        "peerns2-ns-test-d-m2",
        vec![Msg::CheckIn(Box::new(stale)).encode()],
    );
    // A record for another namespace, and one for another discovery ID.
    let other_ns = rec(&mallory, "peerns2-ns-test-d-m3", "peerns2-ns-other", now_ms);
    sim.inject(
        router,
        &rid,
        "peerns2-ns-test-d-m3",
        vec![Msg::CheckIn(Box::new(other_ns)).encode()],
    );
    let other_id = rec(&mallory, "peerns2-ns-test-d-victim", NS, now_ms);
    sim.inject(
        router,
        &rid,
        "peerns2-ns-test-d-m4",
        vec![Msg::CheckIn(Box::new(other_id)).encode()],
    );
    // Replay: a member's own record captured earlier, presented again after it re-signed.
    let member = engines.iter().copied().find(|&e| e != router).unwrap();
    let old = rec(&mallory, "peerns2-ns-test-d-m5", NS, now_ms - 1_000);
    let newer = rec(&mallory, "peerns2-ns-test-d-m5", NS, now_ms);
    sim.inject(
        router,
        &rid,
        "peerns2-ns-test-d-m5",
        vec![Msg::CheckIn(Box::new(newer)).encode()],
    );
    sim.inject(
        router,
        &rid,
        "peerns2-ns-test-d-m5",
        vec![Msg::CheckIn(Box::new(old)).encode()],
    );
    let reasons = sim.observed(router).misbehaved.clone();
    for want in [
        "bad signature",
        "stale",
        "another namespace",
        "another discovery id",
        "replayed",
    ] {
        assert!(
            reasons.iter().any(|r| r.contains(want)),
            "{want}: {reasons:?}"
        );
    }
    // Only the one valid check-in (m5's newer record) entered the registry.
    assert_eq!(sim.engine(router).peers().len(), before + 1);
    let _ = member;
}

#[test]
fn after_a_silent_death_the_namespace_returns_to_level_one_and_stays() {
    let mut sim = Sim::new(SimConfig::default());
    let engines = crowd(&mut sim, 6, Duration::from_millis(30));
    converge(&mut sim, &engines, 5.0);
    let router = sim.routers(&engines)[0];
    sim.kill(sim.phone_of(router));
    let rest: Vec<EngineId> = engines.iter().copied().filter(|&e| e != router).collect();
    converge(&mut sim, &rest, 10.0);
    // The dead router's ID is still registered: the new router sits one level up.
    let new_router = sim.routers(&rest)[0];
    assert_eq!(sim.engine(new_router).role(), RoleKind::Router(2));
    // Once the server's alive timeout frees level 1, the monitor moves everyone back down
    // (at its next round: they are 5, 10, 20, 40 s apart while level 1 does not answer).
    sim.run_for(secs(100.0));
    assert_eq!(sim.routers(&rest).len(), 1);
    let r = sim.routers(&rest)[0];
    assert_eq!(sim.engine(r).role(), RoleKind::Router(1));
    assert!(sim.all_see_each_other(&rest));
    for &e in &rest {
        if e != r {
            assert_eq!(sim.engine(e).role(), RoleKind::Member(1));
        }
    }
    // And it stays there: no oscillation.
    let roles_before: Vec<usize> = rest.iter().map(|&e| sim.observed(e).roles.len()).collect();
    sim.run_for(secs(120.0));
    let roles_after: Vec<usize> = rest.iter().map(|&e| sim.observed(e).roles.len()).collect();
    assert_eq!(roles_before, roles_after);
    assert!(sim.converged(&rest));
}

#[test]
fn a_phone_that_cannot_connect_out_joins_through_the_reverse_slot() {
    let mut sim = Sim::new(SimConfig::default());
    let mut engines = crowd(&mut sim, 3, Duration::from_millis(30));
    converge(&mut sim, &engines, 5.0);
    let p = sim.add_phone();
    sim.block_outgoing(p);
    let newcomer = sim.join(p, NS, NsConfig::default(), None);
    engines.push(newcomer);
    // Its connect to level 1 fails; it holds the `-p1` slot and knocks, and the level-1 router
    // probes the slot at once (its periodic probe is 20 s apart).
    let took = sim
        .run_until_true(secs(20.0), Duration::from_millis(50), |s| {
            s.engine(newcomer).role() == RoleKind::Member(1)
        })
        .expect("the newcomer never joined level 1");
    // The join timeout (2 s), then the slot: nowhere near the periodic probe.
    assert!(took <= secs(5.0), "{took:?}");
    converge(&mut sim, &engines, 20.0);
    let router = sim.routers(&engines)[0];
    assert_eq!(sim.engine(router).role(), RoleKind::Router(1));
    assert_eq!(
        sim.engine(*engines.last().unwrap()).role(),
        RoleKind::Member(1)
    );
}

#[test]
fn a_member_that_goes_silent_is_evicted() {
    let mut sim = Sim::new(SimConfig::default());
    let engines = crowd(&mut sim, 5, Duration::from_millis(30));
    converge(&mut sim, &engines, 5.0);
    let router = sim.routers(&engines)[0];
    let victim = engines.iter().copied().find(|&e| e != router).unwrap();
    sim.kill(sim.phone_of(victim));
    let gone = sim.fingerprint(sim.phone_of(victim));
    let rest: Vec<EngineId> = engines.iter().copied().filter(|&e| e != victim).collect();
    let took = sim
        .run_until_true(secs(20.0), Duration::from_millis(50), |s| {
            rest.iter().all(|&e| !s.engine(e).knows(&gone))
        })
        .expect("the silent member was never dropped");
    // Evicted after the missed beats (4 × 2.4 s, the member pace, from its last beat up to
    // one pace before it died) on a router beat, plus a batch: not before, not much later.
    assert!(took >= secs(7.0) && took <= secs(11.0), "{took:?}");
    assert!(sim.converged(&rest));
}

#[test]
fn background_phones_beat_slower_and_are_not_dropped_for_it() {
    let mut sim = Sim::new(SimConfig::default());
    let engines = crowd(&mut sim, 4, Duration::from_millis(30));
    converge(&mut sim, &engines, 5.0);
    // Every phone, the router included, goes to the background for 30 s.
    for &e in &engines {
        sim.set_active(sim.phone_of(e), false);
    }
    let router = sim.routers(&engines)[0];
    let before: Vec<usize> = engines
        .iter()
        .map(|&e| sim.observed(e).roles.len())
        .collect();
    sim.run_for(secs(30.0));
    assert!(sim.converged(&engines));
    let after: Vec<usize> = engines
        .iter()
        .map(|&e| sim.observed(e).roles.len())
        .collect();
    assert_eq!(before, after, "no failover, no re-join");
    assert_eq!(sim.routers(&engines), vec![router]);
    // Beats every 10 s instead of 0.8 s: about twelve times less traffic.
    let sent = sim.engine(router).stats().msgs_out;
    sim.run_for(secs(30.0));
    let per_30s = sim.engine(router).stats().msgs_out - sent;
    assert!(per_30s <= 3 * 4, "{per_30s} messages in 30 s");
    // A background member that dies is still noticed, later: 4 × 10 s after it was last
    // heard (up to one beat before it died), on a beat of the router.
    let victim = engines.iter().copied().find(|&e| e != router).unwrap();
    sim.kill(sim.phone_of(victim));
    let gone = sim.fingerprint(sim.phone_of(victim));
    let took = sim
        .run_until_true(secs(70.0), Duration::from_millis(100), |s| {
            !s.engine(router).knows(&gone)
        })
        .expect("never evicted");
    assert!(took >= secs(30.0) && took <= secs(51.0), "{took:?}");
}
