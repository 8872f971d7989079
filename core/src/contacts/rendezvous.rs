//! Rendezvous: where two contacts meet again when neither can reach the other's last known
//! PeerJS ID (an ID taken by someone else, a new profile, both away too long).
//!
//! Both sides derive the same pair secret from their identity keys alone (a static X25519
//! agreement, decision 0008), so nothing has to be exchanged beforehand and a contact saved
//! from a share link already has it. From the secret come, per 10-minute window, a namespace
//! name only the two can compute and a key that seals each side's current persistent ID into
//! the note of its signed presence record there. The sealed ID is only a hint of where to dial:
//! a route is stored after the session handshake on that ID proves the contact's key, so a
//! replayed or forged hint cannot redirect anything. Nothing here does I/O.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use super::valid_peer_id;
use crate::crypto;
use crate::identity::{Fingerprint, Identity, VerifyingKey};

/// Length of a rendezvous window.
pub const WINDOW_MS: u64 = 600_000;
/// Namespace prefixes of rendezvous start with this.
pub const PREFIX: &str = "peerns2-rvz-";
/// Bytes of the window's HMAC in the namespace name (96 bits: not guessable in a window).
const SLUG_BYTES: usize = 12;
/// Domain of the pair secret.
const SALT: &[u8] = b"peerns2/rendezvous/v1";

/// The secret two contacts share for meeting again.
pub struct PairSecret(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for PairSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PairSecret(..)")
    }
}

fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

/// The window `unix_ms` falls in.
pub fn window(unix_ms: u64) -> u64 {
    unix_ms / WINDOW_MS
}

/// Milliseconds from `unix_ms` until the next window starts.
pub fn until_next_window(unix_ms: u64) -> u64 {
    WINDOW_MS - unix_ms % WINDOW_MS
}

impl PairSecret {
    /// The secret between `me` and the contact with key `theirs`; the same on both sides.
    /// `None` for a degenerate (small-order) key.
    pub fn derive(me: &Identity, theirs: &VerifyingKey) -> Option<Self> {
        let shared = me.static_agreement(theirs)?;
        let (a, b) = (me.fingerprint(), Fingerprint::of(theirs));
        let (lo, hi) = (a.min(b), a.max(b));
        Some(Self(Zeroizing::new(hmac(
            SALT,
            &[&shared[..], &lo.0, &hi.0],
        ))))
    }

    /// The namespace prefix of `window`: `peerns2-rvz-` and 24 hex characters.
    pub fn namespace(&self, window: u64) -> String {
        let mac = hmac(&self.0[..], &[b"namespace", &window.to_be_bytes()]);
        format!("{PREFIX}{}", hex::encode(&mac[..SLUG_BYTES]))
    }

    fn route_key(&self, window: u64) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(hmac(&self.0[..], &[b"route", &window.to_be_bytes()]))
    }

    /// `peer_id` sealed for the contact, as `sender`'s note in `window`.
    pub fn seal_route(&self, window: u64, sender: &Fingerprint, peer_id: &str) -> Vec<u8> {
        let aad = route_aad(&self.namespace(window), sender);
        crypto::seal(&self.route_key(window), &aad, peer_id.as_bytes())
    }

    /// The persistent ID in `sender`'s note of `window`, if the note is sealed under this
    /// secret for that sender and window and holds a well-formed ID.
    pub fn open_route(&self, window: u64, sender: &Fingerprint, note: &[u8]) -> Option<String> {
        let aad = route_aad(&self.namespace(window), sender);
        let plain = crypto::open(&self.route_key(window), &aad, note).ok()?;
        let id = std::str::from_utf8(&plain).ok()?;
        valid_peer_id(id).then(|| id.to_owned())
    }
}

/// What to change so the running meetings match the wanted contacts in `window`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Meetings to leave: no longer wanted, or of an older window.
    pub leave: Vec<Fingerprint>,
    /// Meetings to start in `window`.
    pub join: Vec<Fingerprint>,
    /// Contacts whose search begins (not merely turning to the next window).
    pub started: Vec<Fingerprint>,
    /// Contacts whose search ends.
    pub ended: Vec<Fingerprint>,
}

/// Plans the meetings: `running` are (contact, window) pairs, `wanted` the contacts to meet.
pub fn plan(running: &[(Fingerprint, u64)], wanted: &[Fingerprint], window: u64) -> Plan {
    let mut p = Plan::default();
    for (fp, w) in running {
        let want = wanted.contains(fp);
        if !want {
            p.leave.push(*fp);
            p.ended.push(*fp);
        } else if *w != window {
            p.leave.push(*fp);
            p.join.push(*fp);
        }
    }
    for fp in wanted {
        if !running.iter().any(|(r, _)| r == fp) {
            p.join.push(*fp);
            p.started.push(*fp);
        }
    }
    p
}

fn route_aad(namespace: &str, sender: &Fingerprint) -> Vec<u8> {
    let mut aad = b"peerns2/rvz/route\0".to_vec();
    aad.extend_from_slice(namespace.as_bytes());
    aad.push(0);
    aad.extend_from_slice(&sender.0);
    aad
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::presence::{MAX_ID_BYTES, MAX_NOTE_BYTES};
    use crate::identity::new_peer_id;

    fn pair() -> (Identity, Identity) {
        (Identity::generate(), Identity::generate())
    }

    #[test]
    fn both_sides_derive_the_same_namespace() {
        let (a, b) = pair();
        let sa = PairSecret::derive(&a, &b.public_key()).unwrap();
        let sb = PairSecret::derive(&b, &a.public_key()).unwrap();
        let w = window(1_800_000_123_456);
        assert_eq!(sa.namespace(w), sb.namespace(w));
        assert!(sa.namespace(w).starts_with(PREFIX));
        assert_eq!(sa.namespace(w).len(), PREFIX.len() + 2 * SLUG_BYTES);
        // A disc ID under it still fits a presence record and a PeerJS ID.
        assert!(sa.namespace(w).len() + "-d-".len() + 16 <= MAX_ID_BYTES.min(64));
        // Windows rotate the name; another pair meets elsewhere.
        assert_ne!(sa.namespace(w), sa.namespace(w + 1));
        let c = Identity::generate();
        let sc = PairSecret::derive(&a, &c.public_key()).unwrap();
        assert_ne!(sa.namespace(w), sc.namespace(w));
    }

    #[test]
    fn plan_joins_leaves_and_turns_windows() {
        let [a, b, c] = [1u8, 2, 3].map(|i| Fingerprint([i; 32]));
        // Nothing running: every wanted contact starts.
        assert_eq!(
            plan(&[], &[a, b], 5),
            Plan {
                join: vec![a, b],
                started: vec![a, b],
                ..Plan::default()
            }
        );
        // a keeps its meeting, b turns to the new window (no event), c is no longer wanted.
        let p = plan(&[(a, 6), (b, 5), (c, 6)], &[a, b], 6);
        assert_eq!(p.leave, [b, c]);
        assert_eq!(p.join, [b]);
        assert!(p.started.is_empty());
        assert_eq!(p.ended, [c]);
        // Steady state: nothing to do.
        assert_eq!(plan(&[(a, 6)], &[a], 6), Plan::default());
    }

    #[test]
    fn windows_are_ten_minutes() {
        assert_eq!(window(0), 0);
        assert_eq!(window(WINDOW_MS - 1), 0);
        assert_eq!(window(WINDOW_MS), 1);
        assert_eq!(until_next_window(WINDOW_MS + 1), WINDOW_MS - 1);
        assert_eq!(until_next_window(0), WINDOW_MS);
    }

    #[test]
    fn route_opens_only_for_its_sender_window_and_pair() {
        let (a, b) = pair();
        let sa = PairSecret::derive(&a, &b.public_key()).unwrap();
        let sb = PairSecret::derive(&b, &a.public_key()).unwrap();
        let (fa, fb) = (a.fingerprint(), b.fingerprint());
        let id = new_peer_id();
        let note = sa.seal_route(7, &fa, &id);
        assert!(note.len() <= MAX_NOTE_BYTES);
        assert_eq!(sb.open_route(7, &fa, &note), Some(id.clone()));
        // Another window (a replay from an older one), a reflected note, another pair: refused.
        assert_eq!(sb.open_route(8, &fa, &note), None);
        assert_eq!(sb.open_route(7, &fb, &note), None);
        let c = Identity::generate();
        let sc = PairSecret::derive(&c, &a.public_key()).unwrap();
        assert_eq!(sc.open_route(7, &fa, &note), None);
        // Tampering and garbage.
        let mut bent = note.clone();
        bent[30] ^= 1;
        assert_eq!(sb.open_route(7, &fa, &bent), None);
        assert_eq!(sb.open_route(7, &fa, b""), None);
        assert_eq!(sb.open_route(7, &fa, &[0; 100]), None);
        // A well-sealed note that is not a persistent ID is no route.
        let junk = sa.seal_route(7, &fa, "peerns2-rvz-not-an-id");
        assert_eq!(sb.open_route(7, &fa, &junk), None);
    }
}
