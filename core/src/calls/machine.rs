//! The call state machine of one node: at most one active call, inputs from the user and from
//! contacts' sessions, time as an input (`handle(input, now)`, `poll_timeout`,
//! `handle_timeout`, `drain_actions`).
//!
//! ```text
//! outgoing: Dialing ──Ringing──▶ Ringing ──Accept──▶ Connected ──hang-up──▶ Ended
//! incoming:            Ring ──▶ Ringing ──accept──▶ Connected ──hang-up──▶ Ended
//!           Ringing ──decline / busy / cancel / no answer (ring timeout) / lost──▶ Ended
//! ```
//!
//! A ring while a call is active gets `Busy` (logged at most once per caller a minute). When
//! both sides ring each other at once (glare), the call of the lower identity fingerprint is
//! kept on both sides: the other side drops its own call and answers the kept one at once
//! (both wanted the call). Any other ring from the active call's peer proves that call is over
//! on its side (its app restarted): the call ends (`lost`) and the new one rings. A connected
//! call whose media does not come up in time, or whose media connection closes, ends (`lost`).

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use super::binding::{self, BindError};
use super::{CallFrame, CallId, Direction, DtlsFingerprint, EndReason, Kinds, MediaState, Outcome};
use crate::chat::call_wire::valid_media_id;
use crate::identity::Fingerprint;

/// Timings of calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallConfig {
    /// How long a call rings before it counts as not answered (both sides).
    pub ring_timeout: Duration,
    /// How long the caller waits for the callee's phone to start ringing.
    pub dial_timeout: Duration,
    /// How long a connected call waits for its media connection.
    pub media_timeout: Duration,
}

impl Default for CallConfig {
    fn default() -> Self {
        Self {
            ring_timeout: Duration::from_secs(45),
            dial_timeout: Duration::from_secs(10),
            media_timeout: Duration::from_secs(20),
        }
    }
}

/// Over this window, a caller's rings answered busy are logged once, and at most
/// [`BUSY_REPLIES`] are answered at all (the rest are dropped).
const BUSY_WINDOW: Duration = Duration::from_secs(60);
/// Busy answers per caller and [`BUSY_WINDOW`].
const BUSY_REPLIES: u32 = 4;
/// Ended calls remembered, so that a late ring for one of them rings nothing.
const ENDED_KEPT: usize = 16;

/// Where a call is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallState {
    /// Outgoing: our ring is sent, the callee's phone has not confirmed it rings.
    Dialing,
    /// The callee's phone rings.
    Ringing,
    /// Answered: media flows.
    Connected,
    /// Over.
    Ended(EndReason),
}

impl CallState {
    /// The state as printed in JSON (`"dialing"`, `"ringing"`, `"connected"`, `"ended"`).
    pub fn as_str(self) -> &'static str {
        match self {
            CallState::Dialing => "dialing",
            CallState::Ringing => "ringing",
            CallState::Connected => "connected",
            CallState::Ended(_) => "ended",
        }
    }
}

/// The active call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// Its ID (chosen by the caller).
    pub id: CallId,
    /// The other side.
    pub peer: Fingerprint,
    /// Who called.
    pub direction: Direction,
    /// Where it is.
    pub state: CallState,
    /// What the caller sends.
    pub caller_kinds: Kinds,
    /// What the callee sends (known once answered).
    pub callee_kinds: Kinds,
    /// The PeerJS connection ID of the caller's media OFFER.
    pub media_id: String,
    /// The caller's DTLS fingerprint in that OFFER.
    pub caller_dtls: DtlsFingerprint,
    /// The callee's DTLS fingerprint in its ANSWER (known once answered).
    pub callee_dtls: Option<DtlsFingerprint>,
    /// What we send now.
    pub local_media: MediaState,
    /// What the peer sends now.
    pub remote_media: MediaState,
    started: Instant,
    connected: Option<Instant>,
    media_up: bool,
}

impl Call {
    /// The fingerprint of our certificate in this call (once we dialled or answered it).
    pub fn our_dtls(&self) -> Option<&DtlsFingerprint> {
        match self.direction {
            Direction::Outgoing => Some(&self.caller_dtls),
            Direction::Incoming => self.callee_dtls.as_ref(),
        }
    }
}

/// A call that ended, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRecord {
    /// The call.
    pub id: CallId,
    /// The other side.
    pub peer: Fingerprint,
    /// Who called.
    pub direction: Direction,
    /// What either side sent or announced.
    pub kinds: Kinds,
    /// Why it ended.
    pub reason: EndReason,
    /// How it ended, for the log.
    pub outcome: Outcome,
    /// When it started ringing (dialled, or the ring arrived).
    pub started: Instant,
    /// How long it was connected.
    pub duration: Duration,
    /// When it ended.
    pub ended: Instant,
}

/// Something the node must do or tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send `frame` to `to` over its session.
    Send {
        /// The peer.
        to: Fingerprint,
        /// The frame.
        frame: CallFrame,
    },
    /// Tell the app.
    Event(CallEvent),
}

/// What the app hears about calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallEvent {
    /// A contact rings us: show the incoming-call screen.
    Incoming {
        /// The call.
        call: CallId,
        /// The caller.
        peer: Fingerprint,
        /// What the caller sends.
        kinds: Kinds,
    },
    /// The active call moved to `state` (never `Ended`: see [`CallEvent::Ended`]).
    State {
        /// The call.
        call: CallId,
        /// The other side.
        peer: Fingerprint,
        /// The new state.
        state: CallState,
    },
    /// The peer's media state changed.
    PeerMedia {
        /// The call.
        call: CallId,
        /// The other side.
        peer: Fingerprint,
        /// What it sends now.
        state: MediaState,
    },
    /// A call ended (also a ring we answered busy, which never became active).
    Ended(CallRecord),
}

/// An input to the machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// The user calls `peer`; the media layer has prepared the OFFER `media_id` with
    /// certificate `dtls` (it is sent once the callee accepts).
    Dial {
        /// A fresh random call ID.
        call: CallId,
        /// The callee.
        peer: Fingerprint,
        /// What we send.
        kinds: Kinds,
        /// The PeerJS connection ID of our media OFFER.
        media_id: String,
        /// Our DTLS fingerprint in it.
        dtls: DtlsFingerprint,
    },
    /// The user answers the ringing call; our ANSWER will use certificate `dtls`.
    Accept {
        /// The call.
        call: CallId,
        /// What we send.
        kinds: Kinds,
        /// Our DTLS fingerprint.
        dtls: DtlsFingerprint,
    },
    /// The user refuses the ringing call.
    Decline {
        /// The call.
        call: CallId,
    },
    /// The user ends the call (cancels it while it rings at the peer, declines it while it
    /// rings here).
    HangUp {
        /// The call.
        call: CallId,
    },
    /// The user muted, turned the camera off, switched camera or shared the screen.
    SetMedia {
        /// The call.
        call: CallId,
        /// What we send now.
        state: MediaState,
    },
    /// A call frame from a contact allowed to call (trust checked by the node).
    Frame {
        /// The session's verified identity.
        from: Fingerprint,
        /// The frame.
        frame: CallFrame,
    },
    /// The last link to `peer` closed.
    PeerGone {
        /// The peer.
        peer: Fingerprint,
    },
    /// The call's bound media connection is up.
    MediaConnected {
        /// The call.
        call: CallId,
    },
    /// The call's media connection closed or could not be made.
    MediaLost {
        /// The call.
        call: CallId,
    },
}

/// Why an input did nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// Another call is active.
    #[error("already in a call")]
    Busy,
    /// No active call has this ID (or it is with another peer).
    #[error("no such call")]
    NoSuchCall,
    /// The call is not in a state where this is possible.
    #[error("not possible while the call is {0}")]
    WrongState(&'static str),
    /// A field is malformed (no media kind, bad media ID, calling ourselves).
    #[error("invalid: {0}")]
    Invalid(&'static str),
    /// A media connection does not match the call (see [`binding`]).
    #[error(transparent)]
    Binding(#[from] BindError),
}

/// The call state machine of a node.
#[derive(Debug)]
pub struct Calls {
    me: Fingerprint,
    config: CallConfig,
    active: Option<Call>,
    actions: Vec<Action>,
    /// Per caller answered busy: when its window began and how many rings it answered.
    busy_rings: HashMap<Fingerprint, (Instant, u32)>,
    /// The last calls that ended, newest last.
    ended: VecDeque<CallId>,
}

impl Calls {
    /// A machine for the node with identity `me`.
    pub fn new(me: Fingerprint, config: CallConfig) -> Self {
        Self {
            me,
            config,
            active: None,
            actions: vec![],
            busy_rings: HashMap::new(),
            ended: VecDeque::new(),
        }
    }

    /// Changes the timings; they apply to the active call too.
    pub fn set_config(&mut self, config: CallConfig) {
        self.config = config;
    }

    /// The active call, if any.
    pub fn active(&self) -> Option<&Call> {
        self.active.as_ref()
    }

    /// What the node must do now, in order.
    pub fn drain_actions(&mut self) -> Vec<Action> {
        std::mem::take(&mut self.actions)
    }

    /// When [`Calls::handle_timeout`] must run next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let c = self.active.as_ref()?;
        match (c.direction, c.state) {
            (Direction::Outgoing, CallState::Dialing) => {
                Some(c.started + self.config.dial_timeout.min(self.config.ring_timeout))
            }
            (_, CallState::Dialing | CallState::Ringing) => {
                Some(c.started + self.config.ring_timeout)
            }
            (_, CallState::Connected) if !c.media_up => {
                c.connected.map(|t| t + self.config.media_timeout)
            }
            _ => None,
        }
    }

    /// Ends a call that waited too long: unreachable while dialing, not answered while ringing,
    /// lost when connected without media.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.poll_timeout().is_none_or(|t| now < t) {
            return;
        }
        let Some(c) = &self.active else { return };
        let (to, call) = (c.peer, c.id);
        match c.state {
            CallState::Connected => self.media_lost(now),
            CallState::Dialing if now < c.started + self.config.ring_timeout => {
                self.send(to, CallFrame::Cancel { call });
                self.end(EndReason::Unreachable, now);
            }
            _ => {
                if c.direction == Direction::Outgoing {
                    self.send(to, CallFrame::Cancel { call });
                }
                self.end(EndReason::NoAnswer, now);
            }
        }
    }

    /// Takes one input.
    pub fn handle(&mut self, input: Input, now: Instant) -> Result<(), Refused> {
        match input {
            Input::Dial {
                call,
                peer,
                kinds,
                media_id,
                dtls,
            } => self.dial(call, peer, kinds, media_id, dtls, now),
            Input::Accept { call, kinds, dtls } => {
                let c = self.incoming_ringing(&call)?;
                c.state = CallState::Connected;
                c.connected = Some(now);
                c.callee_kinds = kinds;
                c.callee_dtls = Some(dtls);
                let to = c.peer;
                self.send(to, CallFrame::Accept { call, kinds, dtls });
                self.state_event();
                Ok(())
            }
            Input::Decline { call } => {
                let to = self.incoming_ringing(&call)?.peer;
                self.send(to, CallFrame::Decline { call });
                self.end(EndReason::Declined, now);
                Ok(())
            }
            Input::HangUp { call } => {
                let c = self.ours(&call)?;
                let (to, state, direction) = (c.peer, c.state, c.direction);
                match (state, direction) {
                    (CallState::Connected, _) => {
                        self.send(to, CallFrame::HangUp { call });
                        self.end(EndReason::HungUp, now);
                    }
                    (_, Direction::Outgoing) => {
                        self.send(to, CallFrame::Cancel { call });
                        self.end(EndReason::Cancelled, now);
                    }
                    (_, Direction::Incoming) => {
                        self.send(to, CallFrame::Decline { call });
                        self.end(EndReason::Declined, now);
                    }
                }
                Ok(())
            }
            Input::SetMedia { call, state } => {
                let c = self.ours(&call)?;
                if c.local_media != state {
                    c.local_media = state;
                    let to = c.peer;
                    self.send(to, CallFrame::Media { call, state });
                }
                Ok(())
            }
            Input::Frame { from, frame } => self.on_frame(from, frame, now),
            Input::PeerGone { peer } => {
                if self.active.as_ref().is_some_and(|c| c.peer == peer) {
                    self.end(EndReason::Lost, now);
                    Ok(())
                } else {
                    Err(Refused::NoSuchCall)
                }
            }
            Input::MediaConnected { call } => {
                let c = self.ours(&call)?;
                if c.state != CallState::Connected {
                    return Err(Refused::WrongState(c.state.as_str()));
                }
                c.media_up = true;
                Ok(())
            }
            Input::MediaLost { call } => {
                let c = self.ours(&call)?;
                if c.state != CallState::Connected {
                    return Err(Refused::WrongState(c.state.as_str()));
                }
                self.media_lost(now);
                Ok(())
            }
        }
    }

    /// The connected call has no media: it ends, and the peer hears it hung up.
    fn media_lost(&mut self, now: Instant) {
        let Some(c) = &self.active else { return };
        let (to, call) = (c.peer, c.id);
        self.send(to, CallFrame::HangUp { call });
        self.end(EndReason::Lost, now);
    }

    /// Checks a media OFFER from `peer` against the active call (the callee's side): it must
    /// be the connection the ring announced, with the announced DTLS fingerprint, for a call
    /// we answered. Returns the call it belongs to.
    pub fn admit_offer(
        &self,
        peer: &Fingerprint,
        connection_id: &str,
        offer_dtls: &str,
    ) -> Result<CallId, Refused> {
        let c = self
            .active
            .as_ref()
            .filter(|c| &c.peer == peer && c.direction == Direction::Incoming)
            .ok_or(Refused::Binding(BindError::NotAnnounced))?;
        if c.state != CallState::Connected {
            return Err(Refused::Binding(BindError::NotAnnounced));
        }
        binding::check_offer(&c.media_id, &c.caller_dtls, connection_id, offer_dtls)?;
        Ok(c.id)
    }

    /// Checks the ANSWER to our media OFFER (the caller's side) against the callee's accept.
    pub fn admit_answer(&self, call: &CallId, answer_dtls: &str) -> Result<(), Refused> {
        let c = self
            .active
            .as_ref()
            .filter(|c| &c.id == call && c.direction == Direction::Outgoing)
            .ok_or(Refused::NoSuchCall)?;
        let dtls = c
            .callee_dtls
            .as_ref()
            .ok_or(Refused::Binding(BindError::NotAnnounced))?;
        Ok(binding::check_dtls(dtls, answer_dtls)?)
    }

    fn dial(
        &mut self,
        call: CallId,
        peer: Fingerprint,
        kinds: Kinds,
        media_id: String,
        dtls: DtlsFingerprint,
        now: Instant,
    ) -> Result<(), Refused> {
        if self.active.is_some() {
            return Err(Refused::Busy);
        }
        if peer == self.me {
            return Err(Refused::Invalid("calling ourselves"));
        }
        if kinds.is_empty() {
            return Err(Refused::Invalid("a call needs audio, video or screen"));
        }
        if !valid_media_id(&media_id) {
            return Err(Refused::Invalid("media connection id"));
        }
        self.active = Some(Call {
            id: call,
            peer,
            direction: Direction::Outgoing,
            state: CallState::Dialing,
            caller_kinds: kinds,
            callee_kinds: Kinds::default(),
            media_id: media_id.clone(),
            caller_dtls: dtls,
            callee_dtls: None,
            local_media: MediaState::default(),
            remote_media: MediaState::default(),
            started: now,
            connected: None,
            media_up: false,
        });
        self.send(
            peer,
            CallFrame::Ring {
                call,
                kinds,
                media_id,
                dtls,
            },
        );
        self.state_event();
        Ok(())
    }

    fn on_frame(
        &mut self,
        from: Fingerprint,
        frame: CallFrame,
        now: Instant,
    ) -> Result<(), Refused> {
        if let CallFrame::Ring {
            call,
            kinds,
            media_id,
            dtls,
        } = frame
        {
            return self.on_ring(from, call, kinds, media_id, dtls, now);
        }
        let call = frame.call();
        let c = self
            .active
            .as_mut()
            .filter(|c| c.id == call && c.peer == from)
            .ok_or(Refused::NoSuchCall)?;
        let outgoing = c.direction == Direction::Outgoing;
        let answered = c.state == CallState::Connected;
        match frame {
            CallFrame::Ringing { .. } if outgoing && c.state == CallState::Dialing => {
                c.state = CallState::Ringing;
                self.state_event();
            }
            CallFrame::Accept { kinds, dtls, .. } if outgoing && !answered => {
                c.state = CallState::Connected;
                c.connected = Some(now);
                c.callee_kinds = kinds;
                c.callee_dtls = Some(dtls);
                self.state_event();
            }
            CallFrame::Decline { .. } if outgoing && !answered => {
                self.end(EndReason::Declined, now)
            }
            CallFrame::Busy { .. } if outgoing && !answered => self.end(EndReason::Busy, now),
            // A cancel that crossed our accept: the caller never saw the call connected.
            CallFrame::Cancel { .. } if !outgoing => {
                c.connected = None;
                self.end(EndReason::Cancelled, now);
            }
            CallFrame::HangUp { .. } => {
                let reason = match (answered, outgoing) {
                    (true, _) => EndReason::PeerHungUp,
                    (false, true) => EndReason::Declined,
                    (false, false) => EndReason::Cancelled,
                };
                self.end(reason, now);
            }
            CallFrame::Media { state, .. } => {
                c.remote_media = state;
                let (call, peer) = (c.id, c.peer);
                self.event(CallEvent::PeerMedia { call, peer, state });
            }
            _ => return Err(Refused::WrongState(c.state.as_str())),
        }
        Ok(())
    }

    fn on_ring(
        &mut self,
        from: Fingerprint,
        call: CallId,
        kinds: Kinds,
        media_id: String,
        dtls: DtlsFingerprint,
        now: Instant,
    ) -> Result<(), Refused> {
        if from == self.me || kinds.is_empty() || !valid_media_id(&media_id) {
            return Err(Refused::Invalid("ring"));
        }
        if self.ended.contains(&call) {
            // Late (it came over another link than its end): that call is over.
            return Err(Refused::NoSuchCall);
        }
        if let Some(c) = &self.active {
            if c.id == call {
                // A repeated ring (a second link): confirm again that the phone rings.
                if c.peer == from && c.direction == Direction::Incoming {
                    if c.state == CallState::Ringing {
                        self.send(from, CallFrame::Ringing { call });
                    }
                    return Ok(());
                }
                return Err(Refused::NoSuchCall);
            }
            let glare = c.peer == from
                && c.direction == Direction::Outgoing
                && matches!(c.state, CallState::Dialing | CallState::Ringing);
            if glare {
                // The call placed by the lower fingerprint is kept on both sides.
                if self.me < from {
                    return Err(Refused::Busy);
                }
                let (ours_kinds, ours_dtls) = (c.caller_kinds, c.caller_dtls);
                self.end(EndReason::Replaced, now);
                self.ring(from, call, kinds, media_id, dtls, now, false);
                return self.handle(
                    Input::Accept {
                        call,
                        kinds: ours_kinds,
                        dtls: ours_dtls,
                    },
                    now,
                );
            }
            if c.peer != from {
                return self.busy(from, call, kinds, now);
            }
            // The peer rings only when it has no call: ours with it is over on its side (it
            // hears so, should the ring have overtaken that call's frames on another link).
            let old = c.id;
            self.send(from, CallFrame::HangUp { call: old });
            self.end(EndReason::Lost, now);
        }
        self.ring(from, call, kinds, media_id, dtls, now, true);
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn ring(
        &mut self,
        from: Fingerprint,
        call: CallId,
        kinds: Kinds,
        media_id: String,
        dtls: DtlsFingerprint,
        now: Instant,
        tell: bool,
    ) {
        self.active = Some(Call {
            id: call,
            peer: from,
            direction: Direction::Incoming,
            state: CallState::Ringing,
            caller_kinds: kinds,
            callee_kinds: Kinds::default(),
            media_id,
            caller_dtls: dtls,
            callee_dtls: None,
            local_media: MediaState::default(),
            remote_media: MediaState::default(),
            started: now,
            connected: None,
            media_up: false,
        });
        self.send(from, CallFrame::Ringing { call });
        if tell {
            self.event(CallEvent::Incoming {
                call,
                peer: from,
                kinds,
            });
        }
    }

    /// Answers a ring busy: logged once per caller and [`BUSY_WINDOW`], answered at most
    /// [`BUSY_REPLIES`] times in it (a flood of rings costs nothing more).
    fn busy(
        &mut self,
        from: Fingerprint,
        call: CallId,
        kinds: Kinds,
        now: Instant,
    ) -> Result<(), Refused> {
        self.busy_rings
            .retain(|_, (since, _)| now.saturating_duration_since(*since) < BUSY_WINDOW);
        let (_, answered) = self.busy_rings.entry(from).or_insert((now, 0));
        *answered = answered.saturating_add(1);
        let answered = *answered;
        if answered <= BUSY_REPLIES {
            self.send(from, CallFrame::Busy { call });
        }
        if answered == 1 {
            self.event(CallEvent::Ended(CallRecord {
                id: call,
                peer: from,
                direction: Direction::Incoming,
                kinds,
                reason: EndReason::Busy,
                outcome: Outcome::Busy,
                started: now,
                duration: Duration::ZERO,
                ended: now,
            }));
        }
        Err(Refused::Busy)
    }

    /// The active call if it is `call`.
    fn ours(&mut self, call: &CallId) -> Result<&mut Call, Refused> {
        self.active
            .as_mut()
            .filter(|c| &c.id == call)
            .ok_or(Refused::NoSuchCall)
    }

    /// The active call if it is `call`, incoming and ringing.
    fn incoming_ringing(&mut self, call: &CallId) -> Result<&mut Call, Refused> {
        let c = self.ours(call)?;
        if c.direction != Direction::Incoming || c.state != CallState::Ringing {
            return Err(Refused::WrongState(c.state.as_str()));
        }
        Ok(c)
    }

    fn send(&mut self, to: Fingerprint, frame: CallFrame) {
        self.actions.push(Action::Send { to, frame });
    }

    fn event(&mut self, e: CallEvent) {
        self.actions.push(Action::Event(e));
    }

    fn state_event(&mut self) {
        if let Some(c) = &self.active {
            let e = CallEvent::State {
                call: c.id,
                peer: c.peer,
                state: c.state,
            };
            self.event(e);
        }
    }

    /// Ends the active call for `reason`.
    fn end(&mut self, reason: EndReason, now: Instant) {
        let Some(c) = self.active.take() else { return };
        if self.ended.len() == ENDED_KEPT {
            self.ended.pop_front();
        }
        self.ended.push_back(c.id);
        let record = CallRecord {
            id: c.id,
            peer: c.peer,
            direction: c.direction,
            kinds: c.caller_kinds.union(c.callee_kinds),
            reason,
            outcome: Outcome::of(c.direction, reason, c.connected.is_some()),
            started: c.started,
            duration: c
                .connected
                .map_or(Duration::ZERO, |t| now.saturating_duration_since(t)),
            ended: now,
        };
        self.event(CallEvent::Ended(record));
    }
}
