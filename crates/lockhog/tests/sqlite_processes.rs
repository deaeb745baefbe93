//! Many processes share one database file: 4 workers each run 25 `lockhog run` children that
//! increment a counter file by a non-atomic read and write. Every increment must survive, and
//! no child may fail or print "database is locked".

#![cfg(feature = "sqlite")]

mod sqlite_support;

use std::process::Command;

use sqlite_support::{bin, TempDb};

const PROCESSES: usize = 4;
const RUNS: usize = 25;

#[test]
fn processes_exclude_each_other_and_never_see_a_locked_database() {
    let db = TempDb::new();
    let url = db.url("");
    let counter = db.path.with_file_name("counter");
    std::fs::write(&counter, "0").unwrap();
    let bin = bin();
    let workers: Vec<_> = (0..PROCESSES)
        .map(|_| {
            let (bin, url, counter) = (bin.clone(), url.clone(), counter.clone());
            std::thread::spawn(move || {
                let mut failures = Vec::new();
                for _ in 0..RUNS {
                    let out = Command::new(&bin)
                        .args(["run", "-b", &url, "-w", "30", "counter", "--"])
                        .args(["sh", "-c", r#"n=$(cat "$1"); echo $((n + 1)) > "$1""#, "sh"])
                        .arg(&counter)
                        .output()
                        .expect("run lockhog");
                    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
                    if !out.status.success() || !stderr.is_empty() {
                        failures.push(format!("{:?}: {stderr}", out.status));
                    }
                }
                failures
            })
        })
        .collect();
    let failures: Vec<String> = workers
        .into_iter()
        .flat_map(|w| w.join().expect("a worker panicked"))
        .collect();
    assert!(failures.is_empty(), "children failed: {failures:#?}");
    let total: usize = std::fs::read_to_string(&counter)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(
        total,
        PROCESSES * RUNS,
        "increments were lost: exclusion broke"
    );
}

/// Four processes start on a file that does not exist yet: all of them create the tables and
/// switch to WAL mode at once, and every one of them gets its lock.
#[test]
fn processes_creating_the_database_at_once_all_succeed() {
    let db = TempDb::new();
    let url = db.url("");
    let children: Vec<_> = (0..PROCESSES)
        .map(|i| {
            Command::new(bin())
                .args([
                    "run",
                    "-b",
                    &url,
                    "-w",
                    "30",
                    &format!("first-{i}"),
                    "--",
                    "true",
                ])
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("run lockhog")
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stderr.is_empty(),
            "{:?}: {stderr}",
            out.status
        );
    }
    let mode: String = db
        .raw()
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}
