//! The check of locks taken by their foreign resource ([`Locker::lock_resource`]): what a
//! backend prints as a named lock's RESOURCE, given back to it, is that very lock.
//!
//! [`Locker::lock_resource`]: crate::Locker::lock_resource

use super::checks::{hold, token_of};
use super::{assert_not_acquired, not_applicable, Target};
use crate::Error;

/// The RESOURCE of a held named lock, taken as a foreign resource, conflicts with it both ways;
/// it has a fencing token only where [`Capabilities::resource_fencing`] says so; and taking it
/// leaves the named lock's tokens growing (nothing of lockhog's was overwritten). Not
/// applicable to backends without resources, which must refuse with `InvalidOption`.
///
/// [`Capabilities::resource_fencing`]: crate::Capabilities::resource_fencing
pub async fn printed_resources_are_the_same_lock(t: &Target) {
    const CHECK: &str = "printed_resources_are_the_same_lock";
    let (a, b) = (t.locker().await, t.locker().await);
    let named = hold(a.lock("conformance-resource")).await;
    let resource = named.resource().to_string();
    match b.lock_resource(&resource).try_acquire().await {
        Err(Error::InvalidOption { reason }) => {
            named.release().await.unwrap();
            return not_applicable(CHECK, &format!("the backend has no resources: {reason}"));
        }
        other => assert_not_acquired(other, "contended"),
    }
    let first = token_of(&named);
    named.release().await.unwrap();

    let foreign = hold(b.lock_resource(&resource)).await;
    assert_eq!(foreign.resource(), resource);
    assert_eq!(foreign.name().as_str(), resource);
    assert_eq!(
        foreign.fencing_token().is_some(),
        b.capabilities().resource_fencing,
        "a token {:?} against Capabilities::resource_fencing",
        foreign.fencing_token()
    );
    assert_not_acquired(
        a.lock("conformance-resource").try_acquire().await,
        "contended",
    );
    let status = b.status_resources(&[resource.as_str()]).await.unwrap();
    assert_eq!(status.len(), 1);
    assert_eq!(status[0].resource, resource);
    assert_eq!(status[0].state, crate::LockState::Held, "{status:?}");
    assert!(foreign.release().await.unwrap());

    let again = hold(a.lock("conformance-resource")).await;
    assert!(
        token_of(&again) > first,
        "token {} after {first}: the foreign holder set the counter back",
        token_of(&again)
    );
    again.release().await.unwrap();
}
