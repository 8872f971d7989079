//! Stadium mode at the node: what leaves the phone and what stays on it.

use std::time::Duration;

use super::platform::LocationFix;
use super::tests::{befriend, config, server, started, until};
use super::*;
use crate::discovery::presence::GeoStamp;

/// Every file under `dir`, recursively.
pub(super) fn files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![];
    let mut todo = vec![dir.to_owned()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// The ways a coordinate could sit in a file: as text (to 4 decimals, ≈ 11 m) and as a
/// binary double or float in either byte order.
fn needles(v: f64) -> Vec<Vec<u8>> {
    vec![
        format!("{v:.4}").into_bytes(),
        v.to_le_bytes().to_vec(),
        v.to_be_bytes().to_vec(),
        (v as f32).to_le_bytes().to_vec(),
        (v as f32).to_be_bytes().to_vec(),
    ]
}

/// Review item 2: coordinates live in memory only — after a stadium session with a peer
/// nearby, no file of either profile (database, WAL, key file, anything) holds one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coordinates_are_never_written_to_the_profile() {
    let server = server().await;
    let url = server.url();
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = started(config(da.path(), &url, Some("ada"))).await.unwrap();
    let b = started(config(db.path(), &url, Some("bob"))).await.unwrap();
    let fixes = [
        LocationFix {
            latitude: 48.858_370_2,
            longitude: 2.294_481_3,
            accuracy_m: 4.0,
        },
        LocationFix {
            latitude: 48.858_411_7,
            longitude: 2.294_533_9,
            accuracy_m: 6.0,
        },
    ];
    for (node, fix) in [(&a, fixes[0]), (&b, fixes[1])] {
        node.start_stadium(Default::default()).unwrap();
        node.set_location(fix).unwrap();
    }
    let t0 = std::time::Instant::now();
    while a.nearby().await.is_empty() || b.nearby().await.is_empty() {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "never saw each other"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let seen = a.nearby().await;
    assert!(seen[0].distance_m.is_some_and(|d| d < 20.0), "{seen:?}");
    for node in [&a, &b] {
        node.stop_stadium().await;
        node.stop().await;
    }
    let mut values = vec![];
    for f in fixes {
        let coarse = GeoStamp {
            lat: f.latitude,
            lon: f.longitude,
            accuracy_m: f.accuracy_m,
        }
        .coarse();
        values.extend([f.latitude, f.longitude, coarse.lat, coarse.lon]);
    }
    let all: Vec<Vec<u8>> = values.into_iter().flat_map(needles).collect();
    let scanned = [da.path(), db.path()]
        .into_iter()
        .flat_map(files)
        .collect::<Vec<_>>();
    assert!(scanned.iter().any(|p| p.ends_with("peerns.db")));
    for path in scanned {
        let bytes = std::fs::read(&path).unwrap();
        for n in &all {
            assert!(
                !bytes.windows(n.len()).any(|w| w == n.as_slice()),
                "{} holds a coordinate ({n:?})",
                path.display()
            );
        }
    }
}

fn fix(latitude: f64) -> LocationFix {
    LocationFix {
        latitude,
        longitude: 2.294_481,
        accuracy_m: 5.0,
    }
}

/// Review item 2 and the stadium privacy: records in a cell are signed by a pseudonym,
/// so a stranger sees a key that is not our identity (and changes with the day and with our
/// secret), while a contact we trust at level 2 recognises us and is shown by its real
/// fingerprint; when that trust is withdrawn, our secret is replaced and the old contact no
/// longer recognises us.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_see_pseudonyms_and_trusted_contacts_see_each_other() {
    let server = server().await;
    let url = server.url();
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut nodes = vec![];
    for (d, name) in dirs.iter().zip(["ada", "bob", "cyd"]) {
        nodes.push(started(config(d.path(), &url, Some(name))).await.unwrap());
    }
    let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);
    befriend(a, b).await;
    let (fa, fb, fc) = (
        a.identity().fingerprint,
        b.identity().fingerprint,
        c.identity().fingerprint,
    );
    let day = crate::discovery::pseudonym::day_of(super::unix_ms());
    let ada_then = a.inner.pseudonyms.ours(day).fingerprint();
    let bob_then = b.inner.pseudonyms.ours(day).fingerprint();
    assert_ne!(ada_then.to_hex(), fa);
    // Both hold each other at level 2 and exchanged their secrets in the session.
    until(10, "the presence secrets", async || {
        a.inner
            .pseudonyms
            .recognise(&bob_then, day)
            .map(|f| f.to_hex())
            == Some(fb.clone())
            && b.inner
                .pseudonyms
                .recognise(&ada_then, day)
                .map(|f| f.to_hex())
                == Some(fa.clone())
    })
    .await;
    for (i, node) in nodes.iter().enumerate() {
        node.start_stadium(Default::default()).unwrap();
        node.set_location(fix(48.858_37 + i as f64 * 0.000_03))
            .unwrap();
    }
    until(20, "everyone nearby", async || {
        a.nearby().await.len() == 2 && b.nearby().await.len() == 2 && c.nearby().await.len() == 2
    })
    .await;
    let shown =
        |v: Vec<DiscoveredPeer>| -> Vec<String> { v.into_iter().map(|p| p.fingerprint).collect() };
    let (near_a, near_b, near_c) = (
        shown(a.nearby().await),
        shown(b.nearby().await),
        shown(c.nearby().await),
    );
    assert!(near_a.contains(&fb), "ada recognises bob: {near_a:?}");
    assert!(near_b.contains(&fa), "bob recognises ada: {near_b:?}");
    assert!(
        !near_a.contains(&fc) && !near_b.contains(&fc),
        "cyd is a stranger"
    );
    for real in [&fa, &fb] {
        assert!(
            !near_c.contains(real),
            "the stranger saw an identity: {near_c:?}"
        );
    }
    assert!(near_c.contains(&ada_then.to_hex()) && near_c.contains(&bob_then.to_hex()));
    // Ada withdraws bob's level 2: her secret is replaced, and bob cannot name her new
    // pseudonym (he never receives the new secret).
    a.set_trust(&fb, Trust::Known).await.unwrap();
    let ada_now = a.inner.pseudonyms.ours(day).fingerprint();
    assert_ne!(ada_now, ada_then);
    assert_eq!(b.inner.pseudonyms.recognise(&ada_now, day), None);
    // And ada no longer reveals bob (level 1 does not see presence).
    assert_eq!(a.inner.pseudonyms.recognise(&bob_then, day), None);
    // Her stadium cells now carry the new pseudonym: bob sees a stranger there.
    until(20, "ada's new pseudonym nearby", async || {
        let near = shown(b.nearby().await);
        near.contains(&ada_now.to_hex()) && !near.contains(&fa)
    })
    .await;
    for n in &nodes {
        n.stop_stadium().await;
        n.stop().await;
    }
}

/// A node without a display name (the Android app's default) puts nothing derived from its
/// identity in its stadium records: strangers see an empty name and the pseudonym, also after
/// a move re-signs the record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nameless_node_shows_strangers_nothing_of_its_identity() {
    let server = server().await;
    let url = server.url();
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = started(config(da.path(), &url, None)).await.unwrap();
    let b = started(config(db.path(), &url, Some("bob"))).await.unwrap();
    let id = a.identity();
    let (hex, short) = (id.fingerprint.clone(), id.short.clone());
    for (i, node) in [&a, &b].into_iter().enumerate() {
        node.start_stadium(Default::default()).unwrap();
        node.set_location(fix(48.858_37 + i as f64 * 0.000_03))
            .unwrap();
    }
    let leaks = |p: &DiscoveredPeer| {
        p.fingerprint == hex
            || p.short == short
            || p.name.contains(&short)
            || p.name.contains(&hex[..8])
    };
    until(20, "bob sees the nameless node", async || {
        b.nearby().await.len() == 1
    })
    .await;
    let seen = b.nearby().await.remove(0);
    assert!(!leaks(&seen), "{seen:?}");
    assert_eq!(seen.name, "");
    // Moving re-signs the record in the cells already joined.
    let before = seen.distance_m;
    a.set_location(fix(48.858_37 + 0.000_3)).unwrap();
    until(20, "the moved record", async || {
        b.nearby().await.first().map(|p| p.distance_m) != Some(before)
    })
    .await;
    for p in b.nearby().await {
        assert!(!leaks(&p), "{p:?}");
    }
    for n in [&a, &b] {
        n.stop_stadium().await;
        n.stop().await;
    }
}

/// The UTC day turns during a stadium session: the cells are joined again under the new day's
/// pseudonym (strangers do not see one key for days), and trusted contacts still recognise each
/// other from the new day's pseudonyms (two days later, beyond the ±1 day of recognition).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pseudonym_follows_the_day() {
    let server = server().await;
    let url = server.url();
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut nodes = vec![];
    for (d, name) in dirs.iter().zip(["ada", "bob", "cyd"]) {
        nodes.push(started(config(d.path(), &url, Some(name))).await.unwrap());
    }
    let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);
    befriend(a, b).await;
    let (fa, fb) = (a.identity().fingerprint, b.identity().fingerprint);
    for (i, node) in nodes.iter().enumerate() {
        node.start_stadium(Default::default()).unwrap();
        node.set_location(fix(48.858_37 + i as f64 * 0.000_03))
            .unwrap();
    }
    let shown =
        |v: Vec<DiscoveredPeer>| -> Vec<String> { v.into_iter().map(|p| p.fingerprint).collect() };
    until(20, "everyone nearby, contacts recognised", async || {
        shown(a.nearby().await).contains(&fb) && shown(c.nearby().await).len() == 2
    })
    .await;
    let day = crate::discovery::pseudonym::day_of(super::unix_ms()) + 2;
    let (ada_then, ada_later) = (
        a.inner.pseudonyms.ours(day - 2).fingerprint().to_hex(),
        a.inner.pseudonyms.ours(day).fingerprint().to_hex(),
    );
    assert!(shown(c.nearby().await).contains(&ada_then));
    // What the midnight timer does, two days on.
    for n in [a, b, c] {
        n.inner.stadium_day(day);
    }
    until(20, "the new day's pseudonyms", async || {
        let (near_a, near_b, near_c) = (
            shown(a.nearby().await),
            shown(b.nearby().await),
            shown(c.nearby().await),
        );
        near_a.contains(&fb)
            && near_b.contains(&fa)
            && near_c.contains(&ada_later)
            && !near_c.contains(&ada_then)
    })
    .await;
    for n in &nodes {
        n.stop_stadium().await;
        n.stop().await;
    }
}
