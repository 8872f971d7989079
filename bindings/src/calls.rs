//! 1:1 calls on [`PeernsNode`]: start, accept, decline, hang up, mute / camera / screen, the
//! active call, call events (in [`crate::NodeEvent`]) and the call log. Calls and contacts are
//! named by hex strings (a call ID has 32 characters, a fingerprint 64).

use peerns_core::node;

use crate::{PeernsError, PeernsNode, on_runtime};

/// The media a call carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, uniffi::Record)]
pub struct CallKinds {
    /// Microphone audio.
    pub audio: bool,
    /// Camera video.
    pub video: bool,
    /// Screen share.
    pub screen: bool,
}

impl From<node::Kinds> for CallKinds {
    fn from(k: node::Kinds) -> Self {
        Self {
            audio: k.contains(node::Kinds::AUDIO),
            video: k.contains(node::Kinds::VIDEO),
            screen: k.contains(node::Kinds::SCREEN),
        }
    }
}

impl From<CallKinds> for node::Kinds {
    fn from(k: CallKinds) -> Self {
        let mut out = node::Kinds::default();
        for (on, kind) in [
            (k.audio, node::Kinds::AUDIO),
            (k.video, node::Kinds::VIDEO),
            (k.screen, node::Kinds::SCREEN),
        ] {
            if on {
                out = out.union(kind);
            }
        }
        out
    }
}

/// What one side of a call sends now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Record)]
pub struct CallMediaState {
    /// The microphone is muted.
    pub muted: bool,
    /// The camera is off.
    pub camera_off: bool,
    /// The screen is shared.
    pub screen: bool,
    /// The back camera is in use.
    pub back_camera: bool,
    /// How far the picture must be turned clockwise to stand upright: 0, 90, 180 or 270 (a
    /// phone's camera sends as the sensor gives it; turn the picture by this to show it). Other
    /// values are taken to the nearest quarter turn.
    #[uniffi(default = 0)]
    pub rotation: u16,
}

impl From<node::MediaState> for CallMediaState {
    fn from(s: node::MediaState) -> Self {
        Self {
            muted: s.muted,
            camera_off: s.camera_off,
            screen: s.screen,
            back_camera: s.back_camera,
            rotation: s.rotation,
        }
    }
}

impl From<CallMediaState> for node::MediaState {
    fn from(s: CallMediaState) -> Self {
        Self {
            muted: s.muted,
            camera_off: s.camera_off,
            screen: s.screen,
            back_camera: s.back_camera,
            rotation: node::MediaState::rotation_of(s.rotation),
        }
    }
}

/// Where a call is: `dialing`, `ringing`, `connected` or `ended`, with the reason once ended
/// (`hangup`, `peer_hangup`, `declined`, `busy`, `cancelled`, `no_answer`, `unreachable`,
/// `lost`, `replaced`).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct CallStatus {
    /// The state's name.
    pub state: String,
    /// Why it ended.
    pub reason: Option<String>,
}

impl From<node::CallState> for CallStatus {
    fn from(s: node::CallState) -> Self {
        Self {
            state: s.as_str().to_owned(),
            reason: match s {
                node::CallState::Ended(r) => Some(r.as_str().to_owned()),
                _ => None,
            },
        }
    }
}

/// The active call.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ActiveCall {
    /// The call.
    pub call: String,
    /// The contact's fingerprint.
    pub fingerprint: String,
    /// We called.
    pub outgoing: bool,
    /// Where it is.
    pub status: CallStatus,
    /// What the caller sends.
    pub caller_kinds: CallKinds,
    /// What the callee sends (once answered).
    pub callee_kinds: CallKinds,
    /// What we send now.
    pub local_media: CallMediaState,
    /// What the peer sends now.
    pub remote_media: CallMediaState,
}

/// A call in the log (and in the chat history with the contact).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct CallLogEntry {
    /// The call.
    pub call: String,
    /// The contact's fingerprint.
    pub fingerprint: String,
    /// We called.
    pub outgoing: bool,
    /// What either side sent.
    pub kinds: CallKinds,
    /// When it started ringing, Unix ms.
    pub started_ms: u64,
    /// How long it was connected, ms.
    pub duration_ms: u64,
    /// `completed`, `missed`, `declined`, `busy`, `cancelled`, `no_answer` or `failed`.
    pub outcome: String,
    /// Why it ended.
    pub reason: String,
}

impl From<node::CallEntry> for CallLogEntry {
    fn from(e: node::CallEntry) -> Self {
        Self {
            call: hex::encode(e.id),
            fingerprint: e.peer.to_hex(),
            outgoing: e.direction == node::CallDirection::Outgoing,
            kinds: e.kinds.into(),
            started_ms: e.started_ms,
            duration_ms: e.duration_ms,
            outcome: e.outcome.as_str().to_owned(),
            reason: e.reason,
        }
    }
}

#[uniffi::export(async_runtime = "tokio")]
impl PeernsNode {
    /// Calls contact `fingerprint` (trusted at level 2 or more); returns the call ID.
    pub async fn start_call(
        &self,
        fingerprint: String,
        kinds: CallKinds,
    ) -> Result<String, PeernsError> {
        let node = self.running()?;
        Ok(on_runtime(async move { node.call(&fingerprint, kinds.into()).await }).await??)
    }

    /// Answers the ringing call, sending `kinds`.
    pub fn accept_call(&self, call: String, kinds: CallKinds) -> Result<(), PeernsError> {
        let node = self.running()?;
        let _guard = crate::RUNTIME.enter();
        Ok(node.accept_call(&call, kinds.into())?)
    }

    /// Refuses the ringing call.
    pub fn decline_call(&self, call: String) -> Result<(), PeernsError> {
        let node = self.running()?;
        let _guard = crate::RUNTIME.enter();
        Ok(node.decline_call(&call)?)
    }

    /// Ends the call (cancels it while it rings at the peer, declines it while it rings here).
    pub fn hang_up(&self, call: String) -> Result<(), PeernsError> {
        let node = self.running()?;
        let _guard = crate::RUNTIME.enter();
        Ok(node.hang_up(&call)?)
    }

    /// Mutes or unmutes the microphone.
    pub fn set_muted(&self, call: String, muted: bool) -> Result<(), PeernsError> {
        let node = self.running()?;
        let _guard = crate::RUNTIME.enter();
        Ok(node.set_muted(&call, muted)?)
    }

    /// Turns the camera off or on.
    pub fn set_camera_off(&self, call: String, off: bool) -> Result<(), PeernsError> {
        let node = self.running()?;
        let _guard = crate::RUNTIME.enter();
        Ok(node.set_camera_off(&call, off)?)
    }

    /// Switches between the front and back camera.
    pub fn switch_camera(&self, call: String) -> Result<(), PeernsError> {
        let node = self.running()?;
        let _guard = crate::RUNTIME.enter();
        Ok(node.switch_camera(&call)?)
    }

    /// Says how far our picture must be turned clockwise to stand upright (the camera's sensor
    /// against how the phone is held): `degrees`, to the nearest quarter turn. The peer sees it
    /// in its `CallMedia` event's `rotation`.
    pub fn set_video_rotation(&self, call: String, degrees: u16) -> Result<(), PeernsError> {
        let node = self.running()?;
        let _guard = crate::RUNTIME.enter();
        Ok(node.set_video_rotation(&call, degrees)?)
    }

    /// Starts or stops sharing the screen.
    pub fn set_screen(&self, call: String, on: bool) -> Result<(), PeernsError> {
        let node = self.running()?;
        let _guard = crate::RUNTIME.enter();
        Ok(node.set_screen(&call, on)?)
    }

    /// The active call, if any.
    pub fn active_call(&self) -> Result<Option<ActiveCall>, PeernsError> {
        let c = self.running()?.active_call();
        Ok(c.map(|c| ActiveCall {
            call: c.call,
            fingerprint: c.fingerprint,
            outgoing: c.direction == node::CallDirection::Outgoing,
            status: c.state.into(),
            caller_kinds: c.caller_kinds.into(),
            callee_kinds: c.callee_kinds.into(),
            local_media: c.local_media.into(),
            remote_media: c.remote_media.into(),
        }))
    }

    /// Sets how long calls ring and how long a dial waits for the callee's phone, in ms.
    pub fn set_call_timeouts(&self, ring_ms: u64, dial_ms: u64) -> Result<(), PeernsError> {
        self.running()?.set_call_config(node::CallConfig {
            ring_timeout: std::time::Duration::from_millis(ring_ms.max(1)),
            dial_timeout: std::time::Duration::from_millis(dial_ms.max(1)),
            ..node::CallConfig::default()
        });
        Ok(())
    }

    /// The `limit` newest calls, with contact `fingerprint` or everyone, newest first.
    pub async fn call_log(
        &self,
        fingerprint: Option<String>,
        limit: u32,
    ) -> Result<Vec<CallLogEntry>, PeernsError> {
        let node = self.running()?;
        let log =
            on_runtime(async move { node.call_log(fingerprint.as_deref(), limit).await }).await??;
        Ok(log.into_iter().map(Into::into).collect())
    }
}
