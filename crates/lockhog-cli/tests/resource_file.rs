//! `--resource` on `file:` against the real other users of a file lock, both ways: `flock(1)`
//! and Python's `fcntl.flock` (flock mode), Python's `fcntl.lockf` (`?mode=fcntl`), exclusive
//! and shared (`--shared` beside `flock -s` and `LOCK_SH`). The file
//! another program locks keeps its content and its modification time; a missing one is created
//! empty; a symlink, a FIFO or a hard link at the path, or a directory anyone may write in
//! without the sticky bit, is refused, never followed, opened or written; `abandon` frees the
//! lock with the process.

#[allow(dead_code)]
mod clients;
#[allow(dead_code)] // helpers for the other test files too
mod support;

use std::fs::{self, File, FileTimes};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime};

use clients::have;
use lockhog::protocol::HeldLine;
use support::{Finished, Hold, Locks, Proc};

/// `lockhog hold -n --resource PATH`, released at once: exit 0 when free, 1 when held.
fn try_hold(locks: &Locks, path: &Path) -> Finished {
    try_hold_with(locks, &[], path)
}

/// `lockhog hold -n <args…> --resource PATH`, as [`try_hold`].
fn try_hold_with(locks: &Locks, args: &[&str], path: &Path) -> Finished {
    let mut all = vec!["-n"];
    all.extend_from_slice(args);
    all.extend(["--resource", path.to_str().unwrap()]);
    locks.run("hold", &all)
}

fn hold_resource(locks: &Locks, path: &Path) -> Hold {
    hold_resource_with(locks, &[], path)
}

/// `lockhog hold <args…> --resource PATH`, once it printed its `held` line.
fn hold_resource_with(locks: &Locks, args: &[&str], path: &Path) -> Hold {
    let p = path.to_str().unwrap();
    let mut all = args.to_vec();
    all.extend(["--resource", p]);
    let h = locks.hold(&all, 1);
    assert_eq!(h.held[0], HeldLine::new(p, p, None));
    h
}

fn release(mut h: Hold) {
    h.proc.send("release");
    let done = h.proc.finish();
    assert!(done.status.success(), "{done:#?}");
}

/// Python taking `kind` (`flock` or `lockf`) on `path` without waiting: exit 0 when it got
/// the lock, 1 when someone holds it.
fn python_try(kind: &str, path: &Path) -> i32 {
    python_try_op(kind, "LOCK_EX", path)
}

/// As [`python_try`], taking the lock `op`: `LOCK_EX`, or `LOCK_SH` (a shared lock; with
/// `lockf`, a POSIX read lock).
fn python_try_op(kind: &str, op: &str, path: &Path) -> i32 {
    let script = "import fcntl, sys\n\
        f = open(sys.argv[2], 'r+')\n\
        lock = fcntl.flock if sys.argv[1] == 'flock' else fcntl.lockf\n\
        try:\n    lock(f, getattr(fcntl, sys.argv[3]) | fcntl.LOCK_NB)\n\
        except BlockingIOError:\n    sys.exit(1)\n";
    let mut cmd = Command::new("python3");
    cmd.args(["-c", script, kind, path.to_str().unwrap(), op]);
    Proc::spawn(cmd, "python3 fcntl").finish().code()
}

/// Python holding `kind` on `path` until its stdin ends, once it printed `locked`.
fn python_hold(kind: &str, path: &Path) -> Proc {
    python_hold_op(kind, "LOCK_EX", path)
}

/// As [`python_hold`], taking the lock `op` (`LOCK_EX` or `LOCK_SH`).
fn python_hold_op(kind: &str, op: &str, path: &Path) -> Proc {
    let script = "import fcntl, sys\n\
        f = open(sys.argv[2], 'r+')\n\
        (fcntl.flock if sys.argv[1] == 'flock' else fcntl.lockf)(f, getattr(fcntl, sys.argv[3]))\n\
        print('locked', flush=True)\n\
        sys.stdin.read()\n";
    let mut cmd = Command::new("python3");
    cmd.args(["-c", script, kind, path.to_str().unwrap(), op]);
    let mut p = Proc::spawn(cmd, "python3 fcntl hold");
    assert_eq!(p.line(), "locked");
    p
}

/// A pid file as an application leaves it: some bytes (not a counter) and an old mtime.
fn pid_file(path: &Path) -> (Vec<u8>, SystemTime) {
    let content = b"4242\n\x00\xffnot a counter".to_vec();
    fs::write(path, &content).unwrap();
    let old = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    let file = File::options().write(true).open(path).unwrap();
    file.set_times(FileTimes::new().set_modified(old)).unwrap();
    (content, old)
}

fn assert_untouched(path: &Path, (content, mtime): &(Vec<u8>, SystemTime)) {
    assert_eq!(&fs::read(path).unwrap(), content, "{path:?} was written");
    assert_eq!(
        fs::metadata(path).unwrap().modified().unwrap(),
        *mtime,
        "{path:?} was written"
    );
}

#[test]
fn flock1_and_lockhog_keep_each_other_out_of_a_pid_file() {
    let Some(()) = have("flock") else { return };
    let locks = Locks::new();
    let pid = locks.path().join("app.pid");
    let before = pid_file(&pid);

    // flock(1) first: its command holds the lock until its stdin ends.
    let mut flock = Command::new("flock");
    flock
        .arg(&pid)
        .args(["sh", "-c", "echo locked; cat >/dev/null"]);
    let mut flock = Proc::spawn(flock, "flock(1)");
    assert_eq!(flock.line(), "locked");
    try_hold(&locks, &pid).assert_code(1);
    assert!(flock.finish().status.success());
    try_hold(&locks, &pid).assert_code(0);

    // lockhog first.
    let held = hold_resource(&locks, &pid);
    let mut flock_n = Command::new("flock");
    flock_n.arg("-n").arg(&pid).arg("true");
    Proc::spawn(flock_n, "flock -n").finish().assert_code(1);
    release(held);
    let mut flock_n = Command::new("flock");
    flock_n.arg("-n").arg(&pid).arg("true");
    Proc::spawn(flock_n, "flock -n").finish().assert_code(0);
    assert_untouched(&pid, &before);
}

/// Runs `check` with each of Python's locks (`flock` in flock mode, `lockf` in fcntl mode),
/// a lock directory in that mode and a pid file, and asserts the file was left untouched.
fn with_each_python_lock(check: impl Fn(&str, &Locks, &Path)) {
    let Some(()) = have("python3") else { return };
    for (kind, query) in [("flock", ""), ("lockf", "?mode=fcntl")] {
        let locks = Locks::with_query(query);
        let pid = locks.path().join(format!("{kind}.pid"));
        let before = pid_file(&pid);
        check(kind, &locks, &pid);
        assert_untouched(&pid, &before);
    }
}

#[test]
fn python_flock_and_lockf_against_lockhog_both_ways() {
    with_each_python_lock(|kind, locks, pid| {
        let mut python = python_hold(kind, pid);
        try_hold(locks, pid).assert_code(1);
        python.close_stdin();
        assert!(python.wait().success(), "{kind}");
        try_hold(locks, pid).assert_code(0);

        let held = hold_resource(locks, pid);
        assert_eq!(
            python_try(kind, pid),
            1,
            "{kind}: python got a lock lockhog holds"
        );
        release(held);
        assert_eq!(
            python_try(kind, pid),
            0,
            "{kind}: not free after the release"
        );
    });
}

/// `flock(1)` with `-s`/`-x` and without waiting: exit 0 when it got the lock, 1 when not.
fn flock1_try(op: &str, path: &Path) -> i32 {
    let mut cmd = Command::new("flock");
    cmd.args([op, "-n"]).arg(path).arg("true");
    Proc::spawn(cmd, &format!("flock {op} -n")).finish().code()
}

/// `hold --shared --resource` beside `flock -s` both ways: readers coexist, `flock -x` and a
/// plain `hold` are kept out, and the file is never written.
#[test]
fn flock1_shared_and_lockhog_shared_coexist_and_keep_writers_out() {
    let Some(()) = have("flock") else { return };
    let locks = Locks::new();
    let pid = locks.path().join("app.pid");
    let before = pid_file(&pid);

    let mut flock = Command::new("flock");
    flock
        .arg("-s")
        .arg(&pid)
        .args(["sh", "-c", "echo locked; cat >/dev/null"]);
    let mut flock = Proc::spawn(flock, "flock -s");
    assert_eq!(flock.line(), "locked");
    try_hold_with(&locks, &["--shared"], &pid).assert_code(0);
    try_hold(&locks, &pid).assert_code(1);
    assert!(flock.finish().status.success());

    let held = hold_resource_with(&locks, &["--shared"], &pid);
    assert_eq!(
        flock1_try("-s", &pid),
        0,
        "flock -s beside lockhog's reader"
    );
    assert_eq!(
        flock1_try("-x", &pid),
        1,
        "flock -x beside lockhog's reader"
    );
    release(held);
    assert_eq!(flock1_try("-x", &pid), 0, "not free after the release");
    assert_untouched(&pid, &before);
}

/// `hold --shared --resource` beside Python's `fcntl.flock(LOCK_SH)` (flock mode) and
/// `fcntl.lockf(LOCK_SH)` (`?mode=fcntl`, a POSIX read lock), both ways.
#[test]
fn python_shared_flock_and_lockf_against_lockhog_shared_both_ways() {
    with_each_python_lock(|kind, locks, pid| {
        let mut python = python_hold_op(kind, "LOCK_SH", pid);
        try_hold_with(locks, &["--shared"], pid).assert_code(0);
        try_hold(locks, pid).assert_code(1);
        python.close_stdin();
        assert!(python.wait().success(), "{kind}");

        let held = hold_resource_with(locks, &["--shared"], pid);
        assert_eq!(
            python_try_op(kind, "LOCK_SH", pid),
            0,
            "{kind}: reader kept out"
        );
        assert_eq!(
            python_try_op(kind, "LOCK_EX", pid),
            1,
            "{kind}: writer let in"
        );
        release(held);
        assert_eq!(
            python_try_op(kind, "LOCK_EX", pid),
            0,
            "{kind}: not released"
        );
    });
}

#[test]
fn a_missing_file_is_created_empty_and_stays_empty() {
    let locks = Locks::new();
    fs::set_permissions(locks.path(), fs::Permissions::from_mode(0o700)).unwrap();
    let path = locks.path().join("new.pid");
    let held = hold_resource(&locks, &path);
    let status = locks.run("status", &["--resource", path.to_str().unwrap()]);
    assert!(status.stdout[0].starts_with("held "), "{status:#?}");
    release(held);
    assert_eq!(fs::read(&path).unwrap(), b"", "a counter was written");
    // Created as a lock file is: the directory's read and write bits (0700 here).
    assert_eq!(
        fs::metadata(&path).unwrap().permissions().mode() & 0o7777,
        0o600
    );
    // A second holder finds it empty and leaves it so.
    try_hold(&locks, &path).assert_code(0);
    assert_eq!(fs::read(&path).unwrap(), b"");
}

#[test]
fn abandon_frees_the_lock_with_the_process() {
    let locks = Locks::new();
    let pid = locks.path().join("app.pid");
    let before = pid_file(&pid);
    let mut held = hold_resource(&locks, &pid);
    held.proc.send("abandon");
    let done = held.proc.finish();
    assert!(done.status.success(), "{done:#?}");
    assert!(done.stdout.is_empty(), "abandon printed {:?}", done.stdout);
    try_hold(&locks, &pid).assert_code(0);
    assert_untouched(&pid, &before);
}

#[test]
fn symlinks_and_fifos_at_the_path_are_refused_untouched() {
    let locks = Locks::new();
    let target = locks.path().join("victim");
    let before = pid_file(&target);
    let link = locks.path().join("link.pid");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let done = try_hold(&locks, &link);
    done.assert_code(69);
    assert!(done.stderr.contains("symbolic link"), "{done:#?}");
    assert_untouched(&target, &before);

    let fifo = locks.path().join("fifo.pid");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let done = try_hold(&locks, &fifo);
    done.assert_code(69);
    assert!(done.stderr.contains("not a regular file"), "{done:#?}");

    // A hard link to someone's file: locking it would lock theirs.
    let hard = locks.path().join("hard.pid");
    fs::hard_link(&target, &hard).unwrap();
    let done = try_hold(&locks, &hard);
    done.assert_code(69);
    assert!(done.stderr.contains("other hard links"), "{done:#?}");
    assert_untouched(&target, &before);
}

#[test]
fn a_directory_everyone_may_write_without_the_sticky_bit_is_refused() {
    let locks = Locks::new();
    let open = locks.path().join("open");
    fs::create_dir(&open).unwrap();
    fs::set_permissions(&open, fs::Permissions::from_mode(0o777)).unwrap();
    let done = try_hold(&locks, &open.join("app.pid"));
    done.assert_code(69);
    assert!(done.stderr.contains("without the sticky bit"), "{done:#?}");
    assert!(
        fs::read_dir(&open).unwrap().next().is_none(),
        "a file was created"
    );
    // Missing directories are not created either.
    let done = try_hold(&locks, &locks.path().join("missing/app.pid"));
    done.assert_code(69);
    assert!(!locks.path().join("missing").exists());
}

#[test]
fn a_process_hog_holds_a_resource_through_lockhog_hold() {
    let locks = Locks::new();
    let pid = locks.path().join("app.pid");
    let before = pid_file(&pid);
    let hog = lockhog::hog::NamedLock::resource(locks.url(), pid.to_str().unwrap())
        .hog_from(lockhog::hog::HogFrom::Process)
        .binary(support::bin())
        .hog()
        .expect("hogged");
    let file = File::open(&pid).unwrap();
    assert!(file.try_lock().is_err(), "the pid file is not locked");
    hog.release().expect("released");
    assert!(file.try_lock().is_ok());
    assert_untouched(&pid, &before);
}

/// `run` holds names and resources together: the command finds both taken (tried from inside
/// it, the binary and URL reaching it through its environment), and the pid file is untouched.
#[test]
fn run_holds_a_name_and_a_resource_together() {
    let locks = Locks::new();
    let dir = tempfile::tempdir().unwrap();
    let pid = dir.path().join("app.pid");
    let before = pid_file(&pid);
    let p = pid.to_str().unwrap();
    let script = r#""$BIN" run -n report -- true; echo "name=$?"; "$BIN" run -n --resource "$PID" -- true; echo "pid=$?"; echo "first=$LOCKHOG_NAME""#;
    let mut cmd = locks.cmd(
        "run",
        &["--resource", p, "report", "--", "sh", "-c", script],
    );
    cmd.env("BIN", support::bin())
        .env("LOCKHOG_URL", locks.url())
        .env("PID", p);
    let out = Proc::spawn(cmd, "run --resource PID report").finish();
    out.assert_code(0);
    assert_eq!(out.stdout, ["name=1", "pid=1", "first=report"], "{out:#?}");
    assert_eq!(
        try_hold(&locks, &pid).code(),
        0,
        "the pid file was given back"
    );
    assert_eq!(locks.try_run("report"), 0, "the name was given back");
    assert_untouched(&pid, &before);

    // The resource held elsewhere: nothing runs, and the name is not kept.
    let holder = hold_resource(&locks, &pid);
    let refused = locks.run(
        "run",
        &["-n", "--resource", p, "report", "--", "echo", "ran"],
    );
    refused.assert_code(1);
    assert!(refused.stdout.is_empty(), "{refused:#?}");
    assert_eq!(locks.try_run("report"), 0);
    release(holder);
}
