//! A held etcd lock: its key on the locker's session lease, and the release.

use std::future::Future;

use etcd_client::Client;

use super::connect::{call, SCHEME};
use super::queue::{mark_cancelled, Entry, Place};
use crate::backend::finish::Finish;
use crate::error::{Error, Result};

/// A held etcd lock: our key (and its create revision, the fencing token) and its place on
/// the session lease, which keeps it alive and watches it.
pub struct EtcdHeld {
    pub(super) client: Client,
    pub(super) entry: Entry,
    pub(super) place: Place,
    pub(super) runtime: tokio::runtime::Handle,
}

impl std::fmt::Debug for EtcdHeld {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdHeld")
            .field("key", &String::from_utf8_lossy(&self.entry.key))
            .field("rev", &self.entry.rev)
            .field("lease", &format_args!("{:016x}", self.place.session.lease))
            .finish_non_exhaustive()
    }
}

impl EtcdHeld {
    /// Deletes our key (see [`leave`]: no one but our session makes a key of that name, and it
    /// does so again only once this delete is answered). `Ok(true)` when our key was still
    /// there. The session lease stays, for the locker's other and later locks.
    pub(super) async fn release(self) -> Result<bool> {
        let runtime = self.runtime.clone();
        Finish::new(self.delete(None), runtime)
            .await
            .map_err(|e| Error::backend(SCHEME, format!("releasing a lock: {e}")))
    }

    /// Gives the lock back from `Drop`: the same delete, in a task on the runtime
    /// captured at acquire.
    pub(super) fn release_on_drop(self) {
        let failed = "deleting a dropped lock's key failed; it goes with the session lease";
        let runtime = self.runtime.clone();
        drop(runtime.spawn(self.delete(Some(failed))));
    }

    /// The delete, to be run to its end (the session lease that carries the key lives on):
    /// a release dropped in flight still makes it (see [`Finish`]). A failure is logged with
    /// `failed`, when given.
    fn delete(self, failed: Option<&'static str>) -> impl Future<Output = Result<bool>> {
        // Our own delete is no loss to report.
        self.place.session.unhold(self.place.id);
        let EtcdHeld {
            client, mut place, ..
        } = self;
        async move {
            let deleted = leave(&client, &mut place).await;
            drop(place);
            if let (Err(e), Some(failed)) = (&deleted, failed) {
                tracing::debug!(error = %e, "{failed}");
            }
            deleted
        }
    }
}

/// Deletes our key at `place`, by key alone: no one else writes a key with our lease id in
/// it, and our session makes it again only once this delete is answered (the key is claimed
/// until then). A delete sent more than once (an attempt failed or went unanswered) might
/// still be applied late, after the key was made again: its key is then never used again (the
/// claim is kept). A key whose join may still reach etcd late gets its cancel marker first,
/// for good, so that join creates nothing. `true` when the key was there.
pub(super) async fn leave(client: &Client, place: &mut Place) -> Result<bool> {
    if place.join_uncertain {
        place.keep_claim_for_good();
        if let Err(e) = mark_cancelled(client, place).await {
            // Delete all the same: a late join is unlikely, our key being there is certain.
            tracing::warn!(error = %e, "could not mark a key whose join may still arrive; \
                                        if it does, the key lasts as long as the session");
        }
    }
    let mut sent = 0;
    let deleted = call("leaving the lock's queue", || {
        sent += 1;
        let mut c = client.clone();
        let key = place.key.clone();
        async move { c.delete(key, None).await }
    })
    .await;
    if sent > 1 || deleted.is_err() {
        place.keep_claim_for_good();
    }
    Ok(deleted?.deleted() > 0)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use super::*;
    use crate::backend::etcd::connect::{connect, parse};
    use crate::backend::etcd::queue::{join, Sends};
    use crate::backend::etcd::session::Sessions;
    use crate::url::BackendUrl;

    /// The test cluster's client, or `None` (a failure under `CI=true`) when none is set.
    async fn client() -> Option<Client> {
        let Ok(url) = std::env::var("LOCKHOG_TEST_ETCD_URL") else {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true and LOCKHOG_TEST_ETCD_URL is unset"
            );
            eprintln!("skipped: LOCKHOG_TEST_ETCD_URL is unset");
            return None;
        };
        let mut url = BackendUrl::parse(&url).unwrap();
        let target = parse(&mut url).unwrap();
        Some(connect(&target, "test cluster").await.unwrap())
    }

    /// A join whose first send got no answer was sent again; the first may reach etcd only
    /// after the lock was released. Leaving must make that late join create nothing: a key
    /// it made would sit on the live session lease and block the lock until the process ends.
    #[tokio::test]
    async fn a_late_copy_of_an_uncertain_join_creates_nothing_after_leaving() {
        let Some(client) = client().await else { return };
        let sessions = Sessions::new(client.clone());
        let session = sessions.get(Duration::from_secs(30)).await.unwrap();
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let prefix = format!("lockhog-test/late-join/{}-{nanos}/", std::process::id());
        let key = format!("{prefix}{:016x}-0", session.lease).into_bytes();
        assert!(session.claim(&key));
        let mut place = Place::new(session.clone(), key.clone(), session.next_id());
        let (lease, sends) = (session.lease, Sends::default());

        // The copy that was answered, then the release.
        let (_, first) = join(&client, prefix.as_bytes(), &key, b"o", lease, &sends)
            .await
            .unwrap();
        assert!(first, "an empty queue's first key holds");
        place.join_uncertain = true;
        assert!(leave(&client, &mut place).await.unwrap());

        // The copy that was not answered arrives now.
        drop(join(&client, prefix.as_bytes(), &key, b"o", lease, &sends).await);
        let mut c = client.clone();
        let left = c.get(key.clone(), None).await.unwrap();
        assert_eq!(
            left.count(),
            0,
            "a late join made our key again after leaving"
        );

        c.lease_revoke(lease).await.unwrap();
    }
}
