//! The `peerjs_tokens` table: the token a node presents to a PeerJS server for each of its
//! peer IDs, kept so a restarted node re-attaches to the same IDs.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::{StoreError, now_unix};
use crate::crypto::random_hex;

/// The token stored for `peer_id` on `server`, if any.
pub fn peerjs_token(
    conn: &Connection,
    server: &str,
    peer_id: &str,
) -> Result<Option<String>, StoreError> {
    let token = conn
        .query_row(
            "SELECT token FROM peerjs_tokens WHERE server = ?1 AND peer_id = ?2",
            params![server, peer_id],
            |row| row.get(0),
        )
        .optional()?;
    Ok(token)
}

/// The stored token for `peer_id` on `server`; if there is none, a random 16-hex-character
/// token is created, stored and returned (atomically).
pub fn peerjs_token_or_create(
    conn: &mut Connection,
    server: &str,
    peer_id: &str,
) -> Result<String, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    if let Some(token) = peerjs_token(&tx, server, peer_id)? {
        return Ok(token);
    }
    let token = random_hex(8);
    set_peerjs_token(&tx, server, peer_id, &token)?;
    tx.commit()?;
    Ok(token)
}

/// Stores (or replaces) the token for `peer_id` on `server`.
pub fn set_peerjs_token(
    conn: &Connection,
    server: &str,
    peer_id: &str,
    token: &str,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO peerjs_tokens (server, peer_id, token, updated_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (server, peer_id)
         DO UPDATE SET token = excluded.token, updated_at = excluded.updated_at",
        params![server, peer_id, token, now_unix()],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::store::Store;

    #[test]
    fn tokens_are_created_once_and_persist_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("peerns.db");
        let store = Store::open(&path).unwrap();
        assert_eq!(store.peerjs_token("wss://a", "p1").unwrap(), None);
        let token = store.peerjs_token_or_create("wss://a", "p1").unwrap();
        assert_eq!(token.len(), 16);
        assert!(token.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(
            store.peerjs_token_or_create("wss://a", "p1").unwrap(),
            token
        );
        let other = store.peerjs_token_or_create("wss://b", "p1").unwrap();
        assert_ne!(other, token);
        drop(store);

        let store = Store::open(&path).unwrap();
        assert_eq!(
            store.peerjs_token("wss://a", "p1").unwrap(),
            Some(token.clone())
        );
        assert_eq!(
            store.peerjs_token_or_create("wss://a", "p1").unwrap(),
            token
        );
        assert_eq!(store.peerjs_token("wss://a", "p2").unwrap(), None);
    }

    #[test]
    fn set_token_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("peerns.db")).unwrap();
        store.set_peerjs_token("s", "p", "first").unwrap();
        store.set_peerjs_token("s", "p", "second").unwrap();
        assert_eq!(
            store.peerjs_token("s", "p").unwrap().as_deref(),
            Some("second")
        );
        assert_eq!(store.peerjs_token_or_create("s", "p").unwrap(), "second");
    }
}
