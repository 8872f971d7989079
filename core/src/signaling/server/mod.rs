//! An embedded PeerJS-compatible signaling server, interchangeable with the official `peer`
//! 1.0.x server for `peerjs` 1.5.5 clients and our own.
//!
//! The protocol decisions live in the sans-IO [`registry`]; [`guard`] rate-limits and counts
//! bad frames per socket; [`conn`] drives one WebSocket and [`http`] holds the routes. Beyond
//! the reference it bounds frames, queues and outbound buffers, rate-limits clients, answers
//! bad frames with ERROR, sends OPEN again when a socket re-attaches with the same token, caps
//! the WebSockets per client address ([`per_ip`]; HTTP 429 beyond the cap) and compares tokens
//! in constant time.

mod conn;
mod guard;
mod http;
mod per_ip;
mod registry;
#[cfg(test)]
mod tests;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use per_ip::PerIp;
use registry::{Limits, Registry};

/// Messages queued per absent id.
const QUEUE_LEN: usize = 64;
/// Absent ids that may have a queue at once.
const QUEUED_IDS: usize = 4096;
/// Bytes of queued frames, all ids together.
const QUEUED_BYTES: usize = 32 << 20;
/// One address bucket may have queued at most this fraction of the frames and bytes (one
/// frame per absent id's share, 512 frames, 4 MiB): frames wait at most `expire_timeout`, so a
/// carrier-grade NAT full of phones stays far below it.
const ORIGIN_SHARE: usize = 8;
/// Default of [`ServerConfig::max_conns_per_ip`]. Phones behind one carrier-grade NAT share an
/// address and a node keeps several registrations (its persistent ID, plus a discovery ID and
/// maybe a router level per namespace; up to five namespaces in stadium mode), so the cap is
/// far above one device's need; a single address still cannot take more than a small share of
/// the default `concurrent_limit`.
pub const DEFAULT_MAX_CONNS_PER_IP: usize = 256;
/// Shortest pause between housekeeping passes.
const MIN_TICK: Duration = Duration::from_millis(10);
/// How long `shutdown` waits for the HTTP server and the sockets to wind down.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// Server settings; the defaults match the reference server's CLI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// Address to listen on.
    pub host: IpAddr,
    /// Port to listen on; 0 picks a free one.
    pub port: u16,
    /// Base path of all routes (normalized to start and end with `/`).
    pub path: String,
    /// API key clients must present.
    pub key: String,
    /// How long a message waits for an absent id before its sender gets EXPIRE.
    pub expire_timeout: Duration,
    /// How long a client may stay silent before it is evicted.
    pub alive_timeout: Duration,
    /// Most ids registered at once.
    pub concurrent_limit: usize,
    /// Frames per second a socket may send on average; 0 disables the limit.
    pub max_msgs_per_sec: u32,
    /// Frames a socket may send in a burst.
    pub burst: u32,
    /// Most WebSockets open at once from one address (IPv6: one /64); more get HTTP 429 at the
    /// upgrade. 0 disables the cap. Loopback is not exempt.
    pub max_conns_per_ip: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 9000,
            path: "/".into(),
            key: "peerjs".into(),
            expire_timeout: Duration::from_millis(5000),
            alive_timeout: Duration::from_millis(60_000),
            concurrent_limit: 5000,
            max_msgs_per_sec: 100,
            burst: 200,
            max_conns_per_ip: DEFAULT_MAX_CONNS_PER_IP,
        }
    }
}

/// State shared by the routes, the socket drivers and the housekeeping task.
struct Shared {
    config: ServerConfig,
    registry: Mutex<Registry>,
    next_conn: AtomicU64,
    /// Number of live socket drivers.
    live: watch::Sender<usize>,
    /// WebSockets per client address.
    per_ip: Mutex<PerIp>,
}

impl Shared {
    /// Locks the registry; a poisoned lock is still usable because no registry method
    /// leaves it inconsistent at a panic point.
    fn registry(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn next_conn_id(&self) -> u64 {
        self.next_conn.fetch_add(1, Ordering::Relaxed)
    }

    /// Counts a WebSocket from `ip` until the returned slot drops; `None` if the address is at
    /// its cap.
    fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<IpSlot> {
        let mut per_ip = self.per_ip.lock().unwrap_or_else(PoisonError::into_inner);
        per_ip.acquire(ip).then(|| IpSlot(Arc::clone(self), ip))
    }

    /// Counts a socket driver as live until the returned guard drops.
    fn track_connection(self: &Arc<Self>) -> LiveGuard {
        self.live.send_modify(|n| *n += 1);
        LiveGuard(Arc::clone(self))
    }
}

/// One WebSocket counted against its address's cap.
struct IpSlot(Arc<Shared>, IpAddr);

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut per_ip = self.0.per_ip.lock().unwrap_or_else(PoisonError::into_inner);
        per_ip.release(self.1);
    }
}

struct LiveGuard(Arc<Shared>);

impl Drop for LiveGuard {
    fn drop(&mut self) {
        self.0.live.send_modify(|n| *n -= 1);
    }
}

/// A running server; dropping it stops listening and closes all sockets, [`Self::shutdown`]
/// does so gracefully.
pub struct EmbeddedServer {
    addr: SocketAddr,
    base: String,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    serve: Option<JoinHandle<()>>,
    housekeeper: JoinHandle<()>,
}

impl EmbeddedServer {
    /// Binds `config.host:config.port` and starts serving. Fails on bind errors or an
    /// unusable `config.path`.
    pub async fn start(config: ServerConfig) -> std::io::Result<EmbeddedServer> {
        let base = http::normalize_path(&config.path).ok_or_else(|| {
            let msg = format!("invalid server path {:?}", config.path);
            std::io::Error::new(std::io::ErrorKind::InvalidInput, msg)
        })?;
        let listener = TcpListener::bind((config.host, config.port)).await?;
        let addr = listener.local_addr()?;
        let limits = Limits {
            key: config.key.clone(),
            expire_timeout: config.expire_timeout,
            alive_timeout: config.alive_timeout,
            concurrent_limit: config.concurrent_limit,
            queue_len: QUEUE_LEN,
            queued_ids: QUEUED_IDS,
            queued_bytes: QUEUED_BYTES,
            // A server without a per-address cap (a test or a bench) has no share either.
            origin_frames: if config.max_conns_per_ip == 0 {
                0
            } else {
                QUEUED_IDS / ORIGIN_SHARE
            },
            origin_bytes: QUEUED_BYTES / ORIGIN_SHARE,
        };
        let per_ip = Mutex::new(PerIp::new(config.max_conns_per_ip));
        let shared = Arc::new(Shared {
            config,
            per_ip,
            registry: Mutex::new(Registry::new(limits)),
            next_conn: AtomicU64::new(0),
            live: watch::Sender::new(0),
        });
        let app = http::router(&base, Arc::clone(&shared));
        let (stop, stopped) = oneshot::channel::<()>();
        let serve = tokio::spawn(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            // Signaling frames are small and latency-bound: without TCP_NODELAY a second small
            // write (a CANDIDATE right after an ANSWER) waits ~40 ms for a delayed ACK.
            let listener = listener.tap_io(|tcp| {
                if let Err(e) = tcp.set_nodelay(true) {
                    tracing::debug!("cannot set TCP_NODELAY: {e}");
                }
            });
            let app = app.into_make_service_with_connect_info::<SocketAddr>();
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
            {
                tracing::warn!("signaling server stopped: {e}");
            }
        });
        let housekeeper = tokio::spawn(housekeep(Arc::clone(&shared)));
        tracing::info!("signaling server listening on {addr}{base}");
        Ok(Self {
            addr,
            base,
            shared,
            stop: Some(stop),
            serve: Some(serve),
            housekeeper,
        })
    }

    /// The bound address (with the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL clients connect to, e.g. `ws://127.0.0.1:9000/`.
    pub fn url(&self) -> String {
        format!("ws://{}{}", self.addr, self.base)
    }

    /// Number of registered ids.
    pub fn client_count(&self) -> usize {
        self.shared.registry().len()
    }

    /// Stops listening, closes every socket and waits (briefly) for them to finish.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.shared.registry().close_all();
        if let Some(serve) = self.serve.take() {
            let abort = serve.abort_handle();
            if tokio::time::timeout(SHUTDOWN_GRACE, serve).await.is_err() {
                abort.abort();
            }
        }
        let mut live = self.shared.live.subscribe();
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, live.wait_for(|n| *n == 0)).await;
    }
}

impl Drop for EmbeddedServer {
    fn drop(&mut self) {
        self.housekeeper.abort();
        if let Some(serve) = &self.serve {
            serve.abort();
        }
        self.shared.registry().close_all();
    }
}

/// Expires queues and evicts silent clients, sleeping exactly until the next deadline.
async fn housekeep(shared: Arc<Shared>) {
    loop {
        let next = shared.registry().tick(Instant::now());
        let next = next.max(Instant::now() + MIN_TICK);
        tokio::time::sleep_until(next.into()).await;
    }
}
