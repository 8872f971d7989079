//! The group-call forwarder on real media connections through the official PeerJS server on
//! loopback: three participants each send OpenH264 test-pattern video and an Opus tone to a
//! router, which forwards them through two audio and two video slots per participant; each
//! participant records its slots and `ffprobe` decodes both other participants' video. A
//! second call checks that a picture's rotation is forwarded under each connection's own
//! header-extension ID.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use peerns_core::media::record::Recording;
use peerns_core::media::sfu::{ParticipantId, SfuConfig, TrackKind};
use peerns_core::media::sfu_hub::{HubEvent, SfuHub, slot_track_name};
use peerns_core::media::track::{EncoderControl, MediaSource, Push};
use peerns_core::transport::media_engine::{FORWARDED_ORIENTATION, VIDEO_ORIENTATION_URI};
use peerns_core::transport::{MediaConnection, MediaKind, MediaOptions, RemoteTrack, TrackSpec};
use peerns_media_desktop::audio::OpusEncoder;
use peerns_media_desktop::sources::{TestPattern, Tone};
use peerns_media_desktop::video::H264Encoder;
use peerns_tests::{ServerKind, ServerOpts, TestNode, TestServer, ffprobe, test_node};
use tokio::sync::mpsc;

const PARTICIPANTS: u64 = 3;
const SECONDS: u64 = 6;
const FPS: u64 = 15;

async fn send_video(source: MediaSource, mut ctl: mpsc::Receiver<EncoderControl>) -> u64 {
    let mut enc = H264Encoder::new(FPS as f32, 300_000).expect("encoder");
    let mut pattern = TestPattern::new(320, 240);
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / FPS));
    let mut pushed = 0;
    for i in 0..SECONDS * FPS {
        tick.tick().await;
        while let Ok(c) = ctl.try_recv() {
            if c == EncoderControl::KeyframeRequest {
                enc.request_keyframe();
            }
        }
        let pic = pattern.next_frame();
        if let Some(f) = enc.encode(&pic, i * 1_000_000 / FPS).expect("encode")
            && source.push(f) == Push::Queued
        {
            pushed += 1;
        }
    }
    pushed
}

async fn send_audio(source: MediaSource) {
    let mut enc = OpusEncoder::new(32_000).expect("opus");
    let mut tone = Tone::new(440.0);
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    for i in 0..SECONDS * 50 {
        tick.tick().await;
        let f = enc.encode(&tone.next_frame(), i * 20_000).expect("encode");
        let _ = source.push(f);
    }
}

async fn remote_tracks(conn: &MediaConnection, n: usize) -> Vec<RemoteTrack> {
    let mut out = vec![];
    while out.len() < n {
        let t = tokio::time::timeout(Duration::from_secs(15), conn.next_remote_track())
            .await
            .expect("remote track in time")
            .expect("connection open");
        out.push(t);
    }
    out
}

/// A router's hub and `n` participants whose media connections to it are up.
struct Call {
    _server: TestServer,
    _nodes: Vec<TestNode>,
    hub: SfuHub,
    events: mpsc::Receiver<HubEvent>,
    calls: Vec<MediaConnection>,
}

async fn call_through_router(n: u64, name: &str) -> Call {
    let s = TestServer::start(ServerKind::Peer, ServerOpts::default()).await;
    let router = test_node(&s.url(), &format!("peerns2-{name}-router")).await;
    let mut offers = router.transport.media_offers(8);
    let (hub, events) = SfuHub::start(SfuConfig {
        last_n: 2,
        audio_slots: 2,
        ..SfuConfig::default()
    });
    let slots = || {
        let mut t = vec![];
        for kind in [TrackKind::Audio, TrackKind::Video] {
            let media = if kind == TrackKind::Audio {
                MediaKind::Audio
            } else {
                MediaKind::Video
            };
            for i in 0..2 {
                t.push(TrackSpec::forwarding(slot_track_name(kind, i), media));
            }
        }
        t
    };

    let mut nodes = vec![router];
    let mut calls = vec![];
    for i in 0..n {
        let node = test_node(&s.url(), &format!("peerns2-{name}-p{i}")).await;
        let call = node
            .transport
            .call(
                &nodes[0].id,
                MediaOptions {
                    tracks: vec![TrackSpec::audio(), TrackSpec::video()],
                    receive: vec![MediaKind::Audio, MediaKind::Video],
                    ..Default::default()
                },
            )
            .await
            .expect("call the router");
        let incoming = tokio::time::timeout(Duration::from_secs(10), offers.recv())
            .await
            .expect("offer in time")
            .expect("subscribed");
        assert_eq!(incoming.peer(), node.id);
        let answered = incoming.accept(slots()).await.expect("accept");
        call.connected(Duration::from_secs(10))
            .await
            .expect("participant connected");
        answered
            .connected(Duration::from_secs(10))
            .await
            .expect("router connected");
        hub.join(ParticipantId(i), answered).await;
        nodes.push(node);
        calls.push(call);
    }
    Call {
        _server: s,
        _nodes: nodes,
        hub,
        events,
        calls,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_participants_see_each_other_through_the_router() {
    // (The server and nodes are bound: dropped, they would end the call.)
    let Call {
        _server: _s,
        _nodes: _n,
        hub,
        mut events,
        calls,
    } = call_through_router(PARTICIPANTS, "sfu").await;

    let start = Instant::now();
    let mut senders = vec![];
    for call in &calls {
        let (video, ctl) = MediaSource::start(call, call.local_track("video").unwrap());
        let (audio, _) = MediaSource::start(call, call.local_track("audio").unwrap());
        senders.push((
            tokio::spawn(send_video(video, ctl)),
            tokio::spawn(send_audio(audio)),
        ));
    }
    // Each participant records its four slots.
    let dir = tempfile::tempdir().unwrap();
    let mut recordings = vec![];
    for (i, call) in calls.iter().enumerate() {
        let mut got = remote_tracks(call, 4).await;
        got.sort_by_key(|t| (t.kind() == MediaKind::Audio, t.track_id().to_owned()));
        let ids: Vec<&str> = got.iter().map(|t| t.track_id()).collect();
        assert_eq!(
            ids,
            [
                "slot-video-0",
                "slot-video-1",
                "slot-audio-0",
                "slot-audio-1"
            ]
        );
        let path = dir.path().join(format!("p{i}.mkv"));
        let rec = Recording::start(got, std::fs::File::create(&path).unwrap());
        recordings.push((path, rec));
    }
    let mut pushed = vec![];
    for (v, a) in senders {
        pushed.push(v.await.unwrap());
        a.await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let elapsed = start.elapsed();

    // The last slot map each participant got names both others on its video slots.
    let mut shown: BTreeMap<ParticipantId, Vec<Option<ParticipantId>>> = BTreeMap::new();
    while let Ok(ev) = events.try_recv() {
        if let HubEvent::SlotMap { to, slots } = ev {
            let video = slots
                .into_iter()
                .filter(|(s, _)| s.kind == TrackKind::Video)
                .map(|(_, p)| p)
                .collect();
            shown.insert(to, video);
        }
    }
    let stats = hub.stats().await.expect("hub running");
    eprintln!("pushed {pushed:?} in {elapsed:?}; forwarder {stats:?}; shown {shown:?}");
    for i in 0..PARTICIPANTS {
        let mut v = shown[&ParticipantId(i)].clone();
        v.sort();
        let others: Vec<_> = (0..PARTICIPANTS)
            .filter(|&j| j != i)
            .map(|j| Some(ParticipantId(j)))
            .collect();
        assert_eq!(v, others, "participant {i}'s video slots");
    }
    assert!(stats.packets_out > 0 && stats.refused == 0, "{stats:?}");

    let min_pushed = *pushed.iter().min().unwrap();
    for (path, rec) in recordings {
        rec.finish().await.expect("recording");
        let streams = ffprobe(&path);
        eprintln!("{}: {streams:?}", path.display());
        let video: Vec<_> = streams.iter().filter(|s| s.0 == "h264").collect();
        assert_eq!(video.len(), 2, "{streams:?}");
        for (_, w, h, frames) in video {
            assert_eq!((*w, *h), (320, 240));
            // Every participant joined before anyone sent, so each slot starts at its
            // source's first keyframe: at least 80 % of the frames sent arrive and decode.
            assert!(
                *frames * 10 >= min_pushed * 8,
                "{}: {frames} of {min_pushed} frames",
                path.display()
            );
        }
        assert_eq!(streams.iter().filter(|s| s.0 == "opus").count(), 2);
    }
}

/// A publisher's video-orientation extension reaches a subscriber under the ID the
/// subscriber's connection gave it (the forwarder moves it to its own ID on the way in and to
/// each subscriber's on the way out, and drops what belongs to one connection), and the hub
/// reports the rotation it read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publishers_rotation_reaches_the_subscriber_under_its_own_extension_id() {
    let Call {
        _server: _s,
        _nodes: _n,
        hub: _hub,
        mut events,
        calls,
    } = call_through_router(2, "cvo").await;
    let track = calls[0].local_track("video").unwrap();
    track.set_rotation(270);
    let (video, ctl) = MediaSource::start(&calls[0], track);
    let sender = tokio::spawn(send_video(video, ctl));
    let cvo_id = calls[1]
        .extension_id(VIDEO_ORIENTATION_URI)
        .await
        .expect("the subscriber's connection negotiated the video orientation");
    let slot = loop {
        let t = remote_tracks(&calls[1], 1).await.remove(0);
        if t.track_id() == "slot-video-0" {
            break t;
        }
    };
    assert_ne!(
        cvo_id, FORWARDED_ORIENTATION,
        "the forwarder's own ID differs"
    );
    let mut seen = 0;
    while seen < 30 {
        let p = tokio::time::timeout(Duration::from_secs(10), slot.recv())
            .await
            .expect("forwarded video in time")
            .expect("slot open");
        assert_eq!(
            p.header.get_extension(cvo_id).as_deref(),
            Some(&[3u8][..]),
            "270° under ID {cvo_id}: {:?}",
            p.header.extensions
        );
        seen += 1;
    }
    let mut reported = None;
    while let Ok(ev) = events.try_recv() {
        if let HubEvent::Rotation { id, degrees } = ev {
            reported = Some((id, degrees));
        }
    }
    assert_eq!(reported, Some((ParticipantId(0), 270)));
    sender.abort();
}
