//! Schema migrations: an ordered list of SQL scripts, with `PRAGMA user_version` holding how
//! many have been applied. Append new scripts; never edit or reorder existing ones.

use rusqlite::{Connection, TransactionBehavior};

use super::StoreError;

/// Migration scripts, in order; script `i` takes the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    "
    CREATE TABLE identity (
        id            INTEGER PRIMARY KEY CHECK (id = 1),
        public_key    BLOB    NOT NULL,
        sealed_secret BLOB    NOT NULL,
        peer_id       TEXT    NOT NULL,
        created_at    INTEGER NOT NULL
    );
    CREATE TABLE peer_id_history (
        peer_id    TEXT PRIMARY KEY,
        first_used INTEGER,
        retired_at INTEGER NULL
    );
    CREATE TABLE settings (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    CREATE TABLE peerjs_tokens (
        server     TEXT,
        peer_id    TEXT,
        token      TEXT NOT NULL,
        updated_at INTEGER,
        PRIMARY KEY (server, peer_id)
    );
",
    "
    CREATE TABLE contacts (
        fingerprint  TEXT    PRIMARY KEY CHECK (length(fingerprint) = 64),
        public_key   BLOB    NOT NULL CHECK (length(public_key) = 32),
        name         TEXT    NOT NULL,
        trust        INTEGER NOT NULL CHECK (trust BETWEEN 0 AND 3),
        verified     INTEGER NOT NULL DEFAULT 0,
        peer_id      TEXT    NULL,
        created_ms   INTEGER NOT NULL,
        updated_ms   INTEGER NOT NULL
    );
    CREATE TABLE contact_peer_ids (
        fingerprint  TEXT    NOT NULL REFERENCES contacts(fingerprint) ON DELETE CASCADE,
        peer_id      TEXT    NOT NULL,
        seen_ms      INTEGER NOT NULL,
        PRIMARY KEY (fingerprint, peer_id)
    );
    CREATE TABLE contact_requests (
        fingerprint  TEXT    NOT NULL CHECK (length(fingerprint) = 64),
        outgoing     INTEGER NOT NULL CHECK (outgoing IN (0, 1)),
        public_key   BLOB    NOT NULL CHECK (length(public_key) = 32),
        name         TEXT    NOT NULL,
        peer_id      TEXT    NOT NULL,
        state        TEXT    NOT NULL CHECK (state IN ('pending', 'later')),
        created_ms   INTEGER NOT NULL,
        PRIMARY KEY (fingerprint, outgoing)
    );
",
    "
    CREATE TABLE conversations (
        conv          TEXT    PRIMARY KEY CHECK (length(conv) = 64),
        next_out_seq  INTEGER NOT NULL DEFAULT 1,
        sent_out_seq  INTEGER NOT NULL DEFAULT 0,
        acked_out_seq INTEGER NOT NULL DEFAULT 0,
        read_out_seq  INTEGER NOT NULL DEFAULT 0,
        last_in_seq   INTEGER NOT NULL DEFAULT 0,
        read_in_seq   INTEGER NOT NULL DEFAULT 0,
        last_seen_ms  INTEGER NULL
    );
    CREATE TABLE messages (
        conv      TEXT    NOT NULL REFERENCES conversations(conv) ON DELETE CASCADE,
        outgoing  INTEGER NOT NULL CHECK (outgoing IN (0, 1)),
        seq       INTEGER NOT NULL,
        id        BLOB    NOT NULL CHECK (length(id) = 16),
        kind      INTEGER NOT NULL CHECK (kind BETWEEN 1 AND 4),
        target    BLOB    NULL,
        body      BLOB    NOT NULL,
        sent_ms   INTEGER NOT NULL,
        recv_ms   INTEGER NULL,
        edited    INTEGER NOT NULL DEFAULT 0,
        deleted   INTEGER NOT NULL DEFAULT 0,
        failed    INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (conv, outgoing, seq)
    );
    CREATE UNIQUE INDEX messages_by_id ON messages (conv, outgoing, id);
    CREATE TABLE files (
        id          BLOB    PRIMARY KEY CHECK (length(id) = 16),
        conv        TEXT    NOT NULL REFERENCES conversations(conv) ON DELETE CASCADE,
        outgoing    INTEGER NOT NULL CHECK (outgoing IN (0, 1)),
        name        TEXT    NOT NULL,
        size        INTEGER NOT NULL,
        mime        TEXT    NOT NULL,
        sha256      BLOB    NOT NULL CHECK (length(sha256) = 32),
        chunk_size  INTEGER NOT NULL,
        next_index  INTEGER NOT NULL DEFAULT 0,
        state       TEXT    NOT NULL CHECK (state IN ('transferring', 'done', 'refused'))
    );
",
    // File manifests name their content by BLAKE3 (decision 0007); transfers begun under the
    // SHA-256 manifests cannot be verified any more and end as refused.
    "
    ALTER TABLE files RENAME COLUMN sha256 TO content_hash;
    UPDATE files SET state = 'refused' WHERE state = 'transferring';
",
    // Transfers record when they last made progress, so stale incoming ones expire; existing
    // ones count from the upgrade. A manifest must be its op's own and use chunks of at least
    // 16 KiB (decision 0007): unfinished incoming transfers that break either rule end as
    // refused.
    "
    ALTER TABLE files ADD COLUMN updated_ms INTEGER NOT NULL DEFAULT 0;
    UPDATE files SET updated_ms = CAST(strftime('%s', 'now') AS INTEGER) * 1000;
    UPDATE files SET state = 'refused'
    WHERE outgoing = 0 AND state = 'transferring'
      AND ((chunk_size < 16384 AND size > chunk_size)
           OR NOT EXISTS (SELECT 1 FROM messages m WHERE m.conv = files.conv
                          AND m.outgoing = 0 AND m.kind = 4 AND m.id = files.id));
",
    // Stadium pseudonyms (decision 0010): the presence secret a contact shared with us, from
    // which we recognise its pseudonymous records nearby.
    "
    ALTER TABLE contacts ADD COLUMN presence_secret BLOB NULL
        CHECK (presence_secret IS NULL OR length(presence_secret) = 32);
",
    // Groups (decision 0011): the verified membership log, the messages (each encoded as
    // signed, unique per author and seq), and how far the router acknowledged ours (the
    // outbox is our messages after `acked`, as in decision 0006).
    "
    CREATE TABLE groups (
        gid         TEXT    PRIMARY KEY CHECK (length(gid) = 32),
        name        TEXT    NOT NULL,
        acked       INTEGER NOT NULL DEFAULT 0 CHECK (acked >= 0),
        joined_ms   INTEGER NOT NULL
    );
    CREATE TABLE group_log (
        gid         TEXT    NOT NULL REFERENCES groups(gid) ON DELETE CASCADE,
        idx         INTEGER NOT NULL CHECK (idx >= 0),
        entry       BLOB    NOT NULL,
        PRIMARY KEY (gid, idx)
    );
    CREATE TABLE group_messages (
        gid         TEXT    NOT NULL REFERENCES groups(gid) ON DELETE CASCADE,
        author      TEXT    NOT NULL CHECK (length(author) = 64),
        seq         INTEGER NOT NULL CHECK (seq >= 1),
        lamport     INTEGER NOT NULL,
        id          TEXT    NOT NULL,
        recv_ms     INTEGER NOT NULL,
        signed      BLOB    NOT NULL,
        PRIMARY KEY (gid, author, seq)
    );
    CREATE INDEX group_messages_order ON group_messages (gid, lamport, author, seq);
",
    // The call log (decision 0013): one row per call, our view of it; shown in the chat
    // history with the contact next to the messages.
    "
    CREATE TABLE calls (
        id          BLOB    PRIMARY KEY CHECK (length(id) = 16),
        peer        TEXT    NOT NULL CHECK (length(peer) = 64),
        outgoing    INTEGER NOT NULL CHECK (outgoing IN (0, 1)),
        kinds       INTEGER NOT NULL CHECK (kinds BETWEEN 0 AND 7),
        started_ms  INTEGER NOT NULL,
        duration_ms INTEGER NOT NULL CHECK (duration_ms >= 0),
        outcome     TEXT    NOT NULL CHECK (outcome IN ('completed', 'missed', 'declined',
                                                        'busy', 'cancelled', 'no_answer',
                                                        'failed')),
        reason      TEXT    NOT NULL
    );
    CREATE INDEX calls_by_peer ON calls (peer, started_ms);
    CREATE INDEX calls_by_time ON calls (started_ms);
",
    // RPC (decision 0014): scopes granted to Full Access contacts, and the audit log of every
    // request served or refused (bounded by `rpc::store::MAX_AUDIT`).
    "
    CREATE TABLE rpc_grants (
        fingerprint TEXT    NOT NULL CHECK (length(fingerprint) = 64),
        scope       TEXT    NOT NULL,
        granted_ms  INTEGER NOT NULL,
        PRIMARY KEY (fingerprint, scope)
    );
    CREATE TABLE rpc_audit (
        n           INTEGER PRIMARY KEY,
        at_ms       INTEGER NOT NULL,
        fingerprint TEXT    NOT NULL,
        id          TEXT    NOT NULL,
        method      TEXT    NOT NULL,
        target      TEXT    NOT NULL,
        code        INTEGER NOT NULL,
        message     TEXT    NOT NULL
    );
",
    // Files in groups (decision 0011): each file a group message announced, with its verified
    // manifest, how many chunks are on disk, and where the whole file is once verified.
    "
    CREATE TABLE group_files (
        gid          TEXT    NOT NULL REFERENCES groups(gid) ON DELETE CASCADE,
        id           BLOB    NOT NULL CHECK (length(id) = 16),
        author       TEXT    NOT NULL CHECK (length(author) = 64),
        name         TEXT    NOT NULL,
        size         INTEGER NOT NULL CHECK (size >= 0),
        mime         TEXT    NOT NULL,
        content_hash BLOB    NOT NULL CHECK (length(content_hash) = 32),
        chunk_size   INTEGER NOT NULL CHECK (chunk_size > 0),
        next_index   INTEGER NOT NULL DEFAULT 0,
        state        TEXT    NOT NULL CHECK (state IN ('transferring', 'done', 'refused')),
        path         TEXT    NULL,
        updated_ms   INTEGER NOT NULL,
        PRIMARY KEY (gid, id)
    );
",
    // Share links whose owner could not be reached yet (decision 0019): the request goes out
    // once the owner is online (`contacts::waiting`).
    "
    CREATE TABLE contact_links (
        fingerprint TEXT    PRIMARY KEY CHECK (length(fingerprint) = 64),
        peer_id     TEXT    NOT NULL,
        created_ms  INTEGER NOT NULL,
        tried_ms    INTEGER NOT NULL
    );
",
    // Group proposals (decision 0011): our log entries waiting for the router to append them,
    // kept across a restart (a removal or leave made while no router was linked).
    "
    CREATE TABLE group_proposals (
        gid         TEXT    NOT NULL REFERENCES groups(gid) ON DELETE CASCADE,
        n           INTEGER NOT NULL CHECK (n >= 0),
        entry       BLOB    NOT NULL,
        PRIMARY KEY (gid, n)
    );
",
];

/// Schema version this build creates and understands.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

fn user_version(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn.pragma_query_value(None, "user_version", |row| row.get(0))?)
}

/// Number of migrations already applied, or an error if this build cannot handle the schema.
fn applied(version: i64) -> Result<usize, StoreError> {
    if version > SCHEMA_VERSION {
        return Err(StoreError::TooNew {
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    usize::try_from(version).map_err(|_| StoreError::BadVersion(version))
}

/// Fails without writing anything if the database's schema is unknown to this build.
pub(super) fn check_version(conn: &Connection) -> Result<(), StoreError> {
    applied(user_version(conn)?).map(drop)
}

/// Applies pending migrations, each in its own transaction together with its version bump.
/// The version is re-read inside each write transaction, so concurrent openers are safe.
pub(super) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    if applied(user_version(conn)?)? == MIGRATIONS.len() {
        return Ok(());
    }
    loop {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let Some(script) = MIGRATIONS.get(applied(user_version(&tx)?)?) else {
            return Ok(());
        };
        tx.execute_batch(script)?;
        tx.pragma_update(None, "user_version", user_version(&tx)? + 1)?;
        tx.commit()?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_hash_migration_keeps_files_and_ends_unverifiable_transfers() {
        let mut conn = Connection::open_in_memory().unwrap();
        for script in &MIGRATIONS[..3] {
            conn.execute_batch(script).unwrap();
        }
        conn.pragma_update(None, "user_version", 3).unwrap();
        let c = "c".repeat(64);
        conn.execute_batch(&format!(
            "INSERT INTO conversations (conv) VALUES ('{c}');
             INSERT INTO files (id, conv, outgoing, name, size, mime, sha256, chunk_size, state)
             VALUES (zeroblob(16), '{c}', 0, 'a.jpg', 5, 'image/jpeg', zeroblob(32), 10,
                     'transferring'),
                    (randomblob(16), '{c}', 1, 'b.jpg', 5, 'image/jpeg', zeroblob(32), 10, 'done');"
        ))
        .unwrap();
        migrate(&mut conn).unwrap();
        assert_eq!(user_version(&conn).unwrap(), SCHEMA_VERSION);
        let rows: Vec<(String, String, i64)> = conn
            .prepare("SELECT name, state, length(content_hash) FROM files ORDER BY name")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            rows,
            [
                ("a.jpg".into(), "refused".into(), 32),
                ("b.jpg".into(), "done".into(), 32)
            ]
        );
        // The length check moved with the column.
        let bad = conn.execute(
            "INSERT INTO files (id, conv, outgoing, name, size, mime, content_hash, chunk_size,
                                state)
             VALUES (randomblob(16), ?1, 0, 'x', 1, 'x', zeroblob(5), 1, 'done')",
            [&c],
        );
        assert!(bad.is_err());
    }

    #[test]
    fn progress_time_migration_ends_transfers_that_break_the_manifest_rules() {
        let mut conn = Connection::open_in_memory().unwrap();
        for script in &MIGRATIONS[..4] {
            conn.execute_batch(script).unwrap();
        }
        conn.pragma_update(None, "user_version", 4).unwrap();
        let c = "c".repeat(64);
        // Incoming: 1 announced by its own op, 2 by an op with another id, 3 with 1-byte chunks;
        // 4 is ours.
        conn.execute_batch(&format!(
            "INSERT INTO conversations (conv) VALUES ('{c}');
             INSERT INTO messages (conv, outgoing, seq, id, kind, body, sent_ms)
             VALUES ('{c}', 0, 1, X'01000000000000000000000000000000', 4, X'', 1),
                    ('{c}', 0, 2, X'09000000000000000000000000000000', 4, X'', 1),
                    ('{c}', 0, 3, X'03000000000000000000000000000000', 4, X'', 1);
             INSERT INTO files (id, conv, outgoing, name, size, mime, content_hash, chunk_size,
                                state)
             VALUES (X'01000000000000000000000000000000', '{c}', 0, '1', 99999, 'x',
                     zeroblob(32), 61440, 'transferring'),
                    (X'02000000000000000000000000000000', '{c}', 0, '2', 99999, 'x',
                     zeroblob(32), 61440, 'transferring'),
                    (X'03000000000000000000000000000000', '{c}', 0, '3', 99999, 'x',
                     zeroblob(32), 1, 'transferring'),
                    (X'04000000000000000000000000000000', '{c}', 1, '4', 99999, 'x',
                     zeroblob(32), 61440, 'transferring');"
        ))
        .unwrap();
        migrate(&mut conn).unwrap();
        let rows: Vec<(String, String, bool)> = conn
            .prepare("SELECT name, state, updated_ms > 1700000000000 FROM files ORDER BY name")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let want = [
            ("1", "transferring"),
            ("2", "refused"),
            ("3", "refused"),
            ("4", "transferring"),
        ];
        assert_eq!(rows, want.map(|(n, s)| (n.to_owned(), s.to_owned(), true)));
    }
}
