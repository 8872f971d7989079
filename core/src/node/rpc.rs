//! Signed RPC over links (decision 0014): the serving side checks each request (trust, the
//! signature bound to this session, time, replay window, rate, grants), runs it and answers;
//! the calling side signs requests for the link it sends them on and matches the answers.
//! Every request served or refused is written to the audit log and told to audit subscribers.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use super::calls::Watched;
use super::link::Link;
use super::rpc_monitor::Streaming;
use super::{Inner, Node, NodeError, NodeEvent, lock, parse_fp, unix_ms};
use crate::calls::{Input, Kinds};
use crate::chat::wire::{ErrorCode, Frame};
use crate::contacts::{Capability, Trust};
use crate::identity::Fingerprint;
use crate::rpc::RpcError;
use crate::rpc::fs::Roots;
use crate::rpc::guard::{Guard, GuardConfig};
use crate::rpc::scope::{Facing, Reach, Scope};
use crate::rpc::server::{self, Call};
use crate::rpc::store::{self as rpc_store, AuditEntry};
use crate::rpc::wire::{Request, Response};
use crate::session::FEATURE_RPC;

pub use crate::rpc::fs::DEFAULT_MAX_FILE as DEFAULT_MAX_RPC_FILE;

/// Requests of ours waiting for their answer, at most.
const MAX_PENDING: usize = 1024;

/// What a node serves over RPC.
#[derive(Debug, Clone, Default)]
pub struct ServeConfig {
    /// `(name, folder)`: request paths `/name/...` map into the folder.
    pub roots: Vec<(String, PathBuf)>,
    /// Largest file one upload may create (0 = [`DEFAULT_MAX_RPC_FILE`]).
    pub max_file: u64,
    /// `(root name, bytes)`: size quotas of some roots (writes beyond them are 413).
    pub quotas: Vec<(String, u64)>,
}

pub(super) struct Serving {
    pub(super) roots: Roots,
}

/// The RPC state of a node.
pub(crate) struct NodeRpc {
    guard: Mutex<Guard>,
    serving: Mutex<Option<Arc<Serving>>>,
    /// The camera may be streamed (the device is armed): its facing, and the task that calls
    /// whoever asks for the stream.
    pub(super) armed: Mutex<Option<(Facing, mpsc::UnboundedSender<Fingerprint>)>>,
    /// The viewer whose stream's call the armed task is placing (before it is the active call).
    placing: Mutex<Option<Fingerprint>>,
    /// The call the armed camera streams into, once placed.
    pub(super) streaming: Mutex<Option<super::rpc_monitor::Streaming>>,
    /// The armed camera's sound alert, when on.
    pub(super) sound: Mutex<Option<crate::rpc::alert::SoundAlert>>,
    /// When each contact's last sound alert was taken.
    pub(super) alerts_in: Mutex<HashMap<Fingerprint, u64>>,
    /// The monitors whose camera we asked for (oldest first), once read from the store.
    pub(super) watched: Arc<Mutex<Option<Vec<Fingerprint>>>>,
    /// The sound alerts taken since the node started, oldest first (at most
    /// [`super::rpc_alert::RECENT_ALERTS`]).
    pub(super) alerts_seen: Mutex<std::collections::VecDeque<super::rpc_alert::MonitorAlertSeen>>,
    pub(super) pending: Mutex<HashMap<String, (Fingerprint, oneshot::Sender<Response>)>>,
    audit_subs: Mutex<Vec<mpsc::UnboundedSender<AuditEntry>>>,
    /// How many refusals per sender the audit log takes.
    refusals: Mutex<crate::rpc::refusals::Refusals>,
    /// Our uploads in progress, by session binding and the server's upload number.
    pub(super) uploads: Mutex<HashMap<([u8; 32], u64), super::rpc_upload::StateTx>>,
}

impl NodeRpc {
    /// Takes `viewer` as the one the armed camera streams to next. The node holds one call, so
    /// while it is in a call with someone else (another viewer's stream) or places one for
    /// another viewer, this one is told so at once (409) rather than left waiting for a call
    /// that cannot come.
    pub(super) fn take_viewer(
        &self,
        calls: &Mutex<super::calls::NodeCalls>,
        viewer: Fingerprint,
    ) -> Result<(), RpcError> {
        let busy =
            RpcError::busy("the device is in another call (it streams to one viewer at a time)");
        if lock(calls)
            .machine
            .active()
            .is_some_and(|c| c.peer != viewer)
        {
            return Err(busy);
        }
        let mut placing = lock(&self.placing);
        match *placing {
            Some(other) if other != viewer => Err(busy),
            _ => {
                *placing = Some(viewer);
                Ok(())
            }
        }
    }

    /// The armed task is done placing `viewer`'s call (placed, failed, or not needed).
    pub(super) fn placed(&self, viewer: Fingerprint) {
        let mut placing = lock(&self.placing);
        if *placing == Some(viewer) {
            *placing = None;
        }
    }
}

impl Default for NodeRpc {
    fn default() -> Self {
        NodeRpc {
            guard: Mutex::new(Guard::new(GuardConfig::default())),
            serving: Mutex::new(None),
            armed: Mutex::new(None),
            placing: Mutex::new(None),
            streaming: Mutex::new(None),
            pending: Mutex::new(HashMap::new()),
            audit_subs: Mutex::new(vec![]),
            refusals: Mutex::default(),
            uploads: Mutex::new(HashMap::new()),
            sound: Mutex::new(None),
            alerts_in: Mutex::new(HashMap::new()),
            watched: Arc::default(),
            alerts_seen: Mutex::new(std::collections::VecDeque::new()),
        }
    }
}

impl Inner {
    /// An RPC frame from `link` (tags 50–54). Trusted contacts get 403 for every request;
    /// Known ones and strangers never reach the RPC layer (the session's usual refusals), nor
    /// are their sound alerts taken.
    pub(crate) async fn on_rpc_frame(
        this: &Arc<Inner>,
        link: &Arc<Link>,
        trust: Option<Trust>,
        frame: Frame,
    ) {
        let contact = trust.is_some_and(|t| t.allows(Capability::Connect));
        let served = trust.is_some_and(|t| t >= Trust::Trusted);
        match frame {
            Frame::RpcRequest(b) if served => Inner::on_rpc_request(this, link, trust, b).await,
            Frame::RpcChunk {
                upload,
                offset,
                data,
            } if served => Inner::on_rpc_chunk(this, link, trust, upload, offset, data).await,
            Frame::RpcResponse(b) if contact => this.on_rpc_response(link, &b),
            Frame::RpcUploadState {
                upload,
                written,
                code,
                text,
            } if contact => this.on_upload_state(link, upload, written, code, text),
            Frame::RpcSoundAlert { below_db } if served => {
                this.on_sound_alert(&link.fp, below_db).await
            }
            _ if !contact => {
                link.refuse(ErrorCode::NotContact, "you are not a contact")
                    .await;
            }
            _ => link.refuse(ErrorCode::NotAllowed, "not allowed").await,
        }
    }

    /// A request from `link`, whose sender is a contact at Trusted or Full Access (lower
    /// levels never get here).
    async fn on_rpc_request(
        this: &Arc<Inner>,
        link: &Arc<Link>,
        trust: Option<Trust>,
        bytes: Vec<u8>,
    ) {
        let now = unix_ms();
        let (id, method, target, outcome, refused) = match Request::decode(&bytes) {
            Err((id, e)) => (id, String::new(), String::new(), Err(e), true),
            Ok(req) => {
                let (target, outcome, refused) =
                    Inner::serve_request(this, link, trust, &req, now).await;
                (req.id, req.method, target, outcome, refused)
            }
        };
        let code = outcome.as_ref().map_or_else(|e| e.code, |_| 200);
        let mut message = outcome.as_ref().err().map(|e| e.message.clone());
        // Refusals (before the handler) are written within a per-sender limit: a flood would
        // push out the rest. What the handler answered (a 404 too) is always written.
        let written = match &mut message {
            None => true,
            Some(_) if !refused => true,
            Some(m) => match lock(&this.rpc.refusals).admit(&link.fp, now) {
                None => false,
                Some(0) => true,
                Some(n) => {
                    m.push_str(&format!(" (and {n} earlier refusals not logged)"));
                    true
                }
            },
        };
        // Logged before the answer leaves: whoever sees the answer finds it in the log.
        if written {
            this.audit(AuditEntry {
                at_ms: now,
                fingerprint: link.fp.to_hex(),
                id: id.clone(),
                method,
                target,
                code,
                message: message.unwrap_or_default(),
            })
            .await;
        }
        let resp = Response::new(&id, outcome);
        let _ = link.send(&Frame::RpcResponse(resp.encode())).await;
    }

    /// Writes `entry` to the audit log and tells the audit subscribers.
    pub(super) async fn audit(&self, entry: AuditEntry) {
        let e = entry.clone();
        if let Err(err) = self.db(move |c| rpc_store::audit(c, &e)).await {
            tracing::warn!(error = %err, "could not write the RPC audit log");
        }
        lock(&self.rpc.audit_subs).retain(|tx| tx.send(entry.clone()).is_ok());
    }

    /// Checks and runs one request; returns its target (for the audit log), its outcome and
    /// whether that is a refusal (malformed, trust, signature, guard, scope): not run.
    async fn serve_request(
        this: &Arc<Inner>,
        link: &Arc<Link>,
        trust: Option<Trust>,
        req: &Request,
        now: u64,
    ) -> (String, Result<Value, RpcError>, bool) {
        let call = Call::parse(&req.method, &req.params);
        let target = call.as_ref().map(Call::target).unwrap_or_default();
        let key = ed25519_dalek::VerifyingKey::from_bytes(&link.key);
        if trust != Some(Trust::FullAccess) {
            return (
                target,
                Err(RpcError::denied("RPC needs Full Access (trust 3)")),
                true,
            );
        }
        if !key.is_ok_and(|k| req.verify(&k, &link.binding)) {
            return (
                target,
                Err(RpcError::denied(
                    "the signature does not verify for this session",
                )),
                true,
            );
        }
        if let Err(e) = lock(&this.rpc.guard).admit(&link.fp, &req.id, req.ts_ms, now) {
            return (target, Err(e), true);
        }
        let call = match call {
            Ok(c) => c,
            Err(e) => return (target, Err(e), true),
        };
        let Some(serving) = lock(&this.rpc.serving).clone() else {
            return (
                target,
                Err(RpcError::denied("this device serves no RPC")),
                true,
            );
        };
        let fp = link.fp;
        let scopes = match this.db(move |c| rpc_store::scopes_of(c, &fp)).await {
            Ok(s) => s,
            Err(e) => return (target, Err(RpcError::internal(e.to_string())), false),
        };
        let reach = call.reach(&scopes);
        if reach == Reach::None {
            return (target, Err(RpcError::denied("scope denied")), true);
        }
        (
            target,
            Inner::run_call(this, link, &serving, call, reach, scopes, &req.id).await,
            false,
        )
    }

    async fn run_call(
        this: &Arc<Inner>,
        link: &Arc<Link>,
        serving: &Arc<Serving>,
        call: Call,
        reach: Reach,
        scopes: Vec<Scope>,
        id: &str,
    ) -> Result<Value, RpcError> {
        match call {
            Call::FsUpload(spec) => Inner::open_upload(link, serving, spec, id).await,
            // The grant allowed `since` (`timestamp>T` needs `since >= T`): nothing older leaks.
            Call::DbMessages(since, limit) => this
                .db(move |c| server::messages_page(c, since, limit))
                .await
                .map_err(|e| RpcError::internal(e.to_string())),
            Call::SysStatus(item) => Ok(match item {
                crate::rpc::scope::SysItem::Battery => server::battery_status(),
                crate::rpc::scope::SysItem::Storage => server::storage_status(&serving.roots),
                crate::rpc::scope::SysItem::Network => json!({
                    "signaling": format!("{:?}", *lock(&this.state)),
                    "links": lock(&this.links).len(),
                }),
            }),
            Call::MediaStream(facing) => {
                let armed = lock(&this.rpc.armed).clone();
                match armed {
                    // The stream is a normal call to the requester, placed by the armed task.
                    Some((f, tx)) if f == facing => {
                        this.rpc.take_viewer(&this.calls, link.fp)?;
                        if tx.send(link.fp).is_err() {
                            this.rpc.placed(link.fp);
                            return Err(RpcError::denied("the camera is not armed"));
                        }
                        Ok(json!({"streaming": true, "facing": facing.name()}))
                    }
                    _ => Err(RpcError::denied("the camera is not armed")),
                }
            }
            fs_call => {
                let roots = serving.clone();
                tokio::task::spawn_blocking(move || {
                    fs_call
                        .run_fs(&roots.roots, reach, &scopes)
                        .unwrap_or_else(|| Err(RpcError::internal("not a file call")))
                })
                .await
                .unwrap_or_else(|e| Err(RpcError::internal(e.to_string())))
            }
        }
    }

    /// An answer to one of our requests (others are dropped).
    fn on_rpc_response(&self, link: &Link, bytes: &[u8]) {
        let Ok(resp) = Response::decode(bytes) else {
            tracing::info!(peer = %link.peer, "dropped a malformed RPC response");
            return;
        };
        let mut pending = lock(&self.rpc.pending);
        if pending.get(&resp.id).is_some_and(|(fp, _)| *fp == link.fp)
            && let Some((_, tx)) = pending.remove(&resp.id)
        {
            let _ = tx.send(resp);
        }
    }
}

impl Node {
    /// Starts serving RPC with `config` (replacing an earlier configuration).
    pub fn rpc_serve(&self, config: ServeConfig) -> Result<(), NodeError> {
        let max = if config.max_file == 0 {
            DEFAULT_MAX_RPC_FILE
        } else {
            config.max_file
        };
        let roots = Roots::new(&config.roots, max)
            .and_then(|r| r.with_quotas(&config.quotas))
            .map_err(NodeError::InvalidInput)?;
        *lock(&self.inner.rpc.serving) = Some(Arc::new(Serving { roots }));
        Ok(())
    }

    /// Arms the camera with `facing` (`media.stream` may start it) or disarms it (`None`).
    pub fn rpc_arm_camera(&self, facing: Option<&str>) -> Result<(), NodeError> {
        let f = match facing {
            None => None,
            Some(s) => Some(Facing::parse(s).ok_or_else(|| {
                NodeError::InvalidInput(format!("facing {s:?}: environment or user"))
            })?),
        };
        let armed = f.map(|f| {
            let (tx, rx) = mpsc::unbounded_channel::<Fingerprint>();
            let task = tokio::spawn(place_streams(Arc::downgrade(&self.inner), f, rx));
            self.inner.track([task.abort_handle()]);
            (f, tx)
        });
        // Dropping the old sender ends the old task (and what it was placing).
        *lock(&self.inner.rpc.armed) = armed;
        lock(&self.inner.rpc.placing).take();
        Ok(())
    }

    /// Every RPC request served or refused from now on, in order.
    pub fn rpc_audit_events(&self) -> mpsc::UnboundedReceiver<AuditEntry> {
        let (tx, rx) = mpsc::unbounded_channel();
        lock(&self.inner.rpc.audit_subs).push(tx);
        rx
    }

    /// Signs a request to contact `fingerprint` for its current link (dialled if needed).
    pub async fn rpc_sign(
        &self,
        fingerprint: &str,
        method: &str,
        params: Value,
    ) -> Result<Request, NodeError> {
        let link = self.rpc_link(fingerprint).await?;
        Ok(self.sign_for(&link, method, params))
    }

    /// The link to contact `fingerprint` (dialled if needed), if it speaks RPC.
    pub(super) async fn rpc_link(&self, fingerprint: &str) -> Result<Arc<Link>, NodeError> {
        let fp = parse_fp(fingerprint)?;
        let link = Inner::dial_contact(&self.inner, &fp).await?;
        if link.features & FEATURE_RPC == 0 {
            return Err(NodeError::NotAllowed(format!("{fp} does not speak RPC")));
        }
        Ok(link)
    }

    /// Signs a request for `link`'s session (the server checks it on that session only).
    fn sign_for(&self, link: &Link, method: &str, params: Value) -> Request {
        let id = crate::crypto::random_hex(12);
        Request::sign(
            &self.inner.identity,
            &link.binding,
            method,
            params,
            &id,
            unix_ms(),
        )
    }

    /// Sends a signed request on the link to `fingerprint` without waiting: the answer comes
    /// on the receiver. Requests sent one after another are served in that order, so a caller
    /// may keep several in flight (streamed uploads do).
    pub async fn rpc_start(
        &self,
        fingerprint: &str,
        req: &Request,
    ) -> Result<oneshot::Receiver<Response>, NodeError> {
        let fp = parse_fp(fingerprint)?;
        let link = Inner::dial_contact(&self.inner, &fp).await?;
        self.rpc_start_on(&link, req).await
    }

    /// Sends a signed request on `link`; the answer comes on the receiver.
    pub(super) async fn rpc_start_on(
        &self,
        link: &Link,
        req: &Request,
    ) -> Result<oneshot::Receiver<Response>, NodeError> {
        let fp = link.fp;
        let bytes = req
            .encode()
            .ok_or_else(|| NodeError::InvalidInput("request too large".into()))?;
        let (tx, rx) = oneshot::channel();
        {
            let mut pending = lock(&self.inner.rpc.pending);
            pending.retain(|_, (_, tx)| !tx.is_closed());
            if pending.len() >= MAX_PENDING {
                return Err(NodeError::NotAllowed(
                    "too many RPC requests in flight".into(),
                ));
            }
            // The same id sent again (a replay test) waits for the next answer with it.
            pending.insert(req.id.clone(), (fp, tx));
        }
        link.send(&Frame::RpcRequest(bytes)).await?;
        if req.method == "media.stream" {
            // We watch it: its sound alerts are taken from now on.
            self.inner.note_watched(fp).await;
        }
        Ok(rx)
    }

    /// Sends a signed request on the link to `fingerprint` and waits for its answer.
    pub async fn rpc_send(
        &self,
        fingerprint: &str,
        req: &Request,
        timeout: Duration,
    ) -> Result<Response, NodeError> {
        let rx = self.rpc_start(fingerprint, req).await?;
        self.rpc_wait(rx, req, timeout).await
    }

    /// Waits up to `timeout` for the answer to `req`.
    async fn rpc_wait(
        &self,
        rx: oneshot::Receiver<Response>,
        req: &Request,
        timeout: Duration,
    ) -> Result<Response, NodeError> {
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(_)) => Err(NodeError::Stopped),
            Err(_) => {
                lock(&self.inner.rpc.pending).remove(&req.id);
                Err(NodeError::Timeout(format!(
                    "RPC {} ({})",
                    req.method, req.id
                )))
            }
        }
    }

    /// The baby monitor's viewer: asks armed contact `fingerprint` for its `facing` camera
    /// (`media.stream`) and answers the call it places back (we send nothing); returns that
    /// call once accepted. Only a call from that contact within `timeout` is answered, and it
    /// does not ring: no `IncomingCall` event, no notification (the phone would show a
    /// full-screen incoming call for the stream the user just asked for). The stream is then
    /// the call's media, like any call's. A second watch of the same contact replaces this one,
    /// which then fails with [`NodeError::Cancelled`]; a watch dropped once its call came
    /// declines it (nobody would answer it, and it would not ring either).
    pub async fn rpc_watch(
        &self,
        fingerprint: &str,
        facing: &str,
        timeout: Duration,
    ) -> Result<String, NodeError> {
        let fp = parse_fp(fingerprint)?;
        // Registered first: the call may ring before the answer to the request arrives.
        let mut watch = Watch::register(&self.inner, fp);
        let deadline = tokio::time::Instant::now() + timeout;
        self.rpc_call(
            &fp.to_hex(),
            "media.stream",
            json!({"facing": facing}),
            timeout,
        )
        .await?
        .outcome?;
        let call = match tokio::time::timeout_at(deadline, &mut watch.stream).await {
            Ok(Ok(Watched::Call(call))) => hex::encode(call),
            Ok(Ok(Watched::Replaced)) => {
                return Err(NodeError::Cancelled(format!(
                    "a newer watch of {fp} replaced this one"
                )));
            }
            Ok(Err(_)) => return Err(NodeError::Stopped),
            Err(_) => return Err(NodeError::Timeout(format!("the stream of {fp}"))),
        };
        if let Err(e) = self.accept_call(&call, Kinds::default()) {
            // Taken from the watch, so no one else would end it: it would ring nowhere.
            let _ = self.decline_call(&call);
            return Err(e);
        }
        Ok(call)
    }

    /// Signs and sends `method(params)` to `fingerprint`; returns the `RPC_RES` answer. Signed
    /// and sent on one link: a newer link in between would not verify a request signed for
    /// the older one's session (403).
    pub async fn rpc_call(
        &self,
        fingerprint: &str,
        method: &str,
        params: Value,
        timeout: Duration,
    ) -> Result<Response, NodeError> {
        let link = self.rpc_link(fingerprint).await?;
        let req = self.sign_for(&link, method, params);
        let rx = self.rpc_start_on(&link, &req).await?;
        self.rpc_wait(rx, &req, timeout).await
    }
}

/// The armed camera's task: places a call to each viewer that asked for the stream
/// (`media.stream`), into which the app feeds the `facing` camera. A viewer's repeated request
/// (Watch tapped twice) is answered by the call placed or on for it (a second call would ring
/// at the viewer once the first ends); one that came while its call could not be placed is
/// tried again.
async fn place_streams(
    weak: std::sync::Weak<Inner>,
    facing: Facing,
    mut rx: mpsc::UnboundedReceiver<Fingerprint>,
) {
    let mut queued = std::collections::VecDeque::new();
    loop {
        let fp = match queued.pop_front() {
            Some(fp) => fp,
            None => match rx.recv().await {
                Some(fp) => fp,
                None => break,
            },
        };
        let Some(inner) = weak.upgrade() else { break };
        let node = Node::from_inner(inner);
        let hex = fp.to_hex();
        if node.active_call().is_some_and(|c| c.fingerprint == hex) {
            node.inner.rpc.placed(fp);
            continue;
        }
        let placed = node.call(&hex, Kinds::VIDEO.union(Kinds::AUDIO)).await;
        // Active now, or failed: the machine's call says who the camera streams to.
        node.inner.rpc.placed(fp);
        match placed {
            // Disarmed while the call was placed: nobody is to stream into it.
            Ok(call) if lock(&node.inner.rpc.armed).as_ref().map(|(a, _)| *a) != Some(facing) => {
                let _ = node.hang_up(&call);
            }
            // The app feeds the camera into it: the core does not capture.
            Ok(call) => {
                // Not told if its viewer lost the right to it while it was placed (hung up).
                let on = match super::calls::parse_call(&call) {
                    Ok(id) => {
                        let s = Streaming {
                            call: id,
                            viewer: fp,
                            facing,
                        };
                        Inner::monitor_streaming(&node.inner, s).await
                    }
                    Err(_) => true,
                };
                if on {
                    node.inner.emit(NodeEvent::MonitorStream {
                        call,
                        fingerprint: hex,
                        facing: facing.name().to_string(),
                    });
                }
                // What this viewer asked again while its call was placed is answered by it.
                while let Ok(next) = rx.try_recv() {
                    if next != fp && !queued.contains(&next) {
                        queued.push_back(next);
                    }
                }
            }
            Err(e) => tracing::info!(error = %e, "could not start the monitor stream"),
        }
    }
}

/// Numbers watches ([`Node::rpc_watch`]).
static NEXT_WATCH: AtomicU64 = AtomicU64::new(0);

/// A watch's registration ([`Node::rpc_watch`]) and where its stream's call arrives. Dropped,
/// it ends the registration (unless a newer watch of the contact replaced it) and declines a
/// call that arrived but was not taken.
pub(super) struct Watch<'a> {
    inner: &'a Arc<Inner>,
    fp: Fingerprint,
    id: u64,
    pub(super) stream: oneshot::Receiver<Watched>,
}

impl<'a> Watch<'a> {
    /// Registers a watch of `fp`, replacing an earlier one (told so).
    pub(super) fn register(inner: &'a Arc<Inner>, fp: Fingerprint) -> Self {
        let (tx, stream) = oneshot::channel();
        let id = NEXT_WATCH.fetch_add(1, Ordering::Relaxed);
        let replaced = lock(&inner.calls).watching.insert(fp, (id, tx));
        if let Some((_, earlier)) = replaced {
            let _ = earlier.send(Watched::Replaced);
        }
        Self {
            inner,
            fp,
            id,
            stream,
        }
    }
}

impl Drop for Watch<'_> {
    fn drop(&mut self) {
        {
            let mut calls = lock(&self.inner.calls);
            if calls
                .watching
                .get(&self.fp)
                .is_some_and(|(id, _)| *id == self.id)
            {
                calls.watching.remove(&self.fp);
            }
        }
        if let Ok(Watched::Call(call)) = self.stream.try_recv()
            && let Err(e) = Inner::call_input(self.inner, Input::Decline { call })
        {
            tracing::debug!(error = %e, "the dropped watch's call had ended");
        }
    }
}

impl Node {
    /// Grants `scopes` to contact `fingerprint` (refused unless it is at trust 3).
    pub async fn rpc_grant(&self, fingerprint: &str, scopes: &[String]) -> Result<(), NodeError> {
        let fp = parse_fp(fingerprint)?;
        let parsed = scopes
            .iter()
            .map(|s| {
                crate::rpc::scope::Scope::parse(s)
                    .map_err(|e| NodeError::InvalidInput(format!("{s}: {}", e.message)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let now = unix_ms();
        self.inner
            .db(move |c| {
                rpc_store::grant(c, &fp, &parsed, now).map_err(|e| match e {
                    rpc_store::GrantError::Store(s) => NodeError::Store(s),
                    other => NodeError::NotAllowed(other.to_string()),
                })
            })
            .await
    }

    /// Revokes `scopes` of `fingerprint` (all of them if empty); returns how many went.
    pub async fn rpc_revoke(&self, fingerprint: &str, scopes: &[String]) -> Result<u64, NodeError> {
        let fp = parse_fp(fingerprint)?;
        let parsed = scopes
            .iter()
            .map(|s| {
                crate::rpc::scope::Scope::parse(s)
                    .map_err(|e| NodeError::InvalidInput(format!("{s}: {}", e.message)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let n = self
            .inner
            .db(move |c| {
                let list = (!parsed.is_empty()).then_some(parsed.as_slice());
                rpc_store::revoke(c, &fp, list)
                    .map(|n| n as u64)
                    .map_err(|e| NodeError::NotAllowed(e.to_string()))
            })
            .await?;
        // A camera no longer granted stops streaming to it at once.
        Inner::end_stream_if_revoked(&self.inner).await;
        Ok(n)
    }

    /// Every grant, by contact.
    pub async fn rpc_grants(&self) -> Result<Vec<rpc_store::Grant>, NodeError> {
        self.inner.db(|c| rpc_store::grants(c)).await
    }

    /// The newest `limit` audit entries, oldest first.
    pub async fn rpc_audit_log(&self, limit: usize) -> Result<Vec<AuditEntry>, NodeError> {
        self.inner.db(move |c| rpc_store::audit_log(c, limit)).await
    }
}
