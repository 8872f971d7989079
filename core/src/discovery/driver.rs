//! The tokio driver of a namespace: binds a [`Namespace`] engine to the real signaling
//! registrations and WebRTC data connections. One task per namespace; it owns the engine and
//! does what the engine's actions say, feeding back what happened as inputs.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::namespace::{Action, ConnId, Input, Namespace, NsConfig, NsEvent, PeerInfo, RoleKind};
use super::presence::{GeoStamp, VerifyCache};
use crate::crypto::random_hex;
use crate::identity::Identity;
use crate::signaling::client::{ClaimResult, RegId, SignalingEvent};
use crate::signaling::driver::SignalingHandle;
use crate::signaling::protocol::{Message, MessageType};
use crate::transport::{
    ConnectOptions, DataConnection, DataSender, Payload, Transport, TransportConfig, TransportError,
};

/// Events from connection tasks waiting for the namespace task; a full queue holds the
/// readers back (and so, through SCTP flow control, a peer that sends faster than we verify).
const EVENT_QUEUE: usize = 256;
/// Messages queued for one connection; a peer that lets it fill up is not reading and is
/// dropped.
const WRITE_QUEUE: usize = 256;

/// What a namespace task needs.
#[derive(Clone)]
pub struct NsSetup {
    /// The namespace prefix (`peerns2-ns-{slug}`, `peerns2-geo-{cell}`, ...).
    pub prefix: String,
    /// The node's signaling driver.
    pub signaling: SignalingHandle,
    /// The node's identity (signs presence records).
    pub identity: Arc<Identity>,
    /// Display name.
    pub name: String,
    /// Position (geo namespaces).
    pub geo: Option<GeoStamp>,
    /// Opaque note carried in our record (empty when unused).
    pub note: Vec<u8>,
    /// Data-connection settings.
    pub transport: TransportConfig,
    /// Engine timings and limits.
    pub config: NsConfig,
    /// Verified-signature cache shared by the node's namespaces.
    pub cache: Arc<VerifyCache>,
    /// Whether the app is in the foreground (heartbeat pace).
    pub active: bool,
}

/// A running namespace. Dropping it aborts the task; [`NamespaceHandle::leave`] says goodbye.
pub struct NamespaceHandle {
    prefix: String,
    cmd: mpsc::UnboundedSender<Cmd>,
    task: JoinHandle<()>,
}

enum Cmd {
    Presence(String, Option<GeoStamp>),
    Note(Vec<u8>),
    Active(bool),
    Peers(oneshot::Sender<(RoleKind, Vec<PeerInfo>)>),
    Leave(oneshot::Sender<()>),
}

enum Ev {
    Incoming(String, DataConnection),
    ConnectResult(ConnId, Result<DataConnection, TransportError>),
    Data(ConnId, Vec<u8>),
    Closed(ConnId),
}

impl NamespaceHandle {
    /// Starts the namespace task on the current runtime; returns it with its events from the
    /// very start (a subscription made after the spawn missed a role change that came first
    /// when the spawning thread was descheduled in between, seen under CPU load).
    pub fn spawn(
        setup: NsSetup,
    ) -> Result<(Self, mpsc::UnboundedReceiver<NsEvent>), crate::signaling::driver::DriverError>
    {
        let sig_events = setup.signaling.subscribe()?;
        let (cmd, cmd_rx) = mpsc::unbounded_channel();
        let (events, events_rx) = mpsc::unbounded_channel();
        let prefix = setup.prefix.clone();
        let task = tokio::spawn(run(setup, cmd_rx, sig_events, events));
        Ok((Self { prefix, cmd, task }, events_rx))
    }

    /// The namespace prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Changes the name or position in our signed record.
    pub fn set_presence(&self, name: &str, geo: Option<GeoStamp>) {
        let _ = self.cmd.send(Cmd::Presence(name.to_owned(), geo));
    }

    /// Changes the note in our signed record (at most
    /// [`MAX_NOTE_BYTES`](super::presence::MAX_NOTE_BYTES), longer is cut).
    pub fn set_note(&self, note: Vec<u8>) {
        let _ = self.cmd.send(Cmd::Note(note));
    }

    /// The app moved to the foreground (`true`) or the background.
    pub fn set_active(&self, active: bool) {
        let _ = self.cmd.send(Cmd::Active(active));
    }

    /// Our role and the peers we see (the request is sent at once; the future does not
    /// borrow the handle).
    pub fn peers(
        &self,
    ) -> impl Future<Output = Option<(RoleKind, Vec<PeerInfo>)>> + Send + 'static {
        let (tx, rx) = oneshot::channel();
        let sent = self.cmd.send(Cmd::Peers(tx)).is_ok();
        async move { if sent { rx.await.ok() } else { None } }
    }

    /// Leaves gracefully: goodbyes sent, IDs released, connections closed.
    pub async fn leave(self) {
        let (tx, rx) = oneshot::channel();
        if self.cmd.send(Cmd::Leave(tx)).is_ok() {
            let _ = rx.await;
        }
    }
}

impl Drop for NamespaceHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Reg {
    reg: RegId,
    /// Started with the registration, so an offer the server delivers right after OPEN (one
    /// it held for this ID) finds its transport already listening.
    transport: Transport,
    /// The server confirmed the claim.
    open: bool,
}

struct Driver {
    setup: NsSetup,
    ns: Namespace,
    regs: HashMap<String, Reg>,
    by_reg: HashMap<RegId, String>,
    /// Transports of released IDs: connections that came in through them stay open (a
    /// router that changes level keeps its members).
    retired: Vec<Transport>,
    /// Writers of open connections (a queue per connection keeps sends ordered; `None`
    /// closes the connection after what was queued before it).
    writers: HashMap<ConnId, mpsc::Sender<Option<Vec<u8>>>>,
    /// Connections the engine closed while they were still connecting.
    cancelled: Vec<ConnId>,
    next_incoming: u64,
    ev_tx: mpsc::Sender<Ev>,
    /// The events' receiver (gone once the owner stopped listening).
    events: mpsc::UnboundedSender<NsEvent>,
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

async fn run(
    setup: NsSetup,
    mut cmd_rx: mpsc::UnboundedReceiver<Cmd>,
    mut sig_events: mpsc::UnboundedReceiver<SignalingEvent>,
    events: mpsc::UnboundedSender<NsEvent>,
) {
    let now = Instant::now();
    let seed = u64::from_le_bytes(crate::crypto::random_bytes::<8>());
    let mut ns = Namespace::new(
        setup.config.clone(),
        &setup.prefix,
        setup.identity.clone(),
        &setup.name,
        setup.cache.clone(),
        seed,
        now,
        unix_ms(),
    );
    if setup.geo.is_some() {
        ns.set_presence(&setup.name, setup.geo, now);
    }
    ns.set_note(setup.note.clone());
    ns.start(now);
    ns.set_active(setup.active, now);
    let (ev_tx, mut ev_rx) = mpsc::channel(EVENT_QUEUE);
    let mut d = Driver {
        setup,
        ns,
        regs: HashMap::new(),
        by_reg: HashMap::new(),
        retired: vec![],
        writers: HashMap::new(),
        cancelled: vec![],
        next_incoming: 0,
        ev_tx,
        events,
    };
    d.pump();
    loop {
        let deadline = d.ns.poll_timeout();
        let sleep = async {
            match deadline {
                Some(t) => tokio::time::sleep_until(t.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            cmd = cmd_rx.recv() => match cmd {
                Some(Cmd::Presence(name, geo)) => d.ns.set_presence(&name, geo, Instant::now()),
                Some(Cmd::Note(mut note)) => {
                    note.truncate(super::presence::MAX_NOTE_BYTES);
                    d.ns.update_note(note, Instant::now());
                }
                Some(Cmd::Active(active)) => d.ns.set_active(active, Instant::now()),
                Some(Cmd::Peers(tx)) => {
                    let _ = tx.send((d.ns.role(), d.ns.peers()));
                }
                Some(Cmd::Leave(done)) => {
                    d.ns.stop(Instant::now());
                    // Free our IDs at the server before saying goodbye, so the member that
                    // takes over can claim the router ID at once.
                    let (releases, rest): (Vec<Action>, Vec<Action>) = d
                        .ns
                        .drain_actions()
                        .into_iter()
                        .partition(|a| matches!(a, Action::Release { .. }));
                    for a in releases {
                        d.act(a);
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(30)).await;
                    for a in rest {
                        d.act(a);
                    }
                    d.shutdown().await;
                    let _ = done.send(());
                    return;
                }
                None => {
                    d.shutdown().await;
                    return;
                }
            },
            Some(ev) = sig_events.recv() => d.on_signaling(ev),
            Some(ev) = ev_rx.recv() => d.on_event(ev),
            () = sleep => d.ns.handle_timeout(Instant::now()),
        }
        d.pump();
    }
}

impl Driver {
    fn input(&mut self, input: Input) {
        self.ns.handle(input, Instant::now());
    }

    fn on_signaling(&mut self, ev: SignalingEvent) {
        if let SignalingEvent::Message { reg, msg } = &ev
            && self.by_reg.contains_key(reg)
            && is_knock(msg)
            && let Some(from) = msg.src.clone()
        {
            self.input(Input::Knock { from });
            return;
        }
        let SignalingEvent::Claim { reg, id, result } = ev else {
            return;
        };
        if self.by_reg.get(&reg) != Some(&id) {
            return;
        }
        let open = self.regs.get(&id).is_some_and(|r| r.open);
        match result {
            ClaimResult::Claimed if !open => {
                if let Some(r) = self.regs.get_mut(&id) {
                    r.open = true;
                }
                self.input(Input::Claimed { id });
            }
            ClaimResult::Claimed => {}
            ClaimResult::Taken | ClaimResult::Error(_) => {
                let taken = result == ClaimResult::Taken;
                self.forget_reg(&id);
                if open {
                    self.input(Input::Lost { id });
                } else {
                    self.input(Input::ClaimFailed { id, taken });
                }
            }
        }
    }

    /// Unregisters `id`. Connections that came in through it stay open until the namespace
    /// stops (a router that changes level keeps its members); a registration that never
    /// opened has none, so its transport stops now.
    fn forget_reg(&mut self, id: &str) {
        if let Some(r) = self.regs.remove(id) {
            self.by_reg.remove(&r.reg);
            let _ = self.setup.signaling.unregister(r.reg);
            if r.open {
                self.retired.push(r.transport);
            } else {
                tokio::spawn(async move { r.transport.shutdown().await });
            }
        }
    }

    /// Registers `id` at the signaling server with its transport listening from the start.
    fn claim(&mut self, id: String) {
        let started = self
            .setup
            .signaling
            .register(&id, &random_hex(16))
            .map_err(|e| e.to_string())
            .and_then(|reg| {
                Transport::start(
                    self.setup.signaling.clone(),
                    reg,
                    id.clone(),
                    self.setup.transport.clone(),
                )
                .map(|t| (reg, t))
                .map_err(|e| {
                    let _ = self.setup.signaling.unregister(reg);
                    e.to_string()
                })
            });
        match started {
            Ok((reg, (transport, mut incoming))) => {
                let tx = self.ev_tx.clone();
                let local = id.clone();
                tokio::spawn(async move {
                    while let Some(conn) = incoming.recv().await {
                        if tx.send(Ev::Incoming(local.clone(), conn)).await.is_err() {
                            return;
                        }
                    }
                });
                self.by_reg.insert(reg, id.clone());
                self.regs.insert(
                    id,
                    Reg {
                        reg,
                        transport,
                        open: false,
                    },
                );
            }
            Err(e) => {
                tracing::debug!(%id, error = %e, "could not register");
                self.input(Input::ClaimFailed { id, taken: false });
            }
        }
    }

    fn on_event(&mut self, ev: Ev) {
        match ev {
            Ev::Incoming(local, conn) => {
                let id = ConnId::incoming(self.next_incoming);
                self.next_incoming += 1;
                let remote = conn.peer().to_owned();
                self.adopt(id, conn);
                self.input(Input::Incoming {
                    conn: id,
                    local,
                    remote,
                });
            }
            Ev::ConnectResult(id, result) => {
                let cancelled = self.cancelled.iter().position(|c| *c == id);
                match (result, cancelled) {
                    (Ok(conn), Some(i)) => {
                        self.cancelled.remove(i);
                        tokio::spawn(async move { conn.close().await });
                    }
                    (Err(_), Some(i)) => {
                        self.cancelled.remove(i);
                    }
                    (Ok(conn), None) => {
                        self.adopt(id, conn);
                        self.input(Input::Connected { conn: id });
                    }
                    (Err(e), None) => {
                        let unavailable = matches!(e, TransportError::PeerUnavailable(_));
                        self.input(Input::ConnectFailed {
                            conn: id,
                            unavailable,
                        });
                    }
                }
            }
            Ev::Data(id, bytes) => {
                if self.writers.contains_key(&id) {
                    self.input(Input::Data { conn: id, bytes });
                }
            }
            Ev::Closed(id) => {
                if self.writers.remove(&id).is_some() {
                    self.input(Input::Closed { conn: id });
                }
            }
        }
    }

    /// Starts the reader and writer tasks of an open connection.
    fn adopt(&mut self, id: ConnId, mut conn: DataConnection) {
        let writer: DataSender = conn.sender();
        let (tx, mut rx) = mpsc::channel::<Option<Vec<u8>>>(WRITE_QUEUE);
        tokio::spawn(async move {
            while let Some(Some(bytes)) = rx.recv().await {
                if writer.send(&Payload::Bytes(bytes)).await.is_err() {
                    return;
                }
            }
            writer.close().await;
        });
        let events = self.ev_tx.clone();
        tokio::spawn(async move {
            while let Some(msg) = conn.recv().await {
                let bytes = match msg {
                    Ok(Payload::Bytes(b)) => b,
                    // Namespace messages are binary; anything else breaks the protocol.
                    Ok(Payload::Json(_)) | Err(_) => vec![0xff],
                };
                if events.send(Ev::Data(id, bytes)).await.is_err() {
                    return;
                }
            }
            let _ = events.send(Ev::Closed(id)).await;
        });
        self.writers.insert(id, tx);
    }

    fn pump(&mut self) {
        loop {
            let actions = self.ns.drain_actions();
            if actions.is_empty() {
                return;
            }
            for action in actions {
                self.act(action);
            }
        }
    }

    fn act(&mut self, action: Action) {
        {
            match action {
                Action::Claim { id } => {
                    if !self.regs.contains_key(&id) {
                        self.claim(id);
                    }
                }
                Action::Release { id } => self.forget_reg(&id),
                Action::Connect { conn, from, to } => {
                    let transport = self
                        .regs
                        .get(&from)
                        .filter(|r| r.open)
                        .map(|r| r.transport.clone());
                    let tx = self.ev_tx.clone();
                    tokio::spawn(async move {
                        let result = match transport {
                            Some(t) => t.connect(&to, ConnectOptions::native()).await,
                            None => Err(TransportError::Closed),
                        };
                        let _ = tx.send(Ev::ConnectResult(conn, result)).await;
                    });
                }
                Action::Knock { from, to } => {
                    if let Some(reg) = self.regs.get(&from).filter(|r| r.open).map(|r| r.reg) {
                        let signaling = self.setup.signaling.clone();
                        let msg = Message::to(MessageType::Candidate, to, Some(knock_payload()));
                        tokio::spawn(async move {
                            if let Err(e) = signaling.send(reg, msg).await {
                                tracing::debug!(error = %e, "could not knock");
                            }
                        });
                    }
                }
                Action::Send { conn, bytes } => {
                    let full = self
                        .writers
                        .get(&conn)
                        .is_some_and(|tx| tx.try_send(Some(bytes)).is_err());
                    if full {
                        // The peer does not read what we send: drop it (the writer ends once
                        // its queue is sent) and tell the engine.
                        tracing::debug!(ns = %self.setup.prefix, ?conn, "dropping a peer that does not read");
                        self.writers.remove(&conn);
                        self.input(Input::Closed { conn });
                    }
                }
                Action::Close { conn } => match self.writers.remove(&conn) {
                    // Closes after what was queued before (a goodbye); dropping the sender
                    // does the same when the queue is full.
                    Some(tx) => {
                        let _ = tx.try_send(None);
                    }
                    None => self.cancelled.push(conn),
                },
                Action::Event(ev) => {
                    let _ = self.events.send(ev);
                }
            }
        }
    }

    async fn shutdown(&mut self) {
        // Let queued goodbyes go out before the transports close their connections.
        for (_, tx) in self.writers.drain() {
            let _ = tx.try_send(None);
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let ids: Vec<String> = self.regs.keys().cloned().collect();
        for id in ids {
            self.forget_reg(&id);
        }
        for t in self.retired.drain(..) {
            t.shutdown().await;
        }
    }
}

/// Connection IDs of knocks ([`Action::Knock`]) start with this: a knock is a CANDIDATE frame
/// (a type every PeerJS server relays) for a connection that does not exist, so a transport
/// that is not looking for knocks ignores it like any late candidate.
const KNOCK_PREFIX: &str = "knock_";

fn knock_payload() -> serde_json::Value {
    serde_json::json!({
        "type": "data",
        "connectionId": format!("{KNOCK_PREFIX}{}", random_hex(8)),
        "candidate": {"candidate": "", "sdpMid": "0", "sdpMLineIndex": 0},
    })
}

fn is_knock(msg: &Message) -> bool {
    msg.kind == MessageType::Candidate
        && msg
            .payload
            .as_ref()
            .and_then(|p| p.get("connectionId"))
            .and_then(serde_json::Value::as_str)
            .is_some_and(|c| c.starts_with(KNOCK_PREFIX))
}
