//! A member's state announcements follow the app: every 2 s in the foreground, every 10 s in
//! the background.

use std::time::{Duration, Instant};

use super::tests::{engine, id, linked, log_with, sends};
use crate::groups::GroupFrame;

/// Hellos `m` sends while its timers run for `secs` seconds from `from`, in 100 ms steps.
fn hellos(m: &mut super::Engine<crate::groups::MemHistory>, from: Instant, secs: u64) -> usize {
    let mut n = 0;
    for i in 1..=secs * 10 {
        m.handle_timeout(from + Duration::from_millis(100 * i));
        n += sends(m)
            .iter()
            .filter(|(_, f)| matches!(f, GroupFrame::Hello { .. }))
            .count();
    }
    n
}

#[test]
fn a_member_in_the_background_re_announces_its_state_less_often() {
    let ids = [id(1), id(2)];
    let log = log_with(&ids);
    let (mut r, mut m) = (engine(&ids[0], &log), engine(&ids[1], &log));
    let t0 = Instant::now();
    linked(&mut r, &mut m, t0);
    assert_eq!(hellos(&mut m, t0, 20), 10);
    // In the background: the announcement already due, then one every 10 s.
    let t1 = t0 + Duration::from_secs(20);
    m.set_active(false, t1);
    assert_eq!(hellos(&mut m, t1, 40), 4);
    // Back in the foreground: within 2 s, then every 2 s again.
    let t2 = t1 + Duration::from_secs(40);
    m.set_active(true, t2);
    assert_eq!(hellos(&mut m, t2, 2), 1);
    assert_eq!(hellos(&mut m, t2 + Duration::from_secs(2), 10), 5);
}
