//! Native↔native data connections through the official PeerJS server and through ours:
//! connect, 1,000 ordered messages, 64 MiB in 16 KiB messages with the content hash checked,
//! close, and reconnect.

use std::time::Duration;

use peerns_core::crypto::sha256;
use peerns_core::transport::{ConnectOptions, Payload, TransportError};
use peerns_tests::{ServerKind, ServerOpts, TestServer, accept, test_node};
use serde_json::json;

const T: Duration = Duration::from_secs(60);

async fn recv(conn: &mut peerns_core::transport::DataConnection) -> Payload {
    tokio::time::timeout(T, conn.recv())
        .await
        .expect("message in time")
        .expect("open")
        .expect("valid frame")
}

/// The 16 KiB block number `i` of the bulk transfer (deterministic, not constant).
fn block(i: u32) -> Vec<u8> {
    let mut x = i.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..16 * 1024)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

async fn exchange_and_bulk(kind: ServerKind) {
    let s = TestServer::start(kind, ServerOpts::default()).await;
    let a = test_node(&s.url(), "peerns2-native-a").await;
    let mut b = test_node(&s.url(), "peerns2-native-b").await;
    let mut ca = a
        .transport
        .connect(&b.id, ConnectOptions::native())
        .await
        .expect("connect");
    let mut cb = accept(&mut b).await;
    assert_eq!(cb.peer(), a.id);
    assert_eq!(cb.info().connection_id, ca.info().connection_id);

    // 1,000 ordered messages each way, JSON and bytes mixed.
    let sender = ca.sender();
    let send = tokio::spawn(async move {
        for i in 0..1000u32 {
            let p = if i % 2 == 0 {
                Payload::Json(json!({"seq": i}))
            } else {
                Payload::Bytes(i.to_be_bytes().to_vec())
            };
            sender.send(&p).await.unwrap();
        }
    });
    for i in 0..1000u32 {
        let expected = if i % 2 == 0 {
            Payload::Json(json!({"seq": i}))
        } else {
            Payload::Bytes(i.to_be_bytes().to_vec())
        };
        assert_eq!(recv(&mut cb).await, expected, "message {i} in order");
    }
    send.await.unwrap();
    for i in 0..1000u32 {
        cb.send(&Payload::Bytes(i.to_le_bytes().to_vec()))
            .await
            .unwrap();
    }
    for i in 0..1000u32 {
        assert_eq!(
            recv(&mut ca).await,
            Payload::Bytes(i.to_le_bytes().to_vec())
        );
    }

    // 64 MiB in 16 KiB messages, hash compared.
    const BLOCKS: u32 = 4096;
    let sender = ca.sender();
    let bulk = tokio::spawn(async move {
        let mut all = Vec::with_capacity(64 << 20);
        for i in 0..BLOCKS {
            let b = block(i);
            all.extend_from_slice(&b);
            sender.send(&Payload::Bytes(b)).await.unwrap();
        }
        sha256(&all)
    });
    let mut got = Vec::with_capacity(64 << 20);
    for _ in 0..BLOCKS {
        match recv(&mut cb).await {
            Payload::Bytes(b) => got.extend_from_slice(&b),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(got.len(), 64 << 20);
    assert_eq!(sha256(&got), bulk.await.unwrap(), "content hash");

    // Close: the other side sees the end; sending on a closed connection is an error.
    ca.close().await;
    assert!(
        tokio::time::timeout(T, cb.recv())
            .await
            .expect("close seen")
            .is_none()
    );
    assert_eq!(
        ca.send(&Payload::Bytes(vec![1])).await,
        Err(TransportError::Closed)
    );

    // Reconnect, the other way round this time.
    let c2 = b
        .transport
        .connect(&a.id, ConnectOptions::native())
        .await
        .expect("reconnect");
    let mut a = a;
    let mut c2a = accept(&mut a).await;
    c2.send(&Payload::Json(json!("again"))).await.unwrap();
    assert_eq!(recv(&mut c2a).await, Payload::Json(json!("again")));
}

async fn unknown_peer_fails_fast(kind: ServerKind) {
    let opts = ServerOpts {
        expire_timeout: Duration::from_millis(300),
        ..ServerOpts::default()
    };
    let s = TestServer::start(kind, opts).await;
    let a = test_node(&s.url(), "peerns2-lonely").await;
    let t0 = std::time::Instant::now();
    let err = a
        .transport
        .connect("peerns2-nobody", ConnectOptions::native())
        .await
        .err()
        .expect("must fail");
    assert_eq!(
        err,
        TransportError::PeerUnavailable("peerns2-nobody".into())
    );
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "EXPIRE, not the connect timeout"
    );
}

async fn glare_resolves_to_one_connection(kind: ServerKind) {
    let s = TestServer::start(kind, ServerOpts::default()).await;
    let a = test_node(&s.url(), "peerns2-glare-a").await;
    let b = test_node(&s.url(), "peerns2-glare-b").await;
    let (ra, rb) = tokio::join!(
        a.transport.connect(&b.id, ConnectOptions::native()),
        b.transport.connect(&a.id, ConnectOptions::native())
    );
    let (ca, mut cb) = (ra.expect("a connects"), rb.expect("b connects"));
    assert_eq!(
        ca.info().connection_id,
        cb.info().connection_id,
        "both ends hold the same connection"
    );
    ca.send(&Payload::Json(json!("hi"))).await.unwrap();
    assert_eq!(recv(&mut cb).await, Payload::Json(json!("hi")));
}

peerns_tests::against_both_servers!(
    exchange_and_bulk,
    unknown_peer_fails_fast,
    glare_resolves_to_one_connection
);
