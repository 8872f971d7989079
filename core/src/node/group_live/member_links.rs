//! A router's links to the group's members: dialling members it sees in the namespace, and
//! closing links that went quiet.

use std::time::{Duration, Instant};

use super::{Cmd, Live};
use crate::groups::GroupInput;
use crate::identity::Fingerprint;
use crate::node::Inner;
use crate::session::FEATURE_GROUPS;
use crate::wake_grid::WallClock;

/// The router checks its links and dials members it sees but is not linked to this often
/// (in the background: `TICK_BACKGROUND`), on the wall-clock grid of the namespace heartbeats
/// (0.8 s, 10 s), so the check shares their wake-up.
const TICK: Duration = Duration::from_millis(800);
const TICK_BACKGROUND: Duration = Duration::from_secs(10);
/// A member link that sent nothing for this long is stale if the member is gone from the
/// namespace too (members say `Hello` every 2.4 s, in the background every 10 s, and the
/// namespace waits for each member's own heartbeat pace); present there, after `STALE_PRESENT`.
const STALE: Duration = Duration::from_secs(6);
const STALE_PRESENT: Duration = Duration::from_secs(30);
/// Links at most (dialling included) of a router whose log does not hold it yet, when it dials
/// peers its log cannot place (below the engine's 16 probation links).
const UNPLACED_DIALS: usize = 8;

/// The timer of a routing task's link check, in the foreground (`active`) or the background.
pub(super) fn link_check_tick(active: bool) -> tokio::time::Interval {
    let period = if active { TICK } else { TICK_BACKGROUND };
    let first = WallClock::system().next_after(Instant::now(), period);
    let mut tick = tokio::time::interval_at(first.into(), period);
    // A late tick is skipped rather than made up for, so the next stays on the grid.
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    tick
}

impl Live {
    /// A router whose log does not hold it yet: `peer`, a namespace peer its log cannot place,
    /// could not be dialled, showed nothing more or went quiet; it is not dialled again until
    /// the log grows (others get their turn meanwhile).
    pub(super) fn unplaced_gave_nothing(&mut self, peer: Fingerprint) {
        let log = self.engine.log();
        if self.engine.routes_unplaced()
            && !log.state().is_member(&peer)
            && self.ns_peers.contains_key(&peer)
        {
            self.turned_away.insert(peer, log.len());
        }
    }

    /// Router side: a member's link went quiet; tell the engine and close it so the next
    /// tick dials afresh (a killed process leaves its link open for a while).
    pub(super) fn forget(&mut self, peer: Fingerprint) {
        self.unplaced_gave_nothing(peer);
        if self.linked.remove(&peer) {
            self.input(GroupInput::PeerDown { peer });
        }
        self.heard.remove(&peer);
        if let Some(inner) = self.inner.upgrade()
            && let Some(link) = inner.link(&peer)
        {
            tokio::spawn(async move { link.close().await });
        }
    }

    /// Whether the link check has anything to do: we route and hold member links or see
    /// members in the namespace (a member that appears is dialled at once, see `on_ns`). A
    /// router alone sleeps instead of waking every 0.8 s.
    pub(super) fn checks_links(&self) -> bool {
        self.engine.is_router() && !(self.linked.is_empty() && self.ns_peers.is_empty())
    }

    pub(super) fn on_tick(&mut self) {
        if !self.engine.is_router() {
            return;
        }
        let now = Instant::now();
        let stale: Vec<Fingerprint> = self
            .linked
            .iter()
            .filter(|fp| {
                let limit = if self.ns_peers.contains_key(fp) {
                    STALE_PRESENT
                } else {
                    STALE
                };
                self.heard.get(fp).is_none_or(|t| now - *t > limit)
            })
            .copied()
            .collect();
        for fp in stale {
            tracing::debug!(group = %self.gid, peer = %fp, "stale group link");
            self.forget(fp);
        }
        self.dial_members();
    }

    /// Router side: dials every current member seen in the namespace that is not linked. A
    /// router whose log does not hold it yet (a pending invitee that won the election) also
    /// dials a few peers the log cannot place, to learn the log from a member among them; one
    /// that turned out unable to show more is not dialled again until the log grows.
    pub(super) fn dial_members(&mut self) {
        if !self.engine.is_router() {
            return;
        }
        let Some(inner) = self.inner.upgrade() else {
            return;
        };
        let state = self.engine.log().state();
        let unlinked = |fp: &Fingerprint| !self.linked.contains(fp) && !self.dialing.contains(fp);
        let mut todo: Vec<(Fingerprint, String)> = self
            .ns_peers
            .iter()
            .filter(|(fp, _)| state.is_member(fp) && unlinked(fp))
            .map(|(fp, id)| (*fp, id.clone()))
            .collect();
        let len = self.engine.log().len();
        // What was tried at an older log, or while we routed on a log that holds us, is stale.
        self.turned_away.retain(|_, at| *at == len);
        if !self.engine.routes_unplaced() {
            self.turned_away.clear();
        } else {
            let busy = self.linked.len() + self.dialing.len() + todo.len();
            let room = UNPLACED_DIALS.saturating_sub(busy);
            todo.extend(
                self.ns_peers
                    .iter()
                    .filter(|(fp, _)| {
                        !state.is_member(fp)
                            && !state.gone.contains_key(fp)
                            && self.turned_away.get(fp) != Some(&len)
                            && unlinked(fp)
                    })
                    .take(room)
                    .map(|(fp, id)| (*fp, id.clone())),
            );
        }
        for (fp, id) in todo {
            self.dialing.insert(fp);
            let (dialer, tx) = (inner.clone(), self.tx.clone());
            let task = tokio::spawn(async move {
                let ok = match Inner::dial(&dialer, &id).await {
                    Ok(link) if link.fp == fp && link.features & FEATURE_GROUPS != 0 => true,
                    Ok(link) => {
                        tracing::info!(peer = %id, proven = %link.fp, "not the group member we dialed");
                        false
                    }
                    Err(e) => {
                        tracing::debug!(peer = %id, error = %e, "could not dial a group member");
                        false
                    }
                };
                let _ = tx.send(Cmd::Dialed(fp, ok)).await;
            });
            inner.track([task.abort_handle()]);
        }
    }
}
