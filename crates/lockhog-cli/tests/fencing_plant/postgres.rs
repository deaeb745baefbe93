//! PostgreSQL: a role with CREATE on `public` (the default before PostgreSQL 15) plants
//! `lockhog_fencing`, shadows it from the victim's `"$user"` schema, plants `nextval(text)`,
//! or is granted UPDATE (setval) on the real one.

use tokio_postgres::NoTls;

use super::{assert_refused, block, hold_once, throwaway, token, url_as, VICTIM_PW};

/// Runs `sql` as the administrator on `url`.
fn try_exec(url: &str, sql: &str) -> Result<(), String> {
    block(async {
        let (client, conn) = tokio_postgres::connect(url, NoTls)
            .await
            .map_err(|e| format!("connect as the administrator: {e}"))?;
        tokio::spawn(conn);
        let done = client.batch_execute(sql).await;
        done.map_err(|e| format!("{sql}: {:?}", e.as_db_error().map(|d| d.message())))
    })
}

fn exec(url: &str, sql: &str) {
    try_exec(url, sql).unwrap_or_else(|e| panic!("{e}"));
}

/// One value of `sql`, as text.
fn value(url: &str, sql: &str) -> String {
    block(async {
        let (client, conn) = tokio_postgres::connect(url, NoTls).await.expect("connect");
        tokio::spawn(conn);
        let rows = client.simple_query(sql).await.expect(sql);
        rows.iter()
            .find_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
                _ => None,
            })
            .unwrap_or_else(|| panic!("{sql}: no value"))
    })
}

/// A throwaway database with a victim role (lockhog's, logging in with a password) and an
/// attacker role, both plain; `public` is open for CREATE to everyone, as it was by default
/// before PostgreSQL 15. Dropped, with both roles, when the value is.
struct Plant {
    base: String,
    admin: String,
    db: String,
    victim: String,
    attacker: String,
}

impl Plant {
    fn new(tag: &str) -> Option<Plant> {
        let (admin, base, db) = throwaway("LOCKHOG_TEST_POSTGRES_URL", tag)?;
        let (victim, attacker) = (format!("{db}_victim"), format!("{db}_attacker"));
        let plant = Plant {
            admin,
            base,
            db,
            victim,
            attacker,
        };
        plant.drop_all().unwrap_or_else(|e| panic!("{e}"));
        let (db, victim, attacker) = (&plant.db, &plant.victim, &plant.attacker);
        exec(
            &plant.base,
            &format!(
                "CREATE ROLE \"{victim}\" LOGIN PASSWORD '{VICTIM_PW}'; \
                 CREATE ROLE \"{attacker}\" LOGIN"
            ),
        );
        exec(&plant.base, &format!("CREATE DATABASE \"{db}\""));
        plant.admin("GRANT CREATE ON SCHEMA public TO PUBLIC");
        Some(plant)
    }

    /// Drops the database and both roles (one statement each: DROP DATABASE cannot run in
    /// the implicit transaction of several).
    fn drop_all(&self) -> Result<(), String> {
        let (db, victim, attacker) = (&self.db, &self.victim, &self.attacker);
        try_exec(
            &self.base,
            &format!("DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)"),
        )?;
        try_exec(&self.base, &format!("DROP ROLE IF EXISTS \"{victim}\""))?;
        try_exec(&self.base, &format!("DROP ROLE IF EXISTS \"{attacker}\""))
    }

    fn admin(&self, sql: &str) {
        exec(&self.admin, sql);
    }

    fn as_role(&self, role: &str, sql: &str) {
        exec(&self.admin, &format!("SET ROLE \"{role}\"; {sql}"));
    }

    fn attacker(&self, sql: &str) {
        self.as_role(&self.attacker, sql);
    }

    fn victim(&self, sql: &str) {
        self.as_role(&self.victim, sql);
    }

    /// `lockhog hold` as the victim.
    fn hold(&self) -> super::Finished {
        hold_once(
            &url_as(&self.base, &self.victim, VICTIM_PW, &self.db),
            "plant",
        )
    }

    fn value(&self, sql: &str) -> String {
        value(&self.admin, sql)
    }
}

impl Drop for Plant {
    fn drop(&mut self) {
        if let Err(e) = self.drop_all() {
            eprintln!("cleanup failed: {e}");
        }
    }
}

#[test]
fn planted_sequence_in_public_is_refused() {
    let Some(p) = Plant::new("pg_public") else {
        return;
    };
    p.attacker(
        "CREATE SEQUENCE public.lockhog_fencing; \
         GRANT ALL ON SEQUENCE public.lockhog_fencing TO PUBLIC; \
         SELECT setval('public.lockhog_fencing', 41)",
    );
    for _ in 0..2 {
        let ran = p.hold();
        assert_refused(&ran, &["public.lockhog_fencing", &p.attacker, "owned by"]);
        // The attacker resets it between runs: had a token been drawn, the next would repeat.
        p.attacker("SELECT setval('public.lockhog_fencing', 41)");
    }
    assert_eq!(
        p.value("SELECT last_value FROM public.lockhog_fencing"),
        "41",
        "lockhog drew from the planted sequence"
    );
    // Without the plant, lockhog creates its own and counts up.
    p.admin("DROP SEQUENCE public.lockhog_fencing");
    let first = token(&p.hold());
    assert!(token(&p.hold()) > first);
    let owner = "SELECT pg_get_userbyid(relowner) FROM pg_class WHERE relname = 'lockhog_fencing'";
    assert_eq!(p.value(owner), p.victim);
}

#[test]
fn planted_nextval_function_is_not_called() {
    let Some(p) = Plant::new("pg_nextval") else {
        return;
    };
    let first = token(&p.hold());
    // An untyped 'lockhog_fencing' argument prefers text over regclass: an unqualified
    // nextval('lockhog_fencing') would call this, with the victim's privileges.
    p.attacker(
        "CREATE FUNCTION public.nextval(text) RETURNS bigint LANGUAGE sql AS 'SELECT 7::bigint'",
    );
    let second = token(&p.hold());
    let third = token(&p.hold());
    assert!(first < second && second < third, "{first} {second} {third}");
    // The same for the lock function: an untyped $1 would resolve to this one.
    p.attacker(
        "CREATE FUNCTION public.pg_try_advisory_lock(text) RETURNS boolean \
           LANGUAGE sql AS 'SELECT true'",
    );
    assert!(token(&p.hold()) > third);
}

#[test]
fn user_schema_shadow_is_refused() {
    let Some(p) = Plant::new("pg_user") else {
        return;
    };
    let first = token(&p.hold());
    // A schema named after the victim comes first on the default search_path ("$user").
    let (victim, attacker) = (&p.victim, &p.attacker);
    p.admin(&format!(
        "CREATE SCHEMA \"{victim}\" AUTHORIZATION \"{attacker}\"; \
         GRANT USAGE, CREATE ON SCHEMA \"{victim}\" TO \"{victim}\""
    ));
    // Empty, it is where a new sequence would go: refused, the schema being the attacker's.
    p.admin("DROP SEQUENCE public.lockhog_fencing");
    let ran = p.hold();
    assert_refused(&ran, &[&format!("schema {victim}"), attacker]);
    p.victim("CREATE SEQUENCE public.lockhog_fencing START 100");
    p.attacker(&format!(
        "CREATE SEQUENCE \"{victim}\".lockhog_fencing; \
         GRANT ALL ON SEQUENCE \"{victim}\".lockhog_fencing TO PUBLIC"
    ));
    let ran = p.hold();
    assert_refused(&ran, &[&format!("{victim}.lockhog_fencing"), attacker]);
    let drawn = format!("SELECT is_called FROM \"{victim}\".lockhog_fencing");
    assert_eq!(p.value(&drawn), "f", "lockhog drew from the shadow");
    p.admin(&format!("DROP SCHEMA \"{victim}\" CASCADE"));
    assert!(token(&p.hold()) >= 100 && first < 100);
}

#[test]
fn update_grant_and_non_sequence_are_refused() {
    let Some(p) = Plant::new("pg_grant") else {
        return;
    };
    let first = token(&p.hold());
    let attacker = &p.attacker;
    p.victim(&format!(
        "GRANT UPDATE ON SEQUENCE public.lockhog_fencing TO \"{attacker}\""
    ));
    assert_refused(&p.hold(), &["public.lockhog_fencing", "UPDATE", attacker]);
    p.victim("GRANT UPDATE ON SEQUENCE public.lockhog_fencing TO PUBLIC");
    assert_refused(&p.hold(), &["public.lockhog_fencing", "PUBLIC"]);
    p.victim("REVOKE UPDATE ON SEQUENCE public.lockhog_fencing FROM PUBLIC");
    p.victim(&format!(
        "REVOKE UPDATE ON SEQUENCE public.lockhog_fencing FROM \"{attacker}\""
    ));
    assert!(token(&p.hold()) > first);
    p.admin("DROP SEQUENCE public.lockhog_fencing");
    p.attacker("CREATE TABLE public.lockhog_fencing (value bigint)");
    assert_refused(&p.hold(), &["public.lockhog_fencing", "not a sequence"]);
}

#[test]
fn sequence_made_by_earlier_versions_keeps_counting() {
    let Some(p) = Plant::new("pg_migrate") else {
        return;
    };
    // What earlier versions ran: an unqualified CREATE, landing in the first schema of the
    // search_path, owned by lockhog's role, which has handed out tokens up to 1000.
    p.victim(
        "CREATE SEQUENCE IF NOT EXISTS lockhog_fencing; SELECT setval('lockhog_fencing', 1000)",
    );
    assert_eq!(token(&p.hold()), 1001);
    assert_eq!(token(&p.hold()), 1002);
    let count = "SELECT count(*) FROM pg_class WHERE relname = 'lockhog_fencing'";
    assert_eq!(p.value(count), "1");
}

/// `lockhog run --permits 2 -n sem -- echo ran` as the victim.
fn run_permits(p: &Plant) -> super::Finished {
    let mut cmd = super::lockhog_cmd();
    cmd.env("LOCKHOG_URL", url_as(&p.base, &p.victim, VICTIM_PW, &p.db))
        .args(["run", "--permits", "2", "-n", "sem", "--", "echo", "ran"]);
    let ran = super::Proc::spawn(cmd, "lockhog run --permits 2 sem").finish();
    assert!(
        !ran.stderr.contains(VICTIM_PW) && !ran.stdout.iter().any(|l| l.contains(VICTIM_PW)),
        "the password was printed: {ran:#?}"
    );
    ran
}

/// The semaphore counts are kept like the fencing sequence: a planted table, or the victim's
/// own once another role may write to it, is refused before any count is written or any
/// command runs; another role could otherwise raise a count and admit more holders.
#[test]
fn planted_or_writable_semaphore_table_is_refused() {
    let Some(p) = Plant::new("pg_sem") else {
        return;
    };
    let attacker = &p.attacker;
    p.attacker(
        "CREATE TABLE public.lockhog_semaphores (namespace bytea, name bytea, permits int, \
           PRIMARY KEY (namespace, name)); \
         GRANT ALL ON public.lockhog_semaphores TO PUBLIC",
    );
    let refused = |ran: &super::Finished, needles: &[&str]| {
        assert_refused(ran, needles);
        assert!(ran.stdout.is_empty(), "the command ran: {ran:#?}");
    };
    refused(
        &run_permits(&p),
        &["public.lockhog_semaphores", attacker, "owned by"],
    );
    let rows = "SELECT count(*) FROM public.lockhog_semaphores";
    assert_eq!(
        p.value(rows),
        "0",
        "a count was written to the planted table"
    );

    // Without the plant, lockhog creates its own and records the count.
    p.admin("DROP TABLE public.lockhog_semaphores");
    let ran = run_permits(&p);
    ran.assert_code(0);
    assert_eq!(ran.stdout, ["ran"]);
    let owner = "SELECT pg_get_userbyid(relowner) FROM pg_class \
                 WHERE relname = 'lockhog_semaphores'";
    assert_eq!(p.value(owner), p.victim);
    assert_eq!(
        p.value("SELECT permits FROM public.lockhog_semaphores"),
        "2"
    );

    // Its own table, once the attacker may change counts in it, is refused too.
    p.victim(&format!(
        "GRANT UPDATE ON public.lockhog_semaphores TO \"{attacker}\""
    ));
    refused(
        &run_permits(&p),
        &["public.lockhog_semaphores", "UPDATE", attacker],
    );
    p.victim(&format!(
        "REVOKE UPDATE ON public.lockhog_semaphores FROM \"{attacker}\""
    ));
    assert_eq!(run_permits(&p).stdout, ["ran"]);
}
