//! Sending the call machine's frames: on the member's link, and to the other participant of a
//! direct pair we have no link to yet, after dialling its persistent PeerJS ID (from the
//! group's namespace) and checking that the session proves the member we meant.

use std::sync::Arc;

use super::super::Live;
use crate::calls::group::GroupCallFrame;
use crate::chat::wire::Frame;
use crate::identity::Fingerprint;
use crate::node::Inner;
use crate::node::link::Link;
use crate::session::{
    FEATURE_CALL_PAIRS, FEATURE_CALL_SPEAKERS, FEATURE_GROUP_CALLS, FEATURE_VIDEO_ROTATION,
};

/// The session features a frame needs.
fn needs(frame: &GroupCallFrame) -> u64 {
    match frame {
        GroupCallFrame::Speakers { .. } => FEATURE_GROUP_CALLS | FEATURE_CALL_SPEAKERS,
        GroupCallFrame::Pair { .. } => FEATURE_GROUP_CALLS | FEATURE_CALL_PAIRS,
        _ => FEATURE_GROUP_CALLS,
    }
}

async fn send(link: &Link, frame: &GroupCallFrame) {
    if link.features & needs(frame) == needs(frame) {
        let bytes = if link.features & FEATURE_VIDEO_ROTATION != 0 {
            frame.encode()
        } else {
            frame.clone().for_peer(link.features).encode()
        };
        let _ = link.send(&Frame::GroupCall(bytes)).await;
    }
}

impl Live {
    /// Sends the frames queued this turn. A frame for a pair's partner we have no link to
    /// starts one dial (frames queued meanwhile are dropped; the machine repeats its joins).
    pub(super) async fn send_call_frames(&mut self, inner: &Arc<Inner>) {
        for (to, frame) in std::mem::take(&mut self.call.outbox) {
            if let Some(link) = inner.link(&to) {
                send(&link, &frame).await;
                continue;
            }
            let partner = self.call.machine.media_peer() == Some(to) && Some(to) != self.router;
            let Some(id) = self.ns_peers.get(&to).cloned().filter(|_| partner) else {
                continue;
            };
            if !self.call.dialing.insert(to) {
                continue;
            }
            self.dial_partner(inner, to, id, frame);
        }
    }

    fn dial_partner(&self, inner: &Arc<Inner>, to: Fingerprint, id: String, frame: GroupCallFrame) {
        let (dialer, tx) = (inner.clone(), self.tx.clone());
        let task = tokio::spawn(async move {
            match Inner::dial(&dialer, &id).await {
                Ok(link) if link.fp == to => send(&link, &frame).await,
                Ok(link) => {
                    tracing::info!(peer = %id, proven = %link.fp, "not the call partner we dialed");
                }
                Err(e) => tracing::debug!(peer = %id, error = %e, "could not dial a call partner"),
            }
            let _ = tx
                .send(super::super::Cmd::Call(super::CallCmd::Dialed(to)))
                .await;
        });
        inner.track([task.abort_handle()]);
    }
}
