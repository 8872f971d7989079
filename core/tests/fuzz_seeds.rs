//! Writes the fuzz seed corpora (`fuzz/corpus/<target>/`) from real messages made by the
//! crate's own encoders, and checks that each seed is accepted by the parser it seeds (so a seed
//! goes stale loudly, not silently). Ignored by default; regenerate with
//! `cargo test -p peerns-core --test fuzz_seeds -- --ignored`.
//!
//! The layouts of the multi-part inputs (a leading selector byte, `u16`-length-prefixed frames)
//! are the ones the targets in `fuzz/fuzz_targets/` read.

use std::num::NonZeroU32;
use std::path::PathBuf;

use peerns_core::chat::file::Manifest;
use peerns_core::chat::wire::{ErrorCode, Frame, Op, OpKind};
use peerns_core::contacts::ShareLink;
use peerns_core::discovery::msg::Msg;
use peerns_core::discovery::presence::{GeoStamp, Presence, SignedPresence, VerifyCache};
use peerns_core::discovery::public_ip::parse_response;
use peerns_core::groups::GroupId;
use peerns_core::groups::wire::RefuseCode;
use peerns_core::groups::{
    Body, GroupFrame, GroupMessage, InviteLink, Log, LogOp, SignedMessage, VersionVector,
};
use peerns_core::identity::Identity;
use peerns_core::signaling::protocol::Message;
use peerns_core::transport::binarypack::{PackValue, pack, unpack};
use peerns_core::transport::chunking::chunk;
use peerns_core::transport::codec::{Codec, Payload};
use peerns_core::transport::payload::{
    AnswerPayload, CandidatePayload, OfferPayload, Serialization, parse,
};
use serde_json::{Value, json};

/// Writes `bytes` as seed `name` of `target`.
fn seed(target: &str, name: &str, bytes: &[u8]) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), bytes).unwrap();
}

/// `u16`-length-prefixed frames after `head` (the fuzz crate's `frames` layout).
fn framed(head: &[u8], frames: &[Vec<u8>]) -> Vec<u8> {
    let mut out = head.to_vec();
    for f in frames {
        out.extend_from_slice(&u16::try_from(f.len()).unwrap().to_be_bytes());
        out.extend_from_slice(f);
    }
    out
}

/// The manifest signer of the `manifest` target.
fn file_sender() -> Identity {
    Identity::from_secret(&[7; 32], "fuzz")
}

fn presence(id: &Identity, disc: &str, geo: Option<GeoStamp>, note: &[u8]) -> SignedPresence {
    SignedPresence::sign(
        id,
        Presence {
            namespace: "peerns2-ns-climbing".into(),
            disc_id: disc.into(),
            key: [0; 32],
            issued_ms: 1_764_700_000_000,
            name: "Ada ✓".into(),
            geo,
            note: note.to_vec(),
        },
    )
}

fn manifest_body() -> Vec<u8> {
    Manifest {
        id: [0x42; 16],
        name: "holiday photo.jpg".into(),
        size: 150_000,
        mime: "image/jpeg".into(),
        hash: *blake3::hash(b"contents").as_bytes(),
        chunk_size: 60 * 1024,
    }
    .sign(&file_sender())
}

fn frames() -> Vec<(&'static str, Frame)> {
    let a = Identity::from_secret(&[1; 32], "a").fingerprint().0;
    let b = Identity::from_secret(&[2; 32], "b").fingerprint().0;
    let op = |kind, target, body: &[u8]| {
        Frame::Op(Op {
            from: a,
            to: b,
            seq: 7,
            id: [9; 16],
            kind,
            target,
            sent_ms: 1_764_700_000_000,
            body: body.to_vec(),
        })
    };
    vec![
        ("hello", Frame::Hello { name: "Ada".into() }),
        ("request", Frame::Request { name: "Ada".into() }),
        ("accept", Frame::Accept { name: "Bob".into() }),
        ("op-text", op(OpKind::Text, None, "hi there 👋".as_bytes())),
        ("op-edit", op(OpKind::Edit, Some([8; 16]), b"hi there!")),
        ("op-delete", op(OpKind::Delete, Some([8; 16]), b"")),
        ("op-file", op(OpKind::File, None, &manifest_body())),
        (
            "ack",
            Frame::Ack {
                seq: 7,
                resync: false,
            },
        ),
        (
            "ack-resync",
            Frame::Ack {
                seq: 3,
                resync: true,
            },
        ),
        ("read", Frame::Read { seq: 7 }),
        ("ping", Frame::Ping { nonce: 0x0123_4567 }),
        ("pong", Frame::Pong { nonce: 0x0123_4567 }),
        (
            "data",
            Frame::Data(b"{\"app\":\"chess\",\"move\":\"e4\"}".to_vec()),
        ),
        (
            "error",
            Frame::Error {
                code: ErrorCode::NotContact,
                text: "not a contact".into(),
            },
        ),
        (
            "file-resume",
            Frame::FileResume {
                id: [0x42; 16],
                index: 1,
            },
        ),
        (
            "file-chunk",
            Frame::FileChunk {
                id: [0x42; 16],
                index: 0,
                data: vec![0xd8; 300],
            },
        ),
        (
            "file-ack",
            Frame::FileAck {
                id: [0x42; 16],
                index: 1,
            },
        ),
        (
            "rpc-chunk",
            Frame::RpcChunk {
                upload: 1,
                offset: 61_440,
                data: vec![0xd8; 300],
            },
        ),
        ("rpc-sound-alert", Frame::RpcSoundAlert { below_db: 12 }),
        (
            "rpc-upload-state",
            Frame::RpcUploadState {
                upload: 1,
                written: 1 << 20,
                code: 100,
                text: String::new(),
            },
        ),
        (
            "file-done",
            Frame::FileDone {
                id: [0x42; 16],
                ok: true,
            },
        ),
    ]
}

/// Real signaling frames as `peer` 1.0.2 relays them (recorded in the toolchain report §7).
fn signaling_frames() -> Vec<(&'static str, Value)> {
    let sdp = "v=0\r\no=- 4893226491957203041 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
        a=group:BUNDLE 0\r\na=msid-semantic: WMS\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n\
        c=IN IP4 0.0.0.0\r\na=ice-ufrag:Xq9m\r\na=ice-pwd:p3mJ0m4Yh0kQ8d1g2Vb6Yx3Z\r\n\
        a=ice-options:trickle\r\na=fingerprint:sha-256 3C:4F:8A:11:90:2B:7E:D5:66:01:AF:9C:20:\
        43:BE:71:0D:58:E2:C7:19:A4:66:3F:80:5D:12:EE:37:B0:C9:44\r\na=setup:actpass\r\na=mid:0\r\n\
        a=sctp-port:5000\r\na=max-message-size:262144\r\n";
    let offer = json!({"sdp":{"type":"offer","sdp":sdp},"type":"data","connectionId":"dc_test123",
        "metadata":null,"label":"dc_test123","reliable":true,"serialization":"binary"});
    let answer =
        json!({"sdp":{"type":"answer","sdp":sdp},"type":"data","connectionId":"dc_test123"});
    let candidate = json!({"candidate":{"candidate":"candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host",
        "sdpMid":"0","sdpMLineIndex":0},"type":"data","connectionId":"dc_test123"});
    vec![
        ("open", json!({"type":"OPEN"})),
        (
            "id-taken",
            json!({"type":"ID-TAKEN","payload":{"msg":"ID is taken"}}),
        ),
        (
            "error",
            json!({"type":"ERROR","payload":{"msg":"Invalid key provided"}}),
        ),
        ("heartbeat", json!({"type":"HEARTBEAT"})),
        (
            "offer",
            json!({"type":"OFFER","src":"abc","dst":"def","payload":offer}),
        ),
        (
            "answer",
            json!({"type":"ANSWER","src":"def","dst":"abc","payload":answer}),
        ),
        (
            "candidate",
            json!({"type":"CANDIDATE","src":"abc","dst":"def","payload":candidate}),
        ),
        ("leave", json!({"type":"LEAVE","src":"abc","dst":"def"})),
        ("expire", json!({"type":"EXPIRE","src":"ghost","dst":"abc"})),
    ]
}

/// A STUN Binding success response (RFC 8489) with the given IPv4 attributes.
fn stun_response(txid: &[u8; 12], attrs: &[(u16, [u8; 4])]) -> Vec<u8> {
    let mut body = Vec::new();
    // SOFTWARE first, as coturn sends it: an attribute the parser must skip.
    body.extend_from_slice(&[0x80, 0x22, 0, 6]);
    body.extend_from_slice(b"Coturn\0\0");
    for (kind, ip) in attrs {
        let port: u16 = 50_000;
        let (port, ip) = if *kind == 0x0020 {
            let c = 0x2112_A442u32.to_be_bytes();
            (
                port ^ 0x2112,
                [ip[0] ^ c[0], ip[1] ^ c[1], ip[2] ^ c[2], ip[3] ^ c[3]],
            )
        } else {
            (port, *ip)
        };
        body.extend_from_slice(&kind.to_be_bytes());
        body.extend_from_slice(&[0, 8, 0, 1]);
        body.extend_from_slice(&port.to_be_bytes());
        body.extend_from_slice(&ip);
    }
    let mut m = vec![0x01, 0x01];
    m.extend_from_slice(&u16::try_from(body.len()).unwrap().to_be_bytes());
    m.extend_from_slice(&0x2112_A442u32.to_be_bytes());
    m.extend_from_slice(txid);
    m.extend_from_slice(&body);
    m
}

#[test]
#[ignore = "writes fuzz/corpus; run by hand when a wire format changes"]
fn write_fuzz_seeds() {
    let cache = VerifyCache::default();

    for (name, f) in frames() {
        let bytes = f.encode();
        assert_eq!(Frame::decode(&bytes), Ok(f));
        seed("frame", name, &bytes);
        // The same frames, encrypted: the `session` target's records (mode 1 = encrypt).
        seed(
            "session",
            name,
            &framed(&[], &[[&[1u8][..], &bytes].concat()]),
        );
    }
    seed(
        "session",
        "forged",
        &framed(&[], &[vec![0; 40], [&[3u8][..], b"x"].concat()]),
    );

    let ada = Identity::from_secret(&[1; 32], "ada");
    let bob = Identity::from_secret(&[2; 32], "bob");
    let geo = GeoStamp {
        lat: 38.115,
        lon: 13.3614,
        accuracy_m: 12.0,
    };
    let records = [
        ("plain", presence(&ada, "peerns2-ns-climbing-d1", None, b"")),
        (
            "geo",
            presence(&bob, "peerns2-ns-climbing-d2", Some(geo), b""),
        ),
        (
            "note",
            presence(&ada, "peerns2-ns-climbing-d3", None, &[0xab; 48]),
        ),
    ];
    for (name, r) in &records {
        assert!(SignedPresence::decode(&r.encode(), &cache).is_ok());
        seed("presence", name, &r.encode());
    }
    let rec = |i: usize| records[i].1.clone();
    let msgs = [
        ("check-in", Msg::CheckIn(Box::new(rec(1)))),
        (
            "welcome",
            Msg::Welcome {
                level: 2,
                records: vec![(0, rec(0)), (1, rec(1))],
                last: true,
            },
        ),
        (
            "delta",
            Msg::Delta {
                added: vec![(5, rec(2))],
                removed: vec!["peerns2-ns-x-d9".into()],
            },
        ),
        ("beat", Msg::Beat),
        ("leave", Msg::Leave),
        ("migrate", Msg::Migrate { level: 1 }),
        ("reverse-welcome", Msg::ReverseWelcome { level: 0 }),
        (
            "refused",
            Msg::Refused {
                reason: "stale record".into(),
            },
        ),
        ("relevel", Msg::Relevel { level: 3 }),
        ("pace", Msg::Pace { ms: 30_000 }),
    ];
    for (name, m) in &msgs {
        assert_eq!(Msg::decode(&m.encode(), &cache).as_ref(), Ok(m));
        seed("msg", name, &m.encode());
    }

    let body = manifest_body();
    assert!(Manifest::verify(&body, &file_sender().public_key(), &[0x42; 16]).is_ok());
    seed("manifest", "photo", &body);

    // Codec: a serialization byte (0 raw, 1 json, 2 binary), then the frames of real messages.
    let chat = json!({"seq": 7, "text": "héllo", "nested": [1, 2.5, null, true]});
    let big = Payload::Bytes((0..40_000u32).map(|i| (i % 251) as u8).collect());
    let cases = [
        (
            "raw-json",
            0,
            Serialization::Raw,
            Payload::Json(chat.clone()),
        ),
        (
            "raw-bytes",
            0,
            Serialization::Raw,
            Payload::Bytes(vec![0, 1, 2, 255]),
        ),
        ("json", 1, Serialization::Json, Payload::Json(chat.clone())),
        ("binary-json", 2, Serialization::Binary, Payload::Json(chat)),
        ("binary-chunked", 2, Serialization::Binary, big),
    ];
    for (name, ser_byte, ser, payload) in cases {
        let frames = Codec::new(ser).encode(&payload).unwrap();
        let mut rx = Codec::new(ser);
        let decoded: Vec<_> = frames.iter().map(|f| rx.decode(f).unwrap()).collect();
        assert_eq!(decoded.last(), Some(&Some(payload)));
        seed("codec", name, &framed(&[ser_byte], &frames));
    }

    // Chunking: limit bytes, then the chunk frames of a real message (out of order).
    let packed = pack(&PackValue::Str("é".repeat(20_000)));
    let mut chunks = chunk(NonZeroU32::new(1).unwrap(), &packed);
    chunks.swap(0, 2);
    seed("chunking", "three-chunks", &framed(&[7, 3], &chunks));
    let close = pack(&PackValue::Map(vec![(
        PackValue::Str("__peerData".into()),
        PackValue::Map(vec![(
            PackValue::Str("type".into()),
            PackValue::Str("close".into()),
        )]),
    )]));
    seed(
        "chunking",
        "close",
        &framed(&[1, 1], &[close.clone(), chunks[1].clone()]),
    );

    // BinaryPack: the vectors recorded from peerjs-js-binarypack, and a chunk and a close frame.
    let vectors: Value =
        serde_json::from_str(include_str!("fixtures/binarypack/vectors.json")).unwrap();
    for v in vectors["roundtrip"].as_array().unwrap() {
        if let Some(hex) = v["hex"].as_str() {
            let bytes = hex::decode(hex).unwrap();
            if unpack(&bytes).is_ok() {
                let name: String = v["name"]
                    .as_str()
                    .unwrap()
                    .chars()
                    .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
                    .collect();
                seed("binarypack", &format!("js-{name}"), &bytes);
            }
        }
    }
    seed("binarypack", "chunk", &chunks[2]);
    seed("binarypack", "close", &close);

    // Signaling frames and their payloads (a kind byte: 0 offer, 1 answer, 2 candidate).
    for (name, frame) in signaling_frames() {
        let text = frame.to_string();
        let msg = Message::parse(&text).unwrap();
        seed("signaling", name, text.as_bytes());
        let Some(p) = &msg.payload else { continue };
        let kind = match name {
            "offer" => parse::<OfferPayload>(Some(p)).map(|_| 0u8).unwrap(),
            "answer" => parse::<AnswerPayload>(Some(p)).map(|_| 1).unwrap(),
            "candidate" => parse::<CandidatePayload>(Some(p)).map(|_| 2).unwrap(),
            _ => continue,
        };
        seed(
            "payload",
            name,
            &[&[kind][..], p.to_string().as_bytes()].concat(),
        );
    }

    // STUN: a flag byte (1: the target takes the transaction id from the message), then the
    // datagram.
    let txid = *b"peerns2-txid";
    let responses = [
        (
            "xor-mapped",
            stun_response(&txid, &[(0x0020, [203, 0, 113, 7])]),
        ),
        (
            "mapped",
            stun_response(&txid, &[(0x0001, [198, 51, 100, 2])]),
        ),
        (
            "both",
            stun_response(
                &txid,
                &[(0x0001, [198, 51, 100, 2]), (0x0020, [203, 0, 113, 7])],
            ),
        ),
    ];
    for (name, r) in responses {
        assert!(parse_response(&r, &txid).is_some(), "{name}");
        seed("public_ip", name, &[&[1u8][..], &r].concat());
    }

    // Share links, and the handshake target's step bytes (no tampering: the real messages).
    let link = ShareLink {
        peer_id: format!("peerns2-{}", "0f".repeat(16)),
        fingerprint: ada.fingerprint(),
    };
    assert_eq!(
        link.to_string().parse::<ShareLink>().ok(),
        Some(link.clone())
    );
    seed("share_link", "link", link.to_string().as_bytes());
    for step in 0..3u8 {
        seed("handshake", &format!("step-{step}"), &[step]);
    }
    seed(
        "handshake",
        "step-2-flip",
        &[2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
    );

    group_seeds(&ada, &bob);
}

/// Group frames of every kind from a real log and signed message, and an invite link.
fn group_seeds(ada: &Identity, bob: &Identity) {
    let gid = GroupId([7; 16]);
    let mut log = Log::create_with_id(gid, ada, "club", 1_000);
    let invite = log.sign_next(ada, LogOp::Invite(bob.fingerprint()), 2_000);
    log.append(invite.clone()).unwrap();
    let msg = SignedMessage::sign(
        bob,
        GroupMessage {
            group: gid,
            author: bob.public_key().to_bytes(),
            seq: 1,
            lamport: 1,
            sent_ms: 3_000,
            body: Body::Text("hi all".into()),
        },
    );
    let mut vv = VersionVector::default();
    vv.set(bob.fingerprint(), 1);
    let frames = [
        (
            "hello",
            GroupFrame::Hello {
                group: gid,
                log_len: 2,
                head: log.head(),
                vv: vv.clone(),
                routing: true,
            },
        ),
        (
            "log-want",
            GroupFrame::LogWant {
                group: gid,
                from: 0,
            },
        ),
        (
            "log-entries",
            GroupFrame::LogEntries {
                group: gid,
                from: 0,
                entries: log.entries().to_vec(),
                done: true,
            },
        ),
        ("propose", GroupFrame::Propose(invite.clone())),
        ("msg", GroupFrame::Msg(msg.clone())),
        ("ack", GroupFrame::Ack { group: gid, seq: 1 }),
        (
            "want",
            GroupFrame::Want {
                group: gid,
                vv,
                limit: 64,
            },
        ),
        (
            "page",
            GroupFrame::Page {
                group: gid,
                msgs: vec![msg],
                more: false,
            },
        ),
        (
            "refuse",
            GroupFrame::Refuse {
                group: gid,
                code: RefuseCode::StaleHead,
                text: "sync".into(),
            },
        ),
    ];
    for (name, f) in frames {
        let bytes = f.encode();
        assert_eq!(GroupFrame::decode(&bytes).as_ref(), Ok(&f));
        seed("group_frame", name, &bytes);
    }
    let link = InviteLink::new(&log, &invite).unwrap().encode();
    assert!(InviteLink::decode(&link).is_ok());
    seed("group_invite", "invite", link.as_bytes());
}
