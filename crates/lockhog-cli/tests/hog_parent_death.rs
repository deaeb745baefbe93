//! The `lockhog hold` children of process hogs die with the process that started them, even
//! when the hog was made on a thread that has ended since.
//!
//! The dying test process is this test binary run again as a helper (one test, chosen with
//! `--exact`, that does its work only when the helper's environment variable is set).

#[allow(dead_code)] // helpers for the other test files too
mod support;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use lockhog::hog::{HogFrom, HogOptions, NamedLock, BIN_ENV};
use support::{Locks, TIMEOUT};

/// Set in the helper's environment: the lock directory's URL.
const HELPER_URL: &str = "LOCKHOG_TEST_HOG_HELPER_URL";
/// Set in the helper's environment: the FIFO the `hold` child writes its pid to.
const PID_FIFO: &str = "LOCKHOG_TEST_HOG_PID_FIFO";

/// A stand-in for `lockhog` that writes its pid to `$LOCKHOG_TEST_HOG_PID_FIFO`, then
/// becomes the real binary (same process, same parent-death signal).
fn pid_reporting_bin(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("lockhog-reporting");
    let text = format!(
        "#!/bin/sh\necho $$ > \"${PID_FIFO}\"\nexec '{}' \"$@\"\n",
        support::bin()
    );
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
}

/// The first line written to the FIFO at `path`, waiting at most [`TIMEOUT`].
fn read_fifo_line(path: &Path) -> String {
    let (tx, rx) = mpsc::channel();
    let path = path.to_path_buf();
    std::thread::spawn(move || {
        // Opening blocks until the writer opens: on this thread, so the wait stays bounded.
        let file = std::fs::File::open(path).expect("open fifo");
        let mut line = String::new();
        let _ = BufReader::new(file).read_line(&mut line);
        let _ = tx.send(line.trim().to_string());
    });
    rx.recv_timeout(TIMEOUT)
        .unwrap_or_else(|_| panic!("no pid on the fifo within {TIMEOUT:?}"))
}

/// Waits (at most [`TIMEOUT`]) for process `pid`, not our child, to exit.
fn wait_for_exit_of(pid: libc::pid_t) {
    // SAFETY: plain syscalls; the descriptor is closed below.
    unsafe {
        let fd = libc::syscall(libc::SYS_pidfd_open, pid, 0) as libc::c_int;
        if fd < 0 {
            let e = std::io::Error::last_os_error();
            assert_eq!(e.raw_os_error(), Some(libc::ESRCH), "pidfd_open: {e}");
            return; // already gone
        }
        let mut poll = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        let ready = libc::poll(&mut poll, 1, TIMEOUT.as_millis() as libc::c_int);
        libc::close(fd);
        assert_eq!(ready, 1, "process {pid} still runs after {TIMEOUT:?}");
    }
}

/// The helper: a process hog of `a` and `b` from a thread that waits for it. It blocks
/// forever (the test holds `b`), until the test kills this process.
#[test]
fn helper_hogs_and_waits() {
    let Ok(url) = std::env::var(HELPER_URL) else {
        return; // an ordinary run of the suite: nothing to do
    };
    let waiter = std::thread::spawn(move || {
        NamedLock::new(url, "a")
            .and("b")
            .hog_from(HogFrom::Process)
            .options(HogOptions::new().with_acquire_timeout(Duration::from_secs(3600)))
            .hog()
    });
    let _ = waiter.join();
    panic!("the hog of a and b returned while the test held b");
}

#[test]
fn a_waiting_process_hog_dies_with_the_test_process_that_started_it() {
    let locks = Locks::new();
    let holding_b = locks.hold(&["b"], 1);
    let fifo = locks.path().join("pid.fifo");
    mkfifo(&fifo);
    let exe = std::env::current_exe().unwrap();
    let mut helper = Command::new(exe)
        .args(["--exact", "helper_hogs_and_waits", "--nocapture"])
        .env(HELPER_URL, locks.url())
        .env(PID_FIFO, &fifo)
        .env(BIN_ENV, pid_reporting_bin(locks.path()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("start the helper");
    let hold_pid: libc::pid_t = read_fifo_line(&fifo).parse().expect("a pid");
    helper.kill().expect("SIGKILL the helper");
    helper.wait().expect("reap the helper");
    // The `hold` child, waiting for b, is SIGKILLed with its parent and takes nothing later.
    wait_for_exit_of(hold_pid);
    assert_eq!(locks.try_run("a"), 0, "a was freed");
    holding_b.proc.finish();
}

#[test]
fn a_process_hog_made_on_a_thread_that_ended_still_holds() {
    std::env::set_var(BIN_ENV, support::bin());
    let locks = Locks::new();
    let url = locks.url();
    let hog = std::thread::spawn(move || {
        NamedLock::new(url, "x")
            .hog_from(HogFrom::Process)
            .hog()
            .expect("hog x")
    })
    .join()
    .expect("the hogging thread");
    // Had the child been tied to that thread, it would be dead by now (a process start
    // later), and its release below would fail.
    assert_eq!(locks.try_run("x"), 1, "x is still hogged");
    hog.release().expect("the hold child answers and releases");
    assert_eq!(locks.try_run("x"), 0);
}
