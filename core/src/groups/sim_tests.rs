//! Simulator scenarios: big groups under churn, loss and router kills converge to one
//! history; removed members stop receiving.

use std::collections::BTreeSet;
use std::time::Duration;

use super::engine::EngineConfig;
use super::log::LogOp;
use super::sim::{Inbox, Sim, SimConfig};

/// Every online member holds the same history, in the same order, which is exactly the set
/// of messages sent; every node heard each message at most once.
fn assert_converged(sim: &Sim) {
    let expected: BTreeSet<String> = sim.sent.iter().cloned().collect();
    let reference = sim.history_of(0);
    let held: BTreeSet<String> = reference.iter().cloned().collect();
    assert_eq!(
        (
            expected.difference(&held).count(),
            held.difference(&expected).count()
        ),
        (0, 0),
        "node 0: (missing, extra) messages"
    );
    assert_eq!(
        reference.len(),
        expected.len(),
        "duplicates in node 0's history"
    );
    for i in 1..sim.nodes.len() {
        assert_eq!(sim.history_of(i), reference, "node {i} differs");
    }
    for (i, n) in sim.nodes.iter().enumerate() {
        let unique: BTreeSet<&String> = n.heard.iter().collect();
        assert_eq!(
            unique.len(),
            n.heard.len(),
            "node {i} heard a message twice"
        );
    }
}

fn churn_run(seed: u64, members: usize, secs: u64, loss: f64) -> Sim {
    let cfg = SimConfig {
        loss,
        ..SimConfig::default()
    };
    let mut sim = Sim::new(members, seed, cfg, EngineConfig::default());
    let mut sent = 0;
    for tick in 0..secs * 10 {
        // A message every 100 ms from a random member.
        let i = sim.rand(members);
        sent += usize::from(sim.send(i, &format!("m{tick} from {i}")));
        if tick % 10 == 5 {
            // Churn: one member goes, one comes back.
            let k = sim.rand(members);
            sim.kill(k);
            let r = sim.rand(members);
            sim.revive(r);
        }
        if tick % 50 == 25 {
            // The router is killed without warning every 5 s.
            if let Some(r) = sim.router {
                sim.kill(r);
            }
        }
        sim.run(Duration::from_millis(100));
    }
    assert!(
        sent > (secs * 10 / 2) as usize,
        "most sends must succeed ({sent})"
    );
    // Heal: no loss, everyone back, time to sync.
    sim.set_loss(0.0);
    for i in 0..members {
        sim.revive(i);
    }
    sim.run(Duration::from_secs(30));
    sim
}

#[test]
fn fifty_members_with_churn_loss_and_router_kills_converge() {
    for seed in 1..=3 {
        let sim = churn_run(seed, 50, 40, 0.05);
        assert_converged(&sim);
        assert!(sim.sent.len() > 150, "seed {seed}: {} sent", sim.sent.len());
    }
}

#[test]
fn heavy_loss_still_converges() {
    // Seeds 8, 9 and 12 converge too, but their churn leaves fewer than half the sends online.
    let sim = churn_run(10, 12, 30, 0.3);
    assert_converged(&sim);
}

#[test]
fn same_seed_same_run() {
    let a = churn_run(5, 10, 10, 0.1);
    let b = churn_run(5, 10, 10, 0.1);
    assert_eq!(a.history_of(0), b.history_of(0));
    assert_eq!(a.delivered, b.delivered);
}

#[test]
fn removed_member_receives_nothing_after_removal_and_cannot_post() {
    let mut sim = Sim::new(6, 3, SimConfig::default(), EngineConfig::default());
    sim.run(Duration::from_secs(3));
    for i in 0..6 {
        assert!(sim.send(i, &format!("before {i}")));
    }
    sim.run(Duration::from_secs(3));
    let victim = 5;
    let fp = sim.nodes[victim].identity.fingerprint();
    let cutoff = sim.nodes[victim].engine.version_vector().get(&fp);
    sim.propose(0, LogOp::Remove { member: fp, cutoff });
    sim.run(Duration::from_secs(3));
    assert!(sim.nodes[0].engine.log().state().gone.contains_key(&fp));
    let held_before = sim.history_of(victim).len();
    for i in 0..5 {
        assert!(sim.send(i, &format!("after {i}")));
    }
    // The removed member's own sends are refused locally, and anything it pushes is refused.
    assert!(!sim.send(victim, "let me in"));
    sim.run(Duration::from_secs(5));
    assert_eq!(
        sim.history_of(victim).len(),
        held_before,
        "nothing new reached the removed member"
    );
    // Even across router changes it gets nothing.
    if let Some(r) = sim.router {
        sim.kill(r);
        sim.run(Duration::from_secs(5));
        sim.revive(r);
    }
    sim.run(Duration::from_secs(5));
    assert_eq!(sim.history_of(victim).len(), held_before);
    for i in 0..5 {
        assert_eq!(sim.history_of(i).len(), held_before + 5, "member {i}");
    }
}

#[test]
fn a_removed_member_that_wins_the_election_is_refused_as_router() {
    let mut sim = Sim::new(5, 4, SimConfig::default(), EngineConfig::default());
    sim.run(Duration::from_secs(3));
    let router = sim.router.expect("a router");
    let victim = (1..5).find(|i| *i != router).unwrap();
    let admin = (0..5).find(|i| *i != router && *i != victim).unwrap();
    // The victim is offline while it is removed, so it never learns.
    sim.kill(victim);
    let fp = sim.nodes[victim].identity.fingerprint();
    if admin != 0 {
        sim.propose(0, LogOp::Promote(sim.nodes[admin].identity.fingerprint()));
        sim.run(Duration::from_secs(1));
    }
    sim.propose(
        admin,
        LogOp::Remove {
            member: fp,
            cutoff: 0,
        },
    );
    sim.run(Duration::from_secs(3));
    assert!(
        !sim.nodes[victim]
            .engine
            .log()
            .state()
            .gone
            .contains_key(&fp)
    );
    // It comes back just as the router dies, and takes the router slot.
    sim.forced = Some(victim);
    sim.kill(router);
    sim.revive(victim);
    sim.revive(router);
    sim.run(Duration::from_secs(10));
    assert!(sim.banned.contains(&victim), "members refused it");
    let new_router = sim.router.expect("another router was elected");
    assert_ne!(new_router, victim);
    let before = sim.history_of(victim).len();
    assert!(sim.send(admin, "after"));
    sim.run(Duration::from_secs(3));
    assert_eq!(sim.history_of(victim).len(), before);
    for i in (0..5).filter(|i| *i != victim) {
        assert_eq!(sim.history_of(i).len(), 1, "member {i}");
    }
}

/// Every member sends `each` messages at once into inboxes as bounded as the live driver's;
/// returns the virtual seconds until every member stored all of them (`None`: not in 120 s).
fn burst_run(seed: u64, members: usize, each: usize) -> (Sim, Option<u64>) {
    let cfg = SimConfig {
        inbox: Some(Inbox {
            capacity: 4096,
            per_msg: Duration::from_micros(200),
            per_send: Duration::from_micros(50),
        }),
        ..SimConfig::default()
    };
    let mut sim = Sim::new(members, seed, cfg, EngineConfig::default());
    sim.run(Duration::from_secs(3));
    for k in 0..each {
        for i in 0..members {
            assert!(sim.send(i, &format!("m{k} from {i}")), "send {k} of {i}");
        }
    }
    let total = members * each;
    for secs in 1..=120 {
        sim.run(Duration::from_secs(1));
        if (0..members).all(|i| sim.history_of(i).len() == total) {
            return (sim, Some(secs));
        }
    }
    (sim, None)
}

#[test]
fn a_burst_from_every_member_is_delivered_quickly() {
    let (sim, secs) = burst_run(11, 8, 1500);
    let stored: Vec<usize> = (0..8).map(|i| sim.history_of(i).len()).collect();
    eprintln!(
        "burst: {secs:?} s, stored {stored:?}, {} frames, {} overflowed",
        sim.delivered, sim.overflowed
    );
    let secs = secs.expect("every member stored every message within 120 s");
    assert!(secs <= 30, "full delivery took {secs} s");
    assert_converged(&sim);
}
