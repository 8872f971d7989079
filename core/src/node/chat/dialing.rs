//! Reaching contacts: a dial with backoff for each contact something waits for (a rendezvous
//! after repeated failures), the authenticated dial itself, and the loop that redials while
//! the outbox, an unfinished file or a fresh unanswered contact request waits — asleep while
//! nothing does.

use super::*;

impl Inner {
    /// Dials contact `fp` unless a dial waits for its backoff (`now` ignores a pause that has
    /// not started yet); the redial loop takes over the backoff.
    pub(crate) fn maybe_dial(this: &Arc<Inner>, fp: &Fingerprint, now: bool) {
        Inner::dial_when_due(this, fp, now, true);
    }

    /// [`Inner::maybe_dial`]; `wake_loop`: wake the redial loop if a dial is made (not when
    /// the loop dials: it looks when the next dial is due).
    fn dial_when_due(this: &Arc<Inner>, fp: &Fingerprint, now: bool, wake_loop: bool) {
        // Offline, a dial cannot work and must not count toward backoff or a rendezvous: the
        // redial loop dials once the persistent ID is registered.
        if !this.registered() {
            return;
        }
        let at = Instant::now();
        {
            let mut redial = lock(&this.redial);
            let entry = redial.entry(*fp).or_insert(Redial {
                at,
                pause: REDIAL_MIN,
                attempts: 0,
            });
            if entry.at > at && !(now && entry.pause == REDIAL_MIN) {
                return;
            }
            entry.attempts += 1;
            if entry.attempts == crate::node::rendezvous::SEEK_AFTER_DIALS {
                this.replan_rendezvous();
            }
            let jitter = rand::random::<f64>() * 0.25;
            entry.at = at + entry.pause.mul_f64(1.0 + jitter);
            entry.pause = (entry.pause * 2).min(REDIAL_MAX);
        }
        // If this dial fails, the redial loop (perhaps idle) takes over the backoff.
        if wake_loop {
            this.redial_wake.notify_one();
        }
        let (inner, fp) = (this.clone(), *fp);
        let task = tokio::spawn(async move {
            if let Err(e) = Inner::dial_waiting(&inner, &fp).await {
                tracing::debug!(contact = %fp, error = %e, "redial failed");
            }
        });
        this.track([task.abort_handle()]);
    }

    /// A link to `fp` for what waits for it: a contact's ([`Inner::dial_contact`]), or that of
    /// someone we asked to be a contact who has not answered. The request is asked again on
    /// the new link (`session_started`): the link it went out on may have closed before it
    /// arrived (the other side gives up on a handshake that it has not seen finish).
    async fn dial_waiting(this: &Arc<Inner>, fp: &Fingerprint) -> Result<Arc<Link>, NodeError> {
        let fp = *fp;
        let asked = this.db(move |c| unanswered_request(c, &fp)).await?;
        let Some(request) = asked else {
            return Inner::dial_contact(this, &fp).await;
        };
        if let Some(link) = this.link(&fp) {
            return Ok(link);
        }
        Inner::dial_proven(this, &request.peer_id, &fp).await
    }

    /// A link to `peer` whose handshake proves `fp` (a route is only a hint).
    async fn dial_proven(
        this: &Arc<Inner>,
        peer: &str,
        fp: &Fingerprint,
    ) -> Result<Arc<Link>, NodeError> {
        let link = Inner::dial(this, peer).await?;
        if link.fp != *fp {
            return Err(NodeError::KeyMismatch {
                expected: fp.to_hex(),
                presented: link.fp.to_hex(),
            });
        }
        Ok(link)
    }

    /// An authenticated link to contact `fp`: the open one, or a dial of its stored route. The
    /// handshake must prove `fp`; a link to whoever holds that PeerJS ID now is never returned
    /// (a route is only a hint, the fingerprint is the address).
    pub(crate) async fn dial_contact(
        this: &Arc<Inner>,
        fp: &Fingerprint,
    ) -> Result<Arc<Link>, NodeError> {
        if lock(&this.subscribers).is_none() {
            return Err(NodeError::Stopped);
        }
        if let Some(link) = this.link(fp) {
            return Ok(link);
        }
        let fp = *fp;
        let contact = this
            .db(move |c| contacts::get(c, &fp))
            .await?
            .ok_or_else(|| NodeError::NotAllowed(format!("{fp} is not a contact")))?;
        if !contact.trust.allows(Capability::Connect) {
            return Err(NodeError::NotAllowed(format!("{fp} is blocked")));
        }
        let peer = contact
            .peer_id
            .ok_or_else(|| NodeError::NotConnected(fp.to_hex()))?;
        Inner::dial_proven(this, &peer, &fp).await
    }
}

/// Contacts seen within this long are dialled when the node starts.
const RETURN_WINDOW: Duration = Duration::from_secs(7 * 24 * 3600);
/// At most this many of them.
const RETURN_DIALS: usize = 10;
/// An outgoing contact request is redialled (with the usual backoff) for this long after it
/// was made, until answered: long enough for a lossy network or a phone that went away for a
/// moment, short enough that an unanswered request does not keep a phone dialling.
const REQUEST_REDIAL_WINDOW: Duration = Duration::from_secs(10 * 60);
/// A contact we accepted while its requester was away is dialled (with the usual backoff)
/// this long, until a link reaches it: the accept goes as the answer to the request it repeats
/// there. Later, its own start's dial (below) brings the answer.
const ACCEPT_DIAL_WINDOW: Duration = Duration::from_secs(24 * 3600);
/// Our contact requests made within this long are dialled once when the node starts: the
/// other side may have accepted while we were away.
const REQUEST_KEPT_WINDOW: Duration = Duration::from_secs(30 * 24 * 3600);

/// A contact request that went out on a link still open this long after has arrived: it is
/// not redialled (the other side may have rejected it, which the requester is not told).
/// Longer than a native link takes to notice a dead path (25 s disconnected + 5 s failed,
/// `transport/peer.rs`): while the path lives, SCTP delivers what was queued; had it died,
/// the link would have closed by then. (A receipt from the other side would be proof; the
/// wire has none for requests.)
const REQUEST_ARRIVED_AFTER: Duration = Duration::from_secs(40);
/// Most requests remembered as arrived, or as refused (forgetting them only allows a redial).
const MAX_ARRIVED: usize = 256;
/// A request the other side refused for now (too many requests, its list full) is asked again
/// this long after: the limiter's window (`contacts::limit::WINDOW`).
#[cfg(not(test))]
const REQUEST_RETRY: Duration = Duration::from_secs(60);
#[cfg(test)]
const REQUEST_RETRY: Duration = Duration::from_secs(2);

/// The other side refused our contact request for now.
pub(crate) struct Refused {
    /// When it last did.
    at: Instant,
    /// A retry waits for [`REQUEST_RETRY`].
    retrying: bool,
}

impl Inner {
    /// Sends our contact request on `link`; if the link is still open
    /// [`REQUEST_ARRIVED_AFTER`] later and the other side has not refused it meanwhile, the
    /// request counts as arrived and is no longer redialled.
    pub(crate) async fn send_request(this: &Arc<Inner>, link: &Arc<Link>) -> Result<(), NodeError> {
        let name = this.name_or_short();
        let sent = Instant::now();
        link.send(&Frame::Request { name }).await?;
        let (inner, link) = (Arc::downgrade(this), link.clone());
        let task = tokio::spawn(async move {
            tokio::time::sleep(REQUEST_ARRIVED_AFTER).await;
            let Some(inner) = inner.upgrade() else { return };
            // Both locks, in `request_refused`'s order: a refusal comes before or after this.
            let refused = lock(&inner.requests_refused);
            let refused_since = refused.get(&link.fp).is_some_and(|r| r.at >= sent);
            if !link.is_closed() && !refused_since {
                let mut arrived = lock(&inner.requests_arrived);
                if arrived.len() >= MAX_ARRIVED {
                    arrived.clear();
                }
                arrived.insert(link.fp);
            }
        });
        this.track([task.abort_handle()]);
        Ok(())
    }

    /// The other side refused our contact request on `link` for now (`Throttled`: too many
    /// requests, or its list of them full). It has not arrived: [`REQUEST_RETRY`] later it is
    /// asked again, on the link if it is still open, else by redialling (within
    /// [`REQUEST_REDIAL_WINDOW`] of the request, as any unanswered one).
    /// One retry waits at a time per contact: refusals of repeats (each new link asks again)
    /// only move the time of the last one.
    pub(crate) fn request_refused(this: &Arc<Inner>, link: &Arc<Link>) {
        {
            let now = Instant::now();
            let mut refused = lock(&this.requests_refused);
            if refused.len() >= MAX_ARRIVED && !refused.contains_key(&link.fp) {
                refused.retain(|_, r| r.retrying);
            }
            let entry = refused.entry(link.fp).or_insert(Refused {
                at: now,
                retrying: false,
            });
            entry.at = now;
            lock(&this.requests_arrived).remove(&link.fp);
            if entry.retrying {
                return;
            }
            entry.retrying = true;
        }
        let (inner, link) = (Arc::downgrade(this), link.clone());
        let task = tokio::spawn(async move {
            tokio::time::sleep(REQUEST_RETRY).await;
            let Some(this) = inner.upgrade() else { return };
            let fp = link.fp;
            if let Some(r) = lock(&this.requests_refused).get_mut(&fp) {
                r.retrying = false;
            }
            let since = unix_ms().saturating_sub(REQUEST_REDIAL_WINDOW.as_millis() as u64);
            let waiting = this
                .db(move |c| unanswered_request(c, &fp))
                .await
                .is_ok_and(|r| r.is_some_and(|r| r.created_ms >= since));
            if !waiting {
                return;
            }
            if link.is_closed() {
                Inner::maybe_dial(&this, &fp, true);
            } else if let Err(e) = Inner::send_request(&this, &link).await {
                tracing::debug!(contact = %fp, error = %e, "could not ask again");
            }
        });
        this.track([task.abort_handle()]);
    }

    /// Whom something waits for a link to: contacts with an outbox or an unfinished incoming
    /// file, receivers of our files that may have ended unheard (`receivers_to_ask`), those we
    /// asked to be contacts in the last [`REQUEST_REDIAL_WINDOW`] whose request has not
    /// arrived, contacts made in the last [`ACCEPT_DIAL_WINDOW`] that no link has reached (our
    /// accept waits for them), and (in the foreground) contacts whose links closed idle in the
    /// background.
    pub(crate) async fn waiting_for_links(
        &self,
        now_ms: u64,
    ) -> Result<Vec<Fingerprint>, NodeError> {
        let arrived = lock(&self.requests_arrived).clone();
        let mut reopening = self.reopening(now_ms);
        reopening.extend(self.receivers_to_ask(now_ms).await);
        self.db(move |c| {
            let asked_since = now_ms.saturating_sub(REQUEST_REDIAL_WINDOW.as_millis() as u64);
            let accepted_since = now_ms.saturating_sub(ACCEPT_DIAL_WINDOW.as_millis() as u64);
            let mut fps = chat::with_outbox(c)?;
            reopening.extend(chat::never_linked(c, accepted_since)?);
            let files = crate::chat::file::incoming_unfinished(c, None)?;
            let asked = contacts::requests(c)?.into_iter().filter(|r| {
                r.outgoing && r.created_ms >= asked_since && !arrived.contains(&r.fingerprint)
            });
            for fp in files
                .into_iter()
                .map(|t| t.conv)
                .chain(asked.map(|r| r.fingerprint))
                .chain(reopening)
            {
                if !fps.contains(&fp) {
                    fps.push(fp);
                }
            }
            Ok::<_, NodeError>(fps)
        })
        .await
    }
}

/// Our contact request to `fp`, unless `fp` is a contact by now.
fn unanswered_request(
    c: &rusqlite::Connection,
    fp: &Fingerprint,
) -> Result<Option<contacts::Request>, NodeError> {
    if contacts::get(c, fp)?.is_some() {
        return Ok(None);
    }
    let mut requests = contacts::requests(c)?.into_iter();
    Ok(requests.find(|r| r.outgoing && r.fingerprint == *fp))
}

/// At start, dials the contacts seen most recently (they may hold messages for us) and those
/// we asked to be contacts in the last [`REQUEST_KEPT_WINDOW`] (they may have accepted while we
/// were away); then dials whom something waits for (`waiting_for_links`) and has no link, with
/// backoff, waking when the next dial is due.
pub(crate) async fn redial_loop(inner: Weak<Inner>) {
    // The node starts offline: the start dials wait until it is registered, which wakes
    // `redial_wake` (a permit is kept if it comes before we wait). No polling: an offline
    // phone sleeps.
    let wake = match inner.upgrade() {
        Some(this) => this.redial_wake.clone(),
        None => return,
    };
    loop {
        match inner.upgrade() {
            Some(this) if this.registered() => break,
            Some(_) => {}
            None => return,
        }
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(REDIAL_IDLE) => {}
        }
    }
    if let Some(this) = inner.upgrade() {
        let now = unix_ms();
        let since = now.saturating_sub(RETURN_WINDOW.as_millis() as u64);
        let asked_since = now.saturating_sub(REQUEST_KEPT_WINDOW.as_millis() as u64);
        let start = this
            .db(move |c| {
                let mut fps = chat::recently_seen(c, since, RETURN_DIALS)?;
                let asked = contacts::requests(c)?.into_iter().filter(|r| {
                    r.outgoing && r.created_ms >= asked_since && !fps.contains(&r.fingerprint)
                });
                let asked: Vec<_> = asked.map(|r| r.fingerprint).collect();
                fps.extend(asked);
                Ok::<_, NodeError>(fps)
            })
            .await;
        for fp in start.unwrap_or_default() {
            Inner::maybe_dial(&this, &fp, true);
        }
    }
    let mut pause = REDIAL_MIN;
    loop {
        // Until the next contact's dial is due (at least a second, at most REDIAL_IDLE, also
        // when nothing waits or we are offline), or woken (a link went down, we came back
        // online, a dial was made elsewhere): a phone whose contact stays away sleeps through
        // its backoff.
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            // Woken: look again after a second (a link that just went down is not redialled
            // at once).
            _ = wake.notified() => tokio::time::sleep(REDIAL_MIN).await,
        }
        let Some(this) = inner.upgrade() else { return };
        // Offline, nothing can be dialled: registering wakes the loop.
        if !this.registered() {
            pause = REDIAL_IDLE;
            continue;
        }
        let Ok(waiting) = this.waiting_for_links(unix_ms()).await else {
            pause = REDIAL_MIN;
            continue;
        };
        // Backoff (and its count of failed dials, which sends a contact to a rendezvous) is
        // kept only for contacts that still have something waiting.
        lock(&this.redial).retain(|fp, _| waiting.contains(fp));
        let unlinked: Vec<_> = waiting
            .into_iter()
            .filter(|fp| this.link(fp).is_none())
            .collect();
        for fp in &unlinked {
            Inner::dial_when_due(&this, fp, false, false);
        }
        let due = {
            let (now, redial) = (Instant::now(), lock(&this.redial));
            unlinked
                .iter()
                .map(|fp| {
                    redial
                        .get(fp)
                        .map_or(REDIAL_MIN, |r| r.at.saturating_duration_since(now))
                })
                .min()
        };
        pause = due.unwrap_or(REDIAL_IDLE).clamp(REDIAL_MIN, REDIAL_IDLE);
    }
}
