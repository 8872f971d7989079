//! The sans-IO heart of the server: who is registered under which id and token, what is queued
//! for absent ids, and every protocol decision (refusals, relaying, queueing, expiry, eviction).
//!
//! Time is passed in, and output goes through bounded [`Handle`]s whose sends never block, so the
//! whole state machine runs in unit tests without sockets.

use std::collections::{HashMap, HashSet, VecDeque};
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
}

/// A relayed frame waiting for its destination, already carrying the sender's `src`.
#[derive(Debug)]
struct Queued {
    src: String,
    msg: Message,
    bytes: usize,
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
    closed: bool,
}

impl Registry {
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            clients: HashMap::new(),
            queues: HashMap::new(),
            queued_bytes: 0,
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
                };
                self.clients.insert(id.clone(), client);
            }
        }
        self.send_to(id, &Message::new(MessageType::Open));
        if let Some(queue) = self.queues.remove(id) {
            for queued in queue.msgs {
                self.queued_bytes -= queued.bytes;
                if !self.send_to(id, &queued.msg) {
                    break;
                }
            }
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
                self.queued_bytes -= queued.bytes;
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
        let fits = match self.queues.get(dst) {
            Some(queue) => queue.msgs.len() < self.limits.queue_len,
            None => self.queues.len() < self.limits.queued_ids,
        } && self.queued_bytes + bytes <= self.limits.queued_bytes;
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
        });
        self.queued_bytes += bytes;
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
mod tests {
    use super::*;
    use serde_json::json;

    const MS: Duration = Duration::from_millis(1);

    fn limits() -> Limits {
        Limits {
            key: "peerjs".into(),
            expire_timeout: 5000 * MS,
            alive_timeout: 60_000 * MS,
            concurrent_limit: 3,
            queue_len: 3,
            queued_ids: 2,
            queued_bytes: 1 << 20,
        }
    }

    fn creds(id: &str, token: &str) -> Credentials {
        Credentials::from_query(&format!("key=peerjs&id={id}&token={token}"))
    }

    /// A registered socket as the tests see it: its connection id and its outbound frames.
    struct Peer {
        conn: ConnId,
        rx: mpsc::Receiver<WsMessage>,
        kill: Arc<Notify>,
    }

    impl Peer {
        fn frames(&mut self) -> Vec<WsMessage> {
            std::iter::from_fn(|| self.rx.try_recv().ok()).collect()
        }

        fn texts(&mut self) -> Vec<Message> {
            self.frames()
                .into_iter()
                .filter_map(|f| match f {
                    WsMessage::Text(t) => Some(Message::parse(t.as_str()).unwrap()),
                    _ => None,
                })
                .collect()
        }

        fn closed(&mut self) -> bool {
            self.frames()
                .iter()
                .any(|f| matches!(f, WsMessage::Close(_)))
        }
    }

    async fn killed(kill: &Notify) -> bool {
        tokio::time::timeout(MS, kill.notified()).await.is_ok()
    }

    fn join(reg: &mut Registry, conn: ConnId, id: &str, token: &str, now: Instant) -> Peer {
        let (handle, rx) = Handle::new(conn, 8);
        let kill = handle.kill_signal();
        reg.register(&creds(id, token), handle, now).unwrap();
        let mut peer = Peer { conn, rx, kill };
        assert_eq!(peer.texts(), [Message::new(MessageType::Open)]);
        peer
    }

    fn offer(dst: &str, n: u32) -> Message {
        Message::to(MessageType::Offer, dst, Some(json!({ "n": n })))
    }

    fn relayed(
        kind: MessageType,
        src: &str,
        dst: &str,
        payload: Option<serde_json::Value>,
    ) -> Message {
        Message {
            src: Some(src.into()),
            ..Message::to(kind, dst, payload)
        }
    }

    #[test]
    fn query_parsing_is_total() {
        assert_eq!(
            Credentials::from_query("key=k&id=a%20b&token=t&version=1.5.5&id=zzz"),
            Credentials {
                id: Some("a b".into()),
                token: Some("t".into()),
                key: Some("k".into())
            }
        );
        assert_eq!(Credentials::from_query("id=&token"), Credentials::default());
        assert_eq!(
            Credentials::from_query("%%%&&==&%ff=%fe"),
            Credentials::default()
        );
    }

    #[test]
    fn secrets_match_only_when_equal() {
        assert!(secrets_match("token-123", "token-123"));
        assert!(secrets_match("", ""));
        for other in ["token-124", "Token-123", "token-12", "token-1234", ""] {
            assert!(!secrets_match(other, "token-123"), "{other}");
        }
    }

    #[test]
    fn registration_refusals_follow_the_reference_order() {
        let now = Instant::now();
        let mut reg = Registry::new(limits());
        let mut try_join =
            |q: &str| reg.register(&Credentials::from_query(q), Handle::new(9, 1).0, now);
        assert_eq!(try_join("id=a&token=t"), Err(Refusal::MissingParams));
        assert_eq!(try_join("key=nope&id=a&token=t"), Err(Refusal::InvalidKey));
        assert_eq!(try_join("key=nope&token=t"), Err(Refusal::MissingParams));
        assert_eq!(
            try_join("key=peerjs&id=a--b&token=t"),
            Err(Refusal::InvalidId)
        );
        let long_token = format!("key=peerjs&id=a&token={}", "t".repeat(MAX_ID_LEN + 1));
        assert_eq!(try_join(&long_token), Err(Refusal::InvalidId));
        assert_eq!(
            Refusal::IdTaken.message().to_text(),
            r#"{"type":"ID-TAKEN","payload":{"msg":"ID is taken"}}"#
        );
        assert_eq!(
            Refusal::MissingParams.message().to_text(),
            r#"{"type":"ERROR","payload":{"msg":"No id, token, or key supplied to websocket server"}}"#
        );
    }

    #[test]
    fn id_taken_reattach_and_limit() {
        let now = Instant::now();
        let mut reg = Registry::new(limits());
        let mut a = join(&mut reg, 1, "a", "t1", now);
        let refused = reg.register(&creds("a", "other"), Handle::new(2, 1).0, now);
        assert_eq!(refused, Err(Refusal::IdTaken));

        // Same token: the new socket takes over and the old one is closed.
        let mut a2 = join(&mut reg, 3, "a", "t1", now);
        assert!(a.closed());
        reg.handle("a", a.conn, offer("a", 1), now); // the stale socket can no longer act
        assert!(a2.texts().is_empty());
        reg.disconnect("a", a.conn);
        assert!(reg.contains("a"));

        join(&mut reg, 4, "b", "t", now);
        join(&mut reg, 5, "c", "t", now);
        let over = reg.register(&creds("d", "t"), Handle::new(6, 1).0, now);
        assert_eq!(over, Err(Refusal::LimitReached));
        // Re-attaching is not a new user, so the limit does not apply.
        join(&mut reg, 7, "c", "t", now);

        reg.close_all();
        assert!(a2.closed());
        assert_eq!(reg.len(), 0);
        let late = reg.register(&creds("e", "t"), Handle::new(8, 1).0, now);
        assert_eq!(late, Err(Refusal::ShuttingDown));
    }

    #[test]
    fn relay_rewrites_src_and_keeps_payload() {
        let now = Instant::now();
        let mut reg = Registry::new(limits());
        let mut a = join(&mut reg, 1, "a", "t", now);
        let mut b = join(&mut reg, 2, "b", "t", now);
        let forged = Message {
            src: Some("mallory".into()),
            ..offer("b", 7)
        };
        reg.handle("a", a.conn, forged, now);
        assert_eq!(
            b.texts(),
            [relayed(
                MessageType::Offer,
                "a",
                "b",
                Some(json!({ "n": 7 }))
            )]
        );
        reg.handle("b", b.conn, Message::to(MessageType::Leave, "a", None), now);
        assert_eq!(a.texts(), [relayed(MessageType::Leave, "b", "a", None)]);
        reg.handle("b", b.conn, Message::new(MessageType::Heartbeat), now);
        assert!(a.texts().is_empty() && b.texts().is_empty());
    }

    #[test]
    fn queued_messages_reach_a_late_joiner_in_order() {
        let now = Instant::now();
        let mut reg = Registry::new(limits());
        let a = join(&mut reg, 1, "a", "t", now);
        reg.handle("a", a.conn, offer("late", 1), now);
        reg.handle(
            "a",
            a.conn,
            Message::to(MessageType::Leave, "late", None),
            now,
        );
        reg.handle("a", a.conn, offer("late", 2), now);
        let (handle, rx) = Handle::new(2, 8);
        let kill = handle.kill_signal();
        reg.register(&creds("late", "t"), handle, now).unwrap();
        let mut late = Peer { conn: 2, rx, kill };
        let expected = [
            Message::new(MessageType::Open),
            relayed(MessageType::Offer, "a", "late", Some(json!({ "n": 1 }))),
            relayed(MessageType::Offer, "a", "late", Some(json!({ "n": 2 }))),
        ];
        assert_eq!(late.texts(), expected);
        assert_eq!(reg.queued_bytes, 0);
    }

    #[test]
    fn absent_ids_expire_once_per_sender() {
        let now = Instant::now();
        let mut reg = Registry::new(limits());
        let mut a = join(&mut reg, 1, "a", "t", now);
        let mut b = join(&mut reg, 2, "b", "t", now);
        reg.handle("a", a.conn, offer("ghost", 1), now);
        reg.handle("a", a.conn, offer("ghost", 2), now + MS);
        reg.handle("b", b.conn, offer("ghost", 3), now + 2 * MS);
        // A full queue answers EXPIRE at once instead of growing.
        reg.handle("b", b.conn, offer("ghost", 4), now + 2 * MS);
        assert_eq!(
            b.texts(),
            [relayed(MessageType::Expire, "ghost", "b", None)]
        );
        // So does a new queue once `queued_ids` queues exist.
        reg.handle("a", a.conn, offer("x", 0), now);
        reg.handle("a", a.conn, offer("y", 0), now);
        assert_eq!(a.texts(), [relayed(MessageType::Expire, "y", "a", None)]);

        assert_eq!(reg.tick(now + 4999 * MS), now + 5000 * MS);
        assert!(a.texts().is_empty());
        reg.tick(now + 5000 * MS);
        let mut expired = a.texts();
        expired.sort_by(|x, y| x.src.cmp(&y.src));
        let expected = [
            relayed(MessageType::Expire, "ghost", "a", None),
            relayed(MessageType::Expire, "x", "a", None),
        ];
        assert_eq!(expired, expected);
        assert_eq!(
            b.texts(),
            [relayed(MessageType::Expire, "ghost", "b", None)]
        );
        assert!(reg.queues.is_empty());
        assert_eq!(reg.queued_bytes, 0);
    }

    #[test]
    fn byte_budget_bounds_the_queues() {
        let now = Instant::now();
        let one = relayed(MessageType::Offer, "a", "ghost", Some(json!({ "n": 1 })));
        let budget = one.to_text().len() * 3 / 2;
        let mut reg = Registry::new(Limits {
            queued_bytes: budget,
            ..limits()
        });
        let mut a = join(&mut reg, 1, "a", "t", now);
        reg.handle("a", a.conn, offer("ghost", 1), now);
        assert!(a.texts().is_empty());
        reg.handle("a", a.conn, offer("ghost", 2), now);
        assert_eq!(
            a.texts(),
            [relayed(MessageType::Expire, "ghost", "a", None)]
        );
    }

    #[test]
    fn leave_without_dst_removes_the_sender() {
        let now = Instant::now();
        let mut reg = Registry::new(limits());
        let mut a = join(&mut reg, 1, "a", "t", now);
        reg.handle("a", a.conn, Message::new(MessageType::Leave), now);
        assert!(!reg.contains("a"));
        assert!(a.closed());
    }

    #[tokio::test]
    async fn failed_delivery_drops_the_destination_and_tells_the_sender() {
        let now = Instant::now();
        let mut reg = Registry::new(limits());
        let mut a = join(&mut reg, 1, "a", "t", now);
        let b = join(&mut reg, 2, "b", "t", now);
        let Peer {
            rx, kill: b_kill, ..
        } = b;
        drop(rx); // b's writer is gone
        reg.handle("a", a.conn, offer("b", 1), now);
        assert_eq!(a.texts(), [relayed(MessageType::Leave, "b", "a", None)]);
        assert!(!reg.contains("b"));
        assert!(killed(&b_kill).await);
    }

    #[tokio::test]
    async fn a_full_outbox_drops_that_client_only() {
        let now = Instant::now();
        let mut reg = Registry::new(limits());
        let a = join(&mut reg, 1, "a", "t", now);
        let slow = join(&mut reg, 2, "slow", "t", now);
        for n in 0..9 {
            reg.handle("a", a.conn, offer("slow", n), now);
        }
        assert!(!reg.contains("slow"));
        assert!(reg.contains("a"));
        assert!(killed(&slow.kill).await);
    }

    #[test]
    fn silent_clients_are_evicted() {
        let now = Instant::now();
        let mut reg = Registry::new(Limits {
            alive_timeout: 1000 * MS,
            ..limits()
        });
        let mut a = join(&mut reg, 1, "a", "t", now);
        let mut b = join(&mut reg, 2, "b", "t", now);
        reg.handle(
            "b",
            b.conn,
            Message::new(MessageType::Heartbeat),
            now + 600 * MS,
        );
        assert_eq!(reg.tick(now + 999 * MS), now + 1000 * MS);
        assert_eq!(reg.tick(now + 1000 * MS), now + 1600 * MS);
        assert!(a.closed() && !reg.contains("a"));
        assert!(!b.closed() && reg.contains("b"));
        // An evicted socket's late disconnect must not touch a newcomer with the same id.
        join(&mut reg, 3, "a", "t2", now + 1000 * MS);
        reg.disconnect("a", a.conn);
        assert!(reg.contains("a"));
    }
}
