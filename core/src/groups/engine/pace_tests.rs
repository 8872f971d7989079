//! A member's state announcements follow the app: every 2.4 s in the foreground, every 10 s
//! in the background; with a wall clock, on its grid.

use std::time::{Duration, Instant};

use super::tests::{engine, id, linked, log_with, sends};
use crate::groups::GroupFrame;
use crate::wake_grid::WallClock;

/// When `m` sends a Hello while its timers run for `secs` seconds from `from`, in 100 ms steps.
fn hello_times(
    m: &mut super::Engine<crate::groups::MemHistory>,
    from: Instant,
    secs: u64,
) -> Vec<Instant> {
    let mut at = vec![];
    for i in 1..=secs * 10 {
        let now = from + Duration::from_millis(100 * i);
        m.handle_timeout(now);
        let n = sends(m)
            .iter()
            .filter(|(_, f)| matches!(f, GroupFrame::Hello { .. }))
            .count();
        at.extend(std::iter::repeat_n(now, n));
    }
    at
}

/// How many Hellos `m` sends while its timers run for `secs` seconds from `from`.
fn hellos(m: &mut super::Engine<crate::groups::MemHistory>, from: Instant, secs: u64) -> usize {
    hello_times(m, from, secs).len()
}

#[test]
fn a_member_in_the_background_re_announces_its_state_less_often() {
    let ids = [id(1), id(2)];
    let log = log_with(&ids);
    let (mut r, mut m) = (engine(&ids[0], &log), engine(&ids[1], &log));
    let t0 = Instant::now();
    linked(&mut r, &mut m, t0);
    assert_eq!(hellos(&mut m, t0, 24), 10);
    // In the background: the announcement already due, then one every 10 s.
    let t1 = t0 + Duration::from_secs(24);
    m.set_active(false, t1);
    assert_eq!(hellos(&mut m, t1, 40), 4);
    // Back in the foreground: within 2.4 s, then every 2.4 s again.
    let t2 = t1 + Duration::from_secs(40);
    m.set_active(true, t2);
    assert_eq!(hellos(&mut m, t2, 3), 1);
    assert_eq!(hellos(&mut m, t2 + Duration::from_secs(3), 12), 5);
}

#[test]
fn with_a_wall_clock_announcements_fall_on_its_grid() {
    let ids = [id(1), id(2)];
    let log = log_with(&ids);
    let t0 = Instant::now();
    // 1_000_000_100 ms after the epoch: 100 ms past a point of the 2.4 s grid.
    let clock = WallClock::new(t0, 1_000_000_100);
    let mut r = engine(&ids[0], &log);
    let mut m = engine(&ids[1], &log).with_wall_clock(clock);
    linked(&mut r, &mut m, t0);
    let at: Vec<u64> = hello_times(&mut m, t0, 20)
        .into_iter()
        .map(|t| clock.unix_ms(t))
        .collect();
    assert!(at.len() >= 7, "{at:?}");
    assert!(at.iter().all(|t| t % 2_400 == 0), "{at:?}");
    // In the background, on the 10 s grid.
    let t1 = t0 + Duration::from_secs(20);
    m.set_active(false, t1);
    let bg: Vec<u64> = hello_times(&mut m, t1, 40)
        .into_iter()
        .map(|t| clock.unix_ms(t))
        .collect();
    assert!(bg.len() >= 3, "{bg:?}");
    assert!(bg.iter().skip(1).all(|t| t % 10_000 == 0), "{bg:?}");
}
