//! Repository URL → object storage, behind one narrow interface.
//!
//! Everything above this module sees keys like `backups/<bid>/manifest` and never a
//! backend. Writes that commit state use create-only puts, so two writers can never
//! silently overwrite each other.

mod aws_profile;
mod location;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjPath;
use object_store::{ObjectStore, PutMode, PutOptions, PutPayload, WriteMultipart};
use thiserror::Error;

use location::Location;

use crate::error::{Class, Classify};

/// One object of a listing.
#[derive(Debug, Clone)]
pub struct Listed {
    pub key: String,
    pub size: u64,
    pub modified: time::OffsetDateTime,
}

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
    #[error("could not write {key}: {source}")]
    Write {
        key: String,
        #[source]
        source: std::io::Error,
    },
    #[error("could not flush {key} to disk: {source}")]
    Sync {
        key: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the store at {0} overwrote an object that a create-only put should have refused")]
    NoCreateOnly(String),
    #[error("object {key} was stored with {stored} bytes instead of {sent}")]
    ShortWrite { key: String, sent: u64, stored: u64 },
    #[error("could not read {path} to upload it: {source}")]
    LocalFile {
        path: String,
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

const CREDENTIALS_HINT: &str = "check the storage credentials: AWS_ACCESS_KEY_ID and \
     AWS_SECRET_ACCESS_KEY or AWS_PROFILE, GOOGLE_APPLICATION_CREDENTIALS, \
     AZURE_STORAGE_ACCOUNT_NAME and AZURE_STORAGE_ACCOUNT_KEY";

impl Classify for StoreError {
    fn class(&self) -> Class {
        match self {
            StoreError::BadUrl { .. } => Class::Usage,
            StoreError::NotFound(_) => Class::Corrupt,
            StoreError::CreateDir { .. }
            | StoreError::Sync { .. }
            | StoreError::Write { .. }
            | StoreError::LocalFile { .. } => Class::Io,
            StoreError::Backend { source, .. } if is_local_io(source) => Class::Io,
            _ => Class::Repository,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            StoreError::Missing(_) => {
                Some("create it with `pgbunker init --repo <PATH>`, or check the path".into())
            }
            StoreError::BadUrl { .. } => Some(
                "use a path, file:///path, s3://bucket/prefix[?endpoint=URL&region=R&\
                 path_style=true&allow_http=true], gs://bucket/prefix or az://container/prefix"
                    .into(),
            ),
            StoreError::Backend { source, .. } => match source {
                object_store::Error::PermissionDenied { .. }
                | object_store::Error::Unauthenticated { .. } => Some(CREDENTIALS_HINT.into()),
                e => match told_only_in_text(e) {
                    // No credentials anywhere: object_store falls back to the instance
                    // metadata service, which is not there.
                    Some(Told::MetadataService) => Some(CREDENTIALS_HINT.into()),
                    Some(Told::NoSuchBucket) => Some(
                        "the bucket does not exist; create it first (pgbunker never creates \
                         buckets)"
                            .into(),
                    ),
                    None if request_not_sent(e) => Some(unanswered_hint(e).into()),
                    None => None,
                },
            },
            StoreError::NoCreateOnly(_) => Some(
                "pgbunker needs conditional puts (If-None-Match: *) to commit safely; use \
                 a store that supports them (AWS S3, R2, MinIO, Ceph RGW recent versions)"
                    .into(),
            ),
            StoreError::ShortWrite { .. } => {
                Some("the storage lost or cut the object; run the command again".into())
            }
            _ => None,
        }
    }
}

/// What an object_store error tells only in its text.
enum Told {
    /// A request went to the instance metadata service (169.254.169.254).
    MetadataService,
    /// The S3 error code `NoSuchBucket`.
    NoSuchBucket,
}

/// The one place that reads an object_store error's text, for what object_store
/// 0.12 does not type. A failed request is a `client::retry::RetryError`, which
/// object_store 0.12.5 does not export (its module is `pub(crate)`), so it cannot be
/// downcast: the URL it was sent to (how a failed fallback to the instance metadata
/// service shows) and the S3 error code in the response body (`NoSuchBucket` comes
/// as `Error::NotFound`, like a missing key, or as `Error::Generic`) are only in its
/// message. The HTTP status is typed (`PermissionDenied`, `Unauthenticated`,
/// `NotFound`) and matched as such by the callers.
fn told_only_in_text(e: &object_store::Error) -> Option<Told> {
    let text = e.to_string();
    if text.contains("169.254.169.254") {
        Some(Told::MetadataService)
    } else if text.contains("NoSuchBucket") {
        Some(Told::NoSuchBucket)
    } else {
        None
    }
}

/// What to check when a request got no answer, by backend: each takes its endpoint
/// from a different place (object_store names the backend in a request's error).
fn unanswered_hint(e: &object_store::Error) -> &'static str {
    match e {
        object_store::Error::Generic {
            store: "MicrosoftAzure",
            ..
        } => {
            "the storage endpoint did not answer; check AZURE_STORAGE_ACCOUNT_NAME or \
             AZURE_STORAGE_ENDPOINT (AZURITE_BLOB_STORAGE_URL with \
             AZURE_STORAGE_USE_EMULATOR=true for the Azurite emulator) and the network"
        }
        object_store::Error::Generic { store: "GCS", .. } => {
            "the storage endpoint did not answer; check the network (and, for an \
             emulator, gcs_base_url in GOOGLE_SERVICE_ACCOUNT_KEY or the service \
             account file)"
        }
        _ => {
            "the storage endpoint did not answer; check the URL's endpoint= option (or \
             AWS_ENDPOINT_URL) and the network"
        }
    }
}

/// Whether the request never got an answer because it could not be sent (no
/// connection, DNS, TLS): reqwest's request error, which object_store keeps in the
/// error's source chain.
fn request_not_sent(e: &object_store::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if c.downcast_ref::<reqwest::Error>()
            .is_some_and(|r| r.is_request())
        {
            return true;
        }
        cause = c.source();
    }
    false
}

/// Threads flushing files or folders at once: enough for the file system to group
/// their commits, few enough not to flood the blocking pool.
const SYNC_AT_ONCE: usize = 16;

/// fsyncs `paths` (named by their keys in errors) on [`SYNC_AT_ONCE`] threads, each
/// taking the next path when done: a thread per path cost two wakeups per file.
async fn sync_paths(paths: Vec<(String, PathBuf)>) -> Result<(), StoreError> {
    let threads = SYNC_AT_ONCE.min(paths.len());
    let paths = Arc::new(std::sync::Mutex::new(paths));
    let flushes = (0..threads).map(|_| {
        let paths = paths.clone();
        tokio::task::spawn_blocking(move || loop {
            let Some((key, path)) = paths.lock().expect("not poisoned").pop() else {
                return Ok(());
            };
            if let Err(source) = std::fs::File::open(&path).and_then(|f| f.sync_all()) {
                return Err(StoreError::Sync { key, source });
            }
        })
    });
    for flushed in futures::future::join_all(flushes).await {
        flushed.map_err(|e| StoreError::Sync {
            key: String::new(),
            source: std::io::Error::other(e.to_string()),
        })??;
    }
    Ok(())
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

/// A local object smaller than this is written on the calling thread: the create,
/// write and close take less than handing them to a blocking thread and waking the
/// task again, which on thousands of small tables was a tenth of the backup's CPU.
const INLINE_WRITE_BYTES: usize = 64 << 10;

/// Writes `bytes` to a temporary file beside `path`, then links it into place: fails
/// with `AlreadyExists` when `path` exists, and is never seen half-written.
fn write_new_whole(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("object");
    let tmp = path.with_file_name(format!(".{name}.{:016x}.tmp", rand::random::<u64>()));
    write_new(&tmp, bytes)?;
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    linked
}

/// Creates `path` (and its folder when missing) and writes `bytes` to it; fails when
/// it exists.
fn write_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let open = || {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
    };
    let mut file = match open() {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            open()?
        }
        opened => opened?,
    };
    file.write_all(bytes)?;
    start_writeback(&file);
    Ok(())
}

/// Asks the kernel to start writing the file's pages now, without waiting: the flush
/// that makes a backup durable then finds them written, instead of starting every
/// write after the last chunk (on the 1.2 GB bench database the disk sat idle during
/// the backup and the final flush of 110 MB kept the CPUs idle). Errors are left to
/// that flush, which reports them.
#[cfg(target_os = "linux")]
fn start_writeback(file: &std::fs::File) {
    use std::os::fd::AsRawFd;
    // SAFETY: the descriptor stays open for the call, which reads no memory of ours.
    unsafe {
        libc::sync_file_range(file.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE);
    }
}

#[cfg(not(target_os = "linux"))]
fn start_writeback(_: &std::fs::File) {}

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

/// A key as object_store's path. Keys are already valid paths; `parse` keeps them as
/// they are, where `from` would encode a `%` in them once more (export folders of
/// table names with unusual characters are percent-encoded by the export).
fn obj_path(key: &str) -> ObjPath {
    ObjPath::parse(key).unwrap_or_else(|_| ObjPath::from(key))
}

/// `url` as reports may show it: unchanged when it is a repository location, else
/// without user info and option values (a URL pgbunker refuses may hold a pasted
/// secret, and monitoring output travels far).
pub fn shown_location(url: &str) -> String {
    match Location::parse(url) {
        Ok(_) => url.to_owned(),
        Err(_) => location::redact(url),
    }
}

/// An open repository location.
#[derive(Clone)]
pub struct Store {
    inner: Arc<dyn ObjectStore>,
    location: String,
    /// Set for local folders: object_store does not fsync, so we do (see `put_new`).
    local_root: Option<PathBuf>,
    /// How long a failing request is retried (cloud stores).
    retry_window: Duration,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Store({})", self.location)
    }
}

/// Objects above this size are uploaded in parts on cloud stores: a retried part
/// costs 8 MiB, not the whole object.
const MULTIPART_THRESHOLD: usize = 8 << 20;
const PART_SIZE: usize = 8 << 20;

impl Store {
    /// Opens an existing repository location.
    pub fn open(url: &str) -> Result<Store, StoreError> {
        match Location::parse(url)? {
            Location::Local(path) if !path.is_dir() => Err(StoreError::Missing(url.into())),
            loc @ Location::Local(_) => Self::local(&loc),
            cloud => Self::cloud(&cloud, url),
        }
    }

    /// Opens a location for a new repository, creating the folder if needed (a
    /// bucket must already exist: creating buckets is the cloud account's business).
    pub fn create(url: &str) -> Result<Store, StoreError> {
        match Location::parse(url)? {
            loc @ Location::Local(_) => {
                let Location::Local(path) = &loc else {
                    unreachable!()
                };
                // Owner-only where this creates it (an existing folder keeps its modes).
                std::os::unix::fs::DirBuilderExt::mode(
                    std::fs::DirBuilder::new().recursive(true),
                    0o700,
                )
                .create(path)
                .map_err(|source| StoreError::CreateDir {
                    path: path.display().to_string(),
                    source,
                })?;
                Self::local(&loc)
            }
            cloud => Self::cloud(&cloud, url),
        }
    }

    fn local(loc: &Location) -> Result<Store, StoreError> {
        let url = loc.canonical();
        let path = PathBuf::from(&url);
        let url = url.as_str();
        // Folders emptied by prune go too, so they never list as leftover backups.
        let fs = LocalFileSystem::new_with_prefix(&path)
            .map_err(backend("open", url))?
            .with_automatic_cleanup(true);
        Ok(Store {
            inner: Arc::new(fs),
            location: url.into(),
            local_root: Some(path),
            retry_window: Duration::ZERO,
        })
    }

    fn cloud(loc: &Location, url: &str) -> Result<Store, StoreError> {
        let retry_window = location::retry_window(url)?;
        Ok(Store {
            inner: loc.connect(url, retry_window)?,
            location: loc.canonical(),
            local_root: None,
            retry_window,
        })
    }

    /// Free space on a local repository's file system, in percent of its size
    /// (`None` for object storage, which does not run full).
    pub fn free_percent(&self) -> Option<f64> {
        let root = self.local_root.as_ref()?;
        let path = std::ffi::CString::new(root.as_os_str().as_encoded_bytes()).ok()?;
        // SAFETY: statvfs fills the struct we pass and reads a NUL-terminated path.
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        if unsafe { libc::statvfs(path.as_ptr(), &mut st) } != 0 || st.f_blocks == 0 {
            return None;
        }
        Some(st.f_bavail as f64 / st.f_blocks as f64 * 100.0)
    }

    /// The location in its one canonical spelling (an absolute folder, or the URL
    /// with sorted options); repository URLs carry no secrets.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// Writes a new object; fails with [`StoreError::AlreadyExists`] if the key is
    /// taken. This is the only way committed state is written. On a local folder the
    /// object and its folder are fsynced before this returns, so the catalog entry that
    /// commits a backup can never survive a power loss that its chunks did not; on
    /// cloud stores S3 checks the SHA-256 it is sent and every store's stored size is
    /// compared with what was sent.
    pub async fn put_new(&self, key: &str, bytes: Bytes) -> Result<(), StoreError> {
        let len = bytes.len() as u64;
        if self.local_root.is_none() && bytes.len() > MULTIPART_THRESHOLD {
            self.put_multipart_new(key, bytes).await?;
        } else {
            self.put_create(key, bytes).await?;
        }
        self.make_durable(key, len).await
    }

    /// Like [`Store::put_new`], but on a local folder the object is made durable later,
    /// by [`Store::sync_written`] with the keys of everything written so: a backup
    /// flushes its chunks together before its manifest, instead of waiting for five
    /// fsyncs (the file and each folder up to the root) per chunk, which dominated
    /// backups of many small tables. Cloud stores are durable at once, as for
    /// `put_new`.
    ///
    /// Never visible half-written: several writers may create the same
    /// content-addressed chunk at once, each reading what the other wrote. In a folder
    /// the bytes go to a temporary file beside it (written on the calling thread when
    /// small: a thread handoff per small table cost more than the data), which is then
    /// linked into place, create-only.
    pub async fn put_new_unsynced(&self, key: &str, bytes: Bytes) -> Result<(), StoreError> {
        let Some(root) = &self.local_root else {
            return self.put_new(key, bytes).await;
        };
        let path = root.join(key);
        let written = if bytes.len() < INLINE_WRITE_BYTES {
            write_new_whole(&path, &bytes)
        } else {
            tokio::task::spawn_blocking(move || write_new_whole(&path, &bytes))
                .await
                .map_err(|e| std::io::Error::other(e.to_string()))
                .and_then(|r| r)
        };
        written.map_err(|source| match source.kind() {
            std::io::ErrorKind::AlreadyExists => StoreError::AlreadyExists(key.into()),
            _ => StoreError::Write {
                key: key.into(),
                source,
            },
        })
    }

    /// Makes the objects [`Store::put_new_unsynced`] wrote durable: each file, then
    /// each folder between them and the root once, several at a time so the file
    /// system can share its journal commits between them. Never `syncfs`: where the
    /// repository shares a file system with the database, that flushes the server's
    /// own dirty pages too (a 3000-table backup once waited 4 s on them). Nothing to do
    /// on cloud stores.
    pub async fn sync_written(&self, keys: Vec<String>) -> Result<(), StoreError> {
        let Some(root) = &self.local_root else {
            return Ok(());
        };
        let mut folders = std::collections::BTreeSet::new();
        for key in &keys {
            let mut dir = root.join(key);
            while let Some(d) = dir.parent() {
                if !d.starts_with(root) || !folders.insert(d.to_path_buf()) {
                    break;
                }
                dir = d.to_path_buf();
            }
        }
        let files: Vec<(String, PathBuf)> =
            keys.iter().map(|k| (k.clone(), root.join(k))).collect();
        sync_paths(files).await?;
        // Deepest folders first: a folder's entry in its parent is flushed after it.
        let mut folders: Vec<PathBuf> = folders.into_iter().collect();
        folders.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
        let folders = folders
            .into_iter()
            .map(|d| (d.display().to_string(), d))
            .collect();
        sync_paths(folders).await
    }

    /// Proves the store honours create-only puts (some S3-compatible stores ignore
    /// `If-None-Match`): the catalog's concurrency control depends on it. Writes a
    /// probe object twice under a fresh name, expects the second put refused, and
    /// removes it.
    pub async fn check_create_only(&self) -> Result<(), StoreError> {
        let mut r = [0u8; 8];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut r);
        let key = format!("probe/create-only-{}", hex::encode(r));
        self.put_create(&key, Bytes::from_static(b"1")).await?;
        let second = self.put_create(&key, Bytes::from_static(b"2")).await;
        self.delete(&key).await?;
        match second {
            Err(StoreError::AlreadyExists(_)) => Ok(()),
            Err(e) => Err(e),
            Ok(()) => Err(StoreError::NoCreateOnly(self.location.clone())),
        }
    }

    /// Replaces an object whole (readers see the old or the new bytes, never a mix),
    /// durably like [`Store::put_new`]. Only for state that is meant to change:
    /// lock heartbeats and key slots, never backups or the catalog.
    pub async fn put_overwrite(&self, key: &str, bytes: Bytes) -> Result<(), StoreError> {
        let len = bytes.len() as u64;
        self.inner
            .put(&obj_path(key), PutPayload::from(bytes))
            .await
            .map_err(backend("write", key))?;
        self.make_durable(key, len).await
    }

    /// Local: fsync the object and its new folders. Cloud: the store acknowledged the
    /// put; check it kept every byte.
    async fn make_durable(&self, key: &str, len: u64) -> Result<(), StoreError> {
        match &self.local_root {
            Some(root) => {
                let (path, root) = (root.join(key), root.clone());
                tokio::task::spawn_blocking(move || sync_file_and_parents(&path, &root))
                    .await
                    .map_err(|e| std::io::Error::other(e.to_string()))
                    .and_then(|r| r)
                    .map_err(|source| StoreError::Sync {
                        key: key.into(),
                        source,
                    })
            }
            None => match self.size(key).await? {
                Some(stored) if stored == len => Ok(()),
                stored => Err(StoreError::ShortWrite {
                    key: key.into(),
                    sent: len,
                    stored: stored.unwrap_or(0),
                }),
            },
        }
    }

    /// Uploads a local file as a new object, in parts when it is large, reading it
    /// part by part so memory stays at one part whatever the file's size.
    pub async fn put_file_new(&self, key: &str, path: &std::path::Path) -> Result<(), StoreError> {
        use tokio::io::AsyncReadExt;
        let io = |source: std::io::Error| StoreError::LocalFile {
            path: path.display().to_string(),
            source,
        };
        let len = tokio::fs::metadata(path).await.map_err(io)?.len();
        if len as usize <= MULTIPART_THRESHOLD {
            let bytes = tokio::fs::read(path).await.map_err(io)?;
            return self.put_new(key, Bytes::from(bytes)).await;
        }
        if self.size(key).await?.is_some() {
            return Err(StoreError::AlreadyExists(key.into()));
        }
        let upload = self
            .inner
            .put_multipart(&obj_path(key))
            .await
            .map_err(backend("start uploading", key))?;
        let mut w = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
        let sent = async {
            let mut file = tokio::fs::File::open(path).await.map_err(io)?;
            let mut buf = vec![0u8; PART_SIZE];
            loop {
                let n = file.read(&mut buf).await.map_err(io)?;
                if n == 0 {
                    return w.wait_for_capacity(0).await.map_err(backend("upload", key));
                }
                w.wait_for_capacity(2)
                    .await
                    .map_err(backend("upload", key))?;
                w.write(&buf[..n]);
            }
        }
        .await;
        match sent {
            Ok(()) => w.finish().await.map_err(backend("upload", key)).map(drop),
            Err(e) => {
                abort_upload(w, key).await;
                Err(e)
            }
        }
    }

    /// Multipart uploads cannot be conditional in object_store, so a large object is
    /// refused when its key is already taken. Only chunks are this large, and their
    /// keys hold a fresh random backup id, so no second writer races for them.
    async fn put_multipart_new(&self, key: &str, bytes: Bytes) -> Result<(), StoreError> {
        if self.size(key).await?.is_some() {
            return Err(StoreError::AlreadyExists(key.into()));
        }
        let path = obj_path(key);
        let upload = self
            .inner
            .put_multipart(&path)
            .await
            .map_err(backend("start uploading", key))?;
        let mut w = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
        w.put(bytes);
        match w.wait_for_capacity(0).await {
            Ok(()) => w.finish().await.map_err(backend("upload", key)).map(drop),
            Err(e) => {
                abort_upload(w, key).await;
                Err(backend("upload", key)(e))
            }
        }
    }

    /// A create-only put is not idempotent, so object_store does not retry it when it
    /// times out or its connection breaks: the object may or may not have landed. A
    /// stalled request must not fail a long backup, so such a put is sent again within
    /// the retry window, and a key found taken on a later attempt counts as written
    /// when it holds exactly these bytes (no other writer produces the same bytes:
    /// every object carries its own backup id or sequence number).
    async fn put_create(&self, key: &str, bytes: Bytes) -> Result<(), StoreError> {
        let path = obj_path(key);
        let deadline = std::time::Instant::now() + self.retry_window;
        let mut resent: u32 = 0;
        loop {
            let opts = PutOptions {
                mode: PutMode::Create,
                ..Default::default()
            };
            match self
                .inner
                .put_opts(&path, PutPayload::from(bytes.clone()), opts)
                .await
            {
                Ok(_) => return Ok(()),
                Err(object_store::Error::AlreadyExists { .. }) if resent > 0 => {
                    return match self.get_opt(key).await? {
                        Some(stored) if stored == bytes => Ok(()),
                        _ => Err(StoreError::AlreadyExists(key.into())),
                    };
                }
                Err(object_store::Error::AlreadyExists { .. }) => {
                    return Err(StoreError::AlreadyExists(key.into()))
                }
                Err(e)
                    if self.local_root.is_none()
                        && std::time::Instant::now() < deadline
                        && may_have_landed(&e) =>
                {
                    resent += 1;
                    tracing::warn!(
                        "writing {key} timed out or was cut off ({e}); sending it again \
                         (attempt {})",
                        resent + 1
                    );
                    tokio::time::sleep(Duration::from_secs(1 << resent.min(4))).await;
                }
                Err(source) => return Err(backend("write", key)(source)),
            }
        }
    }

    pub async fn get(&self, key: &str) -> Result<Bytes, StoreError> {
        self.get_opt(key)
            .await?
            .ok_or_else(|| StoreError::NotFound(key.into()))
    }

    pub async fn get_opt(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        match self.inner.get(&obj_path(key)).await {
            Ok(r) => Ok(Some(r.bytes().await.map_err(backend("read", key))?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(backend("read", key)(e)),
        }
    }

    /// Size of an object, or `None` when it is missing.
    pub async fn size(&self, key: &str) -> Result<Option<u64>, StoreError> {
        match self.inner.head(&obj_path(key)).await {
            Ok(m) => Ok(Some(m.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(source) => Err(backend("inspect", key)(source)),
        }
    }

    /// Every object key under `prefix` (recursively), sorted.
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let p = obj_path(prefix);
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

    /// Every object under `prefix` (recursively) with its size and when the store last
    /// wrote it.
    pub async fn list_meta(&self, prefix: &str) -> Result<Vec<Listed>, StoreError> {
        let p = obj_path(prefix);
        self.inner
            .list(Some(&p))
            .map_ok(|m| Listed {
                key: m.location.to_string(),
                size: m.size,
                modified: time::OffsetDateTime::from_unix_timestamp(m.last_modified.timestamp())
                    .unwrap_or(time::OffsetDateTime::UNIX_EPOCH),
            })
            .try_collect()
            .await
            .map_err(backend("list", prefix))
    }

    /// The names directly below `prefix` that hold objects ("folders"), sorted.
    pub async fn list_dirs(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let p = obj_path(prefix);
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
        match self.inner.delete(&obj_path(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(source) => Err(backend("delete", key)(source)),
        }
    }

    /// Removes the folders left empty below `prefix` on a local store (a write that
    /// failed midway, e.g. on a full disk, leaves its folders behind, and an empty
    /// backup folder would list as a leftover forever). Object stores have no folders.
    pub fn remove_empty_dirs(&self, prefix: &str) {
        fn sweep(dir: &std::path::Path) -> bool {
            let Ok(entries) = std::fs::read_dir(dir) else {
                return false;
            };
            let mut empty = true;
            for e in entries.flatten() {
                let p = e.path();
                if !(p.is_dir() && sweep(&p)) {
                    empty = false;
                }
            }
            empty && std::fs::remove_dir(dir).is_ok()
        }
        if let Some(root) = &self.local_root {
            sweep(&root.join(prefix));
        }
    }
}

/// Gives up an unfinished multipart upload, so its parts are not kept (and billed)
/// by the store, invisible to listings. A failure here only leaves them for the
/// bucket's lifecycle rule to remove.
async fn abort_upload(w: WriteMultipart, key: &str) {
    if let Err(e) = w.abort().await {
        tracing::warn!("could not abort the unfinished upload of {key}: {e}");
    }
}

/// Whether a failed request ended without an answer (timed out, connection broken),
/// so the store may have acted on it. object_store retries such failures only for
/// idempotent requests.
fn may_have_landed(e: &object_store::Error) -> bool {
    use std::io::ErrorKind;
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if c.downcast_ref::<reqwest::Error>()
            .is_some_and(|r| r.is_timeout())
        {
            return true;
        }
        if c.downcast_ref::<std::io::Error>().is_some_and(|io| {
            matches!(
                io.kind(),
                ErrorKind::TimedOut
                    | ErrorKind::ConnectionAborted
                    | ErrorKind::ConnectionReset
                    | ErrorKind::BrokenPipe
                    | ErrorKind::UnexpectedEof
            )
        }) {
            return true;
        }
        cause = c.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

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
