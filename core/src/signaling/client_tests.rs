//! Virtual-time tests of the signaling state machine.

use super::*;
use crate::wake_grid::WallClock;

const ID: &str = "peerns2-00112233445566778899aabbccddeeff";

fn config() -> SignalingConfig {
    let mut c = SignalingConfig::new(ServerUrl::parse("ws://127.0.0.1:9000/").unwrap());
    c.seed = 42;
    c
}

/// A machine plus a virtual clock and the outputs seen so far.
struct Sim {
    sig: Signaling,
    now: Instant,
    seen: Vec<(Instant, Output)>,
}

impl Sim {
    fn new(config: SignalingConfig) -> Self {
        Self {
            sig: Signaling::new(config),
            now: Instant::now(),
            seen: vec![],
        }
    }

    fn drain(&mut self) -> Vec<Output> {
        let mut v = vec![];
        while let Some(o) = self.sig.poll_output() {
            self.seen.push((self.now, o.clone()));
            v.push(o);
        }
        v
    }

    /// Runs timers up to `now + d`, returning every output on the way.
    fn advance(&mut self, d: Duration) -> Vec<Output> {
        let end = self.now + d;
        let mut all = self.drain();
        while let Some(t) = self.sig.poll_timeout().filter(|t| *t <= end) {
            self.now = self.now.max(t);
            self.sig.handle_timeout(self.now);
            all.extend(self.drain());
        }
        self.now = end;
        all
    }

    fn register(&mut self, reg: u64, id: &str) -> Vec<Output> {
        self.sig
            .register(self.now, RegId(reg), id, "tok123")
            .unwrap();
        self.drain()
    }

    fn text(&mut self, conn: ConnId, text: &str) -> Vec<Output> {
        self.sig.handle_text(self.now, conn, text);
        self.drain()
    }
}

fn connects(outs: &[Output]) -> Vec<ConnId> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Connect { conn, .. } => Some(*conn),
            _ => None,
        })
        .collect()
}

fn states(outs: &[Output]) -> Vec<SignalingState> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Event(SignalingEvent::State { state, .. }) => Some(state.clone()),
            _ => None,
        })
        .collect()
}

fn open(sim: &mut Sim, reg: u64) -> ConnId {
    let outs = sim.register(reg, &format!("{ID}-{reg}"));
    let conn = connects(&outs)[0];
    sim.text(conn, r#"{"type":"OPEN"}"#);
    conn
}

/// Answers the one redial among `outs` with OPEN.
fn open_again(sim: &mut Sim, outs: &[Output]) -> ConnId {
    let [conn] = connects(outs)[..] else {
        panic!("expected one redial: {outs:?}")
    };
    sim.text(conn, r#"{"type":"OPEN"}"#);
    conn
}

#[test]
fn url_matches_peerjs_client() {
    let s = ServerUrl::parse("wss://0.peerjs.com:443/").unwrap();
    assert_eq!(s, ServerUrl::public_cloud());
    assert_eq!(
        s.socket_url("abc", "xyz"),
        "wss://0.peerjs.com:443/peerjs?key=peerjs&id=abc&token=xyz&version=1.5.5"
    );
    let local = ServerUrl::parse("ws://127.0.0.1:9000/myapp?key=k2").unwrap();
    assert_eq!(
        local.socket_url("a", "t"),
        "ws://127.0.0.1:9000/myapp/peerjs?key=k2&id=a&token=t&version=1.5.5"
    );
    assert_eq!(local.label(), "ws://127.0.0.1:9000/myapp/");
    assert!(ServerUrl::parse("ftp://x").is_err());
}

#[test]
fn register_open_heartbeat_and_relay() {
    let mut sim = Sim::new(config());
    let outs = sim.register(1, ID);
    assert_eq!(states(&outs), [SignalingState::Connecting]);
    let Output::Connect { url, conn, .. } = &outs[1] else {
        panic!("{outs:?}")
    };
    assert!(url.contains(&format!("id={ID}&token=tok123")));
    let conn = *conn;
    let outs = sim.text(conn, r#"{"type":"OPEN"}"#);
    assert_eq!(states(&outs), [SignalingState::Connected]);
    assert!(outs.contains(&Output::Event(SignalingEvent::Claim {
        reg: RegId(1),
        id: ID.into(),
        result: ClaimResult::Claimed
    })));
    // Heartbeats every 5 s, nothing in between.
    let outs = sim.advance(Duration::from_millis(4999));
    assert!(outs.is_empty(), "{outs:?}");
    let outs = sim.advance(Duration::from_millis(10_001));
    let beats = outs
        .iter()
        .filter(|o| matches!(o, Output::Transmit { text, .. } if text == r#"{"type":"HEARTBEAT"}"#))
        .count();
    assert_eq!(beats, 3);
    let offer = r#"{"type":"OFFER","src":"other","dst":"me","payload":{"type":"data"}}"#;
    let outs = sim.text(conn, offer);
    assert!(
        matches!(&outs[..], [Output::Event(SignalingEvent::Message { msg, .. })] if msg.src.as_deref() == Some("other"))
    );
    assert!(
        sim.sig
            .send(RegId(1), &Message::to(MessageType::Answer, "other", None))
            .is_ok()
    );
}

#[test]
fn bad_frames_are_counted_not_fatal() {
    let mut sim = Sim::new(config());
    let conn = open(&mut sim, 1);
    for bad in [
        "nope",
        "{}",
        r#"{"type":"WHAT"}"#,
        r#"{"type":"OPEN"}"#,
        r#"{"type":"OFFER","dst":"--"}"#,
    ] {
        sim.text(conn, bad);
    }
    let st = sim.sig.stats();
    assert_eq!(st.malformed, 4);
    assert_eq!(st.unexpected, 1, "second OPEN");
    assert_eq!(sim.sig.state(RegId(1)), Some(&SignalingState::Connected));
}

#[test]
fn reconnect_backoff_doubles_to_thirty_seconds() {
    let mut sim = Sim::new(config());
    let conn = open(&mut sim, 1);
    sim.sig.handle_closed(sim.now, conn);
    let mut delays = vec![];
    for _ in 0..7 {
        let t_fail = sim.now;
        let outs = sim.drain();
        let [SignalingState::Reconnecting { next_in, .. }] = states(&outs)[..] else {
            panic!("{outs:?}")
        };
        // Step timer by timer until the retry dials.
        let conn = loop {
            let t = sim.sig.poll_timeout().unwrap();
            let outs = sim.advance(t - sim.now);
            if let Some(c) = connects(&outs).first() {
                break *c;
            }
        };
        assert_eq!(sim.now - t_fail, next_in, "dial exactly when announced");
        delays.push(next_in);
        sim.sig
            .handle_connect_failed(sim.now, conn, ConnectFailure::Other("refused".into()));
    }
    for (d, n) in delays.iter().zip([1u64, 2, 4, 8, 16, 30, 30]) {
        let nominal = Duration::from_secs(n);
        assert!(
            *d >= nominal && *d <= nominal * 5 / 4,
            "{d:?} vs {nominal:?}"
        );
    }
}

#[test]
fn reopen_resets_backoff_and_reuses_token() {
    let mut sim = Sim::new(config());
    let conn = open(&mut sim, 1);
    sim.sig.handle_closed(sim.now, conn);
    let outs = sim.advance(Duration::from_secs(2));
    let Output::Connect { url, conn, .. } = outs
        .iter()
        .find(|o| matches!(o, Output::Connect { .. }))
        .unwrap()
    else {
        unreachable!()
    };
    assert!(
        url.contains("token=tok123"),
        "re-attach with the stored token"
    );
    let outs = sim.text(*conn, r#"{"type":"OPEN"}"#);
    assert_eq!(states(&outs), [SignalingState::Connected]);
    assert!(
        !outs
            .iter()
            .any(|o| matches!(o, Output::Event(SignalingEvent::Claim { .. }))),
        "claim reported once"
    );
}

#[test]
fn id_taken_is_final_and_survives_network_change() {
    let mut sim = Sim::new(config());
    let outs = sim.register(1, "peerns2-ns-x-1");
    let conn = connects(&outs)[0];
    let outs = sim.text(
        conn,
        r#"{"type":"ID-TAKEN","payload":{"msg":"ID is taken"}}"#,
    );
    assert!(outs.contains(&Output::Disconnect { conn }));
    assert!(outs.iter().any(|o| matches!(
        o,
        Output::Event(SignalingEvent::Claim {
            result: ClaimResult::Taken,
            ..
        })
    )));
    sim.sig.network_changed(sim.now, NetworkPath::unknown());
    assert!(connects(&sim.advance(Duration::from_secs(60))).is_empty());
}

#[test]
fn invalid_key_and_errors_refuse() {
    let mut sim = Sim::new(config());
    let outs = sim.register(1, "a");
    let outs = sim.text(
        connects(&outs)[0],
        r#"{"type":"ERROR","payload":{"msg":"Invalid key provided"}}"#,
    );
    assert!(outs.iter().any(|o| matches!(o, Output::Event(SignalingEvent::Claim { result: ClaimResult::Error(m), .. }) if m == "Invalid key provided")));
    assert!(matches!(
        sim.sig.state(RegId(1)),
        Some(SignalingState::Offline { .. })
    ));
    sim.register(2, "b");
    let outs = sim.advance(Duration::from_secs(1));
    sim.text(connects(&outs)[0], r#"{"type":"INVALID-KEY"}"#);
    assert!(matches!(
        sim.sig.state(RegId(2)),
        Some(SignalingState::Offline { .. })
    ));
}

#[test]
fn server_throttling_backs_off_adaptively() {
    let mut sim = Sim::new(config());
    let outs = sim.register(1, "a");
    let t0 = sim.now;
    sim.sig
        .handle_connect_failed(sim.now, connects(&outs)[0], ConnectFailure::Throttled);
    let outs = sim.drain();
    assert_eq!(
        states(&outs),
        [SignalingState::RateLimited {
            until: t0 + Duration::from_secs(1)
        }]
    );
    // The limit ERROR counts as throttling too, and triples the hold.
    let outs = sim.advance(Duration::from_secs(1));
    let conn = connects(&outs)[0];
    let outs = sim.text(
        conn,
        r#"{"type":"ERROR","payload":{"msg":"Server has reached its concurrent user limit"}}"#,
    );
    assert_eq!(
        states(&outs),
        [SignalingState::RateLimited {
            until: sim.now + Duration::from_secs(3)
        }]
    );
    assert!(connects(&sim.advance(Duration::from_millis(2999))).is_empty());
    assert_eq!(connects(&sim.advance(Duration::from_millis(1))).len(), 1);
}

#[test]
fn hard_cap_holds_registrations_and_says_rate_limited() {
    let mut sim = Sim::new(config());
    let t0 = sim.now;
    for i in 0..25 {
        sim.register(i, &format!("id{i}"));
    }
    sim.advance(Duration::from_secs(59));
    let dials = sim
        .seen
        .iter()
        .filter(|(_, o)| matches!(o, Output::Connect { .. }))
        .count();
    assert_eq!(dials, 20, "20 per minute, spaced 250 ms");
    let dial_times: Vec<Duration> = sim
        .seen
        .iter()
        .filter(|(_, o)| matches!(o, Output::Connect { .. }))
        .map(|(t, _)| *t - t0)
        .collect();
    assert_eq!(dial_times[1], Duration::from_millis(250));
    assert!(matches!(
        sim.sig.state(RegId(24)),
        Some(SignalingState::RateLimited { .. })
    ));
    let outs = sim.advance(Duration::from_secs(2));
    assert!(!connects(&outs).is_empty(), "window slides");
}

#[test]
fn network_change_is_debounced_and_offline_is_distinct() {
    let mut sim = Sim::new(config());
    let conn = open(&mut sim, 1);
    // A burst of changes within 300 ms yields exactly one reconnect, 300 ms after the last.
    for _ in 0..5 {
        sim.sig.network_changed(sim.now, NetworkPath::unknown());
        sim.advance(Duration::from_millis(100));
    }
    let outs = sim.advance(Duration::from_millis(199));
    assert!(outs.is_empty(), "{outs:?}");
    let outs = sim.advance(Duration::from_millis(1));
    assert!(outs.contains(&Output::Disconnect { conn }));
    assert_eq!(connects(&outs).len(), 1);
    // Network gone: Offline (not rate limited, not reconnecting) and no dialing.
    sim.sig.network_changed(sim.now, NetworkPath::offline());
    let outs = sim.advance(Duration::from_secs(120));
    assert_eq!(
        states(&outs),
        [SignalingState::Offline {
            reason: "no network".into()
        }]
    );
    assert!(connects(&outs).is_empty());
    sim.sig.register(sim.now, RegId(2), "late", "t").unwrap();
    assert!(matches!(
        sim.sig.state(RegId(2)),
        Some(SignalingState::Offline { .. })
    ));
    sim.sig.network_changed(sim.now, NetworkPath::unknown());
    assert_eq!(
        connects(&sim.advance(Duration::from_millis(550))).len(),
        2,
        "spaced by the limiter"
    );
}

/// iOS reports every path attribute change: the same usable path keeps the open socket; a new
/// path (another interface or address) and a return from offline reopen it.
#[test]
fn the_same_network_path_keeps_the_socket_and_a_new_one_reopens_it() {
    let mut sim = Sim::new(config());
    let conn = open(&mut sim, 1);
    sim.sig
        .network_changed(sim.now, NetworkPath::online("wifi:wlan0:192.168.1.20"));
    let outs = sim.advance(Duration::from_millis(300));
    assert!(
        outs.contains(&Output::Disconnect { conn }),
        "first report: path unknown before"
    );
    let conn = open_again(&mut sim, &outs);
    for _ in 0..5 {
        sim.sig
            .network_changed(sim.now, NetworkPath::online("wifi:wlan0:192.168.1.20"));
        sim.advance(Duration::from_millis(100));
    }
    let outs = sim.advance(Duration::from_secs(2));
    assert!(
        !outs.contains(&Output::Disconnect { conn }) && connects(&outs).is_empty(),
        "{outs:?}"
    );
    assert_eq!(sim.sig.state(RegId(1)), Some(&SignalingState::Connected));

    sim.sig
        .network_changed(sim.now, NetworkPath::online("cell:rmnet0:10.0.0.7"));
    let outs = sim.advance(Duration::from_millis(300));
    assert!(outs.contains(&Output::Disconnect { conn }));
    assert_eq!(connects(&outs).len(), 1);
    let conn = open_again(&mut sim, &outs);

    sim.sig.network_changed(sim.now, NetworkPath::offline());
    let outs = sim.advance(Duration::from_millis(300));
    assert!(outs.contains(&Output::Disconnect { conn }));
    sim.sig
        .network_changed(sim.now, NetworkPath::online("cell:rmnet0:10.0.0.7"));
    let outs = sim.advance(Duration::from_millis(300));
    assert_eq!(
        connects(&outs).len(),
        1,
        "back from offline on the same path: redial"
    );
}

#[test]
fn open_timeout_retries() {
    let mut sim = Sim::new(config());
    let outs = sim.register(1, "a");
    let conn = connects(&outs)[0];
    let outs = sim.advance(Duration::from_secs(10));
    assert!(outs.contains(&Output::Disconnect { conn }));
    assert!(matches!(
        states(&outs)[..],
        [SignalingState::Reconnecting { attempt: 1, .. }]
    ));
}

#[test]
fn unregister_leaves_gracefully_and_stale_events_are_ignored() {
    let mut sim = Sim::new(config());
    let conn = open(&mut sim, 1);
    sim.sig.unregister(RegId(1)).unwrap();
    let outs = sim.drain();
    assert_eq!(
        outs,
        [
            Output::Transmit {
                conn,
                text: r#"{"type":"LEAVE"}"#.into()
            },
            Output::Disconnect { conn }
        ]
    );
    sim.sig.handle_closed(sim.now, conn);
    sim.sig.handle_text(sim.now, conn, r#"{"type":"OPEN"}"#);
    assert!(sim.drain().is_empty());
    assert_eq!(
        sim.sig.send(RegId(1), &Message::new(MessageType::Leave)),
        Err(SignalingError::UnknownRegistration)
    );
    assert!(matches!(
        sim.sig.register(sim.now, RegId(2), "x", "t"),
        Ok(())
    ));
    assert_eq!(
        sim.sig.register(sim.now, RegId(3), "x", "t"),
        Err(SignalingError::Duplicate("x".into()))
    );
}

#[test]
fn silent_server_after_upgrade_means_reattached() {
    // The stock `peer` server re-attaches a known token without sending OPEN.
    let mut sim = Sim::new(config());
    let outs = sim.register(1, "a");
    let conn = connects(&outs)[0];
    sim.advance(Duration::from_millis(20));
    sim.sig.handle_connected(sim.now, conn);
    assert!(sim.advance(Duration::from_millis(999)).is_empty());
    let outs = sim.advance(Duration::from_millis(1));
    assert_eq!(states(&outs), [SignalingState::Connected]);
    assert!(outs.iter().any(|o| matches!(
        o,
        Output::Event(SignalingEvent::Claim {
            result: ClaimResult::Claimed,
            ..
        })
    )));
    // A refusal inside the grace wins.
    let outs = sim.register(2, "b");
    let outs2 = sim.advance(Duration::from_secs(1));
    let conn = connects(&outs)
        .into_iter()
        .chain(connects(&outs2))
        .next()
        .unwrap();
    sim.sig.handle_connected(sim.now, conn);
    sim.text(
        conn,
        r#"{"type":"ID-TAKEN","payload":{"msg":"ID is taken"}}"#,
    );
    assert!(sim.advance(Duration::from_secs(2)).is_empty());
    assert!(matches!(
        sim.sig.state(RegId(2)),
        Some(SignalingState::Offline { .. })
    ));
}

#[test]
fn heartbeats_of_several_registrations_share_one_wake_up() {
    let mut sim = Sim::new(config());
    let conns: Vec<ConnId> = (1..=4)
        .map(|reg| {
            let c = open(&mut sim, reg);
            sim.advance(Duration::from_millis(700));
            c
        })
        .collect();
    // Opened 0.7 s apart; the first beat due brings the others along (all within 2.5 s).
    let mut rounds: Vec<(Instant, Vec<ConnId>)> = vec![];
    let end = sim.now + Duration::from_secs(30);
    while let Some(t) = sim.sig.poll_timeout().filter(|t| *t <= end) {
        sim.now = sim.now.max(t);
        sim.sig.handle_timeout(sim.now);
        let beats: Vec<ConnId> = sim
            .drain()
            .into_iter()
            .filter_map(|o| match o {
                Output::Transmit { conn, text } if text == r#"{"type":"HEARTBEAT"}"# => Some(conn),
                _ => None,
            })
            .collect();
        rounds.push((sim.now, beats));
    }
    // Every wake-up in 30 s beat all four registrations, at most 5 s apart.
    assert!(rounds.len() >= 6 && rounds.len() <= 7, "{rounds:?}");
    for (i, (at, beats)) in rounds.iter().enumerate() {
        let mut b = beats.clone();
        b.sort();
        assert_eq!(b, conns, "round {i}");
        if i > 0 {
            assert_eq!(*at - rounds[i - 1].0, Duration::from_secs(5));
        }
    }
}

/// A simulated client whose wall clock reads 1_700_000_001_234 ms after the epoch at its start:
/// 1.234 s past a point of the 5 s grid.
fn sim_with_wall_clock() -> (Sim, WallClock) {
    let mut c = config();
    let t0 = Instant::now();
    let clock = WallClock::new(t0, 1_700_000_001_234);
    c.wall_clock = Some(clock);
    let mut sim = Sim::new(c);
    sim.now = t0;
    (sim, clock)
}

#[test]
fn with_a_wall_clock_heartbeats_fall_on_its_grid() {
    let (mut sim, clock) = sim_with_wall_clock();
    open(&mut sim, 1);
    sim.advance(Duration::from_millis(1_900));
    open(&mut sim, 2);
    let at = heartbeats(&mut sim, clock, 30);
    // Every beat on a point of the 5 s grid; the second registration's first beat waits for
    // the point after the one it opened too late for, and from then on both share each.
    assert!(at.len() >= 5, "{at:?}");
    assert!(at.iter().all(|(t, _)| t % 5_000 == 0), "{at:?}");
    assert!(at.iter().skip(1).all(|(_, n)| *n == 2), "{at:?}");
}

/// The wall-clock times (ms) at which `sim` sends heartbeats in the next `secs` seconds, with
/// how many it sends at each.
fn heartbeats(sim: &mut Sim, clock: WallClock, secs: u64) -> Vec<(u64, usize)> {
    let mut at = vec![];
    let end = sim.now + Duration::from_secs(secs);
    while let Some(t) = sim.sig.poll_timeout().filter(|t| *t <= end) {
        sim.now = sim.now.max(t);
        sim.sig.handle_timeout(sim.now);
        let beats = sim
            .drain()
            .into_iter()
            .filter(
                |o| matches!(o, Output::Transmit { text, .. } if text == r#"{"type":"HEARTBEAT"}"#),
            )
            .count();
        if beats > 0 {
            at.push((clock.unix_ms(sim.now), beats));
        }
    }
    sim.now = end;
    at
}

/// The wall-clock times (ms) of the heartbeats `sim` sends in the next `secs` seconds.
fn heartbeat_times(sim: &mut Sim, clock: WallClock, secs: u64) -> Vec<u64> {
    heartbeats(sim, clock, secs)
        .into_iter()
        .map(|(t, _)| t)
        .collect()
}

#[test]
fn in_the_background_heartbeats_come_every_10_s_on_the_grid() {
    let (mut sim, clock) = sim_with_wall_clock();
    open(&mut sim, 1);
    sim.advance(Duration::from_secs(6));
    sim.drain();
    sim.sig.set_active(false);
    let bg = heartbeat_times(&mut sim, clock, 60);
    // The beat already scheduled on the 5 s grid, then one per 10 s point.
    assert!(bg.len() >= 6, "{bg:?}");
    assert!(bg.iter().skip(1).all(|t| t % 10_000 == 0), "{bg:?}");
    assert!(
        bg.windows(2).skip(1).all(|w| w[1] - w[0] == 10_000),
        "{bg:?}"
    );
    sim.sig.set_active(true);
    let fg = heartbeat_times(&mut sim, clock, 30);
    assert!(
        fg.windows(2).skip(1).all(|w| w[1] - w[0] == 5_000),
        "{fg:?}"
    );
}

#[test]
fn one_registration_probes_an_unreachable_server_and_the_others_follow_when_it_opens() {
    let mut sim = Sim::new(config());
    // Four registrations made 0.7 s apart; the server refuses every connection.
    let refuse = |sim: &mut Sim, outs: &[Output], dials: &mut Vec<Instant>| {
        for c in connects(outs) {
            dials.push(sim.now);
            sim.sig
                .handle_connect_failed(sim.now, c, ConnectFailure::Other("refused".into()));
        }
        sim.drain();
    };
    let mut dials = vec![];
    for reg in 1..=4 {
        let outs = sim.register(reg, &format!("{ID}-{reg}"));
        refuse(&mut sim, &outs, &mut dials);
        sim.advance(Duration::from_millis(700));
    }
    let end = sim.now + Duration::from_secs(180);
    let mut wakes = 0;
    while let Some(t) = sim.sig.poll_timeout().filter(|t| *t <= end) {
        sim.now = sim.now.max(t);
        sim.sig.handle_timeout(sim.now);
        wakes += 1;
        let outs = sim.drain();
        refuse(&mut sim, &outs, &mut dials);
    }
    // After the first minute: one dial per round, a round at most every 30 s (+ jitter).
    let late: Vec<&Instant> = dials
        .iter()
        .filter(|t| **t > end - Duration::from_secs(120))
        .collect();
    assert!(late.len() >= 3 && late.len() <= 6, "{late:?}");
    assert!(late.windows(2).all(|w| w[0] != w[1]), "{late:?}");
    assert!(wakes <= 20, "{wakes} wake-ups in 3 minutes");
    // The server comes back: the probe opens, and the others dial at once.
    let probe = loop {
        let t = sim.sig.poll_timeout().expect("no retry planned");
        sim.now = sim.now.max(t);
        sim.sig.handle_timeout(sim.now);
        if let Some(c) = connects(&sim.drain()).first() {
            break *c;
        }
    };
    let back = sim.now;
    sim.text(probe, r#"{"type":"OPEN"}"#);
    let outs = sim.advance(Duration::from_secs(2));
    let others = connects(&outs);
    assert_eq!(others.len(), 3, "{outs:?}");
    for c in others {
        sim.text(c, r#"{"type":"OPEN"}"#);
    }
    assert!(sim.now - back <= Duration::from_secs(2));
    for reg in 1..=4 {
        assert_eq!(
            sim.sig.state(RegId(reg)),
            Some(&SignalingState::Connected),
            "reg {reg}"
        );
    }
}
