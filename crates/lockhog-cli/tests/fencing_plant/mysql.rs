//! MariaDB: another account with CREATE on lockhog's database creates `lockhog_fencing` first,
//! shaped to repeat tokens on its own (a cycling sequence, a table with a trigger, a MEMORY
//! table). MySQL and MariaDB record no owner for tables and sequences, so which account plants
//! the object makes no difference to what lockhog can see: the plant is made by a separate
//! connection of the administrator, and lockhog runs on the throwaway database as a throwaway
//! account of its own (with a password found nowhere else, so the check that no output carries
//! it means something, and no word of a message is masked for looking like it).

use mysql_async::prelude::Queryable;

use super::{assert_refused, block, hold_once, throwaway, token, url_as, VICTIM_PW};

/// A throwaway database and the account lockhog runs as, dropped when the value is.
struct Plant {
    base: String,
    /// The administrator on the throwaway database.
    url: String,
    /// The victim (lockhog's account) on the throwaway database.
    victim_url: String,
    db: String,
}

impl Plant {
    fn new(tag: &str) -> Option<Plant> {
        let (url, base, db) = throwaway("LOCKHOG_TEST_MYSQL_URL", tag)?;
        let victim = format!("{db}_v");
        let victim_url = url_as(&base, &victim, VICTIM_PW, &db);
        let plant = Plant {
            base,
            url,
            victim_url,
            db,
        };
        let db = &plant.db;
        plant.exec_at(
            &plant.base,
            &format!(
                "DROP DATABASE IF EXISTS `{db}`; CREATE DATABASE `{db}`; \
                 DROP USER IF EXISTS '{victim}'@'%'; \
                 CREATE USER '{victim}'@'%' IDENTIFIED BY '{VICTIM_PW}'; \
                 GRANT ALL ON `{db}`.* TO '{victim}'@'%'"
            ),
        );
        Some(plant)
    }

    fn exec_at(&self, url: &str, sql: &str) {
        self.try_exec(url, sql).unwrap_or_else(|e| panic!("{e}"));
    }

    fn try_exec(&self, url: &str, sql: &str) -> Result<(), String> {
        block(async {
            let mut conn = mysql_async::Conn::from_url(url)
                .await
                .map_err(|e| format!("connect: {e}"))?;
            let done = conn
                .query_drop(sql)
                .await
                .map_err(|e| format!("{sql}: {e}"));
            let _ = conn.disconnect().await;
            done
        })
    }

    /// Runs `sql` in the throwaway database.
    fn exec(&self, sql: &str) {
        self.exec_at(&self.url, sql);
    }

    fn hold(&self) -> super::Finished {
        hold_once(&self.victim_url, "plant")
    }
}

impl Drop for Plant {
    fn drop(&mut self) {
        let db = &self.db;
        let sql = format!("DROP DATABASE IF EXISTS `{db}`; DROP USER IF EXISTS '{db}_v'@'%'");
        if let Err(e) = self.try_exec(&self.base, &sql) {
            eprintln!("cleanup failed: {e}");
        }
    }
}

#[test]
fn planted_cycling_sequence_is_refused() {
    let Some(p) = Plant::new("my_cycle") else {
        return;
    };
    p.exec("CREATE SEQUENCE lockhog_fencing MAXVALUE 2 CYCLE NOCACHE");
    for _ in 0..3 {
        assert_refused(&p.hold(), &[&format!("{}.lockhog_fencing", p.db), "CYCLE"]);
    }
    p.exec("DROP SEQUENCE lockhog_fencing; CREATE SEQUENCE lockhog_fencing INCREMENT BY -1");
    assert_refused(&p.hold(), &["lockhog_fencing", "INCREMENT BY -1"]);
    // Without the plant, lockhog creates its own and counts up.
    p.exec("DROP SEQUENCE lockhog_fencing");
    let first = token(&p.hold());
    assert!(token(&p.hold()) > first);
    assert!(token(&p.hold()) > first + 1);
}

#[test]
fn planted_table_with_trigger_or_memory_engine_is_refused() {
    let Some(p) = Plant::new("my_table") else {
        return;
    };
    let table = "CREATE TABLE lockhog_fencing \
                 (id TINYINT UNSIGNED PRIMARY KEY, value BIGINT UNSIGNED NOT NULL)";
    p.exec(&format!(
        "{table} ENGINE=InnoDB; INSERT INTO lockhog_fencing VALUES (1, 0); \
         CREATE TRIGGER lhp_reset BEFORE UPDATE ON lockhog_fencing \
           FOR EACH ROW SET NEW.value = 5"
    ));
    for _ in 0..2 {
        assert_refused(&p.hold(), &["lockhog_fencing", "lhp_reset"]);
    }
    p.exec(&format!(
        "DROP TABLE lockhog_fencing; {table} ENGINE=MEMORY; \
         INSERT INTO lockhog_fencing VALUES (1, 0)"
    ));
    assert_refused(&p.hold(), &["lockhog_fencing", "MEMORY"]);
    p.exec(
        "CREATE VIEW lockhog_fencing_v AS SELECT 1; DROP TABLE lockhog_fencing; \
            RENAME TABLE lockhog_fencing_v TO lockhog_fencing",
    );
    assert_refused(&p.hold(), &["lockhog_fencing", "VIEW"]);
}

#[test]
fn counters_made_by_earlier_versions_keep_counting() {
    let Some(p) = Plant::new("my_migrate") else {
        return;
    };
    // What earlier versions created, having handed out tokens up to 1000.
    p.exec(
        "CREATE SEQUENCE lockhog_fencing START WITH 1 INCREMENT BY 1 MINVALUE 1 CACHE 1000 \
           ENGINE=InnoDB; SELECT SETVAL(lockhog_fencing, 1000)",
    );
    assert_eq!(token(&p.hold()), 1001);
    p.exec(
        "DROP SEQUENCE lockhog_fencing; CREATE TABLE lockhog_fencing \
           (id TINYINT UNSIGNED PRIMARY KEY, value BIGINT UNSIGNED NOT NULL) ENGINE=InnoDB; \
         INSERT INTO lockhog_fencing VALUES (1, 500)",
    );
    assert_eq!(token(&p.hold()), 501);
    assert_eq!(token(&p.hold()), 502);
}
