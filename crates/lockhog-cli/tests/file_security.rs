//! Attacks on the file backend's lock directory through the CLI, as another local user would
//! make them: a planted default directory, symlinks, FIFOs and foreign files in the lock
//! directory, namespaces that escape it, and `cleanup` made to delete what is not its own.
//! Each asserts that nothing was written, followed, created or deleted, and how lockhog failed.
//!
//! The tests with a second Unix user or a private `/tmp` need root (see `unix_users`).

#[allow(dead_code)] // helpers for the other test files too
mod support;
mod unix_users;

use std::fs::{self, File, FileTimes};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use support::{lockhog_cmd, Finished, Proc};
use unix_users::{can_run, in_private_tmp, Group, User};

/// A fixed, old modification time, so "not written" is visible in the mtime too.
fn old_time() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000)
}

/// A file the attacker wants written: `content`, and the old mtime.
fn victim_file(path: &Path, content: &str) {
    fs::write(path, content).unwrap();
    let file = File::options().write(true).open(path).unwrap();
    file.set_times(FileTimes::new().set_modified(old_time()))
        .unwrap();
}

fn assert_untouched(path: &Path, content: &str) {
    assert_eq!(
        fs::read_to_string(path).unwrap(),
        content,
        "{path:?} written"
    );
    let mtime = fs::metadata(path).unwrap().modified().unwrap();
    assert_eq!(mtime, old_time(), "{path:?} modified");
}

/// A temporary directory other users can enter (a plain tempdir is private to root).
fn open_tempdir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

fn mkdir_mode(path: &Path, mode: u32) {
    fs::create_dir(path).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

fn url(dir: &Path, query: &str) -> String {
    format!("file://{}{query}", dir.display())
}

/// `lockhog <args…>` as the test process (root, when the attack tests run).
fn lockhog(args: &[&str]) -> Finished {
    let mut cmd = lockhog_cmd();
    cmd.args(args);
    Proc::spawn(cmd, &format!("lockhog {args:?}")).finish()
}

fn assert_refused(done: &Finished, why: &str) {
    done.assert_code(69);
    assert!(done.stderr.contains(why), "expected {why:?}: {done:#?}");
}

/// The value of `key=` on the scenario's output.
fn field<'a>(done: &'a Finished, key: &str) -> &'a str {
    let prefix = format!("{key}=");
    done.stdout
        .iter()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {key}= line: {done:#?}"))
}

// ---------------------------------------------------------------------------------------
// the default directory, /tmp/lockhog-$UID, planted by another user

/// The victim's steps, after the attacker's: every subcommand, then what became of the files.
const VICTIM: &str = r#"
set +e
"$LH" run -n x -- true; echo "run-x=$?"
"$LH" run -n y -- true; echo "run-y=$?"
"$LH" hold x </dev/null; echo "hold-x=$?"
"$LH" status; echo "status=$?"
"$LH" cleanup; echo "cleanup=$?"
set -e
echo "victim=$(stat -c %s:%Y /tmp/victim)"
if [ -e /tmp/created ]; then echo created=yes; else echo created=no; fi
echo "entries=$(ls -A "$PLANT" | tr '\n' ' ')"
"#;

fn scenario(attacker_steps: &str, attacker: &User) -> Finished {
    let script = format!(
        "{}\n{attacker_steps}\n{VICTIM}",
        r#"as_attacker() { setpriv --reuid="$A_UID" --regid="$A_GID" --clear-groups "$@"; }
: > /tmp/victim
touch -d @1000000000 /tmp/victim
D="/tmp/lockhog-$(id -u)""#
    );
    in_private_tmp(
        &script,
        &[
            ("LH", support::bin().to_string()),
            ("A_UID", attacker.uid.to_string()),
            ("A_GID", attacker.gid.to_string()),
            ("PLANT", "/tmp/plant".to_string()),
        ],
    )
}

fn assert_nothing_followed(done: &Finished) {
    for step in ["run-x", "run-y", "hold-x", "status", "cleanup"] {
        assert_eq!(field(done, step), "69", "{step}: {done:#?}");
    }
    assert_eq!(field(done, "victim"), "0:1000000000", "{done:#?}");
    assert_eq!(field(done, "created"), "no", "{done:#?}");
}

/// Another user makes /tmp/lockhog-0 first, world-writable, with a symlink to a victim file
/// and a dangling one: lockhog refuses the directory, writes nothing, creates nothing.
#[test]
fn a_default_directory_planted_by_another_user_is_refused() {
    if !can_run("a_default_directory_planted_by_another_user_is_refused") {
        return;
    }
    let attacker = User::new("atk", &[]);
    let done = scenario(
        r#"as_attacker mkdir /tmp/plant
as_attacker mkdir "$D"
as_attacker chmod 0777 "$D"
as_attacker ln -s /tmp/victim "$D/x.lock"
as_attacker ln -s /tmp/created "$D/y.lock""#,
        &attacker,
    );
    assert_nothing_followed(&done);
    assert!(
        done.stderr
            .contains(&format!("owned by uid {} gid", attacker.uid)),
        "{done:#?}"
    );
    assert!(done.stderr.contains("is not yours"), "{done:#?}");
    assert!(done.stderr.contains("rm -r /tmp/lockhog-0"), "{done:#?}");
}

/// The default directory as a symlink to a directory of the attacker's: refused, and nothing
/// lands in the attacker's directory.
#[test]
fn a_default_directory_that_is_a_symlink_is_refused() {
    if !can_run("a_default_directory_that_is_a_symlink_is_refused") {
        return;
    }
    let attacker = User::new("sym", &[]);
    let done = scenario(
        r#"as_attacker mkdir /tmp/plant
as_attacker chmod 0777 /tmp/plant
as_attacker ln -s /tmp/victim /tmp/plant/x.lock
as_attacker ln -s /tmp/plant "$D""#,
        &attacker,
    );
    assert_nothing_followed(&done);
    assert_eq!(field(&done, "entries"), "x.lock ", "{done:#?}");
    assert!(done.stderr.contains("is not a directory"), "{done:#?}");
}

/// Without an attacker the default directory is made 0700 and used; a default directory of
/// ours that others may write to is refused.
#[test]
fn the_default_directory_is_made_private_and_must_stay_so() {
    if !can_run("the_default_directory_is_made_private_and_must_stay_so") {
        return;
    }
    let done = in_private_tmp(
        r#"D="/tmp/lockhog-$(id -u)"
"$LH" run -n x -- true; echo "first=$?"
echo "mode=$(stat -c %a:%u "$D")"
echo "file=$(stat -c %a "$D/x.lock")"
chmod 0777 "$D"
set +e
"$LH" run -n x -- true; echo "loose=$?"
"#,
        &[("LH", support::bin().to_string())],
    );
    assert_eq!(field(&done, "first"), "0", "{done:#?}");
    assert_eq!(field(&done, "mode"), "700:0", "{done:#?}");
    assert_eq!(field(&done, "file"), "600", "{done:#?}");
    assert_eq!(field(&done, "loose"), "69", "{done:#?}");
    assert!(
        done.stderr.contains("is writable by other users"),
        "{done:#?}"
    );
}

// ---------------------------------------------------------------------------------------
// explicit directories

/// In a shared sticky directory another user plants a symlink to a victim file, a dangling
/// symlink, a FIFO and a file of their own with foreign content: each lock on them is refused
/// without following, blocking or writing; cleanup removes none of them.
#[test]
fn planted_entries_in_a_shared_directory_are_never_followed_or_written() {
    if !can_run("planted_entries_in_a_shared_directory_are_never_followed_or_written") {
        return;
    }
    let attacker = User::new("pln", &[]);
    let top = open_tempdir();
    let shared = top.path().join("shared");
    mkdir_mode(&shared, 0o1777);
    let victim = top.path().join("victim");
    victim_file(&victim, "");
    let created = top.path().join("created");
    let p = |name: &str| shared.join(name).display().to_string();
    for (program, args) in [
        (
            "ln",
            vec!["-s".into(), victim.display().to_string(), p("x.lock")],
        ),
        (
            "ln",
            vec!["-s".into(), created.display().to_string(), p("y.lock")],
        ),
        ("mkfifo", vec!["-m".into(), "0666".into(), p("f.lock")]),
        (
            "sh",
            vec![
                "-c".into(),
                "echo hello > \"$1\"; chmod 0666 \"$1\"".into(),
                "sh".into(),
                p("h.lock"),
            ],
        ),
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        attacker.run(program, &args).assert_code(0);
    }
    let u = url(&shared, "");
    for (name, why) in [
        ("x", "a symbolic link: refusing to follow it"),
        ("y", "a symbolic link: refusing to follow it"),
        ("f", "not a regular file"),
        ("h", "something other than a fencing counter"),
    ] {
        assert_refused(&lockhog(&["run", "-b", &u, "-n", name, "--", "true"]), why);
    }
    lockhog(&["cleanup", "-b", &u]).assert_code(0);
    assert_untouched(&victim, "");
    assert!(!created.exists(), "created through a dangling symlink");
    assert_eq!(fs::read_to_string(p("h.lock")).unwrap(), "hello\n");
    for name in ["x.lock", "y.lock", "f.lock"] {
        assert!(fs::symlink_metadata(p(name)).is_ok(), "{name} deleted");
    }
}

/// A directory of another user, or one anybody may write to without the sticky bit, is
/// refused: root's cron job must not lock in a directory a user controls.
#[test]
fn explicit_directories_others_control_are_refused() {
    if !can_run("explicit_directories_others_control_are_refused") {
        return;
    }
    let attacker = User::new("own", &[]);
    let top = open_tempdir();
    let theirs = top.path().join("theirs");
    mkdir_mode(&theirs, 0o755);
    std::os::unix::fs::chown(&theirs, Some(attacker.uid), Some(attacker.gid)).unwrap();
    let open = top.path().join("open");
    mkdir_mode(&open, 0o777);
    let done = lockhog(&["run", "-b", &url(&theirs, ""), "-n", "x", "--", "true"]);
    assert_refused(&done, "belongs to another user and to a group you");
    assert!(done.stderr.contains("install -d -m 2775"), "{done:#?}");
    assert_refused(
        &lockhog(&["run", "-b", &url(&open, ""), "-n", "x", "--", "true"]),
        "without the sticky bit",
    );
    assert_eq!(fs::read_dir(&theirs).unwrap().count(), 0);
    assert_eq!(fs::read_dir(&open).unwrap().count(), 0);
}

/// `hold NAME` as `user` in `dir`, released at once: the token it got.
fn token_as(user: &User, dir: &str, name: &str) -> u64 {
    let done = user.run(support::bin(), &["hold", "-b", dir, name]);
    done.assert_code(0);
    let line = done.stdout.first().unwrap_or_else(|| panic!("{done:#?}"));
    line.rsplit(' ').next().unwrap().parse().expect("a token")
}

/// Two users share a setgid group directory (2775) and a sticky one (1777), umask 022: both
/// lock and count every name, whoever came first, in the root and in a namespace.
#[test]
fn two_users_share_group_and_sticky_directories() {
    if !can_run("two_users_share_group_and_sticky_directories") {
        return;
    }
    let group = Group::new("grp");
    let (one, two) = (User::new("one", &[&group]), User::new("two", &[&group]));
    let top = open_tempdir();
    let grouped = top.path().join("group");
    let status = Command::new("install")
        .args(["-d", "-m", "2775", "-g", &group.name])
        .arg(&grouped)
        .status()
        .unwrap();
    assert!(status.success());
    let sticky = top.path().join("sticky");
    mkdir_mode(&sticky, 0o1777);
    for (dir, file_mode) in [(&grouped, 0o664), (&sticky, 0o666)] {
        for query in ["", "?namespace=jobs"] {
            let u = url(dir, query);
            for (first, second) in [(&one, &two), (&two, &one)] {
                let name = format!("{}-first", first.name);
                let a = token_as(first, &u, &name);
                let b = token_as(second, &u, &name);
                assert!(b > a, "{u}: {} got {b} after {a}", second.name);
                assert_eq!(token_as(first, &u, &name), b + 1, "{u}");
            }
        }
        let lock = dir.join(format!("{}-first.lock", one.name));
        let mode = fs::metadata(&lock).unwrap().mode() & 0o777;
        assert_eq!(mode, file_mode, "{lock:?}");
        // cleanup by one user keeps what it may not remove and breaks nothing.
        one.run(support::bin(), &["cleanup", "-b", &url(dir, "")])
            .assert_code(0);
        two.run(
            support::bin(),
            &["run", "-b", &url(dir, ""), "-n", "after", "--", "true"],
        )
        .assert_code(0);
    }
    let jobs = fs::metadata(grouped.join("jobs")).unwrap();
    assert_eq!(jobs.mode() & 0o7777, 0o2775, "namespace directory mode");
    let jobs = fs::metadata(sticky.join("jobs")).unwrap();
    assert_eq!(jobs.mode() & 0o7777, 0o1777, "namespace directory mode");
}

// ---------------------------------------------------------------------------------------
// namespaces

/// `?namespace=..` stays inside the lock directory: it neither writes nor cleans up the
/// parent's `*.lock` files (another tool's).
#[test]
fn a_dotdot_namespace_stays_inside_the_lock_directory() {
    let top = tempfile::tempdir().unwrap();
    let locks = top.path().join("locks");
    fs::create_dir(&locks).unwrap();
    let other = top.path().join("other.lock");
    victim_file(&other, "");
    let u = url(&locks, "?namespace=..");
    lockhog(&["run", "-b", &u, "-n", "other", "--", "true"]).assert_code(0);
    assert!(locks.join("%2E.").join("other.lock").is_file());
    lockhog(&["cleanup", "-b", &u]).assert_code(0);
    assert_untouched(&other, "");
    let mut beside: Vec<PathBuf> = fs::read_dir(top.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    beside.sort();
    assert_eq!(beside, [locks, other], "written outside the lock directory");
}

/// `.` is not the default namespace, `x.lock` does not block the lock `x`, and a namespace
/// named like the fencing floor breaks nothing.
#[test]
fn namespaces_never_alias_locks_or_the_floor() {
    let dir = tempfile::tempdir().unwrap();
    let base = url(dir.path(), "");
    let run = |query: &str, name: &str| {
        lockhog(&[
            "run",
            "-b",
            &format!("{base}{query}"),
            "-n",
            name,
            "--",
            "true",
        ])
        .code()
    };
    let mut dot = support::hold(
        {
            let mut cmd = lockhog_cmd();
            cmd.args(["hold", "-b", &format!("{base}?namespace=."), "x"]);
            cmd
        },
        "hold in namespace .",
        1,
    );
    assert_eq!(run("", "x"), 0, "namespace . is the default one");
    dot.proc.send("release");
    assert!(dot.proc.wait().success());
    assert_eq!(run("?namespace=y.lock", "a"), 0);
    assert_eq!(run("", "y"), 0, "namespace y.lock blocks the lock y");
    assert_eq!(run("", "z"), 0);
    lockhog(&["cleanup", "-b", &base]).assert_code(0);
    assert_eq!(run("?namespace=.lockhog-fencing", "b"), 0);
    assert_eq!(run("", "c"), 0);
}

// ---------------------------------------------------------------------------------------
// cleanup

/// A lock file another program holds with a POSIX record lock (`lockf`, invisible to flock)
/// survives cleanup, while an unheld one goes.
#[test]
fn cleanup_keeps_files_held_with_posix_locks() {
    let dir = tempfile::tempdir().unwrap();
    let u = url(dir.path(), "");
    for name in ["posix", "stale"] {
        lockhog(&["run", "-b", &u, "-n", name, "--", "true"]).assert_code(0);
    }
    let held = dir.path().join("posix.lock");
    let mut cmd = Command::new("python3");
    cmd.args([
        "-c",
        "import fcntl, sys\nf = open(sys.argv[1], 'r+')\nfcntl.lockf(f, fcntl.LOCK_EX)\n\
         print('locked', flush=True)\nsys.stdin.read()",
    ])
    .arg(&held);
    let mut locker = Proc::spawn(cmd, "python3 lockf");
    assert_eq!(locker.line(), "locked");
    let done = lockhog(&["cleanup", "-b", &u]);
    done.assert_code(0);
    assert_eq!(done.stdout, ["cleanup: removed 1 kept 1"]);
    assert!(held.exists(), "cleanup removed a file held with lockf");
    assert!(!dir.path().join("stale.lock").exists());
    locker.close_stdin();
    assert!(locker.wait().success());
}

/// A namespace directory that is a symlink to a directory full of `*.lock` files: cleanup
/// (and locking) through it is refused and deletes nothing there.
#[test]
fn cleanup_does_not_follow_a_namespace_symlink() {
    let top = tempfile::tempdir().unwrap();
    let (locks, elsewhere) = (top.path().join("locks"), top.path().join("elsewhere"));
    fs::create_dir(&locks).unwrap();
    fs::create_dir(&elsewhere).unwrap();
    for name in ["a.lock", "b.lock"] {
        victim_file(&elsewhere.join(name), "");
    }
    std::os::unix::fs::symlink(&elsewhere, locks.join("ns")).unwrap();
    let u = url(&locks, "?namespace=ns");
    assert_refused(&lockhog(&["cleanup", "-b", &u]), "is not a directory");
    assert_refused(
        &lockhog(&["run", "-b", &u, "-n", "c", "--", "true"]),
        "is not a directory",
    );
    let mut left: Vec<String> = fs::read_dir(&elsewhere)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    assert_eq!(left, ["a.lock", "b.lock"]);
    assert_untouched(&elsewhere.join("a.lock"), "");
}

/// `*.lock` files that are not lockhog's (foreign content, or a name lockhog never makes)
/// survive cleanup.
#[test]
fn cleanup_keeps_files_that_are_not_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let foreign = dir.path().join("app.lock");
    victim_file(&foreign, "4242\n");
    let unencoded = dir.path().join("a b.lock");
    victim_file(&unencoded, "");
    let done = lockhog(&["cleanup", "-b", &url(dir.path(), "")]);
    done.assert_code(0);
    assert_eq!(done.stdout, ["cleanup: removed 0 kept 2"]);
    assert_untouched(&foreign, "4242\n");
    assert_untouched(&unencoded, "");
}
