//! Group calls between real nodes: media through the router's own tracks and its tap of the
//! forwarder.

use std::time::Duration;

use super::group_live_tests::online_group;
use super::tests::{server, until};
use super::*;
use crate::calls::Kinds;
use crate::identity::Fingerprint;
use crate::media::EncodedFrame;
use crate::media::sfu::TrackKind;
use crate::transport::MediaKind;

/// Pushes an audio frame every 20 ms until aborted.
fn speak(media: &GroupCallMedia) -> tokio::task::JoinHandle<()> {
    let publisher = media.publisher();
    tokio::spawn(async move {
        for i in 0u64.. {
            let frame = EncodedFrame {
                kind: MediaKind::Audio,
                pts_us: i * 20_000,
                keyframe: true,
                data: bytes::Bytes::from(vec![0xf8, i as u8, 1, 2, 3]),
                audio_level: Some(30),
            };
            publisher.push(TrackKind::Audio, &frame);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
}

/// Waits for `n` audio frames from `from`.
async fn hears(media: &mut GroupCallMedia, from: Fingerprint, n: usize, what: &str) {
    let mut got = 0;
    tokio::time::timeout(Duration::from_secs(20), async {
        while got < n {
            let f = media.next_frame().await.expect("the call goes on");
            if f.from == from && f.kind == TrackKind::Audio {
                got += 1;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{what}: {got} of {n} frames"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_router_that_leaves_and_joins_again_hears_and_is_heard() {
    let server = server().await;
    let (_tmp, gid, nodes) = online_group(&server.url(), 2).await;
    let r = (0..2).find(|i| nodes[*i].group_routing(&gid)).unwrap();
    let (router, member) = (&nodes[r], &nodes[1 - r]);
    let (router_fp, member_fp) = (router.inner.fingerprint, member.inner.fingerprint);
    let mut at_router = router.group_call_join(&gid, Kinds::AUDIO).await.unwrap();
    let mut at_member = member.group_call_join(&gid, Kinds::AUDIO).await.unwrap();
    let (a, b) = (speak(&at_router), speak(&at_member));
    hears(
        &mut at_member,
        router_fp,
        20,
        "the member hearing the router",
    )
    .await;
    hears(
        &mut at_router,
        member_fp,
        20,
        "the router hearing the member",
    )
    .await;
    a.abort();

    router.group_call_leave(&gid).await.unwrap();
    until(20, "the member seeing the router leave", async || {
        let roster = member.group_call_roster(&gid).await.unwrap();
        roster.len() == 1 && roster[0].member == member_fp
    })
    .await;
    // What the router sent before it left is no proof of what follows.
    while tokio::time::timeout(Duration::from_millis(300), at_member.next_frame())
        .await
        .is_ok()
    {}
    // Joins again with the same media: the member keeps its connection.
    let mut at_router = router.group_call_join(&gid, Kinds::AUDIO).await.unwrap();
    let a = speak(&at_router);
    hears(
        &mut at_member,
        router_fp,
        20,
        "the member hearing the router again",
    )
    .await;
    hears(
        &mut at_router,
        member_fp,
        20,
        "the router hearing the member again",
    )
    .await;
    a.abort();
    b.abort();
    for n in nodes {
        n.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_track_of_a_connection_is_announced_even_when_read_late() {
    // More tracks than fit the queue of announced ones (the rest wait for room, none is
    // dropped); the member reads them only after all have started sending.
    use crate::transport::media::MAX_QUEUED_REMOTE_TRACKS;
    use crate::transport::{MediaOptions, TrackSpec};
    const TRACKS: usize = MAX_QUEUED_REMOTE_TRACKS + 4;
    let server = server().await;
    let (_d1, _d2, a, b) = super::tests::alice_and_bob(&server.url()).await;
    let mut offers = b.allow_browser_calls(vec![a.peer_id()]);
    let tracks: Vec<TrackSpec> = (0..TRACKS)
        .map(|i| TrackSpec {
            name: format!("t{i}"),
            kind: MediaKind::Audio,
            forward: false,
        })
        .collect();
    let opts = MediaOptions {
        tracks,
        ..MediaOptions::default()
    };
    let sending = a.inner.transport().call(&b.peer_id(), opts).await.unwrap();
    let inc = tokio::time::timeout(Duration::from_secs(10), offers.recv())
        .await
        .expect("offer in time")
        .expect("offer");
    let receiving = inc.accept(vec![]).await.unwrap();
    sending.connected(Duration::from_secs(10)).await.unwrap();
    let writers: Vec<_> = sending
        .local_tracks()
        .iter()
        .cloned()
        .map(|t| {
            tokio::spawn(async move {
                for i in 0u64.. {
                    let frame = bytes::Bytes::from(vec![0xf8, i as u8, 1, 2, 3]);
                    let _ = t.write_frame(frame, Duration::from_millis(20), None).await;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut names = vec![];
    while names.len() < TRACKS {
        let t = tokio::time::timeout(Duration::from_secs(5), receiving.next_remote_track())
            .await
            .unwrap_or_else(|_| panic!("only {} of {TRACKS} tracks: {names:?}", names.len()))
            .expect("connection open");
        names.push(t.track_id().to_owned());
    }
    names.sort();
    names.dedup();
    assert_eq!(names.len(), TRACKS);
    for w in writers {
        w.abort();
    }
    a.stop().await;
    b.stop().await;
}
