//! An in-process node for the demo and the benchmarks: one registered PeerJS ID with its
//! signaling driver and data-connection transport.

use peerns_core::signaling::client::{ClaimResult, ServerUrl, SignalingConfig};
use peerns_core::signaling::driver::SignalingHandle;
use peerns_core::signaling::limiter::LimiterConfig;
use peerns_core::transport::{DataConnection, Transport, TransportConfig};
use tokio::sync::mpsc::UnboundedReceiver;

use crate::Result;

/// A registered ID with signaling and transport.
pub struct LocalNode {
    /// The PeerJS ID.
    pub id: String,
    /// Signaling driver.
    pub signaling: SignalingHandle,
    /// Data connections.
    pub transport: Transport,
    /// Connections opened by others.
    pub incoming: UnboundedReceiver<DataConnection>,
}

impl LocalNode {
    /// Registers `id` (with `token`) at the local server `url` and starts its transport.
    pub async fn start(url: &str, id: &str, token: &str, config: TransportConfig) -> Result<Self> {
        let mut sc = SignalingConfig::new(ServerUrl::parse(url)?);
        sc.limiter = LimiterConfig::local();
        let signaling = SignalingHandle::spawn(sc);
        match signaling.claim(id, token).await? {
            (reg, ClaimResult::Claimed) => {
                let (transport, incoming) =
                    Transport::start(signaling.clone(), reg, id.into(), config)?;
                Ok(Self {
                    id: id.into(),
                    signaling,
                    transport,
                    incoming,
                })
            }
            (_, other) => Err(format!("could not claim {id}: {other:?}").into()),
        }
    }

    /// Closes every connection and the signaling sockets.
    pub async fn stop(&self) {
        self.transport.shutdown().await;
        self.signaling.shutdown().await;
    }
}
