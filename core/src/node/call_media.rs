//! The media connection of the active call, bound to what the call's Noise session announced
//! (`docs/decisions/0013-calls.md`):
//!
//! - the caller makes its DTLS certificate before the ring, so the ring names the fingerprint
//!   and the `mc_…` connection ID its OFFER will carry; once the callee accepts (naming its own
//!   certificate's fingerprint) the caller sends that OFFER on the persistent ID's transport and
//!   closes the connection unless the ANSWER's fingerprint is the accepted one
//!   ([`Calls::admit_answer`](crate::calls::Calls::admit_answer));
//! - the callee takes media OFFERs from the persistent ID's transport and answers only the one
//!   with the announced connection ID and fingerprint, using the certificate its accept named
//!   ([`Calls::admit_offer`](crate::calls::Calls::admit_offer)); every other OFFER is refused.
//!
//! A browser PeerJS peer has no Noise session, so its media OFFER is never a call: it cannot be
//! bound to an announcement, rings nothing and is not logged. The node refuses it unless the
//! user allowed that PeerJS ID explicitly ([`Node::allow_browser_calls`]); allowed offers go to
//! the application undecided. A PeerJS ID proves nothing (whoever registers it at the server
//! holds it), so this is an explicit opt-in for browser interop, never a default.
//!
//! The application attaches sources and sinks to the returned
//! [`MediaConnection`](crate::transport::MediaConnection) (see `core/src/media/README.md`).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::{mpsc, watch};

use super::{Inner, Node, NodeError, lock};
use crate::calls::machine::{Call, Input};
use crate::calls::{CallId, DtlsFingerprint, Kinds};
use crate::transport::{
    IncomingMedia, MediaCertificate, MediaConnection, MediaOptions, MediaState, TrackSpec,
    TransportError,
};

/// Undecided media OFFERs the node queues.
const OFFER_QUEUE: usize = 4;
/// How long the caller waits for ICE + DTLS before it gives the media up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a closed media connection waits before it ends its call: a peer that hangs up
/// closes its media right after its `HangUp`, which should end the call as that.
const CLOSED_GRACE: Duration = Duration::from_secs(2);

/// The media side of the node's calls.
#[derive(Default)]
pub(crate) struct CallMedia {
    /// Our certificate for the active call (made before its ring or accept), by its
    /// fingerprint: the call that uses it is the one that announced it (after glare, the call
    /// kept answers with the certificate of the one dropped).
    cert: Option<(DtlsFingerprint, MediaCertificate)>,
    /// The active call's media connection, once made.
    conn: Option<watch::Sender<Option<(CallId, MediaConnection)>>>,
    /// Media OFFERs are taken from the persistent transport.
    subscribed: bool,
    /// PeerJS IDs whose media OFFERs go to the application ([`Node::allow_browser_calls`]).
    browsers: Option<(HashSet<String>, mpsc::Sender<IncomingMedia>)>,
}

impl CallMedia {
    /// Our certificate if it is the one call `c` announced.
    fn certificate_of(&self, c: &Call) -> Option<&MediaCertificate> {
        let (fp, cert) = self.cert.as_ref()?;
        (Some(fp) == c.our_dtls()).then_some(cert)
    }

    fn watch(&mut self) -> &watch::Sender<Option<(CallId, MediaConnection)>> {
        self.conn.get_or_insert_with(|| watch::channel(None).0)
    }
}

/// Our camera's picture on `conn` says it must be turned `degrees` (the screen's never does).
fn turn_picture(conn: &MediaConnection, degrees: u16) {
    for t in conn.local_tracks() {
        if t.spec().name == "video" {
            t.set_rotation(degrees);
        }
    }
}

/// The tracks we send for `kinds`.
pub(crate) fn track_specs(kinds: Kinds) -> Vec<TrackSpec> {
    let mut out = vec![];
    if kinds.contains(Kinds::AUDIO) {
        out.push(TrackSpec::audio());
    }
    if kinds.contains(Kinds::VIDEO) {
        out.push(TrackSpec::video());
    }
    if kinds.contains(Kinds::SCREEN) {
        out.push(TrackSpec::screen());
    }
    out
}

fn fingerprint_of(cert: &MediaCertificate) -> Result<DtlsFingerprint, NodeError> {
    DtlsFingerprint::parse(cert.fingerprint()).ok_or_else(|| {
        NodeError::Transport(TransportError::WebRtc("no SHA-256 fingerprint".into()))
    })
}

impl Inner {
    /// Makes our certificate and feeds the machine `input(its fingerprint)` (a dial or an
    /// accept). The certificate is kept, under the same lock, unless the machine refuses the
    /// input (the active call's is then left alone): the peer may answer at once, and the end
    /// of an earlier call must not forget it. Media OFFERs are taken from now on.
    pub(crate) fn call_with_certificate(
        this: &Arc<Inner>,
        input: impl FnOnce(DtlsFingerprint) -> Input,
    ) -> Result<(), NodeError> {
        let cert = MediaCertificate::generate()?;
        let fp = fingerprint_of(&cert)?;
        Inner::take_media_offers(this);
        let result = {
            let mut calls = lock(&this.calls);
            let before = calls.media.cert.replace((fp, cert));
            let r = calls.machine.handle(input(fp), Instant::now());
            if r.is_err() {
                calls.media.cert = before;
            }
            Inner::queue_call_actions(this, &mut calls, None);
            r
        };
        Inner::turn_call_picture(this);
        Ok(result?)
    }

    /// Subscribes to the persistent transport's media OFFERs (once): a call rings or starts.
    pub(crate) fn take_media_offers(this: &Arc<Inner>) {
        if std::mem::replace(&mut lock(&this.calls).media.subscribed, true) {
            return;
        }
        let mut offers = this.transport().media_offers(OFFER_QUEUE);
        let weak = Arc::downgrade(this);
        let task = tokio::spawn(async move {
            while let Some(inc) = offers.recv().await {
                let Some(this) = weak.upgrade() else { return };
                Inner::media_offer(&this, inc).await;
            }
        });
        this.track([task.abort_handle()]);
    }

    /// A media OFFER: answered only if it is the one the active incoming call announced.
    async fn media_offer(this: &Arc<Inner>, inc: IncomingMedia) {
        let admitted = {
            let calls = lock(&this.calls);
            let machine = &calls.machine;
            machine.active().and_then(|c| {
                let call = machine
                    .admit_offer(&c.peer, inc.connection_id(), inc.remote_dtls())
                    .map_err(|e| tracing::info!(peer = inc.peer(), error = %e, "media refused"))
                    .ok()?;
                let cert = calls.media.certificate_of(c)?.clone();
                Some((call, track_specs(c.callee_kinds), cert))
            })
        };
        let Some((call, tracks, cert)) = admitted else {
            let Some(inc) = this.route_call_offer(inc) else {
                return;
            };
            let browsers = lock(&this.calls).media.browsers.clone();
            match browsers {
                Some((ids, tx)) if ids.contains(inc.peer()) => {
                    // A full queue drops (and so refuses) it.
                    let _ = tx.try_send(inc);
                }
                _ => inc.refuse(),
            }
            return;
        };
        match inc.accept_with(tracks, Some(cert)).await {
            Ok(conn) => Inner::set_call_connection(this, call, conn),
            Err(e) => {
                tracing::info!(error = %e, "could not answer the call's media");
                Inner::call_media_lost(this, call);
            }
        }
    }

    /// Our outgoing call `call` was accepted: send the OFFER the ring announced and keep the
    /// connection if its ANSWER carries the fingerprint the accept named.
    pub(crate) async fn start_call_media(this: &Arc<Inner>, call: CallId) {
        let ready = {
            let calls = lock(&this.calls);
            let c = calls.machine.active().filter(|c| c.id == call);
            c.and_then(|c| {
                let cert = calls.media.certificate_of(c)?.clone();
                Some((
                    c.peer,
                    c.media_id.clone(),
                    track_specs(c.caller_kinds),
                    cert,
                ))
            })
        };
        let Some((peer, media_id, tracks, cert)) = ready else {
            return;
        };
        let Some(link) = this.link(&peer) else {
            tracing::info!(contact = %peer, "no link for the call's media");
            return Inner::call_media_lost(this, call);
        };
        let opts = MediaOptions {
            tracks,
            metadata: json!({ "call": hex::encode(call) }),
            connection_id: Some(media_id),
            certificate: Some(cert),
            ..MediaOptions::default()
        };
        let conn = match this.transport().call(&link.peer, opts).await {
            Ok(c) => c,
            Err(e) => {
                tracing::info!(error = %e, "could not offer the call's media");
                return Inner::call_media_lost(this, call);
            }
        };
        if let Err(e) = conn.connected(CONNECT_TIMEOUT).await {
            tracing::info!(error = %e, "the call's media did not connect");
            conn.close().await;
            return Inner::call_media_lost(this, call);
        }
        let admitted = lock(&this.calls)
            .machine
            .admit_answer(&call, conn.remote_dtls());
        match admitted {
            Ok(()) => Inner::set_call_connection(this, call, conn),
            Err(e) => {
                tracing::warn!(error = %e, "media answer refused");
                conn.close().await;
                Inner::call_media_lost(this, call);
            }
        }
    }

    /// Call `call` has no media (it could not be made, or it closed): the call ends.
    fn call_media_lost(this: &Arc<Inner>, call: CallId) {
        let _ = Inner::call_input(this, Input::MediaLost { call });
    }

    /// `call`'s media connection is bound (the caller's is up, the callee's answered): the
    /// machine hears when it is up, and again when it closes or fails (the call then ends).
    fn set_call_connection(this: &Arc<Inner>, call: CallId, conn: MediaConnection) {
        let mut calls = lock(&this.calls);
        let active = calls
            .machine
            .active()
            .filter(|c| c.id == call)
            .map(|c| (c.peer, c.local_media.rotation));
        let Some((peer, rotation)) = active else {
            drop(calls);
            tokio::spawn(async move { conn.close().await });
            return;
        };
        // Turned before anyone waiting for the connection can send a frame on it.
        turn_picture(&conn, rotation);
        let mut state = conn.state();
        calls.media.watch().send_replace(Some((call, conn)));
        drop(calls);
        let weak = Arc::downgrade(this);
        let task = tokio::spawn(async move {
            // The callee's answer is made before ICE and DTLS: up only once connected (else
            // the machine's media timeout ends the call).
            let up = state
                .wait_for(|s| *s != MediaState::Connecting)
                .await
                .is_ok_and(|s| *s == MediaState::Connected);
            if up && let Some(this) = weak.upgrade() {
                let mut calls = lock(&this.calls);
                let _ = calls
                    .machine
                    .handle(Input::MediaConnected { call }, Instant::now());
                Inner::queue_call_actions(&this, &mut calls, None);
            }
            let _ = state.wait_for(|s| *s == MediaState::Closed).await;
            tokio::time::sleep(CLOSED_GRACE).await;
            if let Some(this) = weak.upgrade() {
                Inner::call_media_lost(&this, call);
            }
        });
        this.track([task.abort_handle()]);
        this.emit(super::NodeEvent::CallMediaConnected {
            call: hex::encode(call),
            fingerprint: peer.to_hex(),
        });
    }

    /// Our picture's rotation in the active call goes on its media connection's video packets
    /// too (the peer reads it from the call's media state; the packets should not say
    /// otherwise).
    pub(crate) fn turn_call_picture(this: &Arc<Inner>) {
        let calls = lock(&this.calls);
        let (Some(c), Some(conn)) = (calls.machine.active(), calls.media.conn.as_ref()) else {
            return;
        };
        if let Some((id, conn)) = &*conn.borrow()
            && *id == c.id
        {
            turn_picture(conn, c.local_media.rotation);
        }
    }

    /// Call `call` ended: its media connection closes and our certificate is forgotten unless
    /// the active call announced it.
    pub(crate) async fn end_call_media(this: &Arc<Inner>, call: CallId) {
        let conn = {
            let mut calls = lock(&this.calls);
            let used = calls.machine.active();
            if used.is_none_or(|c| calls.media.certificate_of(c).is_none()) {
                calls.media.cert = None;
            }
            let w = calls.media.watch();
            let ours = w.borrow().as_ref().is_some_and(|(id, _)| *id == call);
            if ours { w.send_replace(None) } else { None }
        };
        if let Some((_, conn)) = conn {
            conn.close().await;
        }
    }
}

impl Node {
    /// Lets media OFFERs from the browser peers `peer_ids` (PeerJS IDs; they have no Noise
    /// session, so they can never ring as calls) through to the returned receiver, undecided:
    /// accept with [`IncomingMedia::accept`] or refuse. Every other OFFER that is not the
    /// active call's announced one is still refused. A later call replaces the list (an empty
    /// list allows none). Up to 4 undecided offers queue; more are refused.
    pub fn allow_browser_calls(&self, peer_ids: Vec<String>) -> mpsc::Receiver<IncomingMedia> {
        let (tx, rx) = mpsc::channel(OFFER_QUEUE);
        lock(&self.inner.calls).media.browsers = Some((peer_ids.into_iter().collect(), tx));
        Inner::take_media_offers(&self.inner);
        rx
    }

    /// The media connection of call `call` once it is connected (waits up to `timeout`): put
    /// encoded frames on its local tracks, take the peer's tracks with
    /// [`MediaConnection::next_remote_track`].
    pub async fn call_media(
        &self,
        call: &str,
        timeout: Duration,
    ) -> Result<MediaConnection, NodeError> {
        let id = super::calls::parse_call(call)?;
        let mut rx = lock(&self.inner.calls).media.watch().subscribe();
        let wait = rx.wait_for(|c| c.as_ref().is_some_and(|(c, _)| *c == id));
        match tokio::time::timeout(timeout, wait).await {
            Ok(Ok(c)) => Ok(c.as_ref().expect("waited for it").1.clone()),
            _ => Err(NodeError::NotConnected(format!("no media for call {call}"))),
        }
    }
}
