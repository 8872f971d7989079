//! Contact requests to people who could not be reached when they were added (decision 0019):
//! their share link waits in the profile ([`contacts::waiting`]) and is tried when we come
//! online and then at growing intervals ([`retry_after`]); once its owner answers and the
//! handshake proves the link's fingerprint, the request goes out as if just asked.

use std::collections::BTreeMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use futures_util::StreamExt;

use super::{Inner, Link, Node, NodeError, NodeEvent, lock, unix_ms};
use crate::contacts::waiting::{self, WaitingLink};
use crate::contacts::{self, ContactError, Request, ShareLink};
use crate::transport::TransportError;

/// Shortest and longest pause between two tries of a waiting link while we are online.
#[cfg(not(test))]
const TRY_PAUSE: (Duration, Duration) = (Duration::from_secs(10), Duration::from_secs(120));
#[cfg(test)]
const TRY_PAUSE: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(2));

/// The pause after a try of a link added `age` ago: a quarter of its age, within [`TRY_PAUSE`].
/// Someone just added is likely to come online soon (a phone that was off, an app in the
/// background); one who has not for hours is tried every two minutes (a dial to an absent ID is
/// one signaling message and its answer).
fn retry_after(age: Duration) -> Duration {
    (age / 4).clamp(TRY_PAUSE.0, TRY_PAUSE.1)
}

/// Whether a dial that failed with `e` means the peer could not be reached now (offline, or
/// we are), as opposed to a peer that refused us or is someone else.
pub(super) fn unreachable(e: &NodeError) -> bool {
    matches!(
        e,
        NodeError::Transport(
            TransportError::PeerUnavailable(_)
                | TransportError::Timeout { .. }
                | TransportError::Closed
                | TransportError::Signaling(_)
                | TransportError::WebRtc(_)
        ) | NodeError::Timeout(_)
            | NodeError::NotConnected(_)
            | NodeError::Signaling(_)
    )
}

impl Node {
    /// Share links whose owner could not be reached yet, oldest first: each one's request goes
    /// out once its owner is online (those older than 14 days are dropped).
    pub async fn waiting_links(&self) -> Result<Vec<WaitingLink>, NodeError> {
        let now = unix_ms();
        self.inner.db(move |c| waiting::waiting(c, now)).await
    }
}

impl Inner {
    /// Asks the peer at the other end of `l` (its handshake proved who it is) to become a
    /// contact, and records the outgoing request; a link of theirs that waited is done. For a
    /// waiting link (`waited`), only if it still waits: the user may have cancelled it during
    /// the dial.
    pub(super) async fn ask_on(
        this: &Arc<Inner>,
        l: &Arc<Link>,
        waited: bool,
    ) -> Result<Request, NodeError> {
        let (key, peer, fp, now) = (l.key, l.peer.clone(), l.fp, unix_ms());
        let name = match l.hello_name(Duration::from_secs(2)).await {
            n if n.trim().is_empty() => fp.short(),
            n => n,
        };
        let req = this
            .db(move |c| {
                let tx = c.transaction().map_err(ContactError::from)?;
                if !waiting::stop_waiting(&tx, &fp)? && waited {
                    return Ok(None);
                }
                let req = contacts::add_request(&tx, &key, &name, &peer, true, now)?;
                tx.commit().map_err(ContactError::from)?;
                Ok::<_, ContactError>(Some(req))
            })
            .await?
            .ok_or_else(|| NodeError::Cancelled(format!("the link of {fp} no longer waits")))?;
        lock(&this.requests_arrived).remove(&fp);
        // Recorded: if it cannot be sent now, or the link closes before it arrives, the redial
        // loop asks again (an unanswered request of ours is redialled for 10 minutes).
        if let Err(e) = Inner::send_request(this, l).await {
            tracing::debug!(contact = %fp, error = %e, "request recorded, not sent yet");
        }
        this.redial_wake.notify_one();
        Ok(req)
    }

    /// Keeps `link`, whose owner could not be reached, until it can be; `tried`: a dial just
    /// failed (else, offline, it is due as soon as we are online).
    pub(super) async fn keep_waiting(
        this: &Arc<Inner>,
        link: ShareLink,
        tried: bool,
    ) -> Result<WaitingLink, NodeError> {
        let now = unix_ms();
        let w = this
            .db(move |c| waiting::wait_for(c, &link, now, tried))
            .await?;
        this.links_wake.notify_one();
        Ok(w)
    }

    /// One try to reach the owner of `w` and ask it. The link stops waiting when the request
    /// went out, when its owner became a contact (or was blocked) meanwhile, and when the try
    /// failed for another reason than reachability (its ID is held by another key, or the
    /// handshake was refused).
    async fn reach(this: &Arc<Inner>, w: WaitingLink) {
        let fp = w.fingerprint;
        let now = unix_ms();
        let known = this
            .db(move |c| contacts::trust_of(c, &fp))
            .await
            .is_ok_and(|t| t.is_some());
        let outcome = match known {
            true => Ok(None),
            false => match Inner::dial(this, &w.peer_id).await {
                Ok(l) if l.fp == fp => Inner::ask_on(this, &l, true).await.map(Some),
                Ok(l) => {
                    tracing::warn!(
                        contact = %fp, peer = %w.peer_id, presented = %l.fp,
                        "a waiting link's ID is held by another key; no longer waiting"
                    );
                    l.close().await;
                    Ok(None)
                }
                Err(e) => Err(e),
            },
        };
        let stop = match outcome {
            Ok(Some(req)) => {
                this.emit(NodeEvent::ContactRequestSent {
                    fingerprint: fp.to_hex(),
                    name: req.name,
                });
                return;
            }
            Ok(None) => true,
            Err(e) if unreachable(&e) => {
                tracing::debug!(contact = %fp, error = %e, "waiting link not reached");
                false
            }
            Err(e) => {
                tracing::info!(contact = %fp, error = %e, "waiting link given up");
                true
            }
        };
        let _ = this
            .db(move |c| match stop {
                true => waiting::stop_waiting(c, &fp).map(drop),
                false => waiting::tried(c, &fp, now),
            })
            .await;
    }
}

/// While we are online: tries each waiting link [`retry_after`] its last try, and all that
/// are due when woken (we came online, a link was added). Asleep when none waits.
pub(crate) async fn waiting_loop(inner: Weak<Inner>) {
    let wake = match inner.upgrade() {
        Some(this) => this.links_wake.clone(),
        None => return,
    };
    loop {
        let next = {
            let Some(this) = inner.upgrade() else { return };
            match this.registered() {
                true => try_due(&this).await,
                false => None,
            }
        };
        match next {
            Some(pause) => {
                tokio::select! {
                    _ = wake.notified() => {}
                    _ = tokio::time::sleep(pause) => {}
                }
            }
            None => wake.notified().await,
        }
    }
}

/// How many waiting links are tried at once: an absent owner's try waits for a timeout, which
/// must not hold up the others (up to [`waiting::MAX_WAITING`] of them).
const TRIES_AT_ONCE: usize = 4;

/// Tries the waiting links that are due, [`TRIES_AT_ONCE`] persistent IDs at a time; how long
/// until the next one is.
async fn try_due(this: &Arc<Inner>) -> Option<Duration> {
    let now = unix_ms();
    let links = match this
        .db(move |c| {
            waiting::expire(c, now)?;
            waiting::waiting(c, now)
        })
        .await
    {
        Ok(links) => links,
        // Looked at again later: the links are still there.
        Err(e) => {
            tracing::warn!(error = %e, "could not read the waiting links");
            return Some(TRY_PAUSE.1);
        }
    };
    // The pause after a try at `at` of a link added at `created`, in ms.
    let pause = |created: u64, at: u64| {
        retry_after(Duration::from_millis(at.saturating_sub(created))).as_millis() as u64
    };
    let (due, later): (Vec<_>, Vec<_>) = links
        .into_iter()
        .partition(|w| w.tried_ms + pause(w.created_ms, w.tried_ms) <= now);
    // Links to one persistent ID are tried one after another: their dials share one link,
    // which a try that finds another key there closes.
    let mut by_id: BTreeMap<String, Vec<WaitingLink>> = BTreeMap::new();
    for w in due {
        by_id.entry(w.peer_id.clone()).or_default().push(w);
    }
    let tried = futures_util::stream::iter(by_id.into_values())
        .map(|same_id| async move {
            let mut next = vec![];
            for w in same_id {
                let created = w.created_ms;
                Inner::reach(this, w).await;
                let at = unix_ms();
                next.push(at + pause(created, at));
            }
            next
        })
        .buffer_unordered(TRIES_AT_ONCE)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .flatten();
    let untried = later
        .iter()
        .map(|w| w.tried_ms + pause(w.created_ms, w.tried_ms));
    let next = tried.chain(untried).min()?;
    Some(Duration::from_millis(next.saturating_sub(unix_ms())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_is_tried_more_rarely_as_it_ages() {
        assert_eq!(retry_after(Duration::ZERO), TRY_PAUSE.0);
        assert_eq!(retry_after(TRY_PAUSE.0 * 6), TRY_PAUSE.0 * 3 / 2);
        assert_eq!(retry_after(Duration::from_secs(86_400)), TRY_PAUSE.1);
    }
}
