//! The tokio driver: binds the sans-IO [`Signaling`] machine to real WebSockets (`ws://` and
//! `wss://` with rustls). One task owns the machine; one task per socket moves frames.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::{self, Message as WsMessage, protocol::WebSocketConfig};

use super::client::{
    ClaimResult, ConnId, ConnectFailure, NetworkPath, Output, RegId, Signaling, SignalingConfig,
    SignalingError, SignalingEvent, SignalingState, Stats,
};
use super::protocol::{MAX_FRAME_BYTES, Message};

/// Outgoing frames buffered per socket before the socket counts as stuck.
const SOCKET_QUEUE: usize = 256;

enum Command {
    Register {
        reg: RegId,
        id: String,
        token: String,
    },
    Unregister {
        reg: RegId,
    },
    Send {
        reg: RegId,
        msg: Message,
        done: oneshot::Sender<Result<(), SignalingError>>,
    },
    NetworkChanged {
        path: NetworkPath,
    },
    SetActive {
        active: bool,
    },
    State {
        reg: RegId,
        done: oneshot::Sender<Option<SignalingState>>,
    },
    Stats {
        done: oneshot::Sender<Stats>,
    },
    Subscribe {
        tx: mpsc::UnboundedSender<SignalingEvent>,
    },
    Shutdown {
        done: oneshot::Sender<()>,
    },
}

enum SocketEvent {
    Connected {
        conn: ConnId,
        tx: mpsc::Sender<WsMessage>,
    },
    Failed {
        conn: ConnId,
        failure: ConnectFailure,
    },
    Text {
        conn: ConnId,
        text: String,
    },
    Closed {
        conn: ConnId,
    },
}

/// Errors of the driver handle.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DriverError {
    /// The state machine refused the call.
    #[error(transparent)]
    Signaling(#[from] SignalingError),
    /// The driver task has stopped.
    #[error("signaling driver stopped")]
    Stopped,
}

/// A cheap, cloneable handle to a running signaling driver.
#[derive(Clone)]
pub struct SignalingHandle {
    cmd: mpsc::UnboundedSender<Command>,
    next_reg: Arc<AtomicU64>,
}

impl SignalingHandle {
    /// Starts the driver task on the current tokio runtime.
    pub fn spawn(mut config: SignalingConfig) -> Self {
        // rustls needs a process-wide provider; ignore "already installed".
        let _ = rustls::crypto::ring::default_provider().install_default();
        if config.seed == 0 {
            config.seed = u64::from_le_bytes(crate::crypto::random_bytes::<8>());
        }
        config
            .wall_clock
            .get_or_insert_with(crate::wake_grid::WallClock::system);
        let (cmd, cmd_rx) = mpsc::unbounded_channel();
        tokio::spawn(run(Signaling::new(config), cmd_rx));
        Self {
            cmd,
            next_reg: Arc::new(AtomicU64::new(1)),
        }
    }

    fn command(&self, c: Command) -> Result<(), DriverError> {
        self.cmd.send(c).map_err(|_| DriverError::Stopped)
    }

    /// Events from now on (claims, state changes, relayed messages), in order, unbounded.
    pub fn subscribe(&self) -> Result<mpsc::UnboundedReceiver<SignalingEvent>, DriverError> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.command(Command::Subscribe { tx })?;
        Ok(rx)
    }

    /// Starts registering `id` with `token`; the outcome arrives as a [`SignalingEvent::Claim`].
    pub fn register(&self, id: &str, token: &str) -> Result<RegId, DriverError> {
        let reg = RegId(self.next_reg.fetch_add(1, Ordering::Relaxed));
        self.command(Command::Register {
            reg,
            id: id.into(),
            token: token.into(),
        })?;
        Ok(reg)
    }

    /// Registers `id` and waits for the server's first answer: Claimed, Taken or Error.
    /// On anything but Claimed the registration is removed again.
    pub async fn claim(&self, id: &str, token: &str) -> Result<(RegId, ClaimResult), DriverError> {
        let mut events = self.subscribe()?;
        let reg = self.register(id, token)?;
        while let Some(ev) = events.recv().await {
            if let SignalingEvent::Claim { reg: r, result, .. } = ev
                && r == reg
            {
                if result != ClaimResult::Claimed {
                    let _ = self.unregister(reg);
                }
                return Ok((reg, result));
            }
        }
        Err(DriverError::Stopped)
    }

    /// Releases a registration (graceful LEAVE).
    pub fn unregister(&self, reg: RegId) -> Result<(), DriverError> {
        self.command(Command::Unregister { reg })
    }

    /// Sends a frame through a registration's socket.
    pub async fn send(&self, reg: RegId, msg: Message) -> Result<(), DriverError> {
        let (done, rx) = oneshot::channel();
        self.command(Command::Send { reg, msg, done })?;
        Ok(rx.await.map_err(|_| DriverError::Stopped)??)
    }

    /// The platform's network path changed; debounced, and sockets are reopened only when the
    /// usable path really changed.
    pub fn network_changed(&self, path: NetworkPath) -> Result<(), DriverError> {
        self.command(Command::NetworkChanged { path })
    }

    /// The app moved to the foreground (`true`) or the background (slower heartbeats).
    pub fn set_active(&self, active: bool) -> Result<(), DriverError> {
        self.command(Command::SetActive { active })
    }

    /// The UI state of a registration.
    pub async fn state(&self, reg: RegId) -> Result<Option<SignalingState>, DriverError> {
        let (done, rx) = oneshot::channel();
        self.command(Command::State { reg, done })?;
        rx.await.map_err(|_| DriverError::Stopped)
    }

    /// Diagnostic counters.
    pub async fn stats(&self) -> Result<Stats, DriverError> {
        let (done, rx) = oneshot::channel();
        self.command(Command::Stats { done })?;
        rx.await.map_err(|_| DriverError::Stopped)
    }

    /// Closes every socket (without LEAVE, like a crash would) and stops the driver.
    pub async fn shutdown(&self) {
        let (done, rx) = oneshot::channel();
        if self.command(Command::Shutdown { done }).is_ok() {
            let _ = rx.await;
        }
    }
}

struct Driver {
    sig: Signaling,
    sockets: HashMap<ConnId, mpsc::Sender<WsMessage>>,
    subscribers: Vec<mpsc::UnboundedSender<SignalingEvent>>,
    socket_tx: mpsc::UnboundedSender<SocketEvent>,
}

async fn run(sig: Signaling, mut cmd_rx: mpsc::UnboundedReceiver<Command>) {
    let (socket_tx, mut socket_rx) = mpsc::unbounded_channel();
    let mut d = Driver {
        sig,
        sockets: HashMap::new(),
        subscribers: vec![],
        socket_tx,
    };
    loop {
        let wake = d.sig.poll_timeout();
        let sleep = async {
            match wake {
                Some(t) => tokio::time::sleep_until(tokio::time::Instant::from_std(t)).await,
                None => std::future::pending().await,
            }
        };
        // Commands first: a subscription made before a frame arrived must see that frame
        // (an unbiased select could deliver the frame to the old subscriber list first).
        tokio::select! {
            biased;
            cmd = cmd_rx.recv() => match cmd {
                Some(Command::Shutdown { done }) => {
                    d.sockets.clear();
                    let _ = done.send(());
                    return;
                }
                Some(c) => d.command(c),
                None => return,
            },
            Some(ev) = socket_rx.recv() => d.socket_event(ev),
            _ = sleep => d.sig.handle_timeout(Instant::now()),
        }
        d.flush();
    }
}

impl Driver {
    fn command(&mut self, c: Command) {
        let now = Instant::now();
        match c {
            Command::Register { reg, id, token } => {
                if let Err(e) = self.sig.register(now, reg, &id, &token) {
                    tracing::warn!(%id, error = %e, "registration refused");
                    let result = ClaimResult::Error(e.to_string());
                    self.emit(SignalingEvent::Claim { reg, id, result });
                }
            }
            Command::Unregister { reg } => {
                let _ = self.sig.unregister(reg);
            }
            Command::Send { reg, msg, done } => {
                let _ = done.send(self.sig.send(reg, &msg));
            }
            Command::NetworkChanged { path } => self.sig.network_changed(now, path),
            Command::SetActive { active } => self.sig.set_active(active),
            Command::State { reg, done } => {
                let _ = done.send(self.sig.state(reg).cloned());
            }
            Command::Stats { done } => {
                let _ = done.send(self.sig.stats());
            }
            Command::Subscribe { tx } => self.subscribers.push(tx),
            Command::Shutdown { .. } => unreachable!("handled by the loop"),
        }
    }

    fn socket_event(&mut self, ev: SocketEvent) {
        let now = Instant::now();
        match ev {
            SocketEvent::Connected { conn, tx } => {
                // A socket the machine gave up on while it was dialing is dropped (closed) here.
                if self.sig.is_current(conn) {
                    self.sockets.insert(conn, tx);
                    self.sig.handle_connected(now, conn);
                }
            }
            SocketEvent::Failed { conn, failure } => {
                self.sig.handle_connect_failed(now, conn, failure)
            }
            SocketEvent::Text { conn, text } => self.sig.handle_text(now, conn, &text),
            SocketEvent::Closed { conn } => {
                self.sockets.remove(&conn);
                self.sig.handle_closed(now, conn);
            }
        }
    }

    fn emit(&mut self, ev: SignalingEvent) {
        self.subscribers.retain(|s| s.send(ev.clone()).is_ok());
    }

    fn flush(&mut self) {
        while let Some(out) = self.sig.poll_output() {
            match out {
                Output::Connect { conn, url, .. } => {
                    let timeout = self.sig.config().open_timeout;
                    tokio::spawn(socket_task(conn, url, timeout, self.socket_tx.clone()));
                }
                Output::Transmit { conn, text } => {
                    let Some(tx) = self.sockets.get(&conn) else {
                        tracing::debug!(?conn, "frame for a socket that is gone");
                        continue;
                    };
                    if tx.try_send(WsMessage::text(text)).is_err() {
                        // Stuck or closed socket: drop it; the machine reconnects.
                        self.sockets.remove(&conn);
                        self.sig.handle_closed(Instant::now(), conn);
                    }
                }
                Output::Disconnect { conn } => {
                    self.sockets.remove(&conn);
                }
                Output::Event(ev) => self.emit(ev),
            }
        }
    }
}

fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(Some(MAX_FRAME_BYTES))
        .max_frame_size(Some(MAX_FRAME_BYTES))
}

fn failure_of(e: &tungstenite::Error) -> ConnectFailure {
    match e {
        tungstenite::Error::Http(resp) if resp.status().as_u16() == 429 => {
            ConnectFailure::Throttled
        }
        other => ConnectFailure::Other(other.to_string()),
    }
}

/// One WebSocket: dial, then pump frames both ways until either side ends it. Dropping the
/// sender in the driver's socket map closes the socket.
async fn socket_task(
    conn: ConnId,
    url: String,
    timeout: Duration,
    events: mpsc::UnboundedSender<SocketEvent>,
) {
    let dial = tokio_tungstenite::connect_async_with_config(url.as_str(), Some(ws_config()), true);
    let ws = match tokio::time::timeout(timeout, dial).await {
        Ok(Ok((ws, _))) => ws,
        Ok(Err(e)) => {
            let _ = events.send(SocketEvent::Failed {
                conn,
                failure: failure_of(&e),
            });
            return;
        }
        Err(_) => {
            let failure = ConnectFailure::Other("timed out".into());
            let _ = events.send(SocketEvent::Failed { conn, failure });
            return;
        }
    };
    let (tx, mut rx) = mpsc::channel(SOCKET_QUEUE);
    if events.send(SocketEvent::Connected { conn, tx }).is_err() {
        return;
    }
    let (mut sink, mut stream) = ws.split();
    loop {
        tokio::select! {
            out = rx.recv() => match out {
                Some(m) => if sink.send(m).await.is_err() { break },
                None => {
                    let _ = sink.close().await;
                    return; // closed by the driver: no Closed event
                }
            },
            inc = stream.next() => match inc {
                Some(Ok(WsMessage::Text(t))) => {
                    let _ = events.send(SocketEvent::Text { conn, text: t.as_str().to_owned() });
                }
                Some(Ok(WsMessage::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {} // ping/pong handled by tungstenite; binary is not PeerJS
            },
        }
    }
    let _ = events.send(SocketEvent::Closed { conn });
}
