//! Contacts, trust and requests on a real (temporary) profile database.

use super::*;
use crate::identity::Identity;
use crate::store::Store;

pub(super) fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("peerns.db")).unwrap();
    (dir, store)
}

/// Runs `f` on the store's connection.
pub(super) fn with<T>(store: &Store, f: impl FnOnce(&mut Connection) -> T) -> T {
    store.with_conn(|c| Ok(f(c))).unwrap()
}

fn key() -> [u8; 32] {
    Identity::generate().public_key().to_bytes()
}

fn pid(n: u8) -> String {
    format!("peerns2-{}", format!("{n:02x}").repeat(16))
}

#[test]
fn trust_levels_gate_capabilities() {
    use Capability::*;
    let all = [Connect, Message, File, Call, Presence, GroupInvite, Rpc];
    let allowed = |t: Trust| all.iter().filter(|c| t.allows(**c)).count();
    assert_eq!(allowed(Trust::Blocked), 0);
    assert_eq!(allowed(Trust::Known), 3);
    assert!(!Trust::Known.allows(Call) && !Trust::Known.allows(Rpc));
    assert_eq!(allowed(Trust::Trusted), 6);
    assert!(!Trust::Trusted.allows(Rpc));
    assert_eq!(allowed(Trust::FullAccess), 7);
    for t in [
        Trust::Blocked,
        Trust::Known,
        Trust::Trusted,
        Trust::FullAccess,
    ] {
        assert_eq!(Trust::from_level(t.level()), Some(t));
    }
    assert_eq!(Trust::from_level(4), None);
}

#[test]
fn one_key_is_one_contact_and_routes_follow_it() {
    let (_d, s) = store();
    let k = key();
    let c = with(&s, |c| save(c, &k, "Ada", Trust::Trusted, Some(&pid(1)), 1)).unwrap();
    assert_eq!(c.trust, Trust::Trusted);
    // Saved again under another name and a new ID: still one contact, merged.
    let c2 = with(&s, |c| {
        save(c, &k, " Ada L. ", Trust::Known, Some(&pid(2)), 2)
    })
    .unwrap();
    assert_eq!(c2.fingerprint, c.fingerprint);
    assert_eq!(c2.name, "Ada L.");
    assert_eq!(with(&s, |c| list(c)).unwrap().len(), 1);
    assert_eq!(c2.peer_id.as_deref(), Some(pid(2).as_str()));
    assert_eq!(
        with(&s, |c| peer_ids(c, &c2.fingerprint)).unwrap(),
        vec![pid(2), pid(1)]
    );
    // Someone else shows up with the old ID: a different identity, a separate contact; the
    // route moves to whoever proved it last.
    let other = key();
    with(&s, |c| {
        save(c, &other, "Eve", Trust::Known, Some(&pid(2)), 3)
    })
    .unwrap();
    assert_eq!(
        with(&s, |c| by_peer_id(c, &pid(2))).unwrap().unwrap().name,
        "Eve"
    );
    assert_eq!(
        with(&s, |c| get(c, &c2.fingerprint))
            .unwrap()
            .unwrap()
            .peer_id,
        None
    );
    with(&s, |c| update_route(c, &c2.fingerprint, &pid(3), 4)).unwrap();
    assert_eq!(
        with(&s, |c| by_peer_id(c, &pid(3)))
            .unwrap()
            .unwrap()
            .fingerprint,
        c2.fingerprint
    );
    // Verified flag and trust changes; removal.
    with(&s, |c| set_verified(c, &c2.fingerprint, true)).unwrap();
    with(&s, |c| set_trust(c, &c2.fingerprint, Trust::FullAccess)).unwrap();
    let c3 = with(&s, |c| get(c, &c2.fingerprint)).unwrap().unwrap();
    assert!(c3.verified && c3.trust == Trust::FullAccess);
    with(&s, |c| remove(c, &c2.fingerprint)).unwrap();
    assert!(with(&s, |c| get(c, &c2.fingerprint)).unwrap().is_none());
    assert!(
        with(&s, |c| peer_ids(c, &c2.fingerprint))
            .unwrap()
            .is_empty()
    );
}

#[test]
fn bad_input_is_refused_and_nothing_is_stored() {
    let (_d, s) = store();
    let k = key();
    assert!(with(&s, |c| save(c, &k, "", Trust::Known, None, 1)).is_err());
    assert!(with(&s, |c| save(c, &k, &"x".repeat(65), Trust::Known, None, 1)).is_err());
    assert!(with(&s, |c| save(c, &k, "a\u{7}b", Trust::Known, None, 1)).is_err());
    assert!(
        with(&s, |c| save(
            c,
            &k,
            "Ada",
            Trust::Known,
            Some("peerjs-123"),
            1
        ))
        .is_err()
    );
    // Not a valid curve point.
    let mut bad = [0u8; 32];
    bad[31] = 0x80;
    bad[0] = 2;
    assert!(with(&s, |c| add_request(c, &bad, "x", &pid(1), false, 1)).is_err());
    assert!(with(&s, |c| list(c)).unwrap().is_empty());
    assert!(with(&s, |c| requests(c)).unwrap().is_empty());
}

#[test]
fn requests_accept_later_reject_cancel_and_blocked() {
    let (_d, s) = store();
    let (a, b, blocked) = (key(), key(), key());
    let ra = with(&s, |c| add_request(c, &a, "Ada", &pid(1), false, 1_000)).unwrap();
    assert!(!ra.outgoing && !ra.later);
    let rb = with(&s, |c| add_request(c, &b, "Bob", &pid(2), true, 2_000)).unwrap();
    assert!(rb.outgoing);
    // Unanswered for 60 s: incoming moves to "later", outgoing stays pending.
    assert_eq!(with(&s, |c| auto_later(c, 30_000)).unwrap(), 0);
    assert_eq!(with(&s, |c| auto_later(c, 61_000)).unwrap(), 1);
    let reqs = with(&s, |c| requests(c)).unwrap();
    assert!(
        reqs.iter()
            .any(|r| r.fingerprint == ra.fingerprint && r.later)
    );
    assert!(
        reqs.iter()
            .any(|r| r.fingerprint == rb.fingerprint && !r.later)
    );
    // Accepting saves the contact at level 2 and clears the request.
    let c = with(&s, |c| accept(c, &ra.fingerprint, 62_000)).unwrap();
    assert_eq!((c.trust, c.name.as_str()), (Trust::Trusted, "Ada"));
    assert_eq!(with(&s, |c| requests(c)).unwrap().len(), 1);
    // A request from a contact is refused; cancelling ours removes it.
    assert!(matches!(
        with(&s, |c| add_request(c, &a, "Ada", &pid(1), false, 63_000)),
        Err(ContactError::Invalid(_))
    ));
    with(&s, |c| drop_request(c, &rb.fingerprint, true)).unwrap();
    assert!(with(&s, |c| requests(c)).unwrap().is_empty());
    assert!(matches!(
        with(&s, |c| drop_request(c, &rb.fingerprint, true)),
        Err(ContactError::NotFound)
    ));
    // A blocked key cannot even ask.
    let bc = with(&s, |c| save(c, &blocked, "Mal", Trust::Blocked, None, 1)).unwrap();
    assert!(matches!(
        with(&s, |c| add_request(c, &blocked, "Mal", &pid(9), false, 2)),
        Err(ContactError::Blocked)
    ));
    assert_eq!(
        with(&s, |c| trust_of(c, &bc.fingerprint)).unwrap(),
        Some(Trust::Blocked)
    );
    assert!(with(&s, |c| requests(c)).unwrap().is_empty());
}

#[test]
fn share_links_round_trip_and_reject_garbage() {
    let id = Identity::generate();
    let link = ShareLink {
        peer_id: pid(7),
        fingerprint: id.fingerprint(),
    };
    let text = link.to_string();
    assert!(text.starts_with("peerns2:peerns2-"));
    assert_eq!(text.parse::<ShareLink>().unwrap(), link);
    for bad in [
        "peerns:x?fp=00",
        "peerns2:peerns2-zz?fp=00",
        &format!("peerns2:{}", pid(7)),
        &format!("peerns2:{}?fp=1234", pid(7)),
    ] {
        assert!(bad.parse::<ShareLink>().is_err(), "{bad}");
    }
}

#[test]
fn incoming_requests_stop_at_the_cap_and_nothing_more_is_stored() {
    let (_d, s) = store();
    let keys: Vec<_> = (0..MAX_INCOMING_REQUESTS).map(|_| key()).collect();
    for (i, k) in keys.iter().enumerate() {
        with(&s, |c| add_request(c, k, "x", &pid(1), false, i as u64)).unwrap();
    }
    assert!(matches!(
        with(&s, |c| add_request(
            c,
            &key(),
            "one too many",
            &pid(2),
            false,
            9_999
        )),
        Err(ContactError::Full)
    ));
    assert_eq!(
        with(&s, |c| requests(c)).unwrap().len(),
        MAX_INCOMING_REQUESTS
    );
    // A waiting requester may repeat itself, and our own requests are not capped.
    with(&s, |c| {
        add_request(c, &keys[0], "again", &pid(3), false, 10_000)
    })
    .unwrap();
    with(&s, |c| {
        add_request(c, &key(), "ours", &pid(4), true, 10_001)
    })
    .unwrap();
    assert_eq!(
        with(&s, |c| requests(c)).unwrap().len(),
        MAX_INCOMING_REQUESTS + 1
    );
}
