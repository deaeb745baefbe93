//! `lockhog torture` on the file backend (no server needed), and its checker on hand-made
//! journals.
//!
//! The torture run lasts as long as `--duration` says: the command's own clock, not a test
//! sleeping for a state. Nothing here asserts on timings.

#[allow(dead_code)] // helpers for the other test files too
mod support;

#[allow(dead_code)]
#[path = "../src/torture/journal.rs"]
mod journal;

#[allow(dead_code)]
#[path = "../src/torture/checker.rs"]
mod checker;

#[allow(dead_code)]
#[path = "../src/torture/permits.rs"]
mod permits;

use checker::{check, judge, Promise};
use journal::{Event, Release};
use support::Locks;

/// Splits the contract's last line into its five numbers, checking the exact format.
fn last_line_numbers(line: &str) -> [u64; 5] {
    let rest = line
        .strip_prefix("torture: ")
        .unwrap_or_else(|| panic!("last line {line:?}"));
    let keys = [
        "sections",
        "violations",
        "token_regressions",
        "fenced_rejections",
        "faults",
    ];
    let fields: Vec<&str> = rest.split(' ').collect();
    assert_eq!(fields.len(), 5, "last line {line:?}");
    let mut out = [0u64; 5];
    for (i, (field, key)) in fields.iter().zip(keys).enumerate() {
        let (k, v) = field
            .split_once('=')
            .unwrap_or_else(|| panic!("field {field:?} of {line:?}"));
        assert_eq!(k, key, "last line {line:?}");
        assert!(
            !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()),
            "{line:?}"
        );
        out[i] = v.parse().expect("a number");
    }
    out
}

#[test]
fn kill_and_pause_on_file_keep_exclusion_and_token_order() {
    for query in ["", "?mode=fcntl"] {
        let locks = Locks::with_query(query);
        kill_and_pause(&locks, &["--clients", "4"]);
    }
}

/// Runs a 3-second torture with kills and pauses on `locks` (and `more` options), asserts it
/// kept exclusion and token order, and returns its output.
fn kill_and_pause(locks: &Locks, more: &[&str]) -> support::Finished {
    let mut args = vec!["--duration", "3", "--faults", "kill,pause"];
    args.extend(["--ttl", "0.2", "--pause", "0.4"]);
    args.extend(more);
    let done = locks.run("torture", &args);
    done.assert_code(0);
    let last = done.stdout.last().expect("output");
    let [sections, violations, regressions, _rejections, _faults] = last_line_numbers(last);
    assert!(sections > 0, "{done:#?}");
    assert_eq!(violations, 0, "{done:#?}");
    assert_eq!(regressions, 0, "{done:#?}");
    done
}

/// `--permits 2`: workers take permits of 2-permit semaphores under kills and pauses; each
/// permit keeps exclusion and token order, and never more than 2 hold one semaphore.
#[test]
fn permits_on_file_never_admit_more_than_n() {
    let locks = Locks::new();
    let done = kill_and_pause(&locks, &["--clients", "6", "--permits", "2"]);
    let line = done
        .stdout
        .iter()
        .find(|l| l.starts_with("torture: permits="))
        .unwrap_or_else(|| panic!("no permits line: {done:#?}"));
    assert!(
        line.starts_with("torture: permits=2 max_holders=")
            && line.ends_with("over_admissions=0 held=0"),
        "{line}"
    );
    let held: u64 = line
        .split(' ')
        .find_map(|f| f.strip_prefix("max_holders="))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{line}"));
    assert!((1..=2).contains(&held), "{line}");
    // A backend without semaphores, and kill-run, are refused.
    let refused = locks.run(
        "torture",
        &[
            "--clients",
            "2",
            "--duration",
            "1",
            "--permits",
            "2",
            "--faults",
            "kill-run",
        ],
    );
    refused.assert_code(2);
}

/// `kill-run`: `lockhog run` SIGKILLed while its command is inside its section. The command
/// keeps the lock (file, flock) or dies with its `run` (fcntl, postgres): never two inside.
#[test]
fn kill_run_never_lets_two_commands_inside() {
    let mut urls: Vec<(String, Option<Locks>)> = ["", "?mode=fcntl"]
        .into_iter()
        .map(|q| {
            let locks = Locks::with_query(q);
            (locks.url(), Some(locks))
        })
        .collect();
    match std::env::var("LOCKHOG_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => urls.push((url, None)),
        _ if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("LOCKHOG_TEST_POSTGRES_URL is not set under CI")
        }
        _ => eprintln!("postgres skipped: LOCKHOG_TEST_POSTGRES_URL is not set"),
    }
    for (url, _dir) in &urls {
        let mut cmd = support::lockhog_cmd();
        cmd.args(["torture", "-b", url, "--clients", "4", "--duration", "3"])
            .args(["--faults", "kill-run", "--ttl", "0.5"]);
        let done = support::Proc::spawn(cmd, "lockhog torture --faults kill-run").finish();
        done.assert_code(0);
        let [sections, violations, regressions, _rejections, faults] =
            last_line_numbers(done.stdout.last().expect("output"));
        assert!(sections > 0 && faults > 0, "{done:#?}");
        assert_eq!(violations, 0, "{done:#?}");
        assert_eq!(regressions, 0, "{done:#?}");
    }
}

#[test]
fn bad_arguments_exit_2() {
    let locks = Locks::new();
    let bad: &[&[&str]] = &[
        &["--clients", "0", "--duration", "1"],
        &["--clients", "2"],
        &["--duration", "1"],
        &["--clients", "2", "--duration", "0"],
        &[
            "--clients",
            "2",
            "--duration",
            "1",
            "--faults",
            "kill,bogus",
        ],
        &["--clients", "2", "--duration", "1", "--locks", "0"],
        // No server to restart or to cut connections to behind a file URL.
        &["--clients", "2", "--duration", "1", "--faults", "restart"],
        &["--clients", "2", "--duration", "1", "--faults", "cut"],
    ];
    for args in bad {
        let done = locks.run("torture", args);
        done.assert_code(2);
        assert!(done.stdout.is_empty(), "{done:#?}");
    }
}

#[test]
fn an_unusable_backend_exits_69() {
    let locks = Locks::new();
    let file = locks.path().join("a-file");
    std::fs::write(&file, b"").expect("write");
    // The lock directory would have to be made inside a regular file.
    let url = format!("file://{}/locks", file.display());
    let mut cmd = support::lockhog_cmd();
    cmd.args(["torture", "-b", &url, "--clients", "2", "--duration", "1"]);
    let done = support::Proc::spawn(cmd, "lockhog torture on a file").finish();
    done.assert_code(69);
}

// ---------------------------------------------------------------------------------------
// The checker on hand-made journals.

fn enter(worker: u32, lock: u32, token: u64, at: u64) -> Event {
    Event::Enter {
        worker,
        pid: 1000 + worker,
        lock,
        token,
        at,
    }
}

fn write(worker: u32, lock: u32, token: u64, at: u64, accepted: bool) -> Event {
    Event::Write {
        worker,
        lock,
        token,
        at,
        accepted,
    }
}

fn exit(worker: u32, at: u64) -> Event {
    Event::Exit { worker, at }
}

fn released(worker: u32, outcome: Release) -> Event {
    Event::Released { worker, outcome }
}

const LEASE: Promise = Promise {
    connection_bound: false,
    connection_faults: false,
};
const FD: Promise = Promise {
    connection_bound: true,
    connection_faults: false,
};

#[test]
fn sections_in_turn_are_clean() {
    let j = [
        enter(1, 0, 5, 10),
        write(1, 0, 5, 11, true),
        exit(1, 12),
        released(1, Release::Ours),
        enter(2, 0, 6, 13),
        write(2, 0, 6, 14, true),
        exit(2, 15),
        released(2, Release::Ours),
        // Another lock overlapping in time is no violation.
        enter(3, 1, 1, 11),
        exit(3, 14),
    ];
    let r = check(&j, 100);
    assert_eq!(r.sections, 3);
    assert_eq!(r.violations, 0);
    assert_eq!(r.token_regressions, 0);
    assert_eq!(r.fenced_rejections, 0);
    assert!(judge(&r, FD).is_empty());
}

#[test]
fn overlapping_sections_are_violations() {
    // Worker 2 enters while worker 1 is still inside and still holds the lock.
    let j = [
        enter(1, 0, 5, 10),
        enter(2, 0, 6, 12),
        exit(1, 13),
        released(1, Release::Ours),
        exit(2, 14),
        released(2, Release::Ours),
    ];
    let r = check(&j, 100);
    assert_eq!(r.violations, 1);
    assert_eq!(r.held_overlaps, 1);
    assert_eq!(r.lost_overlaps, 0);
    assert!(!judge(&r, FD).is_empty());
    assert!(
        !judge(&r, LEASE).is_empty(),
        "a held overlap fails everywhere"
    );
}

#[test]
fn a_paused_holders_stale_write_is_fenced() {
    // Worker 1 is paused inside its section, its lease runs out, worker 2 is granted a newer
    // token and writes; worker 1 resumes and its write is refused.
    let j = [
        enter(1, 0, 5, 10),
        enter(2, 0, 6, 50),
        write(2, 0, 6, 51, true),
        exit(2, 52),
        released(2, Release::Ours),
        // A second holder during the same pause: still one violation, of worker 1's section.
        enter(3, 0, 8, 53),
        write(3, 0, 8, 54, true),
        exit(3, 55),
        released(3, Release::Ours),
        write(1, 0, 5, 60, false),
        exit(1, 61),
        released(1, Release::Lost),
    ];
    let r = check(&j, 100);
    assert_eq!(r.violations, 1);
    assert_eq!(r.lost_overlaps, 1);
    assert_eq!(r.unfenced_overlaps, 0);
    assert_eq!(r.fenced_rejections, 1);
    assert!(judge(&r, LEASE).is_empty(), "{:?}", judge(&r, LEASE));
    // On a backend whose lock dies only with its holder, no overlap is excused...
    assert!(!judge(&r, FD).is_empty());
    // ...unless the faults cut connections from under living holders.
    let cut = Promise {
        connection_bound: true,
        connection_faults: true,
    };
    assert!(judge(&r, cut).is_empty());
}

#[test]
fn a_stale_write_accepted_is_unfenced() {
    // The newer grant got a token not above the older one: the fence cannot tell them apart.
    let j = [
        enter(1, 0, 7, 10),
        enter(2, 0, 7, 50),
        write(2, 0, 7, 51, true),
        write(1, 0, 7, 60, true),
        exit(2, 62),
        exit(1, 61),
        released(1, Release::Lost),
        released(2, Release::Ours),
    ];
    let r = check(&j, 100);
    assert_eq!(r.violations, 1);
    assert_eq!(r.unfenced_overlaps, 1);
    assert_eq!(r.token_regressions, 1);
    assert!(!judge(&r, LEASE).is_empty());
}

#[test]
fn token_regressions_are_counted_per_lock() {
    let j = [
        enter(1, 0, 5, 10),
        exit(1, 11),
        enter(2, 0, 4, 12), // below 5
        exit(2, 13),
        enter(1, 0, 5, 14), // equal to the largest: not greater
        exit(1, 15),
        enter(2, 0, 9, 16),
        exit(2, 17),
        enter(3, 1, 1, 18), // another lock starts its own order
        exit(3, 19),
    ];
    let r = check(&j, 100);
    assert_eq!(r.sections, 5);
    assert_eq!(r.token_regressions, 2);
    assert_eq!(r.violations, 0);
    assert!(!judge(&r, LEASE).is_empty());
}

#[test]
fn a_killed_holders_section_ends_at_the_kill() {
    // Worker 1 is killed inside its section at 20; worker 2 enters at 30: no overlap. Had the
    // section been taken to run to the end of the journal, it would overlap.
    let j = [
        enter(1, 0, 5, 10),
        Event::Killed { worker: 1, at: 20 },
        enter(2, 0, 6, 30),
        write(2, 0, 6, 31, true),
        exit(2, 32),
        released(2, Release::Ours),
    ];
    let r = check(&j, 100);
    assert_eq!(r.sections, 2);
    assert_eq!(r.killed_sections, 1);
    assert_eq!(r.violations, 0);
    assert!(judge(&r, FD).is_empty());
    // A section whose worker was killed only after the next holder entered does overlap.
    let late = [
        enter(1, 0, 5, 10),
        enter(2, 0, 6, 15),
        Event::Killed { worker: 1, at: 20 },
        exit(2, 32),
    ];
    let r = check(&late, 100);
    assert_eq!(r.violations, 1);
    assert_eq!(
        r.held_overlaps, 1,
        "a killed holder never reported the lock lost"
    );
}

#[test]
fn open_sections_end_with_the_journal_and_vanished_workers_fail() {
    let j = [
        enter(1, 0, 5, 10),
        Event::Gone { worker: 1, at: 12 },
        enter(2, 0, 6, 20),
    ];
    let r = check(&j, 100);
    assert_eq!(r.sections, 2);
    assert_eq!(r.gone_sections, 1);
    assert_eq!(r.violations, 0);
    assert!(!judge(&r, LEASE).is_empty(), "a worker died unasked");
    assert!(
        !judge(&checker::Report::default(), LEASE).is_empty(),
        "no sections"
    );
}

/// Sections of one 2-permit semaphore (lock ids 2*S + slot): a third holder entering while two
/// are inside is an over-admission, held unless one of the two had lost its permit.
#[test]
fn the_permit_count_finds_a_third_holder() {
    // Semaphore 0: slots 0 and 1 (lock ids 0, 1) busy, then a third section on slot 0 while
    // both are inside (as a broken store would grant it). Semaphore 1 (ids 2, 3) runs two at
    // once, which is allowed.
    let j = [
        enter(1, 0, 5, 10),
        enter(2, 1, 6, 11),
        enter(3, 0, 7, 12),
        exit(1, 13),
        released(1, Release::Ours),
        exit(2, 14),
        released(2, Release::Ours),
        exit(3, 15),
        enter(4, 2, 1, 10),
        enter(5, 3, 2, 11),
        exit(4, 12),
        exit(5, 12),
    ];
    let all = checker::sections(&j, 100);
    let r = permits::count(&all, 2);
    assert_eq!(r.max_holders, 3);
    assert_eq!(r.over_admissions, 1);
    assert_eq!(r.held_over_admissions, 1);
    assert!(!permits::judge(&r, 2, false).is_empty());

    // The same with holder 1 having lost its permit (a lease ran out): an over-admission, not
    // a held one, and a failure only where permits die with their holder alone.
    let mut lost = j.clone();
    lost[4] = released(1, Release::Lost);
    let r = permits::count(&checker::sections(&lost, 100), 2);
    assert_eq!((r.over_admissions, r.held_over_admissions), (1, 0));
    assert!(permits::judge(&r, 2, false).is_empty());
    assert!(!permits::judge(&r, 2, true).is_empty());

    // Two at a time on each semaphore is within the count.
    let r = permits::count(&checker::sections(&j[8..], 100), 2);
    assert_eq!((r.max_holders, r.over_admissions), (2, 0));
}
