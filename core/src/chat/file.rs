//! Files in a conversation: the signed manifest a `File` op carries, and the `files` table that
//! tracks each transfer (the bytes live on disk in the profile, never in the database). The
//! receiver drives a transfer: it asks for chunks from the first one it does not have, so a
//! transfer resumes from the last acknowledged chunk after a disconnect or a restart.

use ed25519_dalek::{Signature, VerifyingKey};
use rusqlite::{Connection, OptionalExtension, params};

use super::store::ChatError;
use super::wire::Id;
use crate::discovery::wire::{Reader, WireError, Writer};
use crate::identity::{Fingerprint, Identity};

/// Bytes per chunk (fits a session frame with its header); also the largest chunk accepted.
pub const CHUNK_SIZE: u32 = 60 * 1024;
/// Smallest chunk accepted unless the whole file fits in one chunk: tiny chunks would cost a
/// frame, a write and a queue slot per few bytes.
pub const MIN_CHUNK: u32 = 16 * 1024;
/// Domain of the manifest signature.
const MANIFEST_DOMAIN: &[u8] = b"peerns2/file-manifest/v2\0";
const MAX_NAME: usize = 255;
const MAX_MIME: usize = 127;

/// What a file is: signed by the sender, checked by the receiver before any byte is exposed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// Transfer id: always the id of the `File` op that announces it.
    pub id: Id,
    /// File name (no path).
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// Media type, e.g. `image/jpeg`.
    pub mime: String,
    /// BLAKE3 hash of the contents.
    pub hash: [u8; 32],
    /// Bytes per chunk.
    pub chunk_size: u32,
}

/// `name` made safe as a file name ([`crate::text::file_name`]): what our manifests carry, and
/// what a peer's manifest must already be (one that is not is refused when decoded).
pub fn clean_name(name: &str) -> String {
    crate::text::file_name(name)
}

impl Manifest {
    fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.raw(&self.id)
            .str(&self.name)
            .u64(self.size)
            .str(&self.mime)
            .raw(&self.hash)
            .u64(u64::from(self.chunk_size));
        w.0
    }

    /// The op body: the manifest and the sender's signature over it.
    pub fn sign(&self, identity: &Identity) -> Vec<u8> {
        let bytes = self.encode();
        let mut msg = MANIFEST_DOMAIN.to_vec();
        msg.extend_from_slice(&bytes);
        let mut out = bytes;
        out.extend_from_slice(&identity.sign(&msg).to_bytes());
        out
    }

    /// Parses the body of the `File` op `op_id` and checks the signature against the sender's
    /// key, the chunk size and that the manifest is the op's own (its id is the op's id).
    pub fn verify(body: &[u8], sender: &VerifyingKey, op_id: &Id) -> Result<Manifest, WireError> {
        if body.len() < 64 {
            return Err(WireError::Truncated);
        }
        let (bytes, sig) = body.split_at(body.len() - 64);
        let mut msg = MANIFEST_DOMAIN.to_vec();
        msg.extend_from_slice(bytes);
        let sig = Signature::from_bytes(sig.try_into().map_err(|_| WireError::Truncated)?);
        sender
            .verify_strict(&msg, &sig)
            .map_err(|_| WireError::Unknown("manifest signature"))?;
        let m = Self::decode(bytes)?;
        if m.chunk_size < MIN_CHUNK && m.size > u64::from(m.chunk_size) {
            return Err(WireError::Unknown("chunk size under the minimum"));
        }
        if m.id != *op_id {
            return Err(WireError::Unknown("manifest id other than the op's"));
        }
        Ok(m)
    }

    /// Parses an op body without checking the signature (our own, from the database).
    pub fn parse(body: &[u8]) -> Result<Manifest, WireError> {
        Self::decode(&body[..body.len().saturating_sub(64)])
    }

    fn decode(bytes: &[u8]) -> Result<Manifest, WireError> {
        let mut r = Reader::new(bytes);
        let m = Manifest {
            id: r.array()?,
            name: r.str(MAX_NAME, "file name")?.to_owned(),
            size: r.u64()?,
            mime: r.str(MAX_MIME, "media type")?.to_owned(),
            hash: r.array()?,
            chunk_size: u32::try_from(r.u64()?).map_err(|_| WireError::TooLong("chunk size"))?,
        };
        r.finish()?;
        if m.chunk_size == 0 || m.chunk_size > CHUNK_SIZE {
            return Err(WireError::TooLong("chunk size"));
        }
        if clean_name(&m.name) != m.name {
            return Err(WireError::Unknown("file name"));
        }
        Ok(m)
    }

    /// Number of chunks.
    pub fn chunks(&self) -> u64 {
        self.size.div_ceil(u64::from(self.chunk_size))
    }
}

/// Where a transfer stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileState {
    /// Chunks are moving (or will when the peers meet).
    Transferring,
    /// Received whole with a matching hash (or, for ours, confirmed by the receiver).
    Done,
    /// The receiver refused it (too large) or it failed verification for good.
    Refused,
}

impl FileState {
    /// As stored in the database.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Transferring => "transferring",
            Self::Done => "done",
            Self::Refused => "refused",
        }
    }

    /// From the database (anything unknown reads as refused).
    pub(crate) fn parse(s: &str) -> Self {
        match s {
            "transferring" => Self::Transferring,
            "done" => Self::Done,
            _ => Self::Refused,
        }
    }
}

/// A transfer as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    /// The manifest.
    pub manifest: Manifest,
    /// The contact.
    pub conv: Fingerprint,
    /// We send it.
    pub outgoing: bool,
    /// Chunks the receiver has on disk (acknowledged).
    pub next_index: u64,
    /// Where it stands.
    pub state: FileState,
}

/// Records a transfer made or offered at `now_ms`; `false` (and nothing changed) if the id is
/// known already.
pub fn add(
    conn: &Connection,
    conv: &Fingerprint,
    outgoing: bool,
    m: &Manifest,
    now_ms: u64,
) -> Result<bool, ChatError> {
    let added = conn.execute(
        "INSERT INTO files (id, conv, outgoing, name, size, mime, content_hash, chunk_size, state,
                            updated_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'transferring', ?9) ON CONFLICT DO NOTHING",
        params![
            m.id.as_slice(),
            conv.to_hex(),
            outgoing,
            m.name,
            m.size as i64,
            m.mime,
            m.hash.as_slice(),
            m.chunk_size,
            now_ms as i64
        ],
    )?;
    Ok(added == 1)
}

const COLUMNS: &str =
    "id, conv, outgoing, name, size, mime, content_hash, chunk_size, next_index, state";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Option<Transfer>> {
    let id: Vec<u8> = r.get(0)?;
    let conv: String = r.get(1)?;
    let sha: Vec<u8> = r.get(6)?;
    let state: String = r.get(9)?;
    let (Ok(id), Ok(conv), Ok(hash)) = (id.try_into(), conv.parse(), sha.try_into()) else {
        return Ok(None);
    };
    Ok(Some(Transfer {
        manifest: Manifest {
            id,
            name: r.get(3)?,
            size: r.get::<_, i64>(4)? as u64,
            mime: r.get(5)?,
            hash,
            chunk_size: r.get(7)?,
        },
        conv,
        outgoing: r.get(2)?,
        next_index: r.get::<_, i64>(8)? as u64,
        state: FileState::parse(&state),
    }))
}

/// The transfer `id`.
pub fn get(conn: &Connection, id: &Id) -> Result<Option<Transfer>, ChatError> {
    Ok(conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM files WHERE id = ?1"),
            [id.as_slice()],
            row,
        )
        .optional()?
        .flatten())
}

/// Unfinished transfers from `conv` (or anyone) to us (to resume when it is connected).
pub fn incoming_unfinished(
    conn: &Connection,
    conv: Option<&Fingerprint>,
) -> Result<Vec<Transfer>, ChatError> {
    unfinished(conn, false, conv, 0)
}

/// Unfinished transfers from us to `conv` (or anyone) that made progress (or were offered) at
/// `since_ms` or later: the receiver has not said it has them whole (or refuses them) yet.
pub fn outgoing_unfinished(
    conn: &Connection,
    conv: Option<&Fingerprint>,
    since_ms: u64,
) -> Result<Vec<Transfer>, ChatError> {
    unfinished(conn, true, conv, since_ms)
}

fn unfinished(
    conn: &Connection,
    outgoing: bool,
    conv: Option<&Fingerprint>,
    since_ms: u64,
) -> Result<Vec<Transfer>, ChatError> {
    let mut st = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM files WHERE outgoing = ?1 AND state = 'transferring'
         AND (?2 IS NULL OR conv = ?2) AND updated_ms >= ?3"
    ))?;
    let conv = conv.map(Fingerprint::to_hex);
    let rows = st.query_map(params![outgoing, conv, since_ms as i64], row)?;
    Ok(rows
        .filter_map(Result::transpose)
        .collect::<Result<_, _>>()?)
}

/// Records progress made at `now_ms`: chunks before `next_index` are safe on the receiver's
/// disk.
pub fn set_progress(
    conn: &Connection,
    id: &Id,
    next_index: u64,
    now_ms: u64,
) -> Result<(), ChatError> {
    conn.execute(
        "UPDATE files SET next_index = ?2, updated_ms = ?3 WHERE id = ?1",
        params![id.as_slice(), next_index as i64, now_ms as i64],
    )?;
    Ok(())
}

/// Bytes the unfinished incoming transfers from `conv` (or from everyone) will take, each
/// counted as at least [`MIN_CHUNK`] so that empty offers cannot pile up for free.
pub fn incoming_unfinished_bytes(
    conn: &Connection,
    conv: Option<&Fingerprint>,
) -> Result<u64, ChatError> {
    let mut st = conn.prepare(
        "SELECT size FROM files WHERE outgoing = 0 AND state = 'transferring'
         AND (?1 IS NULL OR conv = ?1)",
    )?;
    let sizes = st.query_map([conv.map(Fingerprint::to_hex)], |r| r.get::<_, i64>(0))?;
    let mut total = 0u64;
    for size in sizes {
        total = total.saturating_add((size? as u64).max(u64::from(MIN_CHUNK)));
    }
    Ok(total)
}

/// Unfinished incoming transfers without progress since `before_ms`.
pub fn incoming_stale(conn: &Connection, before_ms: u64) -> Result<Vec<Transfer>, ChatError> {
    let mut st = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM files WHERE outgoing = 0 AND state = 'transferring'
         AND updated_ms < ?1"
    ))?;
    let rows = st.query_map([before_ms as i64], row)?;
    Ok(rows
        .filter_map(Result::transpose)
        .collect::<Result<_, _>>()?)
}

/// Moves a transfer to `state`.
pub fn set_state(conn: &Connection, id: &Id, state: FileState) -> Result<(), ChatError> {
    conn.execute(
        "UPDATE files SET state = ?2 WHERE id = ?1",
        params![id.as_slice(), state.as_str()],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        Manifest {
            id: [7; 16],
            name: "holiday.jpg".into(),
            size: 1_000_000,
            mime: "image/jpeg".into(),
            hash: [1; 32],
            chunk_size: CHUNK_SIZE,
        }
    }

    #[test]
    fn manifests_are_signed_and_checked() {
        let me = Identity::generate();
        let body = manifest().sign(&me);
        let op = manifest().id;
        assert_eq!(
            Manifest::verify(&body, &me.public_key(), &op),
            Ok(manifest())
        );
        assert_eq!(Manifest::parse(&body), Ok(manifest()));
        assert_eq!(manifest().chunks(), 17);
        // Another key, a changed byte, a bent name.
        let other = Identity::generate();
        assert!(Manifest::verify(&body, &other.public_key(), &op).is_err());
        let mut bent = body.clone();
        bent[20] ^= 1;
        assert!(Manifest::verify(&bent, &me.public_key(), &op).is_err());
        let mut m = manifest();
        m.name = "../../etc/passwd".into();
        assert!(Manifest::verify(&m.sign(&me), &me.public_key(), &op).is_err());
    }

    #[test]
    fn a_manifest_verifies_only_under_its_own_op() {
        let me = Identity::generate();
        let body = manifest().sign(&me);
        assert_eq!(
            Manifest::verify(&body, &me.public_key(), &[8; 16]),
            Err(WireError::Unknown("manifest id other than the op's"))
        );
    }

    #[test]
    fn chunks_are_at_least_the_minimum_unless_the_file_is_one_chunk() {
        let me = Identity::generate();
        let check = |size: u64, chunk_size: u32| {
            let m = Manifest {
                size,
                chunk_size,
                ..manifest()
            };
            Manifest::verify(&m.sign(&me), &me.public_key(), &m.id).is_ok()
        };
        // One-byte chunks of a megabyte: a million frames and writes.
        assert!(!check(1_000_000, 1));
        assert!(!check(1_000_000, MIN_CHUNK - 1));
        assert!(check(1_000_000, MIN_CHUNK));
        assert!(check(1_000_000, CHUNK_SIZE));
        assert!(!check(1_000_000, CHUNK_SIZE + 1));
        // A file that fits one chunk may name a smaller one; an empty file any.
        assert!(check(10, 10));
        assert!(check(0, 1));
        assert!(!check(11, 10));
    }

    #[test]
    fn names_lose_paths_and_control_characters() {
        assert_eq!(clean_name("../../etc/passwd"), "passwd");
        assert_eq!(clean_name("C:\\Users\\a\\report.pdf"), "report.pdf");
        assert_eq!(clean_name("a\u{0}b\nc.txt"), "abc.txt");
        assert_eq!(clean_name(".."), "file");
        assert_eq!(clean_name(".hidden"), "hidden");
        assert_eq!(clean_name(&"é".repeat(200)).len(), 254);
    }
}
