//! Group-call control frames inside an authenticated session (tags 60–69, feature bit
//! [`crate::session::FEATURE_GROUP_CALLS`]). They travel between a member and the group's
//! router only; media never does. Like 1:1 calls, a media connection is bound to the frame
//! that announced it by its PeerJS connection ID and both DTLS fingerprints
//! (`docs/decisions/0016-group-calls.md`). Every field is bounded and decoded strictly.

use crate::calls::{DtlsFingerprint, Kinds, MediaState};
use crate::chat::call_wire::{MAX_MEDIA_ID, valid_media_id};
use crate::discovery::wire::{Reader, WireError, Writer};
use crate::groups::GroupId;
use crate::identity::Fingerprint;
use crate::media::sfu::{SlotId, TrackKind};

/// Most participants a roster lists (a call is bounded by it).
pub const MAX_PARTICIPANTS: usize = 64;
/// Most slots of one kind a router offers a subscriber.
pub const MAX_SLOTS: u8 = 8;

/// Camera slots of a layout that show thumbnails rather than the last N (when it has more
/// than this many).
pub const THUMBNAIL_SLOTS: u8 = 1;

/// How many send slots of each kind a router gives every participant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Audio slots (the most recent speakers are heard).
    pub audio: u8,
    /// Camera slots: the last N speakers are seen on all but the last [`THUMBNAIL_SLOTS`],
    /// which show the others in turn, one keyframe every few seconds (thumbnails).
    pub video: u8,
    /// Screen slots.
    pub screen: u8,
}

impl Default for Layout {
    fn default() -> Self {
        Self {
            audio: 4,
            video: 4 + THUMBNAIL_SLOTS,
            screen: 1,
        }
    }
}

impl Layout {
    /// No slots: what a pair's host answers with (it forwards nothing).
    pub const NONE: Layout = Layout {
        audio: 0,
        video: 0,
        screen: 0,
    };

    /// N of Last-N: the camera slots that follow the speakers (all of them when the layout
    /// has too few to spare any for thumbnails).
    pub fn last_n(&self) -> u8 {
        if self.video > THUMBNAIL_SLOTS {
            self.video - THUMBNAIL_SLOTS
        } else {
            self.video
        }
    }

    /// The slots, audio first.
    pub fn slots(&self) -> Vec<SlotId> {
        let mut out = vec![];
        for (kind, n) in [
            (TrackKind::Audio, self.audio),
            (TrackKind::Video, self.video),
            (TrackKind::Screen, self.screen),
        ] {
            out.extend((0..n).map(|index| SlotId { kind, index }));
        }
        out
    }
}

/// One participant as a roster lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RosterEntry {
    /// The member.
    pub member: Fingerprint,
    /// What it sends.
    pub kinds: Kinds,
    /// Mute, camera off, screen.
    pub state: MediaState,
    /// Its media reaches the router now.
    pub connected: bool,
}

/// A group-call control frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupCallFrame {
    /// Member → router: we are in the group's call; our media OFFER will carry `media_id` and
    /// `dtls`. Sent again (with a new `media_id`) to every new router.
    Join {
        /// The group.
        group: GroupId,
        /// The PeerJS connection ID of our OFFER to come.
        media_id: String,
        /// Our DTLS fingerprint in it.
        dtls: DtlsFingerprint,
        /// What we send.
        kinds: Kinds,
        /// Mute, camera off, screen.
        state: MediaState,
    },
    /// Router → member: the join is admitted; our ANSWER will carry `dtls` and a track for each
    /// slot of `layout`, plus our own tracks for `router_kinds` when we are in the call.
    Welcome {
        /// The group.
        group: GroupId,
        /// The OFFER admitted.
        media_id: String,
        /// The router's DTLS fingerprint in its ANSWER.
        dtls: DtlsFingerprint,
        /// The send slots the ANSWER carries.
        layout: Layout,
        /// What the router itself sends (empty: it only forwards).
        router_kinds: Kinds,
    },
    /// Router → every linked member: who is in the call now.
    Roster {
        /// The group.
        group: GroupId,
        /// The participants (the router too when it takes part).
        participants: Vec<RosterEntry>,
    },
    /// Router → participant: whom each of its slots shows now (`None`: quiet).
    Slots {
        /// The group.
        group: GroupId,
        /// Slot → member.
        slots: Vec<(SlotId, Option<Fingerprint>)>,
    },
    /// Member → router: we left the call.
    Leave {
        /// The group.
        group: GroupId,
    },
    /// Router → every participant: who is speaking now (from the RFC 6464 audio levels on
    /// their audio), in the order they joined. Sent when it changes, only on sessions with
    /// [`crate::session::FEATURE_CALL_SPEAKERS`].
    Speakers {
        /// The group.
        group: GroupId,
        /// The participants speaking (at most [`MAX_PARTICIPANTS`]).
        speaking: Vec<Fingerprint>,
    },
    /// Router → a participant, only on sessions with [`crate::session::FEATURE_CALL_PAIRS`]:
    /// the call has two participants and the router is not one of them, so their media goes
    /// directly between them. `Some((host, guest))`: the guest joins the host (`Join` and
    /// `Welcome` between the two, on their own session) and the host answers as a router
    /// would; `None`: the pair is over, join the router again. `Media` and `Leave` still go
    /// to the router.
    Pair {
        /// The group.
        group: GroupId,
        /// The host and the guest (two different members).
        pair: Option<(Fingerprint, Fingerprint)>,
    },
    /// Member → router: what we send changed.
    Media {
        /// The group.
        group: GroupId,
        /// The new state.
        state: MediaState,
    },
}

/// Frame tags (the group-call range of `chat::wire` is 60–69).
pub(crate) mod tag {
    pub const JOIN: u8 = 60;
    pub const WELCOME: u8 = 61;
    pub const ROSTER: u8 = 62;
    pub const SLOTS: u8 = 63;
    pub const LEAVE: u8 = 64;
    pub const MEDIA: u8 = 65;
    pub const SPEAKERS: u8 = 66;
    pub const PAIR: u8 = 67;
}

fn kind_byte(k: TrackKind) -> u8 {
    match k {
        TrackKind::Audio => 0,
        TrackKind::Video => 1,
        TrackKind::Screen => 2,
    }
}

fn kind_of(b: u8) -> Result<TrackKind, WireError> {
    Ok(match b {
        0 => TrackKind::Audio,
        1 => TrackKind::Video,
        2 => TrackKind::Screen,
        _ => return Err(WireError::Unknown("slot kind")),
    })
}

fn media_state(r: &mut Reader<'_>) -> Result<MediaState, WireError> {
    MediaState::from_bits(r.u8()?).ok_or(WireError::Unknown("media state"))
}

fn kinds(r: &mut Reader<'_>) -> Result<Kinds, WireError> {
    Kinds::from_bits(r.u8()?).ok_or(WireError::Unknown("media kinds"))
}

fn media_id(r: &mut Reader<'_>) -> Result<String, WireError> {
    let id = r.str(MAX_MEDIA_ID, "media id")?;
    if !valid_media_id(id) {
        return Err(WireError::Unknown("media id"));
    }
    Ok(id.to_owned())
}

fn flag(r: &mut Reader<'_>, what: &'static str) -> Result<bool, WireError> {
    match r.u8()? {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(WireError::Unknown(what)),
    }
}

impl GroupCallFrame {
    /// This frame as a peer with session `features` may read it: every media state without
    /// the picture's rotation unless it has `FEATURE_VIDEO_ROTATION`.
    pub fn for_peer(mut self, features: u64) -> Self {
        if features & crate::session::FEATURE_VIDEO_ROTATION != 0 {
            return self;
        }
        match &mut self {
            GroupCallFrame::Join { state, .. } | GroupCallFrame::Media { state, .. } => {
                *state = state.without_rotation();
            }
            GroupCallFrame::Roster { participants, .. } => {
                for p in participants {
                    p.state = p.state.without_rotation();
                }
            }
            _ => {}
        }
        self
    }

    /// The group the frame is about.
    pub fn group(&self) -> GroupId {
        match self {
            GroupCallFrame::Join { group, .. }
            | GroupCallFrame::Welcome { group, .. }
            | GroupCallFrame::Roster { group, .. }
            | GroupCallFrame::Slots { group, .. }
            | GroupCallFrame::Leave { group }
            | GroupCallFrame::Speakers { group, .. }
            | GroupCallFrame::Pair { group, .. }
            | GroupCallFrame::Media { group, .. } => *group,
        }
    }

    /// The frame's bytes, tag first.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        match self {
            GroupCallFrame::Join {
                group,
                media_id,
                dtls,
                kinds,
                state,
            } => {
                w.u8(tag::JOIN)
                    .raw(&group.0)
                    .str(media_id)
                    .raw(&dtls.0)
                    .u8(kinds.bits())
                    .u8(state.bits());
            }
            GroupCallFrame::Welcome {
                group,
                media_id,
                dtls,
                layout,
                router_kinds,
            } => {
                w.u8(tag::WELCOME)
                    .raw(&group.0)
                    .str(media_id)
                    .raw(&dtls.0)
                    .u8(layout.audio)
                    .u8(layout.video)
                    .u8(layout.screen)
                    .u8(router_kinds.bits());
            }
            GroupCallFrame::Roster {
                group,
                participants,
            } => {
                w.u8(tag::ROSTER)
                    .raw(&group.0)
                    .u8(participants.len().min(MAX_PARTICIPANTS) as u8);
                for p in participants.iter().take(MAX_PARTICIPANTS) {
                    w.raw(&p.member.0)
                        .u8(p.kinds.bits())
                        .u8(p.state.bits())
                        .u8(u8::from(p.connected));
                }
            }
            GroupCallFrame::Slots { group, slots } => {
                let n = slots.len().min(3 * usize::from(MAX_SLOTS));
                w.u8(tag::SLOTS).raw(&group.0).u8(n as u8);
                for (slot, who) in slots.iter().take(n) {
                    w.u8(kind_byte(slot.kind)).u8(slot.index);
                    match who {
                        Some(fp) => w.u8(1).raw(&fp.0),
                        None => w.u8(0),
                    };
                }
            }
            GroupCallFrame::Leave { group } => {
                w.u8(tag::LEAVE).raw(&group.0);
            }
            GroupCallFrame::Speakers { group, speaking } => {
                let n = speaking.len().min(MAX_PARTICIPANTS);
                w.u8(tag::SPEAKERS).raw(&group.0).u8(n as u8);
                for fp in speaking.iter().take(n) {
                    w.raw(&fp.0);
                }
            }
            GroupCallFrame::Pair { group, pair } => {
                w.u8(tag::PAIR).raw(&group.0);
                match pair {
                    Some((host, guest)) => w.u8(1).raw(&host.0).raw(&guest.0),
                    None => w.u8(0),
                };
            }
            GroupCallFrame::Media { group, state } => {
                w.u8(tag::MEDIA).raw(&group.0).u8(state.bits());
            }
        }
        w.0
    }

    /// Decodes one frame (tag included), checking every bound.
    pub fn decode(b: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(b);
        let t = r.u8()?;
        let group = GroupId(r.array()?);
        let frame = match t {
            tag::JOIN => GroupCallFrame::Join {
                group,
                media_id: media_id(&mut r)?,
                dtls: DtlsFingerprint(r.array()?),
                kinds: kinds(&mut r)?,
                state: media_state(&mut r)?,
            },
            tag::WELCOME => {
                let media_id = media_id(&mut r)?;
                let dtls = DtlsFingerprint(r.array()?);
                let mut count = || {
                    let n = r.u8()?;
                    if n > MAX_SLOTS {
                        return Err(WireError::TooLong("slots"));
                    }
                    Ok(n)
                };
                let layout = Layout {
                    audio: count()?,
                    video: count()?,
                    screen: count()?,
                };
                GroupCallFrame::Welcome {
                    group,
                    media_id,
                    dtls,
                    layout,
                    router_kinds: kinds(&mut r)?,
                }
            }
            tag::ROSTER => {
                let n = usize::from(r.u8()?);
                if n > MAX_PARTICIPANTS {
                    return Err(WireError::TooLong("roster"));
                }
                let mut participants = Vec::with_capacity(n);
                for _ in 0..n {
                    let member = Fingerprint(r.array()?);
                    if participants
                        .iter()
                        .any(|p: &RosterEntry| p.member == member)
                    {
                        return Err(WireError::Unknown("duplicate participant"));
                    }
                    participants.push(RosterEntry {
                        member,
                        kinds: kinds(&mut r)?,
                        state: media_state(&mut r)?,
                        connected: flag(&mut r, "connected flag")?,
                    });
                }
                GroupCallFrame::Roster {
                    group,
                    participants,
                }
            }
            tag::SLOTS => {
                let n = usize::from(r.u8()?);
                if n > 3 * usize::from(MAX_SLOTS) {
                    return Err(WireError::TooLong("slots"));
                }
                let mut slots = Vec::with_capacity(n);
                for _ in 0..n {
                    let kind = kind_of(r.u8()?)?;
                    let index = r.u8()?;
                    if index >= MAX_SLOTS {
                        return Err(WireError::TooLong("slot index"));
                    }
                    let who = flag(&mut r, "slot flag")?
                        .then(|| r.array().map(Fingerprint))
                        .transpose()?;
                    slots.push((SlotId { kind, index }, who));
                }
                GroupCallFrame::Slots { group, slots }
            }
            tag::LEAVE => GroupCallFrame::Leave { group },
            tag::SPEAKERS => {
                let n = usize::from(r.u8()?);
                if n > MAX_PARTICIPANTS {
                    return Err(WireError::TooLong("speakers"));
                }
                let mut speaking: Vec<Fingerprint> = Vec::with_capacity(n);
                for _ in 0..n {
                    let fp = Fingerprint(r.array()?);
                    if speaking.contains(&fp) {
                        return Err(WireError::Unknown("duplicate speaker"));
                    }
                    speaking.push(fp);
                }
                GroupCallFrame::Speakers { group, speaking }
            }
            tag::MEDIA => GroupCallFrame::Media {
                group,
                state: media_state(&mut r)?,
            },
            tag::PAIR => {
                let pair = flag(&mut r, "pair flag")?
                    .then(|| Ok::<_, WireError>((Fingerprint(r.array()?), Fingerprint(r.array()?))))
                    .transpose()?;
                if pair.is_some_and(|(host, guest)| host == guest) {
                    return Err(WireError::Unknown("a pair of one member"));
                }
                GroupCallFrame::Pair { group, pair }
            }
            _ => return Err(WireError::Unknown("group call frame")),
        };
        r.finish()?;
        Ok(frame)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_without_rotations_gets_every_state_without_one() {
        use crate::session::{FEATURE_GROUP_CALLS, FEATURE_VIDEO_ROTATION};
        let turned = MediaState {
            muted: true,
            rotation: 270,
            ..MediaState::default()
        };
        let entry = |member: u8| RosterEntry {
            member: Fingerprint([member; 32]),
            kinds: Kinds::VIDEO,
            state: turned,
            connected: true,
        };
        let roster = GroupCallFrame::Roster {
            group: GroupId([1; 16]),
            participants: vec![entry(4), entry(5)],
        };
        let GroupCallFrame::Roster { participants, .. } =
            roster.clone().for_peer(FEATURE_GROUP_CALLS)
        else {
            unreachable!()
        };
        assert!(
            participants
                .iter()
                .all(|p| p.state == turned.without_rotation())
        );
        let media = GroupCallFrame::Media {
            group: GroupId([1; 16]),
            state: turned,
        };
        assert_eq!(
            media.clone().for_peer(FEATURE_GROUP_CALLS),
            GroupCallFrame::Media {
                group: GroupId([1; 16]),
                state: turned.without_rotation()
            }
        );
        // A peer that knows rotations gets the frames as they are, and reads them back.
        let both = FEATURE_GROUP_CALLS | FEATURE_VIDEO_ROTATION;
        assert_eq!(roster.clone().for_peer(both), roster);
        assert_eq!(GroupCallFrame::decode(&roster.encode()).unwrap(), roster);
    }

    fn join() -> GroupCallFrame {
        GroupCallFrame::Join {
            group: GroupId([1; 16]),
            media_id: "mc_abc1".into(),
            dtls: DtlsFingerprint([2; 32]),
            kinds: Kinds::AUDIO.union(Kinds::VIDEO),
            state: MediaState {
                muted: true,
                ..MediaState::default()
            },
        }
    }

    #[test]
    fn frames_round_trip_in_tags_60_to_69() {
        let g = GroupId([9; 16]);
        let frames = [
            join(),
            GroupCallFrame::Welcome {
                group: g,
                media_id: "mc_x".into(),
                dtls: DtlsFingerprint([3; 32]),
                layout: Layout::default(),
                router_kinds: Kinds::AUDIO,
            },
            GroupCallFrame::Roster {
                group: g,
                participants: vec![
                    RosterEntry {
                        member: Fingerprint([4; 32]),
                        kinds: Kinds::VIDEO,
                        state: MediaState::default(),
                        connected: true,
                    },
                    RosterEntry {
                        member: Fingerprint([5; 32]),
                        kinds: Kinds::AUDIO,
                        state: MediaState {
                            camera_off: true,
                            rotation: 90,
                            ..MediaState::default()
                        },
                        connected: false,
                    },
                ],
            },
            GroupCallFrame::Slots {
                group: g,
                slots: vec![
                    (
                        SlotId {
                            kind: TrackKind::Video,
                            index: 1,
                        },
                        Some(Fingerprint([6; 32])),
                    ),
                    (
                        SlotId {
                            kind: TrackKind::Screen,
                            index: 0,
                        },
                        None,
                    ),
                ],
            },
            GroupCallFrame::Leave { group: g },
            GroupCallFrame::Speakers {
                group: g,
                speaking: vec![Fingerprint([7; 32]), Fingerprint([8; 32])],
            },
            GroupCallFrame::Speakers {
                group: g,
                speaking: vec![],
            },
            GroupCallFrame::Media {
                group: g,
                state: MediaState {
                    screen: true,
                    ..MediaState::default()
                },
            },
            GroupCallFrame::Pair {
                group: g,
                pair: Some((Fingerprint([1; 32]), Fingerprint([2; 32]))),
            },
            GroupCallFrame::Pair {
                group: g,
                pair: None,
            },
        ];
        for f in frames {
            let b = f.encode();
            assert_eq!(
                crate::chat::wire::Frame::decode(&b),
                Ok(crate::chat::wire::Frame::GroupCall(b.clone()))
            );
            assert_eq!(GroupCallFrame::decode(&b), Ok(f));
        }
    }

    #[test]
    fn bad_frames_are_refused() {
        let good = join().encode();
        let mut trailing = good.clone();
        trailing.push(0);
        assert_eq!(GroupCallFrame::decode(&trailing), Err(WireError::Trailing));
        assert_eq!(
            GroupCallFrame::decode(&good[..good.len() - 1]),
            Err(WireError::Truncated)
        );
        let mut bad_state = good.clone();
        *bad_state.last_mut().unwrap() = 0x80;
        assert_eq!(
            GroupCallFrame::decode(&bad_state),
            Err(WireError::Unknown("media state"))
        );
        let bad_id = GroupCallFrame::Join {
            group: GroupId([1; 16]),
            media_id: "mc a".into(),
            dtls: DtlsFingerprint([2; 32]),
            kinds: Kinds::AUDIO,
            state: MediaState::default(),
        };
        assert_eq!(
            GroupCallFrame::decode(&bad_id.encode()),
            Err(WireError::Unknown("media id"))
        );
        // A roster longer than the bound, one naming a member twice.
        let mut long = vec![tag::ROSTER];
        long.extend_from_slice(&[0; 16]);
        long.push(MAX_PARTICIPANTS as u8 + 1);
        assert_eq!(
            GroupCallFrame::decode(&long),
            Err(WireError::TooLong("roster"))
        );
        let entry = RosterEntry {
            member: Fingerprint([4; 32]),
            kinds: Kinds::VIDEO,
            state: MediaState::default(),
            connected: true,
        };
        let twice = GroupCallFrame::Roster {
            group: GroupId([0; 16]),
            participants: vec![entry, entry],
        };
        assert_eq!(
            GroupCallFrame::decode(&twice.encode()),
            Err(WireError::Unknown("duplicate participant"))
        );
        // Too many slots in a welcome; a slot index out of range; unknown tags.
        let mut welcome = GroupCallFrame::Welcome {
            group: GroupId([0; 16]),
            media_id: "mc_x".into(),
            dtls: DtlsFingerprint([3; 32]),
            layout: Layout::default(),
            router_kinds: Kinds::default(),
        }
        .encode();
        let n = welcome.len();
        welcome[n - 4] = MAX_SLOTS + 1;
        assert_eq!(
            GroupCallFrame::decode(&welcome),
            Err(WireError::TooLong("slots"))
        );
        let mut slots = vec![tag::SLOTS];
        slots.extend_from_slice(&[0; 16]);
        slots.extend_from_slice(&[1, 1, MAX_SLOTS, 0]);
        assert_eq!(
            GroupCallFrame::decode(&slots),
            Err(WireError::TooLong("slot index"))
        );
        let twice = GroupCallFrame::Speakers {
            group: GroupId([0; 16]),
            speaking: vec![Fingerprint([4; 32]); 2],
        };
        assert_eq!(
            GroupCallFrame::decode(&twice.encode()),
            Err(WireError::Unknown("duplicate speaker"))
        );
        let mut many = vec![tag::SPEAKERS];
        many.extend_from_slice(&[0; 16]);
        many.push(MAX_PARTICIPANTS as u8 + 1);
        assert_eq!(
            GroupCallFrame::decode(&many),
            Err(WireError::TooLong("speakers"))
        );
        let one = GroupCallFrame::Pair {
            group: GroupId([0; 16]),
            pair: Some((Fingerprint([4; 32]), Fingerprint([4; 32]))),
        };
        assert_eq!(
            GroupCallFrame::decode(&one.encode()),
            Err(WireError::Unknown("a pair of one member"))
        );
        let mut bad_flag = vec![tag::PAIR];
        bad_flag.extend_from_slice(&[0; 16]);
        bad_flag.push(2);
        assert_eq!(
            GroupCallFrame::decode(&bad_flag),
            Err(WireError::Unknown("pair flag"))
        );
        for t in 68..=69 {
            let mut b = vec![t];
            b.extend_from_slice(&[0; 16]);
            assert_eq!(
                GroupCallFrame::decode(&b),
                Err(WireError::Unknown("group call frame"))
            );
        }
    }
}
