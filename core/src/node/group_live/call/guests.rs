//! Browser guests of a group call on the router's side: an admin lets a browser's PeerJS ID in
//! (`Node::allow_group_call_guest`); its media OFFER, with the PWA's metadata
//! `{groupCall: true, groupId}`, goes to the group's task, which asks the machine to admit it
//! and answers it at the next flush (`calls/group/machine/guest.rs`, decision 0016).

use super::super::{Cmd, Live};
use super::CallCmd;
use crate::calls::DtlsFingerprint;
use crate::calls::group::{Input, MAX_GUESTS, guest_fingerprint};
use crate::groups::GroupId;
use crate::node::{Inner, Node, NodeError, lock};
use crate::transport::IncomingMedia;

/// Most browsers one node lets into its groups' calls.
const MAX_ALLOWED: usize = 16;

impl Live {
    /// Lets the browser `peer_id` into this group's call (when we route it); only an admin may.
    pub(super) fn allow_guest(&mut self, peer_id: String) -> Result<(), NodeError> {
        if !crate::signaling::protocol::is_valid_id(&peer_id) {
            return Err(NodeError::InvalidInput("not a PeerJS ID".into()));
        }
        if self.room || !self.engine.log().state().is_admin(&self.me) {
            return Err(NodeError::NotAllowed(
                "only an admin of the group lets a browser into its call".into(),
            ));
        }
        let inner = self.inner.upgrade().ok_or(NodeError::Stopped)?;
        let mut g = lock(&inner.groups);
        if !g.call_guests.contains_key(&peer_id) && g.call_guests.len() >= MAX_ALLOWED {
            return Err(NodeError::InvalidInput(format!(
                "at most {MAX_ALLOWED} browsers can be let in"
            )));
        }
        g.call_guests.insert(peer_id.clone(), self.gid);
        self.call
            .guests
            .insert(guest_fingerprint(&peer_id), peer_id);
        Ok(())
    }

    /// A browser's OFFER: admitted by the machine if we route and there is room.
    pub(super) fn on_guest_offer(&mut self, inc: IncomingMedia) {
        let guest = guest_fingerprint(inc.peer());
        let dtls = DtlsFingerprint::parse(inc.remote_dtls());
        match dtls {
            Some(dtls)
                if self.call.guests.contains_key(&guest)
                    && self.call.guest_offers.len() < MAX_GUESTS =>
            {
                let media_id = inc.connection_id().to_owned();
                self.call.guest_offers.push(inc);
                self.call_input(Input::Guest {
                    guest,
                    media_id,
                    dtls,
                });
            }
            _ => inc.refuse(),
        }
    }

    /// Answers the browsers' OFFERs the machine admitted; refuses the others.
    pub(super) fn answer_guests(&mut self) {
        for inc in std::mem::take(&mut self.call.guest_offers) {
            let admitted = self
                .call
                .hub
                .as_ref()
                .is_some_and(|h| h.admits.contains_key(inc.connection_id()));
            if admitted {
                self.on_offer(inc);
            } else {
                inc.refuse();
            }
        }
    }
}

impl Inner {
    /// A media OFFER from a browser let into a group's call, with the PWA's group-call
    /// metadata naming that group: queued for the group's task. Returns it otherwise.
    pub(in crate::node) fn route_guest_offer(&self, inc: IncomingMedia) -> Option<IncomingMedia> {
        let g = lock(&self.groups);
        let Some(gid) = g.call_guests.get(inc.peer()).copied() else {
            return Some(inc);
        };
        let meta = inc.metadata();
        let ours = meta["groupCall"] == true && meta["groupId"].as_str() == Some(&gid.to_hex());
        let Some(tx) = g.running.get(&gid).cloned().filter(|_| ours) else {
            return Some(inc);
        };
        drop(g);
        // A full queue drops the offer, which refuses it; the browser calls again.
        let _ = tx.try_send(Cmd::Call(CallCmd::GuestOffer(inc)));
        None
    }
}

impl Node {
    /// Lets the browser with PeerJS ID `peer_id` into the call of group `gid`: when we route
    /// the group, its media OFFER (PeerJS `call` with the metadata `{groupCall: true,
    /// groupId: GID}`, as the PeerNS PWA sends) is admitted as a participant that everyone
    /// sees in the roster. Only an admin may; a browser has no session, so it hears no roster
    /// and is lost when another member routes.
    pub async fn allow_group_call_guest(
        &self,
        gid: &GroupId,
        peer_id: &str,
    ) -> Result<(), NodeError> {
        let peer_id = peer_id.to_owned();
        self.group_call_cmd(gid, |r| CallCmd::AllowGuest(peer_id, r))
            .await
    }
}
