//! The group tasks of a node: starting them (every group we belong to, or one joined), routing
//! incoming group frames to their task, telling them a link is gone, stopping them.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::task_loop::run;
use super::{CMD_QUEUE, CallIo, Cmd, GroupUpdate, Live};
use crate::chat::wire::ErrorCode;
use crate::discovery::driver::NamespaceHandle;
use crate::groups::files::is_file_tag;
use crate::groups::store as gstore;
use crate::groups::wire::MsgBatch;
use crate::groups::{Engine, EngineConfig, GroupFrame, GroupId, MemHistory, namespace_prefix};
use crate::identity::Fingerprint;
use crate::node::groups::GroupError;
use crate::node::link::Link;
use crate::node::{Inner, NodeError, lock};
use crate::session::{FEATURE_GROUP_BATCH, FEATURE_GROUPS};
use crate::wake_grid::WallClock;

/// How long a group whose events could not be stored waits before it starts again from the
/// store (a full disk may have room again), at first and at most: each start costs a namespace
/// join and, where we routed, an election.
const RESTART_MIN: Duration = Duration::from_secs(3);
const RESTART_MAX: Duration = Duration::from_secs(300);

impl Inner {
    /// Sends `update` to every group subscriber.
    pub(in crate::node) fn emit_group(&self, update: GroupUpdate) {
        if let Some(subs) = lock(&self.groups).subscribers.as_mut() {
            subs.retain(|tx| tx.send(update.clone()).is_ok());
        }
    }

    /// Starts the task of every group we belong to (or joined by link).
    pub(in crate::node) async fn start_groups(this: &Arc<Inner>) -> Result<(), NodeError> {
        let me = this.fingerprint;
        let rows = this.db(|c| gstore::list(c)).await?;
        for row in rows {
            let gid = row.gid;
            let log = this.db(move |c| gstore::load_log(c, &gid)).await?;
            if log.is_some_and(|l| !l.state().gone.contains_key(&me)) {
                Inner::start_group(this, gid).await?;
            }
        }
        Ok(())
    }

    /// Starts one group's engine, namespace and task (nothing if it runs already).
    pub(super) async fn start_group(this: &Arc<Inner>, gid: GroupId) -> Result<(), NodeError> {
        if lock(&this.groups).running.contains_key(&gid) {
            return Ok(());
        }
        let (log, history, acked, proposals) = this
            .db(move |c| {
                let log = gstore::load_log(c, &gid)?;
                let h = gstore::load_history(c, &gid)?;
                let acked = gstore::acked(c, &gid)?.unwrap_or(0);
                let proposals = gstore::load_proposals(c, &gid)?;
                Ok::<_, NodeError>((log, h, acked, proposals))
            })
            .await?;
        let log = log.ok_or(GroupError::UnknownGroup)?;
        if log.state().gone.contains_key(&this.fingerprint) {
            // Not a member any more (removed, or left): nothing to run.
            return Ok(());
        }
        let mut engine = Engine::new(EngineConfig::default(), this.identity.clone(), log, history);
        engine.set_acked(acked);
        engine.restore_proposals(proposals);
        Inner::spawn_live(this, engine, namespace_prefix(&gid), false)?;
        Inner::resume_group_files(this, gid).await
    }

    /// Starts group `gid` again from the store after a pause ([`RESTART_MIN`], doubling to
    /// [`RESTART_MAX`] while it keeps failing): its task stopped when what it held could not be
    /// stored.
    pub(super) fn restart_group_later(this: &Arc<Inner>, gid: GroupId) {
        let pause = {
            let mut g = lock(&this.groups);
            let last = g.restarts.get(&gid).copied();
            let pause = last.map_or(RESTART_MIN, |p| (p * 2).min(RESTART_MAX));
            g.restarts.insert(gid, pause);
            pause
        };
        let weak = Arc::downgrade(this);
        let task = tokio::spawn(async move {
            tokio::time::sleep(pause).await;
            if let Some(this) = weak.upgrade()
                && let Err(e) = Inner::start_group(&this, gid).await
            {
                tracing::warn!(group = %gid, error = %e, "could not start a group again");
            }
        });
        this.track([task.abort_handle()]);
    }

    /// Runs `engine` in a new task with its namespace under `prefix` (nothing if the group
    /// runs already). `room`: an open room, nothing stored.
    pub(super) fn spawn_live(
        this: &Arc<Inner>,
        engine: Engine<MemHistory>,
        prefix: String,
        room: bool,
    ) -> Result<(), NodeError> {
        let engine = engine.with_wall_clock(WallClock::system());
        let gid = engine.group();
        let members = if room {
            BTreeSet::from([this.fingerprint])
        } else {
            engine.log().state().members.keys().copied().collect()
        };
        let published = members.clone();
        let note = this.peer_id().into_bytes();
        let setup = this.ns_setup(prefix, None, note);
        // Its events from the start: a router claim answered before anyone listened left
        // the group without a router (seen under CPU load).
        let (ns, ns_events) =
            NamespaceHandle::spawn(setup).map_err(|e| NodeError::Signaling(e.to_string()))?;
        let (tx, rx) = mpsc::channel(CMD_QUEUE);
        let mut live = Live {
            inner: Arc::downgrade(this),
            gid,
            me: this.fingerprint,
            engine,
            tx: tx.clone(),
            ns_peers: HashMap::new(),
            linked: HashSet::new(),
            dialing: HashSet::new(),
            turned_away: HashMap::new(),
            heard: HashMap::new(),
            router: None,
            members,
            sends: vec![],
            proposals: vec![],
            invites: vec![],
            call: CallIo::new(gid, this.fingerprint),
            room,
            held: vec![],
            published: None,
            app_active: None,
        };
        // Paced for the foreground or the background from the start, as a change later.
        let background = this.background.load(std::sync::atomic::Ordering::Relaxed);
        live.on_cmd(Cmd::Active(!background));
        {
            let mut groups = lock(&this.groups);
            if groups.subscribers.is_none()
                || groups.running.contains_key(&gid)
                || groups.deleted.contains(&gid)
            {
                return Ok(());
            }
            groups.running.insert(gid, tx);
            // File transfers answer members from the start, before the task's first turn.
            groups.members_of.insert(gid, published);
        }
        let task = tokio::spawn(run(live, rx, ns, ns_events));
        this.track([task.abort_handle()]);
        Ok(())
    }

    /// A group frame arrived on `link`: decoded and queued for its group's task (dropped
    /// when the queue is full; the engines' anti-entropy repairs the loss).
    pub(in crate::node) async fn on_group_frame(
        this: &Arc<Self>,
        link: &Arc<Link>,
        bytes: Vec<u8>,
    ) {
        if bytes.first().is_some_and(|t| is_file_tag(*t)) {
            Inner::on_group_file_frame(this, link, &bytes).await;
            return;
        }
        if link.features & FEATURE_GROUPS == 0 {
            link.refuse(ErrorCode::NotAllowed, "groups were not negotiated")
                .await;
            return;
        }
        let decoded = if bytes.first() == Some(&crate::groups::wire::tag::BATCH) {
            if link.features & FEATURE_GROUP_BATCH == 0 {
                link.refuse(ErrorCode::NotAllowed, "batches were not negotiated")
                    .await;
                return;
            }
            MsgBatch::decode(&bytes).map(|b| (b.group, Cmd::Batch(link.fp, b.msgs)))
        } else {
            GroupFrame::decode(&bytes).map(|f| (f.group(), Cmd::Frame(link.fp, Box::new(f))))
        };
        let (group, cmd) = match decoded {
            Ok(d) => d,
            Err(e) => {
                link.refuse(ErrorCode::Malformed, &e.to_string()).await;
                return;
            }
        };
        let tx = lock(&this.groups).running.get(&group).cloned();
        match tx {
            Some(tx) => {
                if tx.try_send(cmd).is_err() {
                    tracing::debug!(peer = %link.peer, "group queue full; frame dropped");
                }
            }
            None => tracing::debug!(peer = %link.peer, "a frame for a group we do not run"),
        }
    }

    /// The app moved to the foreground (`true`) or the background: every group's namespace
    /// and engine pace themselves accordingly.
    pub(in crate::node) fn groups_set_active(&self, active: bool) {
        for tx in lock(&self.groups).running.values() {
            let _ = tx.try_send(Cmd::Active(active));
        }
    }

    /// The last link to `fp` closed.
    pub(in crate::node) fn group_link_gone(&self, fp: &Fingerprint) {
        for tx in lock(&self.groups).running.values() {
            let _ = tx.try_send(Cmd::LinkGone(*fp));
        }
    }

    /// Stops every group task (their namespaces say goodbye).
    pub(in crate::node) async fn stop_groups(&self) {
        let running: Vec<mpsc::Sender<Cmd>> = {
            let mut g = lock(&self.groups);
            g.subscribers = None;
            g.online.clear();
            g.files = Default::default();
            g.members_of.clear();
            g.router_of.clear();
            g.running.drain().map(|(_, tx)| tx).collect()
        };
        for tx in running {
            let (done, wait) = oneshot::channel();
            if tx.send(Cmd::Stop(done)).await.is_ok() {
                let _ = wait.await;
            }
        }
    }

    pub(super) fn group_tx(&self, gid: &GroupId) -> Result<mpsc::Sender<Cmd>, NodeError> {
        lock(&self.groups)
            .running
            .get(gid)
            .cloned()
            .ok_or_else(|| NodeError::InvalidInput(format!("group {gid} is not running")))
    }
}
