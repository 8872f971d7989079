//! Socket-level tests: real WebSocket clients against a server on 127.0.0.1 port 0.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use futures_util::future::join_all;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

use super::conn::OUTBOX_CAPACITY;
use super::http::{HARD_FRAME_LIMIT, TOO_MANY_CONNECTIONS};
use super::{EmbeddedServer, ServerConfig};
use crate::signaling::protocol::{MAX_FRAME_BYTES, Message, MessageType};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

const WAIT: Duration = Duration::from_secs(10);

async fn start(config: ServerConfig) -> EmbeddedServer {
    EmbeddedServer::start(ServerConfig { port: 0, ..config })
        .await
        .unwrap()
}

async fn server() -> EmbeddedServer {
    start(ServerConfig::default()).await
}

/// Opens `{url}peerjs?{query}` without waiting for any frame.
async fn open(srv: &EmbeddedServer, query: &str) -> Ws {
    connect_async(format!("{}peerjs?{query}", srv.url()))
        .await
        .unwrap()
        .0
}

/// Connects as `id` with `token` and checks the OPEN.
async fn join(srv: &EmbeddedServer, id: &str, token: &str) -> Ws {
    let mut ws = open(
        srv,
        &format!("key=peerjs&id={id}&token={token}&version=1.5.5"),
    )
    .await;
    assert_eq!(recv(&mut ws).await, Message::new(MessageType::Open), "{id}");
    ws
}

/// The next text frame, parsed.
async fn recv(ws: &mut Ws) -> Message {
    let next = async {
        loop {
            match ws.next().await {
                Some(Ok(WsMessage::Text(t))) => return Message::parse(t.as_str()).unwrap(),
                Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_))) => {}
                other => panic!("expected a text frame, got {other:?}"),
            }
        }
    };
    tokio::time::timeout(WAIT, next)
        .await
        .expect("no frame in time")
}

/// Asserts that the server closes the socket without sending more text.
async fn expect_closed(ws: &mut Ws) {
    let closed = async {
        loop {
            match ws.next().await {
                Some(Ok(WsMessage::Close(_))) | Some(Err(_)) | None => return,
                Some(Ok(WsMessage::Text(t))) => panic!("expected close, got {t}"),
                Some(Ok(_)) => {}
            }
        }
    };
    tokio::time::timeout(WAIT, closed)
        .await
        .expect("socket not closed in time");
}

/// Asserts that nothing arrives for `dur`.
async fn expect_silence(ws: &mut Ws, dur: Duration) {
    if let Ok(frame) = tokio::time::timeout(dur, ws.next()).await {
        panic!("expected silence, got {frame:?}");
    }
}

async fn send(ws: &mut Ws, msg: &Message) {
    send_raw(ws, WsMessage::text(msg.to_text())).await;
}

async fn send_raw(ws: &mut Ws, frame: WsMessage) {
    ws.send(frame).await.unwrap();
}

fn relayed(kind: MessageType, src: &str, dst: &str, payload: Option<Value>) -> Message {
    Message {
        src: Some(src.into()),
        ..Message::to(kind, dst, payload)
    }
}

fn error(msg: &str) -> Message {
    Message::error(msg)
}

/// Expects an ERROR whose message starts with `prefix`.
async fn expect_error(ws: &mut Ws, prefix: &str) {
    let msg = recv(ws).await;
    assert_eq!(msg.kind, MessageType::Error, "{msg:?}");
    let text = msg.error_msg().unwrap_or_default();
    assert!(
        text.starts_with(prefix),
        "{text:?} does not start with {prefix:?}"
    );
}

/// Checks that `srv` still relays between two fresh clients.
async fn still_serving(srv: &EmbeddedServer) {
    let mut x = join(srv, "probe-x", "t").await;
    let mut y = join(srv, "probe-y", "t").await;
    send(
        &mut x,
        &Message::to(MessageType::Offer, "probe-y", Some(json!(1))),
    )
    .await;
    assert_eq!(
        recv(&mut y).await,
        relayed(MessageType::Offer, "probe-x", "probe-y", Some(json!(1)))
    );
}

/// A bare HTTP/1.1 GET: (status, lowercased head, body).
async fn http_get(addr: SocketAddr, path: &str) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    s.write_all(request.as_bytes()).await.unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).await.unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    (
        head[9..12].parse().unwrap(),
        head.to_ascii_lowercase(),
        body.to_owned(),
    )
}

#[tokio::test]
async fn http_routes_match_the_reference() {
    let srv = server().await;
    let addr = srv.local_addr();
    assert_eq!(srv.url(), format!("ws://{addr}/"));

    let (status, head, body) = http_get(addr, "/").await;
    assert_eq!(status, 200);
    assert!(head.contains("access-control-allow-origin: *"), "{head}");
    let info: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(info["name"], "PeerJS Server");
    assert_eq!(info["website"], "https://peerjs.com/");

    let (status, head, id) = http_get(addr, "/peerjs/id?ts=123").await;
    assert_eq!(status, 200);
    assert!(head.contains("content-type: text/plain"), "{head}");
    assert_eq!(id.len(), 36);
    assert_ne!(http_get(addr, "/peerjs/id").await.2, id);
    // The issued id is usable as is.
    join(&srv, &id, "t").await;

    assert_eq!(http_get(addr, "/peerjs/peers").await.0, 401);
    assert_eq!(http_get(addr, "/nowhere/at/all").await.0, 404);
    // A plain GET on the WebSocket route is refused, not crashed on.
    assert!(http_get(addr, "/peerjs?key=%%%").await.0 >= 400);

    let custom = start(ServerConfig {
        path: "myapp".into(),
        ..ServerConfig::default()
    })
    .await;
    let addr = custom.local_addr();
    assert_eq!(custom.url(), format!("ws://{addr}/myapp/"));
    assert_eq!(http_get(addr, "/myapp").await.0, 200);
    assert_eq!(http_get(addr, "/myapp/").await.0, 200);
    assert_eq!(http_get(addr, "/myapp/peerjs/id").await.0, 200);
    assert_eq!(http_get(addr, "/peerjs/id").await.0, 404);
    join(&custom, "a", "t").await;

    let bad = EmbeddedServer::start(ServerConfig {
        path: "/{x}".into(),
        port: 0,
        ..Default::default()
    });
    assert_eq!(
        bad.await.err().unwrap().kind(),
        std::io::ErrorKind::InvalidInput
    );
}

#[tokio::test]
async fn open_then_id_taken_for_another_token() {
    let srv = server().await;
    let mut a = join(&srv, "abc", "xyz").await;
    let mut thief = open(&srv, "key=peerjs&id=abc&token=other").await;
    let taken = Message::parse(r#"{"type":"ID-TAKEN","payload":{"msg":"ID is taken"}}"#).unwrap();
    assert_eq!(recv(&mut thief).await, taken);
    expect_closed(&mut thief).await;
    // The owner is unaffected.
    let mut b = join(&srv, "def", "t").await;
    send(&mut b, &Message::to(MessageType::Offer, "abc", None)).await;
    assert_eq!(
        recv(&mut a).await,
        relayed(MessageType::Offer, "def", "abc", None)
    );
    assert_eq!(srv.client_count(), 2);
}

#[tokio::test]
async fn same_token_reattaches_and_replaces_the_old_socket() {
    let srv = server().await;
    let mut old = join(&srv, "abc", "xyz").await;
    let mut new = join(&srv, "abc", "xyz").await;
    expect_closed(&mut old).await;
    let mut b = join(&srv, "def", "t").await;
    send(
        &mut b,
        &Message::to(MessageType::Candidate, "abc", Some(json!({"c": 1}))),
    )
    .await;
    let expected = relayed(MessageType::Candidate, "def", "abc", Some(json!({"c": 1})));
    assert_eq!(recv(&mut new).await, expected);
    assert_eq!(srv.client_count(), 2);
}

#[tokio::test]
async fn refusals_send_an_error_then_close() {
    let srv = server().await;
    let missing = error("No id, token, or key supplied to websocket server");
    let cases = [
        ("key=wrong&id=a&token=t", error("Invalid key provided")),
        ("key=peerjs&id=a--b&token=t", error("Invalid id or token")),
        ("", missing.clone()),
        ("key=peerjs&id=a", missing.clone()),
        ("key=peerjs&token=t", missing.clone()),
        ("id=a&token=t", missing.clone()),
        ("key=peerjs&id=&token=t", missing.clone()),
        ("%%%&&==&id&key=%ff%fe&token=%", missing.clone()),
    ];
    for (query, expected) in cases {
        let mut ws = open(&srv, query).await;
        assert_eq!(recv(&mut ws).await, expected, "{query}");
        expect_closed(&mut ws).await;
    }
    let mut bare = connect_async(format!("{}peerjs", srv.url()))
        .await
        .unwrap()
        .0;
    assert_eq!(recv(&mut bare).await, missing);
    expect_closed(&mut bare).await;
    assert_eq!(srv.client_count(), 0);
    still_serving(&srv).await;
}

#[tokio::test]
async fn concurrent_limit_is_enforced() {
    let srv = start(ServerConfig {
        concurrent_limit: 2,
        ..Default::default()
    })
    .await;
    let _a = join(&srv, "a", "t").await;
    let _b = join(&srv, "b", "t").await;
    let mut c = open(&srv, "key=peerjs&id=c&token=t").await;
    assert_eq!(
        recv(&mut c).await,
        error("Server has reached its concurrent user limit")
    );
    expect_closed(&mut c).await;
    // Re-attaching is not a new user.
    join(&srv, "a", "t").await;
}

#[tokio::test]
async fn connections_per_address_are_capped_with_429() {
    let srv = start(ServerConfig {
        max_conns_per_ip: 3,
        ..Default::default()
    })
    .await;
    let mut a = join(&srv, "a", "t").await;
    let _b = join(&srv, "b", "t").await;
    // A refused registration holds its slot while its socket lives, like any other.
    let mut thief = open(&srv, "key=peerjs&id=a&token=other").await;
    let url = format!("{}peerjs?key=peerjs&id=c&token=t", srv.url());
    match connect_async(&url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status().as_u16(), 429);
            let body = resp.body().as_deref().unwrap_or_default();
            assert_eq!(String::from_utf8_lossy(body), TOO_MANY_CONNECTIONS);
        }
        other => panic!("expected HTTP 429, got {other:?}"),
    }
    assert_eq!(srv.client_count(), 2);
    // Plain HTTP is not counted: the id route still answers.
    assert_eq!(http_get(srv.local_addr(), "/peerjs/id").await.0, 200);

    // A closed socket frees its slot.
    recv(&mut thief).await;
    expect_closed(&mut thief).await;
    a.close(None).await.unwrap();
    let deadline = Instant::now() + WAIT;
    let mut c = loop {
        match connect_async(&url).await {
            Ok((ws, _)) => break ws,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("slots were not freed: {e}"),
        }
    };
    assert_eq!(recv(&mut c).await, Message::new(MessageType::Open));
}

#[tokio::test]
async fn relay_rewrites_src_and_keeps_the_payload() {
    let srv = server().await;
    let mut a = join(&srv, "abc", "t").await;
    let mut b = join(&srv, "def", "t").await;
    let payload = json!({
        "sdp": {"type": "offer", "sdp": "v=0"}, "type": "data", "connectionId": "dc_test123",
        "metadata": null, "label": "dc_test123", "reliable": true, "serialization": "binary"
    });
    let forged = Message {
        src: Some("mallory".into()),
        ..Message::to(MessageType::Offer, "def", Some(payload.clone()))
    };
    send(&mut a, &forged).await;
    assert_eq!(
        recv(&mut b).await,
        relayed(MessageType::Offer, "abc", "def", Some(payload))
    );

    let answer = json!({"sdp": {"type": "answer", "sdp": "v=0"}, "type": "data", "connectionId": "dc_test123"});
    send(
        &mut b,
        &Message::to(MessageType::Answer, "abc", Some(answer.clone())),
    )
    .await;
    assert_eq!(
        recv(&mut a).await,
        relayed(MessageType::Answer, "def", "abc", Some(answer))
    );

    send(&mut a, &Message::new(MessageType::Heartbeat)).await;
    expect_silence(&mut a, Duration::from_millis(200)).await;
}

#[tokio::test]
async fn queued_offer_reaches_a_late_joiner() {
    let srv = server().await;
    let mut a = join(&srv, "abc", "t").await;
    send(
        &mut a,
        &Message::to(MessageType::Offer, "late", Some(json!(1))),
    )
    .await;
    send(
        &mut a,
        &Message::to(MessageType::Candidate, "late", Some(json!(2))),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut late = join(&srv, "late", "t").await;
    assert_eq!(
        recv(&mut late).await,
        relayed(MessageType::Offer, "abc", "late", Some(json!(1)))
    );
    assert_eq!(
        recv(&mut late).await,
        relayed(MessageType::Candidate, "abc", "late", Some(json!(2)))
    );
    expect_silence(&mut a, Duration::from_millis(200)).await;
}

#[tokio::test]
async fn absent_destination_expires_back_to_the_sender() {
    let expire_timeout = Duration::from_millis(300);
    let srv = start(ServerConfig {
        expire_timeout,
        ..Default::default()
    })
    .await;
    let mut a = join(&srv, "abc", "t").await;
    let sent = Instant::now();
    send(&mut a, &Message::to(MessageType::Offer, "ghost", None)).await;
    send(&mut a, &Message::to(MessageType::Candidate, "ghost", None)).await;
    assert_eq!(
        recv(&mut a).await,
        relayed(MessageType::Expire, "ghost", "abc", None)
    );
    let elapsed = sent.elapsed();
    assert!(
        elapsed >= expire_timeout - Duration::from_millis(50),
        "{elapsed:?}"
    );
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
    // One EXPIRE per sender, and the queue is gone.
    expect_silence(&mut a, Duration::from_millis(500)).await;
    let mut ghost = join(&srv, "ghost", "t").await;
    expect_silence(&mut ghost, Duration::from_millis(200)).await;
}

#[tokio::test]
async fn leave_is_relayed_never_queued_and_without_dst_frees_the_id() {
    let srv = server().await;
    let mut a = join(&srv, "abc", "t").await;
    let mut b = join(&srv, "def", "t").await;
    send(&mut a, &Message::to(MessageType::Leave, "def", None)).await;
    assert_eq!(
        recv(&mut b).await,
        relayed(MessageType::Leave, "abc", "def", None)
    );

    send(&mut a, &Message::to(MessageType::Leave, "ghost", None)).await;
    send(&mut a, &Message::to(MessageType::Expire, "ghost", None)).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut ghost = join(&srv, "ghost", "t").await;
    expect_silence(&mut ghost, Duration::from_millis(200)).await;

    send(&mut a, &Message::new(MessageType::Leave)).await;
    expect_closed(&mut a).await;
    join(&srv, "abc", "another-token").await;
}

#[tokio::test]
async fn silent_clients_are_evicted() {
    let srv = start(ServerConfig {
        alive_timeout: Duration::from_millis(400),
        ..Default::default()
    })
    .await;
    let mut silent = join(&srv, "silent", "t").await;
    let mut chatty = join(&srv, "chatty", "t").await;
    let evicted = async {
        expect_closed(&mut silent).await;
        Instant::now()
    };
    let heartbeats = async {
        for _ in 0..12 {
            send(&mut chatty, &Message::new(MessageType::Heartbeat)).await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let start = Instant::now();
    let (evicted_at, ()) = tokio::join!(evicted, heartbeats);
    assert!(evicted_at - start < Duration::from_millis(1100));
    assert_eq!(srv.client_count(), 1);
    // The evicted id is free again; the heartbeating client still relays.
    let mut back = join(&srv, "silent", "other").await;
    send(
        &mut chatty,
        &Message::to(MessageType::Offer, "silent", None),
    )
    .await;
    assert_eq!(
        recv(&mut back).await,
        relayed(MessageType::Offer, "chatty", "silent", None)
    );
}

#[tokio::test]
async fn bad_frames_get_errors_and_repeat_offenders_are_closed() {
    let srv = server().await;
    let mut a = join(&srv, "abc", "t").await;
    let mut b = join(&srv, "def", "t").await;

    send_raw(&mut a, WsMessage::text("not json")).await;
    expect_error(&mut a, "Invalid message: malformed frame").await;
    send_raw(&mut a, WsMessage::binary(vec![1, 2, 3])).await;
    expect_error(&mut a, "Binary frames are not supported").await;
    send_raw(&mut a, WsMessage::text(r#"{"type":"NOPE","dst":"def"}"#)).await;
    expect_error(&mut a, "Invalid message: unknown message type").await;
    send_raw(&mut a, WsMessage::text(r#"{"type":"OPEN"}"#)).await;
    expect_error(&mut a, r#"Unsupported message type "OPEN""#).await;
    let big = Message::to(
        MessageType::Offer,
        "def",
        Some(json!("x".repeat(MAX_FRAME_BYTES))),
    );
    send(&mut a, &big).await;
    expect_error(&mut a, "Invalid message: frame of").await;

    // None of it reached b, and a can still signal.
    send(&mut a, &Message::to(MessageType::Offer, "def", None)).await;
    assert_eq!(
        recv(&mut b).await,
        relayed(MessageType::Offer, "abc", "def", None)
    );

    for _ in 0..4 {
        send_raw(&mut a, WsMessage::text("{")).await;
        expect_error(&mut a, "Invalid message").await;
    }
    send_raw(&mut a, WsMessage::text("{")).await;
    expect_error(&mut a, "Invalid message").await;
    expect_closed(&mut a).await;

    send(&mut b, &Message::new(MessageType::Heartbeat)).await;
    still_serving(&srv).await;
}

#[tokio::test]
async fn frames_beyond_the_transport_limit_close_the_socket() {
    let srv = server().await;
    let mut a = join(&srv, "abc", "t").await;
    send_raw(&mut a, WsMessage::text("x".repeat(HARD_FRAME_LIMIT + 1))).await;
    expect_error(&mut a, "Invalid WebSocket frame").await;
    expect_closed(&mut a).await;
    still_serving(&srv).await;
}

#[tokio::test]
async fn flooding_is_rate_limited_then_closed() {
    let config = ServerConfig {
        max_msgs_per_sec: 10,
        burst: 20,
        ..Default::default()
    };
    let srv = start(config).await;
    let mut flooder = join(&srv, "flooder", "t").await;
    let mut victim = join(&srv, "victim", "t").await;
    for n in 0..100 {
        let frame = Message::to(MessageType::Candidate, "victim", Some(json!(n)));
        if flooder
            .send(WsMessage::text(frame.to_text()))
            .await
            .is_err()
        {
            break;
        }
    }
    // ERRORs (one per throttled episode, one when closing), then the close.
    let mut errors = 0;
    loop {
        match tokio::time::timeout(WAIT, flooder.next())
            .await
            .expect("not closed in time")
        {
            Some(Ok(WsMessage::Text(t))) => {
                assert_eq!(
                    Message::parse(t.as_str()).unwrap(),
                    error("Rate limit exceeded")
                );
                errors += 1;
            }
            Some(Ok(WsMessage::Close(_)) | Err(_)) | None => break,
            Some(Ok(_)) => {}
        }
    }
    assert!(errors >= 2, "{errors}");
    // The burst got through in order; most of the flood did not.
    let mut delivered = Vec::new();
    while let Ok(Some(Ok(WsMessage::Text(t)))) =
        tokio::time::timeout(Duration::from_millis(300), victim.next()).await
    {
        delivered.push(Message::parse(t.as_str()).unwrap().payload.unwrap());
    }
    assert!((20..40).contains(&delivered.len()), "{}", delivered.len());
    assert_eq!(
        delivered[..20],
        (0..20).map(|n| json!(n)).collect::<Vec<_>>()
    );
    still_serving(&srv).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_connections_all_open() {
    let srv = start(ServerConfig {
        max_conns_per_ip: 0,
        ..Default::default()
    })
    .await;
    let mut sockets = Vec::new();
    for batch in 0..10 {
        let joins = (0..100).map(|i| {
            let id = format!("peer-{batch}-{i}");
            let srv = &srv;
            async move { join(srv, &id, "t").await }
        });
        sockets.extend(join_all(joins).await);
    }
    assert_eq!(srv.client_count(), 1000);
    join_all(sockets.iter_mut().map(|ws| ws.close(None))).await;
    drop(sockets);
    let deadline = Instant::now() + WAIT;
    while srv.client_count() > 0 {
        assert!(
            Instant::now() < deadline,
            "{} clients left",
            srv.client_count()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The largest value of a `min default max` line in `/proc/sys/net/ipv4`, 8 MiB if unknown.
fn tcp_buffer_max(name: &str) -> usize {
    std::fs::read_to_string(format!("/proc/sys/net/ipv4/{name}"))
        .ok()
        .and_then(|s| s.split_whitespace().last()?.parse().ok())
        .unwrap_or(8 << 20)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_dropped_alone() {
    let srv = start(ServerConfig {
        max_msgs_per_sec: 0,
        ..Default::default()
    })
    .await;
    let _slow = join(&srv, "slow", "t").await; // never read again
    let mut fast = join(&srv, "fast", "t").await;
    let offer = Message::to(MessageType::Offer, "slow", Some(json!("x".repeat(60_000))));
    let frame = WsMessage::text(offer.to_text());
    // What the server holds for "slow" is bounded by its outbox; besides that, frames can only
    // sit in the kernel buffers of the two loopback connections (at most their autotuned
    // maxima, each way).
    let kernel = 2 * (tcp_buffer_max("tcp_rmem") + tcp_buffer_max("tcp_wmem"));
    let bound = OUTBOX_CAPACITY + kernel / offer.to_text().len() + 8;
    // Once the outbox of "slow" overflows it is dropped and the sender hears LEAVE from it.
    let mut sent = 0;
    let leave = loop {
        assert!(
            sent < bound,
            "not dropped after {sent} frames (bound {bound})"
        );
        send_raw(&mut fast, frame.clone()).await;
        sent += 1;
        if let Some(Some(Ok(WsMessage::Text(t)))) = fast.next().now_or_never() {
            break Message::parse(t.as_str()).unwrap();
        }
    };
    assert_eq!(leave, relayed(MessageType::Leave, "slow", "fast", None));
    assert!(sent > OUTBOX_CAPACITY, "{sent}");
    assert_eq!(srv.client_count(), 1);
    still_serving(&srv).await;
}

#[tokio::test]
async fn shutdown_closes_sockets_and_stops_listening() {
    let srv = server().await;
    let addr = srv.local_addr();
    let mut a = join(&srv, "abc", "t").await;
    srv.shutdown().await;
    expect_closed(&mut a).await;
    assert!(TcpStream::connect(addr).await.is_err());
}
