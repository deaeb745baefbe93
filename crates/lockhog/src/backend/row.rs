//! [`BackendRow`]: what a built-in backend's module exports for the registry (its schemes, its
//! feature, its connect function and its resource parser).

use std::future::Future;
use std::sync::Arc;

use super::{Backend, BoxFuture, DynBackend};
use crate::error::Result;
use crate::url::BackendUrl;

/// A backend being connected, after it took its options off the URL.
pub(crate) type Connecting = BoxFuture<'static, Result<Arc<dyn DynBackend>>>;

/// Takes the backend's own options off the URL and checks its shape, without I/O, and returns
/// the future that connects. The registry refuses the options left over in between, so a
/// misspelt option fails before anything is created or dialled.
pub(crate) type Connect = fn(&mut BackendUrl) -> Result<Connecting>;

/// [`Backend::parse_resource`] of the row's backend: checks a foreign resource without a
/// connection.
pub(crate) type ParseResource = fn(&str) -> Result<String>;

/// What a backend built into this binary offers.
#[derive(Clone, Copy)]
pub(crate) struct Built {
    pub(crate) connect: Connect,
    pub(crate) parse_resource: ParseResource,
}

/// One backend: the URL schemes it answers to, the cargo feature it needs, and how to connect
/// it.
#[derive(Clone, Copy)]
pub(crate) struct BackendRow {
    /// Lowercase URL schemes, e.g. `["postgres", "postgresql"]`.
    pub(crate) schemes: &'static [&'static str],
    /// The cargo feature that builds it; `None` for backends always built.
    pub(crate) feature: Option<&'static str>,
    /// The TCP port a URL that names none connects to; `None` for stores that are not
    /// reached over TCP.
    pub(crate) default_port: Option<u16>,
    /// `None` when its feature is off in this build: the row then only names the backend, so
    /// its URLs are told which feature they need.
    pub(crate) built: Option<Built>,
}

impl BackendRow {
    /// The row of backend `B`, built in this binary.
    pub(crate) const fn of<B: Backend>(
        schemes: &'static [&'static str],
        feature: Option<&'static str>,
        connect: Connect,
    ) -> Self {
        BackendRow {
            schemes,
            feature,
            default_port: None,
            built: Some(Built {
                connect,
                parse_resource: B::parse_resource,
            }),
        }
    }

    /// The row of a backend whose feature is off in this build.
    #[allow(dead_code)] // unused in a build with every feature
    pub(crate) const fn not_built(schemes: &'static [&'static str], feature: &'static str) -> Self {
        BackendRow {
            schemes,
            feature: Some(feature),
            default_port: None,
            built: None,
        }
    }

    /// The row with `port` as the TCP port of URLs that name none.
    #[allow(dead_code)] // unused in a build without network backends
    pub(crate) const fn port(self, port: u16) -> Self {
        BackendRow {
            default_port: Some(port),
            ..self
        }
    }
}

/// A backend's connect future, boxed for the table.
pub(crate) fn connecting<B: Backend>(
    connect: impl Future<Output = Result<B>> + Send + 'static,
) -> Connecting {
    Box::pin(async move { Ok(Arc::new(connect.await?) as Arc<dyn DynBackend>) })
}
