//! The rule that binds a media connection to a call the session announced. The signaling server
//! relays media OFFERs and ANSWERs and could forge or swap them; the Noise session cannot be
//! forged. So the caller's ring names the PeerJS connection ID of its OFFER and the DTLS
//! certificate fingerprint in it, and the callee's accept names the DTLS fingerprint of its
//! ANSWER. Each side takes only the media connection that matches: DTLS then proves that the
//! media flows between the two certificates the contacts announced, end to end.

use crate::chat::call_wire::DtlsFingerprint;

/// Why a media connection is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BindError {
    /// No call announced this connection (or the call is not answered yet).
    #[error("no call announced this media connection")]
    NotAnnounced,
    /// The SDP has no usable SHA-256 DTLS fingerprint.
    #[error("the media connection has no SHA-256 DTLS fingerprint")]
    NoFingerprint,
    /// The DTLS fingerprint is not the one the session announced.
    #[error("the DTLS fingerprint is not the one the call announced")]
    WrongFingerprint,
}

/// The callee's check of a media OFFER: its connection ID and DTLS fingerprint (SDP form,
/// `sha-256 AB:…`) must be those the ring announced.
pub fn check_offer(
    announced_id: &str,
    announced_dtls: &DtlsFingerprint,
    connection_id: &str,
    offer_dtls: &str,
) -> Result<(), BindError> {
    if connection_id != announced_id {
        return Err(BindError::NotAnnounced);
    }
    check_dtls(announced_dtls, offer_dtls)
}

/// Either side's check of the peer's DTLS fingerprint (SDP form) against the announced one;
/// the caller checks the ANSWER with it.
pub fn check_dtls(announced: &DtlsFingerprint, sdp_form: &str) -> Result<(), BindError> {
    let got = DtlsFingerprint::parse(sdp_form).ok_or(BindError::NoFingerprint)?;
    if &got == announced {
        Ok(())
    } else {
        Err(BindError::WrongFingerprint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_announced_offer_binds() {
        let dtls = DtlsFingerprint([7; 32]);
        let sdp = dtls.to_string();
        assert_eq!(check_offer("mc_a", &dtls, "mc_a", &sdp), Ok(()));
        assert_eq!(
            check_offer("mc_a", &dtls, "mc_b", &sdp),
            Err(BindError::NotAnnounced)
        );
        let other = DtlsFingerprint([8; 32]).to_string();
        assert_eq!(
            check_offer("mc_a", &dtls, "mc_a", &other),
            Err(BindError::WrongFingerprint)
        );
        assert_eq!(
            check_offer("mc_a", &dtls, "mc_a", "sha-1 AA:BB"),
            Err(BindError::NoFingerprint)
        );
        assert_eq!(check_dtls(&dtls, &sdp.to_lowercase()), Ok(()));
        assert_eq!(check_dtls(&dtls, ""), Err(BindError::NoFingerprint));
    }
}
