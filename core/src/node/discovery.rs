//! Namespaces and stadium mode at the node: custom namespaces joined by name (persisted and
//! restored at start), and geohash cells joined and left as the position moves. Coordinates
//! stay in memory only: they are never stored and never logged.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::AbortHandle;

use super::platform::{LocationFix, LocationSink, LocationUpdate};
use super::{Inner, Node, NodeError, NodeEvent, lock, unix_ms};
use crate::discovery::driver::{NamespaceHandle, NsSetup};
use crate::discovery::geo::{self, CellTracker, GeoPoint, TrackerConfig};
use crate::discovery::namespace::{NsEvent, PeerInfo, RoleKind};
use crate::discovery::presence::GeoStamp;
use crate::discovery::pseudonym;
use crate::discovery::public_ip;
use crate::groups::GroupId;
use crate::identity::{Fingerprint, Identity};
use crate::store::settings;

/// Settings key of the joined custom namespaces (a JSON array of names).
const NAMESPACES_KEY: &str = "namespaces";
/// Settings key of the same-network namespace switch ("on" when joined).
const LOCAL_NETWORK_KEY: &str = "local_network";
/// Events of the same-network namespace carry this name.
pub const LOCAL_NETWORK: &str = "local-network";
/// Namespace names: at most this many characters after slugifying.
const MAX_SLUG: usize = 40;
/// The day turns this long after midnight by our clock, so a wake-up a little early still
/// sees the new day...
const DAY_TURN_DELAY: std::time::Duration = std::time::Duration::from_secs(1);
/// ...plus a random part up to this, so the phones of a venue do not all leave and join
/// their cells again in the same second.
const DAY_TURN_JITTER: std::time::Duration = std::time::Duration::from_secs(10 * 60);
/// A position change smaller than this is not worth a new signed record.
const MOVE_THRESHOLD_M: f64 = 10.0;

/// A peer found through discovery.
#[derive(Debug, Clone, PartialEq)]
pub struct DiscoveredPeer {
    /// Identity key fingerprint, 64 hex characters.
    pub fingerprint: String,
    /// Short form for people to compare.
    pub short: String,
    /// Its discovery ID (reach it there, not at its persistent ID).
    pub disc_id: String,
    /// Display name.
    pub name: String,
    /// Great-circle distance from us in metres (stadium mode, when both positions are known).
    pub distance_m: Option<f64>,
    /// The meeting room it is in (stadium mode), if any.
    pub room: Option<GroupId>,
}

/// Our place in a namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NamespaceRole {
    /// Looking for the router.
    Searching,
    /// Member of the router at this level.
    Member(u8),
    /// Router at this level.
    Router(u8),
}

impl From<RoleKind> for NamespaceRole {
    fn from(r: RoleKind) -> Self {
        match r {
            RoleKind::Searching => Self::Searching,
            RoleKind::Member(l) => Self::Member(l),
            RoleKind::Router(l) => Self::Router(l),
        }
    }
}

/// The node's discovery state.
#[derive(Default)]
pub(super) struct DiscoveryState {
    /// Custom namespaces by slug.
    custom: BTreeMap<String, NamespaceHandle>,
    /// Stadium mode, when on.
    stadium: Option<Stadium>,
    /// The same-network namespace: the public address it is named after, and its task.
    local: Option<(std::net::Ipv4Addr, NamespaceHandle)>,
}

struct Stadium {
    /// The key that signs our records in every cell of this session (decision 0010).
    pseudonym: Arc<Identity>,
    /// The UTC day it belongs to.
    day: u32,
    tracker_config: TrackerConfig,
    tracker: CellTracker,
    cells: BTreeMap<String, NamespaceHandle>,
    position: Option<LocationFix>,
    updates: Option<AbortHandle>,
    /// The task that re-keys at each UTC midnight.
    days: AbortHandle,
}

/// `peerns2-ns-{slug}`'s slug: lowercase letters, digits and single dashes.
pub fn slugify(name: &str) -> Result<String, NodeError> {
    let mut slug = String::new();
    for c in name.trim().chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let slug = slug.trim_end_matches('-').to_owned();
    if slug.is_empty() || slug.chars().count() > MAX_SLUG {
        return Err(NodeError::InvalidInput(format!(
            "namespace name {name:?} must give 1 to {MAX_SLUG} letters or digits"
        )));
    }
    Ok(slug)
}

fn to_peer(p: PeerInfo, from: Option<GeoPoint>) -> DiscoveredPeer {
    let distance_m = match (from, p.geo) {
        (Some(a), Some(g)) => GeoPoint::new(g.lat, g.lon)
            .ok()
            .map(|b| geo::distance_m(a, b)),
        _ => None,
    };
    DiscoveredPeer {
        fingerprint: p.fingerprint.to_hex(),
        short: p.fingerprint.short(),
        disc_id: p.disc_id,
        name: p.name,
        distance_m,
        room: super::group_live::parse_room_note(&p.note),
    }
}

fn stamp(fix: LocationFix) -> GeoStamp {
    GeoStamp {
        lat: fix.latitude,
        lon: fix.longitude,
        accuracy_m: fix.accuracy_m,
    }
}

fn point(fix: LocationFix) -> Option<GeoPoint> {
    GeoPoint::new(fix.latitude, fix.longitude).ok()
}

impl Inner {
    fn display_name(&self) -> String {
        lock(&self.display_name)
            .clone()
            .unwrap_or_else(|| self.fingerprint.short())
    }

    /// The name in our stadium records: the one we chose, else none (never anything derived
    /// from our identity, which the pseudonym hides; apps show a pseudonym's short form).
    fn stadium_name(&self) -> String {
        lock(&self.display_name).clone().unwrap_or_default()
    }

    /// What a namespace task of this node needs: our identity, name, transport, timings and
    /// pace, with `prefix`, position and note.
    pub(super) fn ns_setup(&self, prefix: String, geo: Option<GeoStamp>, note: Vec<u8>) -> NsSetup {
        NsSetup {
            prefix,
            signaling: self.signaling.clone(),
            identity: self.identity.clone(),
            name: self.display_name(),
            geo,
            note,
            transport: self.transport_config.clone(),
            config: self.ns_config.clone(),
            cache: self.verify_cache.clone(),
            active: !self.background.load(std::sync::atomic::Ordering::Relaxed),
        }
    }

    /// Starts a namespace task and forwards its events as node events named `label`. A stadium
    /// cell passes the session's pseudonym (our records there are signed with it, and peers
    /// are shown by their pseudonyms unless we recognise a trusted contact behind one).
    fn spawn_namespace(
        self: &Arc<Self>,
        prefix: String,
        label: String,
        geo: Option<GeoStamp>,
        pseudonym: Option<(Arc<Identity>, u32)>,
        note: Vec<u8>,
    ) -> Result<NamespaceHandle, NodeError> {
        let mut setup = self.ns_setup(prefix, geo, note);
        let day = pseudonym.as_ref().map(|(_, d)| *d);
        if let Some((id, _)) = pseudonym {
            setup.identity = id;
            setup.name = self.stadium_name();
        }
        let (handle, mut events) =
            NamespaceHandle::spawn(setup).map_err(|e| NodeError::Signaling(e.to_string()))?;
        let weak = Arc::downgrade(self);
        let task = tokio::spawn(async move {
            while let Some(ev) = events.recv().await {
                let Some(inner) = weak.upgrade() else { return };
                let namespace = label.clone();
                let event = match ev {
                    NsEvent::PeerSeen(p) => {
                        let here = inner.stadium_position();
                        let fp = p.fingerprint;
                        let mut peer = to_peer(p, here);
                        if let Some(day) = day {
                            inner.reveal(&mut peer, &fp, day);
                        }
                        NodeEvent::NamespacePeer { namespace, peer }
                    }
                    NsEvent::PeerGone(fp) => NodeEvent::NamespacePeerGone {
                        namespace,
                        fingerprint: day
                            .and_then(|d| inner.pseudonyms.recognise(&fp, d))
                            .unwrap_or(fp)
                            .to_hex(),
                    },
                    NsEvent::Role(r) => NodeEvent::NamespaceRole {
                        namespace,
                        role: r.into(),
                    },
                    NsEvent::Misbehaved { remote, reason } => {
                        tracing::info!(%namespace, %remote, %reason, "dropped a misbehaving peer");
                        continue;
                    }
                };
                inner.emit(event);
            }
        });
        self.track([task.abort_handle()]);
        Ok(handle)
    }

    /// Shows a trusted contact behind a stadium pseudonym by its real fingerprint; strangers
    /// stay pseudonyms.
    fn reveal(&self, peer: &mut DiscoveredPeer, pseudonym: &Fingerprint, day: u32) {
        if let Some(real) = self.pseudonyms.recognise(pseudonym, day) {
            peer.fingerprint = real.to_hex();
            peer.short = real.short();
        }
    }

    /// Our presence secret changed: the cells we are in are left and joined again under the
    /// new pseudonym (the old one stays known to whoever held the old secret).
    pub(super) fn renew_stadium_pseudonym(self: &Arc<Self>) {
        self.rekey_stadium(pseudonym::day_of(unix_ms()), true);
    }

    /// The UTC day is `day`: if our stadium session is on an earlier one, its cells are joined
    /// again under the day's pseudonym and contacts are recognised by theirs (decision 0010).
    /// A clock set back does not turn it back.
    pub(super) fn stadium_day(self: &Arc<Self>, day: u32) {
        self.rekey_stadium(day, false);
    }

    fn rekey_stadium(self: &Arc<Self>, day: u32, always: bool) {
        let (leaving, position) = {
            let mut state = lock(&self.discovery);
            let Some(st) = state.stadium.as_mut() else {
                return;
            };
            if !always && st.day >= day {
                return;
            }
            st.day = day;
            st.pseudonym = self.pseudonyms.ours(day);
            st.tracker = CellTracker::new(st.tracker_config);
            (std::mem::take(&mut st.cells), st.position.take())
        };
        tokio::spawn(async move {
            for h in leaving.into_values() {
                h.leave().await;
            }
        });
        if let Some(fix) = position {
            self.apply_fix(fix);
        }
    }

    /// Sets the note of every stadium cell we are in (the meeting room we are in, or none).
    pub(super) fn set_stadium_note(&self, note: &[u8]) {
        if let Some(st) = lock(&self.discovery).stadium.as_ref() {
            for h in st.cells.values() {
                h.set_note(note.to_vec());
            }
        }
    }

    /// Whether every stadium cell we are in found its router or became it (so its peers are
    /// known); `None` when stadium mode is off or has no position yet.
    pub(super) async fn stadium_settled(&self) -> Option<bool> {
        let queries: Vec<_> = {
            let state = lock(&self.discovery);
            let st = state.stadium.as_ref()?;
            st.position?;
            st.cells.values().map(|h| h.peers()).collect()
        };
        let mut settled = !queries.is_empty();
        for q in queries {
            settled &= q
                .await
                .is_some_and(|(role, _)| !matches!(role, RoleKind::Searching));
        }
        Some(settled)
    }

    fn stadium_position(&self) -> Option<GeoPoint> {
        lock(&self.discovery)
            .stadium
            .as_ref()
            .and_then(|s| s.position)
            .and_then(point)
    }

    /// Applies a position fix: joins new cells, leaves old ones, re-signs our record.
    fn apply_fix(self: &Arc<Self>, fix: LocationFix) {
        let Some(p) = point(fix) else { return };
        let note = self.room_note();
        let mut leaving = vec![];
        {
            let mut state = lock(&self.discovery);
            let Some(st) = state.stadium.as_mut() else {
                return;
            };
            let moved = st
                .position
                .and_then(point)
                .is_none_or(|old| geo::distance_m(old, p) >= MOVE_THRESHOLD_M);
            let change = st.tracker.update(p, fix.accuracy_m);
            if !moved && change.is_empty() {
                return;
            }
            st.position = Some(fix);
            for cell in change.leave {
                leaving.extend(st.cells.remove(&cell));
            }
            if moved {
                for h in st.cells.values() {
                    h.set_presence(&self.stadium_name(), Some(stamp(fix)));
                }
            }
            for cell in change.join {
                let prefix = format!("peerns2-geo-{cell}");
                let pseudonym = Some((st.pseudonym.clone(), st.day));
                let label = format!("geo-{cell}");
                match self.spawn_namespace(prefix, label, Some(stamp(fix)), pseudonym, note.clone())
                {
                    Ok(h) => {
                        st.cells.insert(cell, h);
                    }
                    Err(e) => tracing::warn!(error = %e, "could not join a stadium cell"),
                }
            }
        }
        if !leaving.is_empty() {
            tokio::spawn(async move {
                for h in leaving {
                    h.leave().await;
                }
            });
        }
    }
}

async fn follow_location(
    inner: std::sync::Weak<Inner>,
    mut rx: mpsc::UnboundedReceiver<LocationUpdate>,
) {
    while let Some(update) = rx.recv().await {
        let Some(inner) = inner.upgrade() else { return };
        match update {
            LocationUpdate::Fix(fix) => {
                inner.stadium_day(pseudonym::day_of(unix_ms()));
                inner.apply_fix(fix);
            }
            LocationUpdate::Error(e) => tracing::info!(error = %e, "location updates failed"),
        }
    }
}

/// Re-keys stadium mode when the UTC day turns: one wake-up at a random point of the first
/// ten minutes after each midnight (a position fix or look at who is nearby before it rolls
/// the day then; a phone asleep catches up at its next one).
async fn follow_days(inner: std::sync::Weak<Inner>) {
    loop {
        let wait = until_day_turn(unix_ms(), &mut rand::rng());
        tokio::time::sleep(wait).await;
        let Some(inner) = inner.upgrade() else { return };
        inner.stadium_day(pseudonym::day_of(unix_ms()));
    }
}

/// How long from `unix_ms` until this phone turns its stadium day: the next UTC midnight,
/// [`DAY_TURN_DELAY`] and a uniform share of [`DAY_TURN_JITTER`].
fn until_day_turn(unix_ms: u64, rng: &mut impl rand::Rng) -> std::time::Duration {
    let jitter = rng.random_range(0..=DAY_TURN_JITTER.as_millis() as u64);
    pseudonym::until_next_day(unix_ms) + DAY_TURN_DELAY + std::time::Duration::from_millis(jitter)
}

impl Node {
    /// The app moved to the foreground (`true`) or the background: namespaces (groups' and
    /// rendezvous' too) beat every 0.8 s or every 10 s and tell their peers, who wait accordingly; a group
    /// member re-announces its state every 2.4 s or every 10 s; signaling heartbeats come
    /// every 5 s or 10 s. In the background all of it falls on the 10 s points of the
    /// wall-clock grid, with the keepalives of connections to other PeerNS nodes.
    pub fn set_app_active(&self, active: bool) {
        self.inner
            .background
            .store(!active, std::sync::atomic::Ordering::Relaxed);
        let state = lock(&self.inner.discovery);
        let stadium = state.stadium.iter().flat_map(|s| s.cells.values());
        let local = state.local.iter().map(|(_, h)| h);
        for h in state.custom.values().chain(stadium).chain(local) {
            h.set_active(active);
        }
        drop(state);
        self.inner.rendezvous_set_active(active);
        self.inner.groups_set_active(active);
        let _ = self.inner.signaling.set_active(active);
        Inner::idle_links_app_active(&self.inner, active);
    }

    /// Joins the namespace of everyone behind the same public IPv4 address (found with the
    /// configured STUN servers); returns the address. Kept across restarts and re-detected
    /// when the network changes.
    pub async fn join_local_network(&self) -> Result<std::net::Ipv4Addr, NodeError> {
        if lock(&self.inner.subscribers).is_none() {
            return Err(NodeError::Stopped);
        }
        let ip = self.switch_local_network().await?;
        self.inner
            .store
            .call(|c| settings::set_setting(c, LOCAL_NETWORK_KEY, "on"))
            .await?;
        Ok(ip)
    }

    /// Leaves the same-network namespace and stops joining it at start.
    pub async fn leave_local_network(&self) -> Result<(), NodeError> {
        let local = lock(&self.inner.discovery).local.take();
        if let Some((_, h)) = local {
            h.leave().await;
        }
        self.inner
            .store
            .call(|c| settings::set_setting(c, LOCAL_NETWORK_KEY, "off"))
            .await?;
        Ok(())
    }

    /// The public address the same-network namespace is named after, if joined.
    pub fn local_network(&self) -> Option<std::net::Ipv4Addr> {
        lock(&self.inner.discovery)
            .local
            .as_ref()
            .map(|(ip, _)| *ip)
    }

    /// Detects the public address and moves the same-network namespace to it if it changed.
    async fn switch_local_network(&self) -> Result<std::net::Ipv4Addr, NodeError> {
        let cfg = &self.inner.transport_config;
        let urls: Vec<String> = cfg
            .ice_servers
            .iter()
            .flat_map(|s| s.urls.clone())
            .collect();
        let ip = public_ip::detect(&urls, cfg.loopback_only)
            .await
            .map_err(|e| NodeError::Discovery(e.to_string()))?;
        let old = {
            let mut state = lock(&self.inner.discovery);
            if state.local.as_ref().is_some_and(|(cur, _)| *cur == ip) {
                return Ok(ip);
            }
            let h = self.inner.spawn_namespace(
                public_ip::namespace_prefix(ip),
                LOCAL_NETWORK.into(),
                None,
                None,
                Vec::new(),
            )?;
            state.local.replace((ip, h))
        };
        if let Some((_, h)) = old {
            h.leave().await;
        }
        Ok(ip)
    }

    /// After a network change: the public address may be another one now.
    pub(super) fn recheck_local_network(&self) {
        if lock(&self.inner.discovery).local.is_none() {
            return;
        }
        let node = Node::from_inner(self.inner.clone());
        let task = tokio::spawn(async move {
            // Let the new network settle first (signaling debounces the same way).
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            if let Err(e) = node.switch_local_network().await {
                tracing::info!(error = %e, "same-network namespace: no public address now");
            }
        });
        self.inner.track([task.abort_handle()]);
    }

    /// Our role and the peers we see in the same-network namespace.
    pub async fn local_network_peers(
        &self,
    ) -> Result<(NamespaceRole, Vec<DiscoveredPeer>), NodeError> {
        let query = lock(&self.inner.discovery)
            .local
            .as_ref()
            .map(|(_, h)| h.peers())
            .ok_or_else(|| NodeError::InvalidInput("not in the same-network namespace".into()))?;
        let (role, peers) = query.await.ok_or(NodeError::Stopped)?;
        Ok((
            role.into(),
            peers.into_iter().map(|p| to_peer(p, None)).collect(),
        ))
    }

    /// Restores the custom namespaces saved by earlier runs.
    pub(super) async fn restore_namespaces(&self) -> Result<(), NodeError> {
        let local = self
            .inner
            .store
            .call(|c| settings::get_setting(c, LOCAL_NETWORK_KEY))
            .await?;
        if local.as_deref() == Some("on")
            && let Err(e) = self.switch_local_network().await
        {
            tracing::info!(error = %e, "same-network namespace not joined");
        }
        let saved = self
            .inner
            .store
            .call(|c| settings::get_setting(c, NAMESPACES_KEY))
            .await?;
        let names: Vec<String> = saved
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or_default();
        for name in names {
            if let Err(e) = self.join_namespace_unsaved(&name) {
                tracing::warn!(error = %e, "could not rejoin a saved namespace");
            }
        }
        Ok(())
    }

    async fn save_namespaces(&self) -> Result<(), NodeError> {
        let names: Vec<String> = lock(&self.inner.discovery).custom.keys().cloned().collect();
        let json = serde_json::to_string(&names).unwrap_or_else(|_| "[]".into());
        self.inner
            .store
            .call(move |c| settings::set_setting(c, NAMESPACES_KEY, &json))
            .await?;
        Ok(())
    }

    fn join_namespace_unsaved(&self, name: &str) -> Result<String, NodeError> {
        let slug = slugify(name)?;
        let mut state = lock(&self.inner.discovery);
        if !state.custom.contains_key(&slug) {
            let h = self.inner.spawn_namespace(
                format!("peerns2-ns-{slug}"),
                slug.clone(),
                None,
                None,
                Vec::new(),
            )?;
            state.custom.insert(slug.clone(), h);
        }
        Ok(slug)
    }

    /// Joins the custom namespace `name` (kept across restarts); returns its slug, which names
    /// it in events.
    pub async fn join_namespace(&self, name: &str) -> Result<String, NodeError> {
        if lock(&self.inner.subscribers).is_none() {
            return Err(NodeError::Stopped);
        }
        let slug = self.join_namespace_unsaved(name)?;
        self.save_namespaces().await?;
        Ok(slug)
    }

    /// Leaves the custom namespace `name` and forgets it.
    pub async fn leave_namespace(&self, name: &str) -> Result<(), NodeError> {
        let slug = slugify(name)?;
        let handle = lock(&self.inner.discovery).custom.remove(&slug);
        if let Some(h) = handle {
            h.leave().await;
        }
        self.save_namespaces().await
    }

    /// The joined custom namespaces' slugs.
    pub fn namespaces(&self) -> Vec<String> {
        lock(&self.inner.discovery).custom.keys().cloned().collect()
    }

    /// Our role and the peers we see in custom namespace `name`.
    pub async fn namespace_peers(
        &self,
        name: &str,
    ) -> Result<(NamespaceRole, Vec<DiscoveredPeer>), NodeError> {
        let slug = slugify(name)?;
        let query = {
            let state = lock(&self.inner.discovery);
            let h = state
                .custom
                .get(&slug)
                .ok_or_else(|| NodeError::InvalidInput(format!("not in namespace {slug}")))?;
            h.peers()
        };
        let (role, peers) = query.await.ok_or(NodeError::Stopped)?;
        Ok((
            role.into(),
            peers.into_iter().map(|p| to_peer(p, None)).collect(),
        ))
    }

    /// Turns stadium mode on: positions come from the platform's location provider (if any)
    /// and from [`Node::set_location`].
    pub fn start_stadium(&self, tracker: TrackerConfig) -> Result<(), NodeError> {
        if lock(&self.inner.subscribers).is_none() {
            return Err(NodeError::Stopped);
        }
        let mut state = lock(&self.inner.discovery);
        if state.stadium.is_some() {
            return Ok(());
        }
        let updates = self.inner.location.as_ref().map(|provider| {
            let (sink, rx): (LocationSink, _) = LocationSink::channel();
            provider.start_updates(sink);
            let task = tokio::spawn(follow_location(Arc::downgrade(&self.inner), rx));
            task.abort_handle()
        });
        let day = pseudonym::day_of(unix_ms());
        let days = tokio::spawn(follow_days(Arc::downgrade(&self.inner))).abort_handle();
        self.inner.track([days.clone()]);
        state.stadium = Some(Stadium {
            pseudonym: self.inner.pseudonyms.ours(day),
            day,
            tracker_config: tracker,
            tracker: CellTracker::new(tracker),
            cells: BTreeMap::new(),
            position: None,
            updates,
            days,
        });
        Ok(())
    }

    /// Feeds a position to stadium mode (when the app, not a provider, knows it).
    pub fn set_location(&self, fix: LocationFix) -> Result<(), NodeError> {
        if point(fix).is_none() || !fix.accuracy_m.is_finite() || fix.accuracy_m < 0.0 {
            return Err(NodeError::InvalidInput("bad coordinates".into()));
        }
        if lock(&self.inner.discovery).stadium.is_none() {
            return Err(NodeError::InvalidInput("stadium mode is off".into()));
        }
        self.inner.stadium_day(pseudonym::day_of(unix_ms()));
        self.inner.apply_fix(fix);
        Ok(())
    }

    /// Turns stadium mode off: every cell is left and the position forgotten.
    pub async fn stop_stadium(&self) {
        self.meeting_room_leave().await;
        let stadium = lock(&self.inner.discovery).stadium.take();
        let Some(st) = stadium else { return };
        st.days.abort();
        if let Some(t) = st.updates {
            t.abort();
            if let Some(p) = &self.inner.location {
                p.stop_updates();
            }
        }
        futures_util::future::join_all(st.cells.into_values().map(NamespaceHandle::leave)).await;
    }

    /// The geohash cells stadium mode is in.
    pub fn stadium_cells(&self) -> Vec<String> {
        lock(&self.inner.discovery)
            .stadium
            .as_ref()
            .map(|s| s.cells.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Everyone stadium mode sees, de-duplicated across cells, nearest first.
    pub async fn nearby(&self) -> Vec<DiscoveredPeer> {
        self.inner.stadium_day(pseudonym::day_of(unix_ms()));
        let (queries, here, day) = {
            let state = lock(&self.inner.discovery);
            let Some(st) = state.stadium.as_ref() else {
                return vec![];
            };
            let queries: Vec<_> = st.cells.values().map(|h| h.peers()).collect();
            (queries, st.position.and_then(point), st.day)
        };
        let mut merged: BTreeMap<String, DiscoveredPeer> = BTreeMap::new();
        for q in queries {
            for p in q.await.map(|(_, peers)| peers).unwrap_or_default() {
                let fp = p.fingerprint;
                let mut p = to_peer(p, here);
                self.inner.reveal(&mut p, &fp, day);
                merged.entry(p.fingerprint.clone()).or_insert(p);
            }
        }
        let mut out: Vec<DiscoveredPeer> = merged.into_values().collect();
        out.sort_by(|a, b| {
            a.distance_m
                .unwrap_or(f64::INFINITY)
                .total_cmp(&b.distance_m.unwrap_or(f64::INFINITY))
        });
        out
    }

    /// Leaves every namespace (part of stopping).
    pub(super) async fn leave_all_namespaces(&self) {
        self.stop_stadium().await;
        let local = lock(&self.inner.discovery).local.take();
        if let Some((_, h)) = local {
            h.leave().await;
        }
        let custom: Vec<NamespaceHandle> = {
            let mut state = lock(&self.inner.discovery);
            std::mem::take(&mut state.custom).into_values().collect()
        };
        for h in custom {
            h.leave().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        assert_eq!(
            slugify("  Climbing Club!! Berlin ").unwrap(),
            "climbing-club-berlin"
        );
        assert_eq!(slugify("ÄBC_d").unwrap(), "bc-d");
        assert!(slugify("!!!").is_err());
        assert!(slugify(&"a".repeat(41)).is_err());
    }

    /// Every phone turns its day within ten minutes after midnight (never before it), and
    /// not all at the same moment.
    #[test]
    fn the_day_turns_at_a_random_point_of_the_ten_minutes_after_midnight() {
        use rand::SeedableRng;
        let mut rng = rand::rngs::SmallRng::seed_from_u64(7);
        let midnight = 20_833 * 86_400_000;
        let (min, max) = (DAY_TURN_DELAY, DAY_TURN_DELAY + DAY_TURN_JITTER);
        let mut waits = vec![];
        for now in [
            midnight - 1,
            midnight - 3_600_000,
            midnight,
            midnight + 5_000,
        ] {
            let to_midnight = pseudonym::until_next_day(now);
            for _ in 0..200 {
                let wait = until_day_turn(now, &mut rng);
                assert!(
                    wait >= to_midnight + min && wait <= to_midnight + max,
                    "{wait:?}"
                );
                assert!(pseudonym::day_of(now + wait.as_millis() as u64) > pseudonym::day_of(now));
                waits.push(wait - to_midnight);
            }
        }
        let (first, last) = (waits.iter().min().unwrap(), waits.iter().max().unwrap());
        assert!(
            *last - *first > DAY_TURN_JITTER * 9 / 10,
            "{first:?}..{last:?}"
        );
    }
}
