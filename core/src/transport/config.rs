//! Transport settings: ICE servers, relay policy, candidate scope, timeouts, back-pressure, and
//! the bounds on incoming connections from strangers (pending caps, deadline, pre-auth limit).

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
    /// Most incoming connections pending at once: from their OFFER until their channel is
    /// open (with `require_auth`, until [`authenticated`]). Further OFFERs are dropped before
    /// any WebRTC work is done.
    ///
    /// [`authenticated`]: super::DataConnection::authenticated
    pub max_pending: usize,
    /// Most pending incoming connections from one remote PeerJS ID.
    pub max_pending_per_peer: usize,
    /// Deadline from an incoming OFFER until the connection is open (with `require_auth`,
    /// authenticated); a connection still pending then is closed. With `require_auth` it
    /// should cover the dialer's `connect_timeout` plus the handshake the layer above runs
    /// after the channel opens: a dialer whose handshake finished must not see the accepting
    /// side give up on it (under heavy loss the last handshake message can take seconds of
    /// SCTP retransmissions).
    pub accept_timeout: Duration,
    /// Connections stay pending after they open until the layer above calls
    /// [`authenticated`]; until then each accepts messages of at most
    /// `pre_auth_max_message` bytes and is read one message per `recv()`.
    ///
    /// [`authenticated`]: super::DataConnection::authenticated
    pub require_auth: bool,
    /// Largest frame and reassembled message before [`authenticated`] (`require_auth` only).
    ///
    /// [`authenticated`]: super::DataConnection::authenticated
    pub pre_auth_max_message: usize,
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
            max_pending: 64,
            max_pending_per_peer: 4,
            accept_timeout: Duration::from_secs(10),
            require_auth: false,
            pre_auth_max_message: 4096,
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
