//! Admission of incoming connections: caps on how many may be pending at once (in total and
//! per remote PeerJS ID) and a deadline for each, counted from its OFFER. Sans-IO: the driver
//! asks [`Admission::admit`] before it builds anything for an OFFER, releases a connection once
//! it is open (or authenticated, see `TransportConfig::require_auth`) or gone, and closes what
//! [`Admission::expired`] returns.
//!
//! An OFFER over a cap is refused, not admitted by evicting an older one: eviction would cost a
//! peer connection per OFFER (the expensive part a flood aims at) and would let a flood push out
//! a contact's connection that is further along. Refusal is silent (no signaling reply), so a
//! flood does not make us send anything either.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Why an incoming connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// As many incoming connections as allowed are pending.
    #[error("too many pending incoming connections")]
    Full,
    /// As many incoming connections from this peer as allowed are pending.
    #[error("too many pending incoming connections from this peer")]
    PeerFull,
}

struct Pending {
    peer: String,
    deadline: Instant,
}

/// The pending incoming connections of one transport.
pub struct Admission {
    max_total: usize,
    max_per_peer: usize,
    timeout: Duration,
    pending: HashMap<String, Pending>,
}

impl Admission {
    /// At most `max_total` pending connections, `max_per_peer` from one peer, each for at most
    /// `timeout` after its OFFER.
    pub fn new(max_total: usize, max_per_peer: usize, timeout: Duration) -> Self {
        Self {
            max_total,
            max_per_peer,
            timeout,
            pending: HashMap::new(),
        }
    }

    /// Reserves a slot for connection `cid` from `peer`, whose OFFER arrived at `now`.
    pub fn admit(&mut self, cid: &str, peer: &str, now: Instant) -> Result<(), Refusal> {
        if self.pending.len() >= self.max_total {
            return Err(Refusal::Full);
        }
        let of_peer = self.pending.values().filter(|p| p.peer == peer).count();
        if of_peer >= self.max_per_peer {
            return Err(Refusal::PeerFull);
        }
        self.pending.insert(
            cid.to_owned(),
            Pending {
                peer: peer.to_owned(),
                deadline: now + self.timeout,
            },
        );
        Ok(())
    }

    /// Frees the slot of `cid` (open, authenticated or gone); false if it held none.
    pub fn release(&mut self, cid: &str) -> bool {
        self.pending.remove(cid).is_some()
    }

    /// Whether `cid` holds a slot.
    pub fn is_pending(&self, cid: &str) -> bool {
        self.pending.contains_key(cid)
    }

    /// Connections holding a slot.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Whether no connection holds a slot.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// The earliest deadline, if any connection is pending.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.pending.values().map(|p| p.deadline).min()
    }

    /// Removes and returns the connections whose deadline is at or before `now`.
    pub fn expired(&mut self, now: Instant) -> Vec<String> {
        let due: Vec<String> = self
            .pending
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(cid, _)| cid.clone())
            .collect();
        for cid in &due {
            self.pending.remove(cid);
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Duration = Duration::from_secs(10);

    #[test]
    fn caps_refuse_beyond_the_total_and_per_peer() {
        let now = Instant::now();
        let mut a = Admission::new(5, 2, T);
        assert_eq!(a.admit("c1", "eve", now), Ok(()));
        assert_eq!(a.admit("c2", "eve", now), Ok(()));
        assert_eq!(a.admit("c3", "eve", now), Err(Refusal::PeerFull));
        assert!(!a.is_pending("c3"));
        for (i, peer) in ["p1", "p2", "p3"].iter().enumerate() {
            assert_eq!(a.admit(&format!("d{i}"), peer, now), Ok(()));
        }
        assert_eq!(a.len(), 5);
        // Full: a peer with nothing pending is refused too, and nobody was evicted.
        assert_eq!(a.admit("d9", "ann", now), Err(Refusal::Full));
        assert!(a.is_pending("c1") && a.is_pending("c2"));
        // A released slot is free again, for its peer as for others.
        assert!(a.release("c1"));
        assert!(!a.release("c1"));
        assert_eq!(a.admit("c4", "eve", now), Ok(()));
        assert_eq!(a.admit("d9", "ann", now), Err(Refusal::Full));
    }

    #[test]
    fn a_flood_from_one_peer_leaves_room_for_others() {
        let now = Instant::now();
        let mut a = Admission::new(64, 4, T);
        let admitted = (0..10_000)
            .filter(|i| a.admit(&format!("dc_{i}"), "eve", now).is_ok())
            .count();
        assert_eq!(admitted, 4);
        assert_eq!(a.admit("dc_friend", "friend", now), Ok(()));
    }

    #[test]
    fn deadlines_count_from_the_offer() {
        let t0 = Instant::now();
        let mut a = Admission::new(8, 8, T);
        assert_eq!(a.next_deadline(), None);
        a.admit("early", "p", t0).unwrap();
        a.admit("late", "p", t0 + Duration::from_secs(4)).unwrap();
        a.admit("open", "p", t0).unwrap();
        assert!(a.release("open"));
        assert_eq!(a.next_deadline(), Some(t0 + T));
        assert!(a.expired(t0 + T - Duration::from_millis(1)).is_empty());
        assert_eq!(a.expired(t0 + T), ["early"]);
        assert!(!a.is_pending("early"));
        assert_eq!(a.next_deadline(), Some(t0 + Duration::from_secs(14)));
        assert_eq!(a.expired(t0 + Duration::from_secs(60)), ["late"]);
        assert!(a.is_empty() && a.next_deadline().is_none());
    }
}
