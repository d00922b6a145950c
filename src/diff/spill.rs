//! Rows that do not fit in memory, spilled to disk by the hash of their key (a grace
//! hash join): each side's rows of the chunks that differ go to one of `parts` files
//! per side, and the parts are then matched one at a time, each within memory. The
//! files hold rows (PHI): they are sealed in blocks with a key made for this run and
//! kept nowhere, in an owner-only temporary folder removed when the diff ends.

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::path::PathBuf;

use tempfile::TempDir;
use xxhash_rust::xxh3::xxh3_64;

use super::DiffError;
use crate::codec::{open_blob, seal_blob, SecretKey};

/// Rows gathered per part and side before they are sealed and written.
const BLOCK_BYTES: usize = 256 << 10;

pub struct Spill {
    dir: TempDir,
    key: SecretKey,
    parts: usize,
    /// Per part, per side (0: earlier, 1: later), the rows not written yet.
    pending: Vec<[Vec<u8>; 2]>,
}

impl Spill {
    pub fn new(parts: usize) -> Result<Spill, DiffError> {
        Ok(Spill {
            dir: tempfile::Builder::new()
                .prefix("pgbunker-diff-")
                .tempdir()?,
            key: SecretKey::random(),
            parts: parts.max(1),
            pending: (0..parts.max(1))
                .map(|_| [Vec::new(), Vec::new()])
                .collect(),
        })
    }

    pub fn parts(&self) -> usize {
        self.parts
    }

    /// Files a row of `side` under the part its key hashes to.
    pub fn put(&mut self, side: usize, key: &[u8], raw: &[u8]) -> Result<(), DiffError> {
        let part = (xxh3_64(key) % self.parts as u64) as usize;
        let buf = &mut self.pending[part][side];
        for field in [key, raw] {
            buf.extend_from_slice(&(field.len() as u64).to_be_bytes());
            buf.extend_from_slice(field);
        }
        if buf.len() >= BLOCK_BYTES {
            let block = std::mem::take(buf);
            self.write(part, side, &block)?;
        }
        Ok(())
    }

    /// Writes every row still gathered: call once, before reading.
    pub fn flush(&mut self) -> Result<(), DiffError> {
        for part in 0..self.parts {
            for side in 0..2 {
                let block = std::mem::take(&mut self.pending[part][side]);
                if !block.is_empty() {
                    self.write(part, side, &block)?;
                }
            }
        }
        Ok(())
    }

    fn path(&self, part: usize, side: usize) -> PathBuf {
        self.dir.path().join(format!("{part}.{side}"))
    }

    fn aad(part: usize, side: usize) -> Vec<u8> {
        format!("pgbunker/diff-spill/{part}/{side}").into_bytes()
    }

    fn write(&self, part: usize, side: usize, block: &[u8]) -> Result<(), DiffError> {
        use std::os::unix::fs::OpenOptionsExt;
        let sealed = seal_blob(&self.key, &Self::aad(part, side), block)
            .map_err(|e| DiffError::Spill(e.to_string()))?;
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(self.path(part, side))?;
        f.write_all(&(sealed.len() as u64).to_be_bytes())?;
        f.write_all(&sealed)?;
        Ok(())
    }

    /// Calls `f` with every row of one part and side, in the order they were put.
    pub fn each(
        &self,
        part: usize,
        side: usize,
        mut f: impl FnMut(&[u8], &[u8]) -> Result<(), DiffError>,
    ) -> Result<(), DiffError> {
        let mut file = match std::fs::File::open(self.path(part, side)) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let damaged = || DiffError::Spill("a spilled block is damaged".into());
        let mut len = [0u8; 8];
        loop {
            match file.read_exact(&mut len) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
                Err(e) => return Err(e.into()),
            }
            let mut sealed = vec![0u8; u64::from_be_bytes(len) as usize];
            file.read_exact(&mut sealed)?;
            let block = open_blob(&self.key, &Self::aad(part, side), &sealed)
                .map_err(|e| DiffError::Spill(e.to_string()))?;
            let mut rest = block.as_slice();
            while !rest.is_empty() {
                let mut field = || -> Result<&[u8], DiffError> {
                    let (n, after) = rest.split_first_chunk::<8>().ok_or_else(damaged)?;
                    let n = u64::from_be_bytes(*n) as usize;
                    let (v, after) = after.split_at_checked(n).ok_or_else(damaged)?;
                    rest = after;
                    Ok(v)
                };
                let key = field()?;
                let raw = field()?;
                f(key, raw)?;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_come_back_by_part_and_side_in_order_and_sealed() {
        let mut s = Spill::new(3).unwrap();
        let rows: Vec<(Vec<u8>, Vec<u8>)> = (0..20_000u32)
            .map(|i| (i.to_be_bytes().to_vec(), format!("row {i}").into_bytes()))
            .collect();
        for (k, r) in &rows {
            s.put((k[3] % 2) as usize, k, r).unwrap();
        }
        s.flush().unwrap();
        let mut back = Vec::new();
        for part in 0..s.parts() {
            for side in 0..2 {
                s.each(part, side, |k, r| {
                    assert_eq!(side, (k[3] % 2) as usize);
                    back.push((k.to_vec(), r.to_vec()));
                    Ok(())
                })
                .unwrap();
            }
        }
        back.sort();
        assert_eq!(back, rows);
        // What lies on disk is sealed: no row is readable there.
        for entry in std::fs::read_dir(s.dir.path()).unwrap() {
            let bytes = std::fs::read(entry.unwrap().path()).unwrap();
            assert!(!bytes.windows(7).any(|w| w == b"row 123"));
        }
    }
}
