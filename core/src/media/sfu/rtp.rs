//! Just enough of an RTP packet (RFC 3550) for forwarding: a validated view of the fixed
//! header, the payload bounds, the RFC 6464 audio level, and an in-place rewrite of the fields
//! a forwarder changes (payload type, sequence number, timestamp, SSRC).

use super::SfuError;

/// Largest RTP packet accepted (an Ethernet MTU; WebRTC stacks send ≤ 1,200 bytes).
pub const MAX_RTP: usize = 1500;
const FIXED: usize = 12;

/// A validated RTP packet, borrowed.
#[derive(Debug, Clone, Copy)]
pub struct RtpView<'a> {
    buf: &'a [u8],
    payload: (usize, usize),
    ext: Option<(u16, usize, usize)>,
}

impl<'a> RtpView<'a> {
    /// Checks version, lengths, CSRCs, the extension block and padding.
    pub fn parse(buf: &'a [u8]) -> Result<Self, SfuError> {
        if buf.len() < FIXED || buf.len() > MAX_RTP {
            return Err(SfuError::Malformed("length"));
        }
        if buf[0] >> 6 != 2 {
            return Err(SfuError::Malformed("version"));
        }
        let mut at = FIXED + 4 * usize::from(buf[0] & 0x0f);
        let mut ext = None;
        if buf[0] & 0x10 != 0 {
            let head = buf
                .get(at..at + 4)
                .ok_or(SfuError::Malformed("extension header"))?;
            let profile = u16::from_be_bytes([head[0], head[1]]);
            let len = 4 * usize::from(u16::from_be_bytes([head[2], head[3]]));
            let start = at + 4;
            if start + len > buf.len() {
                return Err(SfuError::Malformed("extension length"));
            }
            ext = Some((profile, start, start + len));
            at = start + len;
        }
        let mut end = buf.len();
        if buf[0] & 0x20 != 0 {
            let pad = usize::from(buf[end - 1]);
            if pad == 0 || at + pad > end {
                return Err(SfuError::Malformed("padding"));
            }
            end -= pad;
        }
        if at > end {
            return Err(SfuError::Malformed("header longer than packet"));
        }
        Ok(Self {
            buf,
            payload: (at, end),
            ext,
        })
    }

    /// Payload type.
    pub fn payload_type(&self) -> u8 {
        self.buf[1] & 0x7f
    }

    /// Marker bit.
    pub fn marker(&self) -> bool {
        self.buf[1] & 0x80 != 0
    }

    /// Sequence number.
    pub fn seq(&self) -> u16 {
        u16::from_be_bytes([self.buf[2], self.buf[3]])
    }

    /// Timestamp.
    pub fn timestamp(&self) -> u32 {
        u32::from_be_bytes([self.buf[4], self.buf[5], self.buf[6], self.buf[7]])
    }

    /// Synchronisation source.
    pub fn ssrc(&self) -> u32 {
        u32::from_be_bytes([self.buf[8], self.buf[9], self.buf[10], self.buf[11]])
    }

    /// The payload (after CSRCs and extensions, before padding).
    pub fn payload(&self) -> &'a [u8] {
        &self.buf[self.payload.0..self.payload.1]
    }

    /// The whole packet.
    pub fn bytes(&self) -> &'a [u8] {
        self.buf
    }

    /// The RFC 6464 audio level (0 = loudest, 127 = silence) carried in extension `id`, in
    /// either the one-byte (RFC 8285 `0xBEDE`) or the two-byte header form.
    pub fn audio_level(&self, id: u8) -> Option<u8> {
        let (profile, start, end) = self.ext?;
        let block = &self.buf[start..end];
        let mut i = 0;
        if profile == 0xBEDE {
            while i < block.len() {
                let b = block[i];
                if b == 0 {
                    i += 1;
                    continue;
                }
                let (eid, len) = (b >> 4, usize::from(b & 0x0f) + 1);
                if eid == 15 {
                    return None;
                }
                let data = block.get(i + 1..i + 1 + len)?;
                if eid == id {
                    return Some(data[0] & 0x7f);
                }
                i += 1 + len;
            }
        } else if profile & 0xfff0 == 0x1000 {
            while i + 1 < block.len() {
                let (eid, len) = (block[i], usize::from(block[i + 1]));
                if eid == 0 {
                    i += 1;
                    continue;
                }
                let data = block.get(i + 2..i + 2 + len)?;
                if eid == id {
                    return data.first().map(|b| b & 0x7f);
                }
                i += 2 + len;
            }
        }
        None
    }
}

/// The fields a forwarder writes into its copy of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rewrite {
    /// Payload type negotiated with the subscriber.
    pub payload_type: u8,
    /// Sequence number in the subscriber's stream.
    pub seq: u16,
    /// Timestamp in the subscriber's stream.
    pub timestamp: u32,
    /// The subscriber's slot SSRC.
    pub ssrc: u32,
}

/// Copies a validated packet and writes the rewritten header fields (the marker is kept).
pub fn rewritten(pkt: &RtpView<'_>, w: Rewrite) -> Vec<u8> {
    let mut out = pkt.bytes().to_vec();
    out[1] = (out[1] & 0x80) | (w.payload_type & 0x7f);
    out[2..4].copy_from_slice(&w.seq.to_be_bytes());
    out[4..8].copy_from_slice(&w.timestamp.to_be_bytes());
    out[8..12].copy_from_slice(&w.ssrc.to_be_bytes());
    out
}

/// Extends 16-bit sequence numbers to 64 bits across wrap-arounds, tolerating reordering
/// (a number more than half the space behind the highest counts as older).
#[derive(Debug, Clone, Copy, Default)]
pub struct SeqExtender {
    highest: Option<u64>,
}

impl SeqExtender {
    /// The extended number of `seq`; updates the highest seen.
    pub fn extend(&mut self, seq: u16) -> u64 {
        let Some(high) = self.highest else {
            let ext = (1 << 16) + u64::from(seq);
            self.highest = Some(ext);
            return ext;
        };
        let ext = extend_near(high, seq);
        self.highest = Some(high.max(ext));
        ext
    }

    /// The highest extended number seen.
    pub fn highest(&self) -> Option<u64> {
        self.highest
    }
}

/// The 64-bit number closest to `near` whose low 16 bits are `seq`.
pub fn extend_near(near: u64, seq: u16) -> u64 {
    let delta = seq.wrapping_sub(near as u16) as i16;
    near.wrapping_add_signed(i64::from(delta))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(seq: u16, ts: u32, ext: &[u8], payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0x80, 96];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&ts.to_be_bytes());
        p.extend_from_slice(&7u32.to_be_bytes());
        if !ext.is_empty() {
            p[0] |= 0x10;
            p.extend_from_slice(&0xBEDEu16.to_be_bytes());
            p.extend_from_slice(&((ext.len() / 4) as u16).to_be_bytes());
            p.extend_from_slice(ext);
        }
        p.extend_from_slice(payload);
        p
    }

    #[test]
    fn parses_header_extension_audio_level_and_payload() {
        // Extension id 1, one byte: voice bit + level 30; then padding to 4 bytes.
        let p = packet(65535, 960, &[0x10, 0x80 | 30, 0, 0], b"opus");
        let v = RtpView::parse(&p).unwrap();
        assert_eq!((v.seq(), v.timestamp(), v.ssrc()), (65535, 960, 7));
        assert_eq!(v.audio_level(1), Some(30));
        assert_eq!(v.audio_level(2), None);
        assert_eq!(v.payload(), b"opus");
    }

    #[test]
    fn refuses_malformed_packets() {
        let good = packet(1, 2, &[], b"x");
        assert!(RtpView::parse(&good[..11]).is_err());
        let mut v1 = good.clone();
        v1[0] = 0x40;
        assert!(RtpView::parse(&v1).is_err());
        let mut csrc = good.clone();
        csrc[0] |= 0x0f; // 15 CSRCs that are not there
        assert!(RtpView::parse(&csrc).is_err());
        let mut ext = good.clone();
        ext[0] |= 0x10; // an extension header that is not there
        assert!(RtpView::parse(&ext).is_err());
        let mut pad = good.clone();
        pad[0] |= 0x20;
        *pad.last_mut().unwrap() = 200;
        assert!(RtpView::parse(&pad).is_err());
        assert!(RtpView::parse(&vec![0x80; MAX_RTP + 1]).is_err());
    }

    #[test]
    fn rewrite_keeps_marker_and_payload() {
        let mut p = packet(5, 6, &[], b"data");
        p[1] |= 0x80;
        let v = RtpView::parse(&p).unwrap();
        let out = rewritten(
            &v,
            Rewrite {
                payload_type: 102,
                seq: 9,
                timestamp: 10,
                ssrc: 11,
            },
        );
        let o = RtpView::parse(&out).unwrap();
        assert!(o.marker());
        assert_eq!(
            (o.payload_type(), o.seq(), o.timestamp(), o.ssrc()),
            (102, 9, 10, 11)
        );
        assert_eq!(o.payload(), b"data");
    }

    #[test]
    fn sequence_numbers_extend_across_wrap_and_reordering() {
        let mut e = SeqExtender::default();
        let a = e.extend(65534);
        assert_eq!(e.extend(65535), a + 1);
        assert_eq!(e.extend(0), a + 2);
        assert_eq!(e.extend(65533), a - 1, "a late packet from before the wrap");
        assert_eq!(e.extend(1), a + 3);
        assert_eq!(e.highest(), Some(a + 3));
    }
}
