//! 1:1 chat on top of links: what each session frame does (with the trust check for every
//! capability), the outbox pump of each contact's newest link, redialing contacts with
//! waiting messages, and the chat API of [`Node`].

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::link::Link;
use super::platform::{self, Notification, NotificationCategory};
use super::{Inner, Node, NodeError, NodeEvent, lock, parse_fp, unix_ms};
use crate::chat::store::{self as chat, Conversation, Message, Status};
use crate::chat::wire::{ErrorCode, Frame, Id, MAX_TEXT, Op, OpKind};
use crate::contacts::{self, Capability, Trust};
use crate::identity::Fingerprint;

mod dialing;
pub(super) use dialing::Refused;
pub(crate) use dialing::redial_loop;

/// Ops sent per outbox read.
const PUMP_BATCH: usize = 256;
/// How long a ping waits for its pong.
pub const PING_TIMEOUT: Duration = Duration::from_secs(5);
/// First and longest pause between redials of a contact with waiting messages.
const REDIAL_MIN: Duration = Duration::from_secs(1);
const REDIAL_MAX: Duration = Duration::from_secs(60);
/// How often the redial loop looks for waiting messages at least (when none were waiting, or
/// the next dial is later).
const REDIAL_IDLE: Duration = Duration::from_secs(30);

/// When to try a contact again.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Redial {
    at: Instant,
    pause: Duration,
    /// Dials since the contact was last reached.
    pub(crate) attempts: u32,
}

/// A message's delivery changed for every outgoing op up to `up_to_seq`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusChange {
    /// The contact's fingerprint.
    pub conversation: String,
    /// Ops up to this seq (ours) have the new status.
    pub up_to_seq: u64,
    /// Sent, Delivered, Read or Failed.
    pub status: Status,
}

fn parse_id(s: &str) -> Result<Id, NodeError> {
    super::parse_hex_id(s, "message")
}

impl Inner {
    /// A link is up: contacts get their outbox (and, from Trusted up, our read mark); strangers
    /// we asked get the request again (they may have missed it). An accept is never sent here:
    /// only as the answer to a request (`accept_request`, `on_request`).
    pub(crate) async fn session_started(
        this: &Arc<Inner>,
        link: &Arc<Link>,
        trust: Option<Trust>,
        first: bool,
    ) {
        let (fp, peer, now) = (link.fp, link.peer.clone(), unix_ms());
        match trust {
            Some(t) if t.allows(Capability::Connect) => {
                if first {
                    let p = peer.clone();
                    let _ = this
                        .db(move |c| {
                            if contacts::valid_peer_id(&p) {
                                contacts::update_route(c, &fp, &p, now)?;
                            }
                            chat::set_last_seen(c, &fp, now).map_err(NodeError::from)
                        })
                        .await;
                }
                lock(&this.redial).remove(&fp);
                this.replan_rendezvous();
                this.share_presence_secret(link, t).await;
                // Read receipts tell when we were active: presence, for Trusted and up.
                if t.allows(Capability::Presence)
                    && let Ok(seq) = this.db(move |c| chat::read_mark(c, &fp)).await
                    && seq > 0
                {
                    let _ = link.send(&Frame::Read { seq }).await;
                }
                Inner::start_pump(this, link);
                if t.allows(Capability::File) {
                    this.resume_incoming(link, None).await;
                    this.ask_outgoing(link).await;
                }
            }
            _ => {
                let p = peer.clone();
                let known = this
                    .db(move |c| contacts::by_peer_id(c, &p))
                    .await
                    .ok()
                    .flatten();
                if let Some(known) = known
                    && known.fingerprint != fp
                {
                    this.emit(NodeEvent::KeyChanged {
                        peer: peer.clone(),
                        known: known.fingerprint.to_hex(),
                        presented: fp.to_hex(),
                    });
                }
                if this.outgoing_request(&fp).await {
                    let _ = Inner::send_request(this, link).await;
                }
            }
        }
    }

    /// The last link to a peer ended.
    pub(crate) async fn session_ended(&self, link: &Link) {
        let (fp, now) = (link.fp, unix_ms());
        let _ = self
            .db(move |c| {
                if contacts::trust_of(c, &fp)?.is_some() {
                    chat::set_last_seen(c, &fp, now)?;
                }
                Ok::<_, NodeError>(())
            })
            .await;
    }

    /// Our display name, or the short fingerprint when none is set.
    pub(crate) fn name_or_short(&self) -> String {
        lock(&self.display_name)
            .clone()
            .unwrap_or_else(|| self.fingerprint.short())
    }

    /// Our name as a peer at `trust` may see it in a hello or an accept: a name is part of
    /// presence (a Trusted-level capability), so others get an empty one. A stranger needs
    /// nothing from us to decide on our request but the key the handshake proved and the name
    /// our `Request` frame carries (sent only to the one we asked); a stranger who asks us
    /// gets no name, no accept, no read receipt and no pong.
    pub(crate) fn name_for(&self, trust: Option<Trust>) -> String {
        if trust.is_some_and(|t| t.allows(Capability::Presence)) {
            self.name_or_short()
        } else {
            String::new()
        }
    }

    async fn outgoing_request(&self, fp: &Fingerprint) -> bool {
        let fp = *fp;
        self.db_read_now(move |c| contacts::asked(c, &fp))
            .await
            .unwrap_or(false)
    }

    /// Handles frames from `link`, in order; consecutive ops are stored in one transaction.
    pub(crate) async fn on_frames(
        self: &Arc<Self>,
        link: &Arc<Link>,
        frames: Vec<Result<Frame, String>>,
    ) {
        let Some((mut trust, mut awaiting)) = self.standing(link).await else {
            return;
        };
        let mut ops = Vec::new();
        // The ops of a batch from someone who is not our contact are refused once (each
        // refusal is a strike: a batch would close the link).
        let mut refused = false;
        for frame in frames {
            match frame {
                Ok(Frame::Op(op)) => match self.check_op(link, trust, &op) {
                    Ok(()) => ops.push(op),
                    Err((ErrorCode::NotContact, _)) if awaiting => {
                        lock(&link.early).ops = true;
                    }
                    Err((ErrorCode::NotContact, _)) if refused => {}
                    Err((code, why)) => {
                        refused |= code == ErrorCode::NotContact;
                        self.store_ops(link, trust, std::mem::take(&mut ops)).await;
                        link.refuse(code, why).await;
                    }
                },
                other => {
                    self.store_ops(link, trust, std::mem::take(&mut ops)).await;
                    match other {
                        Ok(f) => {
                            // The frames after an accept or a request are judged by the
                            // trust it may have given.
                            let changes = matches!(f, Frame::Accept { .. } | Frame::Request { .. });
                            Inner::on_frame(self, link, trust, awaiting, f).await;
                            if changes {
                                let Some(now) = self.standing(link).await else {
                                    return;
                                };
                                (trust, awaiting) = now;
                            }
                        }
                        Err(e) => link.refuse(ErrorCode::Malformed, &e).await,
                    }
                }
            }
        }
        self.store_ops(link, trust, ops).await;
    }

    /// The trust of `link`'s peer, and whether we await its accept: a contact that accepted our
    /// request while we were away sends its outbox on the new link before its accept (the
    /// answer to the request we repeat there) reaches us. Its frames until then are let go, not
    /// refused (a refusal fails its messages), and its ops asked for again once the accept is
    /// stored. `None`: the trust could not be read, or the peer is blocked (its link closed).
    async fn standing(&self, link: &Link) -> Option<(Option<Trust>, bool)> {
        let fp = link.fp;
        let trust = match self.db_read_now(move |c| contacts::trust_of(c, &fp)).await {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(error = %e, "could not read a contact's trust");
                return None;
            }
        };
        if trust == Some(Trust::Blocked) {
            link.close().await;
            return None;
        }
        Some((trust, trust.is_none() && self.outgoing_request(&fp).await))
    }

    /// Whether `op` may be stored: it names this session's sender and us, and the sender's
    /// trust level allows its kind.
    fn check_op(
        &self,
        link: &Link,
        trust: Option<Trust>,
        op: &Op,
    ) -> Result<(), (ErrorCode, &'static str)> {
        if op.from != link.fp.0 || op.to != self.fingerprint.0 {
            return Err((
                ErrorCode::Forged,
                "the op names another sender or recipient",
            ));
        }
        let cap = if op.kind == OpKind::File {
            Capability::File
        } else {
            Capability::Message
        };
        match trust {
            None => Err((ErrorCode::NotContact, "you are not a contact")),
            Some(t) if !t.allows(cap) => Err((ErrorCode::NotAllowed, "not allowed")),
            Some(_) if op.kind == OpKind::File && !super::files::check_manifest(op, &link.key) => {
                Err((ErrorCode::Malformed, "the file manifest does not verify"))
            }
            Some(_) => Ok(()),
        }
    }

    /// Stores checked ops, acknowledges them and tells the app (and takes group invites).
    async fn store_ops(self: &Arc<Self>, link: &Link, trust: Option<Trust>, ops: Vec<Op>) {
        if ops.is_empty() {
            return;
        }
        let (fp, now, max) = (link.fp, unix_ms(), self.max_file());
        let stored = self
            .db(move |c| {
                let tx = c.transaction().map_err(crate::store::StoreError::from)?;
                let got = chat::receive_in(&tx, &fp, &ops, now)?;
                // A file's transfer is recorded with its message: a stop between the two would
                // leave a file that never downloads (its message is not received again).
                let mut offers = HashMap::new();
                for m in &got.new {
                    if let Some(manifest) = m.manifest() {
                        offers.insert(m.id, super::files::offer(&tx, &fp, &manifest, max, now)?);
                    }
                }
                tx.commit().map_err(crate::store::StoreError::from)?;
                // Notifications show our name for the contact, never the one it gives itself.
                let name = contacts::get(c, &fp)?.map(|k| k.name).unwrap_or_default();
                Ok::<_, NodeError>((got, offers, name))
            })
            .await;
        let (got, mut offers, name) = match stored {
            Ok(r) => r,
            Err(e) => {
                // Not acknowledged: the sender will send them again.
                tracing::warn!(error = %e, "could not store received messages");
                return;
            }
        };
        let _ = link
            .send(&Frame::Ack {
                seq: got.ack,
                resync: got.resync,
            })
            .await;
        for m in got.new {
            // Older builds send a message deleted before it was delivered as an empty text.
            if !m.deleted && m.text() != Some("") {
                self.notify_message(&name, &m);
            }
            if let Some(offer) = offers.remove(&m.id) {
                self.file_offered(link, m.id, offer).await;
            }
            if let Some(t) = trust
                && m.kind == OpKind::Text
            {
                Inner::take_invite(self, link.fp, t, &m);
            }
            self.emit(NodeEvent::MessageReceived { message: m });
        }
        for m in got.changed {
            if m.deleted && m.kind == OpKind::File {
                self.file_deleted(m.conv, m.id).await;
            }
            self.emit(NodeEvent::MessageChanged { message: m });
        }
    }

    /// Posts a notification for `m` unless its chat is open in the foreground.
    fn notify_message(&self, sender: &str, m: &Message) {
        let open =
            !self.background.load(Ordering::SeqCst) && *lock(&self.open_chat) == Some(m.conv);
        let Some(notifier) = (!open).then_some(self.notifier.as_ref()).flatten() else {
            return;
        };
        let title = if sender.is_empty() {
            m.conv.short()
        } else {
            sender.to_owned()
        };
        let body = match m.manifest() {
            Some(f) => format!("file: {}", f.name),
            None => platform::message_preview(&m.body),
        };
        notifier.notify(Notification {
            category: NotificationCategory::Message,
            title,
            body,
            conversation: Some(m.conv.to_hex()),
        });
    }

    /// Handles one frame; `awaiting`: the peer is no contact, and we asked it to be one.
    async fn on_frame(
        this: &Arc<Inner>,
        link: &Arc<Link>,
        trust: Option<Trust>,
        awaiting: bool,
        frame: Frame,
    ) {
        let fp = link.fp;
        let contact = trust.is_some_and(|t| t.allows(Capability::Connect));
        let files = trust.is_some_and(|t| t.allows(Capability::File));
        match frame {
            // Sanitized when decoded; shown only where we have no name of our own for them.
            Frame::Hello { name } => link.set_name(name),
            Frame::Request { name } => Inner::on_request(this, link, trust, name).await,
            Frame::Accept { name } => {
                if awaiting {
                    let (key, peer) = (link.key, link.peer.clone());
                    let name = if name.trim().is_empty() {
                        fp.short()
                    } else {
                        name
                    };
                    let now = unix_ms();
                    let saved = this
                        .db(move |c| {
                            contacts::save(c, &key, &name, Trust::Trusted, Some(&peer), now)
                        })
                        .await;
                    match saved {
                        Ok(c) => {
                            this.emit(NodeEvent::ContactAdded {
                                fingerprint: fp.to_hex(),
                                name: c.name,
                            });
                            Inner::session_started(this, link, Some(Trust::Trusted), true).await;
                            let early = std::mem::take(&mut *lock(&link.early));
                            if let Some(secret) = early.secret {
                                this.on_presence_secret(fp, secret).await;
                            }
                            if early.ops {
                                Inner::ask_resend(this, link).await;
                            }
                        }
                        Err(e) => tracing::info!(error = %e, "could not save an accepting contact"),
                    }
                }
            }
            Frame::Ack { seq, resync } if contact => {
                // Resending from `seq + 1` needs a next seq: u64::MAX has none.
                let resend = match (resync, seq.checked_add(1)) {
                    (true, None) => {
                        link.refuse(ErrorCode::Malformed, "no seq follows that ack")
                            .await;
                        return;
                    }
                    (true, next) => next,
                    (false, _) => None,
                };
                if let Ok(Some((_, up))) = this.db(move |c| chat::acknowledge(c, &fp, seq)).await {
                    this.emit_status(&fp, up, Status::Delivered);
                }
                if let Some(next) = resend {
                    link.resend_from.store(next, Ordering::SeqCst);
                    link.wake.notify_one();
                }
            }
            Frame::Read { seq } if contact => {
                if let Ok(Some(up)) = this.db(move |c| chat::peer_read(c, &fp, seq)).await {
                    this.emit_status(&fp, up, Status::Read);
                }
            }
            // Answering shows we are online: that is presence, for Trusted contacts and up.
            Frame::Ping { nonce } if trust.is_some_and(|t| t.allows(Capability::Presence)) => {
                let _ = link.send(&Frame::Pong { nonce }).await;
            }
            Frame::Pong { nonce } => {
                if let Some(w) = lock(&this.pings).remove(&nonce) {
                    let _ = w.send(());
                }
            }
            // Kept only if the sender is a contact by the time it is handled (an accept just
            // before it in the same batch counts).
            Frame::PresenceSecret(secret) if awaiting => lock(&link.early).secret = Some(secret),
            Frame::PresenceSecret(secret) => this.on_presence_secret(fp, secret).await,
            Frame::Data(data) if trust.is_some_and(|t| t.allows(Capability::Message)) => {
                this.received(&link.fp, data);
            }
            Frame::Error { code, text } => {
                tracing::info!(peer = %link.peer, ?code, %text, "the peer refused a frame");
                // A stranger throttles only contact requests: ours, if we asked.
                if code == ErrorCode::Throttled
                    && trust.is_none()
                    && this.outgoing_request(&fp).await
                {
                    Inner::request_refused(this, link);
                }
                if code == ErrorCode::NotContact
                    && let Ok(n) = this.db(move |c| chat::fail_outbox(c, &fp)).await
                    && n > 0
                {
                    this.emit_status(&fp, u64::MAX, Status::Failed);
                }
            }
            Frame::FileResume { id, index } if files => {
                Inner::file_resume(this, link, id, index).await;
            }
            Frame::FileChunk { id, index, data } if files => {
                this.file_chunk(link, id, index, data).await;
            }
            Frame::FileAck { id, index } if files => this.file_acked(link, id, index).await,
            Frame::FileDone { id, ok } if files => this.file_done(link, id, ok).await,
            Frame::Call(f) => Inner::on_call_frame(this, link, trust, f).await,
            // Tags 50–54 (decision 0014): only Trusted contacts and up reach the RPC layer.
            f @ (Frame::RpcRequest(_)
            | Frame::RpcResponse(_)
            | Frame::RpcChunk { .. }
            | Frame::RpcUploadState { .. }
            | Frame::RpcSoundAlert { .. }) => Inner::on_rpc_frame(this, link, trust, f).await,
            // Any identity that is not blocked: the group engine admits members only.
            Frame::Group(b) => Inner::on_group_frame(this, link, b).await,
            Frame::GroupCall(b) => this.on_group_call_frame(link, b).await,
            // A contact whose accept is on its way (see `on_frames`).
            _ if awaiting => {}
            _ if !contact => {
                link.refuse(ErrorCode::NotContact, "you are not a contact")
                    .await;
            }
            _ => link.refuse(ErrorCode::NotAllowed, "not allowed").await,
        }
    }

    /// Asks `link`'s peer to send its ops again from the one after the last we stored.
    async fn ask_resend(this: &Arc<Inner>, link: &Arc<Link>) {
        let fp = link.fp;
        match this.db(move |c| chat::last_received(c, &fp)).await {
            Ok(seq) => {
                let _ = link.send(&Frame::Ack { seq, resync: true }).await;
            }
            Err(e) => tracing::warn!(error = %e, "could not read the last received op"),
        }
    }

    async fn on_request(this: &Arc<Inner>, link: &Arc<Link>, trust: Option<Trust>, name: String) {
        let fp = link.fp;
        if trust.is_some() {
            // Already a contact (they lost us, or missed our accept): we accepted them, so
            // this is the answer. Blocked keys never get this far (dropped at the handshake).
            let name = this.name_for(trust);
            let _ = link.send(&Frame::Accept { name }).await;
            return;
        }
        // Checked before anything is stored or shown: a flood of requests (one source, or
        // many) is refused with a reason, nothing kept.
        let limited = lock(&this.request_limiter).check(Instant::now(), &fp, &link.peer);
        if let Err(e) = limited {
            link.refuse(ErrorCode::Throttled, &e.to_string()).await;
            return;
        }
        let (key, peer, now) = (link.key, link.peer.clone(), unix_ms());
        let name = if name.trim().is_empty() {
            fp.short()
        } else {
            name
        };
        // A request asked again (on each new link while unanswered) is shown once.
        let stored = this
            .db(move |c| {
                let mut known = contacts::requests(c)?.into_iter();
                let again = known.any(|r| !r.outgoing && r.fingerprint == fp);
                contacts::add_request(c, &key, &name, &peer, false, now).map(|r| (r, again))
            })
            .await;
        match stored {
            Ok((req, again)) => {
                if this.outgoing_request(&fp).await {
                    // Both asked: that is an accept on both sides.
                    let _ = Node::from_inner(this.clone())
                        .accept_request(&fp.to_hex())
                        .await;
                    return;
                }
                if again {
                    return;
                }
                if let Some(notifier) = &this.notifier {
                    notifier.notify(Notification {
                        category: NotificationCategory::ContactRequest,
                        title: req.name.clone(),
                        body: format!("wants to be your contact ({})", fp.short()),
                        conversation: Some(fp.to_hex()),
                    });
                }
                this.emit(NodeEvent::ContactRequest {
                    fingerprint: fp.to_hex(),
                    name: req.name,
                    peer: req.peer_id,
                });
            }
            Err(e @ NodeError::Contact(contacts::ContactError::Full)) => {
                link.refuse(ErrorCode::Throttled, &e.to_string()).await;
            }
            Err(e) => link.refuse(ErrorCode::NotAllowed, &e.to_string()).await,
        }
    }

    pub(crate) fn emit_status(&self, fp: &Fingerprint, up_to_seq: u64, status: Status) {
        self.emit(NodeEvent::MessageStatus(StatusChange {
            conversation: fp.to_hex(),
            up_to_seq,
            status,
        }));
    }

    /// Starts the outbox pump of `link` unless it runs already.
    pub(crate) fn start_pump(this: &Arc<Inner>, link: &Arc<Link>) {
        if link.pumping.swap(true, Ordering::SeqCst) {
            link.wake.notify_one();
            return;
        }
        let task = tokio::spawn(pump(Arc::downgrade(this), link.clone()));
        this.track([task.abort_handle()]);
    }

    /// New ops for `fp` are stored: wake its pump, or dial it.
    pub(crate) fn wake(this: &Arc<Inner>, fp: &Fingerprint) {
        match this.link(fp) {
            Some(link) => Inner::start_pump(this, &link),
            None => Inner::maybe_dial(this, fp, true),
        }
    }
}

/// Sends the outbox of `link`'s contact while `link` is its newest link: from the first
/// unacknowledged op, then whatever is stored next; a resync moves it back.
async fn pump(inner: Weak<Inner>, link: Arc<Link>) {
    let fp = link.fp;
    let mut next = 0;
    // Highest seq sent but not yet recorded as sent: recorded when the outbox runs dry (or
    // after a full batch), not per op, so a burst costs one write.
    let mut unrecorded = None;
    loop {
        let Some(this) = inner.upgrade() else { return };
        let primary = this.link(&fp).is_some_and(|l| Arc::ptr_eq(&l, &link));
        if link.is_closed() || !primary {
            link.pumping.store(false, Ordering::SeqCst);
            return;
        }
        let resend = link.resend_from.swap(0, Ordering::SeqCst);
        let (me, sent) = (this.fingerprint, unrecorded.take());
        let read = this
            .db(move |c| {
                if let Some(seq) = sent {
                    chat::mark_sent(c, &fp, seq)?;
                }
                let first = chat::first_unacked(c, &fp)?;
                // A resync starts at most at the first unacknowledged op: the peer may name
                // any seq, and one past our stream would stall the pump.
                let from = match (resend, next) {
                    (0, 0) => first,
                    (0, n) => n,
                    (r, _) => r.min(first),
                };
                Ok::<_, NodeError>((from, chat::outbox(c, &me, &fp, from, PUMP_BATCH)?))
            })
            .await;
        let (from, ops) = match read {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "could not read the outbox");
                link.pumping.store(false, Ordering::SeqCst);
                return;
            }
        };
        if let Some(seq) = sent {
            this.emit_status(&fp, seq, Status::Sent);
        }
        next = from;
        let Some(last) = ops.last().map(|o| o.seq) else {
            drop(this);
            link.wake.notified().await;
            continue;
        };
        drop(this);
        for op in ops {
            if link.send(&Frame::Op(op)).await.is_err() {
                link.pumping.store(false, Ordering::SeqCst);
                return;
            }
        }
        next = last + 1;
        unrecorded = Some(last);
    }
}

impl Node {
    async fn contact_for_chat(&self, fp: &Fingerprint) -> Result<(), NodeError> {
        let fp = *fp;
        match self.inner.db(move |c| contacts::trust_of(c, &fp)).await? {
            Some(t) if t.allows(Capability::Message) => Ok(()),
            Some(_) => Err(NodeError::NotAllowed(format!("{fp} is blocked"))),
            None => Err(NodeError::NotAllowed(format!("{fp} is not a contact"))),
        }
    }

    /// Checks the contact's trust, stores the op and returns the message as shown now, in one
    /// database call; then wakes the contact's pump.
    async fn enqueue(
        &self,
        conv: &str,
        kind: OpKind,
        target: Option<Id>,
        body: Vec<u8>,
    ) -> Result<Message, NodeError> {
        let fp = parse_fp(conv)?;
        let (me, now) = (self.inner.fingerprint, unix_ms());
        let message = self
            .inner
            .db(move |c| {
                match contacts::trust_of(c, &fp)? {
                    Some(t) if t.allows(Capability::Message) => {}
                    Some(_) => return Err(NodeError::NotAllowed(format!("{fp} is blocked"))),
                    None => return Err(NodeError::NotAllowed(format!("{fp} is not a contact"))),
                }
                let (op, changed) = chat::enqueue(c, &me, &fp, kind, target, &body, now)?;
                Ok::<_, NodeError>(changed.unwrap_or_else(|| Message::new(fp, &op, None)))
            })
            .await?;
        Inner::wake(&self.inner, &fp);
        Ok(message)
    }

    fn check_text(text: &str) -> Result<Vec<u8>, NodeError> {
        if text.trim().is_empty() || text.len() > MAX_TEXT {
            return Err(NodeError::InvalidInput(format!(
                "a message has 1 to {MAX_TEXT} bytes of text"
            )));
        }
        Ok(text.as_bytes().to_vec())
    }

    /// Stores a text message to contact `conv` (fingerprint) and sends it when possible: now if
    /// connected, else when the contact is reached again (also after a restart).
    pub async fn send_message(&self, conv: &str, text: &str) -> Result<Message, NodeError> {
        let body = Self::check_text(text)?;
        self.enqueue(conv, OpKind::Text, None, body).await
    }

    /// Replaces the text of our message `id`; the edit reaches the contact like a message.
    pub async fn edit_message(
        &self,
        conv: &str,
        id: &str,
        text: &str,
    ) -> Result<Message, NodeError> {
        let body = Self::check_text(text)?;
        self.enqueue(conv, OpKind::Edit, Some(parse_id(id)?), body)
            .await
    }

    /// Deletes our message `id` on both sides (a file's unfinished transfer ends).
    pub async fn delete_message(&self, conv: &str, id: &str) -> Result<Message, NodeError> {
        let m = self
            .enqueue(conv, OpKind::Delete, Some(parse_id(id)?), vec![])
            .await?;
        if m.kind == OpKind::File {
            self.inner.file_deleted(m.conv, m.id).await;
        }
        Ok(m)
    }

    /// The `limit` newest messages with contact `conv`, oldest first.
    pub async fn messages(&self, conv: &str, limit: u32) -> Result<Vec<Message>, NodeError> {
        let fp = parse_fp(conv)?;
        let limit = limit.clamp(1, 10_000) as usize;
        self.inner.db(move |c| chat::messages(c, &fp, limit)).await
    }

    /// Every conversation, most recent first, with unread counts and last seen.
    pub async fn conversations(&self) -> Result<Vec<Conversation>, NodeError> {
        self.inner.db(|c| chat::conversations(c)).await
    }

    /// Marks the conversation read and tells the contact (now, or when next connected).
    pub async fn mark_read(&self, conv: &str) -> Result<(), NodeError> {
        let fp = parse_fp(conv)?;
        let read = self
            .inner
            .db(move |c| {
                let seq = chat::mark_read(c, &fp)?;
                Ok::<_, NodeError>((seq, contacts::trust_of(c, &fp)?))
            })
            .await?;
        // A read receipt is presence: only contacts at Trusted and up get one.
        if let (Some(seq), Some(t)) = read
            && t.allows(Capability::Presence)
            && let Some(link) = self.inner.link(&fp)
        {
            link.send(&Frame::Read { seq }).await?;
        }
        Ok(())
    }

    /// The chat on screen (`None`: none): a contact's fingerprint (64 hex) or a group's ID
    /// (32 hex). Its messages raise no notification while the app is in the foreground.
    pub fn set_open_chat(&self, conv: Option<&str>) -> Result<(), NodeError> {
        let group = conv
            .filter(|c| c.len() == 32)
            .map(|c| {
                c.parse::<crate::groups::GroupId>()
                    .map_err(|e| NodeError::InvalidInput(e.to_string()))
            })
            .transpose()?;
        let fp = match group {
            Some(_) => None,
            None => conv.map(parse_fp).transpose()?,
        };
        *lock(&self.inner.open_chat) = fp;
        *lock(&self.inner.open_group) = group;
        Ok(())
    }

    /// Round trip to contact `conv` over its link (connecting first if needed); fails after
    /// [`PING_TIMEOUT`] in all.
    pub async fn ping(&self, conv: &str) -> Result<Duration, NodeError> {
        let fp = parse_fp(conv)?;
        self.contact_for_chat(&fp).await?;
        let start = Instant::now();
        let nonce: u64 = rand::random();
        let attempt = async {
            let link = Inner::dial_contact(&self.inner, &fp).await?;
            let (tx, rx) = oneshot::channel();
            lock(&self.inner.pings).insert(nonce, tx);
            link.send(&Frame::Ping { nonce }).await?;
            rx.await.map_err(|_| NodeError::Stopped)
        };
        let result = tokio::time::timeout(PING_TIMEOUT, attempt).await;
        lock(&self.inner.pings).remove(&nonce);
        match result {
            Ok(Ok(())) => Ok(start.elapsed()),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(NodeError::Timeout("ping".into())),
        }
    }
}

/// Ping waiters by nonce.
pub(crate) type Pings = HashMap<u64, oneshot::Sender<()>>;
