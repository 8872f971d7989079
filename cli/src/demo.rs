//! `peerns demo`: an embedded signaling server and two nodes with fresh profiles in one process.
//! They register their persistent IDs and exchange a PeerJS-shaped OFFER/ANSWER, printing a
//! timeline. (Grows with the transport, discovery and stadium-mode work.)

use std::time::{Duration, Instant};

use peerns_core::signaling::client::{
    ClaimResult, RegId, ServerUrl, SignalingConfig, SignalingEvent,
};
use peerns_core::signaling::driver::SignalingHandle;
use peerns_core::signaling::limiter::LimiterConfig;
use peerns_core::signaling::protocol::{Message, MessageType};
use peerns_core::signaling::server::{EmbeddedServer, ServerConfig};
use peerns_core::store::Profile;
use serde_json::json;
use tokio::sync::mpsc::UnboundedReceiver;

use crate::Result;

struct Node {
    name: &'static str,
    _dir: tempfile::TempDir,
    profile: Profile,
    signaling: SignalingHandle,
    events: UnboundedReceiver<SignalingEvent>,
    reg: Option<RegId>,
}

struct Timeline(Instant);

impl Timeline {
    fn say(&self, line: impl AsRef<str>) {
        println!(
            "[{:>8.2} ms] {}",
            self.0.elapsed().as_secs_f64() * 1000.0,
            line.as_ref()
        );
    }
}

async fn node(name: &'static str, server: &ServerUrl) -> Result<Node> {
    let dir = tempfile::tempdir()?;
    let profile = Profile::open_desktop(dir.path())?;
    let mut config = SignalingConfig::new(server.clone());
    config.limiter = LimiterConfig::local();
    let signaling = SignalingHandle::spawn(config);
    let events = signaling.subscribe()?;
    Ok(Node {
        name,
        _dir: dir,
        profile,
        signaling,
        events,
        reg: None,
    })
}

impl Node {
    fn peer_id(&self) -> String {
        self.profile.identity().peer_id().to_owned()
    }

    async fn register(&mut self, server: &ServerUrl) -> Result<()> {
        let id = self.peer_id();
        let token = self
            .profile
            .store()
            .peerjs_token_or_create(&server.label(), &id)?;
        match self.signaling.claim(&id, &token).await? {
            (reg, ClaimResult::Claimed) => {
                self.reg = Some(reg);
                Ok(())
            }
            (_, other) => Err(format!("{}: could not claim {id}: {other:?}", self.name).into()),
        }
    }

    async fn send(&self, kind: MessageType, dst: &str, payload: serde_json::Value) -> Result<()> {
        let reg = self.reg.ok_or("not registered")?;
        Ok(self
            .signaling
            .send(reg, Message::to(kind, dst, Some(payload)))
            .await?)
    }

    async fn receive(&mut self, kind: MessageType) -> Result<Message> {
        let wait = async {
            while let Some(ev) = self.events.recv().await {
                if let SignalingEvent::Message { msg, .. } = ev
                    && msg.kind == kind
                {
                    return Some(msg);
                }
            }
            None
        };
        match tokio::time::timeout(Duration::from_secs(10), wait).await {
            Ok(Some(m)) => Ok(m),
            _ => Err(format!("{}: no {kind:?} arrived", self.name).into()),
        }
    }
}

pub async fn run() -> Result<()> {
    let t = Timeline(Instant::now());
    let server = EmbeddedServer::start(ServerConfig {
        port: 0,
        ..ServerConfig::default()
    })
    .await?;
    let url = ServerUrl::parse(&server.url())?;
    t.say(format!(
        "embedded signaling server listening on {}",
        server.url()
    ));
    let mut alice = node("alice", &url).await?;
    let mut bob = node("bob", &url).await?;
    for n in [&alice, &bob] {
        let fp = n.profile.identity().fingerprint();
        t.say(format!(
            "{:<5} identity {} (persistent id {})",
            n.name,
            fp.short(),
            n.peer_id()
        ));
    }
    let (ra, rb) = tokio::join!(alice.register(&url), bob.register(&url));
    ra?;
    rb?;
    t.say("alice and bob registered their persistent IDs (OPEN)");
    let offer = json!({"sdp":{"type":"offer","sdp":"v=0\r\n"},"type":"data","connectionId":"dc_demo",
        "metadata":null,"label":"dc_demo","reliable":true,"serialization":"raw"});
    alice
        .send(MessageType::Offer, &bob.peer_id(), offer)
        .await?;
    t.say("alice → bob  OFFER dc_demo");
    let m = bob.receive(MessageType::Offer).await?;
    t.say(format!(
        "bob   ← OFFER from {} (src set by the server)",
        m.src.unwrap_or_default()
    ));
    let answer =
        json!({"sdp":{"type":"answer","sdp":"v=0\r\n"},"type":"data","connectionId":"dc_demo"});
    bob.send(MessageType::Answer, &alice.peer_id(), answer)
        .await?;
    t.say("bob   → alice ANSWER dc_demo");
    let m = alice.receive(MessageType::Answer).await?;
    t.say(format!("alice ← ANSWER from {}", m.src.unwrap_or_default()));
    for n in [&alice, &bob] {
        n.signaling.shutdown().await;
    }
    server.shutdown().await;
    t.say("demo finished: signaling works end to end (WebRTC transport comes next)");
    Ok(())
}
