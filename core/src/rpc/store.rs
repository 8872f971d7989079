//! Grants and the audit log in SQLite. Scopes are granted only to contacts at Full Access
//! (trust 3); the server checks the trust again at every request, so lowering a contact's
//! trust disables its grants at once. The audit log keeps the last [`MAX_AUDIT`] requests.

use rusqlite::{Connection, params};
use serde::Serialize;

use super::scope::Scope;
use crate::contacts::{self, Trust};
use crate::identity::Fingerprint;
use crate::store::StoreError;

/// Rows kept in the audit log.
pub const MAX_AUDIT: i64 = 10_000;
/// Scopes one contact may hold.
pub const MAX_GRANTS: usize = 64;

/// Why a grant failed.
#[derive(Debug, thiserror::Error)]
pub enum GrantError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Not a contact at Full Access.
    #[error("scopes are granted only to contacts at trust 3 (Full Access)")]
    NotFullAccess,
    /// Too many scopes for one contact.
    #[error("at most {MAX_GRANTS} scopes per contact")]
    TooMany,
}

impl From<rusqlite::Error> for GrantError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Store(e.into())
    }
}

impl From<contacts::ContactError> for GrantError {
    fn from(e: contacts::ContactError) -> Self {
        match e {
            contacts::ContactError::Store(s) => Self::Store(s),
            _ => Self::NotFullAccess,
        }
    }
}

/// One granted scope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Grant {
    /// The contact.
    pub fingerprint: String,
    /// The scope as written.
    pub scope: String,
    /// When it was granted, Unix ms.
    pub granted_ms: u64,
}

/// Grants `scopes` to `fp`, refused unless `fp` is a contact at Full Access.
pub fn grant(
    conn: &Connection,
    fp: &Fingerprint,
    scopes: &[Scope],
    now_ms: u64,
) -> Result<(), GrantError> {
    if contacts::trust_of(conn, fp)? != Some(Trust::FullAccess) {
        return Err(GrantError::NotFullAccess);
    }
    let have = scopes_of(conn, fp)?;
    let new = scopes.iter().filter(|s| !have.contains(s)).count();
    if have.len() + new > MAX_GRANTS {
        return Err(GrantError::TooMany);
    }
    for s in scopes {
        conn.execute(
            "INSERT OR IGNORE INTO rpc_grants (fingerprint, scope, granted_ms) VALUES (?1, ?2, ?3)",
            params![fp.to_hex(), s.to_string(), now_ms as i64],
        )?;
    }
    Ok(())
}

/// Revokes `scopes` of `fp`, or all of them; returns how many were removed.
pub fn revoke(
    conn: &Connection,
    fp: &Fingerprint,
    scopes: Option<&[Scope]>,
) -> Result<usize, GrantError> {
    Ok(match scopes {
        None => conn.execute(
            "DELETE FROM rpc_grants WHERE fingerprint = ?1",
            [fp.to_hex()],
        )?,
        Some(list) => {
            let mut n = 0;
            for s in list {
                n += conn.execute(
                    "DELETE FROM rpc_grants WHERE fingerprint = ?1 AND scope = ?2",
                    params![fp.to_hex(), s.to_string()],
                )?;
            }
            n
        }
    })
}

/// Every grant, by contact then scope.
pub fn grants(conn: &Connection) -> Result<Vec<Grant>, StoreError> {
    let mut st = conn.prepare(
        "SELECT fingerprint, scope, granted_ms FROM rpc_grants ORDER BY fingerprint, scope",
    )?;
    let rows = st.query_map([], |r| {
        Ok(Grant {
            fingerprint: r.get(0)?,
            scope: r.get(1)?,
            granted_ms: r.get::<_, i64>(2)? as u64,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The scopes granted to `fp` (rows that no longer parse are skipped).
pub fn scopes_of(conn: &Connection, fp: &Fingerprint) -> Result<Vec<Scope>, StoreError> {
    let mut st = conn.prepare("SELECT scope FROM rpc_grants WHERE fingerprint = ?1")?;
    let rows = st.query_map([fp.to_hex()], |r| r.get::<_, String>(0))?;
    let mut out = vec![];
    for s in rows {
        if let Ok(scope) = Scope::parse(&s?) {
            out.push(scope);
        }
    }
    Ok(out)
}

/// One request served (`code` 200) or refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    /// When, Unix ms.
    pub at_ms: u64,
    /// Who asked.
    pub fingerprint: String,
    /// The request id.
    pub id: String,
    /// The method.
    pub method: String,
    /// What it named (a path, a status item, ...), as given.
    pub target: String,
    /// 200 or the error code.
    pub code: u16,
    /// The error message, or empty.
    pub message: String,
}

/// Appends `e` and drops rows beyond [`MAX_AUDIT`].
pub fn audit(conn: &Connection, e: &AuditEntry) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO rpc_audit (at_ms, fingerprint, id, method, target, code, message)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            e.at_ms as i64,
            e.fingerprint,
            e.id,
            e.method,
            e.target,
            e.code,
            e.message
        ],
    )?;
    conn.execute(
        "DELETE FROM rpc_audit WHERE n <= (SELECT max(n) FROM rpc_audit) - ?1",
        [MAX_AUDIT],
    )?;
    Ok(())
}

/// The newest `limit` audit entries, oldest first.
pub fn audit_log(conn: &Connection, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
    let mut st = conn.prepare(
        "SELECT at_ms, fingerprint, id, method, target, code, message FROM
           (SELECT * FROM rpc_audit ORDER BY n DESC LIMIT ?1) ORDER BY n",
    )?;
    let rows = st.query_map([limit as i64], |r| {
        Ok(AuditEntry {
            at_ms: r.get::<_, i64>(0)? as u64,
            fingerprint: r.get(1)?,
            id: r.get(2)?,
            method: r.get(3)?,
            target: r.get(4)?,
            code: r.get(5)?,
            message: r.get(6)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// A text message for `db.messages`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SyncedMessage {
    /// The contact's fingerprint.
    pub conversation: String,
    /// We sent it.
    pub outgoing: bool,
    /// Its seq in the sender's stream.
    pub seq: u64,
    /// The sender's clock, Unix ms.
    pub sent_ms: u64,
    /// The text.
    pub text: String,
}

/// Text messages (not deleted) sent after `after_ms`, oldest first, at most `limit`.
pub fn messages_after(
    conn: &Connection,
    after_ms: u64,
    limit: usize,
) -> Result<Vec<SyncedMessage>, StoreError> {
    // Stored times are i64: nothing is after a larger one (`as` would wrap to -1: everything).
    let Ok(after) = i64::try_from(after_ms) else {
        return Ok(vec![]);
    };
    let mut st = conn.prepare(
        "SELECT conv, outgoing, seq, sent_ms, body FROM messages
         WHERE sent_ms > ?1 AND kind = 1 AND deleted = 0
         ORDER BY sent_ms, conv, outgoing, seq LIMIT ?2",
    )?;
    let rows = st.query_map(params![after, limit as i64], |r| {
        Ok(SyncedMessage {
            conversation: r.get(0)?,
            outgoing: r.get::<_, i64>(1)? == 1,
            seq: r.get::<_, i64>(2)? as u64,
            sent_ms: r.get::<_, i64>(3)? as u64,
            text: String::from_utf8_lossy(&r.get::<_, Vec<u8>>(4)?).into_owned(),
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Identity;
    use crate::store::Store;

    fn store_with(trust: Trust) -> (tempfile::TempDir, Store, Fingerprint) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("db")).unwrap();
        let id = Identity::generate();
        let key = id.public_key().to_bytes();
        store
            .with_conn(|c| {
                contacts::save(c, &key, "phone", trust, None, 1).unwrap();
                Ok(())
            })
            .unwrap();
        (dir, store, id.fingerprint())
    }

    #[test]
    fn grants_need_full_access_and_can_be_revoked() {
        let s = |x: &str| Scope::parse(x).unwrap();
        for t in [Trust::Blocked, Trust::Known, Trust::Trusted] {
            let (_d, store, fp) = store_with(t);
            store
                .with_conn(|c| {
                    assert!(matches!(
                        grant(c, &fp, &[s("sys:status:*")], 1),
                        Err(GrantError::NotFullAccess)
                    ));
                    Ok(())
                })
                .unwrap();
        }
        let (_d, store, fp) = store_with(Trust::FullAccess);
        store
            .with_conn(|c| {
                let (a, b) = (s("fs:write:/incoming/**"), s("sys:status:battery"));
                grant(c, &fp, &[a.clone(), b.clone()], 5).unwrap();
                grant(c, &fp, std::slice::from_ref(&a), 6).unwrap();
                assert_eq!(scopes_of(c, &fp).unwrap().len(), 2);
                assert_eq!(grants(c).unwrap()[0].scope, "fs:write:/incoming/**");
                assert_eq!(revoke(c, &fp, Some(&[b])).unwrap(), 1);
                assert_eq!(scopes_of(c, &fp).unwrap(), vec![a]);
                assert_eq!(revoke(c, &fp, None).unwrap(), 1);
                assert!(grants(c).unwrap().is_empty());
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn the_audit_log_is_bounded() {
        let (_d, store, _) = store_with(Trust::FullAccess);
        store
            .with_conn(|c| {
                for i in 0..(MAX_AUDIT + 5) {
                    let e = AuditEntry {
                        at_ms: i as u64,
                        fingerprint: "f".into(),
                        id: i.to_string(),
                        method: "fs.list".into(),
                        target: "/a".into(),
                        code: 200,
                        message: String::new(),
                    };
                    audit(c, &e)?;
                }
                let n: i64 = c.query_row("SELECT count(*) FROM rpc_audit", [], |r| r.get(0))?;
                assert_eq!(n, MAX_AUDIT);
                let last = audit_log(c, 2)?;
                assert_eq!(last[1].id, (MAX_AUDIT + 4).to_string());
                assert_eq!(last[0].id, (MAX_AUDIT + 3).to_string());
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn messages_after_a_time_past_i64_are_none() {
        let (_d, store, fp) = store_with(Trust::FullAccess);
        store
            .with_conn(|c| {
                let me = Identity::generate().fingerprint();
                let kind = crate::chat::wire::OpKind::Text;
                crate::chat::store::enqueue(c, &me, &fp, kind, None, b"hi", 5000).unwrap();
                assert_eq!(messages_after(c, 4999, 10)?.len(), 1);
                assert!(messages_after(c, 5000, 10)?.is_empty());
                assert!(messages_after(c, i64::MAX as u64, 10)?.is_empty());
                assert!(messages_after(c, u64::MAX, 10)?.is_empty());
                Ok(())
            })
            .unwrap();
    }
}
