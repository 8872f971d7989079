//! Groups in SQLite: the verified log, the messages (stored as signed, unique per group,
//! author and seq) and the router's acknowledgement of ours. The engine works on a
//! [`MemHistory`] loaded from here; the node writes what the engine reports with
//! [`persist`], one transaction per batch of events. Logs are verified again on load.

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::GroupId;
use super::engine::GroupEvent;
use super::history::{History, MemHistory};
use super::log::{Log, SignedEntry};
use super::message::SignedMessage;
use crate::identity::Fingerprint;
use crate::store::StoreError;

/// A stored group as lists show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRow {
    /// The group.
    pub gid: GroupId,
    /// Its name (from the log).
    pub name: String,
    /// Own messages up to this seq are stored at the router.
    pub acked: u64,
}

fn i(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Sqlite(rusqlite::Error::InvalidColumnType(
        0,
        what.to_owned(),
        rusqlite::types::Type::Blob,
    ))
}

/// Stores a group we created or joined with its log (replacing an older copy's log).
pub fn save_group(tx: &Transaction<'_>, log: &Log, now_ms: u64) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO groups (gid, name, joined_ms) VALUES (?1, ?2, ?3)
         ON CONFLICT (gid) DO UPDATE SET name = excluded.name",
        params![log.group().to_hex(), log.state().name, i(now_ms)],
    )?;
    save_log(tx, log, 0)
}

/// Writes the log's entries from index `from` on (earlier ones are unchanged).
pub fn save_log(tx: &Transaction<'_>, log: &Log, from: usize) -> Result<(), StoreError> {
    let gid = log.group().to_hex();
    tx.execute(
        "DELETE FROM group_log WHERE gid = ?1 AND idx >= ?2",
        params![gid, i(from as u64)],
    )?;
    let mut st =
        tx.prepare_cached("INSERT INTO group_log (gid, idx, entry) VALUES (?1, ?2, ?3)")?;
    for (n, e) in log.entries().iter().enumerate().skip(from) {
        st.execute(params![gid, i(n as u64), e.encode()])?;
    }
    tx.execute(
        "UPDATE groups SET name = ?2 WHERE gid = ?1",
        params![gid, log.state().name],
    )?;
    Ok(())
}

/// The group's log, verified from its first entry and checked to be this group's; `None`
/// if the group is unknown.
pub fn load_log(conn: &Connection, gid: &GroupId) -> Result<Option<Log>, StoreError> {
    let mut st = conn.prepare_cached("SELECT entry FROM group_log WHERE gid = ?1 ORDER BY idx")?;
    let entries = st
        .query_map([gid.to_hex()], |r| r.get::<_, Vec<u8>>(0))?
        .map(|b| {
            let b = b?;
            SignedEntry::decode(&b).map_err(|_| corrupt("group log entry"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if entries.is_empty() {
        return Ok(None);
    }
    match Log::from_entries(&entries) {
        Ok(log) if log.group() == *gid => Ok(Some(log)),
        _ => Err(corrupt("group log")),
    }
}

/// Replaces the group's stored proposals (ours, waiting to be appended) with `proposals`.
fn save_proposals(
    tx: &Transaction<'_>,
    gid: &GroupId,
    proposals: &[SignedEntry],
) -> Result<(), StoreError> {
    let gid = gid.to_hex();
    tx.execute("DELETE FROM group_proposals WHERE gid = ?1", [&gid])?;
    let mut st =
        tx.prepare_cached("INSERT INTO group_proposals (gid, n, entry) VALUES (?1, ?2, ?3)")?;
    for (n, p) in proposals.iter().enumerate() {
        st.execute(params![gid, i(n as u64), p.encode()])?;
    }
    Ok(())
}

/// Our stored proposals for the group, in the order they were made (one that no longer
/// decodes is skipped: the engine checks the others against the log anyway).
pub fn load_proposals(conn: &Connection, gid: &GroupId) -> Result<Vec<SignedEntry>, StoreError> {
    let mut st =
        conn.prepare_cached("SELECT entry FROM group_proposals WHERE gid = ?1 ORDER BY n")?;
    let rows = st.query_map([gid.to_hex()], |r| r.get::<_, Vec<u8>>(0))?;
    let mut out = vec![];
    for b in rows {
        match SignedEntry::decode(&b?) {
            Ok(p) => out.push(p),
            Err(e) => tracing::warn!(group = %gid, error = %e, "an unreadable group proposal"),
        }
    }
    Ok(out)
}

/// Every stored group.
pub fn list(conn: &Connection) -> Result<Vec<GroupRow>, StoreError> {
    let mut st =
        conn.prepare_cached("SELECT gid, name, acked FROM groups ORDER BY joined_ms, gid")?;
    let rows = st.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, i64>(2)?,
        ))
    })?;
    rows.map(|row| {
        let (gid, name, acked) = row?;
        Ok(GroupRow {
            gid: gid.parse().map_err(|_| corrupt("group id"))?,
            name,
            acked: u64::try_from(acked).unwrap_or(0),
        })
    })
    .collect()
}

/// Stores a message; `false` if that (author, seq) is already stored.
pub fn insert_message(
    tx: &Transaction<'_>,
    gid: &GroupId,
    m: &SignedMessage,
    recv_ms: u64,
) -> Result<bool, StoreError> {
    let n = tx
        .prepare_cached(
            "INSERT OR IGNORE INTO group_messages (gid, author, seq, lamport, id, recv_ms, signed)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?
        .execute(params![
            gid.to_hex(),
            m.author_fp().to_hex(),
            i(m.msg.seq),
            i(m.msg.lamport),
            m.id(),
            i(recv_ms),
            m.encode()
        ])?;
    Ok(n == 1)
}

/// Writes what the engine reported, in the caller's transaction: new messages, purges, the
/// log's new entries, the router's acknowledgement.
pub fn persist(
    tx: &Transaction<'_>,
    log: &Log,
    events: &[GroupEvent],
    now_ms: u64,
) -> Result<(), StoreError> {
    let gid = log.group();
    for e in events {
        match e {
            GroupEvent::Message(m) => {
                insert_message(tx, &gid, m, now_ms)?;
            }
            GroupEvent::Purged { author, cutoff } => {
                tx.execute(
                    "DELETE FROM group_messages WHERE gid = ?1 AND author = ?2 AND seq > ?3",
                    params![gid.to_hex(), author.to_hex(), i(*cutoff)],
                )?;
            }
            GroupEvent::LogUpdated { from } => save_log(tx, log, (*from).min(log.len()))?,
            GroupEvent::Proposals(proposals) => save_proposals(tx, &gid, proposals)?,
            GroupEvent::Acked { seq } => {
                tx.execute(
                    "UPDATE groups SET acked = max(acked, ?2) WHERE gid = ?1",
                    params![gid.to_hex(), i(*seq)],
                )?;
            }
            _ => {}
        }
    }
    Ok(())
}

fn decode_rows(
    rows: impl Iterator<Item = rusqlite::Result<Vec<u8>>>,
) -> Result<Vec<SignedMessage>, StoreError> {
    rows.map(|b| SignedMessage::decode(&b?).map_err(|_| corrupt("group message")))
        .collect()
}

/// Every stored message of the group, for the engine.
pub fn load_history(conn: &Connection, gid: &GroupId) -> Result<MemHistory, StoreError> {
    let mut st = conn
        .prepare_cached("SELECT signed FROM group_messages WHERE gid = ?1 ORDER BY author, seq")?;
    let msgs = decode_rows(st.query_map([gid.to_hex()], |r| r.get(0))?)?;
    let mut h = MemHistory::default();
    for m in &msgs {
        h.insert(m);
    }
    Ok(h)
}

/// Where a history page starts: the display key of the oldest message already shown.
pub type Cursor = (u64, Fingerprint, u64);

/// Up to `limit` messages in display order (Lamport clock, author, seq) ending just before
/// `before` (the newest page when `None`).
pub fn history_page(
    conn: &Connection,
    gid: &GroupId,
    before: Option<Cursor>,
    limit: usize,
) -> Result<Vec<SignedMessage>, StoreError> {
    let (l, a, s) = before.map_or((i64::MAX, "g".repeat(64), 0), |(l, a, s)| {
        (i(l), a.to_hex(), i(s))
    });
    let mut st = conn.prepare_cached(
        "SELECT signed FROM group_messages WHERE gid = ?1 AND (lamport, author, seq) < (?2, ?3, ?4)
         ORDER BY lamport DESC, author DESC, seq DESC LIMIT ?5",
    )?;
    let mut page = decode_rows(
        st.query_map(params![gid.to_hex(), l, a, s, i(limit as u64)], |r| {
            r.get(0)
        })?,
    )?;
    page.reverse();
    Ok(page)
}

/// Forgets a group and its messages (after leaving).
pub fn delete(conn: &Connection, gid: &GroupId) -> Result<(), StoreError> {
    conn.execute("DELETE FROM groups WHERE gid = ?1", [gid.to_hex()])?;
    Ok(())
}

/// Our acknowledged seq, if the group is stored.
pub fn acked(conn: &Connection, gid: &GroupId) -> Result<Option<u64>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT acked FROM groups WHERE gid = ?1",
            [gid.to_hex()],
            |r| r.get::<_, i64>(0),
        )
        .optional()?
        .map(|v| u64::try_from(v).unwrap_or(0)))
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
