//! The table of built-in backends that [`Locker::connect`](crate::Locker::connect) picks from
//! by URL scheme: the list of the [`BackendRow`]s the backends' own modules export.

use std::sync::Arc;

use super::row::{BackendRow, Built};
use super::DynBackend;
use crate::error::Result;
use crate::url::BackendUrl;

/// Every backend lockhog knows, in the order `unknown scheme` messages list them. The `cfg`s
/// live here only: a backend whose feature is off keeps its names.
const BUILT_IN: &[BackendRow] = &[
    super::mem::ROW,
    super::file::ROW,
    #[cfg(feature = "sqlite")]
    super::sqlite::ROW,
    #[cfg(not(feature = "sqlite"))]
    BackendRow::not_built(&["sqlite"], "sqlite"),
    #[cfg(feature = "postgres")]
    super::postgres::ROW,
    #[cfg(not(feature = "postgres"))]
    BackendRow::not_built(&["postgres", "postgresql"], "postgres"),
    #[cfg(feature = "mysql")]
    super::mysql::ROW,
    #[cfg(not(feature = "mysql"))]
    BackendRow::not_built(&["mysql"], "mysql"),
    #[cfg(feature = "redis")]
    super::redis::ROW,
    #[cfg(not(feature = "redis"))]
    BackendRow::not_built(&["redis", "rediss"], "redis"),
    #[cfg(feature = "redis")]
    super::redis::redlock::ROW,
    #[cfg(not(feature = "redis"))]
    BackendRow::not_built(&["redlock"], "redis"),
    #[cfg(feature = "memcached")]
    super::memcached::ROW,
    #[cfg(not(feature = "memcached"))]
    BackendRow::not_built(&["memcached"], "memcached"),
    #[cfg(feature = "etcd")]
    super::etcd::ROW,
    #[cfg(not(feature = "etcd"))]
    BackendRow::not_built(&["etcd", "etcds"], "etcd"),
];

/// Connects the backend that `url`'s scheme names: the backend takes its options, any option
/// left is refused here, then it connects.
pub(crate) async fn connect(url: &mut BackendUrl) -> Result<Arc<dyn DynBackend>> {
    let connecting = (built(url)?.connect)(url)?;
    url.finish()?;
    connecting.await
}

/// Checks `resource` with the parser of the backend that `url`'s scheme names, without
/// connecting (see [`Backend::parse_resource`](super::Backend::parse_resource)).
pub(crate) fn parse_resource(url: &BackendUrl, resource: &str) -> Result<String> {
    super::scoped_parse(url.scheme(), (built(url)?.parse_resource)(resource))
}

/// The row of `url`'s scheme, or why there is none in this build.
fn built(url: &BackendUrl) -> Result<Built> {
    match find(BUILT_IN, url.scheme()) {
        Some(BackendRow {
            built: Some(built), ..
        }) => Ok(*built),
        Some(BackendRow { feature, .. }) => {
            let reason = format!(
                "the {} backend is not in this build of lockhog (cargo feature `{}`)",
                url.scheme(),
                feature.unwrap_or_default()
            );
            Err(url.invalid(&reason))
        }
        None => {
            let known: Vec<&str> = BUILT_IN.iter().flat_map(|r| r.schemes).copied().collect();
            let reason = format!(
                "unknown scheme {:?}; known: {}",
                url.scheme(),
                known.join(", ")
            );
            Err(url.invalid(&reason))
        }
    }
}

/// The port of the built row for `scheme`; see [`super::default_port`].
pub(crate) fn default_port(scheme: &str) -> Option<u16> {
    find(BUILT_IN, &scheme.to_ascii_lowercase()).and_then(|row| row.default_port)
}

fn find<'t>(table: &'t [BackendRow], scheme: &str) -> Option<&'t BackendRow> {
    table.iter().find(|row| row.schemes.contains(&scheme))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scheme_has_one_row() {
        let mut schemes: Vec<&str> = BUILT_IN.iter().flat_map(|r| r.schemes).copied().collect();
        let all = schemes.len();
        schemes.sort_unstable();
        schemes.dedup();
        assert_eq!(schemes.len(), all, "a scheme is in two rows");
        assert!(schemes.iter().all(|s| *s == s.to_ascii_lowercase()));
    }

    /// The backend takes its options, the registry refuses the rest, and only then does the
    /// backend touch its store: a misspelt option creates nothing.
    #[tokio::test]
    async fn unknown_options_are_refused_before_the_store_is_touched() {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("locks");
        let url = format!("file://{}?mode=fcntl&moed=flock", dir.display());
        match connect(&mut BackendUrl::parse(&url).unwrap()).await {
            Err(crate::Error::InvalidUrl { reason, .. }) => assert!(reason.contains("moed")),
            Err(e) => panic!("expected InvalidUrl, got {e}"),
            Ok(_) => panic!("expected InvalidUrl, got a backend"),
        }
        assert!(!dir.exists(), "the lock directory was created");
        let url = format!("file://{}?mode=fcntl", dir.display());
        let backend = connect(&mut BackendUrl::parse(&url).unwrap()).await;
        assert!(backend.is_ok() && dir.is_dir());
    }

    #[test]
    fn network_schemes_have_their_default_ports() {
        assert_eq!(default_port("file"), None);
        assert_eq!(default_port("mem"), None);
        #[cfg(feature = "postgres")]
        assert_eq!(default_port("POSTGRESQL"), Some(5432));
        #[cfg(feature = "redis")]
        assert_eq!(default_port("redlock"), Some(6379));
        #[cfg(feature = "etcd")]
        assert_eq!(default_port("etcds"), Some(2379));
        #[cfg(not(feature = "mysql"))]
        assert_eq!(default_port("mysql"), None);
    }

    #[test]
    fn rows_without_a_feature_are_always_built() {
        for row in BUILT_IN {
            if row.feature.is_none() {
                assert!(row.built.is_some(), "{:?}", row.schemes);
            }
        }
    }
}
