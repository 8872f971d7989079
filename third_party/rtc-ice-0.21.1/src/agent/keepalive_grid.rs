//! PATCH(ice-keepalive-grid): a connected agent's ticks fall on a grid shared by every agent
//! in the process, and by every process on the device (the grid is anchored to wall-clock
//! minutes), so the keepalives of many connections cost one wake-up instead of one each.

use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// An instant on the grid: the start of a wall-clock minute, as an `Instant`.
fn anchor() -> Instant {
    static ANCHOR: OnceLock<Instant> = OnceLock::new();
    *ANCHOR.get_or_init(|| {
        let now = Instant::now();
        let since_epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let into_minute = Duration::from_nanos((since_epoch.as_nanos() % 60_000_000_000) as u64);
        now.checked_sub(into_minute).unwrap_or(now)
    })
}

/// The grid point for a tick due at `due`, every `tick`: the first point at or after
/// `due - tick / 4` (a tick that woke a little late does not push the next one a whole
/// tick later).
pub(crate) fn align(due: Instant, tick: Duration) -> Instant {
    let tick_ns = tick.as_nanos();
    if tick_ns == 0 {
        return due;
    }
    let anchor = anchor();
    let from = due
        .saturating_duration_since(anchor)
        .saturating_sub(tick / 4)
        .as_nanos();
    let points = from.div_ceil(tick_ns);
    let offset = points.saturating_mul(tick_ns).min(u64::MAX as u128) as u64;
    anchor + Duration::from_nanos(offset)
}
