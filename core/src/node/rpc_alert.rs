//! The baby monitor's sound alert over links (decision 0014). The armed device's shell reports
//! its microphone's level; when the levels raise an alert ([`crate::rpc::alert`]), every
//! contact at Full Access whose grants let it watch the armed camera gets an `RpcSoundAlert`
//! frame (dialled if needed). The receiving side takes it only from a contact at Trusted or
//! above whose camera it asked for (`media.stream`, remembered across restarts) and turns it
//! into [`NodeEvent::MonitorAlert`] and a `MonitorAlert` notification (none while that stream
//! is on screen), at most one per contact every [`MIN_GAP_MS`].

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::platform::{Notification, NotificationCategory};
use super::{Inner, Node, NodeError, NodeEvent, lock, unix_ms};
use crate::chat::wire::Frame;
use crate::contacts::{self, Trust};
use crate::identity::Fingerprint;
use crate::rpc::alert::SoundAlert;
use crate::rpc::scope::{Facing, Need};
use crate::rpc::store as rpc_store;
use crate::session::FEATURE_RPC;
use crate::store::{StoreError, settings};

/// Alerts from one contact closer together than this are dropped.
const MIN_GAP_MS: u64 = 5_000;

/// The setting listing the monitors whose camera we asked for (hex, oldest first).
const WATCHED_KEY: &str = "rpc.watched";
/// Most monitors remembered as watched (the one asked longest ago goes first).
const MAX_WATCHED: usize = 64;

/// How many alerts [`Node::monitor_alerts`] keeps.
pub(crate) const RECENT_ALERTS: usize = 20;

/// A sound alert a watched monitor sent ([`Node::monitor_alerts`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonitorAlertSeen {
    /// The monitor's fingerprint.
    pub fingerprint: String,
    /// The level it heard, dBFS.
    pub level_dbfs: i16,
    /// When it arrived, Unix ms.
    pub at_ms: u64,
}

impl Node {
    /// The sound alerts of monitors we watch taken since the node started, oldest first (the
    /// last [`RECENT_ALERTS`]): what a monitor screen opened from an alert's notification shows.
    pub fn monitor_alerts(&self) -> Vec<MonitorAlertSeen> {
        lock(&self.inner.rpc.alerts_seen).iter().cloned().collect()
    }

    /// Turns the sound alert of the armed camera on (at `threshold_dbfs`, between -120 and 0)
    /// or off (`None`). The shell then reports levels with [`Node::rpc_sound_level`].
    pub fn rpc_sound_alert(&self, threshold_dbfs: Option<f32>) -> Result<(), NodeError> {
        if let Some(t) = threshold_dbfs
            && !(-120.0..=0.0).contains(&t)
        {
            return Err(NodeError::InvalidInput(format!(
                "threshold {t} dBFS: between -120 and 0"
            )));
        }
        *lock(&self.inner.rpc.sound) = threshold_dbfs.map(SoundAlert::new);
        Ok(())
    }

    /// The microphone's level now, in dBFS, from the armed device's shell (a few times a
    /// second while the sound alert is on). Ignored unless the camera is armed.
    pub fn rpc_sound_level(&self, dbfs: f32) {
        let Some(facing) = lock(&self.inner.rpc.armed).as_ref().map(|(f, _)| *f) else {
            return;
        };
        let fired = lock(&self.inner.rpc.sound)
            .as_mut()
            .and_then(|a| a.level(dbfs, unix_ms()));
        let Some(level) = fired else { return };
        let below_db = (-level).round().clamp(0.0, 255.0) as u8;
        let weak = Arc::downgrade(&self.inner);
        let task = tokio::spawn(async move {
            if let Some(inner) = weak.upgrade() {
                Inner::send_sound_alert(&inner, facing, below_db).await;
            }
        });
        self.inner.track([task.abort_handle()]);
    }
}

impl Inner {
    /// Tells every contact allowed to watch the `facing` camera that it heard a sound.
    async fn send_sound_alert(this: &Arc<Inner>, facing: Facing, below_db: u8) {
        let watchers = this
            .db(move |c| {
                let mut fps: Vec<String> = rpc_store::grants(c)?
                    .into_iter()
                    .map(|g| g.fingerprint)
                    .collect();
                fps.dedup();
                let mut out = vec![];
                for fp in fps.iter().filter_map(|s| s.parse::<Fingerprint>().ok()) {
                    let allowed = rpc_store::scopes_of(c, &fp)?
                        .iter()
                        .any(|s| s.allows(&Need::Camera(facing)));
                    if allowed && contacts::trust_of(c, &fp)? == Some(Trust::FullAccess) {
                        out.push(fp);
                    }
                }
                Ok::<_, NodeError>(out)
            })
            .await;
        let watchers = match watchers {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(error = %e, "could not read who watches the monitor");
                return;
            }
        };
        for fp in watchers {
            match Inner::dial_contact(this, &fp).await {
                Ok(link) if link.features & FEATURE_RPC != 0 => {
                    let _ = link.send(&Frame::RpcSoundAlert { below_db }).await;
                }
                Ok(_) => {}
                Err(e) => tracing::info!(%fp, error = %e, "could not alert a watcher"),
            }
        }
    }

    /// The monitors whose camera we asked for, oldest first (read once from the store).
    async fn watched(&self) -> Result<Vec<Fingerprint>, NodeError> {
        if let Some(w) = lock(&self.rpc.watched).clone() {
            return Ok(w);
        }
        let list = self.db(read_watched).await?;
        // A change stored meanwhile set the list first: it stays.
        Ok(lock(&self.rpc.watched).get_or_insert(list).clone())
    }

    /// Changes the watched monitors with `change` in one database call (read, change, write
    /// and the list in memory, under the store's lock), so concurrent changes lose nothing.
    async fn change_watched(
        &self,
        change: impl FnOnce(&mut Vec<Fingerprint>) + Send + 'static,
    ) -> Result<(), NodeError> {
        let cache = self.rpc.watched.clone();
        self.db(move |c| {
            let mut list = read_watched(c)?;
            let before = list.clone();
            change(&mut list);
            if list != before {
                let text = list.iter().map(|f| f.to_hex()).collect::<Vec<_>>();
                settings::set_setting(c, WATCHED_KEY, &text.join(" "))?;
            }
            *lock(&cache) = Some(list);
            Ok::<_, NodeError>(())
        })
        .await
    }

    /// Remembers that we asked `fp` for its camera: its sound alerts are taken from now on.
    pub(super) async fn note_watched(&self, fp: Fingerprint) {
        let noted = self.change_watched(move |list| {
            list.retain(|w| *w != fp);
            list.push(fp);
            let over = list.len().saturating_sub(MAX_WATCHED);
            list.drain(..over);
        });
        if let Err(e) = noted.await {
            tracing::warn!(error = %e, "could not remember a watched monitor");
        }
    }

    /// Forgets the monitor `fp` (a removed contact): its alerts are no longer taken.
    pub(super) async fn forget_watched(&self, fp: Fingerprint) {
        let forgot = self.change_watched(move |list| list.retain(|w| *w != fp));
        if let Err(e) = forgot.await {
            tracing::warn!(error = %e, "could not forget a watched monitor");
        }
    }

    /// A sound alert from the contact of `fp` (at Trusted or above): an event, and a
    /// notification unless its stream is on the screen now (we are in a call with it in the
    /// foreground). Dropped unless we asked `fp` for its camera.
    pub(super) async fn on_sound_alert(&self, fp: &Fingerprint, below_db: u8) {
        if !self.watched().await.is_ok_and(|w| w.contains(fp)) {
            tracing::info!(%fp, "dropped a sound alert from a monitor we did not watch");
            return;
        }
        let now = unix_ms();
        {
            let mut last = lock(&self.rpc.alerts_in);
            if last
                .get(fp)
                .is_some_and(|t| now.saturating_sub(*t) < MIN_GAP_MS)
            {
                return;
            }
            last.insert(*fp, now);
        }
        {
            let mut seen = lock(&self.rpc.alerts_seen);
            if seen.len() == RECENT_ALERTS {
                seen.pop_front();
            }
            seen.push_back(MonitorAlertSeen {
                fingerprint: fp.to_hex(),
                level_dbfs: -i16::from(below_db),
                at_ms: now,
            });
        }
        self.emit(NodeEvent::MonitorAlert {
            fingerprint: fp.to_hex(),
            level_dbfs: -i16::from(below_db),
        });
        let watching = !self.background.load(Ordering::SeqCst)
            && lock(&self.calls)
                .machine
                .active()
                .is_some_and(|c| c.peer == *fp);
        if let Some(notifier) = self.notifier.as_ref().filter(|_| !watching) {
            notifier.notify(Notification {
                category: NotificationCategory::MonitorAlert,
                title: self.contact_name(fp).await,
                body: format!(
                    "the baby monitor hears a sound ({} dBFS)",
                    -i16::from(below_db)
                ),
                conversation: Some(fp.to_hex()),
            });
        }
    }
}

/// The watched monitors as stored, oldest first.
fn read_watched(c: &mut rusqlite::Connection) -> Result<Vec<Fingerprint>, StoreError> {
    let stored = settings::get_setting(c, WATCHED_KEY)?.unwrap_or_default();
    Ok(stored
        .split_whitespace()
        .filter_map(|s| s.parse().ok())
        .collect())
}
