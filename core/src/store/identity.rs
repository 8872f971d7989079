//! The `identity` and `peer_id_history` tables.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::{StoreError, now_unix};
use crate::identity::SealedIdentity;

/// The stored identity, if any.
pub fn load_identity(conn: &Connection) -> Result<Option<SealedIdentity>, StoreError> {
    let row = conn
        .query_row(
            "SELECT public_key, sealed_secret, peer_id FROM identity WHERE id = 1",
            [],
            |row| {
                Ok(SealedIdentity {
                    public_key: row.get(0)?,
                    sealed_secret: row.get(1)?,
                    peer_id: row.get(2)?,
                })
            },
        )
        .optional()?;
    Ok(row)
}

/// Stores `sealed` and records its peer ID in the history, in one transaction.
/// Fails with [`StoreError::IdentityExists`] if an identity is already stored.
pub fn save_identity(conn: &mut Connection, sealed: &SealedIdentity) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let exists = tx
        .query_row("SELECT 1 FROM identity WHERE id = 1", [], |_| Ok(()))
        .optional()?
        .is_some();
    if exists {
        return Err(StoreError::IdentityExists);
    }
    let now = now_unix();
    tx.execute(
        "INSERT INTO identity (id, public_key, sealed_secret, peer_id, created_at)
         VALUES (1, ?1, ?2, ?3, ?4)",
        params![sealed.public_key, sealed.sealed_secret, sealed.peer_id, now],
    )?;
    activate(&tx, &sealed.peer_id, now)?;
    tx.commit()?;
    Ok(())
}

/// Switches the identity's peer ID to `new_id` and marks the old one retired, in one
/// transaction. Setting the current ID again changes nothing.
pub fn set_peer_id(conn: &mut Connection, new_id: &str) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let old_id: String = tx
        .query_row("SELECT peer_id FROM identity WHERE id = 1", [], |row| {
            row.get(0)
        })
        .optional()?
        .ok_or(StoreError::NoIdentity)?;
    if old_id == new_id {
        return Ok(());
    }
    let now = now_unix();
    tx.execute(
        "UPDATE identity SET peer_id = ?1 WHERE id = 1",
        params![new_id],
    )?;
    tx.execute(
        "INSERT INTO peer_id_history (peer_id, first_used, retired_at) VALUES (?1, ?2, ?2)
         ON CONFLICT (peer_id) DO UPDATE SET retired_at = excluded.retired_at",
        params![old_id, now],
    )?;
    activate(&tx, new_id, now)?;
    tx.commit()?;
    Ok(())
}

/// Records `peer_id` as in use (re-activating it if it was retired before).
fn activate(conn: &Connection, peer_id: &str, now: i64) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO peer_id_history (peer_id, first_used, retired_at) VALUES (?1, ?2, NULL)
         ON CONFLICT (peer_id) DO UPDATE SET retired_at = NULL",
        params![peer_id, now],
    )?;
    Ok(())
}

/// When this profile last moved to a new peer ID (Unix seconds), if it ever did.
pub fn last_peer_id_change(conn: &Connection) -> Result<Option<i64>, StoreError> {
    Ok(
        conn.query_row("SELECT MAX(retired_at) FROM peer_id_history", [], |row| {
            row.get(0)
        })?,
    )
}

/// Every peer ID this profile has used, oldest first, including the current one.
pub fn peer_id_history(conn: &Connection) -> Result<Vec<String>, StoreError> {
    let mut stmt =
        conn.prepare("SELECT peer_id FROM peer_id_history ORDER BY first_used, rowid")?;
    let ids = stmt
        .query_map([], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use crate::identity::{Identity, new_peer_id};
    use crate::store::{Store, StoreError};

    fn open_temp() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("peerns.db")).unwrap();
        (dir, store)
    }

    #[test]
    fn identity_round_trip_and_no_overwrite() {
        let (_dir, store) = open_temp();
        assert_eq!(store.load_identity().unwrap(), None);
        let sealed = Identity::generate().seal(&[1; 32]);
        store.save_identity(&sealed).unwrap();
        assert_eq!(store.load_identity().unwrap().as_ref(), Some(&sealed));
        assert_eq!(store.peer_id_history().unwrap(), [sealed.peer_id.as_str()]);
        assert_eq!(
            store.with_conn(|c| super::last_peer_id_change(c)).unwrap(),
            None
        );

        let other = Identity::generate().seal(&[1; 32]);
        assert!(matches!(
            store.save_identity(&other),
            Err(StoreError::IdentityExists)
        ));
        assert_eq!(store.load_identity().unwrap(), Some(sealed));
    }

    #[test]
    fn set_peer_id_without_identity_fails() {
        let (_dir, store) = open_temp();
        assert!(matches!(
            store.set_peer_id("peerns2-x"),
            Err(StoreError::NoIdentity)
        ));
        assert!(store.peer_id_history().unwrap().is_empty());
    }

    #[test]
    fn set_peer_id_updates_identity_and_history() {
        let (_dir, store) = open_temp();
        let sealed = Identity::generate().seal(&[1; 32]);
        store.save_identity(&sealed).unwrap();
        let (second, third) = (new_peer_id(), new_peer_id());
        store.set_peer_id(&second).unwrap();
        store.set_peer_id(&second).unwrap();
        store.set_peer_id(&third).unwrap();
        assert_eq!(store.load_identity().unwrap().unwrap().peer_id, third);
        let changed = store.with_conn(|c| super::last_peer_id_change(c)).unwrap();
        assert!(changed.is_some_and(|t| t > 1_700_000_000));
        assert_eq!(
            store.peer_id_history().unwrap(),
            [sealed.peer_id.clone(), second.clone(), third.clone()]
        );
        let retired: Vec<(String, bool)> = store
            .with_conn(|c| {
                let mut stmt = c.prepare(
                    "SELECT peer_id, retired_at IS NOT NULL FROM peer_id_history ORDER BY rowid",
                )?;
                let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
                Ok(rows.collect::<Result<_, _>>()?)
            })
            .unwrap();
        assert_eq!(
            retired,
            [(sealed.peer_id, true), (second, true), (third, false)]
        );
    }
}
