//! Call control frames inside an authenticated session (tags 40–49, feature bit
//! [`crate::session::FEATURE_CALLS`]): ring, ringing, accept, decline, busy, cancel, hang-up and
//! media state. They carry no media; the media connection they announce is bound to them by its
//! PeerJS connection ID and both DTLS fingerprints (`crate::calls::binding`,
//! `docs/decisions/0013-calls.md`). Every field is bounded and decoded strictly.

use crate::discovery::wire::{Reader, WireError, Writer};

/// A 16-byte random call identifier, chosen by the caller.
pub type CallId = [u8; 16];

/// Longest media connection ID (`mc_` + random), in bytes.
pub const MAX_MEDIA_ID: usize = 64;

/// The media a call carries, a set of [`Kinds::AUDIO`], [`Kinds::VIDEO`], [`Kinds::SCREEN`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Kinds(u8);

impl Kinds {
    /// Microphone audio.
    pub const AUDIO: Kinds = Kinds(1);
    /// Camera video.
    pub const VIDEO: Kinds = Kinds(2);
    /// Screen share.
    pub const SCREEN: Kinds = Kinds(4);
    const ALL: u8 = 7;

    /// The set stored or sent as `bits`; `None` for unknown bits.
    pub fn from_bits(bits: u8) -> Option<Kinds> {
        (bits & !Self::ALL == 0).then_some(Kinds(bits))
    }

    /// The bits of the set.
    pub fn bits(self) -> u8 {
        self.0
    }

    /// Both sets.
    pub const fn union(self, other: Kinds) -> Kinds {
        Kinds(self.0 | other.0)
    }

    /// Whether every kind of `other` is in the set.
    pub fn contains(self, other: Kinds) -> bool {
        self.0 & other.0 == other.0
    }

    /// No kind at all.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Names of the kinds, e.g. `["audio", "video"]`.
    pub fn names(self) -> Vec<&'static str> {
        [
            (Self::AUDIO, "audio"),
            (Self::VIDEO, "video"),
            (Self::SCREEN, "screen"),
        ]
        .into_iter()
        .filter(|(k, _)| self.contains(*k))
        .map(|(_, n)| n)
        .collect()
    }

    /// Parses a name list such as `"audio,video"` (empty parts ignored).
    pub fn parse(s: &str) -> Option<Kinds> {
        let mut k = Kinds::default();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            k = k.union(match part {
                "audio" => Self::AUDIO,
                "video" => Self::VIDEO,
                "screen" => Self::SCREEN,
                _ => return None,
            });
        }
        Some(k)
    }
}

/// What one side of a call sends now; announced to the peer on every change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MediaState {
    /// The microphone is muted.
    pub muted: bool,
    /// The camera is off.
    pub camera_off: bool,
    /// The screen is shared.
    pub screen: bool,
    /// The back camera is in use (switch camera); else the front one.
    pub back_camera: bool,
    /// How far the picture must be turned clockwise to stand upright: 0, 90, 180 or 270 degrees
    /// (a phone sends its camera as the sensor gives it; the receiver turns it). Sent only to
    /// peers with `FEATURE_VIDEO_ROTATION` ([`MediaState::without_rotation`]).
    pub rotation: u16,
}

impl MediaState {
    pub(crate) fn bits(self) -> u8 {
        u8::from(self.muted)
            | u8::from(self.camera_off) << 1
            | u8::from(self.screen) << 2
            | u8::from(self.back_camera) << 3
            | Self::quarter_turns(self.rotation) << 4
    }

    pub(crate) fn from_bits(b: u8) -> Option<Self> {
        (b & !0b11_1111 == 0).then_some(Self {
            muted: b & 1 != 0,
            camera_off: b & 2 != 0,
            screen: b & 4 != 0,
            back_camera: b & 8 != 0,
            rotation: u16::from(b >> 4 & 0b11) * 90,
        })
    }

    /// `degrees` as the nearest quarter turn: 0, 90, 180 or 270.
    pub fn rotation_of(degrees: u16) -> u16 {
        u16::from(Self::quarter_turns(degrees)) * 90
    }

    fn quarter_turns(degrees: u16) -> u8 {
        ((u32::from(degrees) + 45) / 90 % 4) as u8
    }

    /// This state for a peer that does not know rotations (its parser refuses the bits).
    pub fn without_rotation(self) -> Self {
        Self {
            rotation: 0,
            ..self
        }
    }
}

/// A SHA-256 DTLS certificate fingerprint, as WebRTC puts it in SDP (`sha-256 AB:CD:…`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DtlsFingerprint(pub [u8; 32]);

impl DtlsFingerprint {
    /// Parses the SDP form (`sha-256 AB:CD:…`, case-insensitive); other hash functions are not
    /// accepted.
    pub fn parse(s: &str) -> Option<Self> {
        let (alg, hex) = s.trim().split_once(' ')?;
        if !alg.eq_ignore_ascii_case("sha-256") {
            return None;
        }
        let mut out = [0u8; 32];
        let mut parts = hex.trim().split(':');
        for b in &mut out {
            let p = parts.next()?;
            if p.len() != 2 {
                return None;
            }
            *b = u8::from_str_radix(p, 16).ok()?;
        }
        parts.next().is_none().then_some(Self(out))
    }
}

impl std::fmt::Display for DtlsFingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("sha-256 ")?;
        for (i, b) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

/// Whether `id` may name a media connection: 1 to [`MAX_MEDIA_ID`] ASCII letters, digits,
/// `_` or `-` (PeerJS uses `mc_` and random letters).
pub fn valid_media_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_MEDIA_ID
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A call control frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallFrame {
    /// The caller rings: the call, its media, and the media connection it will offer.
    Ring {
        /// The call.
        call: CallId,
        /// What the caller sends.
        kinds: Kinds,
        /// The PeerJS connection ID of the media OFFER to come.
        media_id: String,
        /// The caller's DTLS fingerprint in that OFFER.
        dtls: DtlsFingerprint,
    },
    /// The callee's phone rings.
    Ringing {
        /// The call.
        call: CallId,
    },
    /// The callee answered.
    Accept {
        /// The call.
        call: CallId,
        /// What the callee sends.
        kinds: Kinds,
        /// The callee's DTLS fingerprint in its ANSWER.
        dtls: DtlsFingerprint,
    },
    /// The callee refused.
    Decline {
        /// The call.
        call: CallId,
    },
    /// The callee is in another call.
    Busy {
        /// The call.
        call: CallId,
    },
    /// The caller gave up before an answer.
    Cancel {
        /// The call.
        call: CallId,
    },
    /// Either side ended the connected call.
    HangUp {
        /// The call.
        call: CallId,
    },
    /// The sender's media state changed.
    Media {
        /// The call.
        call: CallId,
        /// The new state.
        state: MediaState,
    },
}

/// Frame tags of the call frames (the calls range of `chat::wire` is 40–49).
pub(crate) mod tag {
    pub const RING: u8 = 40;
    pub const RINGING: u8 = 41;
    pub const ACCEPT: u8 = 42;
    pub const DECLINE: u8 = 43;
    pub const BUSY: u8 = 44;
    pub const CANCEL: u8 = 45;
    pub const HANG_UP: u8 = 46;
    pub const MEDIA: u8 = 47;
    /// Whether `t` is in the calls range.
    pub fn is_call(t: u8) -> bool {
        (40..=49).contains(&t)
    }
}

impl CallFrame {
    /// This frame as a peer with session `features` may read it: without the picture's
    /// rotation unless it has `FEATURE_VIDEO_ROTATION`.
    pub fn for_peer(self, features: u64) -> Self {
        match self {
            CallFrame::Media { call, state }
                if features & crate::session::FEATURE_VIDEO_ROTATION == 0 =>
            {
                CallFrame::Media {
                    call,
                    state: state.without_rotation(),
                }
            }
            other => other,
        }
    }

    /// The call the frame is about.
    pub fn call(&self) -> CallId {
        match self {
            CallFrame::Ring { call, .. }
            | CallFrame::Ringing { call }
            | CallFrame::Accept { call, .. }
            | CallFrame::Decline { call }
            | CallFrame::Busy { call }
            | CallFrame::Cancel { call }
            | CallFrame::HangUp { call }
            | CallFrame::Media { call, .. } => *call,
        }
    }

    /// Appends the frame (tag first).
    pub(crate) fn encode_into(&self, w: &mut Writer) {
        match self {
            CallFrame::Ring {
                call,
                kinds,
                media_id,
                dtls,
            } => w
                .u8(tag::RING)
                .raw(call)
                .u8(kinds.bits())
                .str(media_id)
                .raw(&dtls.0),
            CallFrame::Ringing { call } => w.u8(tag::RINGING).raw(call),
            CallFrame::Accept { call, kinds, dtls } => {
                w.u8(tag::ACCEPT).raw(call).u8(kinds.bits()).raw(&dtls.0)
            }
            CallFrame::Decline { call } => w.u8(tag::DECLINE).raw(call),
            CallFrame::Busy { call } => w.u8(tag::BUSY).raw(call),
            CallFrame::Cancel { call } => w.u8(tag::CANCEL).raw(call),
            CallFrame::HangUp { call } => w.u8(tag::HANG_UP).raw(call),
            CallFrame::Media { call, state } => w.u8(tag::MEDIA).raw(call).u8(state.bits()),
        };
    }

    /// Decodes the body of a frame whose tag `t` is in the calls range.
    pub(crate) fn decode(t: u8, r: &mut Reader<'_>) -> Result<CallFrame, WireError> {
        let call = r.array()?;
        let kinds = |r: &mut Reader<'_>, ring: bool| {
            Kinds::from_bits(r.u8()?)
                .filter(|k| !(ring && k.is_empty()))
                .ok_or(WireError::Unknown("media kinds"))
        };
        Ok(match t {
            tag::RING => {
                let kinds = kinds(r, true)?;
                let media_id = r.str(MAX_MEDIA_ID, "media id")?;
                if !valid_media_id(media_id) {
                    return Err(WireError::Unknown("media id"));
                }
                CallFrame::Ring {
                    call,
                    kinds,
                    media_id: media_id.to_owned(),
                    dtls: DtlsFingerprint(r.array()?),
                }
            }
            tag::RINGING => CallFrame::Ringing { call },
            tag::ACCEPT => CallFrame::Accept {
                call,
                kinds: kinds(r, false)?,
                dtls: DtlsFingerprint(r.array()?),
            },
            tag::DECLINE => CallFrame::Decline { call },
            tag::BUSY => CallFrame::Busy { call },
            tag::CANCEL => CallFrame::Cancel { call },
            tag::HANG_UP => CallFrame::HangUp { call },
            tag::MEDIA => CallFrame::Media {
                call,
                state: MediaState::from_bits(r.u8()?).ok_or(WireError::Unknown("media state"))?,
            },
            _ => return Err(WireError::Unknown("call frame")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rotation_travels_in_the_state_byte_and_not_to_a_peer_without_the_feature() {
        for degrees in [0, 90, 180, 270] {
            let state = MediaState {
                back_camera: true,
                rotation: degrees,
                ..MediaState::default()
            };
            assert_eq!(MediaState::from_bits(state.bits()), Some(state));
        }
        assert_eq!(
            [0, 44, 46, 134, 181, 315, 359].map(MediaState::rotation_of),
            [0, 0, 90, 90, 180, 0, 0]
        );
        let frame = CallFrame::Media {
            call: [7; 16],
            state: MediaState {
                muted: true,
                rotation: 90,
                ..MediaState::default()
            },
        };
        let old = frame.clone().for_peer(crate::session::FEATURE_CALLS);
        // A build before 1.9 refuses state bits it does not know: none is sent to it.
        let CallFrame::Media { state, .. } = &old else {
            unreachable!()
        };
        assert_eq!(state.bits() & !0b1111, 0);
        assert!(state.muted);
        let new = crate::session::FEATURE_CALLS | crate::session::FEATURE_VIDEO_ROTATION;
        assert_eq!(frame.clone().for_peer(new), frame);
    }
    use crate::chat::wire::Frame;

    fn ring() -> CallFrame {
        ring_with("mc_abc123")
    }

    fn ring_with(media_id: &str) -> CallFrame {
        CallFrame::Ring {
            call: [1; 16],
            kinds: Kinds::AUDIO.union(Kinds::VIDEO),
            media_id: media_id.into(),
            dtls: DtlsFingerprint([0xab; 32]),
        }
    }

    #[test]
    fn call_frames_round_trip_and_use_tags_40_to_49() {
        let frames = [
            ring(),
            CallFrame::Ringing { call: [2; 16] },
            CallFrame::Accept {
                call: [2; 16],
                kinds: Kinds::default(),
                dtls: DtlsFingerprint([3; 32]),
            },
            CallFrame::Decline { call: [4; 16] },
            CallFrame::Busy { call: [4; 16] },
            CallFrame::Cancel { call: [4; 16] },
            CallFrame::HangUp { call: [4; 16] },
            CallFrame::Media {
                call: [4; 16],
                state: MediaState {
                    muted: true,
                    camera_off: false,
                    screen: true,
                    back_camera: true,
                    rotation: 180,
                },
            },
        ];
        for f in frames {
            let bytes = Frame::Call(f.clone()).encode();
            assert!(tag::is_call(bytes[0]));
            assert_eq!(Frame::decode(&bytes), Ok(Frame::Call(f)));
        }
    }

    #[test]
    fn bad_call_frames_are_refused() {
        let good = Frame::Call(ring()).encode();
        // Ring without media, unknown kind bits.
        for bits in [0u8, 8, 0xff] {
            let mut b = good.clone();
            b[17] = bits;
            assert_eq!(Frame::decode(&b), Err(WireError::Unknown("media kinds")));
        }
        // A media id with a character outside the alphabet, and one that is too long.
        let bad_id = ring_with("mc_a/b");
        let b = Frame::Call(bad_id).encode();
        assert_eq!(Frame::decode(&b), Err(WireError::Unknown("media id")));
        let long = ring_with(&"m".repeat(MAX_MEDIA_ID + 1));
        let b = Frame::Call(long).encode();
        assert_eq!(Frame::decode(&b), Err(WireError::TooLong("media id")));
        let empty = ring_with("");
        assert!(Frame::decode(&Frame::Call(empty).encode()).is_err());
        // Unknown media-state bits; unassigned tags of the range.
        let mut m = Frame::Call(CallFrame::Media {
            call: [0; 16],
            state: MediaState::default(),
        })
        .encode();
        m[17] = 0x40;
        assert_eq!(Frame::decode(&m), Err(WireError::Unknown("media state")));
        for t in 48..=49 {
            let mut b = vec![t];
            b.extend_from_slice(&[0; 16]);
            assert_eq!(Frame::decode(&b), Err(WireError::Unknown("call frame")));
        }
    }

    #[test]
    fn dtls_fingerprints_parse_from_sdp_form() {
        let fp = DtlsFingerprint([0xa0; 32]);
        let s = fp.to_string();
        assert!(s.starts_with("sha-256 A0:A0:"));
        assert_eq!(DtlsFingerprint::parse(&s), Some(fp));
        assert_eq!(DtlsFingerprint::parse(&s.to_lowercase()), Some(fp));
        assert_eq!(DtlsFingerprint::parse(&s.replace("sha-256", "sha-1")), None);
        assert_eq!(DtlsFingerprint::parse(&s[..s.len() - 3]), None);
        assert_eq!(DtlsFingerprint::parse(&format!("{s}:00")), None);
        assert_eq!(DtlsFingerprint::parse(""), None);
    }

    #[test]
    fn kinds_names_and_parse() {
        let k = Kinds::parse("audio, screen").unwrap();
        assert_eq!(k.names(), ["audio", "screen"]);
        assert_eq!(Kinds::parse("audio,smell"), None);
        assert_eq!(Kinds::from_bits(k.bits()), Some(k));
    }
}
