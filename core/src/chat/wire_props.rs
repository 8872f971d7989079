//! Property tests of session framing: every frame round-trips through `encode`/`decode`, no
//! prefix or extension of an encoding decodes, and any sequence of frames survives a session
//! (Noise transport after a real handshake) in order, while a tampered one never does.

use proptest::collection::vec;
use proptest::prelude::*;

use super::call_wire::{CallFrame, DtlsFingerprint, Kinds, MAX_MEDIA_ID, MediaState};
use super::wire::{ErrorCode, Frame, Id, MAX_CHUNK, MAX_DATA, MAX_MANIFEST, MAX_TEXT, Op, OpKind};
use crate::identity::Identity;
use crate::session::{Handshake, Session, StaticKey};

/// Text of up to `max_chars` characters (any scalar value, so up to 4 bytes each).
fn text(max_chars: usize) -> impl Strategy<Value = String> {
    vec(any::<char>(), 0..=max_chars).prop_map(String::from_iter)
}

/// Bytes of small lengths mostly, and now and then any length up to `max`.
fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![4 => vec(any::<u8>(), 0..64), 1 => vec(any::<u8>(), 0..=max)]
}

fn error_code() -> impl Strategy<Value = ErrorCode> {
    prop_oneof![
        Just(ErrorCode::Malformed),
        Just(ErrorCode::NotAllowed),
        Just(ErrorCode::Forged),
        Just(ErrorCode::Throttled),
        Just(ErrorCode::Other),
        Just(ErrorCode::NotContact),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let kind_target_body = prop_oneof![
        text(MAX_TEXT / 4).prop_map(|t| (OpKind::Text, None, t.into_bytes())),
        (any::<Id>(), text(64)).prop_map(|(id, t)| (OpKind::Edit, Some(id), t.into_bytes())),
        (any::<Id>(), text(8)).prop_map(|(id, t)| (OpKind::Delete, Some(id), t.into_bytes())),
        vec(any::<u8>(), 0..=MAX_MANIFEST).prop_map(|b| (OpKind::File, None, b)),
    ];
    (
        any::<[u8; 32]>(),
        any::<[u8; 32]>(),
        any::<u64>(),
        any::<Id>(),
        kind_target_body,
        any::<u64>(),
    )
        .prop_map(|(from, to, seq, id, (kind, target, body), sent_ms)| Op {
            from,
            to,
            seq,
            id,
            kind,
            target,
            sent_ms,
            body,
        })
}

/// Any call control frame within its bounds.
fn call_frame() -> impl Strategy<Value = CallFrame> {
    let kinds = || (0u8..8).prop_map(|b| Kinds::from_bits(b).unwrap());
    let dtls = || any::<[u8; 32]>().prop_map(DtlsFingerprint);
    let media_id =
        proptest::string::string_regex(&format!("[A-Za-z0-9_-]{{1,{MAX_MEDIA_ID}}}")).unwrap();
    let state = (
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        0u16..4,
    )
        .prop_map(
            |(muted, camera_off, screen, back_camera, quarter)| MediaState {
                muted,
                camera_off,
                screen,
                back_camera,
                rotation: quarter * 90,
            },
        );
    let call = any::<[u8; 16]>;
    prop_oneof![
        (call(), (1u8..8), media_id, dtls()).prop_map(|(call, k, media_id, dtls)| {
            CallFrame::Ring {
                call,
                kinds: Kinds::from_bits(k).unwrap(),
                media_id,
                dtls,
            }
        }),
        call().prop_map(|call| CallFrame::Ringing { call }),
        (call(), kinds(), dtls()).prop_map(|(call, kinds, dtls)| CallFrame::Accept {
            call,
            kinds,
            dtls
        }),
        call().prop_map(|call| CallFrame::Decline { call }),
        call().prop_map(|call| CallFrame::Busy { call }),
        call().prop_map(|call| CallFrame::Cancel { call }),
        call().prop_map(|call| CallFrame::HangUp { call }),
        (call(), state).prop_map(|(call, state)| CallFrame::Media { call, state }),
    ]
}

/// Any frame within the protocol's bounds.
pub(crate) fn frame() -> impl Strategy<Value = Frame> {
    // Names and error texts from peers decode sanitized (`crate::text`): generate clean ones so
    // that they round-trip exactly; an `Ack` of `u64::MAX` is refused (it cannot be followed).
    let name = || text(64).prop_map(|n| crate::text::display_name(&n));
    prop_oneof![
        name().prop_map(|name| Frame::Hello { name }),
        name().prop_map(|name| Frame::Request { name }),
        name().prop_map(|name| Frame::Accept { name }),
        op().prop_map(Frame::Op),
        (0..u64::MAX, any::<bool>()).prop_map(|(seq, resync)| Frame::Ack { seq, resync }),
        any::<u64>().prop_map(|seq| Frame::Read { seq }),
        any::<u64>().prop_map(|nonce| Frame::Ping { nonce }),
        any::<u64>().prop_map(|nonce| Frame::Pong { nonce }),
        any::<[u8; 32]>().prop_map(Frame::PresenceSecret),
        bytes(MAX_DATA).prop_map(Frame::Data),
        (error_code(), text(128)).prop_map(|(code, text)| Frame::Error {
            code,
            text: crate::text::line(&text, 512)
        }),
        (any::<Id>(), any::<u64>()).prop_map(|(id, index)| Frame::FileResume { id, index }),
        (any::<Id>(), any::<u64>(), bytes(MAX_CHUNK))
            .prop_map(|(id, index, data)| Frame::FileChunk { id, index, data }),
        (any::<Id>(), any::<u64>()).prop_map(|(id, index)| Frame::FileAck { id, index }),
        (any::<Id>(), any::<bool>()).prop_map(|(id, ok)| Frame::FileDone { id, ok }),
        call_frame().prop_map(Frame::Call),
        (any::<u64>(), any::<u64>(), bytes(MAX_CHUNK)).prop_map(|(upload, offset, data)| {
            Frame::RpcChunk {
                upload,
                offset,
                data,
            }
        }),
        (any::<u64>(), any::<u64>(), any::<u16>(), text(128)).prop_map(
            |(upload, written, code, text)| Frame::RpcUploadState {
                upload,
                written,
                code,
                text: crate::text::line(&text, 512),
            }
        ),
        any::<u8>().prop_map(|below_db| Frame::RpcSoundAlert { below_db }),
    ]
}

/// A session pair after a real Noise XX handshake.
fn sessions() -> (Session, Session) {
    let a = StaticKey::generate(&Identity::generate()).unwrap();
    let b = StaticKey::generate(&Identity::generate()).unwrap();
    let mut i = Handshake::initiator(&a, "AA:01", "BB:02").unwrap();
    let mut r = Handshake::responder(&b, "AA:01", "BB:02").unwrap();
    r.read(&i.write().unwrap()).unwrap();
    i.read(&r.write().unwrap()).unwrap();
    r.read(&i.write().unwrap()).unwrap();
    (i.finish().unwrap(), r.finish().unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn frames_round_trip(f in frame()) {
        let bytes = f.encode();
        prop_assert_eq!(Frame::decode(&bytes), Ok(f));
    }

    #[test]
    fn call_frames_round_trip(f in call_frame()) {
        let f = Frame::Call(f);
        prop_assert_eq!(Frame::decode(&f.encode()), Ok(f));
    }

    #[test]
    fn any_bytes_in_the_calls_range_never_panic(t in 40u8..50, body in vec(any::<u8>(), 0..128)) {
        let mut b = vec![t];
        b.extend_from_slice(&body);
        // Decoding either fails or yields a frame that encodes back to the same bytes.
        if let Ok(f) = Frame::decode(&b) {
            prop_assert_eq!(f.encode(), b);
        }
    }

    #[test]
    fn no_prefix_or_extension_decodes(f in frame(), cut in any::<prop::sample::Index>(), extra in any::<u8>()) {
        let bytes = f.encode();
        let cut = cut.index(bytes.len());
        prop_assert!(Frame::decode(&bytes[..cut]).is_err());
        let mut longer = bytes;
        longer.push(extra);
        prop_assert!(Frame::decode(&longer).is_err());
    }
}

proptest! {
    // Each case runs a handshake; fewer cases, each with a whole sequence of frames.
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn frame_sequences_survive_a_session(
        frames in vec(frame(), 1..12),
        tamper in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let (mut a, mut b) = sessions();
        for (n, f) in frames.iter().enumerate() {
            // Alternate directions: both cipher states advance.
            let (tx, rx) = if n % 2 == 0 { (&mut a, &mut b) } else { (&mut b, &mut a) };
            let sealed = tx.encrypt(&f.encode()).unwrap();
            let mut bad = sealed.clone();
            let at = tamper.index(bad.len());
            bad[at] ^= 1 << bit;
            prop_assert!(rx.decrypt(&bad).is_err());
            prop_assert!(rx.decrypt(&sealed[..sealed.len() - 1]).is_err());
            let plain = rx.decrypt(&sealed).unwrap();
            prop_assert_eq!(&Frame::decode(&plain).unwrap(), f);
            // A replay of the frame just accepted is refused.
            prop_assert!(rx.decrypt(&sealed).is_err());
        }
    }
}
