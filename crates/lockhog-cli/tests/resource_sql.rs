//! `--resource` against the real other clients of PostgreSQL and MySQL, both ways: `psql`
//! holding `pg_advisory_lock(k)`, `pg_advisory_lock(a, b)` or a transaction's
//! `pg_advisory_xact_lock(k)` keeps `lockhog hold --resource advisory:…` out, and lockhog holding
//! it turns `psql`'s `pg_try_advisory_lock` and `pg_try_advisory_xact_lock` (in a transaction of
//! its own) away and makes `pg_advisory_lock` wait; the same with the `mysql` client's
//! `GET_LOCK`. Servers come from `LOCKHOG_TEST_POSTGRES_URL` and `LOCKHOG_TEST_MYSQL_URL`.

#[allow(dead_code)]
mod clients;
#[allow(dead_code)] // helpers for the other test files too
mod support;

use std::process::Command;

use clients::{have, mysql_once, server, Session};
use lockhog::protocol::HeldLine;
use support::{hold, lockhog_cmd, Finished, Hold, Proc};

/// `lockhog <sub> <args…>` with the URL in its environment, as a user would keep a password
/// off argv.
fn lockhog(url: &str, sub: &str, args: &[&str]) -> Command {
    let mut cmd = lockhog_cmd();
    cmd.env("LOCKHOG_URL", url).arg(sub).args(args);
    cmd
}

/// `lockhog hold -n --resource RES`, released at once: exit 0 when free, 1 when held.
fn try_hold(url: &str, res: &str) -> Finished {
    let args = ["-n", "--resource", res];
    Proc::spawn(lockhog(url, "hold", &args), "lockhog hold -n").finish()
}

fn assert_refused(url: &str, res: &str) {
    let done = try_hold(url, res);
    done.assert_code(1);
    assert!(done.stderr.contains("held by someone else"), "{done:#?}");
}

fn assert_free(url: &str, res: &str) {
    let done = try_hold(url, res);
    done.assert_code(0);
    // The same four fields as a name's line, the token `-`.
    let line = HeldLine::new(res, res, None).to_string();
    assert_eq!(done.stdout[0], line, "{done:#?}");
}

/// `lockhog hold --resource RES`, once its `held` line is out.
fn hold_resource(url: &str, res: &str) -> Hold {
    let h = hold(
        lockhog(url, "hold", &["--resource", res]),
        "lockhog hold",
        1,
    );
    assert_eq!(h.held[0].resource, res);
    assert_eq!(h.held[0].token, None, "a foreign lock has no fencing token");
    h
}

fn release(mut h: Hold) {
    h.proc.send("release");
    let done = h.proc.finish();
    assert!(done.status.success(), "{done:#?}");
}

/// Keys of this process only: tests of other processes on the same server never meet them.
fn keys(n: i32) -> (i64, i32, i32) {
    let pid = std::process::id() as i32;
    (i64::from(pid) * 1000 + i64::from(n), pid, -n)
}

fn postgres() -> Option<String> {
    have("psql")?;
    server("LOCKHOG_TEST_POSTGRES_URL")
}

#[test]
fn psql_session_locks_keep_lockhog_out_in_both_key_spaces() {
    let Some(url) = postgres() else { return };
    let (k, a, b) = keys(1);
    let (one, two) = (format!("advisory:{k}"), format!("advisory:{a},{b}"));
    let mut psql = Session::psql(&url);
    assert_eq!(
        psql.query(&format!("SELECT pg_try_advisory_lock({k});")),
        "t"
    );
    assert_refused(&url, &one);
    // The two-int space is another lock space: psql's bigint lock leaves it free.
    assert_free(&url, &two);
    assert_eq!(
        psql.query(&format!("SELECT pg_advisory_lock({a}, {b});")),
        ""
    );
    assert_refused(&url, &two);
    let status = Proc::spawn(
        lockhog(&url, "status", &["--resource", &two]),
        "lockhog status",
    )
    .finish();
    assert!(
        status.stdout[0].starts_with(&format!("held {two} {two} pid%20"))
            && status.stdout[0].contains("resource-test-psql"),
        "{status:#?}"
    );
    assert_eq!(psql.query(&format!("SELECT pg_advisory_unlock({k});")), "t");
    assert_eq!(
        psql.query(&format!("SELECT pg_advisory_unlock({a}, {b});")),
        "t"
    );
    assert_free(&url, &one);
    assert_free(&url, &two);
    psql.quit();
}

#[test]
fn a_transaction_lock_of_psql_keeps_lockhog_out_until_commit() {
    let Some(url) = postgres() else { return };
    let (k, _, _) = keys(2);
    let res = format!("advisory:{k}");
    let mut psql = Session::psql(&url);
    psql.send("BEGIN;");
    assert_eq!(
        psql.query(&format!("SELECT pg_try_advisory_xact_lock({k});")),
        "t"
    );
    assert_refused(&url, &res);
    psql.send("COMMIT;");
    assert_eq!(psql.query("SELECT 'committed';"), "committed");
    assert_free(&url, &res);
    psql.quit();
}

#[test]
fn lockhog_turns_psql_away_and_makes_it_wait() {
    let Some(url) = postgres() else { return };
    let (k, a, b) = keys(3);
    let held = hold_resource(&url, &format!("advisory:{k}"));
    let held_two = hold_resource(&url, &format!("advisory:{a},{b}"));
    let mut psql = Session::psql(&url);
    // Each try, in both key spaces, is turned away.
    let turned_away = |psql: &mut Session, function: &str| {
        for args in [k.to_string(), format!("{a}, {b}")] {
            let sql = format!("SELECT {function}({args});");
            assert_eq!(psql.query(&sql), "f", "{sql}");
        }
    };
    turned_away(&mut psql, "pg_try_advisory_lock");
    // In a transaction of its own, as code under test takes it.
    psql.send("BEGIN;");
    turned_away(&mut psql, "pg_try_advisory_xact_lock");
    psql.send("ROLLBACK;");
    // A blocking lock waits for the release, and then gets it.
    psql.send(&format!("SELECT pg_advisory_lock({k});"));
    release(held);
    assert_eq!(
        psql.answer(),
        "",
        "pg_advisory_lock returned once lockhog released"
    );
    assert_eq!(psql.query(&format!("SELECT pg_advisory_unlock({k});")), "t");
    release(held_two);
    assert_eq!(
        psql.query(&format!("SELECT pg_try_advisory_lock({a}, {b});")),
        "t"
    );
    psql.quit();
}

#[test]
fn lockhog_run_with_a_resource_leaves_the_fencing_token_unset() {
    let Some(url) = postgres() else { return };
    let (k, _, _) = keys(4);
    let res = format!("advisory:{k}");
    let script = "echo \"name=$LOCKHOG_NAME resource=$LOCKHOG_RESOURCE token=${LOCKHOG_FENCING_TOKEN-unset}\"";
    let mut cmd = lockhog(&url, "run", &["--resource", &res, "--", "sh", "-c", script]);
    // A token in our own environment must not leak into the command's.
    cmd.env("LOCKHOG_FENCING_TOKEN", "999");
    let done = Proc::spawn(cmd, "lockhog run --resource").finish();
    done.assert_code(0);
    assert_eq!(
        done.stdout,
        [format!("name={res} resource={res} token=unset")]
    );
}

fn mysql() -> Option<String> {
    have("mysql")?;
    server("LOCKHOG_TEST_MYSQL_URL")
}

/// A `GET_LOCK` name of this process, with the quotes and spaces a spliced name would trip on.
fn lock_name(what: &str) -> String {
    format!("import '{what}' \"{}\"", std::process::id())
}

/// `name` as a SQL string literal for the mysql client (the test's own constant).
fn literal(name: &str) -> String {
    format!("'{}'", name.replace('\'', "''"))
}

#[test]
fn the_mysql_client_keeps_lockhog_out() {
    let Some(url) = mysql() else { return };
    let name = lock_name("client-first");
    let mut client = Session::mysql(&url);
    assert_eq!(
        client.query(&format!("SELECT GET_LOCK({}, 0);", literal(&name))),
        "1"
    );
    assert_refused(&url, &name);
    // Another name is another lock.
    assert_free(&url, &lock_name("other"));
    assert_eq!(
        client.query(&format!("SELECT RELEASE_LOCK({});", literal(&name))),
        "1"
    );
    assert_free(&url, &name);
    client.quit();
}

#[test]
fn lockhog_turns_the_mysql_client_away_and_makes_it_wait() {
    let Some(url) = mysql() else { return };
    let name = lock_name("lockhog-first");
    let held = hold_resource(&url, &name);
    let once = mysql_once(&url, &format!("SELECT GET_LOCK({}, 0)", literal(&name)));
    assert_eq!(once.stdout, ["0"], "{once:#?}");
    let mut client = Session::mysql(&url);
    client.send(&format!("SELECT GET_LOCK({}, 30);", literal(&name)));
    release(held);
    assert_eq!(
        client.answer(),
        "1",
        "GET_LOCK returned once lockhog released"
    );
    assert_refused(&url, &name);
    client.quit();
    assert_free(&url, &name);
}
