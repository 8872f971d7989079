//! The `peerns` binary end to end: demo, identity persistence, and short signaling, media,
//! groups and RPC benches.

use std::process::{Command, Output};

use peerns_tests::peerns_bin;

fn peerns(args: &[&str]) -> Output {
    Command::new(peerns_bin())
        .args(args)
        .output()
        .expect("run peerns")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn demo_connects_nodes_and_exits_zero() {
    let o = peerns(&["demo"]);
    let out = stdout(&o);
    assert!(
        o.status.success(),
        "demo failed: {out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    for name in ["bob  ", "carol", "dave "] {
        assert!(
            out.contains(&format!("alice ⇄ {name} data channel open")),
            "{out}"
        );
        assert!(out.contains(&format!("alice ← {name}")), "{out}");
    }
    assert!(out.contains("every greeting answered"), "{out}");
    // Stadium mode: six phones within ~60 m, each sees the other five, nearest first.
    assert_eq!(out.matches(" sees 5: ").count(), 6, "{out}");
    assert!(out.contains("erin  in u33db2"), "{out}");
}

#[test]
fn identity_persists_and_a_corrupt_key_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().to_str().unwrap();
    let first = peerns(&["id", "--profile", profile]);
    assert!(first.status.success());
    let fp = stdout(&first);
    assert!(
        fp.contains("fingerprint: ") && fp.contains("peer id:     peerns2-"),
        "{fp}"
    );
    let again = peerns(&["id", "--profile", profile]);
    assert_eq!(stdout(&again), fp, "same identity after a restart");
    let json: serde_json::Value =
        serde_json::from_slice(&peerns(&["id", "--profile", profile, "--json"]).stdout).unwrap();
    let (hex, peer_id) = (
        json["fingerprint"].as_str().unwrap(),
        json["peer_id"].as_str().unwrap(),
    );
    assert!(
        fp.contains(&format!("fingerprint: {hex}"))
            && fp.contains(&format!("peer id:     {peer_id}")),
        "{json} vs {fp}"
    );

    std::fs::write(dir.path().join("identity.key"), b"garbage").unwrap();
    let bad = peerns(&["id", "--profile", profile]);
    assert!(!bad.status.success(), "a corrupt key file must not start");
    assert!(!String::from_utf8_lossy(&bad.stderr).is_empty());
    std::fs::remove_file(dir.path().join("identity.key")).unwrap();
    let missing = peerns(&["id", "--profile", profile]);
    assert!(
        !missing.status.success(),
        "a missing key file must not make a new identity"
    );
}

#[test]
fn rpc_bench_reports_every_figure() {
    let o = peerns(&[
        "bench",
        "rpc",
        "--json",
        "--calls",
        "50",
        "--megabytes",
        "4",
        "--rounds",
        "1",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).expect("one JSON object");
    for key in [
        "rpc_rtt_p50_ms",
        "rpc_per_s",
        "backup_mb_s",
        "backup_json_mb_s",
        "baseline_file_mb_s",
        "backup_ratio",
        "monitor_connected_ms",
        "monitor_first_frame_ms",
    ] {
        let x = v[key]
            .as_f64()
            .unwrap_or_else(|| panic!("{key} missing in {v}"));
        assert!(x > 0.0 && x.is_finite(), "{key} = {x}");
    }
    // The first picture comes after the call connects (decoded, not just a packet).
    assert!(
        v["monitor_first_frame_ms"].as_f64() > v["monitor_connected_ms"].as_f64(),
        "{v}"
    );
}

#[test]
fn groups_bench_loses_and_duplicates_nothing() {
    let o = peerns(&[
        "bench",
        "groups",
        "--json",
        "--members",
        "3",
        "--messages",
        "150",
        "--failovers",
        "1",
        "--backfill",
        "300",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).expect("one JSON object");
    assert_eq!(v["members"], 3, "{v}");
    for key in ["msgs_per_s", "migration_p95_s", "backfill_msgs_per_s"] {
        let x = v[key]
            .as_f64()
            .unwrap_or_else(|| panic!("{key} missing in {v}"));
        assert!(x > 0.0 && x.is_finite(), "{key} = {x}");
    }
    // Two survivors, each hearing the other again after the router kill.
    assert_eq!(v["migration_samples"], 2, "{v}");
    // Every durable message in every profile exactly once (hellos, burst, migration, backfill).
    assert!(
        v["durable_messages"].as_u64().unwrap() >= 3 + 150 + 300,
        "{v}"
    );
    assert_eq!(v["lost"], 0, "{v}");
    assert_eq!(v["duplicated"], 0, "{v}");
}

#[test]
fn media_bench_reports_setup_latency_and_rates() {
    let o = peerns(&[
        "bench",
        "media",
        "--json",
        "--calls",
        "2",
        "--seconds",
        "2",
        "--group-seconds",
        "3",
        "--failovers",
        "1",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).expect("one JSON object");
    assert_eq!(v["participants"], 4, "{v}");
    for key in [
        "call_setup_p50_ms",
        "frame_latency_p50_ms",
        "video_fps",
        "rtp_pkts_per_s",
        "sfu_pkts_per_s_per_core",
        "sfu_added_latency_p99_ms",
        "media_resume_p95_s",
    ] {
        let x = v[key]
            .as_f64()
            .unwrap_or_else(|| panic!("{key} missing in {v}"));
        assert!(x > 0.0 && x.is_finite(), "{key} = {x}");
    }
    // Frames pushed at 30/s for 2 s came out of the callee's sink (loopback, no loss).
    let (pushed, got) = (
        v["video_frames_pushed"].as_u64().unwrap(),
        v["video_frames_received"].as_u64().unwrap(),
    );
    assert!(pushed >= 55 && got * 10 >= pushed * 9, "{v}");
    assert!(v["rss_end_kb"].as_u64().unwrap() > 0, "{v}");
}

#[test]
fn signaling_bench_reports_both_servers() {
    let o = peerns(&[
        "bench",
        "signaling",
        "--json",
        "--relays",
        "60",
        "--registrations",
        "30",
        "--rounds",
        "2",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).expect("one JSON object");
    for key in [
        "embedded_registrations_per_s",
        "peer_registrations_per_s",
        "embedded_relay_p50_ms",
        "embedded_relay_p99_ms",
        "peer_relay_p50_ms",
        "peer_relay_p99_ms",
    ] {
        let x = v[key]
            .as_f64()
            .unwrap_or_else(|| panic!("{key} missing in {v}"));
        assert!(x > 0.0 && x.is_finite(), "{key} = {x}");
    }
}

#[test]
fn transport_bench_reports_every_figure() {
    let o = peerns(&[
        "bench",
        "transport",
        "--json",
        "--connects",
        "5",
        "--pings",
        "100",
        "--rounds",
        "1",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).expect("one JSON object");
    let mut keys = vec![
        "connect_p50_ms",
        "connect_p95_ms",
        "rtt_p50_ms",
        "rtt_p99_ms",
        "throughput_1k_mb_s",
        "throughput_16k_mb_s",
        "baseline_throughput_16k_mb_s",
    ];
    // coturn is installed by tests/run.sh; without it the bench reports TURN as null.
    if Command::new("turnserver").arg("--help").output().is_ok() {
        keys.push("turn_rtt_p50_ms");
    }
    for key in keys {
        let x = v[key]
            .as_f64()
            .unwrap_or_else(|| panic!("{key} missing in {v}"));
        assert!(x > 0.0 && x.is_finite(), "{key} = {x}");
    }
}

#[test]
fn idle_bench_measures_a_separate_node_process() {
    let o = peerns(&[
        "bench",
        "idle",
        "--json",
        "--contacts",
        "4",
        "--seconds",
        "2",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).expect("one JSON object");
    assert_eq!(v["linked"], 4, "{v}");
    // In the background the idle link closed; the group's (3 members) stayed.
    assert_eq!(v["linked_background_idle"], 3, "{v}");
    for key in [
        "wakeups_per_s",
        "wakeups_offline_per_s",
        "wakeups_background_per_s",
        "cpu_background_pct",
        "wakeups_background_idle_per_s",
        "cpu_background_idle_pct",
        "cpu_pct",
        "rss_mb",
        "rss_per_conn_kb",
        "wakeups_waiting_per_s",
    ] {
        let x = v[key]
            .as_f64()
            .unwrap_or_else(|| panic!("{key} missing in {v}"));
        assert!(x >= 0.0 && x.is_finite(), "{key} = {x}");
    }
    // A live process has resident memory and its threads woke up at least for heartbeats.
    assert!(v["rss_mb"].as_f64().unwrap() > 1.0 && v["wakeups_per_s"].as_f64().unwrap() > 0.0);
    assert!(v["wakeups_waiting_per_s"].as_f64().unwrap() > 0.0);
}
