//! Groups on a profile, offline: create, invite, join by link, remove, list, history, delete. Admin
//! changes made offline are appended to our copy of the log; when online, the group engine
//! reconciles it with the router's (a concurrent change elsewhere makes ours be signed again
//! on the winning head, decision 0011). Online traffic: `group_live.rs`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::groups::store::{self as gstore, GroupRow};
use crate::groups::{Body, GroupId, History, InviteLink, Log, LogOp, SignedMessage};
use crate::identity::Fingerprint;
use crate::identity::Identity;
use crate::store::{Profile, Store, StoreError};

/// Why a group operation failed.
#[derive(Debug, thiserror::Error)]
pub enum GroupError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No such group in this profile.
    #[error("unknown group")]
    UnknownGroup,
    /// We may not do this (not an admin, not a member).
    #[error("not allowed: {0}")]
    NotAllowed(&'static str),
    /// The input does not verify or does not apply.
    #[error("{0}")]
    Invalid(String),
}

/// Our place in a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupRole {
    /// An admin.
    Admin,
    /// A member.
    Member,
    /// Joined by link; membership is confirmed once the log arrives from the group.
    Pending,
    /// Left or removed.
    Former,
}

/// A group as lists show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupInfo {
    /// The group.
    pub gid: GroupId,
    /// Its name.
    pub name: String,
    /// Current members and whether each is an admin.
    pub members: BTreeMap<Fingerprint, bool>,
    /// Our role.
    pub role: GroupRole,
}

/// A stored message as history shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMessageView {
    /// Message ID (32 hex).
    pub id: String,
    /// Author fingerprint.
    pub author: Fingerprint,
    /// Author's seq.
    pub seq: u64,
    /// Text (empty for files).
    pub text: String,
    /// Author's clock, Unix ms.
    pub sent_ms: u64,
    /// The file a file message announces.
    pub file: Option<GroupFileRef>,
}

/// The file a group message announces, as its signed manifest names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupFileRef {
    /// File ID (32 hex): pass to [`super::Node::group_file`].
    pub id: String,
    /// File name (no path).
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// Media type.
    pub mime: String,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn load(store: &Store, gid: &GroupId) -> Result<Log, GroupError> {
    store
        .with_conn(|c| gstore::load_log(c, gid))?
        .ok_or(GroupError::UnknownGroup)
}

fn append(
    store: &Store,
    identity: &Identity,
    log: &mut Log,
    op: LogOp,
) -> Result<crate::groups::SignedEntry, GroupError> {
    let entry = log.sign_next(identity, op, now_ms());
    let from = log.len();
    log.append(entry.clone())
        .map_err(|e| GroupError::Invalid(e.to_string()))?;
    store.with_conn(|c| {
        let tx = c.transaction()?;
        gstore::save_log(&tx, log, from)?;
        tx.commit()?;
        Ok(())
    })?;
    Ok(entry)
}

/// Creates a group with us as its only member and admin.
pub fn create(profile: &Profile, name: &str) -> Result<GroupId, GroupError> {
    create_in(profile.store(), profile.identity(), name)
}

/// [`create`] on a store and identity (a running node's).
pub(crate) fn create_in(
    store: &Store,
    identity: &Identity,
    name: &str,
) -> Result<GroupId, GroupError> {
    let log = Log::create(identity, name, now_ms());
    store.with_conn(|c| {
        let tx = c.transaction()?;
        gstore::save_group(&tx, &log, now_ms())?;
        tx.commit()?;
        Ok(())
    })?;
    Ok(log.group())
}

/// Invites `invitee` (we must be an admin) and returns the link only it can use. Inviting a
/// member again returns a link for its existing invite.
pub fn invite(
    profile: &Profile,
    gid: &GroupId,
    invitee: &Fingerprint,
) -> Result<String, GroupError> {
    invite_in(profile.store(), profile.identity(), gid, invitee)
}

fn invite_in(
    store: &Store,
    identity: &Identity,
    gid: &GroupId,
    invitee: &Fingerprint,
) -> Result<String, GroupError> {
    let mut log = load(store, gid)?;
    let existing = log
        .entries()
        .iter()
        .find(|e| e.entry.op == LogOp::Invite(*invitee))
        .cloned();
    let entry = match existing {
        Some(e) if log.state().is_member(invitee) => e,
        _ => {
            if !log.state().is_admin(&identity.fingerprint()) {
                return Err(GroupError::NotAllowed("only admins invite"));
            }
            append(store, identity, &mut log, LogOp::Invite(*invitee))?
        }
    };
    let link = InviteLink::new(&log, &entry).map_err(|e| GroupError::Invalid(e.to_string()))?;
    Ok(link.encode())
}

/// Stores the group an invite link names; the link must name us. Opening a link is our
/// consent to join.
pub fn join(profile: &Profile, link: &str) -> Result<GroupId, GroupError> {
    join_in(profile.store(), &profile.identity().fingerprint(), link)
}

/// [`join`] on a store for identity `me` (a running node's).
pub(crate) fn join_in(store: &Store, me: &Fingerprint, link: &str) -> Result<GroupId, GroupError> {
    let link = InviteLink::decode(link).map_err(|e| GroupError::Invalid(e.to_string()))?;
    let mut log = link
        .verify_for(me)
        .map_err(|e| GroupError::Invalid(e.to_string()))?;
    let gid = log.group();
    if store.with_conn(|c| gstore::load_log(c, &gid))?.is_some() {
        return Ok(gid);
    }
    // An invite right after the create completes a verifiable two-entry log; otherwise the
    // rest of the log arrives from the group.
    let _ = log.append(link.invite.clone());
    store.with_conn(|c| {
        let tx = c.transaction()?;
        gstore::save_group(&tx, &log, now_ms())?;
        tx.commit()?;
        Ok(())
    })?;
    Ok(gid)
}

/// Removes `member` (we must be an admin); its messages we hold stay, later ones are refused.
pub fn remove(profile: &Profile, gid: &GroupId, member: &Fingerprint) -> Result<(), GroupError> {
    let mut log = load(profile.store(), gid)?;
    if !log.state().is_admin(&profile.identity().fingerprint()) {
        return Err(GroupError::NotAllowed("only admins remove"));
    }
    let cutoff = profile
        .store()
        .with_conn(|c| gstore::load_history(c, gid))?
        .range(member, 0, usize::MAX)
        .last()
        .map_or(0, |m| m.msg.seq);
    append(
        profile.store(),
        profile.identity(),
        &mut log,
        LogOp::Remove {
            member: *member,
            cutoff,
        },
    )?;
    Ok(())
}

/// Deletes group `gid` from this profile: its log, messages, file records and files. Nobody
/// is told: a member leaves first where it can ([`super::Node::group_delete`] does).
pub fn delete(profile: &Profile, gid: &GroupId) -> Result<(), GroupError> {
    delete_in(profile.store(), &profile.dir().join("files"), gid)
}

/// [`delete`] on a store whose group files live under `files_dir`. The rows go first, in one
/// transaction; a folder left by a crash just after is swept at the next start.
pub(crate) fn delete_in(store: &Store, files_dir: &Path, gid: &GroupId) -> Result<(), GroupError> {
    load(store, gid)?;
    store.with_conn(|c| {
        let tx = c.transaction()?;
        gstore::delete(&tx, gid)?;
        tx.commit()?;
        Ok(())
    })?;
    let dir = group_files_dir(files_dir, gid);
    if let Err(e) = std::fs::remove_dir_all(&dir)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(group = %gid, error = %e, "could not delete a deleted group's files");
    }
    Ok(())
}

/// Where group `gid` keeps its files (shared by us or fetched), under the profile's files.
pub(crate) fn group_files_dir(files_dir: &Path, gid: &GroupId) -> PathBuf {
    files_dir.join("groups").join(gid.to_hex())
}

/// Every group of this profile.
pub fn list(profile: &Profile) -> Result<Vec<GroupInfo>, GroupError> {
    list_in(profile.store(), &profile.identity().fingerprint())
}

/// [`list`] on a store for identity `me` (a running node's).
fn list_in(store: &Store, me: &Fingerprint) -> Result<Vec<GroupInfo>, GroupError> {
    let me = *me;
    let rows: Vec<GroupRow> = store.with_conn(|c| gstore::list(c))?;
    rows.into_iter()
        .map(|row| {
            let log = load(store, &row.gid)?;
            let s = log.state();
            let role = if s.is_admin(&me) {
                GroupRole::Admin
            } else if s.is_member(&me) {
                GroupRole::Member
            } else if s.gone.contains_key(&me) {
                GroupRole::Former
            } else {
                GroupRole::Pending
            };
            Ok(GroupInfo {
                gid: row.gid,
                name: s.name.clone(),
                members: s.members.keys().map(|fp| (*fp, s.is_admin(fp))).collect(),
                role,
            })
        })
        .collect()
}

/// The group's newest `limit` messages in display order.
pub fn history(
    profile: &Profile,
    gid: &GroupId,
    limit: usize,
) -> Result<Vec<GroupMessageView>, GroupError> {
    load(profile.store(), gid)?;
    let page = profile
        .store()
        .with_conn(|c| gstore::history_page(c, gid, None, limit))?;
    Ok(page.iter().map(view).collect())
}

/// A page of history and where the next older page starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryPage {
    /// Up to `limit` messages in display order.
    pub messages: Vec<GroupMessageView>,
    /// Pass as `before` for the next older page; `None` when this page is shorter than the
    /// limit (it holds the oldest message).
    pub older: Option<gstore::Cursor>,
}

fn page_in(
    store: &Store,
    gid: &GroupId,
    before: Option<gstore::Cursor>,
    limit: usize,
) -> Result<HistoryPage, GroupError> {
    load(store, gid)?;
    let page = store.with_conn(|c| gstore::history_page(c, gid, before, limit))?;
    let older = page
        .first()
        .filter(|_| page.len() == limit)
        .map(SignedMessage::order_key);
    Ok(HistoryPage {
        messages: page.iter().map(view).collect(),
        older,
    })
}

impl super::Node {
    /// Every group of this node's profile, as [`list`] shows them.
    pub async fn group_list(&self) -> Result<Vec<GroupInfo>, super::NodeError> {
        let (store, me) = (self.inner.store.clone(), self.inner.fingerprint);
        super::group_live::blocking(move || list_in(&store, &me)).await
    }

    /// Up to `limit` messages of `gid` in display order, ending just before `before` (the
    /// newest page when `None`).
    pub async fn group_history(
        &self,
        gid: &GroupId,
        before: Option<gstore::Cursor>,
        limit: usize,
    ) -> Result<HistoryPage, super::NodeError> {
        let (store, gid) = (self.inner.store.clone(), *gid);
        super::group_live::blocking(move || page_in(&store, &gid, before, limit)).await
    }
}

/// A stored message as history shows it.
pub(crate) fn view(m: &SignedMessage) -> GroupMessageView {
    GroupMessageView {
        id: m.id(),
        author: m.author_fp(),
        seq: m.msg.seq,
        text: match &m.msg.body {
            Body::Text(t) => t.clone(),
            Body::File(_) => String::new(),
        },
        sent_ms: m.msg.sent_ms,
        file: match &m.msg.body {
            Body::File(b) => crate::chat::file::Manifest::parse(b)
                .ok()
                .map(|f| GroupFileRef {
                    id: hex::encode(f.id),
                    name: f.name,
                    size: f.size,
                    mime: f.mime,
                }),
            Body::Text(_) => None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Profile;

    fn profile() -> (tempfile::TempDir, Profile) {
        let dir = tempfile::tempdir().unwrap();
        let p = Profile::open_desktop(dir.path()).unwrap();
        (dir, p)
    }

    #[test]
    fn create_invite_join_list_offline() {
        let (_a_dir, a) = profile();
        let (_b_dir, b) = profile();
        let (_c_dir, c) = profile();
        let gid = create(&a, "Trip").unwrap();
        let bf = b.identity().fingerprint();
        let link = invite(&a, &gid, &bf).unwrap();
        assert!(link.starts_with("peerns2-group:") && link.len() < 2048);
        // Someone else holding b's link is refused; b's own join works and is idempotent.
        assert!(matches!(join(&c, &link), Err(GroupError::Invalid(_))));
        assert_eq!(join(&b, &link).unwrap(), gid);
        assert_eq!(join(&b, &link).unwrap(), gid);
        let listed = list(&b).unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].name, "Trip");
        assert_eq!(listed[0].role, GroupRole::Member);
        assert_eq!(list(&a).unwrap()[0].role, GroupRole::Admin);
        // A member may not invite or remove; an admin may remove.
        let cf = c.identity().fingerprint();
        assert!(matches!(
            invite(&b, &gid, &cf),
            Err(GroupError::NotAllowed(_))
        ));
        assert!(matches!(
            remove(&b, &gid, &bf),
            Err(GroupError::NotAllowed(_))
        ));
        remove(&a, &gid, &bf).unwrap();
        assert!(!list(&a).unwrap()[0].members.contains_key(&bf));
        assert!(history(&a, &gid, 50).unwrap().is_empty());
        assert!(matches!(
            history(&a, &GroupId([0; 16]), 5),
            Err(GroupError::UnknownGroup)
        ));
    }
}
