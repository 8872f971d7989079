//! Group invites over the network. An admin sends the invite link as a chat message to the
//! contact it names (`Node::group_send_invite`), so it waits in the outbox like any message
//! and older builds show it as a link to open. On arrival, a link from a contact we trust at
//! level 2 or more that names us and verifies joins us to the group at once (seed §4: such
//! contacts may invite us); from anyone else it stays a message, and opening it is the consent.

use std::sync::Arc;

use super::{GroupUpdate, Inner, blocking, offline};
use crate::chat::store::Message;
use crate::contacts::{Capability, Trust};
use crate::groups::invite::{InviteLink, SCHEME};
use crate::groups::{GroupId, store as gstore};
use crate::identity::Fingerprint;
use crate::node::{Node, NodeError};

impl Node {
    /// Makes an invite link for `invitee` (we must be an admin) and sends it to them as a
    /// chat message (they must be our contact); it is delivered when they are reachable.
    pub async fn group_send_invite(
        &self,
        gid: &GroupId,
        invitee: &Fingerprint,
    ) -> Result<Message, NodeError> {
        let link = self.group_invite(gid, invitee).await?;
        self.send_message(&invitee.to_hex(), &link).await
    }
}

impl Inner {
    /// A text arrived from `from`: if it is an invite link naming us from a contact allowed to
    /// invite us, join its group (once; a group we know, even one we left, is not joined again).
    pub(in crate::node) fn take_invite(
        this: &Arc<Inner>,
        from: Fingerprint,
        trust: Trust,
        m: &Message,
    ) {
        let text = String::from_utf8_lossy(&m.body);
        let text = text.trim();
        if !text.starts_with(SCHEME) {
            return;
        }
        if !trust.allows(Capability::GroupInvite) {
            tracing::info!(%from, "a group invite from a contact below trust 2 is left to the user");
            return;
        }
        let link = match InviteLink::decode(text) {
            Ok(l) => l,
            Err(e) => {
                tracing::info!(%from, error = %e, "a malformed group invite");
                return;
            }
        };
        let (me, this, text) = (this.fingerprint, this.clone(), text.to_owned());
        tokio::spawn(async move {
            let log = match link.verify_for(&me) {
                Ok(log) => log,
                Err(e) => {
                    tracing::info!(%from, error = %e, "a group invite not for us");
                    return;
                }
            };
            let gid = log.group();
            let store = this.store.clone();
            let joined = this
                .db(move |c| gstore::load_log(c, &gid))
                .await
                .map(|known| known.is_none());
            match joined {
                Ok(true) => {}
                Ok(false) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "could not read our groups");
                    return;
                }
            }
            let stored = blocking(move || offline::join_in(&store, &me, &text)).await;
            if let Err(e) = stored {
                tracing::warn!(%from, error = %e, "could not join an invited group");
                return;
            }
            if let Err(e) = Inner::start_group(&this, gid).await {
                tracing::warn!(%from, error = %e, "could not start an invited group");
                return;
            }
            this.emit_group(GroupUpdate::Invited {
                group: gid,
                by: from,
            });
        });
    }
}
