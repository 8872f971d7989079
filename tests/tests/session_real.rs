//! Authenticated sessions over real WebRTC data connections: the Noise XX handshake runs over
//! the channel, bound to the DTLS fingerprints both ends read from the SDPs.

use std::time::Duration;

use peerns_core::identity::Identity;
use peerns_core::session::{Handshake, Session, SessionError, StaticKey};
use peerns_core::transport::{ConnectOptions, DataConnection, Payload};
use peerns_tests::{ServerKind, ServerOpts, TestServer, accept, test_node};

async fn recv_bytes(conn: &mut DataConnection) -> Vec<u8> {
    match tokio::time::timeout(Duration::from_secs(10), conn.recv()).await {
        Ok(Some(Ok(Payload::Bytes(b)))) => b,
        other => panic!("no bytes: {other:?}"),
    }
}

/// Runs the handshake over the connection pair; `tamper` changes the responder's view of the
/// initiator's DTLS fingerprint (as if the handshake had been relayed from another connection).
async fn handshake(
    ca: &mut DataConnection,
    cb: &mut DataConnection,
    ka: &StaticKey,
    kb: &StaticKey,
    tamper: bool,
) -> Result<(Session, Session), SessionError> {
    // Each end names the initiator's fingerprint first, from its own point of view.
    let mut i = Handshake::initiator(ka, &ca.info().local_dtls, ca.remote_dtls())?;
    let seen = if tamper {
        "sha-256 00:11".to_owned()
    } else {
        cb.remote_dtls().to_owned()
    };
    let mut r = Handshake::responder(kb, &seen, &cb.info().local_dtls)?;
    loop {
        if i.wants_write() {
            ca.send(&Payload::Bytes(i.write()?)).await.unwrap();
            r.read(&recv_bytes(cb).await)?;
        } else if r.wants_write() {
            cb.send(&Payload::Bytes(r.write()?)).await.unwrap();
            i.read(&recv_bytes(ca).await)?;
        } else {
            break;
        }
    }
    Ok((i.finish()?, r.finish()?))
}

async fn session_over_webrtc(kind: ServerKind) {
    let s = TestServer::start(kind, ServerOpts::default()).await;
    let a = test_node(&s.url(), "peerns2-session-a").await;
    let mut b = test_node(&s.url(), "peerns2-session-b").await;
    let mut ca = a
        .transport
        .connect(&b.id, ConnectOptions::native())
        .await
        .expect("connect");
    let mut cb = accept(&mut b).await;

    // Both ends agree on both fingerprints.
    assert!(
        ca.info().local_dtls.starts_with("sha-256 "),
        "{:?}",
        ca.info()
    );
    assert_eq!(ca.info().local_dtls, cb.remote_dtls());
    assert_eq!(cb.info().local_dtls, ca.remote_dtls());
    assert_ne!(ca.info().local_dtls, cb.info().local_dtls);
    assert!(ca.info().outgoing && !cb.info().outgoing);

    let (alice, bob) = (Identity::generate(), Identity::generate());
    let (ka, kb) = (
        StaticKey::generate(&alice).unwrap(),
        StaticKey::generate(&bob).unwrap(),
    );
    let (mut sa, mut sb) = handshake(&mut ca, &mut cb, &ka, &kb, false)
        .await
        .expect("handshake");
    assert_eq!(sa.remote_fingerprint(), bob.fingerprint());
    assert_eq!(sb.remote_fingerprint(), alice.fingerprint());
    for i in 0..100u32 {
        let f = sa.encrypt(&i.to_be_bytes()).unwrap();
        ca.send(&Payload::Bytes(f)).await.unwrap();
    }
    for i in 0..100u32 {
        assert_eq!(
            sb.decrypt(&recv_bytes(&mut cb).await).unwrap(),
            i.to_be_bytes()
        );
    }

    // A handshake relayed from another connection (other DTLS fingerprints) fails.
    let err = handshake(&mut ca, &mut cb, &ka, &kb, true).await.err();
    assert!(matches!(err, Some(SessionError::Noise(_))), "{err:?}");
}

peerns_tests::against_both_servers!(session_over_webrtc);
