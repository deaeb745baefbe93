//! The backend URL of a spawned `lockhog hold` never reaches its command line: every local
//! user can read a process's argv (/proc/PID/cmdline), and the URL may carry a password. The
//! process hog (`HogFrom::Process`) and the testkit's `HoldProcess` pass it in `LOCKHOG_URL`
//! (readable only by the same user), set explicitly so an inherited one cannot take its place.
//!
//! Against the real PostgreSQL (`LOCKHOG_TEST_POSTGRES_URL`) with a role of this test's own
//! whose password is random; a missing server is a skip, or a failure under `CI=true`.
#![cfg(feature = "postgres")]

use std::io::Read;
use std::sync::Once;

use lockhog::hog::{HogFrom, NamedLock, BIN_ENV};
use lockhog::testkit::{HoldProcess, Target};

/// The parent's own `LOCKHOG_URL`: a child that used it instead of the URL it was given would
/// hold on `mem:`, whose resources are not PostgreSQL advisory keys.
const INHERITED: &str = "mem:";

fn init() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        std::env::set_var(BIN_ENV, env!("CARGO_BIN_EXE_lockhog"));
        std::env::set_var("LOCKHOG_URL", INHERITED);
    });
}

fn random_hex() -> String {
    let mut bytes = [0u8; 8];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .expect("read /dev/urandom");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A login role with a random password, dropped on drop.
struct Role {
    admin: tokio_postgres::Client,
    rt: tokio::runtime::Runtime,
    name: String,
    /// The target's URL with this role's credentials.
    url: String,
    password: String,
}

impl Role {
    fn create(admin_url: &str) -> Role {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let admin = rt.block_on(async {
            let (client, conn) = tokio_postgres::connect(admin_url, tokio_postgres::NoTls)
                .await
                .expect("connect as the scripts' role");
            tokio::spawn(conn);
            client
        });
        let hex = random_hex();
        let name = format!("lockhog_argv_{hex}");
        // Distinctive, and with the characters a URL must escape.
        let password = format!("Pa{hex}#/?@ x");
        // SUPERUSER like the scripts' role, so it may use the fencing sequence that role made.
        rt.block_on(admin.batch_execute(&format!(
            "CREATE ROLE {name} LOGIN SUPERUSER PASSWORD '{password}'"
        )))
        .expect("create the role");
        let (scheme, rest) = admin_url.split_once("://").expect("scheme://");
        let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
        let encoded = lockhog::url::percent_encode(&password, |b| b.is_ascii_alphanumeric());
        let url = format!("{scheme}://{name}:{encoded}@{host}");
        Role {
            admin,
            rt,
            name,
            url,
            password,
        }
    }

    /// Every form of the password that must not be on a command line.
    fn forms(&self) -> Vec<String> {
        vec![
            self.password.clone(),
            lockhog::url::percent_encode(&self.password, |b| b.is_ascii_alphanumeric()),
            self.url.clone(),
        ]
    }
}

impl Drop for Role {
    fn drop(&mut self) {
        let _ = self.rt.block_on(
            self.admin
                .batch_execute(&format!("DROP ROLE {}", self.name)),
        );
    }
}

/// Checks the one process whose argv names `lock`: no password, no `-b`, and the URL in its
/// environment.
#[track_caller]
fn assert_url_off_argv(lock: &str, role: &Role) {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmdline
            .split(|&b| b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if args.iter().any(|a| a == lock) {
            found.push((pid, args));
        }
    }
    assert_eq!(found.len(), 1, "one process names {lock:?}: {found:?}");
    let (pid, args) = &found[0];
    for arg in args {
        assert!(!matches!(arg.as_str(), "-b" | "--backend"), "{args:?}");
        for form in role.forms() {
            assert!(!arg.contains(&form), "the password is in argv: {args:?}");
        }
    }
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    let want = format!("LOCKHOG_URL={}", role.url);
    assert!(
        environ.split(|&b| b == 0).any(|v| v == want.as_bytes()),
        "the child's LOCKHOG_URL is not the URL it was given"
    );
}

#[test]
fn a_process_hog_keeps_the_url_off_its_command_line() {
    init();
    let target = Target::from_env("LOCKHOG_TEST_POSTGRES_URL");
    let Some(admin_url) = target.url() else {
        return;
    };
    let role = Role::create(admin_url);
    let lock = format!("argv-hog-{}", random_hex());
    let hog = NamedLock::new(&role.url, &lock)
        .hog_from(HogFrom::Process)
        .hog()
        .unwrap_or_else(|e| panic!("the hog did not hold: {e}"));
    assert!(
        hog.held()[0].resource.starts_with("advisory:"),
        "held on the inherited LOCKHOG_URL, not the given one: {:?}",
        hog.held()
    );
    assert_url_off_argv(&lock, &role);
    hog.release().unwrap();
}

#[test]
fn a_testkit_hold_process_keeps_the_url_off_its_command_line() {
    init();
    let target = Target::from_env("LOCKHOG_TEST_POSTGRES_URL");
    let Some(admin_url) = target.url() else {
        return;
    };
    let role = Role::create(admin_url);
    let lock = format!("argv-testkit-{}", random_hex());
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_lockhog"));
    let mut hold = HoldProcess::start(bin, &role.url, &[], &[&lock]);
    assert!(
        hold.held[0].resource.starts_with("advisory:"),
        "held on the inherited LOCKHOG_URL, not the given one: {:?}",
        hold.held
    );
    assert_url_off_argv(&lock, &role);
    hold.send("release");
    assert!(hold.wait().success());
}
