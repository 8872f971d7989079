//! `session::Handshake::read`: the three Noise XX handshake messages. Input: a step byte
//! (which message to tamper with), then an XOR mask applied to that real message (longer masks
//! append bytes). Never panics; the first message is accepted iff it is 32 bytes (it is only an
//! ephemeral key), the two authenticated ones iff they are unchanged, and a handshake that
//! failed stays failed.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use peerns_core::identity::Identity;
use peerns_core::session::{Handshake, SessionError, StaticKey};

const DTLS_I: &str = "AA:BB:CC";
const DTLS_R: &str = "DD:EE:FF";

static KEYS: LazyLock<(Identity, StaticKey, Identity, StaticKey)> = LazyLock::new(|| {
    let (a, b) = (
        Identity::from_secret(&[1; 32], "fuzz-a"),
        Identity::from_secret(&[2; 32], "fuzz-b"),
    );
    let (ka, kb) = (
        StaticKey::generate(&a).expect("key"),
        StaticKey::generate(&b).expect("key"),
    );
    (a, ka, b, kb)
});

fn tamper(real: &[u8], mask: &[u8]) -> Vec<u8> {
    let mut out = real.to_vec();
    for (i, m) in mask.iter().enumerate() {
        match out.get_mut(i) {
            Some(b) => *b ^= m,
            None => out.push(*m),
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((step, mask)) = data.split_first() else {
        return;
    };
    let (a, ka, b, kb) = &*KEYS;
    let mut init = Handshake::initiator(ka, DTLS_I, DTLS_R).expect("initiator");
    let mut resp = Handshake::responder(kb, DTLS_I, DTLS_R).expect("responder");
    let step = step % 3;

    let m1 = init.write().expect("message 1");
    let got = tamper(&m1, mask);
    let r = resp.read(if step == 0 { &got } else { &m1 });
    if step == 0 {
        assert_eq!(r.is_ok(), got.len() == 32, "{r:?}");
        if r.is_err() {
            assert_failed(&mut resp);
        }
        return;
    }
    r.expect("real message 1");

    let m2 = resp.write().expect("message 2");
    let got = tamper(&m2, mask);
    let r = init.read(if step == 1 { &got } else { &m2 });
    if step == 1 {
        assert_eq!(r.is_ok(), got == m2, "{r:?}");
        if r.is_err() {
            assert_failed(&mut init);
            return;
        }
    }
    r.expect("real message 2");

    let m3 = init.write().expect("message 3");
    let got = tamper(&m3, mask);
    let r = resp.read(&got);
    assert_eq!(r.is_ok(), got == m3, "{r:?}");
    if r.is_err() {
        assert_failed(&mut resp);
        return;
    }
    let (si, sr) = (init.finish().expect("done"), resp.finish().expect("done"));
    assert_eq!(si.remote_key(), b.public_key());
    assert_eq!(sr.remote_key(), a.public_key());
    assert_eq!(si.binding(), sr.binding());
});

/// A failed handshake refuses everything after.
fn assert_failed(hs: &mut Handshake) {
    assert!(!hs.is_done());
    assert_eq!(hs.read(&[0; 32]), Err(SessionError::OutOfTurn));
    assert_eq!(hs.write(), Err(SessionError::OutOfTurn));
}
