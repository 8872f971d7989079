//! The meeting room nearby between real nodes: found through stadium mode, chat with
//! strangers, a late arrival's backfill, two rooms started apart merging, nothing stored.

use std::time::Duration;

use super::platform::LocationFix;
use super::tests::{config, server, started, until};
use super::*;
use crate::groups::GroupId;

fn fix(latitude: f64, longitude: f64) -> LocationFix {
    LocationFix {
        latitude,
        longitude,
        accuracy_m: 5.0,
    }
}

/// A started node in stadium mode at `at`.
async fn nearby_node(dir: &std::path::Path, url: &str, name: &str, at: LocationFix) -> Node {
    let node = started(config(dir, url, Some(name))).await.unwrap();
    node.start_stadium(Default::default()).unwrap();
    node.set_location(at).unwrap();
    node
}

async fn texts(node: &Node) -> Vec<String> {
    node.meeting_room_history()
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|m| m.text)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn people_nearby_meet_in_one_room_and_a_late_arrival_catches_up() {
    let server = server().await;
    let url = server.url();
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let spot = |i: f64| fix(48.858_37 + i * 0.000_05, 2.294_48);
    let a = nearby_node(dirs[0].path(), &url, "ada", spot(0.0)).await;
    let b = nearby_node(dirs[1].path(), &url, "bob", spot(1.0)).await;
    assert!(a.meeting_room_join().await.is_ok());
    let room = a.meeting_room().unwrap();
    until(20, "bob to see ada's room", async || {
        b.nearby().await.iter().any(|p| p.room == Some(room))
    })
    .await;
    assert_eq!(b.meeting_room_join().await.unwrap(), room, "one room");
    a.group_send(&room, "hello from ada").await.unwrap();
    b.group_send(&room, "hi ada, bob here").await.unwrap();
    until(30, "both messages on both", async || {
        texts(&a).await.len() == 2 && texts(&b).await.len() == 2
    })
    .await;
    assert_eq!(texts(&a).await, texts(&b).await, "the same order");

    // A late arrival joins the same room and gets what was said.
    let c = nearby_node(dirs[2].path(), &url, "cy", spot(2.0)).await;
    until(20, "cy to see the room", async || {
        c.nearby().await.iter().any(|p| p.room == Some(room))
    })
    .await;
    assert_eq!(c.meeting_room_join().await.unwrap(), room);
    until(30, "cy's backfill", async || texts(&c).await.len() == 2).await;
    assert_eq!(texts(&c).await, texts(&a).await);

    // Leaving: out of the room, no longer advertised.
    b.meeting_room_leave().await;
    assert_eq!(b.meeting_room(), None);
    until(20, "bob's record without the room", async || {
        a.nearby()
            .await
            .iter()
            .any(|p| p.name == "bob" && p.room.is_none())
    })
    .await;
    for n in [&a, &b, &c] {
        n.stop_stadium().await;
        n.stop().await;
    }
    // Nothing of the room reached any profile's files.
    for d in &dirs {
        for f in super::stadium_tests::files(d.path()) {
            let bytes = std::fs::read(&f).unwrap();
            for needle in ["hello from ada", "hi ada, bob here"] {
                assert!(
                    !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                    "{needle:?} stored in {f:?}"
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_rooms_started_apart_merge_into_the_lower_one_with_their_messages() {
    let server = server().await;
    let url = server.url();
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // Two places 2 km apart: neither sees the other's room.
    let a = nearby_node(da.path(), &url, "ada", fix(48.858_37, 2.294_48)).await;
    let b = nearby_node(db.path(), &url, "bob", fix(48.876_37, 2.294_48)).await;
    let (ra, rb) = (
        a.meeting_room_join().await.unwrap(),
        b.meeting_room_join().await.unwrap(),
    );
    assert_ne!(ra, rb);
    a.group_send(&ra, "ada was here").await.unwrap();
    b.group_send(&rb, "bob was here").await.unwrap();
    let mut events = a.group_events();
    // Bob walks over to ada: whoever holds the higher room moves to the lower one.
    b.set_location(fix(48.858_42, 2.294_48)).unwrap();
    let lower: GroupId = ra.min(rb);
    until(40, "both in the lower room", async || {
        a.meeting_room() == Some(lower) && b.meeting_room() == Some(lower)
    })
    .await;
    until(30, "both messages in the merged room on both", async || {
        let (ta, tb) = (texts(&a).await, texts(&b).await);
        ta.len() == 2 && ta == tb
    })
    .await;
    let mut all = texts(&a).await;
    all.sort();
    assert_eq!(all, ["ada was here", "bob was here"]);
    if ra > rb {
        // Ada moved: her application heard of it.
        let moved = tokio::time::timeout(Duration::from_secs(5), async {
            while let Some(u) = events.recv().await {
                if u == (GroupUpdate::Room { group: Some(lower) }) {
                    return true;
                }
            }
            false
        })
        .await;
        assert_eq!(moved, Ok(true));
    }
    for n in [&a, &b] {
        n.stop_stadium().await;
        n.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_meeting_room_needs_stadium_mode_with_a_position() {
    let server = server().await;
    let d = tempfile::tempdir().unwrap();
    let a = started(config(d.path(), &server.url(), Some("ada")))
        .await
        .unwrap();
    assert!(matches!(
        a.meeting_room_join().await,
        Err(NodeError::InvalidInput(_))
    ));
    a.start_stadium(Default::default()).unwrap();
    assert!(matches!(
        a.meeting_room_join().await,
        Err(NodeError::InvalidInput(_))
    ));
    assert!(matches!(
        a.meeting_room_history().await,
        Err(NodeError::InvalidInput(_))
    ));
    a.stop().await;
}
