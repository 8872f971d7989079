//! Group frames inside an authenticated session, tags 30–39 of the session frame space. The
//! sender of a frame is always the session's proven identity, never a field of the frame.
//! Every frame is bounded (at most [`MAX_FRAME_BYTES`], which fits one encrypted session
//! frame) and decoded strictly.

use super::GroupId;
use super::history::VersionVector;
use super::log::{Hash, SignedEntry};
use super::message::SignedMessage;
use crate::discovery::wire::{Reader, WireError, Writer};
use crate::session::MAX_PLAINTEXT;
use crate::text;

/// Largest encoded group frame.
pub const MAX_FRAME_BYTES: usize = MAX_PLAINTEXT;
/// Most log entries in one `LogEntries` frame.
pub const MAX_PAGE_ENTRIES: usize = 64;
/// Most messages in one `Page` frame.
pub const MAX_PAGE_MSGS: usize = 256;
/// A page's messages stay under this many bytes (one full-size text always fits).
pub const MAX_PAGE_BYTES: usize = 48 * 1024;
/// Longest refusal text.
const MAX_REFUSE_TEXT: usize = 256;

/// Why a frame was refused (`Refuse`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefuseCode {
    /// The sender is not a current member.
    NotMember = 1,
    /// A proposed entry is not on the head: sync and sign again.
    StaleHead = 2,
    /// The frame or its content did not verify.
    Invalid = 3,
    /// Too many frames.
    Throttled = 4,
    /// Something else.
    Other = 5,
}

impl RefuseCode {
    fn from_u8(n: u8) -> Self {
        match n {
            1 => Self::NotMember,
            2 => Self::StaleHead,
            3 => Self::Invalid,
            4 => Self::Throttled,
            _ => Self::Other,
        }
    }
}

/// A group frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupFrame {
    /// Both sides, first on a link: where our log and history stand (anti-entropy).
    Hello {
        /// The group.
        group: GroupId,
        /// Entries in our log.
        log_len: u32,
        /// Hash of our last entry.
        head: Hash,
        /// What we hold.
        vv: VersionVector,
        /// The sender routes the group now (a member takes a router that says so).
        routing: bool,
    },
    /// Send us log entries from `from` on.
    LogWant {
        /// The group.
        group: GroupId,
        /// First index wanted.
        from: u32,
    },
    /// Log entries `from ..`; `done` when the sender's log ends here.
    LogEntries {
        /// The group.
        group: GroupId,
        /// Index of the first entry.
        from: u32,
        /// The entries.
        entries: Vec<SignedEntry>,
        /// No more follow.
        done: bool,
    },
    /// An admin (or a leaver) asks the router to append its entry.
    Propose(SignedEntry),
    /// A message: published by its author to the router, or relayed by the router.
    Msg(SignedMessage),
    /// Router → author: its messages up to `seq` are stored at the router.
    Ack {
        /// The group.
        group: GroupId,
        /// Highest contiguous seq stored.
        seq: u64,
    },
    /// Send us up to `limit` messages we lack, beyond `vv`.
    Want {
        /// The group.
        group: GroupId,
        /// What we hold.
        vv: VersionVector,
        /// Most messages wanted in the answering page.
        limit: u16,
    },
    /// Messages answering a `Want`; `more` when the sender has more beyond them.
    Page {
        /// The group.
        group: GroupId,
        /// The messages, each author's in seq order.
        msgs: Vec<SignedMessage>,
        /// More are available.
        more: bool,
    },
    /// A frame of ours was refused.
    Refuse {
        /// The group.
        group: GroupId,
        /// Why.
        code: RefuseCode,
        /// For people and logs.
        text: String,
    },
}

/// The session frame tags of group frames.
pub mod tag {
    /// `Hello`.
    pub const HELLO: u8 = 30;
    /// `LogWant`.
    pub const LOG_WANT: u8 = 31;
    /// `LogEntries`.
    pub const LOG_ENTRIES: u8 = 32;
    /// `Propose`.
    pub const PROPOSE: u8 = 33;
    /// `Msg`.
    pub const MSG: u8 = 34;
    /// `Ack`.
    pub const ACK: u8 = 35;
    /// `Want`.
    pub const WANT: u8 = 36;
    /// `Page`.
    pub const PAGE: u8 = 37;
    /// `Refuse`.
    pub const REFUSE: u8 = 38;
    /// [`super::MsgBatch`].
    pub const BATCH: u8 = 39;

    /// Whether a session frame with this first byte is a group frame.
    pub fn is_group(tag: u8) -> bool {
        (30..=39).contains(&tag)
    }
}

fn flag(r: &mut Reader<'_>, what: &'static str) -> Result<bool, WireError> {
    match r.u8()? {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(WireError::Unknown(what)),
    }
}

impl GroupFrame {
    /// The group the frame is about.
    pub fn group(&self) -> GroupId {
        match self {
            GroupFrame::Hello { group, .. }
            | GroupFrame::LogWant { group, .. }
            | GroupFrame::LogEntries { group, .. }
            | GroupFrame::Ack { group, .. }
            | GroupFrame::Want { group, .. }
            | GroupFrame::Page { group, .. }
            | GroupFrame::Refuse { group, .. } => *group,
            GroupFrame::Propose(e) => e.entry.group,
            GroupFrame::Msg(m) => m.msg.group,
        }
    }

    /// The frame's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        match self {
            GroupFrame::Hello {
                group,
                log_len,
                head,
                vv,
                routing,
            } => {
                w.u8(tag::HELLO)
                    .raw(&group.0)
                    .u64(u64::from(*log_len))
                    .raw(head)
                    .u8(u8::from(*routing));
                vv.encode_into(&mut w);
            }
            GroupFrame::LogWant { group, from } => {
                w.u8(tag::LOG_WANT).raw(&group.0).u64(u64::from(*from));
            }
            GroupFrame::LogEntries {
                group,
                from,
                entries,
                done,
            } => {
                w.u8(tag::LOG_ENTRIES)
                    .raw(&group.0)
                    .u64(u64::from(*from))
                    .u8(u8::from(*done))
                    .u16(u16::try_from(entries.len()).unwrap_or(u16::MAX));
                for e in entries {
                    e.encode_into(&mut w);
                }
            }
            GroupFrame::Propose(e) => {
                w.u8(tag::PROPOSE);
                e.encode_into(&mut w);
            }
            GroupFrame::Msg(m) => {
                w.u8(tag::MSG);
                m.encode_into(&mut w);
            }
            GroupFrame::Ack { group, seq } => {
                w.u8(tag::ACK).raw(&group.0).u64(*seq);
            }
            GroupFrame::Want { group, vv, limit } => {
                w.u8(tag::WANT).raw(&group.0).u16(*limit);
                vv.encode_into(&mut w);
            }
            GroupFrame::Page { group, msgs, more } => {
                w.u8(tag::PAGE)
                    .raw(&group.0)
                    .u8(u8::from(*more))
                    .u16(u16::try_from(msgs.len()).unwrap_or(u16::MAX));
                for m in msgs {
                    m.encode_into(&mut w);
                }
            }
            GroupFrame::Refuse { group, code, text } => {
                w.u8(tag::REFUSE).raw(&group.0).u8(*code as u8).str(text);
            }
        }
        w.0
    }

    /// Decodes one frame, checking every bound.
    pub fn decode(b: &[u8]) -> Result<Self, WireError> {
        if b.len() > MAX_FRAME_BYTES {
            return Err(WireError::TooLong("group frame"));
        }
        let mut r = Reader::new(b);
        let u32_of = |v: u64, what| u32::try_from(v).map_err(|_| WireError::TooLong(what));
        let frame = match r.u8()? {
            tag::HELLO => GroupFrame::Hello {
                group: GroupId(r.array()?),
                log_len: u32_of(r.u64()?, "log length")?,
                head: r.array()?,
                routing: flag(&mut r, "routing flag")?,
                vv: VersionVector::decode_from(&mut r)?,
            },
            tag::LOG_WANT => GroupFrame::LogWant {
                group: GroupId(r.array()?),
                from: u32_of(r.u64()?, "log index")?,
            },
            tag::LOG_ENTRIES => {
                let group = GroupId(r.array()?);
                let from = u32_of(r.u64()?, "log index")?;
                let done = flag(&mut r, "done flag")?;
                let n = usize::from(r.u16()?);
                if n > MAX_PAGE_ENTRIES {
                    return Err(WireError::TooLong("log entries"));
                }
                let entries = (0..n)
                    .map(|_| SignedEntry::decode_from(&mut r))
                    .collect::<Result<_, _>>()?;
                GroupFrame::LogEntries {
                    group,
                    from,
                    entries,
                    done,
                }
            }
            tag::PROPOSE => GroupFrame::Propose(SignedEntry::decode_from(&mut r)?),
            tag::MSG => GroupFrame::Msg(SignedMessage::decode_from(&mut r)?),
            tag::ACK => GroupFrame::Ack {
                group: GroupId(r.array()?),
                seq: r.u64()?,
            },
            tag::WANT => GroupFrame::Want {
                group: GroupId(r.array()?),
                limit: r.u16()?,
                vv: VersionVector::decode_from(&mut r)?,
            },
            tag::PAGE => {
                let group = GroupId(r.array()?);
                let more = flag(&mut r, "more flag")?;
                let n = usize::from(r.u16()?);
                if n > MAX_PAGE_MSGS {
                    return Err(WireError::TooLong("page"));
                }
                let msgs = (0..n)
                    .map(|_| SignedMessage::decode_from(&mut r))
                    .collect::<Result<_, _>>()?;
                GroupFrame::Page { group, msgs, more }
            }
            tag::REFUSE => GroupFrame::Refuse {
                group: GroupId(r.array()?),
                code: RefuseCode::from_u8(r.u8()?),
                text: text::line(r.str(MAX_REFUSE_TEXT, "refusal text")?, MAX_REFUSE_TEXT),
            },
            _ => return Err(WireError::Unknown("group frame")),
        };
        r.finish()?;
        Ok(frame)
    }
}

/// Several `Msg` frames to one peer in one session frame (tag 39, only on sessions with
/// [`crate::session::FEATURE_GROUP_BATCH`]): what a router relays, or a member's outbox sends,
/// in one turn. The receiver takes each message exactly as if it had come in its own `Msg`
/// frame, in order; the batch saves the per-frame cost of the session, SCTP and DTLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MsgBatch {
    /// The group.
    pub group: GroupId,
    /// The messages, in sending order (1 to [`MAX_PAGE_MSGS`], at most [`MAX_PAGE_BYTES`]
    /// encoded).
    pub msgs: Vec<SignedMessage>,
}

impl MsgBatch {
    /// Whether `next` still fits after `msgs` (which hold `bytes` encoded).
    pub fn fits(msgs: usize, bytes: usize, next: &SignedMessage) -> bool {
        msgs < MAX_PAGE_MSGS && bytes + next.encoded_len() <= MAX_PAGE_BYTES
    }

    /// The frame's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.u8(tag::BATCH)
            .raw(&self.group.0)
            .u16(u16::try_from(self.msgs.len()).unwrap_or(u16::MAX));
        for m in &self.msgs {
            m.encode_into(&mut w);
        }
        w.0
    }

    /// Decodes a batch, checking every bound; every message must be of the batch's group.
    pub fn decode(b: &[u8]) -> Result<Self, WireError> {
        if b.len() > MAX_FRAME_BYTES {
            return Err(WireError::TooLong("group frame"));
        }
        let mut r = Reader::new(b);
        if r.u8()? != tag::BATCH {
            return Err(WireError::Unknown("batch tag"));
        }
        let group = GroupId(r.array()?);
        let n = usize::from(r.u16()?);
        if n == 0 || n > MAX_PAGE_MSGS {
            return Err(WireError::TooLong("batch"));
        }
        let mut msgs = Vec::with_capacity(n);
        for _ in 0..n {
            let m = SignedMessage::decode_from(&mut r)?;
            if m.msg.group != group {
                return Err(WireError::Unknown("message of another group in a batch"));
            }
            msgs.push(m);
        }
        r.finish()?;
        Ok(Self { group, msgs })
    }
}
