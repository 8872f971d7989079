//! Building a webrtc-rs peer connection with our settings, and its event handler. The handler
//! holds only a channel sender: holding a data channel or the connection itself would make a
//! reference cycle that webrtc-rs 0.21 never frees.

use std::sync::Arc;
use std::time::Duration;

use rtc::ice::mdns::MulticastDnsMode;
use tokio::sync::mpsc::UnboundedSender;
use webrtc::data_channel::DataChannel;
use webrtc::media_stream::track_remote::TrackRemote;
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCConfigurationBuilder,
    RTCIceCandidateInit, RTCIceServer, RTCIceTransportPolicy, RTCPeerConnectionIceEvent,
    RTCPeerConnectionState, SettingEngineBuilder,
};

use super::config::TransportConfig;
use super::media_engine::MediaStack;

/// Something a peer connection reported, tagged with its connection id.
pub struct PcEvent {
    /// The connection id given to [`new_peer_connection`].
    pub cid: String,
    /// What happened.
    pub kind: PcEventKind,
}

pub enum PcEventKind {
    /// A local ICE candidate to trickle to the peer.
    Candidate(RTCIceCandidateInit),
    /// The peer opened a data channel.
    DataChannel(Arc<dyn DataChannel>),
    /// The connection state changed.
    State(RTCPeerConnectionState),
    /// The peer sends a media track (media connections only).
    Track(Arc<dyn TrackRemote>),
}

struct Handler {
    cid: String,
    events: UnboundedSender<PcEvent>,
}

impl Handler {
    fn emit(&self, kind: PcEventKind) {
        let _ = self.events.send(PcEvent {
            cid: self.cid.clone(),
            kind,
        });
    }
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_candidate(&self, ev: RTCPeerConnectionIceEvent) {
        match ev.candidate.to_json() {
            Ok(c) => self.emit(PcEventKind::Candidate(c)),
            Err(e) => tracing::debug!(error = %e, "unserializable local candidate"),
        }
    }

    async fn on_data_channel(&self, dc: Arc<dyn DataChannel>) {
        self.emit(PcEventKind::DataChannel(dc));
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        self.emit(PcEventKind::State(state));
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        self.emit(PcEventKind::Track(track));
    }
}

/// ICE keepalive (consent check) interval between two PeerNS nodes; a browser's connections
/// keep webrtc-rs's 2 s. Each check wakes a phone, and an idle node holds many links.
pub const NATIVE_KEEPALIVE: Duration = Duration::from_secs(10);
/// Silence after which a native connection counts as disconnected (ICE), and the further
/// silence after which it fails and closes: 30 s in all, as webrtc-rs's defaults (5 + 25 s).
const NATIVE_DISCONNECTED: Duration = Duration::from_secs(25);
const NATIVE_FAILED: Duration = Duration::from_secs(5);

/// A new peer connection with our settings for connection `cid`, reporting to `events`; with
/// `media`, its codecs and interceptors (media connections), else none (data connections);
/// `native`: to another PeerNS node (longer keepalives, [`NATIVE_KEEPALIVE`]).
pub async fn new_peer_connection(
    config: &TransportConfig,
    cid: &str,
    events: UnboundedSender<PcEvent>,
    media: Option<MediaStack>,
    native: bool,
) -> webrtc::error::Result<Arc<dyn PeerConnection>> {
    let relay_wait = if config.relay_only {
        Duration::ZERO
    } else {
        Duration::from_millis(500)
    };
    let settings = SettingEngineBuilder::new()
        .with_multicast_dns_mode(MulticastDnsMode::Disabled)
        // The fallback tick for ICE checks (default 200 ms); our patched driver is event-driven,
        // this only bounds the rare case it is not. 250 attempts give a pair 5 s to answer
        // (the default budget is 7 × 200 ms), so a loaded phone or CI box does not fail ICE.
        .with_ice_connection_attempts(Some(Duration::from_millis(20)), Some(250))
        // A trickle race often makes the peer's first check peer-reflexive; browsers in a
        // loopback-only namespace always look so. The default 1 s wait would be paid in full.
        .with_prflx_acceptance_min_wait(Some(Duration::ZERO))
        .with_relay_acceptance_min_wait(Some(relay_wait));
    let settings = if native {
        settings.with_ice_timeouts(
            Some(NATIVE_DISCONNECTED),
            Some(NATIVE_FAILED),
            Some(NATIVE_KEEPALIVE),
        )
    } else {
        settings
    }
    .build();
    let ice_servers = config
        .ice_servers
        .iter()
        .map(|s| RTCIceServer {
            urls: s.urls.clone(),
            username: s.username.clone(),
            credential: s.credential.clone(),
        })
        .collect();
    let policy = if config.relay_only {
        RTCIceTransportPolicy::Relay
    } else {
        RTCIceTransportPolicy::All
    };
    let mut rtc_config = RTCConfigurationBuilder::new()
        .with_ice_servers(ice_servers)
        .with_ice_transport_policy(policy);
    if let Some(cert) = media.as_ref().and_then(|m| m.certificate.clone()) {
        rtc_config = rtc_config.with_certificates(vec![cert]);
    }
    let rtc_config = rtc_config.build();
    let bind = if config.loopback_only {
        "127.0.0.1:0"
    } else {
        "0.0.0.0:0"
    };
    let mut builder = PeerConnectionBuilder::new();
    if let Some(m) = media {
        builder = builder
            .with_media_engine(m.engine)
            .with_interceptor_registry(m.registry);
    }
    let pc = builder
        .with_configuration(rtc_config)
        .with_setting_engine(settings)
        .with_handler(Arc::new(Handler {
            cid: cid.into(),
            events,
        }))
        .with_udp_addrs(vec![bind.to_string()])
        .with_data_channel_send_buffer_limit(config.send_buffer_limit)
        .build()
        .await?;
    Ok(Arc::new(pc))
}

/// The `a=mid:` of the first m-line of an SDP (candidates we trickle name it).
pub(super) fn first_mid(sdp: &str) -> Option<String> {
    sdp.lines()
        .find_map(|l| l.trim_end().strip_prefix("a=mid:"))
        .map(str::to_owned)
}
