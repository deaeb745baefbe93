//! Property tests ("fuzzing" on stable: cargo-fuzz needs a nightly toolchain) of the `lockhog`
//! binary: random bytes and lines on `hold`'s stdin, random argument vectors. Each spawns a
//! process, so a few hundred cases each; every target prints how many cases it ran.
//!
//! - `hold`'s lines: any lock name comes back whole from its `held` and `released` lines, read
//!   by `lockhog::protocol`'s types (and from their JSON forms).
//! - `hold`'s stdin: only a `release` line, end of input or an `abandon` line end it; anything
//!   else is warned about and ignored; it never panics and exits 0; after `abandon` the
//!   (descriptor-bound) lock is free, after `release`/end of input too.
//! - argv: the exit code is one of the documented ones (0, 1, 2, 69, 126, 127 or a `-E` code),
//!   never a panic ("panicked at" on stderr, or death by a signal), and nothing is created
//!   outside the test's temporary directory (the working directory, `HOME`, `TMPDIR` and
//!   `XDG_RUNTIME_DIR` all point into it, and `/tmp` is compared before and after).

#[path = "../../lockhog/tests/fuzz_support/mod.rs"]
mod fuzz_support;

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use fuzz_support::{fuzz_with, odd_piece};
use lockhog::protocol::{HeldLine, ReleasedLine};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError};

const TIMEOUT: Duration = Duration::from_secs(60);

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_lockhog")
}

/// The configuration of a target of `cases` cases.
fn config(cases: u32) -> Config {
    Config {
        // Shrinking re-runs processes: keep a failure's report quick.
        max_shrink_iters: 64,
        ..fuzz_support::config(cases)
    }
}

struct Ran {
    code: Option<i32>,
    out: String,
    err: String,
}

impl std::fmt::Debug for Ran {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.out, self.err
        )
    }
}

/// Runs `lockhog ARGS…` in `home` (also its HOME, TMPDIR and XDG_RUNTIME_DIR) with `input` on
/// stdin, bounded by [`TIMEOUT`].
fn run(home: &Path, args: &[String], input: &[u8]) -> Ran {
    let out_path = home.join(".out");
    let err_path = home.join(".err");
    let mut child = Command::new(bin())
        .args(args)
        .current_dir(home)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("TMPDIR", home)
        .env("XDG_RUNTIME_DIR", home)
        .stdin(Stdio::piped())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .expect("spawn lockhog");
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    // A writer thread: the child may exit (abandon) before reading everything.
    std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let pid = child.id() as libc::pid_t;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    let status = match rx.recv_timeout(TIMEOUT) {
        Ok(s) => s.unwrap(),
        Err(_) => {
            // SAFETY: plain kill(2) of our own child, not yet reaped.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("lockhog {args:?} did not exit within {TIMEOUT:?}");
        }
    };
    let read = |p: &Path| String::from_utf8_lossy(&std::fs::read(p).unwrap()).into_owned();
    let ran = Ran {
        code: status.code(),
        out: read(&out_path),
        err: read(&err_path),
    };
    let _ = std::fs::remove_file(out_path);
    let _ = std::fs::remove_file(err_path);
    ran
}

/// Lines for `hold`'s stdin: the commands, near misses, junk, blank lines, invalid UTF-8.
fn stdin_line() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"RELEASE".to_vec()),
        Just(b"release now".to_vec()),
        Just(b"releas".to_vec()),
        Just(b"abandon!".to_vec()),
        Just(b"Abandon".to_vec()),
        Just(b"".to_vec()),
        Just(b"\r".to_vec()),
        Just(b"\0release".to_vec()),
        Just(b"\xff\xfe".to_vec()),
        "[ -~]{0,40}".prop_map(String::into_bytes),
        prop::collection::vec(any::<u8>(), 0..64)
            .prop_map(|v| v.into_iter().filter(|&b| b != b'\n').collect()),
    ]
}

/// How a line ends `hold`, as the contract says: the line trimmed of whitespace is exactly
/// `release` or `abandon`.
fn command_of(line: &[u8]) -> Option<&'static str> {
    match String::from_utf8_lossy(line).trim() {
        "release" => Some("release"),
        "abandon" => Some("abandon"),
        _ => None,
    }
}

#[test]
fn hold_stdin_protocol() {
    let home = tempfile::tempdir().unwrap();
    let locks = home.path().join("locks");
    let url = format!("file://{}", locks.display());
    let strategy = (
        prop::collection::vec(stdin_line(), 0..12),
        prop::sample::select(vec![
            None,
            Some(b"release".as_slice()),
            Some(b"  release  ".as_slice()),
            Some(b"abandon".as_slice()),
            Some(b"\tabandon\r".as_slice()),
        ]),
        any::<bool>(),
        any::<bool>(),
    );
    fuzz_with(
        config(300),
        "hold stdin protocol",
        strategy,
        |(lines, end, json, trailing_newline)| {
            let mut input = Vec::new();
            let mut want = "eof";
            for line in lines.iter().map(Vec::as_slice).chain(end) {
                input.extend_from_slice(line);
                input.push(b'\n');
                if let Some(cmd) = command_of(line) {
                    want = cmd;
                    break;
                }
            }
            if !trailing_newline && input.last() == Some(&b'\n') && want == "eof" {
                input.pop();
                // A last line without a newline still counts when it is a command.
                if let Some(cmd) = command_of(input.rsplit(|&b| b == b'\n').next().unwrap()) {
                    want = cmd;
                }
            }
            let mut args = vec!["hold".to_string(), "-b".into(), url.clone(), "-n".into()];
            if json {
                args.push("--json".into());
            }
            args.push("fuzz-hold".into());
            let ran = run(home.path(), &args, &input);
            prop_assert!(!ran.err.contains("panicked at"), "{:?}", ran);
            prop_assert_eq!(ran.code, Some(0), "{:?}", ran);
            let (held, released) = hold_lines(&ran, json)?;
            prop_assert_eq!(held.name, "fuzz-hold");
            match want {
                "abandon" => prop_assert!(released.is_none(), "{:?}", ran),
                _ => prop_assert_eq!(released, Some(ReleasedLine::new("fuzz-hold"))),
            }
            // Either way the flock died with the process or was released: free again.
            let again = run(
                home.path(),
                &[
                    "run".into(),
                    "-b".into(),
                    url.clone(),
                    "-n".into(),
                    "fuzz-hold".into(),
                    "--".into(),
                    "true".into(),
                ],
                b"",
            );
            prop_assert_eq!(again.code, Some(0), "left held: {:?}", again);
            Ok(())
        },
    );
}

/// The `held` line and the `released` line (if any) of a `hold` of one lock, which must be all
/// it printed, read from the plain form by [`HeldLine`] and [`ReleasedLine`] or from JSON.
fn hold_lines(ran: &Ran, json: bool) -> Result<(HeldLine, Option<ReleasedLine>), TestCaseError> {
    let lines: Vec<&str> = ran.out.lines().collect();
    prop_assert!(matches!(lines.len(), 1 | 2), "{:?}", ran);
    let fail = |e: String| TestCaseError::fail(format!("{e}: {ran:?}"));
    let (held, released) = if json {
        let value = |line: &str| {
            serde_json::from_str::<serde_json::Value>(line).map_err(|e| fail(e.to_string()))
        };
        let text = |v: &serde_json::Value, key: &str| {
            v[key]
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| fail(format!("no {key}")))
        };
        let h = value(lines[0])?;
        prop_assert_eq!(&h["event"], "held");
        let token = h["token"].as_u64().ok_or_else(|| fail("no token".into()))?;
        let held = HeldLine::new(text(&h, "name")?, text(&h, "resource")?, token);
        let released = match lines.get(1) {
            Some(line) => {
                let r = value(line)?;
                prop_assert_eq!(&r["event"], "released");
                Some(ReleasedLine::new(text(&r, "name")?))
            }
            None => None,
        };
        (held, released)
    } else {
        let held = lines[0].parse().map_err(|e| fail(format!("{e}")))?;
        let released = lines
            .get(1)
            .map(|l| l.parse().map_err(|e| fail(format!("{e}"))))
            .transpose()?;
        (held, released)
    };
    prop_assert!(held.token.is_some_and(|t| t > 0), "{:?}", ran);
    Ok((held, released))
}

/// Lock names as a test might pick them: spaces, `%` and what looks encoded already, control
/// characters, non-ASCII, a leading `-`; never NUL (argv cannot carry it), at most 1,024 bytes.
fn odd_name() -> impl Strategy<Value = String> {
    prop::collection::vec(odd_piece(), 1..8)
        .prop_map(|v| v.concat().replace('\0', ""))
        .prop_filter("a valid name", |n| !n.is_empty() && n.len() <= 1024)
}

#[test]
fn hold_lines_carry_any_name() {
    let home = tempfile::tempdir().unwrap();
    let url = format!("file://{}", home.path().join("locks").display());
    fuzz_with(config(150), "hold lines of odd names", odd_name(), |name| {
        let mut plain = None;
        for json in [false, true] {
            let mut args = vec!["hold".to_string(), "-b".into(), url.clone(), "-n".into()];
            if json {
                args.push("--json".into());
            }
            args.extend(["--".to_string(), name.clone()]);
            // End of input at once: held, then released.
            let ran = run(home.path(), &args, b"");
            prop_assert_eq!(ran.code, Some(0), "{:?}", ran);
            let (held, released) = hold_lines(&ran, json)?;
            prop_assert_eq!(&held.name, &name);
            prop_assert_eq!(released, Some(ReleasedLine::new(name.clone())));
            // Both forms name the same resource.
            let resource = plain.get_or_insert_with(|| held.resource.clone());
            prop_assert_eq!(&held.resource, resource);
        }
        Ok(())
    });
}

/// Argument vectors: a subcommand (or junk), then flags, values and names drawn from what the
/// parser knows, plus junk. `run`'s command is only ever `true`, `false` or a missing
/// program, and `bench` and `torture` always get an option they refuse, so no case does work
/// beyond parsing, connecting to a temporary directory or a refused port, and locking there.
fn argv(tmp: &Path) -> impl Strategy<Value = Vec<String>> {
    let url = format!("file://{}/locks", tmp.display());
    let fcntl = format!("{url}?mode=fcntl");
    let token = prop_oneof![
        Just("-b".to_string()),
        Just("--backend".to_string()),
        Just(url.clone()),
        Just(fcntl),
        Just("mem:".to_string()),
        Just("bogus://x".to_string()),
        Just("redis://127.0.0.1:1".to_string()),
        Just("postgres://u:pw@127.0.0.1:1/db".to_string()),
        Just("file://relative".to_string()),
        Just(format!("{url}?namespace=")),
        Just("-n".to_string()),
        Just("--no-wait".to_string()),
        Just("-w".to_string()),
        Just("--wait".to_string()),
        Just("--ttl".to_string()),
        Just("--json".to_string()),
        Just("-E".to_string()),
        Just("--conflict-exit-code".to_string()),
        Just("--help".to_string()),
        Just("-h".to_string()),
        Just("-V".to_string()),
        Just("0".to_string()),
        Just("0.25".to_string()),
        Just("-1".to_string()),
        Just("1e309".to_string()),
        Just("nan".to_string()),
        Just("99999999999999999999".to_string()),
        Just("300".to_string()),
        Just("".to_string()),
        Just("x".repeat(1025)),
        "[a-z]{1,6}",
        "-{1,2}[a-z-]{1,8}",
        "[ -~]{0,12}",
        any::<String>().prop_map(|s| s.replace('\0', "")),
    ];
    let sub = prop_oneof![
        Just("run"),
        Just("hold"),
        Just("status"),
        Just("cleanup"),
        Just("help"),
        Just("bench"),
        Just("torture"),
        Just("torture-worker"),
        Just("--help"),
        Just("--version"),
        Just("nope"),
        Just(""),
    ];
    let command = prop::sample::select(vec!["true", "false", "./no-such-program"]);
    (
        sub,
        prop::collection::vec(token, 0..8),
        prop::option::of(command),
    )
        .prop_map(move |(sub, mut tokens, command)| {
            // No `--` but the one added below: what follows it is a command to run, and only
            // harmless ones may be.
            tokens.retain(|t| t != "--");
            let mut args = vec![sub.to_string()];
            if matches!(sub, "bench" | "torture" | "torture-worker") {
                // Refused by the parser whatever else is there: no benchmark or torture runs.
                tokens.push("--no-such-option-for-fuzzing".into());
            }
            args.append(&mut tokens);
            if let (true, Some(c)) = (sub == "run", command) {
                args.push("--".into());
                args.push(c.into());
            }
            args
        })
}

fn entries(dir: &Path) -> BTreeSet<PathBuf> {
    std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default()
}

#[test]
fn argv_never_panics_and_exits_as_documented() {
    let home = tempfile::tempdir().unwrap();
    let tmp_before = entries(Path::new("/tmp"));
    let strategy = argv(home.path());
    fuzz_with(config(400), "argv", strategy, |args| {
        // `run`'s command is `true`/`false`/missing, so its own status is 0, 1 or 127.
        let conflict = args
            .windows(2)
            .find(|w| w[0] == "-E" || w[0] == "--conflict-exit-code")
            .and_then(|w| w[1].parse::<u8>().ok());
        // Stdin ends at once: a `hold` that got its locks releases them and exits 0.
        let ran = run(home.path(), &args, b"");
        prop_assert!(!ran.err.contains("panicked at"), "{args:?}: {:?}", ran);
        let Some(code) = ran.code else {
            return Err(TestCaseError::fail(format!(
                "{args:?}: killed by a signal: {ran:?}"
            )));
        };
        let documented = [0, 1, 2, 69, 126, 127].contains(&code)
            || conflict.is_some_and(|c| i32::from(c) == code);
        prop_assert!(documented, "{args:?}: exit {code}: {:?}", ran);
        Ok(())
    });
    // Nothing outside the temporary directory: not in /tmp, not in the working directory of
    // the test (the crate's directory).
    let tmp_after = entries(Path::new("/tmp"));
    let created: Vec<_> = tmp_after
        .difference(&tmp_before)
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            // Other tests and tools of this machine create their own temporary files at the
            // same time: only lockhog's default lock directory counts.
            name.starts_with("lockhog-")
                && !name.starts_with("lockhog-testkit-")
                && !name.starts_with("lockhog-injection-")
        })
        .collect();
    assert!(
        created.is_empty(),
        "created outside the temp dir: {created:?}"
    );
    let cwd = std::env::current_dir().unwrap();
    assert!(!cwd.join("locks").exists() && !cwd.join("relative").exists());
}
