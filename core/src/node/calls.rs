//! 1:1 calls on top of links: the node's [`Calls`] machine fed with user actions, call frames
//! from contacts' sessions (trust checked: calls need a contact at level 2 or more) and its
//! timeouts; its actions run in order on one worker task (frames out, events, the call log,
//! notifications). Strangers, Known (level 1) contacts and blocked keys never ring: a stranger's
//! or a Known contact's ring is refused with `NotAllowed`, blocked keys have no session at all.
//!
//! Media: a call announces the PeerJS connection ID of its media OFFER and the DTLS fingerprint
//! of the certificate it will use; the callee takes only that OFFER and the caller only an
//! ANSWER with the fingerprint the accept named ([`Calls::admit_offer`],
//! [`Calls::admit_answer`], `docs/decisions/0013-calls.md`).

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, Weak};
use std::time::Instant;

use tokio::sync::{OwnedSemaphorePermit, mpsc, oneshot};
use tokio::task::AbortHandle;

use super::call_media::CallMedia;
use super::link::Link;
use super::platform::{Notification, NotificationCategory};
use super::{Inner, Node, NodeError, NodeEvent, lock, parse_fp, unix_ms};
use crate::calls::log::{self as call_log, CallEntry, HistoryItem};
use crate::calls::machine::{Action, CallEvent, CallRecord, Input, Refused};
use crate::calls::{
    CallConfig, CallFrame, CallId, CallState, Calls, Direction, EndReason, Kinds, MediaState,
    Outcome,
};
use crate::chat::wire::{ErrorCode, Frame};
use crate::contacts::{self, Capability, Trust};
use crate::identity::Fingerprint;
use crate::session::FEATURE_CALLS;

/// Longest call log or history a query returns.
const MAX_QUERY: u32 = 10_000;
/// Actions for the worker, with the permit of the call frame that caused them, if one did.
type Batch = (Vec<Action>, Option<OwnedSemaphorePermit>);

/// The active call, as the call screen shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveCall {
    /// The call (32 hex characters).
    pub call: String,
    /// The contact's fingerprint.
    pub fingerprint: String,
    /// Who called.
    pub direction: Direction,
    /// Where it is.
    pub state: CallState,
    /// What the caller sends.
    pub caller_kinds: Kinds,
    /// What the callee sends (once answered).
    pub callee_kinds: Kinds,
    /// What we send now.
    pub local_media: MediaState,
    /// What the peer sends now.
    pub remote_media: MediaState,
    /// The PeerJS connection ID of the caller's media OFFER.
    pub media_id: String,
}

/// The node's call state: the machine, its timer and the worker that runs its actions.
pub(crate) struct NodeCalls {
    pub(super) machine: Calls,
    timer: Option<AbortHandle>,
    worker: OnceLock<mpsc::UnboundedSender<Batch>>,
    /// The active call's certificate and media connection.
    pub(super) media: CallMedia,
    /// Armed contacts we asked for their camera ([`Node::rpc_watch`]), each with where its
    /// call goes: that call is the stream we asked for, answered without ringing (at most one
    /// per contact, only while the watch waits).
    /// The number is the watch's own, so that a watch ending removes only itself.
    pub(super) watching: HashMap<Fingerprint, (u64, oneshot::Sender<Watched>)>,
}

/// How a watch's wait for its stream ends ([`Node::rpc_watch`]).
#[derive(Debug)]
pub(super) enum Watched {
    /// The armed contact placed this call: the stream.
    Call(CallId),
    /// A newer watch of the same contact took the registration.
    Replaced,
}

impl NodeCalls {
    pub(crate) fn new(me: Fingerprint) -> Self {
        Self {
            machine: Calls::new(me, CallConfig::default()),
            timer: None,
            worker: OnceLock::new(),
            media: CallMedia::default(),
            watching: HashMap::new(),
        }
    }
}

impl Drop for NodeCalls {
    fn drop(&mut self) {
        if let Some(t) = self.timer.take() {
            t.abort();
        }
    }
}

fn call_hex(id: &CallId) -> String {
    hex::encode(id)
}

pub(super) fn parse_call(s: &str) -> Result<CallId, NodeError> {
    super::parse_hex_id(s, "call")
}

impl From<Refused> for NodeError {
    fn from(e: Refused) -> Self {
        match e {
            Refused::Invalid(_) => NodeError::InvalidInput(e.to_string()),
            _ => NodeError::NotAllowed(e.to_string()),
        }
    }
}

/// A fresh PeerJS-style media connection ID (`mc_` and 16 random letters and digits).
pub(super) fn new_media_id() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    let tail: String = (0..16)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect();
    format!("mc_{tail}")
}

impl Inner {
    /// Feeds the call machine and runs what it asks for; the machine's answer is returned.
    pub(crate) fn call_input(this: &Arc<Inner>, input: Input) -> Result<(), Refused> {
        Inner::call_input_with(this, |_| Ok(input))
    }

    /// Feeds the machine the input `make` builds from it, under one lock: a change made of the
    /// call's current state (mute, rotation) cannot lose one made at the same time.
    pub(crate) fn call_input_with(
        this: &Arc<Inner>,
        make: impl FnOnce(&crate::calls::Calls) -> Result<Input, Refused>,
    ) -> Result<(), Refused> {
        let result = {
            let mut calls = lock(&this.calls);
            let r =
                make(&calls.machine).and_then(|input| calls.machine.handle(input, Instant::now()));
            Inner::queue_call_actions(this, &mut calls, None);
            r
        };
        Inner::turn_call_picture(this);
        result
    }

    /// Queues the machine's actions for the worker (started on first use) and re-arms the
    /// timer. Runs under the machine's lock, so batches reach the worker in the machine's order.
    pub(super) fn queue_call_actions(
        this: &Arc<Inner>,
        calls: &mut NodeCalls,
        permit: Option<OwnedSemaphorePermit>,
    ) {
        let actions = calls.machine.drain_actions();
        if !actions.is_empty() {
            let worker = calls.worker.get_or_init(|| {
                let (tx, rx) = mpsc::unbounded_channel();
                let task = tokio::spawn(call_worker(Arc::downgrade(this), rx));
                this.track([task.abort_handle()]);
                tx
            });
            let _ = worker.send((actions, permit));
        }
        if let Some(t) = calls.timer.take() {
            t.abort();
        }
        if let Some(at) = calls.machine.poll_timeout() {
            let weak = Arc::downgrade(this);
            let task = tokio::spawn(async move {
                tokio::time::sleep_until(at.into()).await;
                let Some(this) = weak.upgrade() else { return };
                let mut calls = lock(&this.calls);
                calls.timer = None;
                calls.machine.handle_timeout(Instant::now());
                Inner::queue_call_actions(&this, &mut calls, None);
            });
            calls.timer = Some(task.abort_handle());
        }
    }

    /// A call frame from `link`: only contacts at Trusted and up may call. A ring from anyone
    /// else is refused; of their other call frames only those that end a call are taken (a
    /// contact whose trust was lowered during a call can still hang it up).
    pub(crate) async fn on_call_frame(
        this: &Arc<Inner>,
        link: &Arc<Link>,
        trust: Option<Trust>,
        frame: CallFrame,
    ) {
        if !trust.is_some_and(|t| t.allows(Capability::Call)) {
            match frame {
                CallFrame::Ring { .. } => {
                    link.refuse(ErrorCode::NotAllowed, "calls need a trusted contact")
                        .await;
                    return;
                }
                CallFrame::Cancel { .. }
                | CallFrame::HangUp { .. }
                | CallFrame::Decline { .. }
                | CallFrame::Busy { .. } => {}
                _ => return,
            }
        }
        let Ok(permit) = link.call_batches.clone().acquire_owned().await else {
            return;
        };
        let input = Input::Frame {
            from: link.fp,
            frame,
        };
        let result = {
            let mut calls = lock(&this.calls);
            let r = calls.machine.handle(input, Instant::now());
            Inner::queue_call_actions(this, &mut calls, Some(permit));
            r
        };
        if let Err(e) = result {
            tracing::debug!(peer = %link.peer, error = %e, "ignored a call frame");
        }
    }

    /// The last link to `fp` closed: a call with it ends.
    pub(crate) fn call_peer_gone(this: &Arc<Inner>, fp: &Fingerprint) {
        let _ = Inner::call_input(this, Input::PeerGone { peer: *fp });
    }

    /// Runs one batch of the machine's actions, in order.
    async fn run_call_actions(this: &Arc<Inner>, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::Send { to, frame } => {
                    let sent = match this.link(&to) {
                        Some(link) if link.features & FEATURE_CALLS != 0 => link
                            .send(&Frame::Call(frame.for_peer(link.features)))
                            .await
                            .is_ok(),
                        _ => false,
                    };
                    if !sent {
                        tracing::debug!(contact = %to, "could not send a call frame");
                    }
                }
                Action::Event(CallEvent::Incoming { call, peer, kinds }) => {
                    Inner::take_media_offers(this);
                    let watched = lock(&this.calls).watching.remove(&peer);
                    if let Some((_, watch)) = watched {
                        // The stream we asked for: the watch answers it, nothing rings.
                        if watch.send(Watched::Call(call)).is_ok() {
                            continue;
                        }
                    }
                    let name = this.contact_name(&peer).await;
                    if let Some(n) = &this.notifier {
                        n.notify(Notification {
                            category: NotificationCategory::IncomingCall,
                            title: name.clone(),
                            body: format!("{} call", kinds.names().join(" + ")),
                            conversation: Some(peer.to_hex()),
                        });
                    }
                    this.emit(NodeEvent::IncomingCall {
                        call: call_hex(&call),
                        fingerprint: peer.to_hex(),
                        name,
                        kinds,
                    });
                }
                Action::Event(CallEvent::State { call, peer, state }) => {
                    let outgoing = lock(&this.calls)
                        .machine
                        .active()
                        .is_some_and(|c| c.id == call && c.direction == Direction::Outgoing);
                    if state == CallState::Connected && outgoing {
                        let inner = this.clone();
                        let task =
                            tokio::spawn(
                                async move { Inner::start_call_media(&inner, call).await },
                            );
                        this.track([task.abort_handle()]);
                    }
                    this.emit(NodeEvent::CallState {
                        call: call_hex(&call),
                        fingerprint: peer.to_hex(),
                        state,
                    });
                }
                Action::Event(CallEvent::PeerMedia { call, peer, state }) => {
                    this.emit(NodeEvent::CallMedia {
                        call: call_hex(&call),
                        fingerprint: peer.to_hex(),
                        state,
                    });
                }
                Action::Event(CallEvent::Ended(record)) => {
                    let id = record.id;
                    this.call_ended(record).await;
                    Inner::end_call_media(this, id).await;
                }
            }
        }
    }

    /// A call ended: the log, the event, and a notification for a missed incoming call.
    async fn call_ended(&self, r: CallRecord) {
        // A ring answered busy never was the active call: it is logged, nothing ended.
        let busy_ring = r.direction == Direction::Incoming && r.reason == EndReason::Busy;
        if !busy_ring {
            self.emit(NodeEvent::CallState {
                call: call_hex(&r.id),
                fingerprint: r.peer.to_hex(),
                state: CallState::Ended(r.reason),
            });
        }
        // Our half of a glare is not a call anyone made.
        if r.reason == EndReason::Replaced {
            return;
        }
        let now = unix_ms();
        let entry = CallEntry {
            id: r.id,
            peer: r.peer,
            direction: r.direction,
            kinds: r.kinds,
            started_ms: now.saturating_sub(r.ended.duration_since(r.started).as_millis() as u64),
            duration_ms: r.duration.as_millis() as u64,
            outcome: r.outcome,
            reason: r.reason.as_str().to_owned(),
        };
        let e = entry.clone();
        match self.db(move |c| call_log::record(c, &e)).await {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => tracing::warn!(error = %e, "could not log a call"),
        }
        if entry.direction == Direction::Incoming
            && matches!(entry.outcome, Outcome::Missed | Outcome::Busy)
            && let Some(n) = &self.notifier
        {
            n.notify(Notification {
                category: NotificationCategory::MissedCall,
                title: self.contact_name(&entry.peer).await,
                body: "missed call".into(),
                conversation: Some(entry.peer.to_hex()),
            });
        }
        self.emit(NodeEvent::CallLogged { entry });
    }

    /// Our name for contact `fp` (never the one it gives itself), or its short fingerprint.
    pub(super) async fn contact_name(&self, fp: &Fingerprint) -> String {
        let f = *fp;
        self.db(move |c| contacts::get(c, &f))
            .await
            .ok()
            .flatten()
            .map(|k| k.name)
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| fp.short())
    }
}

async fn call_worker(inner: Weak<Inner>, mut rx: mpsc::UnboundedReceiver<Batch>) {
    // A frame's permit is given back once its batch ran.
    while let Some((actions, _permit)) = rx.recv().await {
        let Some(this) = inner.upgrade() else { return };
        Inner::run_call_actions(&this, actions).await;
    }
}

impl Node {
    /// Calls contact `fingerprint` (Trusted or higher, its app must support calls) with
    /// `kinds`; returns the call ID. What follows arrives as [`NodeEvent::CallState`] events.
    pub async fn call(&self, fingerprint: &str, kinds: Kinds) -> Result<String, NodeError> {
        let fp = parse_fp(fingerprint)?;
        let trust = self.inner.db(move |c| contacts::trust_of(c, &fp)).await?;
        if !trust.is_some_and(|t| t.allows(Capability::Call)) {
            return Err(NodeError::NotAllowed(format!(
                "{fp} is not a contact trusted for calls"
            )));
        }
        if self.active_call().is_some() {
            return Err(Refused::Busy.into());
        }
        let link = Inner::dial_contact(&self.inner, &fp).await?;
        if link.features & FEATURE_CALLS == 0 {
            return Err(NodeError::NotAllowed(
                "the contact's app does not support calls".into(),
            ));
        }
        let call: CallId = rand::random();
        let input = |dtls| Input::Dial {
            call,
            peer: fp,
            kinds,
            media_id: new_media_id(),
            dtls,
        };
        Inner::call_with_certificate(&self.inner, input)?;
        Ok(call_hex(&call))
    }

    /// Answers the ringing call `call`, sending `kinds`.
    pub fn accept_call(&self, call: &str, kinds: Kinds) -> Result<(), NodeError> {
        let call = parse_call(call)?;
        let input = |dtls| Input::Accept { call, kinds, dtls };
        Inner::call_with_certificate(&self.inner, input)
    }

    /// Refuses the ringing call `call`.
    pub fn decline_call(&self, call: &str) -> Result<(), NodeError> {
        let call = parse_call(call)?;
        Ok(Inner::call_input(&self.inner, Input::Decline { call })?)
    }

    /// Ends call `call`: hangs up, cancels our ringing call, or declines one ringing here.
    pub fn hang_up(&self, call: &str) -> Result<(), NodeError> {
        let call = parse_call(call)?;
        Ok(Inner::call_input(&self.inner, Input::HangUp { call })?)
    }

    /// Announces what we send now in call `call` (mute, camera off, screen, camera switched).
    pub fn set_call_media(&self, call: &str, state: MediaState) -> Result<(), NodeError> {
        let call = parse_call(call)?;
        Ok(Inner::call_input(
            &self.inner,
            Input::SetMedia { call, state },
        )?)
    }

    /// Mutes or unmutes the microphone in call `call`.
    pub fn set_muted(&self, call: &str, muted: bool) -> Result<(), NodeError> {
        self.change_media(call, |s| s.muted = muted)
    }

    /// Turns the camera off or on in call `call`.
    pub fn set_camera_off(&self, call: &str, off: bool) -> Result<(), NodeError> {
        self.change_media(call, |s| s.camera_off = off)
    }

    /// Switches between the front and the back camera in call `call`.
    pub fn switch_camera(&self, call: &str) -> Result<(), NodeError> {
        self.change_media(call, |s| s.back_camera = !s.back_camera)
    }

    /// Says how far our picture must be turned clockwise to stand upright in call `call` (the
    /// camera's sensor against how the phone is held): `degrees`, to the nearest quarter turn.
    pub fn set_video_rotation(&self, call: &str, degrees: u16) -> Result<(), NodeError> {
        self.change_media(call, |s| s.rotation = MediaState::rotation_of(degrees))
    }

    /// Starts or stops sharing the screen in call `call`.
    pub fn set_screen(&self, call: &str, on: bool) -> Result<(), NodeError> {
        self.change_media(call, |s| s.screen = on)
    }

    /// Changes what we announce in call `call`, from what we announce now (read and changed
    /// under the machine's lock: the encoder's thread and the screen may change it at once).
    fn change_media(&self, call: &str, f: impl FnOnce(&mut MediaState)) -> Result<(), NodeError> {
        let id = parse_call(call)?;
        Ok(Inner::call_input_with(&self.inner, |machine| {
            let mut state = machine
                .active()
                .filter(|c| c.id == id)
                .ok_or(Refused::NoSuchCall)?
                .local_media;
            f(&mut state);
            Ok(Input::SetMedia { call: id, state })
        })?)
    }

    /// The active call, if any.
    pub fn active_call(&self) -> Option<ActiveCall> {
        let calls = lock(&self.inner.calls);
        let c = calls.machine.active()?;
        Some(ActiveCall {
            call: call_hex(&c.id),
            fingerprint: c.peer.to_hex(),
            direction: c.direction,
            state: c.state,
            caller_kinds: c.caller_kinds,
            callee_kinds: c.callee_kinds,
            local_media: c.local_media,
            remote_media: c.remote_media,
            media_id: c.media_id.clone(),
        })
    }

    /// Sets how long calls ring and how long a dial waits for the callee's phone (tests use
    /// short ones); applies to calls started afterwards and to the one ringing now.
    pub fn set_call_config(&self, config: CallConfig) {
        lock(&self.inner.calls).machine.set_config(config);
    }

    /// The `limit` newest calls, with contact `fingerprint` or with everyone, newest first.
    pub async fn call_log(
        &self,
        fingerprint: Option<&str>,
        limit: u32,
    ) -> Result<Vec<CallEntry>, NodeError> {
        let fp = fingerprint.map(parse_fp).transpose()?;
        let limit = limit.clamp(1, MAX_QUERY) as usize;
        self.inner
            .db(move |c| call_log::list(c, fp.as_ref(), limit))
            .await
    }

    /// The `limit` newest lines of the chat history with `conv`: messages and calls, oldest
    /// first.
    pub async fn history(&self, conv: &str, limit: u32) -> Result<Vec<HistoryItem>, NodeError> {
        let fp = parse_fp(conv)?;
        let limit = limit.clamp(1, MAX_QUERY) as usize;
        self.inner
            .db(move |c| call_log::history(c, &fp, limit))
            .await
    }
}
