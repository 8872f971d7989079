//! Browser guests: a browser PeerJS peer has no Noise session and no place in the group's
//! log, so it cannot be a member; the router's user (an admin, checked by the node) may let a
//! given PeerJS ID into the call. Its OFFER is admitted like a member's join, answered with
//! the router's own tracks and one audio and one video slot for what those leave of the two
//! m-lines a browser offers; it is listed in the roster (a fingerprint no member has) and
//! forwarded to the others like anyone. It has no link: it hears no roster, slot map or
//! speakers, and it is lost when the router changes (`docs/decisions/0016-group-calls.md`).

use std::time::Instant;

use super::{Action, GroupCall, Participant, Role};
use crate::calls::group::wire::{Layout, MAX_PARTICIPANTS};
use crate::calls::{DtlsFingerprint, Kinds, MediaState};
use crate::identity::Fingerprint;

/// Most browser guests in one call.
pub const MAX_GUESTS: usize = 4;

impl GroupCall {
    pub(super) fn on_guest(
        &mut self,
        guest: Fingerprint,
        media_id: String,
        dtls: DtlsFingerprint,
        now: Instant,
    ) {
        // A browser offers one audio and one video m-line: our screen stays off its connection
        // when our camera is on it.
        let mut router_kinds = self.local.as_ref().map(|l| l.kinds).unwrap_or_default();
        if router_kinds.contains(Kinds::VIDEO) {
            router_kinds =
                Kinds::from_bits(router_kinds.bits() & !Kinds::SCREEN.bits()).unwrap_or_default();
        }
        let Role::Router { participants, .. } = &mut self.role else {
            return;
        };
        let guests = participants.values().filter(|p| p.guest).count();
        let known = participants.get(&guest).is_some_and(|p| p.guest);
        let full = participants.len() + 1 >= MAX_PARTICIPANTS || guests >= MAX_GUESTS;
        if self.members.contains(&guest)
            || (participants.contains_key(&guest) && !known)
            || (!known && full)
        {
            return;
        }
        if known {
            // The browser called again: its old connection goes.
            self.actions.push_back(Action::Expel { peer: guest });
        }
        participants.insert(
            guest,
            Participant {
                kinds: Kinds::AUDIO.union(Kinds::VIDEO),
                state: MediaState::default(),
                media_id: media_id.clone(),
                connected: false,
                admitted: now,
                paired: false,
                guest: true,
            },
        );
        // A slot for each m-line our own tracks leave free.
        let ours = |k: Kinds| router_kinds.contains(k);
        let layout = Layout {
            audio: u8::from(!ours(Kinds::AUDIO)),
            video: u8::from(!ours(Kinds::VIDEO) && !ours(Kinds::SCREEN)),
            screen: 0,
        };
        self.actions.push_back(Action::Admit {
            peer: guest,
            media_id,
            dtls,
            router_kinds,
            layout,
        });
        self.publish_roster(now);
    }

    /// A guest's packets turn its picture: the roster says so (members' own announcements
    /// are theirs alone; this changes only a browser's).
    pub(super) fn on_guest_rotation(&mut self, guest: Fingerprint, degrees: u16, now: Instant) {
        let Role::Router { participants, .. } = &mut self.role else {
            return;
        };
        let Some(p) = participants.get_mut(&guest).filter(|p| p.guest) else {
            return;
        };
        let rotation = MediaState::rotation_of(degrees);
        if p.state.rotation != rotation {
            p.state.rotation = rotation;
            self.publish_roster(now);
        }
    }
}

/// The participant ID of the browser with PeerJS ID `peer_id` (no member's fingerprint can be
/// it: a member's is the hash of its key).
pub fn guest_fingerprint(peer_id: &str) -> Fingerprint {
    Fingerprint(blake3::derive_key(
        "peerns2 2026-12 group call browser guest",
        peer_id.as_bytes(),
    ))
}
