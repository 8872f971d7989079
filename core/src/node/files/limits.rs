//! The receiver's limits on incoming files: quotas of unfinished bytes (per contact and in all)
//! checked when an offer is recorded, and the expiry of transfers that stopped making progress.

use std::fs;
use std::sync::Weak;
use std::time::Duration;

use super::{Inner, Node, NodeError, NodeEvent, hex_id, lock, part_path, unix_ms};
use crate::chat::file::{self, FileState, Manifest, Transfer};
use crate::chat::wire::Frame;
use crate::groups::store as gstore;
use crate::identity::Fingerprint;

/// Unfinished incoming bytes accepted from one contact unless the user sets another quota.
pub(crate) const DEFAULT_CONTACT_QUOTA: u64 = 2 << 30;
/// Unfinished incoming bytes accepted from all contacts together, by default.
pub(crate) const DEFAULT_TOTAL_QUOTA: u64 = 4 << 30;
/// An incoming transfer without progress for this long is dropped, by default.
pub(crate) const DEFAULT_EXPIRY: Duration = Duration::from_secs(7 * 24 * 3600);
/// How often stale transfers are looked for (and once at start).
const EXPIRY_CHECK: Duration = Duration::from_secs(3600);
/// Settings keys of the quotas and the expiry.
pub(super) const CONTACT_QUOTA_KEY: &str = "file_quota_contact_bytes";
pub(super) const TOTAL_QUOTA_KEY: &str = "file_quota_total_bytes";
const EXPIRY_KEY: &str = "file_expiry_secs";

/// A numeric setting, or `default`.
fn setting(conn: &rusqlite::Connection, key: &str, default: u64) -> Result<u64, NodeError> {
    Ok(crate::store::settings::get_setting(conn, key)?
        .and_then(|v| v.parse().ok())
        .unwrap_or(default))
}

/// What became of an offer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Offer {
    /// Recorded: ask for its chunks.
    Accepted,
    /// Recorded as refused, for this reason.
    Refused(&'static str),
    /// Its id is taken (by another transfer): nothing recorded.
    Ignored,
}

/// Records the offer of `m` from `conv` at `now_ms` (in the transaction that stores its message:
/// a stop between the two would leave a file that never downloads), refused if it is over
/// `max_file` or would take the unfinished incoming bytes from `conv`, or from everyone, over
/// their quota.
pub(crate) fn offer(
    tx: &rusqlite::Connection,
    conv: &Fingerprint,
    m: &Manifest,
    max_file: u64,
    now_ms: u64,
) -> Result<Offer, NodeError> {
    let charge = m.size.max(u64::from(file::MIN_CHUNK));
    let over = |used: u64, quota: u64| used.saturating_add(charge) > quota;
    let why = if m.size > max_file {
        Some("larger than the receiver's size limit")
    } else if over(
        file::incoming_unfinished_bytes(tx, Some(conv))?,
        setting(tx, CONTACT_QUOTA_KEY, DEFAULT_CONTACT_QUOTA)?,
    ) {
        Some("over the receiver's quota of unfinished files from one contact")
    } else if !total_room(tx, m.size)? {
        Some("over the receiver's quota of unfinished files")
    } else {
        None
    };
    if !file::add(tx, conv, false, m, now_ms)? {
        return Ok(Offer::Ignored);
    }
    if why.is_some() {
        file::set_state(tx, &m.id, FileState::Refused)?;
    }
    Ok(why.map_or(Offer::Accepted, Offer::Refused))
}

/// Whether `size` more bytes fit the quota of unfinished incoming bytes from everyone: files
/// from contacts and files of groups together (a group downloads its members' files by itself).
pub(crate) fn total_room(c: &rusqlite::Connection, size: u64) -> Result<bool, NodeError> {
    let charge = size.max(u64::from(file::MIN_CHUNK));
    let used = file::incoming_unfinished_bytes(c, None)?
        .saturating_add(crate::groups::files::unfinished_bytes(c)?);
    Ok(used.saturating_add(charge) <= setting(c, TOTAL_QUOTA_KEY, DEFAULT_TOTAL_QUOTA)?)
}

impl Inner {
    /// Drops incoming transfers without progress since `now_ms` minus the expiry: refused,
    /// their partial files deleted, the sender told if it is connected. Returns how many.
    pub(crate) async fn expire_stale(&self, now_ms: u64) -> usize {
        let dropped = self
            .end_transfers("gone stale", move |c| {
                let after = setting(c, EXPIRY_KEY, DEFAULT_EXPIRY.as_secs())?;
                let before = now_ms.saturating_sub(after.saturating_mul(1000));
                Ok(file::incoming_stale(c, before)?)
            })
            .await;
        if dropped > 0 {
            tracing::info!(dropped, "dropped stale incoming files");
        }
        dropped
    }

    /// Incoming transfer `t`, refused in the store, ends: its write task and partial file go,
    /// the sender is told if it is connected.
    pub(super) async fn incoming_dropped(&self, t: &Transfer) {
        let id = t.manifest.id;
        // Its write task ends once its queue is dropped.
        lock(&self.receiving).remove(&id);
        let _ = fs::remove_file(part_path(&self.files_dir, &id));
        if let Some(link) = self.link(&t.conv) {
            let _ = link.send(&Frame::FileDone { id, ok: false }).await;
        }
        self.emit(NodeEvent::FileDone {
            conversation: t.conv.to_hex(),
            id: hex_id(&id),
            ok: false,
            outgoing: false,
        });
    }
}

/// Drops stale incoming transfers, and files no transfer owns, at start and then every
/// [`EXPIRY_CHECK`].
pub(crate) async fn expiry_loop(inner: Weak<Inner>) {
    let mut tick = tokio::time::interval(EXPIRY_CHECK);
    loop {
        tick.tick().await;
        let Some(this) = inner.upgrade() else { return };
        this.expire_stale(unix_ms()).await;
        this.sweep_orphans().await;
    }
}

/// A copy or partial file is left alone this long after its last write: a file being sent is
/// copied into the profile before its transfer is recorded.
const ORPHAN_AGE: Duration = Duration::from_secs(3600);

/// Whether `e` was last written [`ORPHAN_AGE`] ago or more.
fn aged(e: &fs::DirEntry) -> bool {
    e.metadata()
        .and_then(|m| m.modified())
        .is_ok_and(|t| t.elapsed().is_ok_and(|age| age >= ORPHAN_AGE))
}

/// Whether `name` is one of our IDs (a file's or a group's): 32 hex characters.
fn is_hex32(name: &str) -> bool {
    name.len() == 32 && name.bytes().all(|b| b.is_ascii_hexdigit())
}

impl Inner {
    /// Deletes the copies of files we send (`out/<id>`) and the partial files we receive
    /// (`in/<id>.part`) that no unfinished transfer owns, and the folders of groups no longer
    /// stored (`groups/<gid>`), once [`ORPHAN_AGE`] old: left by a stop between writing one
    /// and recording or ending its transfer, or between deleting a group and its folder.
    /// Returns how many.
    pub(crate) async fn sweep_orphans(&self) -> usize {
        let _one_at_a_time = self.resuming.lock().await;
        let owned = self
            .db(|c| {
                let mut ids = file::incoming_unfinished(c, None)?;
                ids.extend(file::outgoing_unfinished(c, None, 0)?);
                let groups = gstore::list(c)?.into_iter().map(|g| g.gid.to_hex());
                Ok::<_, NodeError>(
                    ids.into_iter()
                        .map(|t| hex_id(&t.manifest.id))
                        .chain(groups)
                        .collect(),
                )
            })
            .await;
        let owned: std::collections::HashSet<String> = match owned {
            Ok(ids) => ids,
            Err(e) => {
                tracing::warn!(error = %e, "could not look for files no transfer owns");
                return 0;
            }
        };
        let dir = self.files_dir.clone();
        let swept = tokio::task::spawn_blocking(move || {
            let mut n = 0;
            for (sub, suffix) in [("out", ""), ("in", ".part")] {
                let Ok(entries) = fs::read_dir(dir.join(sub)) else {
                    continue;
                };
                for e in entries.flatten() {
                    let name = e.file_name().to_string_lossy().into_owned();
                    let Some(id) = name.strip_suffix(suffix) else {
                        continue;
                    };
                    if is_hex32(id) && aged(&e) && !owned.contains(id) && e.path().is_file() {
                        n += usize::from(fs::remove_file(e.path()).is_ok());
                    }
                }
            }
            let Ok(groups) = fs::read_dir(dir.join("groups")) else {
                return n;
            };
            for e in groups.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if is_hex32(&name) && aged(&e) && !owned.contains(&name) && e.path().is_dir() {
                    n += usize::from(fs::remove_dir_all(e.path()).is_ok());
                }
            }
            n
        })
        .await
        .unwrap_or(0);
        if swept > 0 {
            tracing::info!(swept, "deleted files no transfer owned");
        }
        swept
    }
}

impl Node {
    /// Sets the quotas of unfinished incoming bytes, from one contact and from all together
    /// (kept in the profile): an offer that would go over either is refused.
    pub async fn set_incoming_quota(&self, per_contact: u64, total: u64) -> Result<(), NodeError> {
        self.inner
            .db(move |c| {
                crate::store::settings::set_setting(
                    c,
                    CONTACT_QUOTA_KEY,
                    &per_contact.to_string(),
                )?;
                crate::store::settings::set_setting(c, TOTAL_QUOTA_KEY, &total.to_string())
            })
            .await
    }

    /// Sets how long an incoming transfer may go without progress before it is dropped (kept
    /// in the profile; checked at start and hourly).
    pub async fn set_file_expiry(&self, after: Duration) -> Result<(), NodeError> {
        self.inner
            .db(move |c| {
                crate::store::settings::set_setting(c, EXPIRY_KEY, &after.as_secs().to_string())
            })
            .await
    }
}
