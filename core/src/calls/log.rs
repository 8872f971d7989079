//! The call log in SQLite (table `calls`): one row per call with its peer, direction, media
//! kinds, start, connected duration and outcome. Each side keeps its own view (our "no answer"
//! is the peer's "missed"). Calls appear in a contact's chat history next to the messages
//! ([`history`]): the log is not part of the synchronised op streams, so a call never takes a
//! message sequence number and nothing about it is sent to the peer.

use rusqlite::{Connection, OptionalExtension, params};

use super::{CallId, Direction, Kinds, Outcome};
use crate::chat::store::{self as chat, ChatError, Message};
use crate::identity::Fingerprint;

/// Rows kept; the oldest go first beyond it.
pub const MAX_ENTRIES: i64 = 10_000;

/// One call in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallEntry {
    /// The call.
    pub id: CallId,
    /// The contact's fingerprint.
    pub peer: Fingerprint,
    /// Who called.
    pub direction: Direction,
    /// Audio, video, screen: what either side sent or announced.
    pub kinds: Kinds,
    /// When it started ringing, Unix ms (our clock).
    pub started_ms: u64,
    /// How long it was connected, ms (0 if never).
    pub duration_ms: u64,
    /// How it ended.
    pub outcome: Outcome,
    /// Why it ended (`crate::calls::EndReason::as_str`).
    pub reason: String,
}

/// A line of a contact's chat history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HistoryItem {
    /// A message.
    Message(Message),
    /// A call.
    Call(CallEntry),
}

impl HistoryItem {
    /// When it happened on our clock, Unix ms (a received message: when it arrived).
    pub fn at_ms(&self) -> u64 {
        match self {
            HistoryItem::Message(m) => m.recv_ms.unwrap_or(m.sent_ms),
            HistoryItem::Call(c) => c.started_ms,
        }
    }
}

/// Stores `entry` (a call already logged is kept as it is) and drops the rows logged longest
/// ago beyond [`MAX_ENTRIES`] (by when they were logged, not by their start time: a phone whose
/// clock went back would have dropped each new call as it was logged). Returns whether it was
/// new.
pub fn record(conn: &Connection, entry: &CallEntry) -> Result<bool, ChatError> {
    let n = conn.execute(
        "INSERT INTO calls (id, peer, outgoing, kinds, started_ms, duration_ms, outcome, reason)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT DO NOTHING",
        params![
            entry.id.as_slice(),
            entry.peer.to_hex(),
            entry.direction == Direction::Outgoing,
            entry.kinds.bits(),
            entry.started_ms as i64,
            entry.duration_ms as i64,
            entry.outcome.as_str(),
            entry.reason,
        ],
    )?;
    conn.execute(
        "DELETE FROM calls WHERE rowid IN
         (SELECT rowid FROM calls ORDER BY rowid DESC LIMIT -1 OFFSET ?1)",
        [MAX_ENTRIES],
    )?;
    Ok(n == 1)
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<CallEntry> {
    let bad = |what: &str| {
        rusqlite::Error::FromSqlConversionFailure(
            0,
            rusqlite::types::Type::Blob,
            format!("stored {what}").into(),
        )
    };
    let id: Vec<u8> = r.get(0)?;
    let peer: String = r.get(1)?;
    let outcome: String = r.get(6)?;
    Ok(CallEntry {
        id: id.try_into().map_err(|_| bad("call id"))?,
        peer: peer.parse().map_err(|_| bad("peer"))?,
        direction: if r.get::<_, bool>(2)? {
            Direction::Outgoing
        } else {
            Direction::Incoming
        },
        kinds: Kinds::from_bits(r.get(3)?).ok_or_else(|| bad("kinds"))?,
        started_ms: r.get::<_, i64>(4)? as u64,
        duration_ms: r.get::<_, i64>(5)? as u64,
        outcome: Outcome::parse(&outcome).ok_or_else(|| bad("outcome"))?,
        reason: r.get(7)?,
    })
}

const COLUMNS: &str = "id, peer, outgoing, kinds, started_ms, duration_ms, outcome, reason";

/// The `limit` newest calls, with one contact or all, newest first.
pub fn list(
    conn: &Connection,
    peer: Option<&Fingerprint>,
    limit: usize,
) -> Result<Vec<CallEntry>, ChatError> {
    let limit = limit as i64;
    let rows = match peer {
        Some(p) => conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM calls WHERE peer = ?1
                 ORDER BY started_ms DESC, rowid DESC LIMIT ?2"
            ))?
            .query_map(params![p.to_hex(), limit], row)?
            .collect::<Result<_, _>>()?,
        None => conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM calls ORDER BY started_ms DESC, rowid DESC LIMIT ?1"
            ))?
            .query_map([limit], row)?
            .collect::<Result<_, _>>()?,
    };
    Ok(rows)
}

/// One call by ID.
pub fn get(conn: &Connection, id: &CallId) -> Result<Option<CallEntry>, ChatError> {
    Ok(conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM calls WHERE id = ?1"))?
        .query_row([id.as_slice()], row)
        .optional()?)
}

/// The `limit` newest lines of the chat history with `conv`, messages and calls, oldest first.
pub fn history(
    conn: &Connection,
    conv: &Fingerprint,
    limit: usize,
) -> Result<Vec<HistoryItem>, ChatError> {
    let mut items: Vec<HistoryItem> = chat::messages(conn, conv, limit)?
        .into_iter()
        .map(HistoryItem::Message)
        .chain(
            list(conn, Some(conv), limit)?
                .into_iter()
                .map(HistoryItem::Call),
        )
        .collect();
    // Stable: messages keep their stream order among equal times.
    items.sort_by_key(HistoryItem::at_ms);
    let cut = items.len().saturating_sub(limit);
    Ok(items.split_off(cut))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::wire::OpKind;
    use crate::store::Store;

    fn entry(n: u8, peer: Fingerprint, started_ms: u64, outcome: Outcome) -> CallEntry {
        CallEntry {
            id: [n; 16],
            peer,
            direction: Direction::Outgoing,
            kinds: Kinds::AUDIO.union(Kinds::VIDEO),
            started_ms,
            duration_ms: 12_345,
            outcome,
            reason: "hangup".into(),
        }
    }

    /// Runs `f` on a fresh profile database.
    fn with_db(f: impl FnOnce(&mut Connection)) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("peerns.db")).unwrap();
        store
            .with_conn(|c| {
                f(c);
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn calls_are_logged_listed_and_merged_into_the_history() {
        with_db(calls_history);
    }

    fn calls_history(conn: &mut Connection) {
        let (me, bob, eve) = (
            Fingerprint([1; 32]),
            Fingerprint([2; 32]),
            Fingerprint([3; 32]),
        );
        let e1 = entry(1, bob, 1_000, Outcome::Completed);
        assert!(record(conn, &e1).unwrap());
        // The same call again changes nothing.
        assert!(
            !record(
                conn,
                &CallEntry {
                    duration_ms: 1,
                    ..e1.clone()
                }
            )
            .unwrap()
        );
        record(conn, &entry(2, eve, 2_000, Outcome::Missed)).unwrap();
        record(conn, &entry(3, bob, 3_000, Outcome::NoAnswer)).unwrap();
        assert_eq!(get(conn, &[1; 16]).unwrap(), Some(e1.clone()));
        let all = list(conn, None, 10).unwrap();
        assert_eq!(all.iter().map(|e| e.id[0]).collect::<Vec<_>>(), [3, 2, 1]);
        let with_bob = list(conn, Some(&bob), 10).unwrap();
        assert_eq!(with_bob.iter().map(|e| e.id[0]).collect::<Vec<_>>(), [3, 1]);
        // A message between the two calls with bob sits between them in his history.
        chat::enqueue(conn, &me, &bob, OpKind::Text, None, b"hi", 2_500).unwrap();
        let h = history(conn, &bob, 10).unwrap();
        let at: Vec<u64> = h.iter().map(HistoryItem::at_ms).collect();
        assert_eq!(at, [1_000, 2_500, 3_000]);
        assert!(matches!(&h[1], HistoryItem::Message(m) if m.text() == Some("hi")));
        assert_eq!(h[0], HistoryItem::Call(e1));
        // The newest lines only.
        let h = history(conn, &bob, 2).unwrap();
        assert_eq!(
            h.iter().map(HistoryItem::at_ms).collect::<Vec<_>>(),
            [2_500, 3_000]
        );
    }

    #[test]
    fn the_log_is_bounded() {
        with_db(bounded);
    }

    fn bounded(conn: &mut Connection) {
        let tx = conn.unchecked_transaction().unwrap();
        for n in 0..MAX_ENTRIES + 5 {
            let mut e = entry(0, Fingerprint([2; 32]), n as u64, Outcome::Missed);
            e.id[..8].copy_from_slice(&n.to_be_bytes());
            record(&tx, &e).unwrap();
        }
        tx.commit().unwrap();
        let n: i64 = conn
            .query_row("SELECT count(*) FROM calls", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, MAX_ENTRIES);
        // The oldest went.
        let oldest: i64 = conn
            .query_row("SELECT min(started_ms) FROM calls", [], |r| r.get(0))
            .unwrap();
        assert_eq!(oldest, 5);
        // With the clock set back, a new call is kept and the one logged longest ago goes.
        let mut e = entry(0, Fingerprint([2; 32]), 1, Outcome::Missed);
        e.id = [9; 16];
        assert!(record(conn, &e).unwrap());
        let kept: i64 = conn
            .query_row("SELECT count(*) FROM calls WHERE started_ms = 1", [], |r| {
                r.get(0)
            })
            .unwrap();
        let gone: i64 = conn
            .query_row("SELECT count(*) FROM calls WHERE started_ms = 5", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!((kept, gone), (1, 0));
    }
}
