//! Offers, answers and candidates from the signaling server: the data and media connections
//! peers open to us, glare between crossing dials, and offers left by a stopped instance.

use super::*;

impl Task {
    pub(super) async fn signal(&mut self, msg: Message) {
        let Some(src) = msg.src.clone() else { return };
        let result = match msg.kind {
            MessageType::Offer => match parse::<OfferPayload>(msg.payload.as_ref()) {
                Ok(p) => self.offer(src.clone(), p).await,
                Err(e) => Err(TransportError::Protocol(e.to_string())),
            },
            MessageType::Answer => match parse::<AnswerPayload>(msg.payload.as_ref()) {
                Ok(p) => self.answer(&src, p).await,
                Err(e) => Err(TransportError::Protocol(e.to_string())),
            },
            MessageType::Candidate => match parse::<CandidatePayload>(msg.payload.as_ref()) {
                Ok(p) => self.candidate(&src, p).await,
                Err(e) => Err(TransportError::Protocol(e.to_string())),
            },
            MessageType::Leave => {
                self.close_peer(&src).await;
                Ok(())
            }
            MessageType::Expire => {
                let waiting: Vec<String> = self
                    .entries
                    .iter()
                    .filter(|(_, e)| e.info.peer == src && e.reply.is_some())
                    .map(|(cid, _)| cid.clone())
                    .collect();
                for cid in waiting {
                    self.fail(&cid, TransportError::PeerUnavailable(src.clone()))
                        .await;
                }
                Ok(())
            }
            _ => Ok(()),
        };
        if let Err(e) = result {
            // Debug, not warn: a stranger decides how many of these there are.
            tracing::debug!(peer = %src, kind = ?msg.kind, error = %e, "signaling frame refused");
        }
    }

    async fn offer(&mut self, peer: String, offer: OfferPayload) -> Result<(), TransportError> {
        if offer.kind == ConnectionKind::Media {
            return self.media_offer(peer, offer).await;
        }
        let serialization = offer.serialization.unwrap_or(Serialization::Binary);
        if serialization == Serialization::BinaryUtf8 {
            return Err(TransportError::Protocol(
                "binary-utf8 is not supported".into(),
            ));
        }
        if let Some(e) = self.entries.get(&offer.connection_id) {
            if e.info.peer == peer {
                // The same offer again (sent again after glare): already handled.
                tracing::debug!(%peer, "offer repeated; ignored");
                return Ok(());
            }
            return Err(TransportError::Protocol("duplicate connection id".into()));
        }
        // Before anything is built: a refused OFFER costs a parse and a count.
        let cid = offer.connection_id.clone();
        self.admission
            .admit(&cid, &peer, Instant::now())
            .map_err(|e| TransportError::Protocol(e.to_string()))?;
        let result = self.accept_offer(peer, offer).await;
        if result.is_err() || !self.entries.contains_key(&cid) {
            self.admission.release(&cid); // refused, or glare kept our own offer
        }
        result
    }

    /// Answers an admitted OFFER (`offer` holds its slot).
    async fn accept_offer(
        &mut self,
        peer: String,
        offer: OfferPayload,
    ) -> Result<(), TransportError> {
        let serialization = offer.serialization.unwrap_or(Serialization::Binary);
        // A description that does not parse, or has no DTLS fingerprint, costs no peer connection.
        let remote = RTCSessionDescription::offer(offer.sdp.sdp.clone()).map_err(webrtc_err)?;
        let remote_dtls = dtls_fingerprint(&offer.sdp.sdp);
        if remote_dtls.is_empty() {
            return Err(TransportError::Protocol(
                "offer without a DTLS fingerprint".into(),
            ));
        }
        let mut inherited_reply = None;
        if is_native(&offer.metadata) {
            inherited_reply = self
                .supersede_stopped_instance(&peer, &offer.metadata)
                .await;
            // Glare: both sides offered at once. The offer of the lower ID wins on both sides.
            let mine: Vec<String> = self
                .entries
                .iter()
                .filter(|(_, e)| {
                    e.outgoing
                        && e.info.peer == peer
                        && e.reply.is_some()
                        && is_native(&e.info.metadata)
                })
                .map(|(cid, _)| cid.clone())
                .collect();
            // An offer of ours the peer already answered, followed by an offer from the peer,
            // means the peer lost that connection (it restarted): ours is stale.
            let unanswered = mine
                .iter()
                .any(|cid| self.entries.get(cid).is_some_and(|e| !e.remote_set));
            if unanswered && self.local_id.as_str() < peer.as_str() {
                // The peer takes our offer when it sees both; but if it registered anew after
                // we offered, ours went to its old socket. Sending ours again is harmless if it
                // has it (a duplicate id is ignored) and saves the attempt if it has not.
                tracing::debug!(%peer, "glare: keeping our offer (sent again)");
                let again: Vec<_> = mine
                    .iter()
                    .filter_map(|cid| self.entries.get(cid))
                    .filter(|e| !e.remote_set)
                    .flat_map(|e| e.sent.clone())
                    .collect();
                for (kind, payload) in again {
                    self.send_signal(kind, &peer, payload).await;
                }
                return Ok(());
            }
            if !mine.is_empty() {
                tracing::debug!(%peer, "glare: taking the peer's offer");
                for cid in mine {
                    let Some(e) = self.entries.get_mut(&cid) else {
                        continue;
                    };
                    // An unanswered offer of ours stays open without a caller: a live peer
                    // ignores it (its own offer wins), but if the offer we take was left at
                    // the server by a stopped instance, the live one answers ours, and it
                    // opens as an incoming connection. It ends at its connect timeout.
                    let reply = if e.remote_set {
                        self.abandon(&cid).await
                    } else {
                        e.reply.take()
                    };
                    inherited_reply = inherited_reply.or(reply);
                }
            }
        }
        let cid = offer.connection_id.clone();
        let native = is_native(&offer.metadata);
        let pc = new_peer_connection(&self.config, &cid, self.pc_tx.clone(), None, native)
            .await
            .map_err(webrtc_err)?;
        let setup = async {
            pc.set_remote_description(remote).await?;
            let answer = pc.create_answer(None).await?;
            pc.set_local_description(answer.clone()).await?;
            webrtc::error::Result::Ok(answer)
        };
        let answer = match setup.await {
            Ok(a) => a,
            Err(e) => {
                let _ = pc.close().await;
                return Err(webrtc_err(e));
            }
        };
        let info = ConnectionInfo {
            peer: peer.clone(),
            connection_id: cid.clone(),
            serialization,
            reliable: offer.reliable.unwrap_or(false),
            metadata: offer.metadata,
            local_dtls: dtls_fingerprint(&answer.sdp),
            outgoing: false,
        };
        let mut entry = Entry::new(info, pc, &answer.sdp, false);
        entry.reply = inherited_reply;
        entry.remote_dtls = Some(remote_dtls);
        self.entries.insert(cid.clone(), entry);
        let payload = AnswerPayload {
            sdp: Sdp {
                kind: "answer".into(),
                sdp: answer.sdp,
            },
            kind: ConnectionKind::Data,
            connection_id: cid,
        };
        self.send_signal(
            MessageType::Answer,
            &peer,
            serde_json::to_value(payload).expect("answer json"),
        )
        .await;
        Ok(())
    }

    /// An OFFER from `peer` whose `metadata` names another instance than the native offers
    /// of it we have not opened yet: that instance has stopped (its offers waited at the server
    /// while we were away), so they are closed. Returns the caller one of them had inherited.
    async fn supersede_stopped_instance(&mut self, peer: &str, metadata: &Value) -> Option<Reply> {
        let theirs = instance_of(metadata)?;
        let stale: Vec<String> = self
            .entries
            .iter()
            .filter(|(_, e)| {
                !e.outgoing
                    && e.info.peer == peer
                    && e.pc.is_some()
                    && instance_of(&e.info.metadata).is_some_and(|i| i != theirs)
            })
            .map(|(cid, _)| cid.clone())
            .collect();
        let mut reply = None;
        for cid in stale {
            tracing::debug!(%peer, %cid, "offer of a stopped instance superseded");
            reply = reply.or(self.abandon(&cid).await);
        }
        reply
    }

    /// Drops connection `cid` before it opened, closing its peer connection, and returns its
    /// caller for the connection that replaces it (unlike [`Self::fail`], which answers it).
    async fn abandon(&mut self, cid: &str) -> Option<Reply> {
        self.admission.release(cid);
        let mut e = self.entries.remove(cid)?;
        if let Some(pc) = e.pc.take() {
            let _ = pc.close().await;
        }
        e.reply.take()
    }

    async fn answer(&mut self, peer: &str, answer: AnswerPayload) -> Result<(), TransportError> {
        let Some(e) = self.entries.get_mut(&answer.connection_id) else {
            return Ok(()); // abandoned (glare, timeout): nothing to do
        };
        if e.info.peer != peer || !e.outgoing || e.remote_set {
            return Err(TransportError::Protocol("unexpected answer".into()));
        }
        // A media connection's handle owns its peer connection from the start.
        let Some(pc) = e.pc.clone().or_else(|| e.weak_pc.upgrade()) else {
            return Ok(());
        };
        let remote_dtls = dtls_fingerprint(&answer.sdp.sdp);
        let remote = RTCSessionDescription::answer(answer.sdp.sdp).map_err(webrtc_err)?;
        pc.set_remote_description(remote)
            .await
            .map_err(webrtc_err)?;
        e.remote_set = true;
        e.sent.clear();
        if let Some(m) = &e.media {
            let _ = m.remote_dtls.set(remote_dtls.clone());
        }
        if let Some(conn) = &e.conn {
            conn.set_remote_dtls(remote_dtls);
        }
        for c in std::mem::take(&mut e.queued) {
            if let Err(err) = pc.add_ice_candidate(c).await {
                tracing::debug!(error = %err, "queued candidate refused");
            }
        }
        Ok(())
    }

    async fn candidate(&mut self, peer: &str, c: CandidatePayload) -> Result<(), TransportError> {
        if let Some(p) = self.pending_media.get_mut(&c.connection_id) {
            return p.queue(peer, c);
        }
        let Some(e) = self.entries.get_mut(&c.connection_id) else {
            return Ok(());
        };
        if e.info.peer != peer {
            return Err(TransportError::Protocol(
                "candidate from the wrong peer".into(),
            ));
        }
        if c.candidate.candidate.is_empty() {
            return Ok(()); // end of candidates
        }
        if e.remote_candidates >= MAX_REMOTE_CANDIDATES {
            return Err(TransportError::Protocol("too many candidates".into()));
        }
        let init = RTCIceCandidateInit {
            candidate: c.candidate.candidate,
            sdp_mid: c.candidate.sdp_mid,
            sdp_mline_index: c.candidate.sdp_m_line_index,
            username_fragment: c.candidate.username_fragment,
            ..Default::default()
        };
        e.remote_candidates += 1;
        if !e.remote_set {
            e.queued.push(init);
            return Ok(());
        }
        if let Some(pc) = e.weak_pc.upgrade() {
            pc.add_ice_candidate(init).await.map_err(webrtc_err)?;
        }
        Ok(())
    }
}
