//! The lock directory held open, and opened again by its path when that path comes to name
//! another directory (removed, moved aside, replaced), with its namespace subdirectories.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::dir::{Dir, Trust};
use super::names::dir_name;
use super::{fencing, FileBackend, SCHEME};
use crate::error::{Error, Result};
use crate::name::DEFAULT_NAMESPACE;

/// The lock directory held open, with what hangs off it.
#[derive(Debug)]
pub(super) struct Tree {
    pub(super) root: Arc<Dir>,
    /// Namespace directories opened (and checked) so far, by namespace.
    namespaces: Mutex<HashMap<String, Arc<Dir>>>,
    /// The fencing floor for lock files `cleanup` removed.
    pub(super) floor: fencing::Floor,
}

impl Tree {
    pub(super) fn open(path: &Path, trust: Trust) -> Result<Tree> {
        let root = Arc::new(Dir::open_root(path, trust).map_err(|m| Error::backend(SCHEME, m))?);
        Ok(Tree {
            floor: fencing::Floor::new(root.clone()),
            namespaces: Mutex::new(HashMap::new()),
            root,
        })
    }
}

impl FileBackend {
    /// The lock directory, opened (and checked) again when its path no longer names the
    /// directory we hold: one `lstat` per call.
    pub(super) fn tree(&self) -> Result<Arc<Tree>> {
        let tree = self.tree.read().unwrap_or_else(|p| p.into_inner()).clone();
        if tree.root.still_at_path() {
            return Ok(tree);
        }
        let mut slot = self.tree.write().unwrap_or_else(|p| p.into_inner());
        if !Arc::ptr_eq(&slot, &tree) && slot.root.still_at_path() {
            return Ok(slot.clone()); // another thread opened it again meanwhile
        }
        tracing::warn!(
            dir = %self.path.display(),
            "the lock directory was removed or replaced while in use: opening it again"
        );
        *slot = Arc::new(Tree::open(&self.path, self.trust)?);
        Ok(slot.clone())
    }

    /// The directory of `namespace` in `tree`, opened and checked once and then cached (and
    /// opened again should it be removed or replaced); `None` when it does not exist and
    /// `create` is false.
    pub(super) fn dir(
        &self,
        tree: &Tree,
        namespace: &str,
        create: bool,
    ) -> Result<Option<Arc<Dir>>> {
        if namespace == DEFAULT_NAMESPACE {
            return Ok(Some(tree.root.clone()));
        }
        let mut cache = tree.namespaces.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(dir) = cache.get(namespace) {
            if dir.still_at_path() {
                return Ok(Some(dir.clone()));
            }
            cache.remove(namespace);
        }
        let opened = tree
            .root
            .open_sub(&dir_name(namespace), create)
            .map_err(|m| Error::backend(SCHEME, m))?;
        Ok(opened.map(|dir| {
            let dir = Arc::new(dir);
            cache.insert(namespace.to_string(), dir.clone());
            dir
        }))
    }

    pub(super) fn dir_path(&self, tree: &Tree, namespace: &str) -> PathBuf {
        if namespace == DEFAULT_NAMESPACE {
            tree.root.path().to_path_buf()
        } else {
            tree.root.path().join(dir_name(namespace))
        }
    }
}
