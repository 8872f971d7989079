//! A short per-source history of received packets, so a subscriber's NACK is answered by the
//! forwarder without asking the publisher.

/// Packets kept per source (about 1.5 s of 2.5 Mbit/s video).
pub const CACHE_PACKETS: usize = 512;

/// A ring of the last [`CACHE_PACKETS`] packets of one source, by extended sequence number.
#[derive(Debug)]
pub struct PacketCache {
    ring: Vec<Option<(u64, Vec<u8>)>>,
}

impl Default for PacketCache {
    fn default() -> Self {
        Self {
            ring: vec![None; CACHE_PACKETS],
        }
    }
}

impl PacketCache {
    /// Keeps a packet (replacing whatever held its place in the ring).
    pub fn put(&mut self, ext_seq: u64, packet: &[u8]) {
        let at = (ext_seq % CACHE_PACKETS as u64) as usize;
        match &mut self.ring[at] {
            Some((seq, buf)) => {
                *seq = ext_seq;
                buf.clear();
                buf.extend_from_slice(packet);
            }
            slot => *slot = Some((ext_seq, packet.to_vec())),
        }
    }

    /// The packet with this extended sequence number, if still held.
    pub fn get(&self, ext_seq: u64) -> Option<&[u8]> {
        match &self.ring[(ext_seq % CACHE_PACKETS as u64) as usize] {
            Some((seq, buf)) if *seq == ext_seq => Some(buf),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_the_last_packets_only() {
        let mut c = PacketCache::default();
        for seq in 100..100 + CACHE_PACKETS as u64 + 10 {
            c.put(seq, &seq.to_be_bytes());
        }
        assert_eq!(c.get(105), None, "overwritten by a later packet");
        let last = 100 + CACHE_PACKETS as u64 + 9;
        assert_eq!(c.get(last), Some(&last.to_be_bytes()[..]));
        assert_eq!(c.get(last + 1), None);
    }
}
