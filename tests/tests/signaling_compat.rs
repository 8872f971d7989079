//! The signaling compatibility suite, run unchanged against the official PeerJS server (`peer`
//! 1.0.2) and against our embedded server: both must behave the same for our client.

use std::time::Duration;

use futures_util::StreamExt;
use peerns_core::signaling::client::{ClaimResult, SignalingEvent, SignalingState};
use peerns_core::signaling::driver::SignalingHandle;
use peerns_core::signaling::protocol::{Message, MessageType};
use peerns_tests::{ServerKind, ServerOpts, TestServer, client, test_config, wait_for};
use serde_json::json;
use tokio::sync::mpsc::UnboundedReceiver;

const T: Duration = Duration::from_secs(10);

async fn claimed(
    c: &SignalingHandle,
    id: &str,
    token: &str,
) -> peerns_core::signaling::client::RegId {
    let (reg, result) = c.claim(id, token).await.unwrap();
    assert_eq!(result, ClaimResult::Claimed, "claim {id}");
    reg
}

async fn message(rx: &mut UnboundedReceiver<SignalingEvent>, kind: MessageType) -> Message {
    match wait_for(
        rx,
        T,
        |e| matches!(e, SignalingEvent::Message { msg, .. } if msg.kind == kind),
    )
    .await
    {
        Some(SignalingEvent::Message { msg, .. }) => msg,
        other => panic!("no {kind:?} message: {other:?}"),
    }
}

fn offer_payload() -> serde_json::Value {
    json!({"sdp":{"type":"offer","sdp":"v=0\r\n"},"type":"data","connectionId":"dc_t1","metadata":null,
           "label":"dc_t1","reliable":true,"serialization":"raw"})
}

async fn open_and_state(kind: ServerKind) {
    let s = TestServer::start(kind, ServerOpts::default()).await;
    let c = client(&s.url());
    let reg = claimed(&c, "peerns2-open", "tok1").await;
    assert_eq!(c.state(reg).await.unwrap(), Some(SignalingState::Connected));
}

async fn id_taken_for_another_token(kind: ServerKind) {
    let s = TestServer::start(kind, ServerOpts::default()).await;
    let (a, b) = (client(&s.url()), client(&s.url()));
    let reg = claimed(&a, "peerns2-ns-x-1", "tokA").await;
    let (_, result) = b.claim("peerns2-ns-x-1", "tokB").await.unwrap();
    assert_eq!(result, ClaimResult::Taken);
    assert_eq!(
        a.state(reg).await.unwrap(),
        Some(SignalingState::Connected),
        "holder unaffected"
    );
}

async fn reattach_with_same_token(kind: ServerKind) {
    let s = TestServer::start(kind, ServerOpts::default()).await;
    let (a, a2, other) = (client(&s.url()), client(&s.url()), client(&s.url()));
    claimed(&a, "peerns2-me", "same").await;
    // A second socket with the same token takes the registration over (a restarted node).
    claimed(&a2, "peerns2-me", "same").await;
    let mut rx = a2.subscribe().unwrap();
    let reg = claimed(&other, "peerns2-other", "o").await;
    other
        .send(
            reg,
            Message::to(MessageType::Offer, "peerns2-me", Some(offer_payload())),
        )
        .await
        .unwrap();
    let m = message(&mut rx, MessageType::Offer).await;
    assert_eq!(m.src.as_deref(), Some("peerns2-other"));
}

async fn bad_key(kind: ServerKind) {
    let s = TestServer::start(kind, ServerOpts::default()).await;
    let c = client(&format!("{}?key=wrong", s.url()));
    let (_, result) = c.claim("peerns2-k", "t").await.unwrap();
    assert_eq!(result, ClaimResult::Error("Invalid key provided".into()));
}

async fn relay_rewrites_src(kind: ServerKind) {
    let s = TestServer::start(kind, ServerOpts::default()).await;
    let (a, b) = (client(&s.url()), client(&s.url()));
    let (mut rx_a, mut rx_b) = (a.subscribe().unwrap(), b.subscribe().unwrap());
    let ra = claimed(&a, "peerns2-a", "ta").await;
    let rb = claimed(&b, "peerns2-b", "tb").await;
    let mut forged = Message::to(MessageType::Offer, "peerns2-b", Some(offer_payload()));
    forged.src = Some("peerns2-mallory".into());
    a.send(ra, forged).await.unwrap();
    let m = message(&mut rx_b, MessageType::Offer).await;
    assert_eq!(m.src.as_deref(), Some("peerns2-a"), "server rewrites src");
    assert_eq!(m.dst.as_deref(), Some("peerns2-b"));
    assert_eq!(
        m.payload,
        Some(offer_payload()),
        "payload relayed unchanged"
    );
    let answer =
        json!({"sdp":{"type":"answer","sdp":"v=0\r\n"},"type":"data","connectionId":"dc_t1"});
    b.send(
        rb,
        Message::to(MessageType::Answer, "peerns2-a", Some(answer.clone())),
    )
    .await
    .unwrap();
    let m = message(&mut rx_a, MessageType::Answer).await;
    assert_eq!(
        (m.src.as_deref(), m.payload),
        (Some("peerns2-b"), Some(answer))
    );
    let cand = json!({"candidate":{"candidate":"candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host",
        "sdpMid":"0","sdpMLineIndex":0},"type":"data","connectionId":"dc_t1"});
    a.send(
        ra,
        Message::to(MessageType::Candidate, "peerns2-b", Some(cand.clone())),
    )
    .await
    .unwrap();
    assert_eq!(
        message(&mut rx_b, MessageType::Candidate).await.payload,
        Some(cand)
    );
}

async fn queued_offer_to_late_joiner(kind: ServerKind) {
    let s = TestServer::start(kind, ServerOpts::default()).await;
    let (a, late) = (client(&s.url()), client(&s.url()));
    let ra = claimed(&a, "peerns2-early", "t").await;
    a.send(
        ra,
        Message::to(MessageType::Offer, "peerns2-late", Some(offer_payload())),
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut rx = late.subscribe().unwrap();
    claimed(&late, "peerns2-late", "t").await;
    let m = message(&mut rx, MessageType::Offer).await;
    assert_eq!(m.src.as_deref(), Some("peerns2-early"));
}

async fn expire_to_absent_id(kind: ServerKind) {
    let opts = ServerOpts {
        expire_timeout: Duration::from_millis(500),
        ..ServerOpts::default()
    };
    let s = TestServer::start(kind, opts).await;
    let a = client(&s.url());
    let mut rx = a.subscribe().unwrap();
    let ra = claimed(&a, "peerns2-sender", "t").await;
    a.send(
        ra,
        Message::to(MessageType::Offer, "peerns2-ghost", Some(offer_payload())),
    )
    .await
    .unwrap();
    let m = message(&mut rx, MessageType::Expire).await;
    assert_eq!(
        (m.src.as_deref(), m.dst.as_deref()),
        (Some("peerns2-ghost"), Some("peerns2-sender"))
    );
}

async fn leave_is_relayed_and_unregister_frees_the_id(kind: ServerKind) {
    let s = TestServer::start(kind, ServerOpts::default()).await;
    let (a, b, c) = (client(&s.url()), client(&s.url()), client(&s.url()));
    let mut rx_b = b.subscribe().unwrap();
    let ra = claimed(&a, "peerns2-a", "ta").await;
    claimed(&b, "peerns2-b", "tb").await;
    a.send(ra, Message::to(MessageType::Leave, "peerns2-b", None))
        .await
        .unwrap();
    assert_eq!(
        message(&mut rx_b, MessageType::Leave).await.src.as_deref(),
        Some("peerns2-a")
    );
    // A graceful unregister (LEAVE without dst) frees the ID at once: the basis of fast failover.
    a.unregister(ra).unwrap();
    let deadline = tokio::time::Instant::now() + T;
    loop {
        match c.claim("peerns2-a", "tc").await.unwrap().1 {
            ClaimResult::Claimed => break,
            r => assert!(tokio::time::Instant::now() < deadline, "still {r:?}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn silent_client_is_evicted(kind: ServerKind) {
    let opts = ServerOpts {
        alive_timeout: Duration::from_millis(1000),
        ..ServerOpts::default()
    };
    let s = TestServer::start(kind, opts).await;
    // A raw socket that never sends HEARTBEAT.
    let url = format!("{}peerjs?key=peerjs&id=peerns2-silent&token=t1", s.url());
    let (mut ws, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .unwrap();
    let first = ws.next().await.unwrap().unwrap();
    assert_eq!(first.to_text().unwrap(), r#"{"type":"OPEN"}"#);
    // Our client heartbeats faster than the alive timeout and is kept.
    let mut cfg = test_config(&s.url());
    cfg.heartbeat = Duration::from_millis(200);
    let live = SignalingHandle::spawn(cfg);
    claimed(&live, "peerns2-live", "t1").await;
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let other = client(&s.url());
    assert_eq!(
        other.claim("peerns2-silent", "t2").await.unwrap().1,
        ClaimResult::Claimed,
        "evicted"
    );
    assert_eq!(
        other.claim("peerns2-live", "t2").await.unwrap().1,
        ClaimResult::Taken,
        "kept"
    );
}

async fn recovers_after_server_restart(kind: ServerKind) {
    let mut s = TestServer::start(kind, ServerOpts::default()).await;
    let (a, b) = (client(&s.url()), client(&s.url()));
    let (mut rx_a, mut rx_b) = (a.subscribe().unwrap(), b.subscribe().unwrap());
    let ra = claimed(&a, "peerns2-a", "ta").await;
    claimed(&b, "peerns2-b", "tb").await;
    s.kill().await;
    let reconnecting = |e: &SignalingEvent| {
        matches!(
            e,
            SignalingEvent::State {
                state: SignalingState::Reconnecting { .. },
                ..
            }
        )
    };
    assert!(wait_for(&mut rx_a, T, reconnecting).await.is_some());
    s.restart().await;
    let connected = |e: &SignalingEvent| {
        matches!(
            e,
            SignalingEvent::State {
                state: SignalingState::Connected,
                ..
            }
        )
    };
    assert!(
        wait_for(&mut rx_a, T, connected).await.is_some(),
        "a re-registered"
    );
    assert!(
        wait_for(&mut rx_b, T, connected).await.is_some(),
        "b re-registered"
    );
    a.send(
        ra,
        Message::to(MessageType::Offer, "peerns2-b", Some(offer_payload())),
    )
    .await
    .unwrap();
    assert_eq!(
        message(&mut rx_b, MessageType::Offer).await.src.as_deref(),
        Some("peerns2-a")
    );
}

peerns_tests::against_both_servers!(
    open_and_state,
    id_taken_for_another_token,
    reattach_with_same_token,
    bad_key,
    relay_rewrites_src,
    queued_offer_to_late_joiner,
    expire_to_absent_id,
    leave_is_relayed_and_unregister_frees_the_id,
    silent_client_is_evicted,
    recovers_after_server_restart,
);
