//! `Locker::from_env` and the default URL. One test per process: it changes the environment.

#[tokio::test]
async fn from_env_reads_lockhog_url_else_the_default() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("file://{}/locks", dir.path().display());
    std::env::set_var(lockhog::URL_ENV, &url);
    let locker = lockhog::Locker::from_env().await.unwrap();
    assert_eq!(locker.url(), url);
    assert!(dir.path().join("locks").is_dir());

    std::env::set_var("XDG_RUNTIME_DIR", dir.path());
    std::env::remove_var(lockhog::URL_ENV);
    assert_eq!(
        lockhog::default_url(),
        format!("file://{}/lockhog", dir.path().display())
    );
    let locker = lockhog::Locker::from_env().await.unwrap();
    let guard = locker.lock("x").try_acquire().await.unwrap();
    assert_eq!(
        guard.resource(),
        dir.path()
            .join("lockhog/x.lock")
            .canonicalize()
            .unwrap()
            .display()
            .to_string()
    );

    std::env::remove_var("XDG_RUNTIME_DIR");
    // SAFETY: getuid cannot fail.
    let uid = unsafe { libc::getuid() };
    assert_eq!(lockhog::default_url(), format!("file:///tmp/lockhog-{uid}"));
}
