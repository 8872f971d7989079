//! The armed camera's stream ends as soon as its viewer may no longer watch it (decision
//! 0014: lowering trust disables grants at once): below Full Access, removed, or without a
//! grant of the camera it streams. The node hangs up the stream's call; the shell's capture
//! into it stops with the call, like any call's.

use std::sync::Arc;

use super::{Inner, NodeError, lock};
use crate::calls::{CallId, Input};
use crate::contacts::{self, Trust};
use crate::identity::Fingerprint;
use crate::rpc::scope::{Facing, Need};
use crate::rpc::store as rpc_store;

/// The call the armed camera streams into, and to whom.
#[derive(Debug, Clone, Copy)]
pub(super) struct Streaming {
    pub(super) call: CallId,
    pub(super) viewer: Fingerprint,
    pub(super) facing: Facing,
}

impl Inner {
    /// Records `s` as the monitor's stream, then ends it at once if its viewer lost the right
    /// to it meanwhile (while the call was placed); whether it still streams.
    pub(super) async fn monitor_streaming(this: &Arc<Inner>, s: Streaming) -> bool {
        *lock(&this.rpc.streaming) = Some(s);
        Inner::end_stream_if_revoked(this).await;
        lock(&this.rpc.streaming).is_some_and(|t| t.call == s.call)
    }

    /// Hangs up the monitor's stream if its viewer may no longer watch it (or that cannot be
    /// read: it fails closed). Called after every change of trust, contacts or grants.
    pub(super) async fn end_stream_if_revoked(this: &Arc<Inner>) {
        let Some(s) = *lock(&this.rpc.streaming) else {
            return;
        };
        let live = lock(&this.calls)
            .machine
            .active()
            .is_some_and(|c| c.id == s.call);
        if live {
            let viewer = s.viewer;
            let allowed = this
                .db(move |c| {
                    let full = contacts::trust_of(c, &viewer)? == Some(Trust::FullAccess);
                    Ok::<_, NodeError>(
                        full && rpc_store::scopes_of(c, &viewer)?
                            .iter()
                            .any(|sc| sc.allows(&Need::Camera(s.facing))),
                    )
                })
                .await;
            if matches!(allowed, Ok(true)) {
                return;
            }
            tracing::info!(viewer = %viewer, "the monitor's viewer may no longer watch: hung up");
            if let Err(e) = Inner::call_input(this, Input::HangUp { call: s.call }) {
                tracing::debug!(error = %e, "the monitor's stream had ended");
            }
        }
        let mut streaming = lock(&this.rpc.streaming);
        if streaming.is_some_and(|t| t.call == s.call) {
            *streaming = None;
        }
    }
}
