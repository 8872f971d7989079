//! Timings and limits of a namespace.

use std::time::Duration;

/// Timings and limits of a namespace.
#[derive(Debug, Clone)]
pub struct NsConfig {
    /// A router's heartbeat interval. 0.8 s by default: with 3 missed beats its silent death
    /// is noticed 1.6–2.4 s after it happens, which leaves room for re-election within 3 s.
    pub heartbeat: Duration,
    /// A member's heartbeat interval to its router (foreground). The router's own beats are
    /// what failover needs (members notice a silent router after `missed_beats` of them); a
    /// member's tell the router whom to evict from the registry, where a few seconds more do
    /// no harm, and a router on a phone hears every member. 2.4 s: three router beats, so a
    /// member's beat shares the wake-up of the router beat it receives.
    pub member_heartbeat: Duration,
    /// Heartbeat interval while the app is in the background (announced to the other side,
    /// which then waits that much longer before declaring us gone). 10 s: the period of the
    /// connections' keepalives, so a background node wakes once per 10 s for all of them.
    pub background_heartbeat: Duration,
    /// The router is dead after this many missed heartbeats.
    pub missed_beats: u32,
    /// How long connecting to a router and receiving its registry may take.
    pub join_timeout: Duration,
    /// Members of rank ≥ 1 wait this long before contacting the new router after a failover
    /// (signaling servers hold an offer until its target registers, so early is safe).
    pub rank_step: Duration,
    /// Extra wait per rank, spreading a large namespace's reconnects.
    pub rank_spread: Duration,
    /// Highest router level.
    pub max_level: u8,
    /// A router above level 1 checks this often whether level 1 is free or alive.
    pub monitor_interval: Duration,
    /// A level-1 router probes the reverse-connect slot this often, and at once when the
    /// slot's holder knocks (a PeerNS PWA holder does not knock; it waits 30 s).
    pub slot_probe: Duration,
    /// The same while the app is in the background (a holder that knocks is probed at once).
    pub background_slot_probe: Duration,
    /// While the level monitor or the slot probe finds nobody, its interval doubles each round
    /// up to this (four times this in the background).
    pub monitor_backoff_max: Duration,
    /// A node holds the reverse-connect slot at most this long.
    pub slot_wait: Duration,
    /// Records older than this are dropped.
    pub record_max_age: Duration,
    /// Own record is re-signed and re-sent this often.
    pub record_refresh: Duration,
    /// Allowed clock difference between peers.
    pub clock_skew: Duration,
    /// A check-in record must be at most this old when the router receives it.
    pub checkin_max_age: Duration,
    /// Most members a router keeps.
    pub registry_cap: usize,
    /// Changes are pushed to members at most this often.
    pub batch_interval: Duration,
    /// Messages per second a member may send to the router (burst: twice that).
    pub member_rate: u32,
    /// Wait before trying again after every level failed.
    pub retry_backoff: Duration,
}

impl Default for NsConfig {
    fn default() -> Self {
        Self {
            heartbeat: Duration::from_millis(800),
            member_heartbeat: Duration::from_millis(2_400),
            background_heartbeat: Duration::from_secs(10),
            missed_beats: 3,
            join_timeout: Duration::from_secs(2),
            rank_step: Duration::from_millis(30),
            rank_spread: Duration::from_millis(2),
            max_level: 5,
            monitor_interval: Duration::from_secs(5),
            slot_probe: Duration::from_secs(20),
            background_slot_probe: Duration::from_secs(60),
            monitor_backoff_max: Duration::from_secs(160),
            slot_wait: Duration::from_secs(6),
            record_max_age: Duration::from_secs(30 * 60),
            record_refresh: Duration::from_secs(10 * 60),
            clock_skew: Duration::from_secs(60),
            checkin_max_age: Duration::from_secs(60),
            registry_cap: 2_000,
            batch_interval: Duration::from_millis(50),
            member_rate: 10,
            retry_backoff: Duration::from_secs(5),
        }
    }
}
