//! `session::Session::decrypt`: encrypted frames after the handshake. One session pair lives
//! for the whole run. Input: a list of length-prefixed records, each a mode byte and bytes:
//! mode 0 decrypts the bytes as a frame; mode 1 encrypts them and tampers with the ciphertext
//! (XOR with themselves, rotated). Never panics; only the genuine next frame decrypts, to its
//! plaintext, and a rejected frame does not disturb the session.
#![no_main]

use std::cell::RefCell;

use libfuzzer_sys::fuzz_target;
use peerns_core::identity::Identity;
use peerns_core::session::{Handshake, Session, StaticKey};

thread_local! {
    static PAIR: RefCell<(Session, Session)> = RefCell::new(pair());
}

fn pair() -> (Session, Session) {
    let ka = StaticKey::generate(&Identity::from_secret(&[1; 32], "fuzz-a")).expect("key");
    let kb = StaticKey::generate(&Identity::from_secret(&[2; 32], "fuzz-b")).expect("key");
    let mut i = Handshake::initiator(&ka, "AA", "BB").expect("initiator");
    let mut r = Handshake::responder(&kb, "AA", "BB").expect("responder");
    r.read(&i.write().expect("m1")).expect("m1");
    i.read(&r.write().expect("m2")).expect("m2");
    r.read(&i.write().expect("m3")).expect("m3");
    (i.finish().expect("done"), r.finish().expect("done"))
}

fuzz_target!(|data: &[u8]| {
    PAIR.with_borrow_mut(|(tx, rx)| {
        for record in peerns_fuzz::frames(data) {
            let Some((mode, bytes)) = record.split_first() else {
                continue;
            };
            if mode & 1 == 0 {
                assert!(rx.decrypt(bytes).is_err(), "a forged frame decrypted");
            } else {
                let sealed = tx.encrypt(bytes).expect("encrypts");
                let mut bad = sealed.clone();
                for (i, m) in bytes.iter().enumerate() {
                    let at = (i + usize::from(*mode >> 1)) % bad.len();
                    bad[at] ^= m;
                }
                if bad != sealed {
                    assert!(rx.decrypt(&bad).is_err(), "a tampered frame decrypted");
                }
                assert_eq!(rx.decrypt(&sealed).as_deref(), Ok(bytes));
            }
        }
    });
});
