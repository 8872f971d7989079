//! Property tests of the namespace engine in the simulator: whatever the seed, the crowd size,
//! the loss, the jitter and the churn (phones joining, leaving, dying, partitions that heal),
//! once the churn stops the survivors converge to one router and full visibility.

use std::time::Duration;

use proptest::prelude::*;

use super::namespace::NsConfig;
use super::sim::{EngineId, Sim, SimConfig};

const NS: &str = "peerns2-ns-props";

/// Something that happens to the crowd.
#[derive(Debug, Clone)]
enum Churn {
    /// A new phone joins.
    Join,
    /// The phone at this index (among the live ones) leaves gracefully.
    Leave(usize),
    /// The phone at this index dies silently.
    Kill(usize),
    /// The live phones split in two (the index picks the cut) for a while.
    Partition(usize),
    /// The router leaves or dies (`true`: silently).
    RouterGoes(bool),
}

fn churn() -> impl Strategy<Value = Churn> {
    prop_oneof![
        3 => Just(Churn::Join),
        2 => any::<usize>().prop_map(Churn::Leave),
        2 => any::<usize>().prop_map(Churn::Kill),
        1 => any::<usize>().prop_map(Churn::Partition),
        2 => any::<bool>().prop_map(Churn::RouterGoes),
    ]
}

fn live(engines: &[EngineId], dead: &[EngineId]) -> Vec<EngineId> {
    engines
        .iter()
        .copied()
        .filter(|e| !dead.contains(e))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 64,
        max_shrink_iters: 20,
        ..ProptestConfig::default()
    })]

    #[test]
    fn churn_loss_and_reordering_converge_to_one_router(
        seed in any::<u64>(),
        start in 2usize..10,
        loss in 0.0f64..0.2,
        jitter_ms in 0u64..80,
        events in proptest::collection::vec((churn(), 50u64..3_000), 1..8),
    ) {
        let mut sim = Sim::new(SimConfig {
            seed,
            loss,
            jitter: Duration::from_millis(jitter_ms),
            ..SimConfig::default()
        });
        let mut engines = sim.crowd(NS, start, Duration::from_millis(20));
        let mut dead: Vec<EngineId> = vec![];
        for (event, gap_ms) in events {
            let alive = live(&engines, &dead);
            match event {
                Churn::Join => {
                    let p = sim.add_phone();
                    engines.push(sim.join(p, NS, NsConfig::default(), None));
                }
                // Keep at least two phones, so there is something to converge.
                Churn::Leave(i) | Churn::Kill(i) if alive.len() > 2 => {
                    let e = alive[i % alive.len()];
                    if matches!(event, Churn::Leave(_)) {
                        sim.leave(sim.phone_of(e));
                    } else {
                        sim.kill(sim.phone_of(e));
                    }
                    dead.push(e);
                }
                Churn::RouterGoes(silent) if alive.len() > 2 => {
                    if let Some(&r) = sim.routers(&alive).first() {
                        if silent {
                            sim.kill(sim.phone_of(r));
                        } else {
                            sim.leave(sim.phone_of(r));
                        }
                        dead.push(r);
                    }
                }
                Churn::Partition(cut) if alive.len() > 1 => {
                    let phones: Vec<usize> = alive.iter().map(|&e| sim.phone_of(e)).collect();
                    let k = 1 + cut % (phones.len() - 1);
                    sim.partition(&[&phones[..k], &phones[k..]]);
                    sim.run_for(Duration::from_millis(gap_ms));
                    sim.heal();
                }
                _ => {}
            }
            sim.run_for(Duration::from_millis(gap_ms));
        }
        let alive = live(&engines, &dead);
        // Dead routers' IDs stay registered for the server's alive timeout (60 s) and a
        // healed partition merges through the level monitor: allow for both.
        let took = sim.run_until_true(
            Duration::from_secs(120),
            Duration::from_millis(100),
            |s| s.converged(&alive),
        );
        prop_assert!(
            took.is_some(),
            "no convergence: routers {:?}, roles {:?}, views {:?}",
            sim.routers(&alive),
            alive.iter().map(|&e| sim.engine(e).role()).collect::<Vec<_>>(),
            alive
                .iter()
                .map(|&e| (sim.fingerprint(sim.phone_of(e)).short(), sim
                    .engine(e)
                    .peers()
                    .iter()
                    .map(|p| p.fingerprint.short())
                    .collect::<Vec<_>>()))
                .collect::<Vec<_>>()
        );
        // And it holds: 10 s later it is still (or, when the router just moved down a
        // level and its members hear of it one message later, again) converged.
        sim.run_for(Duration::from_secs(10));
        let holds = sim.run_until_true(
            Duration::from_secs(1),
            Duration::from_millis(50),
            |s| s.converged(&alive),
        );
        prop_assert!(holds.is_some());
    }
}
