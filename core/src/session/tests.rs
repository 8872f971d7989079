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
        version: WireVersion::CURRENT,
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

fn versioned(major: u16, minor: u16, features: u64) -> Party {
    let id = Identity::generate();
    let version = WireVersion {
        major,
        minor,
        features,
    };
    let key = StaticKey::generate(&id).unwrap().with_version(version);
    Party { id, key }
}

#[test]
fn another_minor_works_and_features_intersect() {
    let (a, b) = (versioned(1, 0, 0b1011), versioned(1, 7, 0b0110));
    let i = Handshake::initiator(&a.key, DTLS_A, DTLS_B).unwrap();
    let r = Handshake::responder(&b.key, DTLS_A, DTLS_B).unwrap();
    let (mut sa, mut sb, _) = run(i, r).unwrap();
    assert_eq!(sa.peer_version(), b.key.version);
    assert_eq!(sb.peer_version(), a.key.version);
    assert_eq!((sa.features(), sb.features()), (0b0010, 0b0010));
    let f = sa.encrypt(b"hi").unwrap();
    assert_eq!(sb.decrypt(&f).unwrap(), b"hi");
    // Today's nodes all speak the current version and share its features.
    let (c, d) = (party(), party());
    let i = Handshake::initiator(&c.key, DTLS_A, DTLS_B).unwrap();
    let r = Handshake::responder(&d.key, DTLS_A, DTLS_B).unwrap();
    let (sc, _, _) = run(i, r).unwrap();
    assert_eq!(sc.peer_version(), WireVersion::CURRENT);
    assert_eq!(sc.features(), WireVersion::CURRENT.features);
}

/// Runs every message of a handshake; returns both unfinished sides.
fn exchange(mut i: Handshake, mut r: Handshake) -> (Handshake, Handshake) {
    let m1 = i.write().unwrap();
    r.read(&m1).unwrap();
    let m2 = r.write().unwrap();
    i.read(&m2).unwrap();
    // The initiator already knows the responder's version, yet still sends message 3.
    assert!(i.wants_write());
    let m3 = i.write().unwrap();
    r.read(&m3).unwrap();
    assert!(i.is_done() && r.is_done());
    (i, r)
}

#[test]
fn another_major_is_refused_on_both_sides() {
    let old = party();
    let newer = versioned(WireVersion::CURRENT.major + 1, 0, u64::MAX);
    let ours = WireVersion::CURRENT;
    let theirs = newer.key.version;
    // Whichever side dials, both learn the other's version and identity, and neither gets a
    // session.
    for old_dials in [true, false] {
        let (i_key, r_key) = if old_dials {
            (&old.key, &newer.key)
        } else {
            (&newer.key, &old.key)
        };
        let i = Handshake::initiator(i_key, DTLS_A, DTLS_B).unwrap();
        let r = Handshake::responder(r_key, DTLS_A, DTLS_B).unwrap();
        let (i, r) = exchange(i, r);
        let (old_side, new_side) = if old_dials { (i, r) } else { (r, i) };
        assert_eq!(old_side.remote_fingerprint(), Some(newer.id.fingerprint()));
        assert_eq!(new_side.remote_fingerprint(), Some(old.id.fingerprint()));
        assert_eq!(
            old_side.finish().err(),
            Some(SessionError::Incompatible { ours, theirs })
        );
        assert_eq!(
            new_side.finish().err(),
            Some(SessionError::Incompatible {
                ours: theirs,
                theirs: ours
            })
        );
    }
}

#[test]
fn another_major_may_change_what_follows_the_version() {
    // A future major with another certificate format: still a clear Incompatible, with the
    // identity unknown, never a BadCertificate.
    let old = party();
    let mut newer = versioned(WireVersion::CURRENT.major + 1, 0, 0);
    newer.key.cert = [0xA5; CERT_LEN];
    let i = Handshake::initiator(&old.key, DTLS_A, DTLS_B).unwrap();
    let r = Handshake::responder(&newer.key, DTLS_A, DTLS_B).unwrap();
    let (i, _) = exchange(i, r);
    assert_eq!(i.remote_fingerprint(), None);
    assert!(matches!(
        i.finish(),
        Err(SessionError::Incompatible { theirs, .. }) if theirs == newer.key.version
    ));
    // Within our major the same payload is a bad certificate.
    newer.key.version = WireVersion::CURRENT;
    let i = Handshake::initiator(&old.key, DTLS_A, DTLS_B).unwrap();
    let r = Handshake::responder(&newer.key, DTLS_A, DTLS_B).unwrap();
    assert_eq!(run(i, r).err(), Some(SessionError::BadCertificate));
}

#[test]
fn an_unversioned_peer_is_reported_as_version_zero() {
    // A build from before wire versioning answers with the bare certificate.
    let (a, b) = (party(), party());
    let mut legacy = snow::Builder::new(params())
        .local_private_key(&b.key.private)
        .unwrap()
        .prologue(&prologue(DTLS_A, DTLS_B))
        .unwrap()
        .build_responder()
        .unwrap();
    let mut i = Handshake::initiator(&a.key, DTLS_A, DTLS_B).unwrap();
    let mut buf = vec![0u8; MAX_FRAME];
    legacy.read_message(&i.write().unwrap(), &mut buf).unwrap();
    let n = legacy.write_message(&b.key.cert, &mut buf).unwrap();
    i.read(&buf[..n]).unwrap();
    i.write().unwrap();
    assert_eq!(i.remote_fingerprint(), Some(b.id.fingerprint()));
    assert_eq!(
        i.finish().err(),
        Some(SessionError::Incompatible {
            ours: WireVersion::CURRENT,
            theirs: WireVersion::UNVERSIONED
        })
    );
}
