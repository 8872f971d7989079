//! The registry's decisions, frame by frame, without sockets.

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
        origin_frames: 0,
        origin_bytes: 0,
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

fn relayed(kind: MessageType, src: &str, dst: &str, payload: Option<serde_json::Value>) -> Message {
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
            key: Some("k".into()),
            origin: None,
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
fn one_address_has_a_share_of_the_queues_and_gets_it_back_as_they_drain() {
    let now = Instant::now();
    let mut reg = Registry::new(Limits {
        concurrent_limit: 8,
        queued_ids: 8,
        origin_frames: 2,
        origin_bytes: 1 << 20,
        ..limits()
    });
    let from = |ip: &str, id: &str, conn: ConnId, reg: &mut Registry| {
        let (handle, rx) = Handle::new(conn, 8);
        let kill = handle.kill_signal();
        let mut c = creds(id, "t");
        c.origin = Some(ip.parse().unwrap());
        reg.register(&c, handle, now).unwrap();
        let mut peer = Peer { conn, rx, kill };
        peer.texts();
        peer
    };
    let mut a = from("203.0.113.7", "a", 1, &mut reg);
    let mut b = from("203.0.113.7", "b", 2, &mut reg);
    let mut c = from("198.51.100.1", "c", 3, &mut reg);
    reg.handle("a", a.conn, offer("ghost1", 1), now);
    reg.handle("b", b.conn, offer("ghost2", 1), now);
    assert!(a.texts().is_empty() && b.texts().is_empty());
    // The address's share is used up, by either of its ids: refused at once.
    reg.handle("b", b.conn, offer("ghost3", 1), now);
    assert_eq!(
        b.texts(),
        [relayed(MessageType::Expire, "ghost3", "b", None)]
    );
    // Another address still queues.
    reg.handle("c", c.conn, offer("ghost3", 1), now);
    assert!(c.texts().is_empty());
    // A queue delivered gives the share back.
    let _ghost = from("192.0.2.9", "ghost1", 4, &mut reg);
    reg.handle("b", b.conn, offer("ghost4", 1), now);
    assert!(b.texts().is_empty());
    assert_eq!(reg.by_origin.values().map(|s| s.0).sum::<usize>(), 3);
    // Expired queues give it back too, and a queue drained into a socket that fails midway
    // leaves nothing counted.
    reg.tick(now + 6000 * MS);
    assert!(reg.queues.is_empty() && reg.by_origin.is_empty());
    assert_eq!(reg.queued_bytes, 0);
    for n in 0..3 {
        reg.handle("a", a.conn, offer("narrow", n), now);
    }
    let (handle, _rx) = Handle::new(5, 1);
    reg.register(&creds("narrow", "t"), handle, now).unwrap();
    assert!(!reg.contains("narrow"), "its outbox overflowed");
    assert!(reg.by_origin.is_empty());
    assert_eq!(reg.queued_bytes, 0);
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
