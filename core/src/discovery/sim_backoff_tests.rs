//! Simulator scenarios for the routers' periodic looks (level monitor, lost level, reverse
//! slot): they back off while they find nobody, and still find whoever comes.

use std::time::Duration;

use super::namespace::{NsConfig, RoleKind};
use super::sim::{EngineId, Sim, SimConfig};

const NS: &str = "peerns2-ns-test";

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// How many times engine `e` claimed or connected to `id` from `from` on.
fn count(list: &[(Duration, String)], id: &str, from: Duration) -> usize {
    list.iter().filter(|(t, i)| *t >= from && i == id).count()
}

/// A router at level 2 whose level 1 stays held by a dead phone's registration (a server
/// that keeps IDs for an hour), with `n` members.
fn stuck_at_level_two(sim: &mut Sim, n: usize) -> (EngineId, Vec<EngineId>) {
    let engines = sim.crowd(NS, n + 2, Duration::from_millis(30));
    sim.run_for(secs(5.0));
    let router = sim.routers(&engines)[0];
    sim.kill(sim.phone_of(router));
    let rest: Vec<EngineId> = engines.iter().copied().filter(|&e| e != router).collect();
    sim.run_until_true(secs(15.0), Duration::from_millis(10), |s| {
        s.converged(&rest)
    })
    .expect("no failover");
    let r = sim.routers(&rest)[0];
    assert_eq!(sim.engine(r).role(), RoleKind::Router(2));
    (r, rest)
}

/// The level-2 monitor looks at level 1 every 5 s at first, then less often while level 1
/// stays unreachable (a stale registration), and in the background less often still; once
/// level 1 frees, everyone is back there within one backed-off round.
#[test]
fn the_level_monitor_backs_off_while_the_lower_level_stays_unreachable() {
    let mut sim = Sim::new(SimConfig {
        alive_timeout: Duration::from_secs(3600),
        ..SimConfig::default()
    });
    let (r, rest) = stuck_at_level_two(&mut sim, 3);
    let level1 = format!("{NS}-1");
    let from = sim.elapsed();
    sim.run_for(secs(600.0));
    let claims = count(&sim.observed(r).claims, &level1, from);
    // 5 s apart without backoff (~120 in 10 min; ~50 with the 10 s connect timeouts of the
    // probes in between); doubling from 5 s to 160 s: about 9.
    assert!((5..=12).contains(&claims), "{claims} claims of level 1");
    assert!(sim.converged(&rest));
    // In the background the rounds are four times further apart.
    for &e in &rest {
        sim.set_active(sim.phone_of(e), false);
    }
    let from = sim.elapsed();
    sim.run_for(secs(1800.0));
    let claims = count(&sim.observed(r).claims, &level1, from);
    assert!(
        (1..=4).contains(&claims),
        "{claims} background claims of level 1"
    );
    assert!(sim.converged(&rest));
}

/// A level-1 router alone probes the reverse slot every 20 s at first, then less often while
/// nobody is there; a phone that can only be reached through the slot knocks and is probed at
/// once, however long the router was alone.
#[test]
fn a_lone_router_backs_off_its_slot_probes_and_a_knock_still_brings_it() {
    let mut sim = Sim::new(SimConfig::default());
    let engines = sim.crowd(NS, 1, Duration::from_millis(30));
    sim.run_for(secs(5.0));
    let router = engines[0];
    assert_eq!(sim.engine(router).role(), RoleKind::Router(1));
    let slot = format!("{NS}-p1");
    sim.run_for(secs(1800.0));
    let probes = count(&sim.observed(router).connects, &slot, Duration::ZERO);
    // Every 20 s would be 90; doubling from 20 s to 160 s: about 14.
    assert!((8..=16).contains(&probes), "{probes} slot probes");
    let p = sim.add_phone();
    sim.block_outgoing(p);
    let newcomer = sim.join(p, NS, NsConfig::default(), None);
    let took = sim
        .run_until_true(secs(20.0), Duration::from_millis(50), |s| {
            s.engine(newcomer).role() == RoleKind::Member(1)
        })
        .expect("the newcomer never joined");
    assert!(took <= secs(5.0), "{took:?}");
    // Having found someone, the router probes at the starting pace again.
    let from = sim.elapsed();
    sim.run_for(secs(45.0));
    let probes = count(&sim.observed(router).connects, &slot, from);
    assert!(probes >= 1, "no probe in 45 s after a knock");
}

/// A level-1 router whose clock is 5 minutes ahead refuses every check-in (the records look
/// stale to it, and it closes the connection). The others gather at level 2; their router's monitor finds level 1 held by a
/// live router and would bring everyone there, be refused, and start over every few seconds.
/// It remembers the refusal instead and tries again only after a backoff.
#[test]
fn a_router_that_refuses_everyone_is_not_migrated_to_again_and_again() {
    let mut sim = Sim::new(SimConfig::default());
    let p = sim.add_phone();
    let skewed = sim.join_ahead(p, NS, NsConfig::default(), None, secs(300.0));
    sim.run_for(secs(3.0));
    assert_eq!(sim.engine(skewed).role(), RoleKind::Router(1));
    let others = sim.crowd(NS, 3, Duration::from_millis(30));
    sim.run_until_true(secs(20.0), Duration::from_millis(10), |s| {
        s.converged(&others)
    })
    .expect("the others never gathered");
    let from = sim.elapsed();
    sim.run_for(secs(600.0));
    let changes: usize = others
        .iter()
        .map(|&e| {
            sim.observed(e)
                .roles
                .iter()
                .filter(|(t, _)| *t >= from)
                .count()
        })
        .sum();
    // Without the backoff: a migration and a re-election every monitor round (5 s), ~840
    // role changes in 10 min. With it: 30 s, 60 s, ... apart (and the monitor backs off too).
    assert!(changes <= 60, "{changes} role changes in 10 minutes");
    assert!(sim.converged(&others));
}

/// A router at level 2 migrating its members to level 1 loses its own link each time before
/// the welcome (a network blip), three times. Those closes are no refusals: its next monitor
/// round brings it to level 1 (counted as refusals, they kept it away 30 s, 60 s, then 2 min).
/// The level-1 router cannot call the reverse slot back (its NAT), so migrating is the only way.
#[test]
fn network_blips_while_migrating_leave_no_long_backoff() {
    let mut sim = Sim::new(SimConfig::default());
    let a = sim.add_phone();
    sim.block_outgoing(a);
    let first = sim.join(a, NS, NsConfig::default(), None);
    sim.run_for(secs(3.0));
    assert_eq!(sim.engine(first).role(), RoleKind::Router(1));
    let phones: Vec<usize> = (0..3).map(|_| sim.add_phone()).collect();
    sim.partition(&[&[a], &phones]);
    let others: Vec<EngineId> = phones
        .iter()
        .map(|&p| sim.join(p, NS, NsConfig::default(), None))
        .collect();
    sim.run_until_true(secs(60.0), Duration::from_millis(10), |s| {
        s.converged(&others)
    })
    .expect("the others never gathered");
    let mover = sim.routers(&others)[0];
    assert_eq!(sim.engine(mover).role(), RoleKind::Router(2));
    sim.heal();
    for blip in 0..3 {
        sim.run_until_true(secs(300.0), Duration::from_millis(1), |s| {
            s.engine(mover).role() == RoleKind::Searching
        })
        .unwrap_or_else(|| panic!("no migration before blip {blip}"));
        sim.blip(sim.phone_of(mover));
        sim.run_until_true(secs(5.0), Duration::from_millis(10), |s| {
            s.engine(mover).role() == RoleKind::Router(2)
        })
        .unwrap_or_else(|| panic!("not back at level 2 after blip {blip}"));
    }
    let took = sim
        .run_until_true(secs(600.0), Duration::from_millis(10), |s| {
            s.engine(mover).role() == RoleKind::Member(1)
        })
        .expect("never joined level 1");
    assert!(
        took < secs(20.0),
        "joined level 1 only {took:?} after the last blip"
    );
}
