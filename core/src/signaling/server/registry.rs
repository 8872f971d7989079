//! The sans-IO heart of the server: who is registered under which id and token, what is queued
//! for absent ids, and every protocol decision (refusals, relaying, queueing, expiry, eviction).
//!
//! Time is passed in, and output goes through bounded [`Handle`]s whose sends never block, so the
//! whole state machine runs in unit tests without sockets.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message as WsMessage};
use subtle::ConstantTimeEq;
use tokio::sync::{Notify, mpsc};

use crate::signaling::protocol::{MAX_ID_LEN, Message, MessageType, is_valid_id};

/// Identifies one accepted WebSocket, so a stale socket cannot act for a re-attached id.
pub(super) type ConnId = u64;

/// Bounds and timeouts the registry enforces.
#[derive(Debug, Clone)]
pub(super) struct Limits {
    pub key: String,
    pub expire_timeout: Duration,
    pub alive_timeout: Duration,
    pub concurrent_limit: usize,
    /// Messages queued per absent id.
    pub queue_len: usize,
    /// Absent ids with a queue.
    pub queued_ids: usize,
    /// Bytes of queued frames, all ids together.
    pub queued_bytes: usize,
    /// Queued frames and their bytes one address bucket may have sent, at most (0: no share):
    /// one client cannot fill the queues and make every offer to an absent id expire at once.
    pub origin_frames: usize,
    pub origin_bytes: usize,
}

/// The outbound side of one socket: a bounded frame queue plus a kill switch for when that
/// queue is full and a polite close cannot be queued.
#[derive(Debug, Clone)]
pub(super) struct Handle {
    conn: ConnId,
    tx: mpsc::Sender<WsMessage>,
    kill: Arc<Notify>,
}

impl Handle {
    /// A handle for connection `conn` and the receiver its writer drains.
    pub fn new(conn: ConnId, capacity: usize) -> (Self, mpsc::Receiver<WsMessage>) {
        let (tx, rx) = mpsc::channel(capacity);
        (
            Self {
                conn,
                tx,
                kill: Arc::new(Notify::new()),
            },
            rx,
        )
    }

    /// Signalled when the connection must be dropped at once.
    pub fn kill_signal(&self) -> Arc<Notify> {
        Arc::clone(&self.kill)
    }

    /// Queues a text frame; false if the socket is gone or too far behind.
    pub fn send(&self, msg: &Message) -> bool {
        self.tx
            .try_send(WsMessage::Text(msg.to_text().into()))
            .is_ok()
    }

    /// Queues a close frame after what is already queued, or kills the socket if that fails.
    pub fn close(&self, frame: Option<CloseFrame>) {
        if self.tx.try_send(WsMessage::Close(frame)).is_err() {
            self.kill();
        }
    }

    /// Drops the connection without flushing.
    pub fn kill(&self) {
        self.kill.notify_one();
    }
}

/// The `id`, `token` and `key` query parameters of a WebSocket request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Credentials {
    pub id: Option<String>,
    pub token: Option<String>,
    pub key: Option<String>,
    /// The client's address bucket (`per_ip::bucket`), for its share of the queues; `None`
    /// in tests that do not care.
    pub origin: Option<IpAddr>,
}

impl Credentials {
    /// Reads the first non-empty value of each parameter; any byte string is accepted.
    pub fn from_query(query: &str) -> Self {
        let mut creds = Self::default();
        for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
            let slot = match name.as_ref() {
                "id" => &mut creds.id,
                "token" => &mut creds.token,
                "key" => &mut creds.key,
                _ => continue,
            };
            if slot.is_none() && !value.is_empty() {
                *slot = Some(value.into_owned());
            }
        }
        creds
    }
}

/// Why a socket was not registered; the socket gets [`Refusal::message`] and is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refusal {
    MissingParams,
    InvalidKey,
    InvalidId,
    IdTaken,
    LimitReached,
    ShuttingDown,
}

impl Refusal {
    /// The frame sent before closing, worded as the reference server words it.
    pub fn message(self) -> Message {
        match self {
            Self::MissingParams => {
                Message::error("No id, token, or key supplied to websocket server")
            }
            Self::InvalidKey => Message::error("Invalid key provided"),
            Self::InvalidId => Message::error("Invalid id or token"),
            Self::IdTaken => Message {
                payload: Some(serde_json::json!({ "msg": "ID is taken" })),
                ..Message::new(MessageType::IdTaken)
            },
            Self::LimitReached => Message::error("Server has reached its concurrent user limit"),
            Self::ShuttingDown => Message::error("Server is shutting down"),
        }
    }
}

#[derive(Debug)]
struct Client {
    token: String,
    handle: Handle,
    last_seen: Instant,
    origin: Option<IpAddr>,
}

/// A relayed frame waiting for its destination, already carrying the sender's `src`.
#[derive(Debug)]
struct Queued {
    src: String,
    msg: Message,
    bytes: usize,
    origin: Option<IpAddr>,
}

#[derive(Debug)]
struct Queue {
    deadline: Instant,
    msgs: VecDeque<Queued>,
}

/// Registered clients and queues for absent ids.
#[derive(Debug)]
pub(super) struct Registry {
    limits: Limits,
    clients: HashMap<String, Client>,
    queues: HashMap<String, Queue>,
    queued_bytes: usize,
    /// Frames and bytes queued per sender's address bucket (only buckets with some).
    by_origin: HashMap<IpAddr, (usize, usize)>,
    closed: bool,
}

impl Registry {
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            clients: HashMap::new(),
            queues: HashMap::new(),
            queued_bytes: 0,
            by_origin: HashMap::new(),
            closed: false,
        }
    }

    /// Number of registered ids.
    pub fn len(&self) -> usize {
        self.clients.len()
    }

    /// True if `id` is registered.
    pub fn contains(&self, id: &str) -> bool {
        self.clients.contains_key(id)
    }

    /// Registers (or, with the same token, re-attaches) a socket. On success the socket gets
    /// OPEN and then whatever was queued for the id; a replaced socket is closed.
    pub fn register(
        &mut self,
        creds: &Credentials,
        handle: Handle,
        now: Instant,
    ) -> Result<String, Refusal> {
        if self.closed {
            return Err(Refusal::ShuttingDown);
        }
        let (Some(id), Some(token), Some(key)) = (&creds.id, &creds.token, &creds.key) else {
            return Err(Refusal::MissingParams);
        };
        if !secrets_match(key, &self.limits.key) {
            return Err(Refusal::InvalidKey);
        }
        if !is_valid_id(id) || token.len() > MAX_ID_LEN {
            return Err(Refusal::InvalidId);
        }
        let full = self.clients.len() >= self.limits.concurrent_limit;
        match self.clients.get_mut(id) {
            Some(client) if !secrets_match(&client.token, token) => return Err(Refusal::IdTaken),
            Some(client) => {
                let old = std::mem::replace(&mut client.handle, handle);
                client.last_seen = now;
                client.origin = creds.origin;
                old.close(None);
            }
            None if full => {
                return Err(Refusal::LimitReached);
            }
            None => {
                let client = Client {
                    token: token.clone(),
                    handle,
                    last_seen: now,
                    origin: creds.origin,
                };
                self.clients.insert(id.clone(), client);
            }
        }
        self.send_to(id, &Message::new(MessageType::Open));
        if let Some(queue) = self.queues.remove(id) {
            let mut msgs = queue.msgs.into_iter();
            for queued in msgs.by_ref() {
                self.unqueued(&queued);
                if !self.send_to(id, &queued.msg) {
                    break;
                }
            }
            msgs.for_each(|q| self.unqueued(&q));
        }
        Ok(id.clone())
    }

    /// Handles a parsed frame from the socket `conn` registered as `id`; frames from a socket
    /// that no longer owns the id are ignored.
    pub fn handle(&mut self, id: &str, conn: ConnId, mut msg: Message, now: Instant) {
        match self.clients.get_mut(id) {
            Some(client) if client.handle.conn == conn => client.last_seen = now,
            _ => return,
        }
        if !msg.kind.is_relayed() {
            return;
        }
        msg.src = Some(id.to_owned());
        match msg.dst.clone() {
            Some(dst) => self.relay(id, &dst, msg, now),
            None if msg.kind == MessageType::Leave => {
                if let Some(client) = self.clients.remove(id) {
                    client.handle.close(None);
                }
            }
            None => {}
        }
    }

    /// Forgets `id` when its socket `conn` has gone away.
    pub fn disconnect(&mut self, id: &str, conn: ConnId) {
        if self.clients.get(id).is_some_and(|c| c.handle.conn == conn) {
            self.clients.remove(id);
        }
    }

    /// Expires overdue queues (one EXPIRE per sender) and evicts silent clients. Returns when
    /// to call again: nothing can fall due before then.
    pub fn tick(&mut self, now: Instant) -> Instant {
        let mut next = now + self.limits.expire_timeout.min(self.limits.alive_timeout);

        let overdue: Vec<String> = self
            .queues
            .iter()
            .filter(|(_, q)| q.deadline <= now)
            .map(|(dst, _)| dst.clone())
            .collect();
        for dst in overdue {
            let Some(queue) = self.queues.remove(&dst) else {
                continue;
            };
            let mut told = HashSet::new();
            for queued in queue.msgs {
                self.unqueued(&queued);
                if told.insert(queued.src.clone()) {
                    self.send_to(&queued.src, &expire(&dst, &queued.src));
                }
            }
        }
        next = self
            .queues
            .values()
            .map(|q| q.deadline)
            .fold(next, Instant::min);

        let alive = self.limits.alive_timeout;
        let stale: Vec<String> = self
            .clients
            .iter()
            .filter(|(_, c)| now.saturating_duration_since(c.last_seen) >= alive)
            .map(|(id, _)| id.clone())
            .collect();
        for id in stale {
            if let Some(client) = self.clients.remove(&id) {
                client.handle.close(None);
            }
        }
        self.clients
            .values()
            .map(|c| c.last_seen + alive)
            .fold(next, Instant::min)
    }

    /// Closes every socket, drops all queues and refuses further registrations.
    pub fn close_all(&mut self) {
        self.closed = true;
        for (_, client) in self.clients.drain() {
            client.handle.close(None);
        }
        self.queues.clear();
        self.queued_bytes = 0;
        self.by_origin.clear();
    }

    /// Forgets the bytes and the origin's share of a frame leaving the queues.
    fn unqueued(&mut self, queued: &Queued) {
        self.queued_bytes -= queued.bytes;
        if let Some(origin) = queued.origin
            && let Some((frames, bytes)) = self.by_origin.get_mut(&origin)
        {
            *frames -= 1;
            *bytes -= queued.bytes;
            if *frames == 0 {
                self.by_origin.remove(&origin);
            }
        }
    }

    /// Whether the sender's address bucket may queue `bytes` more.
    fn origin_fits(&self, origin: Option<IpAddr>, bytes: usize) -> bool {
        let (Some(origin), max) = (origin, self.limits.origin_frames) else {
            return true;
        };
        let (frames, used) = self.by_origin.get(&origin).copied().unwrap_or((0, 0));
        max == 0 || (frames < max && used + bytes <= self.limits.origin_bytes)
    }

    /// Delivers `msg` from `src` to `dst`, or queues it while `dst` is absent.
    fn relay(&mut self, src: &str, dst: &str, msg: Message, now: Instant) {
        if self.clients.contains_key(dst) {
            if !self.send_to(dst, &msg) {
                let leave = Message {
                    src: Some(dst.to_owned()),
                    ..Message::to(MessageType::Leave, src, None)
                };
                self.send_to(src, &leave);
            }
            return;
        }
        if matches!(msg.kind, MessageType::Leave | MessageType::Expire) {
            return;
        }
        let bytes = msg.to_text().len();
        let origin = self.clients.get(src).and_then(|c| c.origin);
        let fits = match self.queues.get(dst) {
            Some(queue) => queue.msgs.len() < self.limits.queue_len,
            None => self.queues.len() < self.limits.queued_ids,
        } && self.queued_bytes + bytes <= self.limits.queued_bytes
            && self.origin_fits(origin, bytes);
        if !fits {
            self.send_to(src, &expire(dst, src));
            return;
        }
        let deadline = now + self.limits.expire_timeout;
        let queue = self.queues.entry(dst.to_owned()).or_insert_with(|| Queue {
            deadline,
            msgs: VecDeque::new(),
        });
        queue.msgs.push_back(Queued {
            src: src.to_owned(),
            msg,
            bytes,
            origin,
        });
        self.queued_bytes += bytes;
        if let Some(origin) = origin {
            let share = self.by_origin.entry(origin).or_default();
            share.0 += 1;
            share.1 += bytes;
        }
    }

    /// Sends to a registered id; a client that cannot take the frame is dropped. False if
    /// nothing was sent.
    fn send_to(&mut self, id: &str, msg: &Message) -> bool {
        let Some(client) = self.clients.get(id) else {
            return false;
        };
        if client.handle.send(msg) {
            return true;
        }
        client.handle.kill();
        self.clients.remove(id);
        false
    }
}

/// Compares a presented secret (token, key) with the expected one in time that does not depend
/// on where they differ, so a client cannot guess a registered ID's token byte by byte. Only
/// the length may leak.
fn secrets_match(presented: &str, expected: &str) -> bool {
    presented.as_bytes().ct_eq(expected.as_bytes()).into()
}

/// `{"type":"EXPIRE","src":absent,"dst":sender}`.
fn expire(absent: &str, sender: &str) -> Message {
    Message {
        src: Some(absent.to_owned()),
        ..Message::to(MessageType::Expire, sender, None)
    }
}

#[cfg(test)]
#[path = "registry_tests.rs"]
mod tests;
