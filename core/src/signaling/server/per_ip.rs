//! Concurrent WebSocket connections per client address, sans-IO. IPv6 clients are counted per
//! /64 (one subscriber's prefix), IPv4-mapped IPv6 addresses as their IPv4 address. Only
//! addresses with a live connection have an entry, so the table is bounded by the sockets.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};

/// The address a connection is counted under.
pub(super) fn bucket(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(prefix))
        }
        v4 => v4,
    }
}

/// Live connections per address bucket, at most `limit` each (0: no limit).
#[derive(Debug)]
pub(super) struct PerIp {
    limit: usize,
    live: HashMap<IpAddr, usize>,
}

impl PerIp {
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            live: HashMap::new(),
        }
    }

    /// Counts a new connection from `ip`; false (and nothing counted) if its bucket is full.
    pub fn acquire(&mut self, ip: IpAddr) -> bool {
        let n = self.live.entry(bucket(ip)).or_insert(0);
        if self.limit != 0 && *n >= self.limit {
            return false;
        }
        *n += 1;
        true
    }

    /// Forgets a connection counted by [`Self::acquire`].
    pub fn release(&mut self, ip: IpAddr) {
        let key = bucket(ip);
        if let Some(n) = self.live.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                self.live.remove(&key);
            }
        }
    }

    /// Number of address buckets with a live connection.
    #[cfg(test)]
    pub fn buckets(&self) -> usize {
        self.live.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn caps_each_bucket_and_forgets_empty_ones() {
        let mut p = PerIp::new(2);
        assert!(p.acquire(ip("10.0.0.1")));
        assert!(p.acquire(ip("10.0.0.1")));
        assert!(!p.acquire(ip("10.0.0.1")));
        // Another address has its own budget; a mapped IPv4 address is the same client.
        assert!(p.acquire(ip("10.0.0.2")));
        assert!(!p.acquire(ip("::ffff:10.0.0.1")));
        p.release(ip("::ffff:10.0.0.1"));
        assert!(p.acquire(ip("10.0.0.1")));
        for _ in 0..2 {
            p.release(ip("10.0.0.1"));
        }
        p.release(ip("10.0.0.2"));
        assert_eq!(p.buckets(), 0);
    }

    #[test]
    fn ipv6_counts_per_64() {
        let mut p = PerIp::new(1);
        assert!(p.acquire(ip("2001:db8:1:2::1")));
        assert!(!p.acquire(ip("2001:db8:1:2:ffff::7")));
        assert!(p.acquire(ip("2001:db8:1:3::1")));
        assert_eq!(bucket(ip("2001:db8:1:2:aaaa::1")), ip("2001:db8:1:2::"));
    }

    #[test]
    fn zero_is_unlimited() {
        let mut p = PerIp::new(0);
        assert!((0..10_000).all(|_| p.acquire(ip("127.0.0.1"))));
    }
}
