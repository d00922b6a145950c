//! Repository URL → object storage, behind one narrow interface.
//!
//! Everything above this module sees keys like `backups/<bid>/manifest` and never a
//! backend. Writes that commit state use create-only puts, so two writers can never
//! silently overwrite each other.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjPath;
use object_store::{ObjectStore, PutMode, PutOptions, PutPayload};
use thiserror::Error;

use crate::error::{Class, Classify};

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("repository location {0:?} does not exist")]
    Missing(String),
    #[error("repository URL {url:?} is not supported: {why}")]
    BadUrl { url: String, why: String },
    #[error("object {0} already exists")]
    AlreadyExists(String),
    #[error("object {0} is missing")]
    NotFound(String),
    #[error("could not {op} {key}: {source}")]
    Backend {
        op: &'static str,
        key: String,
        #[source]
        source: object_store::Error,
    },
    #[error("could not flush {key} to disk: {source}")]
    Sync {
        key: String,
        #[source]
        source: std::io::Error,
    },
    #[error("could not create the repository folder {path}: {source}")]
    CreateDir {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl Classify for StoreError {
    fn class(&self) -> Class {
        match self {
            StoreError::BadUrl { .. } => Class::Usage,
            StoreError::NotFound(_) => Class::Corrupt,
            StoreError::CreateDir { .. } | StoreError::Sync { .. } => Class::Io,
            StoreError::Backend { source, .. } if is_local_io(source) => Class::Io,
            _ => Class::Repository,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            StoreError::Missing(_) => {
                Some("create it with `pgbunker init --repo <PATH>`, or check the path".into())
            }
            StoreError::BadUrl { .. } => {
                Some("use a local path or a file:// URL for the repository".into())
            }
            _ => None,
        }
    }
}

/// Flushes the file and every folder from it up to the repository root: folders the
/// put created (`backups/<bid>/t<n>`) must be durable too.
fn sync_file_and_parents(path: &Path, root: &Path) -> std::io::Result<()> {
    std::fs::File::open(path)?.sync_all()?;
    let mut dir = path.parent();
    while let Some(d) = dir {
        std::fs::File::open(d)?.sync_all()?;
        if d == root {
            break;
        }
        dir = d.parent();
    }
    Ok(())
}

/// Wraps a backend error with what we were doing, for `map_err`.
fn backend<'k>(
    op: &'static str,
    key: &'k str,
) -> impl FnOnce(object_store::Error) -> StoreError + 'k {
    move |source| StoreError::Backend {
        op,
        key: key.into(),
        source,
    }
}

fn is_local_io(e: &object_store::Error) -> bool {
    let s = e.to_string();
    s.contains("No space left") || s.contains("Permission denied") || s.contains("Read-only")
}

/// An open repository location.
#[derive(Clone)]
pub struct Store {
    inner: Arc<dyn ObjectStore>,
    location: String,
    /// Set for local folders: object_store does not fsync, so we do (see `put_new`).
    local_root: Option<PathBuf>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Store({})", self.location)
    }
}

fn local_path(url: &str) -> Result<PathBuf, StoreError> {
    if let Some(rest) = url.strip_prefix("file://") {
        if !rest.starts_with('/') {
            return Err(StoreError::BadUrl {
                url: url.into(),
                why: "file:// URLs need an absolute path (file:///srv/backups)".into(),
            });
        }
        return Ok(PathBuf::from(rest));
    }
    if let Some((scheme, _)) = url.split_once("://") {
        return Err(StoreError::BadUrl {
            url: url.into(),
            why: format!("the {scheme}:// scheme is not available in this build"),
        });
    }
    if url.is_empty() {
        return Err(StoreError::BadUrl {
            url: url.into(),
            why: "the repository location is empty".into(),
        });
    }
    Ok(PathBuf::from(url))
}

impl Store {
    /// Opens an existing repository location.
    pub fn open(url: &str) -> Result<Store, StoreError> {
        let path = local_path(url)?;
        if !path.is_dir() {
            return Err(StoreError::Missing(url.into()));
        }
        Self::local(&path, url)
    }

    /// Opens a location for a new repository, creating the folder if needed.
    pub fn create(url: &str) -> Result<Store, StoreError> {
        let path = local_path(url)?;
        std::fs::create_dir_all(&path).map_err(|source| StoreError::CreateDir {
            path: path.display().to_string(),
            source,
        })?;
        Self::local(&path, url)
    }

    fn local(path: &Path, url: &str) -> Result<Store, StoreError> {
        let fs = LocalFileSystem::new_with_prefix(path).map_err(backend("open", url))?;
        Ok(Store {
            inner: Arc::new(fs),
            location: url.into(),
            local_root: Some(path.to_path_buf()),
        })
    }

    /// The location as given by the user (repository URLs carry no secrets).
    pub fn location(&self) -> &str {
        &self.location
    }

    /// Writes a new object; fails with [`StoreError::AlreadyExists`] if the key is
    /// taken. This is the only way committed state is written. On a local folder the
    /// object and its folder are fsynced before this returns, so the catalog entry that
    /// commits a backup can never survive a power loss that its chunks did not.
    pub async fn put_new(&self, key: &str, bytes: Bytes) -> Result<(), StoreError> {
        self.put_create(key, bytes).await?;
        if let Some(root) = &self.local_root {
            let (path, root) = (root.join(key), root.clone());
            tokio::task::spawn_blocking(move || sync_file_and_parents(&path, &root))
                .await
                .map_err(|e| std::io::Error::other(e.to_string()))
                .and_then(|r| r)
                .map_err(|source| StoreError::Sync {
                    key: key.into(),
                    source,
                })?;
        }
        Ok(())
    }

    async fn put_create(&self, key: &str, bytes: Bytes) -> Result<(), StoreError> {
        let opts = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        match self
            .inner
            .put_opts(&ObjPath::from(key), PutPayload::from(bytes), opts)
            .await
        {
            Ok(_) => Ok(()),
            Err(object_store::Error::AlreadyExists { .. }) => {
                Err(StoreError::AlreadyExists(key.into()))
            }
            Err(source) => Err(backend("write", key)(source)),
        }
    }

    pub async fn get(&self, key: &str) -> Result<Bytes, StoreError> {
        self.get_opt(key)
            .await?
            .ok_or_else(|| StoreError::NotFound(key.into()))
    }

    pub async fn get_opt(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        match self.inner.get(&ObjPath::from(key)).await {
            Ok(r) => Ok(Some(r.bytes().await.map_err(backend("read", key))?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(backend("read", key)(e)),
        }
    }

    /// Size of an object, or `None` when it is missing.
    pub async fn size(&self, key: &str) -> Result<Option<u64>, StoreError> {
        match self.inner.head(&ObjPath::from(key)).await {
            Ok(m) => Ok(Some(m.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(source) => Err(backend("inspect", key)(source)),
        }
    }

    /// Every object key under `prefix` (recursively), sorted.
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let p = ObjPath::from(prefix);
        let mut keys: Vec<String> = self
            .inner
            .list(Some(&p))
            .map_ok(|m| m.location.to_string())
            .try_collect()
            .await
            .map_err(backend("list", prefix))?;
        keys.sort();
        Ok(keys)
    }

    /// The names directly below `prefix` that hold objects ("folders"), sorted.
    pub async fn list_dirs(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let p = ObjPath::from(prefix);
        let r = self
            .inner
            .list_with_delimiter(Some(&p))
            .await
            .map_err(backend("list", prefix))?;
        let mut names: Vec<String> = r
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(str::to_owned))
            .collect();
        names.sort();
        Ok(names)
    }

    pub async fn delete(&self, key: &str) -> Result<(), StoreError> {
        match self.inner.delete(&ObjPath::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(source) => Err(backend("delete", key)(source)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn create_only_puts_and_listing() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::create(dir.path().to_str().unwrap()).unwrap();
        s.put_new("a/b/1", Bytes::from_static(b"x")).await.unwrap();
        s.put_new("a/c/2", Bytes::from_static(b"y")).await.unwrap();
        assert!(matches!(
            s.put_new("a/b/1", Bytes::from_static(b"z")).await,
            Err(StoreError::AlreadyExists(_))
        ));
        assert_eq!(s.get("a/b/1").await.unwrap(), Bytes::from_static(b"x"));
        assert_eq!(s.list("a").await.unwrap(), vec!["a/b/1", "a/c/2"]);
        assert_eq!(s.list_dirs("a").await.unwrap(), vec!["b", "c"]);
        assert_eq!(s.size("a/c/2").await.unwrap(), Some(1));
        assert!(s.get_opt("nope").await.unwrap().is_none());
        s.delete("a/b/1").await.unwrap();
        assert!(s.get_opt("a/b/1").await.unwrap().is_none());
    }

    #[test]
    fn unsupported_and_missing_locations_are_clear() {
        assert!(matches!(
            Store::open("ftp://x"),
            Err(StoreError::BadUrl { .. })
        ));
        assert!(matches!(
            Store::open("/definitely/not/here"),
            Err(StoreError::Missing(_))
        ));
    }
}
