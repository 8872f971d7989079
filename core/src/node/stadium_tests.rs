//! Stadium mode at the node: what leaves the phone and what stays on it.

use std::time::Duration;

use super::platform::LocationFix;
use super::tests::{config, server};
use super::*;
use crate::discovery::presence::GeoStamp;

/// Every file under `dir`, recursively.
fn files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
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
    let a = Node::start(config(da.path(), &url, Some("ada")))
        .await
        .unwrap();
    let b = Node::start(config(db.path(), &url, Some("bob")))
        .await
        .unwrap();
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
