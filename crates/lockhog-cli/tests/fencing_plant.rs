//! Fencing counters another database account planted, or may reset, are refused: the attack
//! is made as an attacker would make it (a second role or user on the same server creates
//! `lockhog_fencing` first, or shadows it, or holds the right to reset it), and lockhog is run
//! through the CLI as the victim, with its URL in `LOCKHOG_URL`. Each case checks that the run
//! is refused with exit 69 and a message naming the object and its owner, that no token was
//! drawn (so none can be handed out twice), and that once the plant is gone, tokens go on
//! increasing.
//!
//! SQLite has no accounts: there the plant is a database file (or its `-wal` log) that
//! another Unix user owns or that every user may write, or a trigger on the counter.
//!
//! Servers come from `LOCKHOG_TEST_POSTGRES_URL` and `LOCKHOG_TEST_MYSQL_URL` (scripts/test),
//! connecting as their administrator role to make throwaway databases and accounts, removed
//! again by drop guards.

#[allow(dead_code)]
mod support;

use support::{lockhog_cmd, Finished, Proc};

#[cfg(feature = "mysql")]
#[path = "fencing_plant/mysql.rs"]
mod mysql;
#[cfg(feature = "postgres")]
#[path = "fencing_plant/postgres.rs"]
mod postgres;
#[cfg(feature = "sqlite")]
#[path = "fencing_plant/sqlite.rs"]
mod sqlite;

/// The victim's password: long and found nowhere else, so any echo of it is a leak.
const VICTIM_PW: &str = "Vf4pQ8zLm2Tx-victim";

/// `lockhog hold -n NAME` with `LOCKHOG_URL=url`, stdin closed (so it releases at once).
fn hold_once(url: &str, name: &str) -> Finished {
    let mut cmd = lockhog_cmd();
    cmd.env("LOCKHOG_URL", url).args(["hold", "-n", name]);
    let ran = Proc::spawn(cmd, &format!("lockhog hold -n {name}")).finish();
    assert!(
        !ran.stderr.contains(VICTIM_PW) && !ran.stdout.iter().any(|l| l.contains(VICTIM_PW)),
        "the password was printed: {ran:#?}"
    );
    ran
}

/// The token of a successful `hold_once`.
fn token(ran: &Finished) -> u64 {
    ran.assert_code(0);
    let held = ran
        .stdout
        .first()
        .unwrap_or_else(|| panic!("no held line: {ran:#?}"));
    let fields: Vec<&str> = held.split(' ').collect();
    assert_eq!(fields[0], "held", "{ran:#?}");
    fields[3]
        .parse()
        .unwrap_or_else(|_| panic!("token not decimal: {ran:#?}"))
}

/// Asserts that `ran` was refused as a backend error (69), printed no `held` line, and said
/// every one of `needles`.
fn assert_refused(ran: &Finished, needles: &[&str]) {
    ran.assert_code(69);
    assert!(
        !ran.stdout.iter().any(|l| l.starts_with("held")),
        "a lock was held: {ran:#?}"
    );
    for needle in needles {
        assert!(
            ran.stderr.contains(needle),
            "stderr lacks {needle:?}: {ran:#?}"
        );
    }
    eprintln!("refused as it should be: {}", ran.stderr);
}

/// `scheme://user:password@host…/db?…` with the credentials and database replaced.
fn url_as(base: &str, user: &str, password: &str, db: &str) -> String {
    let (scheme, rest) = base.split_once("://").expect("a URL");
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    let (host, path) = rest.split_once('/').expect("a database in the URL");
    let query = path.split_once('?').map_or("", |(_, q)| q);
    let sep = if query.is_empty() { "" } else { "?" };
    format!("{scheme}://{user}:{password}@{host}/{db}{sep}{query}")
}

/// The administrator's URL `base` pointed at database `db`.
fn admin_at(base: &str, db: &str) -> String {
    let (head, path) = base.rsplit_once('/').expect("a database in the URL");
    let query = path
        .split_once('?')
        .map_or(String::new(), |(_, q)| format!("?{q}"));
    format!("{head}/{db}{query}")
}

/// Runs `f` on a runtime of its own: the tests and the drop guards are synchronous.
fn block<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

/// A throwaway database's name, `lhp_<tag>_<pid>`, with the server's URL in environment
/// variable `var` and the administrator's URL pointed at it; `None` when the server is
/// missing (outside CI).
fn throwaway(var: &str, tag: &str) -> Option<(String, String, String)> {
    let base = lockhog::testkit::Target::from_env(var).url()?.to_string();
    let db = format!("lhp_{tag}_{}", std::process::id());
    Some((admin_at(&base, &db), base, db))
}
