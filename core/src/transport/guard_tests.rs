//! Strangers against a `require_auth` transport, over loopback WebRTC and the in-process
//! signaling server: the pre-authentication message limit and where it ends, the deadline from
//! OFFER to authenticated, and the caps on pending connections.

use std::time::Duration;

use tokio::sync::mpsc::UnboundedReceiver;

use super::codec::CodecError;
use super::payload::Serialization;
use super::{ConnectOptions, DataConnection, Payload, Transport, TransportConfig, TransportError};
use crate::signaling::client::{ClaimResult, ServerUrl, SignalingConfig};
use crate::signaling::driver::SignalingHandle;
use crate::signaling::limiter::LimiterConfig;
use crate::signaling::server::{EmbeddedServer, ServerConfig};

async fn server() -> EmbeddedServer {
    EmbeddedServer::start(ServerConfig {
        port: 0,
        ..ServerConfig::default()
    })
    .await
    .unwrap()
}

/// A transport registered as `id` at `url`.
async fn node(
    url: &str,
    id: &str,
    config: TransportConfig,
) -> (Transport, UnboundedReceiver<DataConnection>) {
    let mut sc = SignalingConfig::new(ServerUrl::parse(url).unwrap());
    sc.limiter = LimiterConfig::local();
    let signaling = SignalingHandle::spawn(sc);
    let (reg, claimed) = signaling.claim(id, "tok").await.unwrap();
    assert_eq!(claimed, ClaimResult::Claimed);
    Transport::start(signaling, reg, id.into(), config).unwrap()
}

fn guarded() -> TransportConfig {
    TransportConfig {
        require_auth: true,
        ..TransportConfig::loopback()
    }
}

async fn accept(incoming: &mut UnboundedReceiver<DataConnection>) -> DataConnection {
    tokio::time::timeout(Duration::from_secs(10), incoming.recv())
        .await
        .expect("an incoming connection")
        .expect("transport running")
}

async fn recv(conn: &mut DataConnection) -> Option<Result<Payload, CodecError>> {
    tokio::time::timeout(Duration::from_secs(10), conn.recv())
        .await
        .expect("a message or the close")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_are_small_until_authenticated_then_exactly_from_there() {
    let srv = server().await;
    let (stranger, _) = node(&srv.url(), "guard-a", TransportConfig::loopback()).await;
    let (_victim, mut incoming) = node(&srv.url(), "guard-b", guarded()).await;
    let big = Payload::Bytes(vec![7; 100_000]);
    let small = Payload::Bytes(vec![1; 200]);
    let conn = stranger
        .connect("guard-b", ConnectOptions::peerjs(Serialization::Binary))
        .await
        .unwrap();
    let mut theirs = accept(&mut incoming).await;
    // The first chunk of the big message is refused (the reader then waits for a `recv()`).
    let (_, got) = tokio::join!(conn.send(&big), recv(&mut theirs));
    assert!(matches!(
        got,
        Some(Err(CodecError::TooBig { limit: 4096, .. }))
    ));
    let raw = stranger
        .connect("guard-b", ConnectOptions::native())
        .await
        .unwrap();
    let mut theirs = accept(&mut incoming).await;
    raw.send(&Payload::Bytes(vec![2; 10_000])).await.unwrap();
    assert!(matches!(
        recv(&mut theirs).await,
        Some(Err(CodecError::TooBig { .. }))
    ));
    // A small message, then at once a big one: the big one was sent before `authenticated()`
    // but is decoded after it, at the normal limit.
    raw.send(&small).await.unwrap();
    raw.send(&Payload::Bytes(vec![3; 60_000])).await.unwrap();
    assert_eq!(recv(&mut theirs).await, Some(Ok(small)));
    tokio::time::sleep(Duration::from_millis(200)).await;
    theirs.authenticated();
    assert_eq!(
        recv(&mut theirs).await,
        Some(Ok(Payload::Bytes(vec![3; 60_000])))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthenticated_connections_close_at_the_deadline_from_the_offer() {
    let srv = server().await;
    let (stranger, _) = node(&srv.url(), "guard-c", TransportConfig::loopback()).await;
    let config = TransportConfig {
        accept_timeout: Duration::from_millis(1500),
        ..guarded()
    };
    let (_victim, mut incoming) = node(&srv.url(), "guard-d", config).await;
    let before_offer = tokio::time::Instant::now();
    let idle = stranger
        .connect("guard-d", ConnectOptions::native())
        .await
        .unwrap();
    let mut idle_theirs = accept(&mut incoming).await;
    let friend = stranger
        .connect("guard-d", ConnectOptions::native())
        .await
        .unwrap();
    let mut friend_theirs = accept(&mut incoming).await;
    friend_theirs.authenticated();
    assert!(
        recv(&mut idle_theirs).await.is_none(),
        "closed at the deadline"
    );
    let closed_after = before_offer.elapsed();
    assert!(
        closed_after >= Duration::from_millis(1500) && closed_after < Duration::from_secs(5),
        "closed {closed_after:?} after the offer"
    );
    let mut idle_ours = idle;
    assert!(
        recv(&mut idle_ours).await.is_none(),
        "the stranger sees the close"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    friend.send(&Payload::Bytes(vec![5; 50_000])).await.unwrap();
    assert_eq!(
        recv(&mut friend_theirs).await,
        Some(Ok(Payload::Bytes(vec![5; 50_000])))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offers_over_the_caps_are_dropped_until_a_slot_frees() {
    let srv = server().await;
    // A refused OFFER is never answered: the dialers give up after this. It must also cover a
    // connection that is admitted on a loaded machine (the whole core suite on two cores: an
    // answer took more than 1.5 s there once).
    let quick = TransportConfig {
        connect_timeout: Duration::from_secs(4),
        ..TransportConfig::loopback()
    };
    let (eve, _) = node(&srv.url(), "guard-e", quick.clone()).await;
    let (mal, _) = node(&srv.url(), "guard-f", quick.clone()).await;
    let (ann, _) = node(&srv.url(), "guard-g", quick).await;
    let config = TransportConfig {
        max_pending: 3,
        max_pending_per_peer: 2,
        // The held connections stay pending through both refusals (2 × 4 s).
        accept_timeout: Duration::from_secs(30),
        ..guarded()
    };
    let (_victim, mut incoming) = node(&srv.url(), "guard-v", config).await;
    let native = ConnectOptions::native;
    let mut held = vec![];
    for _ in 0..2 {
        held.push(eve.connect("guard-v", native()).await.unwrap());
        held.push(accept(&mut incoming).await);
    }
    // Open but not authenticated: still pending, so eve is at her cap.
    assert!(matches!(
        eve.connect("guard-v", native()).await,
        Err(TransportError::Timeout { .. })
    ));
    held.push(mal.connect("guard-v", native()).await.unwrap());
    let mals = accept(&mut incoming).await;
    // Three pending in all: ann, with none, is refused too.
    assert!(matches!(
        ann.connect("guard-v", native()).await,
        Err(TransportError::Timeout { .. })
    ));
    // Authenticating one frees its slot; closing one frees its slot.
    mals.authenticated();
    ann.connect("guard-v", native()).await.unwrap();
    accept(&mut incoming).await.close().await;
    held.remove(1).close().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    eve.connect("guard-v", native()).await.unwrap();
}
