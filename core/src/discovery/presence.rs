//! Signed presence records: who is in a namespace, under which discovery ID, since when.
//!
//! A record is signed by the member's identity key over a domain-separated encoding that binds
//! the namespace and the discovery ID, and carries the time it was issued. Routers are not
//! trusted: every member verifies every record itself ([`SignedPresence::decode`]) and checks
//! that it belongs to the namespace and is fresh ([`SignedPresence::check`]). Coordinates
//! (stadium mode) travel only inside records and live only in memory.

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;

use ed25519_dalek::{Signature, VerifyingKey};

use super::wire::{Reader, WireError, Writer};
use crate::crypto::sha256;
use crate::identity::{Fingerprint, Identity};

/// Signature domain: a presence signature can never be mistaken for another signed object.
const DOMAIN: &[u8] = b"peerns2/presence/v1\0";
/// Longest namespace prefix or discovery ID, in bytes.
pub const MAX_ID_BYTES: usize = 96;
/// Longest display name, in bytes (64 characters of up to 4 bytes).
pub const MAX_NAME_BYTES: usize = 256;
/// Longest note, in bytes (opaque to discovery; a rendezvous carries a sealed route in it).
pub const MAX_NOTE_BYTES: usize = 128;
/// Longest encoded record.
pub const MAX_RECORD_BYTES: usize =
    2 + MAX_ID_BYTES * 2 + 4 + 32 + 8 + MAX_NAME_BYTES + 25 + 2 + MAX_NOTE_BYTES + 66;

/// A position in a record (stadium mode).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GeoStamp {
    /// Degrees.
    pub lat: f64,
    /// Degrees.
    pub lon: f64,
    /// Metres.
    pub accuracy_m: f64,
}

/// Positions in records snap to a grid of this many degrees of latitude (about 11 m), and the
/// same distance in longitude: enough to sort people by distance and show "12 m", not enough
/// to pin a seat.
pub const POSITION_GRID_DEG: f64 = 1e-4;
/// The accuracy a record claims is never better than the grid.
const MIN_STAMP_ACCURACY_M: f64 = 10.0;

impl GeoStamp {
    /// The position as it goes into a record: snapped to the grid (≈ 11 m × 11 m cells, so at
    /// most ≈ 8 m from the true point), accuracy at least 10 m, in whole metres.
    pub fn coarse(self) -> Self {
        let snap = |v: f64, step: f64| (v / step).round() * step;
        let lat = snap(self.lat, POSITION_GRID_DEG).clamp(-90.0, 90.0);
        // A degree of longitude shrinks with cos(latitude): widen the step to keep cells
        // square (capped near the poles).
        let lon_step = POSITION_GRID_DEG / lat.to_radians().cos().max(0.01);
        let lon = snap(self.lon, lon_step).clamp(-180.0, 180.0);
        Self {
            lat,
            lon,
            accuracy_m: self.accuracy_m.max(MIN_STAMP_ACCURACY_M).round(),
        }
    }
}

/// The signed content of a presence record.
#[derive(Debug, Clone, PartialEq)]
pub struct Presence {
    /// The namespace prefix, e.g. `peerns2-ns-climbing`.
    pub namespace: String,
    /// The member's discovery ID in this namespace (never its persistent ID).
    pub disc_id: String,
    /// The member's Ed25519 identity key.
    pub key: [u8; 32],
    /// When the record was issued, Unix milliseconds.
    pub issued_ms: u64,
    /// Display name.
    pub name: String,
    /// Position, in geo namespaces.
    pub geo: Option<GeoStamp>,
    /// Opaque bytes for whoever reads the record (empty when unused), signed like the rest.
    pub note: Vec<u8>,
}

/// Why a record was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PresenceError {
    /// Not a well-formed record.
    #[error("malformed record: {0}")]
    Malformed(#[from] WireError),
    /// A field is out of range.
    #[error("invalid record: {0}")]
    Invalid(&'static str),
    /// The signature does not verify.
    #[error("bad signature")]
    BadSignature,
    /// Signed for another namespace.
    #[error("record is for another namespace")]
    WrongNamespace,
    /// Issued too long ago (or replayed).
    #[error("stale record")]
    Stale,
    /// Issued in the future beyond the allowed clock skew.
    #[error("record from the future")]
    Future,
}

impl Presence {
    fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.raw(DOMAIN)
            .u8(1)
            .str(&self.namespace)
            .str(&self.disc_id)
            .raw(&self.key);
        w.u64(self.issued_ms).str(&self.name);
        match self.geo {
            None => w.u8(0),
            Some(g) => w.u8(1).f64(g.lat).f64(g.lon).f64(g.accuracy_m),
        };
        w.bytes(&self.note);
        w.0
    }

    fn decode(body: &[u8]) -> Result<Self, PresenceError> {
        let mut r = Reader::new(body);
        if r.take(DOMAIN.len())? != DOMAIN || r.u8()? != 1 {
            return Err(PresenceError::Invalid("version"));
        }
        let namespace = r.str(MAX_ID_BYTES, "namespace")?.to_owned();
        let disc_id = r.str(MAX_ID_BYTES, "discovery id")?.to_owned();
        let key = r.array()?;
        let issued_ms = r.u64()?;
        // Sanitized here, once: the signature covers the raw bytes, everything else sees this.
        let name = crate::text::display_name(r.str(MAX_NAME_BYTES, "name")?);
        let geo = match r.u8()? {
            0 => None,
            1 => Some(GeoStamp {
                lat: r.f64()?,
                lon: r.f64()?,
                accuracy_m: r.f64()?,
            }),
            _ => return Err(WireError::Unknown("geo flag").into()),
        };
        let note = r.bytes(MAX_NOTE_BYTES, "note")?.to_vec();
        r.finish()?;
        if let Some(g) = geo
            && !(g.lat.is_finite()
                && g.lon.is_finite()
                && g.accuracy_m.is_finite()
                && (-90.0..=90.0).contains(&g.lat)
                && (-180.0..=180.0).contains(&g.lon)
                && g.accuracy_m >= 0.0)
        {
            return Err(PresenceError::Invalid("coordinates"));
        }
        if disc_id.is_empty() || namespace.is_empty() {
            return Err(PresenceError::Invalid("empty id"));
        }
        Ok(Self {
            namespace,
            disc_id,
            key,
            issued_ms,
            name,
            geo,
            note,
        })
    }
}

/// A presence record with its signature, verified when decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct SignedPresence {
    body: Vec<u8>,
    sig: [u8; 64],
    presence: Presence,
}

impl SignedPresence {
    /// Signs `presence` with `identity` (whose key must be `presence.key`).
    pub fn sign(identity: &Identity, mut presence: Presence) -> Self {
        presence.key = identity.public_key().to_bytes();
        let body = presence.encode();
        let sig = identity.sign(&body).to_bytes();
        Self {
            body,
            sig,
            presence,
        }
    }

    /// Decodes and verifies a record (consulting `cache` to skip signatures it already checked).
    pub fn decode(bytes: &[u8], cache: &VerifyCache) -> Result<Self, PresenceError> {
        let mut r = Reader::new(bytes);
        let body = r.bytes(MAX_RECORD_BYTES, "record")?;
        let sig: [u8; 64] = r.array()?;
        r.finish()?;
        let presence = Presence::decode(body)?;
        let digest = digest(body, &sig);
        if !cache.contains(&digest) {
            let key =
                VerifyingKey::from_bytes(&presence.key).map_err(|_| PresenceError::BadSignature)?;
            key.verify_strict(body, &Signature::from_bytes(&sig))
                .map_err(|_| PresenceError::BadSignature)?;
            cache.insert(digest);
        }
        Ok(Self {
            body: body.to_vec(),
            sig,
            presence,
        })
    }

    /// The wire form.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        self.write(&mut w);
        w.0
    }

    pub(crate) fn write(&self, w: &mut Writer) {
        w.bytes(&self.body).raw(&self.sig);
    }

    /// Encoded size in bytes.
    pub fn encoded_len(&self) -> usize {
        2 + self.body.len() + 64
    }

    /// The signed content.
    pub fn presence(&self) -> &Presence {
        &self.presence
    }

    /// Fingerprint of the signing key.
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint(sha256(&self.presence.key))
    }

    /// Checks that the record belongs to `namespace` and was issued within `max_age_ms` before
    /// `now_ms` (allowing `skew_ms` into the future).
    pub fn check(
        &self,
        namespace: &str,
        now_ms: u64,
        max_age_ms: u64,
        skew_ms: u64,
    ) -> Result<(), PresenceError> {
        if self.presence.namespace != namespace {
            return Err(PresenceError::WrongNamespace);
        }
        if self.presence.issued_ms > now_ms.saturating_add(skew_ms) {
            return Err(PresenceError::Future);
        }
        if now_ms.saturating_sub(self.presence.issued_ms) > max_age_ms {
            return Err(PresenceError::Stale);
        }
        Ok(())
    }
}

fn digest(body: &[u8], sig: &[u8; 64]) -> [u8; 32] {
    let mut all = Vec::with_capacity(body.len() + 64);
    all.extend_from_slice(body);
    all.extend_from_slice(sig);
    sha256(&all)
}

/// Verified digests, and their insertion order for eviction.
type Digests = (HashSet<[u8; 32]>, VecDeque<[u8; 32]>);

/// Remembers records whose signatures verified, so a record seen again (from a second cell, a
/// re-sent snapshot, or — in the simulator — by another node) is not verified twice. Bounded:
/// the oldest entries are forgotten first.
pub struct VerifyCache {
    inner: Mutex<Digests>,
    capacity: usize,
}

impl VerifyCache {
    /// A cache of at most `capacity` digests.
    pub fn new(capacity: usize) -> Self {
        Self {
            inner: Mutex::new((HashSet::new(), VecDeque::new())),
            capacity,
        }
    }

    fn contains(&self, d: &[u8; 32]) -> bool {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .0
            .contains(d)
    }

    fn insert(&self, d: [u8; 32]) {
        let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let (set, order) = &mut *guard;
        if self.capacity == 0 || !set.insert(d) {
            return;
        }
        order.push_back(d);
        while order.len() > self.capacity {
            if let Some(old) = order.pop_front() {
                set.remove(&old);
            }
        }
    }
}

impl Default for VerifyCache {
    fn default() -> Self {
        Self::new(4096)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::geo::{GeoPoint, distance_m};

    /// Review item 2: a record's position is ≈ 10 m coarse — never more than ≈ 8 m off, and
    /// every point of a grid cell gives the same stamp (a seat cannot be told from its
    /// neighbours).
    #[test]
    fn stamps_are_coarse() {
        for (lat, lon) in [
            (52.520_008, 13.404_954),
            (-33.856_784, 151.215_297),
            (64.146_6, -21.942_6),
            (0.000_01, -0.000_01),
        ] {
            let exact = GeoStamp {
                lat,
                lon,
                accuracy_m: 3.2,
            };
            let c = exact.coarse();
            let off = distance_m(
                GeoPoint::new(lat, lon).unwrap(),
                GeoPoint::new(c.lat, c.lon).unwrap(),
            );
            assert!(off <= 8.5, "{off} m at {lat},{lon}");
            assert_eq!(c.accuracy_m, 10.0);
            assert_eq!(c.coarse(), c, "snapping is idempotent");
            // A metre or two away (the next seat): the same stamp.
            let mut same = 0;
            for d in [-2e-5, -1e-5, 1e-5, 2e-5] {
                let near = GeoStamp {
                    lat: lat + d,
                    ..exact
                }
                .coarse();
                same += usize::from(near == c);
            }
            assert!(
                same >= 2,
                "{same} of 4 neighbours share the stamp at {lat},{lon}"
            );
        }
    }

    fn record(id: &Identity, ns: &str, disc: &str, at: u64) -> SignedPresence {
        SignedPresence::sign(
            id,
            Presence {
                namespace: ns.into(),
                disc_id: disc.into(),
                key: [0; 32],
                issued_ms: at,
                name: "Ada".into(),
                geo: Some(GeoStamp {
                    lat: 48.85,
                    lon: 2.35,
                    accuracy_m: 12.0,
                }),
                note: vec![7; MAX_NOTE_BYTES],
            },
        )
    }

    #[test]
    fn round_trip_verifies() {
        let id = Identity::generate();
        let rec = record(&id, "peerns2-ns-x", "peerns2-ns-x-d-1", 1_000);
        let bytes = rec.encode();
        assert_eq!(bytes.len(), rec.encoded_len());
        assert!(bytes.len() <= MAX_RECORD_BYTES);
        let cache = VerifyCache::default();
        let back = SignedPresence::decode(&bytes, &cache).unwrap();
        assert_eq!(back, rec);
        assert_eq!(back.fingerprint(), id.fingerprint());
        // Cached: the second decode skips verification but returns the same record.
        assert_eq!(SignedPresence::decode(&bytes, &cache).unwrap(), rec);
    }

    #[test]
    fn forgeries_fail() {
        let (alice, mallory) = (Identity::generate(), Identity::generate());
        let rec = record(&alice, "ns", "d1", 1_000);
        let cache = VerifyCache::default();
        // Any flipped bit in body or signature breaks it.
        let bytes = rec.encode();
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x01;
            assert!(
                SignedPresence::decode(&b, &cache).is_err(),
                "bit flip at {i}"
            );
        }
        // Mallory re-signs Alice's content under Alice's key field: the signature is hers,
        // the key is Alice's, so it fails.
        let mut forged = rec.clone();
        forged.sig = mallory.sign(&forged.body).to_bytes();
        assert_eq!(
            SignedPresence::decode(&forged.encode(), &cache),
            Err(PresenceError::BadSignature)
        );
        assert!(SignedPresence::decode(&bytes[..10], &cache).is_err());
    }

    #[test]
    fn a_malicious_name_is_sanitized_when_decoded() {
        let id = Identity::generate();
        let mut p = record(&id, "ns", "d", 1).presence().clone();
        p.name = "Ada\u{202E}gpj.exe\u{200B}\n\u{1b}[2J".into();
        let signed = SignedPresence::sign(&id, p);
        let back = SignedPresence::decode(&signed.encode(), &VerifyCache::default()).unwrap();
        // The signature still verifies over the raw bytes; the name others see is clean.
        assert_eq!(back.presence().name, "Adagpj.exe[2J");
    }

    #[test]
    fn namespace_and_freshness() {
        let id = Identity::generate();
        let rec = record(&id, "ns-a", "d", 100_000);
        assert_eq!(rec.check("ns-a", 100_000, 60_000, 5_000), Ok(()));
        assert_eq!(
            rec.check("ns-b", 100_000, 60_000, 5_000),
            Err(PresenceError::WrongNamespace)
        );
        assert_eq!(
            rec.check("ns-a", 170_000, 60_000, 5_000),
            Err(PresenceError::Stale)
        );
        assert_eq!(
            rec.check("ns-a", 90_000, 60_000, 5_000),
            Err(PresenceError::Future)
        );
    }

    #[test]
    fn oversize_note_refused() {
        let id = Identity::generate();
        let mut p = record(&id, "ns", "d", 1).presence().clone();
        p.note = vec![0; MAX_NOTE_BYTES + 1];
        let rec = SignedPresence::sign(&id, p);
        assert!(matches!(
            SignedPresence::decode(&rec.encode(), &VerifyCache::default()),
            Err(PresenceError::Malformed(_))
        ));
    }

    #[test]
    fn bad_coordinates_refused() {
        let id = Identity::generate();
        let mut p = record(&id, "ns", "d", 1).presence().clone();
        p.geo = Some(GeoStamp {
            lat: 91.0,
            lon: 0.0,
            accuracy_m: 1.0,
        });
        let rec = SignedPresence::sign(&id, p);
        assert_eq!(
            SignedPresence::decode(&rec.encode(), &VerifyCache::default()),
            Err(PresenceError::Invalid("coordinates"))
        );
    }

    #[test]
    fn cache_is_bounded() {
        let c = VerifyCache::new(2);
        for i in 0..5u8 {
            c.insert([i; 32]);
        }
        assert!(!c.contains(&[0; 32]));
        assert!(c.contains(&[4; 32]) && c.contains(&[3; 32]));
    }
}
