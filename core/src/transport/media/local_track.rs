//! Our tracks on a media connection: encoded frames in (packetised, or written as samples),
//! the receiver's feedback (keyframe requests, bitrate) out to the application.

use super::*;

/// One of our tracks on a media connection.
#[derive(Clone)]
pub struct LocalTrack {
    spec: TrackSpec,
    ssrc: u32,
    codec: RTCRtpCodec,
    track: Writer,
    sender: Arc<dyn RtpSender>,
    /// Negotiated payload type (0 = not looked up yet).
    pt: Arc<AtomicU8>,
    /// The forwarder's header-extension IDs and this connection's for the same extensions
    /// (looked up on the first forward).
    extension_map: Arc<std::sync::OnceLock<Vec<(u8, u8)>>>,
    /// How far a receiver must turn our picture clockwise, in quarter turns (video).
    rotation: Arc<AtomicU8>,
    feedback: Arc<Mutex<mpsc::Receiver<Feedback>>>,
    stats: Arc<TrackCounters>,
}

/// How a local track takes media.
#[derive(Clone)]
enum Writer {
    /// Encoded frames, packetized by webrtc-rs.
    Frames(Arc<TrackLocalStaticSample>),
    /// Ready RTP packets.
    Rtp(Arc<TrackLocalStaticRTP>),
}

/// Frame and byte counters of a track.
#[derive(Debug, Default)]
pub struct TrackCounters {
    /// Frames written or completed.
    pub frames: AtomicU64,
    /// Payload bytes.
    pub bytes: AtomicU64,
    /// RTP packets.
    pub packets: AtomicU64,
}

impl LocalTrack {
    /// Its spec.
    pub fn spec(&self) -> &TrackSpec {
        &self.spec
    }

    /// The RTP clock rate of its codec.
    pub fn clock_rate(&self) -> u32 {
        self.codec.clock_rate
    }

    /// Its SSRC.
    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// The forwarder's header-extension IDs ([`FORWARDED_EXTENSIONS`]) mapped to the ones
    /// negotiated on this track's connection.
    async fn extension_map(&self) -> Result<&[(u8, u8)], TransportError> {
        if self.extension_map.get().is_none() {
            let params = self.sender.get_parameters().await.map_err(webrtc_err)?;
            let negotiated = &params.rtp_parameters.header_extensions;
            let map = FORWARDED_EXTENSIONS
                .iter()
                .filter_map(|(hub, uri)| {
                    let ours = negotiated.iter().find(|h| h.uri == *uri)?;
                    Some((*hub, u8::try_from(ours.id).ok()?))
                })
                .collect();
            let _ = self.extension_map.set(map);
        }
        Ok(self
            .extension_map
            .get()
            .map(Vec::as_slice)
            .unwrap_or_default())
    }

    /// Says how far a receiver must turn our picture clockwise (`degrees`, to the nearest
    /// quarter turn): every video packet sent from now on carries it in the video-orientation
    /// extension, where the connection negotiated it (a browser turns what it shows by it).
    pub fn set_rotation(&self, degrees: u16) {
        let quarters = ((u32::from(degrees) + 45) / 90 % 4) as u8;
        self.rotation.store(quarters, Ordering::Relaxed);
    }

    /// The payload type negotiated for its codec.
    pub async fn payload_type(&self) -> Result<u8, TransportError> {
        let pt = self.pt.load(Ordering::Relaxed);
        if pt != 0 {
            return Ok(pt);
        }
        let params = self.sender.get_parameters().await.map_err(webrtc_err)?;
        let mime = self.codec.mime_type.to_ascii_lowercase();
        let pt = params
            .rtp_parameters
            .codecs
            .iter()
            .find(|c| c.rtp_codec.mime_type.to_ascii_lowercase() == mime)
            .map(|c| c.payload_type)
            .ok_or_else(|| TransportError::Protocol(format!("{mime} was not negotiated")))?;
        self.pt.store(pt, Ordering::Relaxed);
        Ok(pt)
    }

    /// Sends one encoded frame (H.264 Annex-B access unit, or one Opus packet) lasting
    /// `duration`; an audio frame's `audio_level` (RFC 6464: 0 loudest … 127 silence, in −dBov)
    /// goes on its packets. Waits while webrtc-rs's queue (256 packets) is full.
    pub async fn write_frame(
        &self,
        data: Bytes,
        duration: Duration,
        audio_level: Option<u8>,
    ) -> Result<(), TransportError> {
        let pt = self.payload_type().await?;
        let len = data.len() as u64;
        let sample = Sample {
            data,
            timestamp: Instant::now(),
            duration,
            packet_timestamp: 0,
            prev_dropped_packets: 0,
            prev_padding_packets: 0,
        };
        let Writer::Frames(track) = &self.track else {
            return Err(TransportError::Protocol(
                "a forwarding track takes RTP".into(),
            ));
        };
        let extension = match self.spec.kind {
            MediaKind::Audio => audio_level.map(|level| {
                HeaderExtension::AudioLevel(AudioLevelExtension {
                    level: level.min(127),
                    voice: level < VOICE_BELOW_LEVEL,
                })
            }),
            MediaKind::Video => Some(HeaderExtension::VideoOrientation(
                VideoOrientationExtension {
                    rotation: match self.rotation.load(Ordering::Relaxed) {
                        1 => VideoRotation::Degree90,
                        2 => VideoRotation::Degree180,
                        3 => VideoRotation::Degree270,
                        _ => VideoRotation::Degree0,
                    },
                    ..Default::default()
                },
            )),
        };
        track
            .write_sample(self.ssrc, pt, &sample, extension.as_slice())
            .await
            .map_err(webrtc_err)?;
        self.stats.frames.fetch_add(1, Ordering::Relaxed);
        self.stats.bytes.fetch_add(len, Ordering::Relaxed);
        Ok(())
    }

    /// Sends one ready RTP packet on a forwarding track (its SSRC and payload type should be
    /// this track's, [`ssrc`](Self::ssrc) and [`payload_type`](Self::payload_type); its
    /// header extensions under the IDs of [`FORWARDED_EXTENSIONS`]). Waits while webrtc-rs's
    /// queue is full.
    pub async fn write_rtp(&self, packet: &[u8]) -> Result<(), TransportError> {
        let Writer::Rtp(track) = &self.track else {
            return Err(TransportError::Protocol(
                "a frame track takes frames".into(),
            ));
        };
        let mut buf = packet;
        let mut pkt = rtp::Packet::unmarshal(&mut buf).map_err(webrtc_err)?;
        // Its header extensions carry the forwarder's IDs; this connection may give them
        // others, or not have them (its interceptors add what it uses itself, transport-cc).
        let map = self.extension_map().await?;
        rewrite_extensions(&mut pkt.header, map);
        let len = pkt.payload.len() as u64;
        track.write_rtp(pkt).await.map_err(webrtc_err)?;
        self.stats.packets.fetch_add(1, Ordering::Relaxed);
        self.stats.bytes.fetch_add(len, Ordering::Relaxed);
        Ok(())
    }

    /// The next request from the receiver (keyframe, bitrate cap); `None` once closed.
    pub async fn next_feedback(&self) -> Option<Feedback> {
        self.feedback.lock().await.recv().await
    }

    /// Frames and bytes sent.
    pub fn counters(&self) -> &TrackCounters {
        &self.stats
    }
}

/// Creates the local tracks of `specs` on `pc` (before the offer or answer is made).
pub(in crate::transport) async fn add_local_tracks(
    pc: &Arc<dyn PeerConnection>,
    specs: &[TrackSpec],
) -> Result<Vec<LocalTrack>, TransportError> {
    let mut out = Vec::with_capacity(specs.len());
    for spec in specs {
        let (kind, codec) = match spec.kind {
            MediaKind::Audio => (RtpCodecKind::Audio, opus_codec()),
            MediaKind::Video => (RtpCodecKind::Video, h264_codec()),
        };
        let ssrc = u32::from_be_bytes(crate::crypto::random_bytes::<4>()) | 1;
        let track = MediaStreamTrack::new(
            "peerns".into(),
            spec.name.clone(),
            spec.name.clone(),
            kind,
            vec![RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters {
                    ssrc: Some(ssrc),
                    ..Default::default()
                },
                codec: codec.clone(),
                ..Default::default()
            }],
        );
        let (track, local): (Writer, Arc<dyn TrackLocal>) = if spec.forward {
            let t = Arc::new(TrackLocalStaticRTP::new(track));
            (Writer::Rtp(t.clone()), t)
        } else {
            let t =
                Arc::new(TrackLocalStaticSample::new(Instant::now(), track).map_err(webrtc_err)?);
            (Writer::Frames(t.clone()), t)
        };
        let sender = pc.add_track(local.clone()).await.map_err(webrtc_err)?;
        let (tx, rx) = mpsc::channel(FEEDBACK_QUEUE);
        tokio::spawn(feedback_loop(local, tx));
        out.push(LocalTrack {
            spec: spec.clone(),
            ssrc,
            codec,
            track,
            sender,
            pt: Arc::new(AtomicU8::new(0)),
            extension_map: Arc::default(),
            rotation: Arc::default(),
            feedback: Arc::new(Mutex::new(rx)),
            stats: Arc::default(),
        });
    }
    Ok(out)
}

/// Turns the RTCP webrtc-rs routes to a local track into [`Feedback`]. Ends when the track is
/// unbound (connection closed) or nobody holds the track's feedback receiver.
async fn feedback_loop(track: Arc<dyn TrackLocal>, tx: mpsc::Sender<Feedback>) {
    // `poll` returns None until the track is bound to a negotiated sender.
    let mut waited = Duration::ZERO;
    loop {
        let Some(TrackLocalEvent::OnRtcpPacket(packets)) = track.poll().await else {
            if tx.is_closed() || waited > Duration::from_secs(30) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            waited += Duration::from_millis(50);
            continue;
        };
        waited = Duration::ZERO;
        for p in &packets {
            let any = p.as_any();
            let fb = if any
                .downcast_ref::<rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication>()
                .is_some()
                || any
                    .downcast_ref::<rtcp::payload_feedbacks::full_intra_request::FullIntraRequest>()
                    .is_some()
            {
                Some(Feedback::KeyframeRequest)
            } else {
                any.downcast_ref::<rtcp::payload_feedbacks::receiver_estimated_maximum_bitrate::ReceiverEstimatedMaximumBitrate>()
                    .map(|r| Feedback::ReceiverBitrate(r.bitrate as u64))
            };
            if let Some(fb) = fb
                && tx.try_send(fb).is_err()
                && tx.is_closed()
            {
                return;
            }
        }
    }
}
