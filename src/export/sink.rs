//! Export files: written under a temporary name, then published whole, so a reader
//! never sees half a file under its final name.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;

use super::ExportError;
use crate::store::Store;

/// Closed when an export is abandoned. Files are created and renamed into place only
/// while it is open, under its lock, so once [`Gate::close`] returns no new file
/// appears and the cleanup can delete what is there.
#[derive(Debug, Default)]
pub struct Gate {
    closed: std::sync::Mutex<bool>,
    /// Uploads under way: one that started before the gate closed may still create
    /// its object, so the cleanup waits for them before it deletes.
    uploading: std::sync::atomic::AtomicUsize,
}

impl Gate {
    pub fn close(&self) {
        *self.lock() = true;
    }

    pub fn is_closed(&self) -> bool {
        *self.lock()
    }

    /// Resolves once no upload is under way (after [`Gate::close`], none starts).
    pub async fn drained(&self) {
        while self.uploading.load(std::sync::atomic::Ordering::SeqCst) > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, bool> {
        self.closed.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` unless the gate is closed, holding it open meanwhile.
    fn while_open<T>(&self, f: impl FnOnce() -> Result<T, ExportError>) -> Result<T, ExportError> {
        let closed = self.lock();
        if *closed {
            return Err(ExportError::Cancelled);
        }
        f()
    }

    /// Counts an upload as under way until the returned mark drops, unless the gate
    /// is closed.
    fn start_upload(&self) -> Result<Uploading<'_>, ExportError> {
        self.while_open(|| {
            self.uploading
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(Uploading(self))
        })
    }
}

/// An upload under way (see [`Gate::start_upload`]).
struct Uploading<'a>(&'a Gate);

impl Drop for Uploading<'_> {
    fn drop(&mut self) {
        self.0
            .uploading
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// The file format of an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum FileFormat {
    Parquet,
    /// Arrow IPC file format (Feather v2).
    Arrow,
}

impl FileFormat {
    pub fn extension(self) -> &'static str {
        match self {
            FileFormat::Parquet => "parquet",
            FileFormat::Arrow => "arrow",
        }
    }
}

/// How the column data is compressed inside the files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum Codec {
    Zstd,
    Snappy,
    None,
}

/// Where finished files go.
#[derive(Debug, Clone)]
pub enum Destination {
    /// A local folder: files are renamed into place.
    Local(PathBuf),
    /// Object storage: files are written to a local temporary folder, then uploaded.
    Store(Store),
}

impl Destination {
    /// Refuses to replace a file an earlier export wrote: exports never overwrite.
    pub async fn check_free(&self, key: &str) -> Result<(), ExportError> {
        let taken = match self {
            Destination::Local(dir) => dir.join(key).exists(),
            Destination::Store(s) => s.size(key).await?.is_some(),
        };
        if taken {
            return Err(ExportError::Exists(self.describe(key)));
        }
        Ok(())
    }

    pub fn describe(&self, key: &str) -> String {
        match self {
            Destination::Local(dir) => dir.join(key).display().to_string(),
            Destination::Store(s) => format!("{}/{key}", s.location().trim_end_matches('/')),
        }
    }

    /// Where the file `key` is written before it is published.
    fn temp_path(&self, key: &str, scratch: &Path) -> Result<PathBuf, ExportError> {
        let base = match self {
            Destination::Local(dir) => dir.clone(),
            Destination::Store(_) => scratch.to_path_buf(),
        };
        let path = base.join(format!("{key}.tmp"));
        if let Some(parent) = path.parent() {
            create_private_dir(parent)?;
        }
        Ok(path)
    }

    /// Moves a finished temporary file to its final name. An upload runs outside the
    /// gate (it takes long); one that finishes after the export was abandoned leaves an
    /// object behind, without the summary that would make the export look complete.
    fn publish(
        &self,
        gate: &Gate,
        tmp: &Path,
        key: &str,
        rt: &tokio::runtime::Handle,
    ) -> Result<(), ExportError> {
        match self {
            Destination::Local(dir) => gate.while_open(|| {
                let dest = dir.join(key);
                if dest.exists() {
                    return Err(ExportError::Exists(dest.display().to_string()));
                }
                std::fs::rename(tmp, &dest).map_err(|e| ExportError::io(&dest, e))
            }),
            Destination::Store(store) => {
                let _uploading = gate.start_upload()?;
                let res = rt.block_on(store.put_file_new(key, tmp));
                let _ = std::fs::remove_file(tmp);
                Ok(res?)
            }
        }
    }

    /// Writes a small file whole (the export's summary), create-only.
    pub async fn put_small(&self, key: &str, bytes: Vec<u8>) -> Result<(), ExportError> {
        match self {
            Destination::Local(dir) => {
                let dest = dir.join(key);
                let tmp = dir.join(format!("{key}.tmp"));
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&tmp)
                    .map_err(|e| ExportError::io(&tmp, e))?;
                f.write_all(&bytes)
                    .and_then(|()| f.sync_all())
                    .map_err(|e| ExportError::io(&tmp, e))?;
                if dest.exists() {
                    let _ = std::fs::remove_file(&tmp);
                    return Err(ExportError::Exists(dest.display().to_string()));
                }
                std::fs::rename(&tmp, &dest).map_err(|e| ExportError::io(&dest, e))
            }
            Destination::Store(s) => Ok(s.put_new(key, bytes.into()).await?),
        }
    }

    /// Removes a published file again (an export that failed elsewhere).
    pub async fn remove(&self, key: &str) {
        match self {
            Destination::Local(dir) => {
                let _ = std::fs::remove_file(dir.join(key));
            }
            Destination::Store(s) => {
                let _ = s.delete(key).await;
            }
        }
    }
}

/// Folders and files of an export hold patient data: owner-only, like the repository.
pub fn create_private_dir(path: &Path) -> Result<(), ExportError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(|e| ExportError::io(path, e))
}

enum Writer {
    Parquet(ArrowWriter<File>),
    Arrow(arrow_ipc::writer::FileWriter<File>),
}

/// One export file being written.
pub struct FileSink {
    writer: Option<Writer>,
    tmp: PathBuf,
    key: String,
}

/// The most encoded data a Parquet row group holds before it is written out.
const ROW_GROUP_MAX_BYTES: usize = 128 << 20;

/// What a file records about itself (Parquet key-value metadata, Arrow schema metadata).
pub type FileMetadata = HashMap<String, String>;

pub struct SinkOptions {
    pub format: FileFormat,
    pub codec: Codec,
    pub row_group_rows: usize,
}

impl FileSink {
    pub fn create(
        gate: &Gate,
        dest: &Destination,
        scratch: &Path,
        key: &str,
        schema: SchemaRef,
        metadata: FileMetadata,
        opts: &SinkOptions,
    ) -> Result<FileSink, ExportError> {
        let tmp = dest.temp_path(key, scratch)?;
        let file = gate.while_open(|| {
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)
                .map_err(|e| ExportError::io(&tmp, e))
        })?;
        let writer = match opts.format {
            FileFormat::Parquet => {
                let compression = match opts.codec {
                    Codec::Zstd => Compression::ZSTD(ZstdLevel::try_new(3).expect("level 3")),
                    Codec::Snappy => Compression::SNAPPY,
                    Codec::None => Compression::UNCOMPRESSED,
                };
                let mut kv: Vec<KeyValue> = metadata
                    .into_iter()
                    .map(|(k, v)| KeyValue::new(k, v))
                    .collect();
                kv.sort_by(|a, b| a.key.cmp(&b.key));
                let props = WriterProperties::builder()
                    .set_compression(compression)
                    .set_max_row_group_row_count(Some(opts.row_group_rows))
                    // A row group is held in memory until it is written: wide rows
                    // must not make one grow without bound.
                    .set_max_row_group_bytes(Some(ROW_GROUP_MAX_BYTES))
                    .set_created_by(format!("pgbunker {}", env!("CARGO_PKG_VERSION")))
                    .set_key_value_metadata(Some(kv))
                    .build();
                Writer::Parquet(ArrowWriter::try_new(file, schema, Some(props))?)
            }
            FileFormat::Arrow => {
                let compression = match opts.codec {
                    Codec::Zstd => Some(arrow_ipc::CompressionType::ZSTD),
                    Codec::None => None,
                    Codec::Snappy => {
                        return Err(ExportError::Usage(
                            "Arrow IPC files compress with zstd or not at all; \
                             use --compression zstd or none"
                                .into(),
                        ))
                    }
                };
                let options = arrow_ipc::writer::IpcWriteOptions::default()
                    .try_with_compression(compression)?;
                let schema = (*schema).clone().with_metadata(metadata);
                Writer::Arrow(arrow_ipc::writer::FileWriter::try_new_with_options(
                    file, &schema, options,
                )?)
            }
        };
        Ok(FileSink {
            writer: Some(writer),
            tmp,
            key: key.to_string(),
        })
    }

    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), ExportError> {
        match self.writer.as_mut().expect("open until finished") {
            Writer::Parquet(w) => w.write(batch)?,
            Writer::Arrow(w) => w.write(batch)?,
        }
        Ok(())
    }

    /// Completes the file, makes it durable and publishes it under its final name.
    pub fn finish(
        mut self,
        gate: &Gate,
        dest: &Destination,
        rt: &tokio::runtime::Handle,
    ) -> Result<String, ExportError> {
        let mut file = match self.writer.take().expect("open until finished") {
            Writer::Parquet(w) => w.into_inner()?,
            Writer::Arrow(mut w) => {
                w.finish()?;
                w.into_inner()?
            }
        };
        file.flush().map_err(|e| ExportError::io(&self.tmp, e))?;
        file.sync_all().map_err(|e| ExportError::io(&self.tmp, e))?;
        drop(file);
        dest.publish(gate, &self.tmp, &self.key, rt)?;
        Ok(std::mem::take(&mut self.key))
    }
}

impl Drop for FileSink {
    /// A file that was not finished is removed: no half file is left behind.
    fn drop(&mut self) {
        if !self.key.is_empty() {
            self.writer.take();
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}
