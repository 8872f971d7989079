//! Transport settings: ICE servers, relay policy, candidate scope, timeouts, back-pressure.

use std::time::Duration;

/// A STUN or TURN server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IceServer {
    /// `stun:host:port` or `turn:host:port?transport=udp` URLs.
    pub urls: Vec<String>,
    /// TURN user name (empty for STUN).
    pub username: String,
    /// TURN credential (empty for STUN).
    pub credential: String,
}

impl IceServer {
    /// A STUN server without credentials.
    pub fn stun(url: &str) -> Self {
        Self {
            urls: vec![url.into()],
            username: String::new(),
            credential: String::new(),
        }
    }

    /// A TURN server with long-term credentials.
    pub fn turn(url: &str, username: &str, credential: &str) -> Self {
        Self {
            urls: vec![url.into()],
            username: username.into(),
            credential: credential.into(),
        }
    }
}

/// How data connections are made.
#[derive(Debug, Clone)]
pub struct TransportConfig {
    /// STUN/TURN servers (PeerJS's default is Google's public STUN).
    pub ice_servers: Vec<IceServer>,
    /// Use only TURN-relayed candidates.
    pub relay_only: bool,
    /// Gather candidates on 127.0.0.1 only (tests and the local demo). Otherwise every
    /// non-loopback interface is used. mDNS candidates are always off.
    pub loopback_only: bool,
    /// How long `connect()` may take until the channel is open.
    pub connect_timeout: Duration,
    /// Bytes a data channel may have queued before `send().await` waits (back-pressure).
    pub send_buffer_limit: usize,
    /// Received messages buffered per connection before reading from the peer pauses.
    pub inbound_queue: usize,
}

impl Default for TransportConfig {
    fn default() -> Self {
        Self {
            ice_servers: vec![IceServer::stun("stun:stun.l.google.com:19302")],
            relay_only: false,
            loopback_only: false,
            connect_timeout: Duration::from_secs(10),
            send_buffer_limit: 64 * 1024,
            inbound_queue: 256,
        }
    }
}

impl TransportConfig {
    /// Loopback only, no ICE servers: for tests and the local demo.
    pub fn loopback() -> Self {
        Self {
            ice_servers: vec![],
            loopback_only: true,
            ..Self::default()
        }
    }
}
