//! The router's side of a group call's forwarder, in the group's task: the hub's events
//! (slot maps, who speaks, a browser's rotation) turned into commands, and those commands into control frames and
//! the machine's speaker list.

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::super::{Cmd, Live};
use super::CallCmd;
use crate::calls::group::{GroupCallFrame, Input};
use crate::identity::Fingerprint;
use crate::media::sfu::{ParticipantId, SlotId};
use crate::media::sfu_hub::HubEvent;
use crate::node::lock;

/// Passes the hub's events to the group's task; with the hub's speakers goes whether we speak
/// (`ours`, from our own frames' levels), so the router lists itself too.
pub(super) fn forward_events(
    mut events: mpsc::Receiver<HubEvent>,
    tx: mpsc::Sender<Cmd>,
    mut ours: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let (mut heard, mut speaking) = (vec![], *ours.borrow_and_update());
        loop {
            tokio::select! {
                ev = events.recv() => match ev {
                    Some(HubEvent::SlotMap { to, slots }) => {
                        let _ = tx.try_send(Cmd::Call(CallCmd::Slots(to, slots)));
                        continue;
                    }
                    Some(HubEvent::Speakers(who)) => heard = who,
                    Some(HubEvent::Rotation { id, degrees }) => {
                        // Rare and never sent again: awaited, not dropped.
                        let _ = tx.send(Cmd::Call(CallCmd::Rotation(id, degrees))).await;
                        continue;
                    }
                    None => return,
                },
                // The sender lives as long as the group's task.
                Ok(()) = ours.changed() => speaking = *ours.borrow_and_update(),
            }
            let _ = tx.try_send(Cmd::Call(CallCmd::Speakers(heard.clone(), speaking)));
        }
    })
}

impl Live {
    pub(super) fn on_slots(
        &mut self,
        to: ParticipantId,
        slots: Vec<(SlotId, Option<ParticipantId>)>,
    ) {
        let Some(hub) = &self.call.hub else { return };
        let ids = lock(&hub.ids).clone();
        let Some(member) = ids.get(&to).copied() else {
            return;
        };
        let slots = slots
            .into_iter()
            .map(|(s, p)| (s, p.and_then(|p| ids.get(&p).copied())))
            .collect();
        self.call.outbox.push((
            member,
            GroupCallFrame::Slots {
                group: self.gid,
                slots,
            },
        ));
    }

    /// A participant's packets turn its picture: a browser guest's rotation goes into the
    /// roster (a member's comes from its own announcements).
    pub(super) fn on_rotation(&mut self, id: ParticipantId, degrees: u16) {
        let Some(hub) = &self.call.hub else { return };
        let Some(guest) = lock(&hub.ids).get(&id).copied() else {
            return;
        };
        self.call_input(Input::GuestRotation { guest, degrees });
    }

    pub(super) fn on_speakers(&mut self, heard: Vec<ParticipantId>, ourselves: bool) {
        let Some(hub) = &self.call.hub else { return };
        let ids = lock(&hub.ids).clone();
        let mut speaking: Vec<Fingerprint> =
            heard.iter().filter_map(|p| ids.get(p).copied()).collect();
        if ourselves && self.call.machine.in_call() {
            speaking.push(self.me);
        }
        self.call_input(Input::Speakers(speaking));
    }
}
