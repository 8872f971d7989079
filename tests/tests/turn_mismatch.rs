//! A TURN allocation from a socket whose 5-tuple the server still holds (our patched `webrtc`,
//! third_party/, `PATCH(turn-mismatch)`). A peer connection releases its allocation on close
//! (Refresh with LIFETIME=0), but coturn deletes it only at its next timer tick, up to ~1 s
//! later; until then an Allocate from the same client address and port is refused with 437
//! (Allocation Mismatch). A new peer connection whose socket the OS gives that port gathered no
//! relay candidate at all, and a relay-only connect timed out with "remote candidates: 0": this
//! failed `transport_turn::close_through_turn_reaches_the_peer` in CI, where 16 connections in a
//! row bind 32 ports. Here the port is chosen: a second connection binds the first one's port at
//! once. With the patch its Allocate is tried again after 1 s and the relay candidate arrives.

use std::sync::Arc;
use std::time::{Duration, Instant};

use peerns_tests::turn::TurnServer;
use rtc::ice::mdns::MulticastDnsMode;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCConfigurationBuilder,
    RTCIceServer, RTCIceTransportPolicy, RTCPeerConnectionIceEvent, SettingEngineBuilder,
};

/// Sends each local ICE candidate line the connection gathers.
struct Candidates(UnboundedSender<String>);

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Candidates {
    async fn on_ice_candidate(&self, ev: RTCPeerConnectionIceEvent) {
        if let Ok(c) = ev.candidate.to_json() {
            let _ = self.0.send(c.candidate);
        }
    }
}

/// A relay-only peer connection on `127.0.0.1:port` that starts gathering (an offer with one
/// data channel), and the candidates it gathers.
async fn gathering(
    turn: &TurnServer,
    port: u16,
) -> (Arc<dyn PeerConnection>, UnboundedReceiver<String>) {
    let (tx, rx) = unbounded_channel();
    let config = RTCConfigurationBuilder::new()
        .with_ice_servers(vec![RTCIceServer {
            urls: vec![turn.url()],
            username: turn.username().into(),
            credential: turn.credential().into(),
        }])
        .with_ice_transport_policy(RTCIceTransportPolicy::Relay)
        .build();
    let settings = SettingEngineBuilder::new()
        .with_multicast_dns_mode(MulticastDnsMode::Disabled)
        .build();
    let pc = PeerConnectionBuilder::new()
        .with_configuration(config)
        .with_setting_engine(settings)
        .with_handler(Arc::new(Candidates(tx)))
        .with_udp_addrs(vec![format!("127.0.0.1:{port}")])
        .build()
        .await
        .expect("peer connection");
    let pc: Arc<dyn PeerConnection> = Arc::new(pc);
    pc.create_data_channel("probe", None)
        .await
        .expect("data channel");
    let offer = pc.create_offer(None).await.expect("offer");
    pc.set_local_description(offer)
        .await
        .expect("local description");
    (pc, rx)
}

/// Waits up to `t` for a relay candidate; how long it took.
async fn relay_candidate(rx: &mut UnboundedReceiver<String>, t: Duration) -> Option<Duration> {
    let start = Instant::now();
    tokio::time::timeout(t, async {
        while let Some(c) = rx.recv().await {
            if c.contains(" typ relay") {
                return Some(start.elapsed());
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
}

/// A UDP port on 127.0.0.1 that was free a moment ago.
fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("bind a UDP socket")
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_reused_while_the_server_still_holds_its_allocation_gets_a_relay_candidate() {
    let turn = TurnServer::start().await;
    // coturn's deletion tick may fall between the close and the next Allocate (a few ms out of
    // ~1 s), and on a loaded machine a close may give up on sending the release (its driver
    // has 100 ms to stop), leaving the allocation for its whole lifetime: the case needs one
    // released allocation answered with 437, so a few rounds may be needed to meet one.
    for round in 0..5 {
        let port = free_udp_port();
        let (first, mut first_rx) = gathering(&turn, port).await;
        relay_candidate(&mut first_rx, Duration::from_secs(5))
            .await
            .unwrap_or_else(|| panic!("round {round}: first connection's relay candidate"));
        let released = turn.count("lifetime=0");
        first.close().await.expect("close");
        if !turn
            .wait_until(Duration::from_secs(2), |t| t.count("lifetime=0") > released)
            .await
        {
            println!("round {round}: the first allocation was not released; another port");
            continue;
        }
        let refused = turn.count("error 437");
        let (second, mut second_rx) = gathering(&turn, port).await;
        let took = relay_candidate(&mut second_rx, Duration::from_secs(8)).await;
        second.close().await.expect("close");
        let mismatched = turn.count("error 437") > refused;
        println!(
            "round {round}: port {port} reused; 437 from coturn: {mismatched}; relay candidate \
             after {took:?}"
        );
        assert!(
            took.is_some(),
            "round {round}: a connection on port {port}, which the previous one had released, \
             gathered no relay candidate in 8 s (437 seen: {mismatched}); coturn said:\n{}",
            turn.log().join("\n")
        );
        if mismatched {
            return;
        }
    }
    panic!(
        "no released allocation was answered with 437 in 5 rounds: the case this test is about \
         did not happen"
    );
}
