//! Contacts and trust: people are their identity-key fingerprints; PeerJS IDs are only routing
//! details. Trust levels are enforced here, in the core, for every capability
//! ([`Trust::allows`]). Requests go both ways with pending / later states; share links carry a
//! persistent ID and a full fingerprint (`peerns2:` URIs).
//!
//! Functions take a SQLite connection (run them through `Store::call`); every write is one
//! transaction.

pub mod limit;
pub mod qr;
pub mod rendezvous;
pub mod waiting;

use std::fmt;

use ed25519_dalek::VerifyingKey;
use rusqlite::{Connection, OptionalExtension, params};

use crate::identity::{Fingerprint, PEER_ID_PREFIX};
use crate::store::StoreError;

/// Incoming requests not answered within this long are moved to "later".
pub const AUTO_LATER_MS: u64 = 60_000;
pub use crate::text::MAX_NAME_CHARS;
/// Most incoming requests stored at once (pending and later); more are refused until the user
/// answers some.
pub const MAX_INCOMING_REQUESTS: usize = 200;

/// How much a contact may do. Saving a contact gives [`Trust::Trusted`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Trust {
    /// Connections refused at the handshake; nothing stored from them.
    Blocked = 0,
    /// Messages and files.
    Known = 1,
    /// Also calls, presence visibility, group invites.
    Trusted = 2,
    /// Also signed RPC calls.
    FullAccess = 3,
}

/// Something a peer may ask of us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capability {
    /// Open an authenticated session.
    Connect,
    /// Send text messages.
    Message,
    /// Send files.
    File,
    /// Start a call.
    Call,
    /// See our online status.
    Presence,
    /// Invite us to a group.
    GroupInvite,
    /// Send signed RPC calls.
    Rpc,
}

impl Trust {
    /// The level stored as `n`.
    pub fn from_level(n: i64) -> Option<Self> {
        Some(match n {
            0 => Self::Blocked,
            1 => Self::Known,
            2 => Self::Trusted,
            3 => Self::FullAccess,
            _ => return None,
        })
    }

    /// The level as stored.
    pub fn level(self) -> i64 {
        self as i64
    }

    /// Whether a contact at this level may use `cap`.
    pub fn allows(self, cap: Capability) -> bool {
        use Capability::*;
        let needed = match cap {
            Connect | Message | File => Trust::Known,
            Call | Presence | GroupInvite => Trust::Trusted,
            Rpc => Trust::FullAccess,
        };
        self >= needed
    }
}

/// A saved contact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    /// Identity key fingerprint.
    pub fingerprint: Fingerprint,
    /// Identity key.
    pub public_key: [u8; 32],
    /// Display name.
    pub name: String,
    /// Trust level.
    pub trust: Trust,
    /// The fingerprint was compared out of band.
    pub verified: bool,
    /// Current persistent PeerJS ID, if known.
    pub peer_id: Option<String>,
}

/// A contact request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The other side's fingerprint.
    pub fingerprint: Fingerprint,
    /// Its identity key.
    pub public_key: [u8; 32],
    /// Its display name.
    pub name: String,
    /// Its persistent PeerJS ID.
    pub peer_id: String,
    /// We sent it (`true`) or received it.
    pub outgoing: bool,
    /// Moved to "later" (by the user, or after [`AUTO_LATER_MS`] unanswered).
    pub later: bool,
    /// When it arrived or was sent, Unix ms.
    pub created_ms: u64,
}

/// Why a contact operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ContactError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A field is malformed.
    #[error("invalid: {0}")]
    Invalid(String),
    /// No such contact or request.
    #[error("not found")]
    NotFound,
    /// The peer is blocked.
    #[error("blocked")]
    Blocked,
    /// Too many incoming requests are waiting for an answer.
    #[error("too many contact requests are waiting")]
    Full,
}

impl From<rusqlite::Error> for ContactError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Store(e.into())
    }
}

fn check_key(key: &[u8; 32]) -> Result<Fingerprint, ContactError> {
    let vk = VerifyingKey::from_bytes(key)
        .map_err(|_| ContactError::Invalid("not an Ed25519 public key".into()))?;
    Ok(Fingerprint::of(&vk))
}

fn check_name(name: &str) -> Result<String, ContactError> {
    let name = name.trim();
    if name.is_empty()
        || name.chars().count() > MAX_NAME_CHARS
        || name.chars().any(char::is_control)
    {
        return Err(ContactError::Invalid(format!(
            "a name has 1 to {MAX_NAME_CHARS} printable characters"
        )));
    }
    Ok(name.to_owned())
}

/// Whether `id` looks like a persistent PeerNS ID (`peerns2-` + 32 hex).
pub fn valid_peer_id(id: &str) -> bool {
    id.strip_prefix(PEER_ID_PREFIX)
        .and_then(|r| r.strip_prefix('-'))
        .is_some_and(|h| h.len() == 32 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// A `contacts` row as stored: fingerprint, key, name, trust, verified, peer id.
type ContactRow = (String, Vec<u8>, String, i64, bool, Option<String>);

fn row_contact(row: &rusqlite::Row<'_>) -> rusqlite::Result<ContactRow> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
    ))
}

fn to_contact(
    (fp, key, name, trust, verified, peer_id): ContactRow,
) -> Result<Contact, ContactError> {
    let public_key: [u8; 32] = key
        .try_into()
        .map_err(|_| ContactError::Invalid("stored key".into()))?;
    Ok(Contact {
        fingerprint: fp
            .parse()
            .map_err(|_| ContactError::Invalid("stored fingerprint".into()))?,
        public_key,
        name,
        trust: Trust::from_level(trust)
            .ok_or_else(|| ContactError::Invalid("stored trust".into()))?,
        verified,
        peer_id,
    })
}

const CONTACT_COLUMNS: &str = "fingerprint, public_key, name, trust, verified, peer_id";

/// The contact with this fingerprint.
pub fn get(conn: &Connection, fp: &Fingerprint) -> Result<Option<Contact>, ContactError> {
    conn.prepare_cached(&format!(
        "SELECT {CONTACT_COLUMNS} FROM contacts WHERE fingerprint = ?1"
    ))?
    .query_row([fp.to_hex()], row_contact)
    .optional()?
    .map(to_contact)
    .transpose()
}

/// Every contact, by name.
pub fn list(conn: &Connection) -> Result<Vec<Contact>, ContactError> {
    let mut st = conn.prepare(&format!(
        "SELECT {CONTACT_COLUMNS} FROM contacts ORDER BY name COLLATE NOCASE, fingerprint"
    ))?;
    let rows = st.query_map([], row_contact)?;
    rows.map(|r| to_contact(r?)).collect()
}

/// The contact currently reachable at `peer_id`, if any.
pub fn by_peer_id(conn: &Connection, peer_id: &str) -> Result<Option<Contact>, ContactError> {
    conn.query_row(
        &format!("SELECT {CONTACT_COLUMNS} FROM contacts WHERE peer_id = ?1"),
        [peer_id],
        row_contact,
    )
    .optional()?
    .map(to_contact)
    .transpose()
}

/// Saves (or updates) a contact for this key. A key is one contact: saving it again updates
/// the name, trust and route instead of duplicating it. Pending requests for the key are
/// resolved by the save.
pub fn save(
    conn: &mut Connection,
    public_key: &[u8; 32],
    name: &str,
    trust: Trust,
    peer_id: Option<&str>,
    now_ms: u64,
) -> Result<Contact, ContactError> {
    let fp = check_key(public_key)?;
    let name = check_name(name)?;
    if let Some(id) = peer_id
        && !valid_peer_id(id)
    {
        return Err(ContactError::Invalid(format!("bad peer id {id:?}")));
    }
    let now = now_ms as i64;
    let tx = conn.transaction()?;
    tx.execute(
        "INSERT INTO contacts (fingerprint, public_key, name, trust, verified, peer_id, created_ms, updated_ms)
         VALUES (?1, ?2, ?3, ?4, 0, ?5, ?6, ?6)
         ON CONFLICT (fingerprint) DO UPDATE SET
            name = excluded.name, trust = excluded.trust,
            peer_id = COALESCE(excluded.peer_id, contacts.peer_id), updated_ms = excluded.updated_ms",
        params![fp.to_hex(), public_key.as_slice(), name, trust.level(), peer_id, now],
    )?;
    if let Some(id) = peer_id {
        remember_peer_id(&tx, &fp, id, now)?;
    }
    tx.execute(
        "DELETE FROM contact_requests WHERE fingerprint = ?1",
        [fp.to_hex()],
    )?;
    tx.commit()?;
    get(conn, &fp)?.ok_or(ContactError::NotFound)
}

fn remember_peer_id(
    conn: &Connection,
    fp: &Fingerprint,
    id: &str,
    now: i64,
) -> rusqlite::Result<()> {
    // Another contact that claimed this ID before has moved on: the route is this key's now.
    conn.execute(
        "UPDATE contacts SET peer_id = NULL WHERE peer_id = ?1 AND fingerprint != ?2",
        params![id, fp.to_hex()],
    )?;
    conn.execute(
        "INSERT INTO contact_peer_ids (fingerprint, peer_id, seen_ms) VALUES (?1, ?2, ?3)
         ON CONFLICT (fingerprint, peer_id) DO UPDATE SET seen_ms = excluded.seen_ms",
        params![fp.to_hex(), id, now],
    )?;
    Ok(())
}

/// An authenticated session showed that the contact `fp` now uses `peer_id`.
pub fn update_route(
    conn: &mut Connection,
    fp: &Fingerprint,
    peer_id: &str,
    now_ms: u64,
) -> Result<(), ContactError> {
    if !valid_peer_id(peer_id) {
        return Err(ContactError::Invalid(format!("bad peer id {peer_id:?}")));
    }
    let tx = conn.transaction()?;
    let n = tx.execute(
        "UPDATE contacts SET peer_id = ?2, updated_ms = ?3 WHERE fingerprint = ?1",
        params![fp.to_hex(), peer_id, now_ms as i64],
    )?;
    if n == 0 {
        return Err(ContactError::NotFound);
    }
    remember_peer_id(&tx, fp, peer_id, now_ms as i64)?;
    tx.commit()?;
    Ok(())
}

/// The PeerJS IDs the contact has used, newest first.
pub fn peer_ids(conn: &Connection, fp: &Fingerprint) -> Result<Vec<String>, ContactError> {
    let mut st = conn.prepare(
        "SELECT peer_id FROM contact_peer_ids WHERE fingerprint = ?1 ORDER BY seen_ms DESC, peer_id",
    )?;
    let ids = st.query_map([fp.to_hex()], |r| r.get(0))?;
    Ok(ids.collect::<rusqlite::Result<_>>()?)
}

/// Changes a contact's trust level.
pub fn set_trust(conn: &Connection, fp: &Fingerprint, trust: Trust) -> Result<(), ContactError> {
    let n = conn.execute(
        "UPDATE contacts SET trust = ?2 WHERE fingerprint = ?1",
        params![fp.to_hex(), trust.level()],
    )?;
    if n == 0 {
        Err(ContactError::NotFound)
    } else {
        Ok(())
    }
}

/// Marks a contact's fingerprint as compared out of band (or not).
pub fn set_verified(
    conn: &Connection,
    fp: &Fingerprint,
    verified: bool,
) -> Result<(), ContactError> {
    let n = conn.execute(
        "UPDATE contacts SET verified = ?2 WHERE fingerprint = ?1",
        params![fp.to_hex(), verified],
    )?;
    if n == 0 {
        Err(ContactError::NotFound)
    } else {
        Ok(())
    }
}

/// Deletes a contact (and its route history).
pub fn remove(conn: &Connection, fp: &Fingerprint) -> Result<(), ContactError> {
    conn.execute("DELETE FROM contacts WHERE fingerprint = ?1", [fp.to_hex()])?;
    Ok(())
}

/// What a peer with this key may do: its contact's trust, or `Known`'s rights for a stranger
/// who is only asking to become a contact (`None` → nothing but a request).
pub fn trust_of(conn: &Connection, fp: &Fingerprint) -> Result<Option<Trust>, ContactError> {
    Ok(get(conn, fp)?.map(|c| c.trust))
}

/// Stores the presence secret a contact shared with us (stadium pseudonyms, decision 0010).
/// Returns whether `fp` is a contact (a stranger's secret is not kept).
pub fn set_presence_secret(
    conn: &Connection,
    fp: &Fingerprint,
    secret: &[u8; 32],
) -> Result<bool, ContactError> {
    let n = conn.execute(
        "UPDATE contacts SET presence_secret = ?2 WHERE fingerprint = ?1",
        rusqlite::params![fp.to_hex(), secret.as_slice()],
    )?;
    Ok(n == 1)
}

/// The presence secrets of contacts we trust at `min` or more, with their fingerprints.
pub fn presence_secrets(
    conn: &Connection,
    min: Trust,
) -> Result<Vec<(Fingerprint, [u8; 32])>, ContactError> {
    let mut st = conn.prepare_cached(
        "SELECT fingerprint, presence_secret FROM contacts
         WHERE presence_secret IS NOT NULL AND trust >= ?1",
    )?;
    let rows = st.query_map([min as i64], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?))
    })?;
    let mut out = vec![];
    for row in rows {
        let (fp, secret) = row?;
        if let (Ok(fp), Ok(secret)) = (fp.parse::<Fingerprint>(), <[u8; 32]>::try_from(secret)) {
            out.push((fp, secret));
        }
    }
    Ok(out)
}

/// Records a request (incoming from a stranger, or outgoing from us). A blocked key's request
/// is refused and nothing is stored; a request from an existing contact is refused as invalid;
/// a new incoming request when [`MAX_INCOMING_REQUESTS`] wait already is refused as full. A
/// request recorded again keeps its state; an incoming one also its time, an outgoing one (we
/// asked again) takes the new time.
pub fn add_request(
    conn: &Connection,
    public_key: &[u8; 32],
    name: &str,
    peer_id: &str,
    outgoing: bool,
    now_ms: u64,
) -> Result<Request, ContactError> {
    let fp = check_key(public_key)?;
    let name = check_name(name)?;
    if !valid_peer_id(peer_id) {
        return Err(ContactError::Invalid(format!("bad peer id {peer_id:?}")));
    }
    match trust_of(conn, &fp)? {
        Some(Trust::Blocked) => return Err(ContactError::Blocked),
        Some(_) => return Err(ContactError::Invalid("already a contact".into())),
        None => {}
    }
    if !outgoing {
        let (waiting, ours): (i64, bool) = conn.query_row(
            "SELECT count(*), coalesce(sum(fingerprint = ?1), 0) > 0
             FROM contact_requests WHERE outgoing = 0",
            [fp.to_hex()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        if !ours && waiting as usize >= MAX_INCOMING_REQUESTS {
            return Err(ContactError::Full);
        }
    }
    conn.execute(
        "INSERT INTO contact_requests (fingerprint, outgoing, public_key, name, peer_id, state, created_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, 'pending', ?6)
         ON CONFLICT (fingerprint, outgoing) DO UPDATE SET
            name = excluded.name, peer_id = excluded.peer_id,
            created_ms = CASE WHEN excluded.outgoing THEN excluded.created_ms ELSE created_ms END",
        params![fp.to_hex(), outgoing, public_key.as_slice(), name, peer_id, now_ms as i64],
    )?;
    requests(conn)?
        .into_iter()
        .find(|r| r.fingerprint == fp && r.outgoing == outgoing)
        .ok_or(ContactError::NotFound)
}

/// Whether we asked `fp` to be a contact and it has not answered (one keyed row).
pub fn asked(conn: &Connection, fp: &Fingerprint) -> Result<bool, ContactError> {
    let mut st = conn
        .prepare_cached("SELECT 1 FROM contact_requests WHERE fingerprint = ?1 AND outgoing = 1")?;
    Ok(st.exists([fp.to_hex()])?)
}

/// Every open request, oldest first.
pub fn requests(conn: &Connection) -> Result<Vec<Request>, ContactError> {
    let mut st = conn.prepare(
        "SELECT fingerprint, public_key, name, peer_id, outgoing, state, created_ms
         FROM contact_requests ORDER BY created_ms, fingerprint",
    )?;
    let rows = st.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, Vec<u8>>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, bool>(4)?,
            r.get::<_, String>(5)?,
            r.get::<_, i64>(6)?,
        ))
    })?;
    rows.map(|r| {
        let (fp, key, name, peer_id, outgoing, state, created) = r?;
        Ok(Request {
            fingerprint: fp
                .parse()
                .map_err(|_| ContactError::Invalid("stored fingerprint".into()))?,
            public_key: key
                .try_into()
                .map_err(|_| ContactError::Invalid("stored key".into()))?,
            name,
            peer_id,
            outgoing,
            later: state == "later",
            created_ms: created as u64,
        })
    })
    .collect()
}

/// Accepts an incoming request: the key becomes a contact at [`Trust::Trusted`].
pub fn accept(
    conn: &mut Connection,
    fp: &Fingerprint,
    now_ms: u64,
) -> Result<Contact, ContactError> {
    let req = requests(conn)?
        .into_iter()
        .find(|r| r.fingerprint == *fp && !r.outgoing)
        .ok_or(ContactError::NotFound)?;
    save(
        conn,
        &req.public_key,
        &req.name,
        Trust::Trusted,
        Some(&req.peer_id),
        now_ms,
    )
}

/// Rejects an incoming request, or cancels an outgoing one (nothing is kept).
pub fn drop_request(
    conn: &Connection,
    fp: &Fingerprint,
    outgoing: bool,
) -> Result<(), ContactError> {
    let n = conn.execute(
        "DELETE FROM contact_requests WHERE fingerprint = ?1 AND outgoing = ?2",
        params![fp.to_hex(), outgoing],
    )?;
    if n == 0 {
        Err(ContactError::NotFound)
    } else {
        Ok(())
    }
}

/// Moves an incoming request to "later".
pub fn later(conn: &Connection, fp: &Fingerprint) -> Result<(), ContactError> {
    let n = conn.execute(
        "UPDATE contact_requests SET state = 'later' WHERE fingerprint = ?1 AND outgoing = 0",
        [fp.to_hex()],
    )?;
    if n == 0 {
        Err(ContactError::NotFound)
    } else {
        Ok(())
    }
}

/// Moves incoming requests left unanswered for [`AUTO_LATER_MS`] to "later"; returns how many.
pub fn auto_later(conn: &Connection, now_ms: u64) -> Result<usize, ContactError> {
    Ok(conn.execute(
        "UPDATE contact_requests SET state = 'later'
         WHERE outgoing = 0 AND state = 'pending' AND created_ms <= ?1",
        [now_ms.saturating_sub(AUTO_LATER_MS) as i64],
    )?)
}

/// What a share link or QR code carries: a persistent ID and the full fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareLink {
    /// The persistent PeerJS ID to connect to.
    pub peer_id: String,
    /// The identity fingerprint the session handshake must prove.
    pub fingerprint: Fingerprint,
}

impl fmt::Display for ShareLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "peerns2:{}?fp={}",
            self.peer_id,
            self.fingerprint.to_hex()
        )
    }
}

impl std::str::FromStr for ShareLink {
    type Err = ContactError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || ContactError::Invalid("not a peerns2: link".into());
        let rest = s.trim().strip_prefix("peerns2:").ok_or_else(bad)?;
        let (peer_id, query) = rest.split_once('?').ok_or_else(bad)?;
        let fp = query
            .split('&')
            .find_map(|kv| kv.strip_prefix("fp="))
            .ok_or_else(bad)?;
        if !valid_peer_id(peer_id) {
            return Err(bad());
        }
        Ok(Self {
            peer_id: peer_id.to_owned(),
            fingerprint: fp.parse().map_err(|_| bad())?,
        })
    }
}

#[cfg(test)]
mod tests;
