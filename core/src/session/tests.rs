//! Handshakes between real identities, and the attacks the session layer must stop.

use super::*;

const DTLS_A: &str = "sha-256 AA:BB:CC";
const DTLS_B: &str = "sha-256 11:22:33";

struct Party {
    id: Identity,
    key: StaticKey,
}

fn party() -> Party {
    let id = Identity::generate();
    let key = StaticKey::generate(&id).unwrap();
    Party { id, key }
}

/// Runs a handshake to the end; returns both sessions and the transcript.
fn run(
    mut i: Handshake,
    mut r: Handshake,
) -> Result<(Session, Session, Vec<Vec<u8>>), SessionError> {
    let mut transcript = vec![];
    loop {
        if i.wants_write() {
            let m = i.write()?;
            transcript.push(m.clone());
            r.read(&m)?;
        } else if r.wants_write() {
            let m = r.write()?;
            transcript.push(m.clone());
            i.read(&m)?;
        } else {
            break;
        }
    }
    Ok((i.finish()?, r.finish()?, transcript))
}

#[test]
fn mutual_authentication_and_encrypted_frames() {
    let (a, b) = (party(), party());
    let i = Handshake::initiator(&a.key, DTLS_A, DTLS_B).unwrap();
    let r = Handshake::responder(&b.key, DTLS_A, DTLS_B).unwrap();
    let (mut sa, mut sb, transcript) = run(i, r).unwrap();
    assert_eq!(transcript.len(), 3);
    assert_eq!(sa.remote_fingerprint(), b.id.fingerprint());
    assert_eq!(sb.remote_fingerprint(), a.id.fingerprint());
    assert_eq!(sa.binding(), sb.binding());
    for n in 0..5u8 {
        let f = sa.encrypt(&[n; 100]).unwrap();
        assert_eq!(sb.decrypt(&f).unwrap(), vec![n; 100]);
    }
    let back = sb.encrypt(b"pong").unwrap();
    assert_eq!(sa.decrypt(&back).unwrap(), b"pong");
    // Identity keys never travel in the clear: the first message is only an ephemeral key, and
    // neither public key appears in any message.
    for m in &transcript {
        for key in [a.id.public_key(), b.id.public_key()] {
            assert!(!m.windows(32).any(|w| w == key.as_bytes()));
        }
    }
}

#[test]
fn each_session_has_fresh_keys() {
    let (a, b) = (party(), party());
    let run_once = || {
        let i = Handshake::initiator(&a.key, DTLS_A, DTLS_B).unwrap();
        let r = Handshake::responder(&b.key, DTLS_A, DTLS_B).unwrap();
        run(i, r).unwrap()
    };
    let (mut s1, _, _) = run_once();
    let (mut s2, _, _) = run_once();
    assert_ne!(s1.binding(), s2.binding());
    assert_ne!(s1.encrypt(b"same").unwrap(), s2.encrypt(b"same").unwrap());
}

#[test]
fn a_replayed_handshake_never_authenticates() {
    let (a, b) = (party(), party());
    let i = Handshake::initiator(&a.key, DTLS_A, DTLS_B).unwrap();
    let r = Handshake::responder(&b.key, DTLS_A, DTLS_B).unwrap();
    let (_, _, transcript) = run(i, r).unwrap();
    // An eavesdropper replays Alice's messages 1 and 3 to Bob in a new session.
    let mut r2 = Handshake::responder(&b.key, DTLS_A, DTLS_B).unwrap();
    r2.read(&transcript[0]).unwrap();
    let _fresh = r2.write().unwrap();
    assert!(matches!(
        r2.read(&transcript[2]),
        Err(SessionError::Noise(_))
    ));
    assert!(r2.finish().is_err());
}

#[test]
fn a_forwarded_handshake_fails_on_another_connection() {
    // Mallory sits between Alice and Bob with two WebRTC connections and relays the Noise
    // messages; each connection has different DTLS certificates, so the prologues differ.
    let (a, b) = (party(), party());
    let i = Handshake::initiator(&a.key, DTLS_A, "sha-256 MM:MM:01").unwrap();
    let r = Handshake::responder(&b.key, "sha-256 MM:MM:02", DTLS_B).unwrap();
    assert!(matches!(run(i, r), Err(SessionError::Noise(_))));
}

#[test]
fn a_certificate_for_another_key_is_refused() {
    // Mallory holds her own static key but presents Alice's certificate.
    let (a, b, m) = (party(), party(), party());
    let stolen = StaticKey {
        private: m.key.private.clone(),
        cert: a.key.cert,
    };
    let i = Handshake::initiator(&stolen, DTLS_A, DTLS_B).unwrap();
    let r = Handshake::responder(&b.key, DTLS_A, DTLS_B).unwrap();
    assert_eq!(run(i, r).err(), Some(SessionError::BadCertificate));
    // A certificate with a flipped bit in the signature is refused too.
    let mut bent = StaticKey::generate(&m.id).unwrap();
    bent.cert[60] ^= 1;
    let i = Handshake::initiator(&bent, DTLS_A, DTLS_B).unwrap();
    let r = Handshake::responder(&b.key, DTLS_A, DTLS_B).unwrap();
    assert_eq!(run(i, r).err(), Some(SessionError::BadCertificate));
}

#[test]
fn tampered_replayed_and_out_of_turn_frames() {
    let (a, b) = (party(), party());
    let i = Handshake::initiator(&a.key, DTLS_A, DTLS_B).unwrap();
    let r = Handshake::responder(&b.key, DTLS_A, DTLS_B).unwrap();
    let (mut sa, mut sb, _) = run(i, r).unwrap();
    let f1 = sa.encrypt(b"one").unwrap();
    let mut bad = f1.clone();
    bad[0] ^= 1;
    assert_eq!(sb.decrypt(&bad), Err(SessionError::Rejected));
    let (mut sa, mut sb, _) = {
        let i = Handshake::initiator(&a.key, DTLS_A, DTLS_B).unwrap();
        let r = Handshake::responder(&b.key, DTLS_A, DTLS_B).unwrap();
        run(i, r).unwrap()
    };
    let f1 = sa.encrypt(b"one").unwrap();
    assert_eq!(sb.decrypt(&f1).unwrap(), b"one");
    assert_eq!(
        sb.decrypt(&f1),
        Err(SessionError::Rejected),
        "replayed frame"
    );
    assert_eq!(
        sa.encrypt(&vec![0; MAX_PLAINTEXT + 1]),
        Err(SessionError::TooLarge)
    );
    assert_eq!(sb.decrypt(&[0; 3]), Err(SessionError::TooLarge));
    // A handshake message out of turn fails the handshake for good.
    let mut r = Handshake::responder(&b.key, DTLS_A, DTLS_B).unwrap();
    assert_eq!(r.write(), Err(SessionError::OutOfTurn));
    assert!(r.read(&[0; 32]).is_err());
    // Garbage as the first message.
    let mut r = Handshake::responder(&b.key, DTLS_A, DTLS_B).unwrap();
    assert!(r.read(&[1, 2, 3]).is_err());
}
