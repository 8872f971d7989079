//! Authenticated sessions between two nodes over one data connection: a Noise XX handshake
//! (`Noise_XX_25519_AESGCM_SHA256`, via `snow` with ring's AEAD) whose X25519 static keys are certified by the
//! nodes' Ed25519 identity keys, with the connection's two DTLS certificate fingerprints in the
//! prologue. Sans-IO: the caller moves the three handshake messages and then the encrypted
//! frames. Why this construction: `docs/decisions/0005-session-handshake.md`.
//!
//! ```text
//! initiator → responder   e
//! responder → initiator   e, ee, s, es, {wire version, certificate}
//! initiator → responder   s, se, {wire version, certificate}
//! ```
//!
//! Both sides learn each other's [`WireVersion`] even when the majors differ: the initiator,
//! having read the responder's in message 2, still sends message 3, and then both
//! [`Handshake::finish`] calls return [`SessionError::Incompatible`]
//! (`docs/decisions/0009-wire-versioning.md`).

use ed25519_dalek::{Signature, VerifyingKey};
use zeroize::Zeroizing;

use crate::identity::{Fingerprint, Identity};

const PATTERN: &str = "Noise_XX_25519_AESGCM_SHA256";
/// Domain of the prologue (with the DTLS fingerprints).
const PROLOGUE_DOMAIN: &[u8] = b"peerns2/session/v1\0";
/// Domain of the identity's signature over the Noise static key.
const CERT_DOMAIN: &[u8] = b"peerns2/noise-static/v1\0";
const CERT_VERSION: u8 = 1;
const CERT_LEN: usize = 1 + 32 + 64;
/// Bytes of an encoded [`WireVersion`]: major, minor, features, big-endian.
const VERSION_LEN: usize = 2 + 2 + 8;
/// Feature bit 0: group frames (`groups::wire`, tags 30–39; decision 0011).
pub const FEATURE_GROUPS: u64 = 1;
/// Feature bit 1: call control frames (`chat::call_wire`, tags 40–49; decision 0013).
pub const FEATURE_CALLS: u64 = 1 << 1;
/// Feature bit 2: signed RPC frames (tags 50–59; decision 0014).
pub const FEATURE_RPC: u64 = 1 << 2;
/// Feature bit 3: group-call control frames (`calls::group::wire`, tags 60–69; decision 0016).
pub const FEATURE_GROUP_CALLS: u64 = 1 << 3;
/// Feature bit 4: who is speaking in a group call (`GroupCallFrame::Speakers`, tag 66;
/// decision 0016).
pub const FEATURE_CALL_SPEAKERS: u64 = 1 << 4;
/// Feature bit 5: several group messages in one frame (`groups::wire::MsgBatch`, tag 39;
/// decision 0011).
pub const FEATURE_GROUP_BATCH: u64 = 1 << 5;
/// Feature bit 6: files in groups, pulled in chunks over group links (`groups::files`, tags
/// 70–72; decision 0011).
pub const FEATURE_GROUP_FILES: u64 = 1 << 6;
/// Feature bit 7: two participants of a group call send media to each other directly, the
/// router only introducing them (`GroupCallFrame::Pair`, tag 67; decision 0016).
pub const FEATURE_CALL_PAIRS: u64 = 1 << 7;
/// Feature bit 8: a call's media state says how far its picture is turned
/// (`MediaState::rotation`, bits 4–5 of the state byte; decision 0013). Masked out for a peer
/// without it, whose state parser refuses unknown bits.
pub const FEATURE_VIDEO_ROTATION: u64 = 1 << 8;
/// Largest Noise message.
pub const MAX_FRAME: usize = 65_535;
/// Largest plaintext in one encrypted frame (a frame carries a 16-byte tag).
pub const MAX_PLAINTEXT: usize = MAX_FRAME - 16;

/// The session protocol a node speaks; the rules are in
/// `docs/decisions/0009-wire-versioning.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WireVersion {
    /// Bumped by changes an older node cannot handle; nodes with different majors refuse
    /// each other's sessions.
    pub major: u16,
    /// Bumped by additions an older node of the same major safely ignores.
    pub minor: u16,
    /// Optional capabilities, one bit each; a session uses the bits both sides set.
    pub features: u64,
}

impl WireVersion {
    /// What this build speaks.
    pub const CURRENT: WireVersion = WireVersion {
        major: 1,
        minor: 9,
        features: FEATURE_GROUPS
            | FEATURE_CALLS
            | FEATURE_RPC
            | FEATURE_GROUP_CALLS
            | FEATURE_CALL_SPEAKERS
            | FEATURE_GROUP_BATCH
            | FEATURE_GROUP_FILES
            | FEATURE_CALL_PAIRS
            | FEATURE_VIDEO_ROTATION,
    };

    /// Builds from before wire versioning, whose handshake payload was the bare certificate.
    pub const UNVERSIONED: WireVersion = WireVersion {
        major: 0,
        minor: 0,
        features: 0,
    };

    fn encode(&self) -> [u8; VERSION_LEN] {
        let mut b = [0u8; VERSION_LEN];
        b[..2].copy_from_slice(&self.major.to_be_bytes());
        b[2..4].copy_from_slice(&self.minor.to_be_bytes());
        b[4..].copy_from_slice(&self.features.to_be_bytes());
        b
    }

    /// Splits a handshake payload into the peer's version and what follows it.
    fn split(payload: &[u8]) -> Option<(WireVersion, &[u8])> {
        if payload.len() == CERT_LEN {
            return Some((Self::UNVERSIONED, payload));
        }
        let (head, rest) = payload.split_first_chunk::<VERSION_LEN>()?;
        let version = WireVersion {
            major: u16::from_be_bytes([head[0], head[1]]),
            minor: u16::from_be_bytes([head[2], head[3]]),
            features: u64::from_be_bytes(head[4..].try_into().ok()?),
        };
        Some((version, rest))
    }
}

impl std::fmt::Display for WireVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// Why a handshake or a frame failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SessionError {
    /// The peer speaks another major version; both sides get this error.
    #[error("incompatible wire version: we speak {ours}, the peer {theirs}")]
    Incompatible {
        /// Our version.
        ours: WireVersion,
        /// The version the peer announced.
        theirs: WireVersion,
    },
    /// A message arrived out of turn, or after the handshake failed.
    #[error("unexpected handshake message")]
    OutOfTurn,
    /// Noise rejected a message (wrong key, wrong prologue, tampering, replay).
    #[error("handshake failed: {0}")]
    Noise(String),
    /// The peer's certificate is malformed or its signature does not verify.
    #[error("bad identity certificate")]
    BadCertificate,
    /// A frame exceeds the size bounds.
    #[error("frame too large")]
    TooLarge,
    /// A frame did not decrypt (tampered, replayed, reordered or from another session).
    #[error("frame rejected")]
    Rejected,
}

impl From<snow::Error> for SessionError {
    fn from(e: snow::Error) -> Self {
        Self::Noise(e.to_string())
    }
}

/// The node's Noise static key for this run, with its identity certificate. Generated at start;
/// never stored (the certificate ties it to the long-term identity).
pub struct StaticKey {
    private: Zeroizing<Vec<u8>>,
    cert: [u8; CERT_LEN],
    version: WireVersion,
}

impl StaticKey {
    /// A fresh X25519 key certified by `identity`.
    pub fn generate(identity: &Identity) -> Result<Self, SessionError> {
        let kp = snow::Builder::new(params()).generate_keypair()?;
        let mut msg = CERT_DOMAIN.to_vec();
        msg.extend_from_slice(&kp.public);
        let sig = identity.sign(&msg).to_bytes();
        let mut cert = [0u8; CERT_LEN];
        cert[0] = CERT_VERSION;
        cert[1..33].copy_from_slice(identity.public_key().as_bytes());
        cert[33..].copy_from_slice(&sig);
        Ok(Self {
            private: Zeroizing::new(kp.private),
            cert,
            version: WireVersion::CURRENT,
        })
    }

    /// The same key announcing another wire version (to test mixed-version peers).
    #[cfg(test)]
    pub(crate) fn with_version(mut self, version: WireVersion) -> Self {
        self.version = version;
        self
    }

    /// The handshake payload of messages 2 and 3: our version, then our certificate.
    fn payload(&self) -> Vec<u8> {
        let mut p = self.version.encode().to_vec();
        p.extend_from_slice(&self.cert);
        p
    }
}

fn params() -> snow::params::NoiseParams {
    PATTERN.parse().expect("a valid Noise pattern name")
}

/// The prologue both sides must agree on: our domain and the DTLS certificate fingerprints of the
/// connection, the initiator's first. A handshake relayed onto another connection (a different
/// DTLS session) fails.
fn prologue(initiator_dtls: &str, responder_dtls: &str) -> Vec<u8> {
    let mut p = PROLOGUE_DOMAIN.to_vec();
    for fp in [initiator_dtls, responder_dtls] {
        let b = fp.trim().to_ascii_uppercase().into_bytes();
        p.extend_from_slice(&(b.len() as u16).to_be_bytes());
        p.extend_from_slice(&b);
    }
    p
}

/// Checks a certificate against the Noise static key the peer proved it holds.
fn verify_cert(cert: &[u8], remote_static: &[u8]) -> Result<VerifyingKey, SessionError> {
    if cert.len() != CERT_LEN || cert[0] != CERT_VERSION {
        return Err(SessionError::BadCertificate);
    }
    let key = VerifyingKey::from_bytes(
        cert[1..33]
            .try_into()
            .map_err(|_| SessionError::BadCertificate)?,
    )
    .map_err(|_| SessionError::BadCertificate)?;
    let sig = Signature::from_bytes(
        cert[33..]
            .try_into()
            .map_err(|_| SessionError::BadCertificate)?,
    );
    let mut msg = CERT_DOMAIN.to_vec();
    msg.extend_from_slice(remote_static);
    key.verify_strict(&msg, &sig)
        .map_err(|_| SessionError::BadCertificate)?;
    Ok(key)
}

/// Reads the peer's version and certificate from its message 2 or 3. With another major the
/// rest may be laid out differently: the identity is then taken only if it verifies (`None`
/// otherwise), and the handshake goes on so that the peer learns our version too.
fn read_payload(
    payload: &[u8],
    remote_static: &[u8],
    ours: WireVersion,
) -> Result<(WireVersion, Option<VerifyingKey>), SessionError> {
    let (theirs, rest) = WireVersion::split(payload).ok_or(SessionError::BadCertificate)?;
    let cert = rest.get(..CERT_LEN);
    if theirs.major != ours.major {
        return Ok((
            theirs,
            cert.and_then(|c| verify_cert(c, remote_static).ok()),
        ));
    }
    // Bytes after the certificate are additions of a later minor version: ignored.
    let cert = cert.ok_or(SessionError::BadCertificate)?;
    Ok((theirs, Some(verify_cert(cert, remote_static)?)))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Our turn to write.
    Write,
    /// Waiting for the peer's message.
    Read,
    Done,
    Failed,
}

/// One side of a handshake in progress.
pub struct Handshake {
    state: Option<snow::HandshakeState>,
    step: Step,
    initiator: bool,
    written: u8,
    payload: Vec<u8>,
    ours: WireVersion,
    theirs: Option<WireVersion>,
    remote: Option<VerifyingKey>,
}

impl Handshake {
    /// The side that opened the data connection. `initiator_dtls` / `responder_dtls` are the
    /// DTLS certificate fingerprints (from the SDPs) of the two ends of this connection.
    pub fn initiator(
        key: &StaticKey,
        initiator_dtls: &str,
        responder_dtls: &str,
    ) -> Result<Self, SessionError> {
        Self::build(key, initiator_dtls, responder_dtls, true)
    }

    /// The side that accepted the data connection.
    pub fn responder(
        key: &StaticKey,
        initiator_dtls: &str,
        responder_dtls: &str,
    ) -> Result<Self, SessionError> {
        Self::build(key, initiator_dtls, responder_dtls, false)
    }

    fn build(
        key: &StaticKey,
        initiator_dtls: &str,
        responder_dtls: &str,
        initiator: bool,
    ) -> Result<Self, SessionError> {
        let prologue = prologue(initiator_dtls, responder_dtls);
        let builder = snow::Builder::new(params())
            .local_private_key(&key.private)?
            .prologue(&prologue)?;
        let state = if initiator {
            builder.build_initiator()?
        } else {
            builder.build_responder()?
        };
        Ok(Self::new(state, initiator, key))
    }

    fn new(state: snow::HandshakeState, initiator: bool, key: &StaticKey) -> Self {
        Self {
            state: Some(state),
            step: if initiator { Step::Write } else { Step::Read },
            initiator,
            written: 0,
            payload: key.payload(),
            ours: key.version,
            theirs: None,
            remote: None,
        }
    }

    /// Whether we must send next.
    pub fn wants_write(&self) -> bool {
        self.step == Step::Write
    }

    /// Whether the handshake is complete (call [`Handshake::finish`]).
    pub fn is_done(&self) -> bool {
        self.step == Step::Done
    }

    fn fail<T>(&mut self, e: SessionError) -> Result<T, SessionError> {
        self.step = Step::Failed;
        self.state = None;
        Err(e)
    }

    /// Our next handshake message.
    pub fn write(&mut self) -> Result<Vec<u8>, SessionError> {
        if self.step != Step::Write {
            return self.fail(SessionError::OutOfTurn);
        }
        let Some(state) = self.state.as_mut() else {
            return self.fail(SessionError::OutOfTurn);
        };
        // Version and certificate ride in the messages that carry our (encrypted) static key:
        // the responder's first and the initiator's second.
        let payload: &[u8] = if self.initiator && self.written == 0 {
            &[]
        } else {
            &self.payload
        };
        self.written += 1;
        let mut out = vec![0u8; MAX_FRAME];
        let n = match state.write_message(payload, &mut out) {
            Ok(n) => n,
            Err(e) => return self.fail(e.into()),
        };
        out.truncate(n);
        self.step = if state.is_handshake_finished() {
            Step::Done
        } else {
            Step::Read
        };
        Ok(out)
    }

    /// Takes the peer's handshake message.
    pub fn read(&mut self, msg: &[u8]) -> Result<(), SessionError> {
        if self.step != Step::Read {
            return self.fail(SessionError::OutOfTurn);
        }
        if msg.len() > MAX_FRAME {
            return self.fail(SessionError::TooLarge);
        }
        let Some(state) = self.state.as_mut() else {
            return self.fail(SessionError::OutOfTurn);
        };
        let mut payload = vec![0u8; MAX_FRAME];
        let n = match state.read_message(msg, &mut payload) {
            Ok(n) => n,
            Err(e) => return self.fail(e.into()),
        };
        if let Some(remote_static) = state.get_remote_static() {
            if self.theirs.is_none() {
                match read_payload(&payload[..n], remote_static, self.ours) {
                    Ok((theirs, remote)) => {
                        self.theirs = Some(theirs);
                        self.remote = remote;
                    }
                    Err(e) => return self.fail(e),
                }
            }
        } else if n != 0 {
            return self.fail(SessionError::BadCertificate);
        }
        self.step = if state.is_handshake_finished() {
            Step::Done
        } else {
            Step::Write
        };
        Ok(())
    }

    /// The identity the peer proved so far (after its certificate verified), also when the
    /// handshake ends in [`SessionError::Incompatible`].
    pub fn remote_fingerprint(&self) -> Option<Fingerprint> {
        self.remote.as_ref().map(Fingerprint::of)
    }

    /// The established session: the peer's verified identity and the frame ciphers. Fails
    /// with [`SessionError::Incompatible`] if the peer speaks another major version.
    pub fn finish(mut self) -> Result<Session, SessionError> {
        let (Step::Done, Some(state), Some(theirs)) = (self.step, self.state.take(), self.theirs)
        else {
            return Err(SessionError::OutOfTurn);
        };
        if theirs.major != self.ours.major {
            return Err(SessionError::Incompatible {
                ours: self.ours,
                theirs,
            });
        }
        let remote = self.remote.ok_or(SessionError::BadCertificate)?;
        let mut hash = [0u8; 32];
        hash.copy_from_slice(state.get_handshake_hash());
        Ok(Session {
            transport: state.into_transport_mode()?,
            remote,
            hash,
            theirs,
            features: self.ours.features & theirs.features,
        })
    }
}

/// An authenticated, encrypted session (forward secret: the keys come from ephemeral DH).
pub struct Session {
    transport: snow::TransportState,
    remote: VerifyingKey,
    hash: [u8; 32],
    theirs: WireVersion,
    features: u64,
}

impl Session {
    /// The peer's identity key.
    pub fn remote_key(&self) -> VerifyingKey {
        self.remote
    }

    /// The peer's identity fingerprint.
    pub fn remote_fingerprint(&self) -> Fingerprint {
        Fingerprint::of(&self.remote)
    }

    /// The wire version the peer announced (same major as ours).
    pub fn peer_version(&self) -> WireVersion {
        self.theirs
    }

    /// The features both sides support: the bits both versions set.
    pub fn features(&self) -> u64 {
        self.features
    }

    /// The handshake hash: unique to this session, for binding further signatures to it.
    pub fn binding(&self) -> [u8; 32] {
        self.hash
    }

    /// Encrypts one frame (frames must be read in the order they were written).
    pub fn encrypt(&mut self, plaintext: &[u8]) -> Result<Vec<u8>, SessionError> {
        if plaintext.len() > MAX_PLAINTEXT {
            return Err(SessionError::TooLarge);
        }
        let mut out = vec![0u8; plaintext.len() + 16];
        let n = self.transport.write_message(plaintext, &mut out)?;
        out.truncate(n);
        Ok(out)
    }

    /// Decrypts the next frame.
    pub fn decrypt(&mut self, frame: &[u8]) -> Result<Vec<u8>, SessionError> {
        if frame.len() > MAX_FRAME || frame.len() < 16 {
            return Err(SessionError::TooLarge);
        }
        let mut out = vec![0u8; frame.len()];
        let n = self
            .transport
            .read_message(frame, &mut out)
            .map_err(|_| SessionError::Rejected)?;
        out.truncate(n);
        Ok(out)
    }
}

#[cfg(test)]
mod tests;
