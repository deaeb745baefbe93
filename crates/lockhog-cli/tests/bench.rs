//! `lockhog bench` on the file backend (and the etcd floor on the test cluster): the shape of
//! its output, never its speed (no timed assertions: the machine may be busy).

use std::process::{Command, Output};

use serde_json::Value;

fn bench(args: &[&str]) -> Output {
    let dir = tempfile::tempdir().expect("temp dir");
    bench_on(&format!("file://{}", dir.path().display()), args)
}

fn bench_on(url: &str, args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_lockhog"))
        .args(["bench", "-b", url])
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
    assert_eq!(report["semaphore_clients"], 16, "{report}");
    assert_eq!(report["semaphore_permits"], 4, "{report}");
    assert!(number(&report, "semaphore_cycles_per_s") > 0.0, "{report}");
    assert!(
        number(&report, "semaphore_max_wait_ms") >= number(&report, "semaphore_median_wait_ms"),
        "{report}"
    );
    let text = bench(&["--duration", "0.5"]);
    let text = String::from_utf8(text.stdout).expect("UTF-8");
    assert!(text.contains("semaphore:"), "{text}");
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
