//! Bad `--resource` values and backends without resources: `hold`, `run` and `status` exit 2
//! with a message naming the expected form, before connecting, so nothing is created (no lock
//! directory, no database file, no file at a relative path) and no server is dialled (the
//! servers here do not exist: dialling one would exit 69).

#[allow(dead_code)] // helpers for the other test files too
mod support;

use std::path::Path;

use support::{lockhog_cmd, Finished, Proc};

/// `lockhog <sub> -b URL <args…>` run in `cwd`.
fn lockhog(cwd: &Path, url: &str, sub: &str, args: &[&str]) -> Finished {
    let mut cmd = lockhog_cmd();
    cmd.current_dir(cwd).arg(sub).arg("-b").arg(url).args(args);
    Proc::spawn(cmd, &format!("lockhog {sub} {args:?}")).finish()
}

/// Every command refuses `--resource res` on `url` with exit 2 and `expected` in its message.
fn refused_everywhere(cwd: &Path, url: &str, res: &str, expected: &str) {
    let runs = [
        lockhog(cwd, url, "hold", &["-n", "--resource", res]),
        lockhog(cwd, url, "run", &["--resource", res, "--", "true"]),
        lockhog(cwd, url, "status", &["--resource", res]),
    ];
    for done in runs {
        done.assert_code(2);
        assert!(done.stdout.is_empty(), "{done:#?}");
        assert!(
            done.stderr.contains(expected) && done.stderr.contains("invalid option"),
            "{res:?} on {url}: expected {expected:?} in {done:#?}"
        );
    }
}

/// The names in `dir`, which should be none.
fn entries(dir: &Path) -> Vec<std::ffi::OsString> {
    let read = std::fs::read_dir(dir).unwrap();
    read.map(|e| e.unwrap().file_name()).collect()
}

#[test]
fn bad_advisory_keys_are_refused_before_dialling() {
    let cwd = tempfile::tempdir().unwrap();
    let url = "postgres://nobody@127.0.0.1:1/none";
    let form = "advisory:<i64> for pg_advisory_lock(bigint), or advisory:<i32>,<i32>";
    for res in [
        "advisory:abc",
        "advisory:1,2,3",
        "advisory:2147483648,1",
        "advisory:1,-2147483649",
        "advisory:9223372036854775808",
        "advisory:+1",
        "42",
    ] {
        refused_everywhere(cwd.path(), url, res, form);
    }
    assert!(entries(cwd.path()).is_empty());
}

#[test]
fn get_lock_names_over_64_characters_are_refused_before_dialling() {
    let cwd = tempfile::tempdir().unwrap();
    let url = "mysql://nobody@127.0.0.1:1/none";
    for res in ["x".repeat(65), "é".repeat(65), String::new()] {
        refused_everywhere(
            cwd.path(),
            url,
            &res,
            "a GET_LOCK name of 1 to 64 characters",
        );
    }
    assert!(entries(cwd.path()).is_empty());
}

#[test]
fn relative_and_directory_paths_are_refused_and_create_nothing() {
    let cwd = tempfile::tempdir().unwrap();
    let locks = cwd.path().join("locks");
    let url = format!("file://{}", locks.display());
    let long = format!("/{}", "x".repeat(1100));
    for res in [
        "app.pid",
        "run/app.pid",
        "./app.pid",
        "/tmp/",
        "/tmp/..",
        "/",
    ] {
        refused_everywhere(cwd.path(), &url, res, "an absolute path to a file");
    }
    refused_everywhere(cwd.path(), &url, &long, "a resource is 1 to 1024 bytes");
    assert!(entries(cwd.path()).is_empty(), "{:?}", entries(cwd.path()));
}

#[test]
fn backends_without_resources_refuse_naming_those_with_them() {
    let cwd = tempfile::tempdir().unwrap();
    let db = cwd.path().join("locks.db");
    for url in [format!("sqlite://{}", db.display()), "mem:".to_string()] {
        let scheme = url.split(':').next().unwrap();
        for res in ["/run/app.pid", "advisory:42"] {
            refused_everywhere(
                cwd.path(),
                &url,
                res,
                &format!("the {scheme} backend locks names only"),
            );
            refused_everywhere(cwd.path(), &url, res, "file: (an absolute path), postgres:");
        }
    }
    assert!(entries(cwd.path()).is_empty(), "{:?}", entries(cwd.path()));
}

#[test]
fn run_takes_a_name_or_a_resource_not_both() {
    let cwd = tempfile::tempdir().unwrap();
    let done = lockhog(
        cwd.path(),
        "mem:",
        "run",
        &["x", "--resource", "/a", "--", "true"],
    );
    done.assert_code(2);
    let done = lockhog(cwd.path(), "mem:", "run", &["--", "true"]);
    done.assert_code(2);
}
