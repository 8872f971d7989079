//! Conversations and messages in SQLite. Each conversation (one per contact, keyed by the
//! contact's fingerprint) holds two ordered op streams: ours (`outgoing`) and theirs. Our ops
//! get consecutive sequence numbers in the same transaction that stores them, so the outbox is
//! simply "our ops after the acknowledged seq" and survives any crash. The receiver keeps only
//! the next op in sequence: duplicates are re-acknowledged, gaps ask for a resend. That gives
//! exactly-once, in-order delivery over any number of broken connections.

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::wire::{Id, Op, OpKind};
use crate::identity::Fingerprint;
use crate::store::StoreError;

/// Delivery state of a message we sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    /// Stored, not yet sent.
    Waiting,
    /// Sent on a live session, not yet acknowledged.
    Sent,
    /// Stored by the recipient.
    Delivered,
    /// Read by the recipient.
    Read,
    /// The recipient refused it.
    Failed,
}

/// A message as the chat screen shows it (edits and deletes applied).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The contact's fingerprint.
    pub conv: Fingerprint,
    /// Message id.
    pub id: Id,
    /// We sent it.
    pub outgoing: bool,
    /// Its place in the sender's stream.
    pub seq: u64,
    /// Text or file.
    pub kind: OpKind,
    /// Text (empty once deleted); for files, the signed manifest.
    pub body: Vec<u8>,
    /// Sender's clock, Unix ms.
    pub sent_ms: u64,
    /// When it arrived here (incoming only).
    pub recv_ms: Option<u64>,
    /// For outgoing messages: how far it got. Incoming: `Read` once read, else `Delivered`.
    pub status: Status,
    /// It was edited.
    pub edited: bool,
    /// It was deleted.
    pub deleted: bool,
}

impl Message {
    /// A new message as `op` creates it: ours waiting to be sent, or theirs just received.
    pub fn new(conv: Fingerprint, op: &Op, recv_ms: Option<u64>) -> Self {
        Self {
            conv,
            id: op.id,
            outgoing: recv_ms.is_none(),
            seq: op.seq,
            kind: op.kind,
            body: op.body.clone(),
            sent_ms: op.sent_ms,
            recv_ms,
            status: if recv_ms.is_none() {
                Status::Waiting
            } else {
                Status::Delivered
            },
            edited: false,
            deleted: false,
        }
    }

    /// The manifest, if this is a file that was not deleted (and the manifest is its own).
    pub fn manifest(&self) -> Option<super::file::Manifest> {
        (self.kind == OpKind::File && !self.deleted)
            .then(|| super::file::Manifest::parse(&self.body).ok())
            .flatten()
            .filter(|m| m.id == self.id)
    }

    /// The text, if this is a text message.
    pub fn text(&self) -> Option<&str> {
        (self.kind == OpKind::Text)
            .then(|| std::str::from_utf8(&self.body).ok())
            .flatten()
    }
}

/// A conversation for the chat list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversation {
    /// The contact's fingerprint.
    pub conv: Fingerprint,
    /// The newest visible message.
    pub last: Option<Message>,
    /// Incoming messages not yet read.
    pub unread: u64,
    /// When the contact was last connected, Unix ms.
    pub last_seen_ms: Option<u64>,
}

/// Why a chat operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A field is malformed or the op is not possible.
    #[error("invalid: {0}")]
    Invalid(String),
    /// No such message.
    #[error("no such message")]
    NotFound,
}

impl From<rusqlite::Error> for ChatError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Store(e.into())
    }
}

/// What a batch of received ops did.
#[derive(Debug, Default)]
pub struct Received {
    /// New messages, in order.
    pub new: Vec<Message>,
    /// Messages changed by edits or deletes.
    pub changed: Vec<Message>,
    /// Highest contiguous seq now stored (what to acknowledge).
    pub ack: u64,
    /// An op came after a gap: the sender must resend from `ack + 1`.
    pub resync: bool,
}

/// Runs a statement from the connection's statement cache (the hot paths run thousands of
/// times a second).
fn exec(conn: &Connection, sql: &str, p: impl rusqlite::Params) -> rusqlite::Result<usize> {
    conn.prepare_cached(sql)?.execute(p)
}

/// One row from a cached statement.
fn one<T>(
    conn: &Connection,
    sql: &str,
    p: impl rusqlite::Params,
    f: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    conn.prepare_cached(sql)?.query_row(p, f)
}

/// Creates the conversation with `conv` if it does not exist yet.
pub fn ensure_conversation(tx: &Connection, conv: &Fingerprint) -> rusqlite::Result<()> {
    exec(
        tx,
        "INSERT INTO conversations (conv) VALUES (?1) ON CONFLICT DO NOTHING",
        [conv.to_hex()],
    )?;
    Ok(())
}

/// The conversation's counters: next_out, sent_out, acked_out, read_out, last_in, read_in.
struct Counters {
    next_out: u64,
    sent_out: u64,
    acked_out: u64,
    read_out: u64,
    last_in: u64,
    read_in: u64,
}

fn counters(conn: &Connection, conv: &Fingerprint) -> rusqlite::Result<Counters> {
    one(
        conn,
        "SELECT next_out_seq, sent_out_seq, acked_out_seq, read_out_seq, last_in_seq, read_in_seq
         FROM conversations WHERE conv = ?1",
        [conv.to_hex()],
        |r| {
            Ok(Counters {
                next_out: r.get::<_, i64>(0)? as u64,
                sent_out: r.get::<_, i64>(1)? as u64,
                acked_out: r.get::<_, i64>(2)? as u64,
                read_out: r.get::<_, i64>(3)? as u64,
                last_in: r.get::<_, i64>(4)? as u64,
                read_in: r.get::<_, i64>(5)? as u64,
            })
        },
    )
    .optional()
    .map(|c| {
        c.unwrap_or(Counters {
            next_out: 1,
            sent_out: 0,
            acked_out: 0,
            read_out: 0,
            last_in: 0,
            read_in: 0,
        })
    })
}

const MESSAGE_COLUMNS: &str =
    "conv, id, outgoing, seq, kind, body, sent_ms, recv_ms, edited, deleted, failed";

fn row_message(r: &rusqlite::Row<'_>, c: &Counters) -> rusqlite::Result<Message> {
    let conv: String = r.get(0)?;
    let id: Vec<u8> = r.get(1)?;
    let outgoing: bool = r.get(2)?;
    let seq = r.get::<_, i64>(3)? as u64;
    let kind: u8 = r.get(4)?;
    let failed: bool = r.get(10)?;
    let bad = |what: &str| {
        rusqlite::Error::FromSqlConversionFailure(
            0,
            rusqlite::types::Type::Blob,
            format!("stored {what}").into(),
        )
    };
    let status = if outgoing {
        if failed {
            Status::Failed
        } else if seq <= c.read_out {
            Status::Read
        } else if seq <= c.acked_out {
            Status::Delivered
        } else if seq <= c.sent_out {
            Status::Sent
        } else {
            Status::Waiting
        }
    } else if seq <= c.read_in {
        Status::Read
    } else {
        Status::Delivered
    };
    Ok(Message {
        conv: conv.parse().map_err(|_| bad("conversation"))?,
        id: id.try_into().map_err(|_| bad("id"))?,
        outgoing,
        seq,
        kind: OpKind::from_u8(kind).ok_or_else(|| bad("kind"))?,
        body: r.get(5)?,
        sent_ms: r.get::<_, i64>(6)? as u64,
        recv_ms: r.get::<_, Option<i64>>(7)?.map(|v| v as u64),
        status,
        edited: r.get(8)?,
        deleted: r.get(9)?,
    })
}

fn message_by_id(
    conn: &Connection,
    conv: &Fingerprint,
    outgoing: bool,
    id: &Id,
) -> Result<Option<Message>, ChatError> {
    let c = counters(conn, conv)?;
    Ok(one(
        conn,
        &format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages
                 WHERE conv = ?1 AND outgoing = ?2 AND id = ?3"
        ),
        params![conv.to_hex(), outgoing, id.as_slice()],
        |r| row_message(r, &c),
    )
    .optional()?)
}

/// Applies an edit or delete to `target` (a message of the same sender); returns it changed.
fn apply_change(
    tx: &Transaction<'_>,
    conv: &Fingerprint,
    outgoing: bool,
    kind: OpKind,
    target: &Id,
    body: &[u8],
) -> Result<Option<Message>, ChatError> {
    let (conv_hex, t) = (conv.to_hex(), target.as_slice());
    let n = match kind {
        OpKind::Edit => exec(
            tx,
            "UPDATE messages SET body = ?4, edited = 1
             WHERE conv = ?1 AND outgoing = ?2 AND id = ?3 AND kind = 1 AND deleted = 0",
            params![conv_hex, outgoing, t, body],
        )?,
        OpKind::Delete => exec(
            tx,
            "UPDATE messages SET body = x'', deleted = 1
             WHERE conv = ?1 AND outgoing = ?2 AND id = ?3 AND kind IN (1, 4) AND deleted = 0",
            params![conv_hex, outgoing, t],
        )?,
        _ => return Ok(None),
    };
    if n == 0 {
        return Ok(None);
    }
    message_by_id(tx, conv, outgoing, target)
}

/// Stores a new op of ours for `conv` with the next seq (one transaction) and applies an edit
/// or delete locally. Edits and deletes may only target our own live messages.
pub fn enqueue(
    conn: &mut Connection,
    me: &Fingerprint,
    conv: &Fingerprint,
    kind: OpKind,
    target: Option<Id>,
    body: &[u8],
    now_ms: u64,
) -> Result<(Op, Option<Message>), ChatError> {
    enqueue_with_id(conn, me, conv, (kind, rand::random()), target, body, now_ms)
}

/// [`enqueue`] with a chosen message id (a file's message id is its transfer id).
pub fn enqueue_with_id(
    conn: &mut Connection,
    me: &Fingerprint,
    conv: &Fingerprint,
    kind_id: (OpKind, Id),
    target: Option<Id>,
    body: &[u8],
    now_ms: u64,
) -> Result<(Op, Option<Message>), ChatError> {
    let tx = conn.transaction()?;
    let r = enqueue_in(&tx, me, conv, kind_id, target, body, now_ms)?;
    tx.commit()?;
    Ok(r)
}

/// [`enqueue_with_id`] within the caller's transaction.
pub fn enqueue_in(
    tx: &Transaction<'_>,
    me: &Fingerprint,
    conv: &Fingerprint,
    (kind, id): (OpKind, Id),
    target: Option<Id>,
    body: &[u8],
    now_ms: u64,
) -> Result<(Op, Option<Message>), ChatError> {
    ensure_conversation(tx, conv)?;
    let changed = match (kind, target) {
        (OpKind::Text | OpKind::File, None) => None,
        (OpKind::Edit | OpKind::Delete, Some(t)) => {
            Some(apply_change(tx, conv, true, kind, &t, body)?.ok_or(ChatError::NotFound)?)
        }
        _ => return Err(ChatError::Invalid("target does not match the kind".into())),
    };
    let seq = counters(tx, conv)?.next_out;
    exec(
        tx,
        "INSERT INTO messages (conv, outgoing, seq, id, kind, target, body, sent_ms)
         VALUES (?1, 1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            conv.to_hex(),
            seq as i64,
            id.as_slice(),
            kind as u8,
            target.as_ref().map(|t| t.as_slice()),
            body,
            now_ms as i64
        ],
    )?;
    exec(
        tx,
        "UPDATE conversations SET next_out_seq = ?2 WHERE conv = ?1",
        params![conv.to_hex(), (seq + 1) as i64],
    )?;
    let op = Op {
        from: me.0,
        to: conv.0,
        seq,
        id,
        kind,
        target,
        sent_ms: now_ms,
        body: body.to_vec(),
    };
    Ok((op, changed))
}

/// Our ops for `conv` from `from_seq` on, at most `limit`, in order (what to send next).
pub fn outbox(
    conn: &Connection,
    me: &Fingerprint,
    conv: &Fingerprint,
    from_seq: u64,
    limit: usize,
) -> Result<Vec<Op>, ChatError> {
    let mut st = conn.prepare_cached(
        "SELECT seq, id, kind, target, sent_ms, body, deleted OR failed FROM messages
         WHERE conv = ?1 AND outgoing = 1 AND seq >= ?2
           AND (failed = 0 OR seq < (SELECT max(seq) FROM messages
                                     WHERE conv = ?1 AND outgoing = 1 AND failed = 0))
         ORDER BY seq LIMIT ?3",
    )?;
    // A seq beyond what SQLite holds (a peer's resync can name any) is past every op.
    let from = i64::try_from(from_seq).unwrap_or(i64::MAX);
    let rows = st.query_map(params![conv.to_hex(), from, limit as i64], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, Vec<u8>>(1)?,
            r.get::<_, u8>(2)?,
            r.get::<_, Option<Vec<u8>>>(3)?,
            r.get::<_, i64>(4)?,
            r.get::<_, Vec<u8>>(5)?,
            r.get::<_, bool>(6)?,
        ))
    })?;
    rows.map(|r| {
        let (seq, id, kind, target, sent_ms, body, void) = r?;
        let bad = || ChatError::Invalid("stored op".into());
        let id: Id = id.try_into().map_err(|_| bad())?;
        // An op deleted or failed before it was delivered still takes its seq (the receiver
        // takes ops in order only), as a delete of itself: the receiver stores it and shows
        // nothing (a file's manifest is gone with its deletion, and would not verify). Failed
        // ones go only before an op that may still be delivered (above): the contact that
        // refused them may refuse us still.
        let (kind, target, body) = if void {
            (OpKind::Delete, Some(id), Vec::new())
        } else {
            let target = target
                .map(|t| t.try_into().map_err(|_| bad()))
                .transpose()?;
            (OpKind::from_u8(kind).ok_or_else(bad)?, target, body)
        };
        Ok(Op {
            from: me.0,
            to: conv.0,
            seq: seq as u64,
            id,
            kind,
            target,
            sent_ms: sent_ms as u64,
            body,
        })
    })
    .collect()
}

/// The seq our outbox starts at for `conv` (first unacknowledged).
pub fn first_unacked(conn: &Connection, conv: &Fingerprint) -> Result<u64, ChatError> {
    Ok(counters(conn, conv)?.acked_out + 1)
}

/// Conversations whose outbox is not empty.
pub fn with_outbox(conn: &Connection) -> Result<Vec<Fingerprint>, ChatError> {
    let mut st = conn.prepare(
        "SELECT c.conv FROM conversations c WHERE EXISTS (SELECT 1 FROM messages m
         WHERE m.conv = c.conv AND m.outgoing = 1 AND m.failed = 0 AND m.seq > c.acked_out_seq)",
    )?;
    let rows = st.query_map([], |r| r.get::<_, String>(0))?;
    rows.map(|r| {
        r?.parse()
            .map_err(|_| ChatError::Invalid("stored conversation".into()))
    })
    .collect()
}

/// Up to `limit` conversations whose contact was connected since `since_ms`, most recent first
/// (a node coming back dials these so their outboxes reach it without waiting for a redial).
pub fn recently_seen(
    conn: &Connection,
    since_ms: u64,
    limit: usize,
) -> Result<Vec<Fingerprint>, ChatError> {
    seen_between(conn, since_ms, u64::MAX, limit)
}

/// Contacts last seen at or after `since_ms` and before `before_ms`, most recent first.
pub fn seen_between(
    conn: &Connection,
    since_ms: u64,
    before_ms: u64,
    limit: usize,
) -> Result<Vec<Fingerprint>, ChatError> {
    let mut st = conn.prepare_cached(
        "SELECT conv FROM conversations WHERE last_seen_ms >= ?1 AND last_seen_ms < ?2
         ORDER BY last_seen_ms DESC LIMIT ?3",
    )?;
    let before = i64::try_from(before_ms).unwrap_or(i64::MAX);
    let rows = st.query_map(params![since_ms as i64, before, limit as i64], |r| {
        r.get::<_, String>(0)
    })?;
    rows.map(|r| {
        r?.parse()
            .map_err(|_| ChatError::Invalid("stored conversation".into()))
    })
    .collect()
}

/// Contacts made at or after `since_ms` (trust above Blocked) that no link has reached since:
/// one we accepted while its requester was away has not heard the accept.
pub fn never_linked(conn: &Connection, since_ms: u64) -> Result<Vec<Fingerprint>, ChatError> {
    let mut st = conn.prepare_cached(
        "SELECT c.fingerprint FROM contacts c LEFT JOIN conversations v ON v.conv = c.fingerprint
         WHERE c.trust > 0 AND c.created_ms >= ?1
           AND (v.last_seen_ms IS NULL OR v.last_seen_ms < c.created_ms)",
    )?;
    let rows = st.query_map([since_ms as i64], |r| r.get::<_, String>(0))?;
    rows.map(|r| {
        r?.parse()
            .map_err(|_| ChatError::Invalid("stored contact".into()))
    })
    .collect()
}

/// Records that ops up to `seq` went out on a live session.
pub fn mark_sent(conn: &Connection, conv: &Fingerprint, seq: u64) -> Result<(), ChatError> {
    exec(
        conn,
        "UPDATE conversations SET sent_out_seq = max(sent_out_seq, ?2) WHERE conv = ?1",
        params![conv.to_hex(), seq as i64],
    )?;
    Ok(())
}

/// The seq of the last op stored from `conv` (0 before the first).
pub fn last_received(conn: &Connection, conv: &Fingerprint) -> Result<u64, ChatError> {
    Ok(counters(conn, conv)?.last_in)
}

/// The peer stored our ops up to `seq`; returns the newly acknowledged range, if any.
pub fn acknowledge(
    conn: &Connection,
    conv: &Fingerprint,
    seq: u64,
) -> Result<Option<(u64, u64)>, ChatError> {
    let c = counters(conn, conv)?;
    let seq = seq.min(c.next_out - 1);
    if seq <= c.acked_out {
        return Ok(None);
    }
    exec(
        conn,
        "UPDATE conversations SET acked_out_seq = ?2, sent_out_seq = max(sent_out_seq, ?2)
         WHERE conv = ?1",
        params![conv.to_hex(), seq as i64],
    )?;
    Ok(Some((c.acked_out + 1, seq)))
}

/// The peer read our messages up to `seq`; returns the new read mark if it moved.
pub fn peer_read(
    conn: &Connection,
    conv: &Fingerprint,
    seq: u64,
) -> Result<Option<u64>, ChatError> {
    let c = counters(conn, conv)?;
    let seq = seq.min(c.next_out - 1);
    if seq <= c.read_out {
        return Ok(None);
    }
    exec(
        conn,
        "UPDATE conversations SET read_out_seq = ?2, acked_out_seq = max(acked_out_seq, ?2),
            sent_out_seq = max(sent_out_seq, ?2) WHERE conv = ?1",
        params![conv.to_hex(), seq as i64],
    )?;
    Ok(Some(seq))
}

/// The peer refused our outbox (we are not its contact): the waiting ops fail. Returns how many
/// failed now.
pub fn fail_outbox(conn: &Connection, conv: &Fingerprint) -> Result<usize, ChatError> {
    let c = counters(conn, conv)?;
    Ok(exec(
        conn,
        "UPDATE messages SET failed = 1
         WHERE conv = ?1 AND outgoing = 1 AND seq > ?2 AND failed = 0",
        params![conv.to_hex(), c.acked_out as i64],
    )?)
}

/// Stores received ops from `conv` (already checked to come from it and be for us) in one
/// transaction: the next op in sequence is kept, older ones are duplicates, an op after a gap
/// asks for a resend.
pub fn receive(
    conn: &mut Connection,
    conv: &Fingerprint,
    ops: &[Op],
    now_ms: u64,
) -> Result<Received, ChatError> {
    let tx = conn.transaction()?;
    let r = receive_in(&tx, conv, ops, now_ms)?;
    tx.commit()?;
    Ok(r)
}

/// [`receive`] within the caller's transaction.
pub fn receive_in(
    tx: &Transaction<'_>,
    conv: &Fingerprint,
    ops: &[Op],
    now_ms: u64,
) -> Result<Received, ChatError> {
    ensure_conversation(tx, conv)?;
    let mut last = counters(tx, conv)?.last_in;
    let mut out = Received::default();
    for op in ops {
        if op.seq <= last {
            continue;
        }
        if op.seq != last + 1 {
            out.resync = true;
            break;
        }
        let inserted = exec(
            tx,
            "INSERT INTO messages (conv, outgoing, seq, id, kind, target, body, sent_ms, recv_ms)
             VALUES (?1, 0, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT DO NOTHING",
            params![
                conv.to_hex(),
                op.seq as i64,
                op.id.as_slice(),
                op.kind as u8,
                op.target.as_ref().map(|t| t.as_slice()),
                op.body,
                op.sent_ms as i64,
                now_ms as i64
            ],
        )?;
        last = op.seq;
        if inserted == 0 {
            // A reused id: keep the stream moving, show nothing.
            continue;
        }
        match (op.kind, &op.target) {
            (OpKind::Text | OpKind::File, _) => out.new.push(Message::new(*conv, op, Some(now_ms))),
            (kind, Some(t)) => {
                if let Some(m) = apply_change(tx, conv, false, kind, t, &op.body)? {
                    out.changed.retain(|c| c.id != m.id);
                    out.changed.push(m);
                }
            }
            _ => {}
        }
    }
    exec(
        tx,
        "UPDATE conversations SET last_in_seq = ?2 WHERE conv = ?1",
        params![conv.to_hex(), last as i64],
    )?;
    out.ack = last;
    // Messages in `new` that a later op of the batch changed show their final state.
    for m in &mut out.new {
        if let Some(c) = out.changed.iter().find(|c| c.id == m.id) {
            *m = c.clone();
        }
    }
    Ok(out)
}

/// The `limit` newest visible messages of `conv` (texts and files), oldest first.
pub fn messages(
    conn: &Connection,
    conv: &Fingerprint,
    limit: usize,
) -> Result<Vec<Message>, ChatError> {
    let c = counters(conn, conv)?;
    let mut st = conn.prepare(&format!(
        "SELECT {MESSAGE_COLUMNS} FROM (SELECT rowid AS r, * FROM messages
         WHERE conv = ?1 AND kind IN (1, 4) ORDER BY rowid DESC LIMIT ?2) ORDER BY r"
    ))?;
    let rows = st.query_map(params![conv.to_hex(), limit as i64], |r| row_message(r, &c))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Marks every incoming message of `conv` read; returns the new read mark if it moved.
pub fn mark_read(conn: &Connection, conv: &Fingerprint) -> Result<Option<u64>, ChatError> {
    let c = counters(conn, conv)?;
    if c.last_in <= c.read_in {
        return Ok(None);
    }
    exec(
        conn,
        "UPDATE conversations SET read_in_seq = last_in_seq WHERE conv = ?1",
        [conv.to_hex()],
    )?;
    Ok(Some(c.last_in))
}

/// Our read mark for `conv` (to tell the peer when it reconnects).
pub fn read_mark(conn: &Connection, conv: &Fingerprint) -> Result<u64, ChatError> {
    Ok(counters(conn, conv)?.read_in)
}

/// Records when the contact was last connected.
pub fn set_last_seen(conn: &Connection, conv: &Fingerprint, ms: u64) -> Result<(), ChatError> {
    ensure_conversation(conn, conv)?;
    exec(
        conn,
        "UPDATE conversations SET last_seen_ms = ?2 WHERE conv = ?1",
        params![conv.to_hex(), ms as i64],
    )?;
    Ok(())
}

/// Every conversation with its newest message and unread count, newest activity first.
pub fn conversations(conn: &Connection) -> Result<Vec<Conversation>, ChatError> {
    let convs: Vec<(String, Option<i64>)> = conn
        .prepare("SELECT conv, last_seen_ms FROM conversations")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let mut out = Vec::with_capacity(convs.len());
    for (conv, seen) in convs {
        let conv: Fingerprint = conv
            .parse()
            .map_err(|_| ChatError::Invalid("stored conversation".into()))?;
        let c = counters(conn, &conv)?;
        let unread: i64 = one(
            conn,
            "SELECT count(*) FROM messages WHERE conv = ?1 AND outgoing = 0 AND kind IN (1, 4)
             AND deleted = 0 AND seq > ?2",
            params![conv.to_hex(), c.read_in as i64],
            |r| r.get(0),
        )?;
        out.push(Conversation {
            last: messages(conn, &conv, 1)?.pop(),
            conv,
            unread: unread as u64,
            last_seen_ms: seen.map(|v| v as u64),
        });
    }
    out.sort_by_key(|c| {
        std::cmp::Reverse(
            c.last
                .as_ref()
                .map_or(0, |m| m.recv_ms.unwrap_or(m.sent_ms)),
        )
    });
    Ok(out)
}
