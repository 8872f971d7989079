//! Two nodes against an in-process signaling server, over loopback WebRTC.

use std::time::Duration;

use tokio::sync::mpsc::UnboundedReceiver;

use super::*;
use crate::signaling::server::{EmbeddedServer, ServerConfig};

fn config(dir: &std::path::Path, url: &str, name: Option<&str>) -> NodeConfig {
    NodeConfig {
        profile_dir: dir.to_owned(),
        signaling_url: url.to_owned(),
        transport: TransportConfig::loopback(),
        display_name: name.map(str::to_owned),
    }
}

/// The next event that is not a signaling state change.
async fn next(rx: &mut UnboundedReceiver<NodeEvent>) -> NodeEvent {
    loop {
        let ev = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("no event within 10 s")
            .expect("subscription ended");
        if !matches!(ev, NodeEvent::SignalingState(_)) {
            return ev;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_connect_and_exchange_bytes() {
    let server = EmbeddedServer::start(ServerConfig {
        port: 0,
        ..ServerConfig::default()
    })
    .await
    .unwrap();
    let url = server.url();
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = Node::start(config(da.path(), &url, Some("alice")))
        .await
        .unwrap();
    let b = Node::start(config(db.path(), &url, None)).await.unwrap();
    assert_eq!(a.signaling_state(), SignalingState::Connected);
    assert_eq!(b.signaling_state(), SignalingState::Connected);

    let ida = a.identity();
    assert_eq!(ida.fingerprint.len(), 64);
    assert!(ida.fingerprint.chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(ida.display_name.as_deref(), Some("alice"));
    assert_eq!(b.identity().display_name, None);
    let (pa, pb) = (ida.peer_id, b.identity().peer_id);

    let (mut ea, mut eb) = (a.subscribe(), b.subscribe());
    assert!(matches!(
        a.send(&pb, b"x".to_vec()).await,
        Err(NodeError::NotConnected(_))
    ));
    a.connect(&pb).await.unwrap();
    a.connect(&pb).await.unwrap(); // reuses the open connection
    assert_eq!(
        next(&mut ea).await,
        NodeEvent::PeerConnected { peer: pb.clone() }
    );
    assert_eq!(
        next(&mut eb).await,
        NodeEvent::PeerConnected { peer: pa.clone() }
    );

    for i in 0..5u8 {
        a.send(&pb, vec![i; 3]).await.unwrap();
    }
    for i in 0..5u8 {
        let want = NodeEvent::DataReceived {
            peer: pa.clone(),
            data: vec![i; 3],
        };
        assert_eq!(next(&mut eb).await, want);
    }
    // B answers over the connection A opened (connect() reuses it).
    b.connect(&pa).await.unwrap();
    b.send(&pa, b"pong".to_vec()).await.unwrap();
    let want = NodeEvent::DataReceived {
        peer: pb.clone(),
        data: b"pong".to_vec(),
    };
    assert_eq!(next(&mut ea).await, want);

    b.set_display_name("bob").await.unwrap();
    assert!(b.set_display_name("  ").await.is_err());
    assert_eq!(b.identity().display_name.as_deref(), Some("bob"));

    // B leaving closes the connection: A sees the peer go.
    b.stop().await;
    assert_eq!(
        next(&mut ea).await,
        NodeEvent::PeerDisconnected { peer: pb.clone() }
    );
    while let Some(ev) = eb.recv().await {
        assert!(matches!(ev, NodeEvent::SignalingState(_)), "{ev:?}");
    }
    a.stop().await;
    assert!(matches!(a.connect(&pb).await, Err(NodeError::Stopped)));

    // The profile keeps identity and display name across restarts.
    let b2 = Node::start(config(db.path(), &url, None)).await.unwrap();
    assert_eq!(b2.identity().peer_id, pb);
    assert_eq!(b2.identity().display_name.as_deref(), Some("bob"));
    b2.stop().await;
    server.shutdown().await;
}

#[tokio::test]
async fn bad_url_is_invalid_input() {
    let d = tempfile::tempdir().unwrap();
    let r = Node::start(config(d.path(), "ftp://x", None)).await;
    assert!(matches!(r, Err(NodeError::InvalidInput(_))));
}

#[test]
fn loopback_hosts() {
    assert!(is_loopback_host("127.0.0.1"));
    assert!(is_loopback_host("[::1]"));
    assert!(is_loopback_host("localhost"));
    assert!(!is_loopback_host("0.peerjs.com"));
}
