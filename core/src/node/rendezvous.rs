//! Rendezvous at the node: joins the pair namespace (`contacts::rendezvous`) of contacts it
//! cannot reach at their last known ID, and of contacts that have not seen us since our own ID
//! changed; dials the ID a contact seals into its record there; leaves when the contact is
//! linked, no longer sought, or the 10-minute window turns (then joins the next one).
//!
//! A sealed ID is only where to dial: the route is stored by the session handshake on it
//! (`chat::session_started`), so a stale or forged hint changes nothing.

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::task::AbortHandle;

use super::{Inner, Node, NodeError, NodeEvent, lock, unix_ms};
use crate::chat::store as chat;
use crate::contacts::rendezvous::{self, PairSecret};
use crate::contacts::{self, Capability};
use crate::discovery::driver::NamespaceHandle;
use crate::discovery::namespace::NsEvent;
use crate::identity::{Fingerprint, VerifyingKey};

/// A contact is sought at a rendezvous after this many dials without reaching it.
pub(crate) const SEEK_AFTER_DIALS: u32 = 3;
/// At most this many rendezvous at once (each holds signaling registrations).
const MAX_MEETINGS: usize = 4;
/// After our ID changed, contacts that have not seen us since are met for this long...
const ANNOUNCE_FOR_MS: u64 = 7 * 24 * 3600 * 1000;
/// ...if we saw them within this long before the change.
const ANNOUNCE_SEEN_WITHIN_MS: u64 = 30 * 24 * 3600 * 1000;
/// The plan is revisited at least this often.
const SWEEP: Duration = Duration::from_secs(60);
/// Windows turn this long after the boundary, so clocks a little behind still meet us.
const TURN_DELAY_MS: u64 = 2_000;

/// A rendezvous in progress with one contact.
pub(super) struct Meeting {
    window: u64,
    handle: NamespaceHandle,
    watcher: AbortHandle,
}

/// The node's rendezvous: running meetings by contact.
#[derive(Default)]
pub(super) struct Rendezvous {
    meetings: HashMap<Fingerprint, Meeting>,
}

impl Inner {
    /// Contacts whose redials have failed [`SEEK_AFTER_DIALS`] times and have no link.
    fn unreachable(&self) -> Vec<Fingerprint> {
        let redial = lock(&self.redial);
        redial
            .iter()
            .filter(|(_, r)| r.attempts >= SEEK_AFTER_DIALS)
            .map(|(fp, _)| *fp)
            .filter(|fp| self.link(fp).is_none())
            .collect()
    }

    /// The app moved to the foreground or the background: the running meetings beat at the
    /// matching pace (new ones start at it).
    pub(super) fn rendezvous_set_active(&self, active: bool) {
        for m in lock(&self.rendezvous).meetings.values() {
            m.handle.set_active(active);
        }
    }

    /// Asks the rendezvous loop to look again (a link came up, dials keep failing).
    pub(crate) fn replan_rendezvous(&self) {
        self.rendezvous_wake.notify_one();
    }

    /// The contacts to meet now, sought ones first, with their keys.
    async fn wanted_meetings(&self) -> Result<Vec<(Fingerprint, [u8; 32])>, NodeError> {
        let seek = self.unreachable();
        let now = unix_ms();
        let wanted = self
            .db(move |c| {
                let mut fps = seek;
                // Stored in whole seconds: "before the change" runs to the end of its second.
                let changed = crate::store::identity::last_peer_id_change(c)?
                    .map(|s| u64::try_from(s).unwrap_or(0).saturating_add(1) * 1000);
                if let Some(at) = changed
                    && now.saturating_sub(at) < ANNOUNCE_FOR_MS
                {
                    let since = at.saturating_sub(ANNOUNCE_SEEN_WITHIN_MS);
                    for fp in chat::seen_between(c, since, at, MAX_MEETINGS)? {
                        if !fps.contains(&fp) {
                            fps.push(fp);
                        }
                    }
                }
                let mut out = vec![];
                for fp in fps {
                    if let Some(contact) = contacts::get(c, &fp)?
                        && contact.trust.allows(Capability::Connect)
                    {
                        out.push((fp, contact.public_key));
                    }
                }
                Ok::<_, NodeError>(out)
            })
            .await?;
        Ok(wanted
            .into_iter()
            .filter(|(fp, _)| self.link(fp).is_none())
            .take(MAX_MEETINGS)
            .collect())
    }

    /// Starts the meeting with `fp` in `window`: our record there carries our sealed ID; the
    /// contact's record is opened and its ID dialled.
    fn start_meeting(
        this: &Arc<Inner>,
        fp: Fingerprint,
        key: &[u8; 32],
        window: u64,
    ) -> Option<Meeting> {
        let key = VerifyingKey::from_bytes(key).ok()?;
        let secret = PairSecret::derive(&this.identity, &key)?;
        let note = secret.seal_route(window, &this.fingerprint, &this.peer_id());
        let (handle, mut events) =
            NamespaceHandle::spawn(this.ns_setup(secret.namespace(window), None, note))
                .map_err(|e| tracing::warn!(error = %e, "could not start a rendezvous"))
                .ok()?;
        let weak = Arc::downgrade(this);
        let watcher = tokio::spawn(async move {
            while let Some(ev) = events.recv().await {
                let NsEvent::PeerSeen(peer) = ev else {
                    continue;
                };
                if peer.fingerprint != fp {
                    continue;
                }
                let Some(id) = secret.open_route(window, &fp, &peer.note) else {
                    tracing::info!(contact = %fp, "rendezvous record without a usable route");
                    continue;
                };
                let Some(this) = weak.upgrade() else { return };
                if this.link(&fp).is_some() {
                    continue;
                }
                match Inner::dial(&this, &id).await {
                    Ok(link) if link.fp == fp => {
                        tracing::info!(contact = %fp, peer = %id, "met at a rendezvous");
                    }
                    Ok(link) => {
                        tracing::warn!(contact = %fp, peer = %id, proved = %link.fp,
                            "a rendezvous route led to another key");
                    }
                    Err(e) => tracing::info!(contact = %fp, error = %e, "rendezvous dial failed"),
                }
            }
        });
        Some(Meeting {
            window,
            handle,
            watcher: watcher.abort_handle(),
        })
    }

    /// Brings the running meetings in line with the wanted ones for the current window.
    async fn sweep_rendezvous(this: &Arc<Inner>) {
        let wanted = match this.wanted_meetings().await {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(error = %e, "could not plan rendezvous");
                return;
            }
        };
        let window = rendezvous::window(unix_ms().saturating_sub(TURN_DELAY_MS));
        let fps: Vec<Fingerprint> = wanted.iter().map(|(fp, _)| *fp).collect();
        let (plan, leaving) = {
            let mut state = lock(&this.rendezvous);
            let running: Vec<(Fingerprint, u64)> = state
                .meetings
                .iter()
                .map(|(fp, m)| (*fp, m.window))
                .collect();
            let plan = rendezvous::plan(&running, &fps, window);
            let leaving: Vec<Meeting> = plan
                .leave
                .iter()
                .filter_map(|fp| state.meetings.remove(fp))
                .collect();
            (plan, leaving)
        };
        for meeting in leaving {
            meeting.watcher.abort();
            tokio::spawn(meeting.handle.leave());
        }
        for fp in &plan.ended {
            this.emit(NodeEvent::ContactSearch {
                fingerprint: fp.to_hex(),
                searching: false,
            });
        }
        for fp in plan.join {
            let Some((_, key)) = wanted.iter().find(|(w, _)| *w == fp) else {
                continue;
            };
            let Some(meeting) = Inner::start_meeting(this, fp, key, window) else {
                // A search that could not turn to the new window has ended.
                if !plan.started.contains(&fp) {
                    this.emit(NodeEvent::ContactSearch {
                        fingerprint: fp.to_hex(),
                        searching: false,
                    });
                }
                continue;
            };
            lock(&this.rendezvous).meetings.insert(fp, meeting);
            if plan.started.contains(&fp) {
                this.emit(NodeEvent::ContactSearch {
                    fingerprint: fp.to_hex(),
                    searching: true,
                });
            }
        }
    }
}

impl Inner {
    /// Leaves every meeting gracefully (the node stops).
    pub(super) async fn leave_meetings(&self) {
        let meetings: Vec<Meeting> = lock(&self.rendezvous)
            .meetings
            .drain()
            .map(|(_, m)| m)
            .collect();
        for m in &meetings {
            m.watcher.abort();
        }
        for m in meetings {
            m.handle.leave().await;
        }
    }
}

impl Node {
    /// Fingerprints of the contacts being looked for at a rendezvous now, sorted.
    pub fn searching(&self) -> Vec<String> {
        let mut fps: Vec<String> = lock(&self.inner.rendezvous)
            .meetings
            .keys()
            .map(Fingerprint::to_hex)
            .collect();
        fps.sort();
        fps
    }
}

/// Revisits the meetings when asked, at every window turn, and every minute.
pub(super) async fn rendezvous_loop(inner: Weak<Inner>) {
    loop {
        let Some(this) = inner.upgrade() else { return };
        Inner::sweep_rendezvous(&this).await;
        let turn = rendezvous::until_next_window(unix_ms().saturating_sub(TURN_DELAY_MS));
        let pause = SWEEP.min(Duration::from_millis(turn));
        let wake = this.rendezvous_wake.clone();
        drop(this);
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            () = wake.notified() => {}
        }
    }
}
