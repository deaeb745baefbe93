//! The checks that run `lockhog hold` as another process: a holder killed with SIGKILL, one
//! that abandons its locks, and the `hold` line protocol itself.

use super::checks::{hold, token_of, NO_URL};
use super::process::HoldProcess;
use super::{assert_not_acquired, not_applicable, Target};

/// A holder killed with SIGKILL loses its lock without anyone cleaning up.
pub async fn killed_holder_releases(t: &Target) {
    let a = t.locker().await;
    let caps = a.capabilities();
    if !caps.cross_process {
        return not_applicable("killed_holder_releases", "the backend is in-process only");
    }
    let Some(url) = t.url() else {
        return not_applicable("killed_holder_releases", NO_URL);
    };
    let holder = HoldProcess::start(&t.hold_bin(), url, &["--ttl", "1"], &["conformance-killed"]);
    let token = holder.held[0].token.expect("a named lock has a token");
    assert_not_acquired(
        a.lock("conformance-killed").try_acquire().await,
        "contended",
    );
    holder.kill();
    let next = hold(a.lock("conformance-killed")).await;
    assert!(token_of(&next) > token);
}

/// `abandon` exits without releasing: a lock bound to the process dies with it, a lease runs
/// out; either way the next holder gets it.
pub async fn abandoned_holder(t: &Target) {
    let a = t.locker().await;
    if !a.capabilities().cross_process {
        return not_applicable("abandoned_holder", "the backend is in-process only");
    }
    let Some(url) = t.url() else {
        return not_applicable("abandoned_holder", NO_URL);
    };
    let mut holder = HoldProcess::start(
        &t.hold_bin(),
        url,
        &["--ttl", "1"],
        &["conformance-abandon"],
    );
    holder.send("abandon");
    let status = holder.wait();
    assert!(status.success(), "abandon exited with {status:?}");
    hold(a.lock("conformance-abandon"))
        .await
        .release()
        .await
        .unwrap();
}

/// `hold` prints `held` lines, keeps the locks until `release`, then prints `released` lines.
pub async fn hold_protocol(t: &Target) {
    let a = t.locker().await;
    if !a.capabilities().cross_process {
        return not_applicable("hold_protocol", "the backend is in-process only");
    }
    let Some(url) = t.url() else {
        return not_applicable("hold_protocol", NO_URL);
    };
    let names = ["conformance-hold-1", "conformance hold 2%"];
    let mut holder = HoldProcess::start(&t.hold_bin(), url, &[], &names);
    for (i, name) in names.iter().enumerate() {
        assert_eq!(holder.held[i].name, *name);
        assert_eq!(holder.held[i].resource, a.resource(name).unwrap());
        assert_not_acquired(a.lock(name).try_acquire().await, "contended");
    }
    holder.send("release");
    for name in names {
        let line = holder.next_line("a `released` line");
        let want = format!(
            "released {}",
            crate::url::percent_encode(name, |b| b > b' ' && b != b'%' && b != 0x7f)
        );
        assert_eq!(line, want);
    }
    assert!(holder.wait().success());
    for name in names {
        a.lock(name)
            .try_acquire()
            .await
            .expect("released by hold")
            .release()
            .await
            .unwrap();
    }
}
