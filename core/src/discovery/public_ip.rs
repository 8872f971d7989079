//! The public IPv4 address of this network, as a STUN server sees it (the server-reflexive
//! address ICE would find), for the same-network namespace `peerns2-{a}-{b}-{c}-{d}`.
//!
//! One STUN Binding request (RFC 8489) per server over UDP; the answer's XOR-MAPPED-ADDRESS
//! (or the legacy MAPPED-ADDRESS) is the address. Answers are bounded and must echo our random
//! transaction ID.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::net::{UdpSocket, lookup_host};

use crate::crypto::random_bytes;

const BINDING_REQUEST: u16 = 0x0001;
const BINDING_SUCCESS: u16 = 0x0101;
const MAGIC_COOKIE: u32 = 0x2112_A442;
const ATTR_MAPPED_ADDRESS: u16 = 0x0001;
const ATTR_XOR_MAPPED_ADDRESS: u16 = 0x0020;

/// Why no address was found.
#[derive(Debug, thiserror::Error)]
pub enum PublicIpError {
    /// No `stun:` server is configured.
    #[error("no STUN server configured")]
    NoServer,
    /// No server answered with a usable IPv4 address.
    #[error("no STUN server returned a public IPv4 address")]
    NoAnswer,
}

/// Whether `ip` may name a same-network namespace: a public unicast IPv4 address, or any
/// IPv4 address when `allow_private` (loopback tests).
pub fn usable(ip: Ipv4Addr, allow_private: bool) -> bool {
    allow_private
        || !(ip.is_private()
            || ip.is_loopback()
            || ip.is_link_local()
            || ip.is_unspecified()
            || ip.is_broadcast()
            || ip.is_multicast()
            || ip.octets()[0] == 100 && (ip.octets()[1] & 0xc0) == 64) // CGNAT 100.64/10
}

/// The namespace prefix of a network's public address.
pub fn namespace_prefix(ip: Ipv4Addr) -> String {
    let [a, b, c, d] = ip.octets();
    format!("peerns2-{a}-{b}-{c}-{d}")
}

/// `host:port` of a `stun:` URL (default port 3478).
fn stun_host(url: &str) -> Option<String> {
    let rest = url.strip_prefix("stun:")?;
    let rest = rest.split('?').next()?;
    if rest.is_empty() {
        return None;
    }
    Some(
        if rest
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        {
            rest.to_owned()
        } else {
            format!("{rest}:3478")
        },
    )
}

fn request(txid: &[u8; 12]) -> [u8; 20] {
    let mut m = [0u8; 20];
    m[..2].copy_from_slice(&BINDING_REQUEST.to_be_bytes());
    m[4..8].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
    m[8..].copy_from_slice(txid);
    m
}

/// The mapped IPv4 address in a Binding success response for `txid`, if any.
pub fn parse_response(msg: &[u8], txid: &[u8; 12]) -> Option<Ipv4Addr> {
    if msg.len() < 20 || msg.len() > 1500 {
        return None;
    }
    let kind = u16::from_be_bytes([msg[0], msg[1]]);
    let len = usize::from(u16::from_be_bytes([msg[2], msg[3]]));
    if kind != BINDING_SUCCESS
        || msg[4..8] != MAGIC_COOKIE.to_be_bytes()
        || msg[8..20] != txid[..]
        || 20 + len > msg.len()
    {
        return None;
    }
    let mut attrs = &msg[20..20 + len];
    let mut plain = None;
    while attrs.len() >= 4 {
        let t = u16::from_be_bytes([attrs[0], attrs[1]]);
        let l = usize::from(u16::from_be_bytes([attrs[2], attrs[3]]));
        let value = attrs.get(4..4 + l)?;
        // Family 0x01 = IPv4: [0, family, port(2), addr(4)].
        if l == 8 && value[1] == 0x01 {
            let raw = [value[4], value[5], value[6], value[7]];
            match t {
                ATTR_XOR_MAPPED_ADDRESS => {
                    let c = MAGIC_COOKIE.to_be_bytes();
                    return Some(Ipv4Addr::new(
                        raw[0] ^ c[0],
                        raw[1] ^ c[1],
                        raw[2] ^ c[2],
                        raw[3] ^ c[3],
                    ));
                }
                ATTR_MAPPED_ADDRESS => plain = Some(Ipv4Addr::from(raw)),
                _ => {}
            }
        }
        let padded = (l + 3) & !3;
        attrs = attrs.get(4 + padded..).unwrap_or(&[]);
    }
    plain
}

async fn ask(server: SocketAddr, wait: Duration) -> Option<Ipv4Addr> {
    let sock = UdpSocket::bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0))
        .await
        .ok()?;
    let txid = random_bytes::<12>();
    let mut buf = [0u8; 1500];
    for attempt in 0..3u32 {
        sock.send_to(&request(&txid), server).await.ok()?;
        let deadline = tokio::time::Instant::now() + wait * (attempt + 1);
        while let Ok(Ok((n, from))) =
            tokio::time::timeout_at(deadline, sock.recv_from(&mut buf)).await
        {
            if from == server
                && let Some(ip) = parse_response(&buf[..n], &txid)
            {
                return Some(ip);
            }
        }
    }
    None
}

/// Asks each `stun:` server in turn for our address; the first usable answer wins.
pub async fn detect(stun_urls: &[String], allow_private: bool) -> Result<Ipv4Addr, PublicIpError> {
    let hosts: Vec<String> = stun_urls.iter().filter_map(|u| stun_host(u)).collect();
    if hosts.is_empty() {
        return Err(PublicIpError::NoServer);
    }
    for host in hosts {
        let Ok(addrs) = lookup_host(&host).await else {
            continue;
        };
        for addr in addrs.filter(SocketAddr::is_ipv4) {
            if let Some(ip) = ask(addr, Duration::from_millis(400)).await
                && usable(ip, allow_private)
            {
                return Ok(ip);
            }
        }
    }
    Err(PublicIpError::NoAnswer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(txid: &[u8; 12], attrs: &[(u16, [u8; 8])]) -> Vec<u8> {
        let mut m = vec![];
        m.extend_from_slice(&BINDING_SUCCESS.to_be_bytes());
        m.extend_from_slice(&((attrs.len() * 12) as u16).to_be_bytes());
        m.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
        m.extend_from_slice(txid);
        for (t, v) in attrs {
            m.extend_from_slice(&t.to_be_bytes());
            m.extend_from_slice(&8u16.to_be_bytes());
            m.extend_from_slice(v);
        }
        m
    }

    #[test]
    fn parses_xor_and_plain_mapped_addresses() {
        let txid = [7u8; 12];
        let c = MAGIC_COOKIE.to_be_bytes();
        let xor = [0, 1, 0, 0, 203 ^ c[0], c[1], 113 ^ c[2], 9 ^ c[3]];
        let plain = [0, 1, 0, 0, 198, 51, 100, 7];
        assert_eq!(
            parse_response(&response(&txid, &[(ATTR_XOR_MAPPED_ADDRESS, xor)]), &txid),
            Some(Ipv4Addr::new(203, 0, 113, 9))
        );
        assert_eq!(
            parse_response(&response(&txid, &[(ATTR_MAPPED_ADDRESS, plain)]), &txid),
            Some(Ipv4Addr::new(198, 51, 100, 7))
        );
        // Another transaction, truncated input, a lying length: nothing.
        let r = response(&txid, &[(ATTR_MAPPED_ADDRESS, plain)]);
        assert_eq!(parse_response(&r, &[8u8; 12]), None);
        assert_eq!(parse_response(&r[..25], &txid), None);
        let mut bad = r.clone();
        bad[3] = 200;
        assert_eq!(parse_response(&bad, &txid), None);
    }

    #[test]
    fn only_public_addresses_name_a_namespace() {
        for ip in [
            "10.1.2.3",
            "192.168.1.1",
            "172.20.0.1",
            "127.0.0.1",
            "169.254.1.1",
            "100.64.0.1",
        ] {
            assert!(!usable(ip.parse().unwrap(), false), "{ip}");
        }
        assert!(usable("203.0.113.9".parse().unwrap(), false));
        assert!(usable("127.0.0.1".parse().unwrap(), true));
        assert_eq!(
            namespace_prefix(Ipv4Addr::new(203, 0, 113, 9)),
            "peerns2-203-0-113-9"
        );
    }

    #[test]
    fn stun_urls() {
        assert_eq!(
            stun_host("stun:stun.l.google.com:19302").unwrap(),
            "stun.l.google.com:19302"
        );
        assert_eq!(stun_host("stun:127.0.0.1").unwrap(), "127.0.0.1:3478");
        assert_eq!(stun_host("turn:x:1"), None);
    }
}
