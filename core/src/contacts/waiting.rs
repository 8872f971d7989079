//! Share links we could not reach yet (decision 0019): someone added by a link while their
//! phone was off. A request needs their key, which only a handshake with them proves, so the
//! link itself waits (fingerprint and persistent ID) until the owner can be reached; then the
//! request goes out as if just asked. Bounded in number ([`MAX_WAITING`]) and age
//! ([`WAITING_TTL_MS`]).

use rusqlite::{Connection, params};

use super::{ContactError, ShareLink, Trust, trust_of, valid_peer_id};
use crate::identity::Fingerprint;

/// Most links waiting at once; adding more is refused until some are reached or cancelled.
pub const MAX_WAITING: usize = 64;
/// A link not reached within this long (14 days) is dropped.
pub const WAITING_TTL_MS: u64 = 14 * 24 * 3_600_000;

/// A share link whose owner we could not reach yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitingLink {
    /// The owner's fingerprint (from the link: proven only by the handshake that reaches it).
    pub fingerprint: Fingerprint,
    /// The owner's persistent PeerJS ID.
    pub peer_id: String,
    /// When it was added, Unix ms.
    pub created_ms: u64,
    /// When we last tried to reach it, Unix ms (0: never after adding).
    pub tried_ms: u64,
}

/// Keeps `link` until its owner is reached, added at `now_ms` and last tried then if `tried`
/// (else never: it is due at once). A link kept already keeps its age and takes the new ID; a
/// contact's or a blocked key's link is refused, and so is a new one when [`MAX_WAITING`] wait.
pub fn wait_for(
    conn: &Connection,
    link: &ShareLink,
    now_ms: u64,
    tried: bool,
) -> Result<WaitingLink, ContactError> {
    if !valid_peer_id(&link.peer_id) {
        return Err(ContactError::Invalid(format!(
            "bad peer id {:?}",
            link.peer_id
        )));
    }
    let fp = link.fingerprint;
    match trust_of(conn, &fp)? {
        Some(Trust::Blocked) => return Err(ContactError::Blocked),
        Some(_) => return Err(ContactError::Invalid("already a contact".into())),
        None => {}
    }
    expire(conn, now_ms)?;
    let (count, ours): (i64, bool) = conn.query_row(
        "SELECT count(*), coalesce(sum(fingerprint = ?1), 0) > 0 FROM contact_links",
        [fp.to_hex()],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    if !ours && count as usize >= MAX_WAITING {
        return Err(ContactError::Full);
    }
    conn.execute(
        "INSERT INTO contact_links (fingerprint, peer_id, created_ms, tried_ms)
         VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (fingerprint) DO UPDATE SET
            peer_id = excluded.peer_id, tried_ms = excluded.tried_ms",
        params![
            fp.to_hex(),
            link.peer_id,
            now_ms as i64,
            if tried { now_ms as i64 } else { 0 }
        ],
    )?;
    waiting(conn, now_ms)?
        .into_iter()
        .find(|w| w.fingerprint == fp)
        .ok_or(ContactError::NotFound)
}

/// Drops the links older than [`WAITING_TTL_MS`] at `now_ms`.
pub fn expire(conn: &Connection, now_ms: u64) -> Result<(), ContactError> {
    conn.execute(
        "DELETE FROM contact_links WHERE created_ms < ?1",
        [now_ms.saturating_sub(WAITING_TTL_MS) as i64],
    )?;
    Ok(())
}

/// The links still waiting at `now_ms` (younger than [`WAITING_TTL_MS`]), oldest first.
pub fn waiting(conn: &Connection, now_ms: u64) -> Result<Vec<WaitingLink>, ContactError> {
    let mut st = conn.prepare(
        "SELECT fingerprint, peer_id, created_ms, tried_ms FROM contact_links
         WHERE created_ms >= ?1 ORDER BY created_ms, fingerprint",
    )?;
    let rows = st.query_map([now_ms.saturating_sub(WAITING_TTL_MS) as i64], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, i64>(2)?,
            r.get::<_, i64>(3)?,
        ))
    })?;
    rows.map(|r| {
        let (fp, peer_id, created, tried) = r?;
        Ok(WaitingLink {
            fingerprint: fp
                .parse()
                .map_err(|_| ContactError::Invalid("stored fingerprint".into()))?,
            peer_id,
            created_ms: created as u64,
            tried_ms: tried as u64,
        })
    })
    .collect()
}

/// Records a failed try to reach `fp`'s link at `now_ms`.
pub fn tried(conn: &Connection, fp: &Fingerprint, now_ms: u64) -> Result<(), ContactError> {
    conn.execute(
        "UPDATE contact_links SET tried_ms = ?2 WHERE fingerprint = ?1",
        params![fp.to_hex(), now_ms as i64],
    )?;
    Ok(())
}

/// Forgets `fp`'s link (reached, cancelled, or no longer wanted); whether one waited.
pub fn stop_waiting(conn: &Connection, fp: &Fingerprint) -> Result<bool, ContactError> {
    Ok(conn.execute(
        "DELETE FROM contact_links WHERE fingerprint = ?1",
        [fp.to_hex()],
    )? > 0)
}

#[cfg(test)]
mod tests {
    use super::super::tests::{store, with};
    use super::*;
    use crate::identity::Identity;

    fn link(n: u8) -> ShareLink {
        let key = Identity::generate().public_key();
        ShareLink {
            peer_id: format!("peerns2-{}", format!("{n:02x}").repeat(16)),
            fingerprint: Fingerprint::of(&key),
        }
    }

    #[test]
    fn a_link_waits_until_reached_cancelled_or_too_old() {
        let (_dir, store) = store();
        let (one, two) = (link(1), link(2));
        with(&store, |c| {
            let w = wait_for(c, &one, 1_000, true).unwrap();
            assert_eq!((w.created_ms, w.tried_ms), (1_000, 1_000));
            // Added again: keeps its age, counts as tried now.
            let again = wait_for(c, &one, 5_000, true).unwrap();
            assert_eq!((again.created_ms, again.tried_ms), (1_000, 5_000));
            // Kept without a try (we were offline): due at once.
            assert_eq!(wait_for(c, &two, 2_000, false).unwrap().tried_ms, 0);
            tried(c, &two.fingerprint, 9_000).unwrap();
            let all = waiting(c, 10_000).unwrap();
            assert_eq!(
                all.iter()
                    .map(|w| (w.fingerprint, w.tried_ms))
                    .collect::<Vec<_>>(),
                [(one.fingerprint, 5_000), (two.fingerprint, 9_000)]
            );
            assert!(stop_waiting(c, &one.fingerprint).unwrap());
            assert!(!stop_waiting(c, &one.fingerprint).unwrap());
            // Fourteen days after it was added, the other one is no longer listed; it is
            // deleted by `expire`, or when it is added again, as a new link.
            assert_eq!(waiting(c, 2_000 + WAITING_TTL_MS).unwrap().len(), 1);
            assert!(waiting(c, 2_001 + WAITING_TTL_MS).unwrap().is_empty());
            let late = 3_000 + WAITING_TTL_MS;
            let renewed = wait_for(c, &two, late, true).unwrap();
            assert_eq!((renewed.created_ms, renewed.tried_ms), (late, late));
            expire(c, late + WAITING_TTL_MS + 1).unwrap();
            assert!(
                waiting(c, 0).unwrap().is_empty(),
                "expired rows are deleted"
            );
        });
    }

    #[test]
    fn contacts_blocked_keys_bad_ids_and_a_full_list_are_refused() {
        let (_dir, store) = store();
        let friend = Identity::generate().public_key();
        let theirs = ShareLink {
            peer_id: format!("peerns2-{}", "ab".repeat(16)),
            fingerprint: Fingerprint::of(&friend),
        };
        with(&store, |c| {
            super::super::save(c, &friend.to_bytes(), "friend", Trust::Trusted, None, 1).unwrap();
            assert!(matches!(
                wait_for(c, &theirs, 1, true),
                Err(ContactError::Invalid(_))
            ));
            super::super::set_trust(c, &theirs.fingerprint, Trust::Blocked).unwrap();
            assert!(matches!(
                wait_for(c, &theirs, 1, true),
                Err(ContactError::Blocked)
            ));
            let first = link(0);
            wait_for(c, &first, 1, true).unwrap();
            for n in 1..MAX_WAITING as u8 {
                wait_for(c, &link(n), 1, true).unwrap();
            }
            assert!(matches!(
                wait_for(c, &link(200), 1, true),
                Err(ContactError::Full)
            ));
            // One already waiting may be added again.
            wait_for(c, &first, 2, true).unwrap();
            let bad = ShareLink {
                peer_id: "someone".into(),
                fingerprint: link(201).fingerprint,
            };
            assert!(matches!(
                wait_for(c, &bad, 1, true),
                Err(ContactError::Invalid(_))
            ));
        });
    }
}
