//! The contacts API of [`Node`]: share links, requests over authenticated links (request →
//! accept / later / reject, cancel), trust levels and the verified flag. Trust is enforced
//! where frames arrive (`chat.rs`) and at the handshake (`link.rs`), not here.

use std::str::FromStr;
use std::time::Duration;

use super::waiting_links::unreachable;
use super::{Inner, Node, NodeError, lock, parse_fp, unix_ms};
use crate::chat::wire::Frame;
use crate::contacts::{self, Contact, Request, ShareLink, Trust, waiting};
use crate::transport::TransportError;

/// How long a request waits for the other side's link. On a lossy network (a stadium) the
/// handshakes' retransmissions alone can take 15 s (net_faults: 3–15 s under 20 % loss).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a request waits for our own registration before the link is kept for later.
const OFFLINE_WAIT: Duration = Duration::from_secs(5);
/// Pause before a request's connection attempt that failed is tried again.
const REDIAL_PAUSE: Duration = Duration::from_secs(1);

impl Node {
    /// Our share link (QR text): `peerns2:<persistent id>?fp=<fingerprint>`.
    pub fn share_link(&self) -> String {
        ShareLink {
            peer_id: self.inner.peer_id(),
            fingerprint: self.inner.fingerprint,
        }
        .to_string()
    }

    /// Asks the owner of `link` to become a contact. Connects now (the handshake must prove the
    /// link's fingerprint) and records the outgoing request; their accept makes them a contact
    /// at level 2, even if it comes later. When the owner cannot be reached (offline, or we
    /// are), the link is kept and the request goes out once both are online
    /// ([`NodeError::Waiting`], [`Node::waiting_links`], [`NodeEvent::ContactRequestSent`]).
    ///
    /// [`NodeEvent::ContactRequestSent`]: super::NodeEvent::ContactRequestSent
    pub async fn request_contact(&self, link: &str) -> Result<Request, NodeError> {
        let link = ShareLink::from_str(link)?;
        let fp = link.fingerprint;
        if fp == self.inner.fingerprint {
            return Err(NodeError::InvalidInput("that is our own link".into()));
        }
        if let Some(c) = self.inner.db(move |c| contacts::get(c, &fp)).await? {
            return Err(NodeError::InvalidInput(format!(
                "{} is already a contact",
                c.name
            )));
        }
        if lock(&self.inner.subscribers).is_none() {
            return Err(NodeError::Stopped);
        }
        // Just started or reconnecting: registration usually takes a moment.
        if !self.wait_connected(OFFLINE_WAIT).await {
            return Err(self.kept(link, false, "while we are offline").await);
        }
        let l = match self.dial_for_request(&link.peer_id).await {
            Ok(l) => l,
            Err(e) if unreachable(&e) => {
                return Err(self.kept(link, true, &format!("now ({e})")).await);
            }
            Err(e) => return Err(e),
        };
        if l.fp != fp {
            return Err(NodeError::KeyMismatch {
                expected: fp.to_hex(),
                presented: l.fp.to_hex(),
            });
        }
        Inner::ask_on(&self.inner, &l, false).await
    }

    /// Keeps `link`, whose owner cannot be reached `why` (`tried`: a dial just failed), for
    /// later: the [`NodeError::Waiting`] that says so, or why it could not be kept.
    async fn kept(&self, link: ShareLink, tried: bool, why: &str) -> NodeError {
        let short = link.fingerprint.short();
        match Inner::keep_waiting(&self.inner, link, tried).await {
            Ok(_) => NodeError::Waiting(format!(
                "{short} cannot be reached {why}; the request goes out when both are online"
            )),
            Err(e) => e,
        }
    }

    /// A link to `peer` within [`REQUEST_TIMEOUT`]: a connection attempt that timed out or
    /// closed before it opened or during the session handshake, or whose handshake timed out,
    /// is tried again (under heavy loss one attempt's 10 s can pass in retransmissions alone);
    /// other failures end it.
    async fn dial_for_request(&self, peer: &str) -> Result<std::sync::Arc<super::Link>, NodeError> {
        let deadline = tokio::time::Instant::now() + REQUEST_TIMEOUT;
        loop {
            let attempt = tokio::time::timeout_at(deadline, Inner::dial(&self.inner, peer)).await;
            match attempt {
                Ok(Err(
                    NodeError::Transport(TransportError::Timeout { .. } | TransportError::Closed)
                    | NodeError::Timeout(_),
                )) if deadline.saturating_duration_since(tokio::time::Instant::now())
                    > REDIAL_PAUSE =>
                {
                    tokio::time::sleep(REDIAL_PAUSE).await;
                }
                Ok(result) => return result,
                Err(_) => return Err(NodeError::Timeout(format!("reaching {peer}"))),
            }
        }
    }

    /// Open requests both ways, oldest first; incoming ones unanswered for a minute are moved
    /// to "later" first.
    pub async fn requests(&self) -> Result<Vec<Request>, NodeError> {
        let now = unix_ms();
        self.inner
            .db(move |c| {
                contacts::auto_later(c, now)?;
                contacts::requests(c)
            })
            .await
    }

    /// Accepts the incoming request of `fingerprint`: a contact at level 2, told at once if
    /// connected (else when either side connects next).
    pub async fn accept_request(&self, fingerprint: &str) -> Result<Contact, NodeError> {
        let fp = parse_fp(fingerprint)?;
        let now = unix_ms();
        let contact = self
            .inner
            .db(move |c| contacts::accept(c, &fp, now))
            .await?;
        match self.inner.link(&fp) {
            Some(link) => {
                let name = self.inner.name_for(Some(contact.trust));
                let _ = link.send(&Frame::Accept { name }).await;
                Inner::session_started(&self.inner, &link, Some(contact.trust), true).await;
            }
            // Not connected: dial them in the background; on the new link they ask again
            // (a requester repeats its request on every link) and get the accept as the answer.
            None => Inner::maybe_dial(&self.inner, &fp, true),
        }
        Ok(contact)
    }

    /// Rejects an incoming request (the requester is not told).
    pub async fn reject_request(&self, fingerprint: &str) -> Result<(), NodeError> {
        let fp = parse_fp(fingerprint)?;
        self.inner
            .db(move |c| contacts::drop_request(c, &fp, false))
            .await
    }

    /// Cancels our outgoing request, or a link of ours that waits to be reached.
    pub async fn cancel_request(&self, fingerprint: &str) -> Result<(), NodeError> {
        let fp = parse_fp(fingerprint)?;
        self.inner
            .db(move |c| {
                let tx = c.transaction().map_err(contacts::ContactError::from)?;
                let waited = waiting::stop_waiting(&tx, &fp)?;
                match contacts::drop_request(&tx, &fp, true) {
                    Err(contacts::ContactError::NotFound) if waited => {}
                    other => other?,
                }
                tx.commit().map_err(contacts::ContactError::from)
            })
            .await
    }

    /// Moves an incoming request to "later".
    pub async fn later_request(&self, fingerprint: &str) -> Result<(), NodeError> {
        let fp = parse_fp(fingerprint)?;
        self.inner.db(move |c| contacts::later(c, &fp)).await
    }

    /// Every contact, by name.
    pub async fn contacts(&self) -> Result<Vec<Contact>, NodeError> {
        self.inner.db(|c| contacts::list(c)).await
    }

    /// Sets a contact's trust level; blocking closes its links at once, and below Full Access
    /// the monitor's stream to it ends.
    /// Blocking also works on someone who only sent a request: the request becomes a blocked
    /// contact, so that key is refused at the handshake from then on.
    pub async fn set_trust(&self, fingerprint: &str, trust: Trust) -> Result<(), NodeError> {
        let fp = parse_fp(fingerprint)?;
        let now = unix_ms();
        let before = self.inner.db(move |c| contacts::trust_of(c, &fp)).await?;
        self.inner
            .db(move |c| match contacts::set_trust(c, &fp, trust) {
                Err(contacts::ContactError::NotFound) if trust == Trust::Blocked => {
                    let req = contacts::requests(c)?
                        .into_iter()
                        .find(|r| r.fingerprint == fp && !r.outgoing)
                        .ok_or(contacts::ContactError::NotFound)?;
                    contacts::save(c, &req.public_key, &req.name, trust, None, now).map(drop)
                }
                other => other,
            })
            .await?;
        if trust == Trust::Blocked {
            let links: Vec<_> = lock(&self.inner.links)
                .get(&fp)
                .cloned()
                .unwrap_or_default();
            for l in links {
                l.close().await;
            }
        }
        self.inner
            .presence_trust_changed(fp, before, Some(trust))
            .await;
        // Below Full Access, the monitor stops streaming to it at once.
        Inner::end_stream_if_revoked(&self.inner).await;
        Ok(())
    }

    /// Records whether the contact's fingerprint was compared out of band.
    pub async fn set_verified(&self, fingerprint: &str, verified: bool) -> Result<(), NodeError> {
        let fp = parse_fp(fingerprint)?;
        self.inner
            .db(move |c| contacts::set_verified(c, &fp, verified))
            .await
    }

    /// Removes a contact (its conversation stays; unfinished files with it end; its sound
    /// alerts are no longer taken). A blocked one is refused: its record is the block, and
    /// without it the key would reach us again as a stranger.
    pub async fn remove_contact(&self, fingerprint: &str) -> Result<(), NodeError> {
        let fp = parse_fp(fingerprint)?;
        let before = self.inner.db(move |c| contacts::trust_of(c, &fp)).await?;
        if before == Some(Trust::Blocked) {
            return Err(NodeError::NotAllowed(format!(
                "{fp} is blocked: unblock it first to remove it"
            )));
        }
        self.inner.db(move |c| contacts::remove(c, &fp)).await?;
        self.inner.forget_watched(fp).await;
        self.inner.end_transfers_with(fp).await;
        self.inner.presence_trust_changed(fp, before, None).await;
        Inner::end_stream_if_revoked(&self.inner).await;
        Ok(())
    }
}
