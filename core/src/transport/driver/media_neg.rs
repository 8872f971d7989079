//! The driver's media path: offering a media connection, holding an incoming media OFFER
//! (admitted like a data OFFER: caps and deadline) until the application accepts or refuses it,
//! answering it, and routing tracks, the peerjs hang-up channel and connection states.

use std::sync::Arc;
use std::time::Instant;

use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use webrtc::data_channel::RTCDataChannelInit;
use webrtc::media_stream::track_remote::TrackRemote;
use webrtc::peer_connection::{
    PeerConnection, RTCIceCandidateInit, RTCPeerConnectionState, RTCSessionDescription,
};

use super::super::media::{
    MediaCertificate, MediaConnection, MediaInfo, MediaKind, MediaOptions, MediaParts, MediaState,
    RemoteTrack, TrackSpec, add_local_tracks,
};
use super::super::media_engine::{media_stack, media_stack_with};
use super::super::options::MAX_REMOTE_CANDIDATES;
use super::super::payload::{
    AnswerPayload, CandidatePayload, MAX_METADATA_BYTES, OfferPayload, Sdp, Serialization,
    check_connection_id, new_media_connection_id,
};
use super::*;

/// An admitted media OFFER the application has not decided on yet.
pub(in crate::transport) struct PendingMedia {
    peer: String,
    offer: OfferPayload,
    remote_dtls: String,
    candidates: Vec<RTCIceCandidateInit>,
}

impl PendingMedia {
    /// Keeps a candidate that arrived before the answer (bounded like any connection's).
    pub fn queue(&mut self, peer: &str, c: CandidatePayload) -> Result<(), TransportError> {
        if peer != self.peer {
            return Err(TransportError::Protocol(
                "candidate from the wrong peer".into(),
            ));
        }
        if c.candidate.candidate.is_empty() {
            return Ok(());
        }
        if self.candidates.len() >= MAX_REMOTE_CANDIDATES {
            return Err(TransportError::Protocol("too many candidates".into()));
        }
        self.candidates.push(RTCIceCandidateInit {
            candidate: c.candidate.candidate,
            sdp_mid: c.candidate.sdp_mid,
            sdp_mline_index: c.candidate.sdp_m_line_index,
            username_fragment: c.candidate.username_fragment,
            ..Default::default()
        });
        Ok(())
    }
}

/// Adds a receive-only transceiver for each kind we do not send, so the peer may send it,
/// and one for each extra kind in `more`.
async fn receive_kinds(
    pc: &Arc<dyn PeerConnection>,
    tracks: &[TrackSpec],
    more: &[MediaKind],
) -> webrtc::error::Result<()> {
    let missing = [MediaKind::Audio, MediaKind::Video]
        .into_iter()
        .filter(|kind| !tracks.iter().any(|t| t.kind == *kind));
    for kind in missing.chain(more.iter().copied()) {
        let rtp_kind = match kind {
            MediaKind::Audio => RtpCodecKind::Audio,
            MediaKind::Video => RtpCodecKind::Video,
        };
        let init = RTCRtpTransceiverInit {
            direction: RTCRtpTransceiverDirection::Recvonly,
            ..Default::default()
        };
        pc.add_transceiver_from_kind(rtp_kind, Some(init)).await?;
    }
    Ok(())
}

fn entry_info(
    peer: &str,
    cid: &str,
    metadata: &Value,
    local_dtls: &str,
    out: bool,
) -> ConnectionInfo {
    ConnectionInfo {
        peer: peer.into(),
        connection_id: cid.into(),
        serialization: Serialization::Raw,
        reliable: false,
        metadata: metadata.clone(),
        local_dtls: local_dtls.into(),
        outgoing: out,
    }
}

impl Task {
    /// Offers a media connection (see [`Transport::call`]).
    pub(super) async fn call(
        &mut self,
        peer: String,
        opts: MediaOptions,
    ) -> Result<MediaConnection, TransportError> {
        if opts.metadata.to_string().len() > MAX_METADATA_BYTES {
            return Err(TransportError::Protocol("metadata too large".into()));
        }
        let cid = match opts.connection_id {
            Some(cid) => {
                if !cid.starts_with("mc_") || check_connection_id(&cid).is_err() {
                    return Err(TransportError::Protocol(format!(
                        "not a media connection id: {cid:?}"
                    )));
                }
                if self.entries.contains_key(&cid) || self.pending_media.contains_key(&cid) {
                    return Err(TransportError::Protocol("connection id in use".into()));
                }
                cid
            }
            None => new_media_connection_id(),
        };
        let mut stack = media_stack().map_err(webrtc_err)?;
        stack.certificate = opts.certificate.as_ref().map(MediaCertificate::rtc);
        let estimate = stack.estimate.clone();
        let pc = new_peer_connection(&self.config, &cid, self.pc_tx.clone(), Some(stack), false)
            .await
            .map_err(webrtc_err)?;
        let setup = async {
            let locals = add_local_tracks(&pc, &opts.tracks).await?;
            receive_kinds(&pc, &opts.tracks, &opts.receive)
                .await
                .map_err(webrtc_err)?;
            // As peerjs does: an unordered channel labelled with the connection id, whose close
            // is the hang-up.
            let init = RTCDataChannelInit {
                ordered: false,
                ..Default::default()
            };
            let dc = pc
                .create_data_channel(&cid, Some(init))
                .await
                .map_err(webrtc_err)?;
            let offer = pc.create_offer(None).await.map_err(webrtc_err)?;
            pc.set_local_description(offer.clone())
                .await
                .map_err(webrtc_err)?;
            Ok::<_, TransportError>((locals, dc, offer))
        };
        let (locals, dc, offer) = match setup.await {
            Ok(x) => x,
            Err(e) => {
                let _ = pc.close().await;
                return Err(e);
            }
        };
        let local_dtls = dtls_fingerprint(&offer.sdp);
        let info = MediaInfo {
            peer: peer.clone(),
            connection_id: cid.clone(),
            metadata: opts.metadata.clone(),
            local_dtls: local_dtls.clone(),
            outgoing: true,
        };
        let (conn, hooks) = MediaConnection::new(MediaParts {
            info,
            pc: pc.clone(),
            locals,
            estimate,
            closed_tx: self.closed_tx.clone(),
        });
        hooks.set_channel(dc);
        let ci = entry_info(&peer, &cid, &opts.metadata, &local_dtls, true);
        let mut entry = Entry::new(ci, pc, &offer.sdp, true);
        entry.pc = None; // the handle owns it
        entry.kind = ConnectionKind::Media;
        entry.media = Some(hooks);
        let payload = OfferPayload {
            sdp: Sdp {
                kind: "offer".into(),
                sdp: offer.sdp,
            },
            kind: ConnectionKind::Media,
            connection_id: cid.clone(),
            metadata: opts.metadata,
            label: None,
            reliable: None,
            serialization: None,
        };
        self.entries.insert(cid, entry);
        let payload = serde_json::to_value(payload).expect("offer json");
        self.send_signal(MessageType::Offer, &peer, payload).await;
        Ok(conn)
    }

    /// An incoming media OFFER: admitted (caps, deadline) and handed to the subscriber, or
    /// refused silently.
    pub(super) async fn media_offer(
        &mut self,
        peer: String,
        offer: OfferPayload,
    ) -> Result<(), TransportError> {
        let cid = offer.connection_id.clone();
        let known = self
            .entries
            .get(&cid)
            .map(|e| e.info.peer.clone())
            .or_else(|| self.pending_media.get(&cid).map(|p| p.peer.clone()));
        if let Some(owner) = known {
            if owner == peer {
                return Ok(()); // repeated
            }
            return Err(TransportError::Protocol("duplicate connection id".into()));
        }
        let Some(tx) = self.media_offers.clone().filter(|tx| !tx.is_closed()) else {
            return Err(TransportError::Protocol(
                "media offers are not taken".into(),
            ));
        };
        RTCSessionDescription::offer(offer.sdp.sdp.clone()).map_err(webrtc_err)?;
        let remote_dtls = dtls_fingerprint(&offer.sdp.sdp);
        if remote_dtls.is_empty() {
            return Err(TransportError::Protocol(
                "offer without a DTLS fingerprint".into(),
            ));
        }
        self.admission
            .admit(&cid, &peer, Instant::now())
            .map_err(|e| TransportError::Protocol(e.to_string()))?;
        let incoming = IncomingMedia {
            peer: peer.clone(),
            connection_id: cid.clone(),
            metadata: offer.metadata.clone(),
            remote_dtls: remote_dtls.clone(),
            decide: self.cmd.upgrade(),
        };
        self.pending_media.insert(
            cid.clone(),
            PendingMedia {
                peer,
                offer,
                remote_dtls,
                candidates: vec![],
            },
        );
        if tx.try_send(incoming).is_err() {
            self.refuse_media(&cid);
            return Err(TransportError::Protocol(
                "too many undecided media offers".into(),
            ));
        }
        Ok(())
    }

    /// Answers the pending media OFFER `cid` with our `tracks` (video in H.264 alone if
    /// `h264_only`).
    pub(super) async fn accept_media(
        &mut self,
        cid: &str,
        tracks: Vec<TrackSpec>,
        certificate: Option<MediaCertificate>,
        h264_only: bool,
    ) -> Result<MediaConnection, TransportError> {
        let p = self
            .pending_media
            .remove(cid)
            .ok_or(TransportError::Closed)?;
        let result = self
            .answer_media(cid, p, tracks, certificate, h264_only)
            .await;
        if result.is_err() {
            self.admission.release(cid);
        }
        result
    }

    async fn answer_media(
        &mut self,
        cid: &str,
        p: PendingMedia,
        tracks: Vec<TrackSpec>,
        certificate: Option<MediaCertificate>,
        h264_only: bool,
    ) -> Result<MediaConnection, TransportError> {
        let remote = RTCSessionDescription::offer(p.offer.sdp.sdp.clone()).map_err(webrtc_err)?;
        let mut stack = media_stack_with(!h264_only).map_err(webrtc_err)?;
        stack.certificate = certificate.as_ref().map(MediaCertificate::rtc);
        let estimate = stack.estimate.clone();
        let pc = new_peer_connection(&self.config, cid, self.pc_tx.clone(), Some(stack), false)
            .await
            .map_err(webrtc_err)?;
        let setup = async {
            pc.set_remote_description(remote)
                .await
                .map_err(webrtc_err)?;
            let locals = add_local_tracks(&pc, &tracks).await?;
            let answer = pc.create_answer(None).await.map_err(webrtc_err)?;
            pc.set_local_description(answer.clone())
                .await
                .map_err(webrtc_err)?;
            Ok::<_, TransportError>((locals, answer))
        };
        let (locals, answer) = match setup.await {
            Ok(x) => x,
            Err(e) => {
                let _ = pc.close().await;
                return Err(e);
            }
        };
        let local_dtls = dtls_fingerprint(&answer.sdp);
        let info = MediaInfo {
            peer: p.peer.clone(),
            connection_id: cid.into(),
            metadata: p.offer.metadata.clone(),
            local_dtls: local_dtls.clone(),
            outgoing: false,
        };
        let (conn, hooks) = MediaConnection::new(MediaParts {
            info,
            pc: pc.clone(),
            locals,
            estimate,
            closed_tx: self.closed_tx.clone(),
        });
        let _ = hooks.remote_dtls.set(p.remote_dtls);
        let ci = entry_info(&p.peer, cid, &p.offer.metadata, &local_dtls, false);
        let mut entry = Entry::new(ci, pc.clone(), &answer.sdp, false);
        entry.pc = None;
        entry.kind = ConnectionKind::Media;
        entry.media = Some(hooks);
        entry.remote_candidates = p.candidates.len();
        self.entries.insert(cid.into(), entry);
        for c in p.candidates {
            if let Err(e) = pc.add_ice_candidate(c).await {
                tracing::debug!(error = %e, "queued media candidate refused");
            }
        }
        let payload = AnswerPayload {
            sdp: Sdp {
                kind: "answer".into(),
                sdp: answer.sdp,
            },
            kind: ConnectionKind::Media,
            connection_id: cid.into(),
        };
        let payload = serde_json::to_value(payload).expect("answer json");
        self.send_signal(MessageType::Answer, &p.peer, payload)
            .await;
        Ok(conn)
    }

    /// Drops the pending media OFFER `cid` (no ANSWER) and frees its slot.
    pub(super) fn refuse_media(&mut self, cid: &str) {
        if self.pending_media.remove(cid).is_some() {
            self.admission.release(cid);
        }
    }

    /// The peer of media connection `cid` sends a track: hand it to the connection's handle
    /// (waiting for room: a track lost here would be a slot never delivered). One task per
    /// track the connection negotiated; it ends with the connection's handle.
    pub(super) fn media_track(&mut self, cid: &str, track: Arc<dyn TrackRemote>) {
        let Some(m) = self.entries.get(cid).and_then(|e| e.media.as_ref()) else {
            return;
        };
        let tx = m.tracks.clone();
        tokio::spawn(async move {
            let t = RemoteTrack::new(track).await;
            if tx.send(t).await.is_err() {
                tracing::debug!("remote track dropped: connection gone");
            }
        });
    }

    /// A media connection's peer-connection state changed; connected frees its admission slot,
    /// failed (ICE or DTLS gave up: no media will flow) is closed for its watchers.
    pub(super) fn media_state(&mut self, cid: &str, state: RTCPeerConnectionState) {
        let Some(m) = self.entries.get(cid).and_then(|e| e.media.as_ref()) else {
            return;
        };
        match state {
            RTCPeerConnectionState::Connected => {
                let _ = m.state.send(MediaState::Connected);
                self.admission.release(cid);
            }
            RTCPeerConnectionState::Failed => {
                let _ = m.state.send(MediaState::Closed);
            }
            _ => {}
        }
    }
}
