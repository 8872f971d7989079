//! Frames inside an authenticated session (after the Noise handshake): contact requests,
//! messages and their acknowledgements, ping, raw app data and file transfer. Every frame is
//! bounded and decoded strictly; the sender of a frame is always the session's verified
//! identity, never a field of the frame. Names and error texts are sanitized as they are
//! decoded ([`crate::text`]): nothing above sees a peer's raw text.

pub use super::call_wire::CallFrame;
use crate::discovery::wire::{Reader, WireError, Writer};
use crate::text;

/// Longest message text, in bytes.
pub const MAX_TEXT: usize = 16 * 1024;
/// Longest raw app-data payload, in bytes.
pub const MAX_DATA: usize = 60 * 1024;
/// Longest file chunk, in bytes.
pub const MAX_CHUNK: usize = 60 * 1024;
/// Longest display name, in bytes.
const MAX_NAME: usize = 256;
/// Longest error text, in bytes.
const MAX_ERROR: usize = 512;
/// Longest signed file manifest, in bytes.
pub const MAX_MANIFEST: usize = 1024;
/// Longest RPC request or response (JSON, `crate::rpc::wire` checks it further), in bytes.
pub const MAX_RPC: usize = 63 * 1024;

/// A 16-byte random message or file identifier.
pub type Id = [u8; 16];

/// What a message op does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    /// A new text message.
    Text = 1,
    /// Replaces the text of `target`.
    Edit = 2,
    /// Deletes `target` for both sides.
    Delete = 3,
    /// A file: the body is a signed manifest.
    File = 4,
}

impl OpKind {
    /// The kind stored or sent as `n`.
    pub fn from_u8(n: u8) -> Option<Self> {
        Some(match n {
            1 => Self::Text,
            2 => Self::Edit,
            3 => Self::Delete,
            4 => Self::File,
            _ => return None,
        })
    }
}

/// One op of a conversation's ordered stream: what the sender's outbox holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Op {
    /// The sender's fingerprint (must be the session's identity).
    pub from: [u8; 32],
    /// The recipient's fingerprint (must be ours).
    pub to: [u8; 32],
    /// Position in the sender's stream for this conversation, from 1, without gaps.
    pub seq: u64,
    /// The message this op creates or changes.
    pub id: Id,
    /// What it does.
    pub kind: OpKind,
    /// For edit and delete: the message changed.
    pub target: Option<Id>,
    /// Sender's clock, Unix ms.
    pub sent_ms: u64,
    /// Text (UTF-8) or signed manifest.
    pub body: Vec<u8>,
}

/// A frame of the session protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// First frame of each side: the display name.
    Hello {
        /// Display name (may be empty).
        name: String,
    },
    /// Asks to become a contact.
    Request {
        /// The requester's display name.
        name: String,
    },
    /// The recipient accepted our request.
    Accept {
        /// The accepter's display name.
        name: String,
    },
    /// A message op.
    Op(Op),
    /// Every op up to `seq` of our stream to the peer is stored. With `resync` the receiver
    /// is behind what the sender believed: resend from `seq + 1`.
    Ack {
        /// Highest contiguous seq stored.
        seq: u64,
        /// Resend from `seq + 1`.
        resync: bool,
    },
    /// The peer has read our messages up to `seq`.
    Read {
        /// Highest seq read.
        seq: u64,
    },
    /// Liveness probe.
    Ping {
        /// Echoed in the pong.
        nonce: u64,
    },
    /// Answer to a ping.
    Pong {
        /// The ping's nonce.
        nonce: u64,
    },
    /// Our presence secret, for contacts we trust at level 2 or more: from it they recognise
    /// our pseudonymous records in stadium mode (decision 0010).
    PresenceSecret([u8; 32]),
    /// Opaque application data.
    Data(Vec<u8>),
    /// The peer refused something we sent.
    Error {
        /// Machine-readable reason.
        code: ErrorCode,
        /// For people and logs.
        text: String,
    },
    /// Send file `id` from chunk `index` on.
    FileResume {
        /// The file.
        id: Id,
        /// First chunk wanted.
        index: u64,
    },
    /// One chunk of a file.
    FileChunk {
        /// The file.
        id: Id,
        /// Chunk number.
        index: u64,
        /// Contents.
        data: Vec<u8>,
    },
    /// Chunks before `index` are on the receiver's disk.
    FileAck {
        /// The file.
        id: Id,
        /// Next chunk expected.
        index: u64,
    },
    /// The file arrived whole and its hash matched; or, with `ok == false`, it was refused.
    FileDone {
        /// The file.
        id: Id,
        /// Received and verified.
        ok: bool,
    },
    /// Call control (tags 40–49; only on sessions with [`crate::session::FEATURE_CALLS`]).
    Call(CallFrame),
    /// A signed RPC request, JSON (tag 50; only with [`crate::session::FEATURE_RPC`]).
    RpcRequest(Vec<u8>),
    /// An RPC response, JSON (tag 51).
    RpcResponse(Vec<u8>),
    /// A group-call control frame (tags 60–69; only on sessions with
    /// [`crate::session::FEATURE_GROUP_CALLS`]), kept encoded like [`Frame::Group`].
    GroupCall(Vec<u8>),
    /// Bytes of an upload a signed `fs.upload` request opened on this session (tag 52).
    RpcChunk {
        /// The upload, as the server numbered it in its answer.
        upload: u64,
        /// Where the bytes go in the file.
        offset: u64,
        /// At most [`MAX_CHUNK`] bytes.
        data: Vec<u8>,
    },
    /// The state of an upload (tag 53): progress (`code` 100), placed whole with the signed
    /// hash (200), or ended by an error (its RPC code and `text`).
    RpcUploadState {
        /// The upload.
        upload: u64,
        /// Bytes of the file on the server's disk.
        written: u64,
        /// 100, 200 or an error code.
        code: u16,
        /// The error, for people.
        text: String,
    },
    /// The armed baby monitor heard a sound above its alert threshold (tag 54): its level,
    /// in dB below full scale (0 = full scale). Sent to the contacts allowed to watch it.
    RpcSoundAlert {
        /// dB below full scale.
        below_db: u8,
    },
    /// A group frame (tags 30–39; only on sessions with [`crate::session::FEATURE_GROUPS`]),
    /// kept encoded, tag included: the groups layer above decodes and checks it.
    Group(Vec<u8>),
}

/// Why a peer refused a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// The frame did not decode.
    Malformed = 1,
    /// The sender may not do this (trust level).
    NotAllowed = 2,
    /// The frame claims another sender or recipient.
    Forged = 3,
    /// Too many frames.
    Throttled = 4,
    /// Something else.
    Other = 5,
    /// We do not have the sender as a contact: its outbox to us will never be accepted.
    NotContact = 6,
}

impl ErrorCode {
    fn from_u8(n: u8) -> Self {
        match n {
            1 => Self::Malformed,
            2 => Self::NotAllowed,
            3 => Self::Forged,
            4 => Self::Throttled,
            6 => Self::NotContact,
            _ => Self::Other,
        }
    }
}

/// Whether a session frame tag belongs to the groups layer (30–39, and 70–72 for files).
pub fn is_group(tag: u8) -> bool {
    (30..=39).contains(&tag) || crate::groups::files::is_file_tag(tag)
}

/// Whether a session frame tag belongs to group calls (60–69).
pub fn is_group_call(tag: u8) -> bool {
    (60..=69).contains(&tag)
}

mod tag {
    pub const HELLO: u8 = 1;
    pub const REQUEST: u8 = 2;
    pub const ACCEPT: u8 = 3;
    pub const OP: u8 = 4;
    pub const ACK: u8 = 5;
    pub const READ: u8 = 6;
    pub const PING: u8 = 7;
    pub const PONG: u8 = 8;
    pub const DATA: u8 = 9;
    pub const ERROR: u8 = 10;
    pub const PRESENCE_SECRET: u8 = 11;
    pub const FILE_RESUME: u8 = 20;
    pub const FILE_CHUNK: u8 = 21;
    pub const FILE_ACK: u8 = 22;
    pub const FILE_DONE: u8 = 23;
    pub const RPC_REQUEST: u8 = 50;
    pub const RPC_RESPONSE: u8 = 51;
    pub const RPC_CHUNK: u8 = 52;
    pub const RPC_UPLOAD_STATE: u8 = 53;
    pub const RPC_SOUND_ALERT: u8 = 54;
}

impl Frame {
    /// The frame's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        match self {
            Frame::Hello { name } => w.u8(tag::HELLO).str(name),
            Frame::Request { name } => w.u8(tag::REQUEST).str(name),
            Frame::Accept { name } => w.u8(tag::ACCEPT).str(name),
            Frame::Op(op) => {
                w.u8(tag::OP)
                    .raw(&op.from)
                    .raw(&op.to)
                    .u64(op.seq)
                    .raw(&op.id)
                    .u8(op.kind as u8);
                match &op.target {
                    Some(t) => w.u8(1).raw(t),
                    None => w.u8(0),
                };
                w.u64(op.sent_ms).bytes(&op.body)
            }
            Frame::Ack { seq, resync } => w.u8(tag::ACK).u64(*seq).u8(u8::from(*resync)),
            Frame::Read { seq } => w.u8(tag::READ).u64(*seq),
            Frame::Ping { nonce } => w.u8(tag::PING).u64(*nonce),
            Frame::PresenceSecret(s) => w.u8(tag::PRESENCE_SECRET).raw(s),
            Frame::Pong { nonce } => w.u8(tag::PONG).u64(*nonce),
            Frame::Data(d) => w.u8(tag::DATA).bytes(d),
            Frame::Error { code, text } => w.u8(tag::ERROR).u8(*code as u8).str(text),
            Frame::FileResume { id, index } => w.u8(tag::FILE_RESUME).raw(id).u64(*index),
            Frame::FileChunk { id, index, data } => {
                w.u8(tag::FILE_CHUNK).raw(id).u64(*index).bytes(data)
            }
            Frame::FileAck { id, index } => w.u8(tag::FILE_ACK).raw(id).u64(*index),
            Frame::FileDone { id, ok } => w.u8(tag::FILE_DONE).raw(id).u8(u8::from(*ok)),
            Frame::Call(c) => {
                c.encode_into(&mut w);
                &mut w
            }
            Frame::RpcRequest(b) => w.u8(tag::RPC_REQUEST).bytes(b),
            Frame::RpcResponse(b) => w.u8(tag::RPC_RESPONSE).bytes(b),
            Frame::RpcChunk {
                upload,
                offset,
                data,
            } => w.u8(tag::RPC_CHUNK).u64(*upload).u64(*offset).bytes(data),
            Frame::RpcUploadState {
                upload,
                written,
                code,
                text,
            } => w
                .u8(tag::RPC_UPLOAD_STATE)
                .u64(*upload)
                .u64(*written)
                .u16(*code)
                .str(text),
            Frame::RpcSoundAlert { below_db } => w.u8(tag::RPC_SOUND_ALERT).u8(*below_db),
            Frame::Group(b) | Frame::GroupCall(b) => return b.clone(),
        };
        w.0
    }

    /// Decodes one frame, checking every bound.
    pub fn decode(b: &[u8]) -> Result<Frame, WireError> {
        if b.first().is_some_and(|t| is_group(*t)) {
            return Ok(Frame::Group(b.to_vec()));
        }
        if b.first().is_some_and(|t| is_group_call(*t)) {
            return Ok(Frame::GroupCall(b.to_vec()));
        }
        let mut r = Reader::new(b);
        let frame = match r.u8()? {
            tag::HELLO => Frame::Hello {
                name: text::display_name(r.str(MAX_NAME, "name")?),
            },
            tag::REQUEST => Frame::Request {
                name: text::display_name(r.str(MAX_NAME, "name")?),
            },
            tag::ACCEPT => Frame::Accept {
                name: text::display_name(r.str(MAX_NAME, "name")?),
            },
            tag::OP => {
                let from = r.array()?;
                let to = r.array()?;
                let seq = r.u64()?;
                let id = r.array()?;
                let kind = OpKind::from_u8(r.u8()?).ok_or(WireError::Unknown("op kind"))?;
                let target = match r.u8()? {
                    0 => None,
                    1 => Some(r.array()?),
                    _ => return Err(WireError::Unknown("target flag")),
                };
                let sent_ms = r.u64()?;
                let max = if kind == OpKind::File {
                    MAX_MANIFEST
                } else {
                    MAX_TEXT
                };
                let body = r.bytes(max, "body")?.to_vec();
                let needs_target = matches!(kind, OpKind::Edit | OpKind::Delete);
                if needs_target != target.is_some() {
                    return Err(WireError::Unknown("target for this kind"));
                }
                if kind != OpKind::File && std::str::from_utf8(&body).is_err() {
                    return Err(WireError::Utf8("body"));
                }
                Frame::Op(Op {
                    from,
                    to,
                    seq,
                    id,
                    kind,
                    target,
                    sent_ms,
                    body,
                })
            }
            tag::ACK => Frame::Ack {
                seq: r.u64()?,
                resync: match r.u8()? {
                    0 => false,
                    1 => true,
                    _ => return Err(WireError::Unknown("resync flag")),
                },
            },
            tag::READ => Frame::Read { seq: r.u64()? },
            tag::PING => Frame::Ping { nonce: r.u64()? },
            tag::PRESENCE_SECRET => Frame::PresenceSecret(r.array()?),
            tag::PONG => Frame::Pong { nonce: r.u64()? },
            tag::DATA => Frame::Data(r.bytes(MAX_DATA, "data")?.to_vec()),
            tag::ERROR => Frame::Error {
                code: ErrorCode::from_u8(r.u8()?),
                text: text::line(r.str(MAX_ERROR, "error text")?, MAX_ERROR),
            },
            tag::FILE_RESUME => Frame::FileResume {
                id: r.array()?,
                index: r.u64()?,
            },
            tag::FILE_CHUNK => Frame::FileChunk {
                id: r.array()?,
                index: r.u64()?,
                data: r.bytes(MAX_CHUNK, "chunk")?.to_vec(),
            },
            tag::FILE_ACK => Frame::FileAck {
                id: r.array()?,
                index: r.u64()?,
            },
            tag::FILE_DONE => Frame::FileDone {
                id: r.array()?,
                ok: r.u8()? == 1,
            },
            tag::RPC_REQUEST => Frame::RpcRequest(r.bytes(MAX_RPC, "rpc")?.to_vec()),
            tag::RPC_RESPONSE => Frame::RpcResponse(r.bytes(MAX_RPC, "rpc")?.to_vec()),
            tag::RPC_CHUNK => Frame::RpcChunk {
                upload: r.u64()?,
                offset: r.u64()?,
                data: r.bytes(MAX_CHUNK, "chunk")?.to_vec(),
            },
            tag::RPC_UPLOAD_STATE => Frame::RpcUploadState {
                upload: r.u64()?,
                written: r.u64()?,
                code: r.u16()?,
                text: text::line(r.str(MAX_ERROR, "upload state text")?, MAX_ERROR),
            },
            tag::RPC_SOUND_ALERT => Frame::RpcSoundAlert { below_db: r.u8()? },
            t if super::call_wire::tag::is_call(t) => Frame::Call(CallFrame::decode(t, &mut r)?),
            _ => return Err(WireError::Unknown("frame")),
        };
        r.finish()?;
        Ok(frame)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(kind: OpKind, target: Option<Id>, body: &[u8]) -> Frame {
        Frame::Op(Op {
            from: [1; 32],
            to: [2; 32],
            seq: 7,
            id: [3; 16],
            kind,
            target,
            sent_ms: 1_700_000_000_000,
            body: body.to_vec(),
        })
    }

    #[test]
    fn every_frame_round_trips() {
        let frames = [
            Frame::Hello { name: "Ana".into() },
            Frame::Request { name: "Bo".into() },
            Frame::Accept { name: "".into() },
            op(OpKind::Text, None, "hé".as_bytes()),
            op(OpKind::Edit, Some([4; 16]), b"fixed"),
            op(OpKind::Delete, Some([4; 16]), b""),
            op(OpKind::File, None, &[0xff; 100]),
            Frame::Ack {
                seq: 9,
                resync: true,
            },
            Frame::Read { seq: 3 },
            Frame::Ping { nonce: 5 },
            Frame::PresenceSecret([9; 32]),
            Frame::Pong { nonce: 5 },
            Frame::Data(vec![0; MAX_DATA]),
            Frame::Error {
                code: ErrorCode::Forged,
                text: "no".into(),
            },
            Frame::FileResume {
                id: [5; 16],
                index: 2,
            },
            Frame::FileChunk {
                id: [5; 16],
                index: 2,
                data: vec![1; MAX_CHUNK],
            },
            Frame::FileAck {
                id: [5; 16],
                index: 3,
            },
            Frame::FileDone {
                id: [5; 16],
                ok: true,
            },
            Frame::RpcRequest(vec![b'{'; MAX_RPC]),
            Frame::RpcResponse(b"{}".to_vec()),
            Frame::RpcChunk {
                upload: 3,
                offset: 1 << 40,
                data: vec![7; MAX_CHUNK],
            },
            Frame::RpcUploadState {
                upload: 3,
                written: 9,
                code: 413,
                text: "over the quota".into(),
            },
            Frame::RpcSoundAlert { below_db: 12 },
        ];
        for f in frames {
            assert_eq!(Frame::decode(&f.encode()), Ok(f));
        }
    }

    #[test]
    fn group_frames_pass_through_encoded() {
        // Tags 30–39 are the groups layer's: carried as they are, decoded above.
        for t in 30..=39u8 {
            let b = vec![t, 1, 2, 3];
            let f = Frame::decode(&b).unwrap();
            assert_eq!(f, Frame::Group(b.clone()));
            assert_eq!(f.encode(), b);
        }
        assert_eq!(Frame::decode(&[29]), Err(WireError::Unknown("frame")));
    }

    #[test]
    fn malformed_frames_are_refused() {
        assert_eq!(Frame::decode(&[]), Err(WireError::Truncated));
        assert_eq!(Frame::decode(&[99]), Err(WireError::Unknown("frame")));
        let mut long = Frame::Data(vec![0; MAX_DATA]).encode();
        long[1..3].copy_from_slice(&(MAX_DATA as u16 + 1).to_be_bytes());
        long.push(0);
        assert_eq!(Frame::decode(&long), Err(WireError::TooLong("data")));
        let mut chunk = Frame::RpcChunk {
            upload: 1,
            offset: 0,
            data: vec![0; MAX_CHUNK],
        }
        .encode();
        chunk[17..19].copy_from_slice(&(MAX_CHUNK as u16 + 1).to_be_bytes());
        chunk.push(0);
        assert_eq!(Frame::decode(&chunk), Err(WireError::TooLong("chunk")));
        let mut trailing = Frame::Ping { nonce: 1 }.encode();
        trailing.push(0);
        assert_eq!(Frame::decode(&trailing), Err(WireError::Trailing));
        // An edit without a target, a text with a target, text that is not UTF-8.
        let mut bad = op(OpKind::Text, None, b"x").encode();
        bad[1 + 32 + 32 + 8 + 16] = OpKind::Edit as u8;
        assert!(Frame::decode(&bad).is_err());
        let mut bad = op(OpKind::Edit, Some([1; 16]), b"x").encode();
        bad[1 + 32 + 32 + 8 + 16] = OpKind::Text as u8;
        assert!(Frame::decode(&bad).is_err());
        assert_eq!(
            Frame::decode(&op(OpKind::Text, None, &[0xff]).encode()),
            Err(WireError::Utf8("body"))
        );
        let text = vec![b'a'; MAX_TEXT + 1];
        assert_eq!(
            Frame::decode(&op(OpKind::Text, None, &text).encode()),
            Err(WireError::TooLong("body"))
        );
    }
}
