//! [`DynBackend`]: the [`Backend`] trait with its `Held` type erased, so a
//! [`Locker`](crate::Locker) can pick its backend from a URL at run time.

use std::any::Any;
use std::future::Future;
use std::os::fd::BorrowedFd;
use std::pin::Pin;

use tokio::time::Instant;

use super::foreign::scoped_parse;
use super::slots::{erase_permit, Permit};
use super::{AcquireContext, Acquired, Backend, Capabilities, CleanupReport, LockKey, LockStatus};
use crate::error::{Error, Result};

pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
pub(crate) type ErasedHeld = Box<dyn Any + Send + Sync>;

/// [`Backend`] with its `Held` type erased, so a [`Locker`](crate::Locker) can pick its
/// backend from a URL at run time.
pub(crate) trait DynBackend: Send + Sync {
    fn scheme(&self) -> &'static str;
    fn capabilities(&self) -> Capabilities;
    fn resource(&self, key: &LockKey) -> String;
    fn parse_resource(&self, resource: &str) -> Result<String>;
    fn try_acquire<'a>(
        &'a self,
        key: &'a LockKey,
        ctx: &'a AcquireContext,
    ) -> BoxFuture<'a, Result<Option<Acquired<ErasedHeld>>>>;
    fn try_acquire_now(
        &self,
        key: &LockKey,
        ctx: &AcquireContext,
    ) -> Option<Result<Option<Acquired<ErasedHeld>>>>;
    fn wait_acquire<'a>(
        &'a self,
        key: &'a LockKey,
        ctx: &'a AcquireContext,
        deadline: Option<Instant>,
    ) -> BoxFuture<'a, Result<Option<Acquired<ErasedHeld>>>>;
    fn try_acquire_permit<'a>(
        &'a self,
        key: &'a LockKey,
        permits: u32,
        ctx: &'a AcquireContext,
    ) -> BoxFuture<'a, Result<Option<Permit<ErasedHeld>>>>;
    fn wait_acquire_permit<'a>(
        &'a self,
        key: &'a LockKey,
        permits: u32,
        ctx: &'a AcquireContext,
        deadline: Option<Instant>,
    ) -> BoxFuture<'a, Result<Option<Permit<ErasedHeld>>>>;
    fn release(&self, held: ErasedHeld) -> BoxFuture<'_, Result<bool>>;
    fn release_now(&self, held: ErasedHeld) -> std::result::Result<Result<bool>, ErasedHeld>;
    fn release_on_drop(&self, held: ErasedHeld);
    fn inheritable_fd<'h>(&self, held: &'h ErasedHeld) -> Option<BorrowedFd<'h>>;
    fn status<'a>(
        &'a self,
        namespace: &'a str,
        keys: &'a [LockKey],
    ) -> BoxFuture<'a, Result<Vec<LockStatus>>>;
    fn cleanup<'a>(&'a self, namespace: &'a str) -> BoxFuture<'a, Result<CleanupReport>>;
}

fn erase<H: Send + Sync + 'static>(a: Option<Acquired<H>>) -> Option<Acquired<ErasedHeld>> {
    a.map(|a| Acquired {
        held: Box::new(a.held) as ErasedHeld,
        token: a.token,
    })
}

fn unerase<B: Backend>(b: &B, held: ErasedHeld) -> Result<B::Held> {
    held.downcast::<B::Held>().map(|h| *h).map_err(|_| {
        Error::backend(
            b.scheme(),
            "a guard was handed to a backend that did not issue it",
        )
    })
}

impl<B: Backend> DynBackend for B {
    fn scheme(&self) -> &'static str {
        Backend::scheme(self)
    }
    fn capabilities(&self) -> Capabilities {
        Backend::capabilities(self)
    }
    fn resource(&self, key: &LockKey) -> String {
        match key.foreign_resource() {
            Some(res) => res.to_string(),
            None => Backend::resource(self, key),
        }
    }
    fn parse_resource(&self, resource: &str) -> Result<String> {
        scoped_parse(Backend::scheme(self), B::parse_resource(resource))
    }
    fn try_acquire<'a>(
        &'a self,
        key: &'a LockKey,
        ctx: &'a AcquireContext,
    ) -> BoxFuture<'a, Result<Option<Acquired<ErasedHeld>>>> {
        Box::pin(async move { Backend::try_acquire(self, key, ctx).await.map(erase) })
    }
    fn try_acquire_now(
        &self,
        key: &LockKey,
        ctx: &AcquireContext,
    ) -> Option<Result<Option<Acquired<ErasedHeld>>>> {
        Backend::try_acquire_now(self, key, ctx).map(|r| r.map(erase))
    }
    fn wait_acquire<'a>(
        &'a self,
        key: &'a LockKey,
        ctx: &'a AcquireContext,
        deadline: Option<Instant>,
    ) -> BoxFuture<'a, Result<Option<Acquired<ErasedHeld>>>> {
        Box::pin(async move {
            Backend::wait_acquire(self, key, ctx, deadline)
                .await
                .map(erase)
        })
    }
    fn try_acquire_permit<'a>(
        &'a self,
        key: &'a LockKey,
        permits: u32,
        ctx: &'a AcquireContext,
    ) -> BoxFuture<'a, Result<Option<Permit<ErasedHeld>>>> {
        Box::pin(async move {
            Backend::try_acquire_permit(self, key, permits, ctx)
                .await
                .map(erase_permit)
        })
    }
    fn wait_acquire_permit<'a>(
        &'a self,
        key: &'a LockKey,
        permits: u32,
        ctx: &'a AcquireContext,
        deadline: Option<Instant>,
    ) -> BoxFuture<'a, Result<Option<Permit<ErasedHeld>>>> {
        Box::pin(async move {
            Backend::wait_acquire_permit(self, key, permits, ctx, deadline)
                .await
                .map(erase_permit)
        })
    }
    fn release(&self, held: ErasedHeld) -> BoxFuture<'_, Result<bool>> {
        Box::pin(async move { Backend::release(self, unerase(self, held)?).await })
    }
    fn release_now(&self, held: ErasedHeld) -> std::result::Result<Result<bool>, ErasedHeld> {
        // A guard of another backend goes the slow way, which says so.
        let held = held.downcast::<B::Held>()?;
        Backend::release_now(self, *held).map_err(|h| Box::new(h) as ErasedHeld)
    }
    fn release_on_drop(&self, held: ErasedHeld) {
        if let Ok(held) = unerase(self, held) {
            Backend::release_on_drop(self, held);
        }
    }
    fn inheritable_fd<'h>(&self, held: &'h ErasedHeld) -> Option<BorrowedFd<'h>> {
        Backend::inheritable_fd(self, held.downcast_ref::<B::Held>()?)
    }
    fn status<'a>(
        &'a self,
        namespace: &'a str,
        keys: &'a [LockKey],
    ) -> BoxFuture<'a, Result<Vec<LockStatus>>> {
        Box::pin(Backend::status(self, namespace, keys))
    }
    fn cleanup<'a>(&'a self, namespace: &'a str) -> BoxFuture<'a, Result<CleanupReport>> {
        Box::pin(Backend::cleanup(self, namespace))
    }
}
