//! `status`, `cleanup` and every subcommand's help.

use crate::support::{lockhog_cmd, Locks, Proc};

// status and cleanup

#[test]
fn status_shows_the_holder_then_free() {
    let locks = Locks::new();
    let mut h = locks.hold(&["payroll"], 1);
    let resource = locks.lock_file("payroll").display().to_string();
    let held = format!("held payroll {resource} pid%20{}", h.proc.pid);

    // A held lock reported `free` here, under load, is the library's /proc/locks read race
    // (it reads the file in many small read(2) calls, between which the kernel's list moves).
    let named = locks.run("status", &["payroll"]);
    named.assert_code(0);
    assert_eq!(named.stdout, std::slice::from_ref(&held), "{named:#?}");
    let all = locks.run("status", &[]);
    assert_eq!(all.stdout, [held], "{all:#?}");
    let json = locks.run("status", &["--json", "payroll"]);
    let v: serde_json::Value = serde_json::from_str(&json.stdout[0]).unwrap();
    assert_eq!(
        v,
        serde_json::json!({
            "name": "payroll",
            "resource": resource,
            "state": "held",
            "holder": format!("pid {}", h.proc.pid),
        })
    );

    h.proc.send("release");
    assert!(h.proc.wait().success());
    let free = locks.run("status", &["payroll"]);
    assert_eq!(free.stdout, [format!("free payroll {resource}")]);
    // A name never used is free too.
    let never = locks.run("status", &["--json", "never"]);
    let v: serde_json::Value = serde_json::from_str(&never.stdout[0]).unwrap();
    assert_eq!(v["state"], "free");
    assert_eq!(v["holder"], serde_json::Value::Null);
}

#[test]
fn status_of_unrecoverable_names_prints_a_dash() {
    let locks = Locks::new();
    let long = "n".repeat(300); // shortened to prefix~digest: the name cannot be recovered
    let mut h = locks.hold(&[&long], 1);
    let all = locks.run("status", &[]);
    assert_eq!(all.stdout.len(), 1, "{all:#?}");
    let fields: Vec<&str> = all.stdout[0].split(' ').collect();
    assert_eq!(&fields[..2], ["held", "-"], "{all:#?}");
    let json = locks.run("status", &["--json"]);
    let v: serde_json::Value = serde_json::from_str(&json.stdout[0]).unwrap();
    assert_eq!(v["name"], serde_json::Value::Null);
    h.proc.send("release");
    assert!(h.proc.wait().success());
}

#[test]
fn cleanup_removes_unheld_files_and_keeps_held_ones() {
    let locks = Locks::new();
    assert_eq!(locks.try_run("stale"), 0);
    assert!(locks.lock_file("stale").exists());
    let mut h = locks.hold(&["busy"], 1);
    let done = locks.run("cleanup", &[]);
    done.assert_code(0);
    assert_eq!(done.stdout, ["cleanup: removed 1 kept 1"]);
    assert!(!locks.lock_file("stale").exists());
    assert!(locks.lock_file("busy").exists());
    assert_eq!(
        locks.try_run("busy"),
        1,
        "cleanup did not break the held lock"
    );
    h.proc.send("release");
    assert!(h.proc.wait().success());
}

// help

#[test]
fn every_subcommand_has_examples() {
    for sub in ["run", "hold", "status", "cleanup"] {
        let mut cmd = lockhog_cmd();
        cmd.args([sub, "--help"]);
        let done = Proc::spawn(cmd, &format!("{sub} --help")).finish();
        done.assert_code(0);
        let text = done.stdout.join("\n");
        assert!(text.contains("Examples:"), "{sub}: {text}");
        assert!(text.contains(&format!("lockhog {sub}")), "{sub}: {text}");
    }
}
