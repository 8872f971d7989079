//! Messages on namespace data connections (member ↔ router), with strict bounds.

use super::presence::{MAX_ID_BYTES, PresenceError, SignedPresence, VerifyCache};
use super::wire::{Reader, WireError, Writer};

/// Largest message a peer may send (a page of records fits well below it).
pub const MAX_MESSAGE_BYTES: usize = 96 * 1024;
/// Most records in one message.
pub const MAX_RECORDS_PER_MESSAGE: usize = 200;
/// Most removals in one message.
pub const MAX_REMOVALS_PER_MESSAGE: usize = 1024;
/// Longest refusal reason.
const MAX_REASON_BYTES: usize = 200;

/// A record with the router-assigned join order (lower joined earlier; used for ranks).
pub type Ranked = (u64, SignedPresence);

/// One namespace message.
#[derive(Debug, Clone, PartialEq)]
pub enum Msg {
    /// Member → router: my (re-)signed presence.
    CheckIn(Box<SignedPresence>),
    /// Router → new member: a page of the registry; `last` ends the snapshot.
    Welcome {
        /// The router's level.
        level: u8,
        /// Registry entries.
        records: Vec<Ranked>,
        /// Whether this is the last page.
        last: bool,
    },
    /// Router → members: what changed since the last delta.
    Delta {
        /// New or re-signed records.
        added: Vec<Ranked>,
        /// Discovery IDs that left.
        removed: Vec<String>,
    },
    /// Either way: I am alive (sent when nothing else was sent for a heartbeat).
    Beat,
    /// Either way: I am leaving on purpose.
    Leave,
    /// Router → members: move to this level's router.
    Migrate {
        /// The target level.
        level: u8,
    },
    /// Router → members: I (the same router) now hold this level's ID.
    Relevel {
        /// The new level.
        level: u8,
    },
    /// Either way: I now beat at this interval (the app went to the background or came back).
    Pace {
        /// Heartbeat interval in milliseconds.
        ms: u32,
    },
    /// Router → a peer in the reverse-connect slot: check in over this connection.
    ReverseWelcome {
        /// The router's level.
        level: u8,
    },
    /// Router → member: the check-in was refused; the connection closes.
    Refused {
        /// Why.
        reason: String,
    },
}

/// Why a message was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MsgError {
    /// Larger than [`MAX_MESSAGE_BYTES`].
    #[error("message too large")]
    TooLarge,
    /// Not a well-formed message.
    #[error("malformed message: {0}")]
    Malformed(#[from] WireError),
    /// A record in it failed verification.
    #[error(transparent)]
    Record(#[from] PresenceError),
}

impl Msg {
    /// The wire form.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        match self {
            Msg::CheckIn(r) => {
                w.u8(1);
                r.write(&mut w);
            }
            Msg::Welcome {
                level,
                records,
                last,
            } => {
                w.u8(2).u8(*level).u8(u8::from(*last));
                write_ranked(&mut w, records);
            }
            Msg::Delta { added, removed } => {
                w.u8(3);
                write_ranked(&mut w, added);
                w.u16(u16::try_from(removed.len()).unwrap_or(u16::MAX));
                for id in removed.iter().take(usize::from(u16::MAX)) {
                    w.str(id);
                }
            }
            Msg::Beat => {
                w.u8(4);
            }
            Msg::Leave => {
                w.u8(5);
            }
            Msg::Migrate { level } => {
                w.u8(6).u8(*level);
            }
            Msg::ReverseWelcome { level } => {
                w.u8(7).u8(*level);
            }
            Msg::Refused { reason } => {
                w.u8(8).str(reason);
            }
            Msg::Relevel { level } => {
                w.u8(9).u8(*level);
            }
            Msg::Pace { ms } => {
                w.u8(10).u64(u64::from(*ms));
            }
        }
        w.0
    }

    /// Decodes a message, verifying every record in it.
    pub fn decode(bytes: &[u8], cache: &VerifyCache) -> Result<Msg, MsgError> {
        if bytes.len() > MAX_MESSAGE_BYTES {
            return Err(MsgError::TooLarge);
        }
        let mut r = Reader::new(bytes);
        let msg = match r.u8()? {
            1 => Msg::CheckIn(Box::new(read_record(&mut r, cache)?)),
            2 => {
                let level = r.u8()?;
                let last = match r.u8()? {
                    0 => false,
                    1 => true,
                    _ => return Err(WireError::Unknown("flag").into()),
                };
                let records = read_ranked(&mut r, cache)?;
                Msg::Welcome {
                    level,
                    records,
                    last,
                }
            }
            3 => {
                let added = read_ranked(&mut r, cache)?;
                let n = usize::from(r.u16()?);
                if n > MAX_REMOVALS_PER_MESSAGE {
                    return Err(WireError::TooLong("removals").into());
                }
                let removed = (0..n)
                    .map(|_| r.str(MAX_ID_BYTES, "discovery id").map(str::to_owned))
                    .collect::<Result<_, _>>()?;
                Msg::Delta { added, removed }
            }
            4 => Msg::Beat,
            5 => Msg::Leave,
            6 => Msg::Migrate { level: r.u8()? },
            7 => Msg::ReverseWelcome { level: r.u8()? },
            8 => Msg::Refused {
                reason: r.str(MAX_REASON_BYTES, "reason")?.to_owned(),
            },
            9 => Msg::Relevel { level: r.u8()? },
            10 => Msg::Pace {
                ms: u32::try_from(r.u64()?).map_err(|_| WireError::TooLong("pace"))?,
            },
            _ => return Err(WireError::Unknown("message type").into()),
        };
        r.finish()?;
        Ok(msg)
    }
}

fn write_ranked(w: &mut Writer, records: &[Ranked]) {
    w.u16(u16::try_from(records.len()).unwrap_or(u16::MAX));
    for (seq, rec) in records.iter().take(usize::from(u16::MAX)) {
        w.u64(*seq);
        rec.write(w);
    }
}

fn read_record(r: &mut Reader<'_>, cache: &VerifyCache) -> Result<SignedPresence, MsgError> {
    // A record is a length-prefixed body and a 64-byte signature.
    let len = usize::from(r.u16()?);
    let mut whole = Vec::with_capacity(2 + len + 64);
    whole.extend_from_slice(&(len as u16).to_be_bytes());
    whole.extend_from_slice(r.take(len)?);
    whole.extend_from_slice(r.take(64)?);
    Ok(SignedPresence::decode(&whole, cache)?)
}

fn read_ranked(r: &mut Reader<'_>, cache: &VerifyCache) -> Result<Vec<Ranked>, MsgError> {
    let n = usize::from(r.u16()?);
    if n > MAX_RECORDS_PER_MESSAGE {
        return Err(WireError::TooLong("records").into());
    }
    (0..n)
        .map(|_| Ok((r.u64()?, read_record(r, cache)?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::presence::Presence;
    use crate::identity::Identity;

    fn rec(id: &Identity, disc: &str) -> SignedPresence {
        SignedPresence::sign(
            id,
            Presence {
                namespace: "ns".into(),
                disc_id: disc.into(),
                key: [0; 32],
                issued_ms: 5,
                name: "n".into(),
                geo: None,
                note: vec![],
            },
        )
    }

    #[test]
    fn every_message_round_trips() {
        let id = Identity::generate();
        let cache = VerifyCache::default();
        let msgs = [
            Msg::CheckIn(Box::new(rec(&id, "d1"))),
            Msg::Welcome {
                level: 2,
                records: vec![(0, rec(&id, "d1")), (7, rec(&id, "d2"))],
                last: true,
            },
            Msg::Delta {
                added: vec![(3, rec(&id, "d3"))],
                removed: vec!["d9".into()],
            },
            Msg::Beat,
            Msg::Leave,
            Msg::Migrate { level: 1 },
            Msg::ReverseWelcome { level: 1 },
            Msg::Refused {
                reason: "full".into(),
            },
            Msg::Relevel { level: 1 },
            Msg::Pace { ms: 5000 },
        ];
        for m in msgs {
            assert_eq!(Msg::decode(&m.encode(), &cache).unwrap(), m);
        }
    }

    #[test]
    fn bad_input_is_refused() {
        let cache = VerifyCache::default();
        assert!(Msg::decode(&[], &cache).is_err());
        assert!(Msg::decode(&[99], &cache).is_err());
        assert!(Msg::decode(&[4, 0], &cache).is_err(), "trailing byte");
        assert_eq!(
            Msg::decode(&vec![4; MAX_MESSAGE_BYTES + 1], &cache),
            Err(MsgError::TooLarge)
        );
        // A record count above the bound is refused before any record is read.
        let mut w = Writer::default();
        w.u8(3).u16(MAX_RECORDS_PER_MESSAGE as u16 + 1);
        assert!(matches!(
            Msg::decode(&w.0, &cache),
            Err(MsgError::Malformed(WireError::TooLong("records")))
        ));
        // A tampered record inside a message fails the whole message.
        let id = Identity::generate();
        let mut b = Msg::CheckIn(Box::new(rec(&id, "d1"))).encode();
        let last = b.len() - 1;
        b[last] ^= 1;
        assert!(matches!(
            Msg::decode(&b, &cache),
            Err(MsgError::Record(PresenceError::BadSignature))
        ));
    }
}
