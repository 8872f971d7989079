//! The persistent PeerJS ID: registered at start without waiting for the server (a phone
//! starts offline at once and connects when it can), and moved to a new ID if a claim finds it
//! taken (squatted, or a copied profile; decision 0008): at once on the first claim of this
//! run, after a backoff on a later one.

use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::mpsc;

use super::{Inner, NodeError, NodeEvent, link, lock};
use crate::signaling::client::{ClaimResult, RegId, SignalingEvent, SignalingState};
use crate::signaling::driver::SignalingHandle;
use crate::store::Store;
use crate::transport::{DataConnection, Transport, TransportConfig};

/// Times the node takes a new persistent ID in one run because the current one is taken.
const MAX_ID_CHANGES: u32 = 3;
/// A reconnect refused as taken moves after this long, doubled at each move of the run (our
/// own token is never refused, so it is someone else's registration).
const MOVE_BACKOFF: Duration = Duration::from_secs(5);

/// The registration of the persistent ID and its transport.
pub(super) struct Persistent {
    pub(super) peer_id: String,
    pub(super) reg: RegId,
    pub(super) transport: Transport,
}

/// Registers `peer_id` with its stored token and starts the transport on it. The transport
/// listens before the server answers, so an offer the server held for us while we were away
/// arrives right after OPEN. Nothing here waits for the server.
pub(super) async fn register(
    store: &Store,
    signaling: &SignalingHandle,
    label: &str,
    peer_id: &str,
    transport: &TransportConfig,
) -> Result<(Persistent, mpsc::UnboundedReceiver<DataConnection>), NodeError> {
    let token = {
        let (label, id) = (label.to_owned(), peer_id.to_owned());
        store
            .call(move |c| crate::store::tokens::peerjs_token_or_create(c, &label, &id))
            .await?
    };
    let reg = signaling
        .register(peer_id, &token)
        .map_err(|e| NodeError::Signaling(e.to_string()))?;
    // Every connection of the persistent ID runs the Noise handshake (`link::establish`),
    // which the dialer may take `HANDSHAKE_TIMEOUT` for once its channel is open.
    let config = TransportConfig {
        require_auth: true,
        accept_timeout: transport.connect_timeout + super::link::HANDSHAKE_TIMEOUT,
        ..transport.clone()
    };
    match Transport::start(signaling.clone(), reg, peer_id.to_owned(), config) {
        Ok((transport, incoming)) => Ok((
            Persistent {
                peer_id: peer_id.to_owned(),
                reg,
                transport,
            },
            incoming,
        )),
        Err(e) => {
            let _ = signaling.unregister(reg);
            Err(e.into())
        }
    }
}

/// Follows the persistent registration: its state becomes the node's signaling state, and a
/// claim refused as taken moves the node to a new ID (at most [`MAX_ID_CHANGES`] times a run;
/// after [`MOVE_BACKOFF`], doubling, when the ID was ours earlier in the run).
pub(super) async fn watch(
    inner: Weak<Inner>,
    label: String,
    mut events: mpsc::UnboundedReceiver<SignalingEvent>,
) {
    let mut claimed = false;
    let mut moves = 0;
    while let Some(ev) = events.recv().await {
        let Some(this) = inner.upgrade() else { return };
        let current = lock(&this.persistent).reg;
        match ev {
            SignalingEvent::State { reg, state } if reg == current => {
                if state == SignalingState::Connected {
                    // Back online: contacts with waiting messages are dialled at once, with a
                    // fresh backoff (dials cannot have worked while we were away).
                    lock(&this.redial).clear();
                }
                *lock(&this.state) = state.clone();
                if state == SignalingState::Connected {
                    // After the state is set: the loops look at it when woken.
                    this.redial_wake.notify_one();
                    this.links_wake.notify_one();
                }
                this.emit(NodeEvent::SignalingState(state));
            }
            SignalingEvent::Claim { reg, result, id } if reg == current => match result {
                ClaimResult::Claimed => claimed = true,
                // Taken after we held it (the server let it go while we were away, and someone
                // registered it): the registration is refused for good, so move too.
                ClaimResult::Taken if moves < MAX_ID_CHANGES => {
                    if claimed {
                        drop(this);
                        let wait = MOVE_BACKOFF * 2u32.pow(moves);
                        tracing::warn!(%id, ?wait, "persistent ID taken on reconnect");
                        tokio::time::sleep(wait).await;
                    }
                    moves += 1;
                    let Some(this) = inner.upgrade() else { return };
                    if lock(&this.persistent).reg != reg {
                        continue;
                    }
                    if let Err(e) = move_to_new_id(&this, &label).await {
                        tracing::warn!(error = %e, "could not move to a new persistent ID");
                    }
                }
                other => tracing::warn!(%id, ?other, "persistent ID not claimed"),
            },
            _ => {}
        }
    }
}

/// Someone else holds our ID: take a new one. Contacts learn it when we dial them, or at a
/// rendezvous (decision 0008).
async fn move_to_new_id(this: &Arc<Inner>, label: &str) -> Result<(), NodeError> {
    let new_id = crate::identity::new_peer_id();
    let id = new_id.clone();
    this.store
        .call(move |c| crate::store::identity::set_peer_id(c, &id))
        .await?;
    let (fresh, incoming) = register(
        &this.store,
        &this.signaling,
        label,
        &new_id,
        &this.transport_config,
    )
    .await?;
    let old = std::mem::replace(&mut *lock(&this.persistent), fresh);
    tracing::warn!(old = %old.peer_id, new = %new_id, "persistent ID taken; moved to a new one");
    old.transport.shutdown().await;
    let _ = this.signaling.unregister(old.reg);
    let task = tokio::spawn(accept(this.me.clone(), incoming));
    this.track([task.abort_handle()]);
    // Contacts that have not seen us since are met at rendezvous now, not at the next sweep.
    this.replan_rendezvous();
    Ok(())
}

/// Runs the handshake of every incoming connection of the persistent ID.
pub(super) async fn accept(
    inner: Weak<Inner>,
    mut incoming: mpsc::UnboundedReceiver<DataConnection>,
) {
    while let Some(conn) = incoming.recv().await {
        let Some(this) = inner.upgrade() else { return };
        let peer = conn.peer().to_owned();
        let handshake = tokio::spawn(async move {
            if let Err(e) = link::establish(&this, conn).await {
                tracing::info!(%peer, error = %e, "refused an incoming connection");
            }
        });
        let Some(this) = inner.upgrade() else { return };
        this.track([handshake.abort_handle()]);
    }
}
