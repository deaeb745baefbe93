//! `lockhog bench` on the file backend (and the etcd floor on the test cluster): the shape of
//! its output, never its speed (no timed assertions: the machine may be busy).

use std::process::{Command, Output};

use serde_json::Value;

fn bench(args: &[&str]) -> Output {
    let dir = tempfile::tempdir().expect("temp dir");
    bench_on(&format!("file://{}", dir.path().display()), args)
}

fn bench_on(url: &str, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lockhog"));
    cmd.args(["bench", "-b", url]);
    run_bench(cmd, args)
}

/// `lockhog bench` on a server whose URL (with its password) goes in the environment, never
/// on the command line.
#[cfg(feature = "postgres")]
fn bench_env(url: &str, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lockhog"));
    cmd.arg("bench").env("LOCKHOG_URL", url);
    run_bench(cmd, args)
}

fn run_bench(mut cmd: Command, args: &[&str]) -> Output {
    let out = cmd
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run lockhog bench");
    assert!(out.status.success(), "lockhog bench {args:?}: {out:#?}");
    out
}

fn number(report: &Value, key: &str) -> f64 {
    report[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} is not a number in {report}"))
}

fn one_json_object(out: &Output) -> Value {
    let stdout = String::from_utf8(out.stdout.clone()).expect("UTF-8");
    assert_eq!(stdout.lines().count(), 1, "one line: {stdout:?}");
    let report: Value = serde_json::from_str(&stdout).expect("stdout is JSON");
    assert!(report.is_object(), "{report}");
    // Not a terminal here: no progress on stderr.
    assert!(
        out.stderr.is_empty(),
        "{:?}",
        String::from_utf8_lossy(&out.stderr)
    );
    report
}

#[test]
fn json_report_has_every_figure_with_sane_values() {
    let report = one_json_object(&bench(&[
        "--duration",
        "1",
        "--clients",
        "3",
        "--locks",
        "2",
        "--json",
    ]));
    assert_eq!(report["mode"], "lockhog");
    assert_eq!(report["scheme"], "file");
    assert_eq!(report["clients"], 3);
    assert_eq!(report["locks"], 2);
    for key in [
        "uncontended_cycles_per_s",
        "uncontended_p50_us",
        "uncontended_p99_us",
        "handoff_p50_us",
        "handoff_p99_us",
        "contended_cycles_per_s",
        "median_wait_ms",
        "max_wait_ms",
    ] {
        assert!(number(&report, key) > 0.0, "{key} > 0 in {report}");
    }
    for (p50, p99) in [
        ("uncontended_p50_us", "uncontended_p99_us"),
        ("handoff_p50_us", "handoff_p99_us"),
        ("median_wait_ms", "max_wait_ms"),
    ] {
        assert!(
            number(&report, p99) >= number(&report, p50),
            "{p99} ≥ {p50} in {report}"
        );
    }
    assert!(number(&report, "handoff_rounds") >= 20.0, "{report}");
    assert!(
        number(&report, "client_cycles_min") >= 1.0,
        "every client got the lock: {report}"
    );
}

/// On a backend with semaphores, a semaphore phase: 16 clients on one 4-permit semaphore.
#[test]
fn semaphore_phase_on_a_backend_with_semaphores() {
    let report = one_json_object(&bench(&["--duration", "1", "--json"]));
    assert_semaphore_phase(&report);
    let text = bench(&["--duration", "0.5"]);
    let text = String::from_utf8(text.stdout).expect("UTF-8");
    assert!(text.contains("semaphore:"), "{text}");
}

/// PostgreSQL has semaphores (slot advisory locks): its bench has the phase too.
#[cfg(feature = "postgres")]
#[test]
fn semaphore_phase_on_postgres() {
    let target = lockhog::testkit::Target::from_env("LOCKHOG_TEST_POSTGRES_URL");
    let Some(url) = target.url() else { return };
    let out = bench_env(url, &["--duration", "0.5", "--json"]);
    assert_semaphore_phase(&one_json_object(&out));
}

fn assert_semaphore_phase(report: &Value) {
    assert_eq!(report["semaphore_clients"], 16, "{report}");
    assert_eq!(report["semaphore_permits"], 4, "{report}");
    assert!(number(report, "semaphore_cycles_per_s") > 0.0, "{report}");
    assert!(
        number(report, "semaphore_max_wait_ms") >= number(report, "semaphore_median_wait_ms"),
        "{report}"
    );
}

#[test]
fn floor_measures_raw_flock() {
    let report = one_json_object(&bench(&["--duration", "0.5", "--json", "--floor"]));
    assert_eq!(report["mode"], "floor");
    assert!(
        number(&report, "uncontended_cycles_per_s") > 0.0,
        "{report}"
    );
    assert!(number(&report, "handoff_p99_us") >= number(&report, "handoff_p50_us"));
    assert_eq!(report["contended_cycles_per_s"], Value::Null, "{report}");
    assert_eq!(report["semaphore_cycles_per_s"], Value::Null, "{report}");
    // Beside it, the named-lock floor: open by name + flock + unlock + close.
    assert!(
        number(&report, "named_floor_cycles_per_s") > 0.0,
        "{report}"
    );
    assert!(
        report["named_floor_commands"]
            .as_str()
            .is_some_and(|c| c.contains("O_CREAT")),
        "{report}"
    );
}

/// The etcd floor: the calls etcd's own concurrency mutex makes, on a bare client.
#[cfg(feature = "etcd")]
#[test]
fn floor_measures_the_etcd_mutex_calls() {
    let target = lockhog::testkit::Target::from_env("LOCKHOG_TEST_ETCD_URL");
    let Some(url) = target.url() else { return };
    let out = bench_on(url, &["--duration", "0.5", "--json", "--floor"]);
    let report = one_json_object(&out);
    assert_eq!(report["mode"], "floor");
    assert!(
        number(&report, "uncontended_cycles_per_s") > 0.0,
        "{report}"
    );
    assert!(number(&report, "handoff_rounds") >= 20.0, "{report}");
    assert!(
        report["commands"]
            .as_str()
            .is_some_and(|c| c.contains("lease")),
        "{report}"
    );
}

#[test]
fn text_report_names_each_phase() {
    let out = bench(&["--duration", "0.5", "--clients", "2", "--locks", "1"]);
    let text = String::from_utf8(out.stdout).expect("UTF-8");
    for phase in ["uncontended:", "handoff:", "contended:", "fairness:"] {
        assert!(text.contains(phase), "{phase} in {text}");
    }
}

#[test]
fn bad_options_are_usage_errors() {
    for args in [
        &["bench", "--duration", "0"][..],
        &["bench", "--clients", "0"],
        &["bench", "--locks", "x"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_lockhog"))
            .args(args)
            .output()
            .expect("run lockhog");
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:#?}");
    }
}

/// `--scale` with a tiny grid: one entry per clients × locks point and per held size, each with
/// sane figures, on a backend with descriptors per held lock (file) and one without (mem).
#[test]
fn scale_reports_every_point_of_a_tiny_grid() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = format!("file://{}", dir.path().display());
    for url in [file.as_str(), "mem:"] {
        let grid = [
            "--scale",
            "--duration",
            "0.2",
            "--scale-clients",
            "1,2",
            "--scale-locks",
            "1,3",
            "--scale-held",
            "10,4",
            "--json",
        ];
        let report = one_json_object(&bench_on(url, &grid));
        assert_eq!(report["mode"], "scale", "{report}");
        let points = report["contended"].as_array().expect("contended array");
        let grid: Vec<(u64, u64)> = points
            .iter()
            .map(|p| (p["locks"].as_u64().unwrap(), p["clients"].as_u64().unwrap()))
            .collect();
        assert_eq!(grid, [(1, 1), (1, 2), (3, 1), (3, 2)], "{report}");
        for p in points {
            assert_eq!(p["error"], Value::Null, "{p}");
            assert!(number(p, "cycles_per_s") > 0.0, "{p}");
            assert!(number(p, "p99_wait_ms") >= number(p, "p50_wait_ms"), "{p}");
            assert!(number(p, "max_wait_ms") >= number(p, "p99_wait_ms"), "{p}");
        }
        let held = report["held"].as_array().expect("held array");
        let sizes: Vec<u64> = held.iter().map(|p| p["held"].as_u64().unwrap()).collect();
        assert_eq!(sizes, [4, 10], "ascending: {report}");
        for p in held {
            assert_eq!(p["error"], Value::Null, "{p}");
            assert_eq!(p["lost"], 0, "{p}");
            assert!(number(p, "cycles") >= 20.0, "{p}");
            assert!(number(p, "p50_us") > 0.0, "{p}");
            assert!(number(p, "p99_us") >= number(p, "p50_us"), "{p}");
        }
        let is_file = url.starts_with("file:");
        assert_eq!(report["nofile_soft"].is_u64(), is_file, "{report}");
    }
    // The held locks are released at the end: each can be taken again at once.
    let out = Command::new(env!("CARGO_BIN_EXE_lockhog"))
        .args([
            "run",
            "-n",
            "-b",
            &file,
            "lockhog-bench/held-9",
            "--",
            "true",
        ])
        .output()
        .expect("run lockhog run");
    assert!(out.status.success(), "{out:#?}");
}

/// A held size the machine cannot take is reported with its reason, and the larger sizes are
/// not tried, rather than the run failing: here a descriptor limit below what the file
/// backend needs.
#[test]
fn scale_reports_a_held_size_beyond_the_descriptor_limit() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("file://{}", dir.path().display());
    // prlimit(1) lowers both limits for the child, so the bench cannot raise them back.
    let out = Command::new("prlimit")
        .args(["--nofile=400:400", env!("CARGO_BIN_EXE_lockhog")])
        .args(["bench", "-b", &url, "--scale", "--duration", "0.2"])
        .args(["--scale-clients", "1", "--scale-locks", "1"])
        .args(["--scale-held", "10,1000,2000", "--json"])
        .output()
        .expect("run prlimit lockhog bench");
    assert!(out.status.success(), "{out:#?}");
    let report = one_json_object(&out);
    assert_eq!(report["nofile_soft"], 400, "{report}");
    let held = &report["held"];
    assert_eq!(held[0]["error"], Value::Null, "{report}");
    let why = held[1]["error"].as_str().expect("an error for 1000");
    assert!(why.contains("RLIMIT_NOFILE is 400"), "{why}");
    assert_eq!(held[1]["p50_us"], Value::Null, "{report}");
    let why = held[2]["error"].as_str().expect("an error for 2000");
    assert!(why.starts_with("not tried"), "{why}");
}

/// `--soak` on a lease backend that needs no server (SQLite): the held set survives its
/// renewals, the samples come with every figure, and the verdict is ok.
#[cfg(feature = "sqlite")]
#[test]
fn soak_holds_and_samples_on_sqlite() {
    let dir = tempfile::tempdir().expect("temp dir");
    // A lease short enough that every held lock is renewed twice within the soak (every
    // ttl/3), long enough that a busy machine's stall of a second does not lose it.
    let url = format!("sqlite://{}/soak.db?ttl=3", dir.path().display());
    let out = Command::new(env!("CARGO_BIN_EXE_lockhog"))
        .args(["bench", "-b", &url, "--soak", "--soak-held", "50"])
        .args(["--duration", "2.5", "--soak-sample", "1", "--json"])
        .env_remove("RUST_LOG")
        .output()
        .expect("run lockhog bench --soak");
    assert!(out.status.success(), "{out:#?}");
    let stdout = String::from_utf8(out.stdout).expect("UTF-8");
    let report: Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(report["mode"], "soak", "{report}");
    assert_eq!(report["held"], 50, "{report}");
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["not_held"], 0, "{report}");
    let samples = report["samples"].as_array().expect("samples");
    // At the start, at 1 s and 2 s, and at the end.
    assert_eq!(samples.len(), 4, "{report}");
    for s in samples {
        assert!(number(s, "rss_kib") > 0.0, "{s}");
        assert!(number(s, "fds") > 0.0, "{s}");
        assert_eq!(s["lost"], 0, "{s}");
    }
    // Each sample also goes to stderr, for the person watching a half-hour run.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.matches("soak: ").count(), 4, "{stderr}");
}
