//! What this process has used so far: context switches of all its threads (also those that
//! ended), CPU time and resident memory. `peerns node` prints it on SIGUSR1 for `peerns bench
//! idle`, which cannot read exited threads' counters from `/proc`.

use serde_json::{Value, json};

/// This process's usage as a `usage` JSON event.
pub fn usage_event() -> Value {
    // SAFETY: getrusage writes into the zeroed struct we pass; RUSAGE_SELF covers all threads.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut ru);
        ru
    };
    let ms = |t: libc::timeval| t.tv_sec as f64 * 1e3 + t.tv_usec as f64 / 1e3;
    let rss_kb = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        })
        .unwrap_or(0);
    json!({
        "event": "usage",
        "ctx_switches": ru.ru_nvcsw + ru.ru_nivcsw,
        "cpu_ms": ms(ru.ru_utime) + ms(ru.ru_stime),
        "rss_kb": rss_kb,
    })
}
