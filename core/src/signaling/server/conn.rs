//! The per-socket driver: registers the socket, feeds checked frames to the [`Registry`], and
//! writes the socket's outbound queue from a separate task so a slow reader never stalls anyone.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message as WsMessage, WebSocket, close_code};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;

use super::guard::{Guard, Verdict};
use super::registry::{ConnId, Credentials, Handle};
use super::{IpSlot, Shared};
use crate::signaling::protocol::{Message, MessageType};

/// Outbound frames buffered per socket before the client counts as too slow and is dropped.
pub(super) const OUTBOX_CAPACITY: usize = 256;
/// How long a closing socket may take to finish the close handshake.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// How the read loop ended.
enum End {
    /// The client closed or the connection broke.
    Gone,
    /// A close frame is queued or sent: give the client time to read it.
    Closing,
    /// Dropped without ceremony.
    Killed,
}

/// Serves one upgraded socket until it closes; its address's `slot` is freed with it.
pub(super) async fn run(
    socket: WebSocket,
    shared: Arc<Shared>,
    mut creds: Credentials,
    slot: IpSlot,
) {
    creds.origin = Some(super::per_ip::bucket(slot.1));
    let _slot = slot;
    let _live = shared.track_connection();
    let conn = shared.next_conn_id();
    let (handle, rx) = Handle::new(conn, OUTBOX_CAPACITY);
    let kill = handle.kill_signal();
    let (sink, mut stream) = socket.split();
    let mut writer = tokio::spawn(write_loop(sink, rx));

    let registered = shared
        .registry()
        .register(&creds, handle.clone(), Instant::now());
    let end = match registered {
        Ok(id) => {
            let reader = Reader {
                shared: &shared,
                id: &id,
                conn,
                handle: &handle,
            };
            let end = reader.run(&mut stream, &mut writer, &kill).await;
            shared.registry().disconnect(&id, conn);
            end
        }
        Err(refusal) => {
            handle.send(&refusal.message());
            handle.close(None);
            End::Closing
        }
    };
    if let End::Closing = end {
        linger(&mut stream, &mut writer, &kill).await;
    }
    writer.abort();
}

/// Sends queued frames in order; stops after a close frame or a write error.
async fn write_loop(mut sink: SplitSink<WebSocket, WsMessage>, mut rx: mpsc::Receiver<WsMessage>) {
    while let Some(frame) = rx.recv().await {
        let last = matches!(frame, WsMessage::Close(_));
        if sink.send(frame).await.is_err() || last {
            break;
        }
    }
}

/// Lets the writer flush its close frame and reads until the client answers it, within
/// [`CLOSE_GRACE`]. Closing at once could reset the connection before the client has read
/// the final ERROR.
async fn linger(stream: &mut SplitStream<WebSocket>, writer: &mut JoinHandle<()>, kill: &Notify) {
    let finish = async {
        if !writer.is_finished() {
            let _ = writer.await;
        }
        loop {
            match stream.next().await {
                Some(Ok(_)) => {}
                None => break,
                // A broken stream cannot tell us when the client is done: wait out the grace.
                Some(Err(_)) => std::future::pending().await,
            }
        }
    };
    tokio::select! {
        _ = tokio::time::timeout(CLOSE_GRACE, finish) => {}
        _ = kill.notified() => {}
    }
}

/// The read side of a registered socket.
struct Reader<'a> {
    shared: &'a Shared,
    id: &'a str,
    conn: ConnId,
    handle: &'a Handle,
}

impl Reader<'_> {
    async fn run(
        &self,
        stream: &mut SplitStream<WebSocket>,
        writer: &mut JoinHandle<()>,
        kill: &Notify,
    ) -> End {
        let config = &self.shared.config;
        let mut guard = Guard::new(config.max_msgs_per_sec, config.burst, Instant::now());
        loop {
            let frame = tokio::select! {
                _ = kill.notified() => return End::Killed,
                _ = &mut *writer => return End::Closing,
                frame = stream.next() => frame,
            };
            let verdict = match frame {
                None => return End::Gone,
                // The close handshake completes inside the stream, which then ends.
                Some(Ok(WsMessage::Close(_))) => continue,
                Some(Ok(frame)) => match guard.admit(Instant::now()) {
                    Verdict::Pass => self.inspect(frame, &mut guard),
                    verdict => verdict,
                },
                Some(Err(e)) => Verdict::Close(format!("Invalid WebSocket frame: {e}")),
            };
            match verdict {
                Verdict::Pass | Verdict::Drop => {}
                Verdict::Warn(msg) => {
                    if !self.handle.send(&Message::error(&msg)) {
                        return End::Killed;
                    }
                }
                Verdict::Close(msg) => {
                    self.handle.send(&Message::error(&msg));
                    let reason = "policy violation".into();
                    self.handle.close(Some(CloseFrame {
                        code: close_code::POLICY,
                        reason,
                    }));
                    return End::Closing;
                }
            }
            // Input may always be ready; let this socket's writer (woken above, and not
            // stealable by other workers) and other tasks run between frames.
            tokio::task::yield_now().await;
        }
    }

    /// Checks one admitted frame and hands valid ones to the registry.
    fn inspect(&self, frame: WsMessage, guard: &mut Guard) -> Verdict {
        let text = match frame {
            WsMessage::Text(text) => text,
            WsMessage::Binary(_) => return guard.offence("Binary frames are not supported".into()),
            _ => return Verdict::Pass,
        };
        match Message::parse(text.as_str()) {
            Ok(msg) if msg.kind == MessageType::Heartbeat || msg.kind.is_relayed() => {
                self.shared
                    .registry()
                    .handle(self.id, self.conn, msg, Instant::now());
                Verdict::Pass
            }
            Ok(msg) => {
                let kind = serde_json::to_string(&msg.kind).unwrap_or_default();
                guard.offence(format!("Unsupported message type {kind}"))
            }
            Err(e) => guard.offence(format!("Invalid message: {e}")),
        }
    }
}
