//! A released file lock is free even while a process forked from the holder still shares the
//! holder's descriptor (a child that has not exec'd yet, or never will): `flock` belongs to the
//! open file description, which the fork copied, so closing our descriptor is not enough (and
//! so does a reader's record lock, an open-file-description lock).

use lockhog::Locker;

/// Forks a child that shares every descriptor of this process and waits until the returned
/// pipe end is written to or closed. Only async-signal-safe calls run in the child.
fn fork_waiting_child() -> (libc::pid_t, libc::c_int) {
    let mut fds = [0; 2];
    // SAFETY: a valid two-element array for pipe(2).
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0, "pipe");
    // SAFETY: the child only calls read(2) and _exit(2), both async-signal-safe.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let mut byte = 0u8;
        // SAFETY: reading one byte into a live local, then leaving without unwinding.
        unsafe {
            libc::close(fds[1]);
            libc::read(fds[0], (&mut byte as *mut u8).cast(), 1);
            libc::_exit(0);
        }
    }
    // SAFETY: closing the read end the parent does not use.
    unsafe { libc::close(fds[0]) };
    (pid, fds[1])
}

fn end_child(pid: libc::pid_t, pipe: libc::c_int) {
    let mut status = 0;
    // SAFETY: closing our pipe end lets the child's read return; then reap it.
    unsafe {
        libc::close(pipe);
        libc::waitpid(pid, &mut status, 0);
    }
}

#[tokio::test]
async fn release_frees_the_lock_while_a_forked_child_lives() {
    for (query, by_release, shared) in [
        ("", true, false),
        ("", false, false),
        ("?mode=fcntl", true, false),
        ("", true, true),
        // A reader's record lock belongs to the open file description, as a flock does.
        ("?mode=fcntl", true, true),
        ("?mode=fcntl", false, true),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("file://{}{query}", dir.path().display());
        let (a, b) = (
            Locker::connect(&url).await.unwrap(),
            Locker::connect(&url).await.unwrap(),
        );
        let request = a.lock("forked");
        let request = if shared { request.shared() } else { request };
        let guard = request.try_acquire().await.unwrap();
        let (pid, pipe) = fork_waiting_child();
        if by_release {
            assert!(guard.release().await.unwrap());
        } else {
            drop(guard);
        }
        let taken = b.lock("forked").try_acquire().await;
        end_child(pid, pipe);
        let how = if by_release { "release()" } else { "drop" };
        let guard = taken.unwrap_or_else(|e| {
            panic!(
                "{url} (shared: {shared}): after {how}, the lock was still held through the \
                 forked child: {e}"
            )
        });
        guard.release().await.unwrap();
    }
}
