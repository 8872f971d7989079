//! Where a node signals and how: the server's address ([`ServerUrl`]) and the timings and
//! limits of the signaling layer ([`SignalingConfig`]).

use std::time::Duration;

use super::backoff::Backoff;
use super::limiter::LimiterConfig;
use super::protocol::PEERJS_VERSION;
use crate::wake_grid::WallClock;

/// A signaling server address: `{ws|wss}://HOST:PORT{path}` plus the API key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServerUrl {
    /// `wss://` (TLS) rather than `ws://`.
    pub secure: bool,
    /// Host name or IP literal.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Mount path, always starting and ending with `/`.
    pub path: String,
    /// PeerJS API key.
    pub key: String,
}

/// A server URL that could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid signaling server URL {url:?}: {reason}")]
pub struct BadServerUrl {
    url: String,
    reason: String,
}

impl ServerUrl {
    /// The public PeerJS cloud: `wss://0.peerjs.com:443/`, key `peerjs`.
    pub fn public_cloud() -> Self {
        Self {
            secure: true,
            host: "0.peerjs.com".into(),
            port: 443,
            path: "/".into(),
            key: "peerjs".into(),
        }
    }

    /// Parses `ws://host:port/path?key=K` (also `wss://`, `http://`, `https://`); the key
    /// defaults to `peerjs`, the port to 80/443.
    pub fn parse(url: &str) -> Result<Self, BadServerUrl> {
        let bad = |reason: &str| BadServerUrl {
            url: url.into(),
            reason: reason.into(),
        };
        let parsed = url::Url::parse(url).map_err(|e| bad(&e.to_string()))?;
        let secure = match parsed.scheme() {
            "ws" | "http" => false,
            "wss" | "https" => true,
            _ => return Err(bad("scheme must be ws, wss, http or https")),
        };
        let host = parsed.host_str().ok_or_else(|| bad("no host"))?.to_owned();
        let port = parsed
            .port_or_known_default()
            .ok_or_else(|| bad("no port"))?;
        let mut path = parsed.path().to_owned();
        if !path.ends_with('/') {
            path.push('/');
        }
        let key = parsed
            .query_pairs()
            .find(|(k, _)| k == "key")
            .map(|(_, v)| v.into_owned())
            .unwrap_or_else(|| "peerjs".into());
        Ok(Self {
            secure,
            host,
            port,
            path,
            key,
        })
    }

    /// The WebSocket URL that registers `id` with `token`, exactly as peerjs 1.5.5 builds it.
    pub fn socket_url(&self, id: &str, token: &str) -> String {
        let scheme = if self.secure { "wss" } else { "ws" };
        let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        format!(
            "{scheme}://{}:{}{}peerjs?key={}&id={}&token={}&version={PEERJS_VERSION}",
            self.host,
            self.port,
            self.path,
            enc(&self.key),
            enc(id),
            enc(token)
        )
    }

    /// Canonical name of the server, used as the key for stored tokens.
    pub fn label(&self) -> String {
        let scheme = if self.secure { "wss" } else { "ws" };
        format!("{scheme}://{}:{}{}", self.host, self.port, self.path)
    }
}

/// Timings and limits of the signaling layer.
#[derive(Debug, Clone)]
pub struct SignalingConfig {
    /// The server to register with.
    pub server: ServerUrl,
    /// HEARTBEAT period while registered (PeerJS: 5 s).
    pub heartbeat: Duration,
    /// The same while the app is in the background: 10 s, on the grid of the node's other
    /// background work (servers drop a silent client after 60 s by default).
    pub background_heartbeat: Duration,
    /// How long a registration may take from dialing to OPEN before it counts as failed.
    pub open_timeout: Duration,
    /// The stock `peer` server answers a re-attach (same ID and token while its old socket is
    /// still registered) with silence instead of OPEN. A refusal always comes at once, so an
    /// upgraded socket that stays quiet this long counts as re-attached.
    pub reattach_grace: Duration,
    /// Reconnect backoff.
    pub backoff: Backoff,
    /// How long `network_changed` waits for the network to settle before reconnecting.
    pub debounce: Duration,
    /// Node-wide registration limiter.
    pub limiter: LimiterConfig,
    /// Seed for backoff jitter (tests use fixed seeds; the driver draws one at random).
    pub seed: u64,
    /// Puts heartbeats on the wall-clock grid ([`crate::wake_grid`]), where the node's other
    /// periodic work wakes too; the driver sets the system clock when none is given.
    pub wall_clock: Option<WallClock>,
}

impl SignalingConfig {
    /// Defaults for `server`: 5 s heartbeat (10 s in the background), 10 s open timeout, 1–30 s backoff, 300 ms debounce.
    pub fn new(server: ServerUrl) -> Self {
        Self {
            server,
            heartbeat: Duration::from_secs(5),
            background_heartbeat: Duration::from_secs(10),
            open_timeout: Duration::from_secs(10),
            reattach_grace: Duration::from_secs(1),
            backoff: Backoff::default(),
            debounce: Duration::from_millis(300),
            limiter: LimiterConfig::default(),
            seed: 0,
            wall_clock: None,
        }
    }
}
