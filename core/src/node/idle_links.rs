//! In the background a phone keeps only the links something uses (decision 0018). Every open
//! link costs a wake-up at each of the peer's keepalives, and on real phones the peers' clocks
//! put those at their own times; a contact link that carried no frame for
//! [`DEFAULT_BACKGROUND_LINK_IDLE`] since the app went to the background (or since its last
//! frame, if later) is closed. A contact with something to say dials us through the signaling
//! server, which stays connected: its dial is the doorbell. Kept open whatever their idleness:
//! links to contacts something waits for (outbox, unfinished file, fresh contact request), the
//! active call's peer, our group routers and the members of groups we route, and links with an
//! RPC upload open or an RPC request of ours unanswered. Back in the foreground, the contacts
//! whose links were closed are dialled (with the redial loop's backoff, for
//! [`REOPEN_WINDOW`]).

use std::collections::HashSet;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use tokio::task::AbortHandle;

use super::link::Link;
use super::{Inner, Node, lock, unix_ms};
use crate::identity::Fingerprint;
use crate::wake_grid::WallClock;

/// How long a link may carry nothing in the background before it is closed.
pub const DEFAULT_BACKGROUND_LINK_IDLE: Duration = Duration::from_secs(120);
/// Idle links are looked for when the next may be due, on the wall-clock grid of the
/// background heartbeats (so the look shares their wake-up), or the limit's if shorter.
const SWEEP: Duration = Duration::from_secs(10);
/// The limit's bounds (tests use a fraction of a second).
const MIN_LIMIT: Duration = Duration::from_millis(100);
const MAX_LIMIT: Duration = Duration::from_secs(24 * 3600);
/// How long the foreground keeps dialling a contact whose link closed idle in the background.
const REOPEN_WINDOW: Duration = Duration::from_secs(10 * 60);

/// The node's side of it.
pub(crate) struct IdleLinks {
    limit: Duration,
    /// Since when the app is in the background (Unix ms); `None` in the foreground.
    background_since: Option<u64>,
    /// The sweeping task, while in the background.
    sweeper: Option<AbortHandle>,
    /// Contacts whose links were closed for idleness, dialled again in the foreground.
    closed: HashSet<Fingerprint>,
    /// In the foreground, until when (Unix ms) they are.
    reopen_until: u64,
}

impl Default for IdleLinks {
    fn default() -> Self {
        Self {
            limit: DEFAULT_BACKGROUND_LINK_IDLE,
            background_since: None,
            sweeper: None,
            closed: HashSet::new(),
            reopen_until: 0,
        }
    }
}

impl Node {
    /// How long a link may carry nothing while the app is in the background before it is
    /// closed (default [`DEFAULT_BACKGROUND_LINK_IDLE`]; tests and benchmarks use short ones;
    /// kept between 0.1 s and a day).
    pub fn set_background_link_idle(&self, idle: Duration) {
        lock(&self.inner.idle_links).limit = idle.clamp(MIN_LIMIT, MAX_LIMIT);
    }
}

impl Inner {
    /// The app went to the background (`false`: start looking for idle links) or came back
    /// (stop, and dial the contacts whose links were closed).
    pub(crate) fn idle_links_app_active(this: &Arc<Inner>, active: bool) {
        let reopen: Vec<Fingerprint> = {
            let mut idle = lock(&this.idle_links);
            if let Some(task) = idle.sweeper.take() {
                task.abort();
            }
            if active {
                idle.background_since = None;
                idle.reopen_until = unix_ms().saturating_add(REOPEN_WINDOW.as_millis() as u64);
                idle.closed.iter().copied().collect()
            } else {
                idle.background_since.get_or_insert_with(unix_ms);
                let task = tokio::spawn(sweep_loop(Arc::downgrade(this)));
                idle.sweeper = Some(task.abort_handle());
                this.track([task.abort_handle()]);
                vec![]
            }
        };
        for fp in reopen {
            if this.link(&fp).is_none() {
                Inner::maybe_dial(this, &fp, true);
            }
        }
    }

    /// In the foreground, the contacts whose links closed idle in the background and are
    /// not linked again yet (the redial loop dials them, with backoff, until
    /// [`REOPEN_WINDOW`] ends); forgets those linked again.
    pub(crate) fn reopening(&self, now_ms: u64) -> Vec<Fingerprint> {
        let mut idle = lock(&self.idle_links);
        if idle.background_since.is_some() {
            return vec![];
        }
        if now_ms >= idle.reopen_until {
            idle.closed.clear();
            return vec![];
        }
        idle.closed.retain(|fp| self.link(fp).is_none());
        idle.closed.iter().copied().collect()
    }

    /// Whether something other than waiting data holds the link to `link.fp` open: frames
    /// being handled (an RPC request we serve), the active call, a group, an RPC upload or an
    /// RPC request of ours.
    fn held_open(&self, link: &Link) -> bool {
        let fp = link.fp;
        link.handling()
            || lock(&self.calls)
                .machine
                .active()
                .is_some_and(|c| c.peer == fp)
            || lock(&self.groups).linked_peers().contains(&fp)
            || !lock(&link.uploads).is_empty()
            || lock(&self.rpc.pending)
                .values()
                .any(|(to, tx)| *to == fp && !tx.is_closed())
    }

    /// Closes the links idle past the limit that nothing holds open; returns when (Unix ms)
    /// the next open link may be due, `None` if no link is open.
    async fn close_idle_links(this: &Arc<Inner>) -> Option<u64> {
        let now = unix_ms();
        let (limit, since) = {
            let idle = lock(&this.idle_links);
            let limit = u64::try_from(idle.limit.as_millis()).unwrap_or(u64::MAX);
            (limit, idle.background_since?)
        };
        let due_at = |l: &Link| l.last_used_ms().max(since).saturating_add(limit);
        let open: Vec<_> = lock(&this.links)
            .values()
            .flatten()
            .filter(|l| !l.is_closed())
            .cloned()
            .collect();
        let (due, later): (Vec<_>, Vec<_>) = open.into_iter().partition(|l| due_at(l) <= now);
        let next = later.iter().map(|l| due_at(l)).min();
        // A kept link is looked at again a whole limit later.
        let kept = Inner::close_due_links(this, due, since, &due_at).await;
        let again = kept.then(|| now.saturating_add(limit));
        next.into_iter().chain(again).min()
    }

    /// Closes the links of `due` that nothing holds open and that are still due as they
    /// close; returns whether any was kept.
    async fn close_due_links(
        this: &Arc<Inner>,
        due: Vec<Arc<Link>>,
        since: u64,
        due_at: &impl Fn(&Link) -> u64,
    ) -> bool {
        let count = due.len();
        let due: Vec<_> = due.into_iter().filter(|l| !this.held_open(l)).collect();
        let mut kept = due.len() < count;
        if due.is_empty() {
            return kept;
        }
        let Ok(waiting) = this.waiting_for_links(unix_ms()).await else {
            return true;
        };
        for link in due {
            let fp = link.fp;
            if waiting.contains(&fp) {
                kept = true;
                continue;
            }
            let contact = this.db_read_now(move |c| crate::contacts::trust_of(c, &fp));
            let contact = matches!(contact.await, Ok(Some(_)));
            {
                // Looked at again as it is closed: a frame may have come meanwhile, or the
                // app come back to the foreground.
                let mut idle = lock(&this.idle_links);
                if idle.background_since != Some(since)
                    || due_at(&link) > unix_ms()
                    || this.held_open(&link)
                {
                    kept = true;
                    continue;
                }
                if contact {
                    idle.closed.insert(fp);
                }
            }
            tracing::debug!(peer = %link.peer, "closing a link idle in the background");
            link.close().await;
        }
        kept
    }
}

/// The grid the looks fall on: the background heartbeats' (10 s), or the limit's if shorter.
fn sweep_period(limit: Duration) -> Duration {
    SWEEP.min(limit)
}

/// Looks for idle links when the next one may be due (on the grid), or, with none open, when
/// a link comes up: no timer runs for nothing.
async fn sweep_loop(inner: Weak<Inner>) {
    loop {
        let Some(this) = inner.upgrade() else { return };
        let mut ups = this.links_up.subscribe();
        let next = Inner::close_idle_links(&this).await;
        let period = sweep_period(lock(&this.idle_links).limit);
        drop(this);
        match next {
            Some(due_ms) => {
                let in_ms = due_ms.saturating_sub(unix_ms());
                let due = Instant::now() + Duration::from_millis(in_ms);
                // The first grid point at or after `due`.
                let at = WallClock::system().align(due + period / 4, period);
                tokio::time::sleep_until(at.into()).await;
            }
            None => {
                if ups.changed().await.is_err() {
                    return;
                }
            }
        }
    }
}
