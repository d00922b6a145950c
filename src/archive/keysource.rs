//! Where the key-encryption key comes from: the environment or a settings-file key
//! file, never command-line values, which other users can see in `ps`.

use zeroize::Zeroizing;

use super::ArchiveError;
use crate::codec::{parse_key_bytes, SecretKey};

/// A secret that opens a key slot (or, for `key add`, will open a new one). Kept as the
/// secret itself, not a derived key, because a passphrase's KEK depends on the salt of
/// the slot it is tried against.
pub enum KeySource {
    Key(SecretKey),
    Passphrase(Zeroizing<String>),
}

impl std::fmt::Debug for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeySource::Key(_) => f.write_str("KeySource::Key([redacted])"),
            KeySource::Passphrase(_) => f.write_str("KeySource::Passphrase([redacted])"),
        }
    }
}

/// Reads a key or passphrase file. The error names the variable, never its value: a
/// user who put the secret itself in `PGBUNKER_KEY_FILE` must not see it echoed. A
/// file that opens is a path, and is named when its mode is refused.
///
/// As libpq does for `.pgpass` and client keys, a file that group or others may read
/// or write is refused: a key readable by every account on the backup host opens every
/// backup, and one they may write can be swapped for theirs. Like libpq's key rule, a
/// file owned by root may also be readable by its group (0640), for a key that root
/// provisions for a service account.
pub fn read_secret_file(var: &str, path: &str) -> Result<Zeroizing<Vec<u8>>, ArchiveError> {
    use std::io::Read;
    use std::os::unix::fs::MetadataExt;
    let cannot = |e: std::io::Error| {
        ArchiveError::BadKeyInput(format!("cannot read the file named by {var}: {}", e.kind()))
    };
    let mut f = std::fs::File::open(path).map_err(cannot)?;
    // The open file's mode, not the path's: the file read is the file checked.
    let meta = f.metadata().map_err(cannot)?;
    let mode = meta.mode() & 0o777;
    let allowed = if meta.uid() == 0 { 0o040 } else { 0 };
    if mode & 0o077 & !allowed != 0 {
        return Err(ArchiveError::BadKeyInput(format!(
            "{var} names {path}, which group or others may read or write (mode {mode:04o}): \
             a key or passphrase file must be its owner's only; run `chmod 600 {path}`"
        )));
    }
    let mut bytes = Zeroizing::new(Vec::with_capacity(meta.len() as usize));
    f.read_to_end(&mut bytes).map_err(cannot)?;
    Ok(bytes)
}

impl KeySource {
    /// Reads `PGBUNKER_KEY_FILE`, `PGBUNKER_KEY`, `PGBUNKER_PASSPHRASE_FILE` or
    /// `PGBUNKER_PASSPHRASE`. More than one of them set is an error: guessing which one
    /// the user meant could lock them out of their backups.
    pub fn from_env() -> Result<Option<KeySource>, ArchiveError> {
        Self::from_env_with_prefix("PGBUNKER_")
    }

    /// Like [`KeySource::from_env`] with another prefix: `key add` reads the key it
    /// adds from `PGBUNKER_NEW_KEY_FILE` and friends while `PGBUNKER_KEY…` unlocks, so
    /// both rules and error messages stay the same for the two.
    pub fn from_env_with_prefix(prefix: &str) -> Result<Option<KeySource>, ArchiveError> {
        const KEY_FILE: &str = "KEY_FILE";
        const KEY: &str = "KEY";
        const PASSPHRASE_FILE: &str = "PASSPHRASE_FILE";
        let set: Vec<(String, &str, Zeroizing<String>)> =
            [KEY_FILE, KEY, PASSPHRASE_FILE, "PASSPHRASE"]
                .into_iter()
                .filter_map(|suffix| {
                    let var = format!("{prefix}{suffix}");
                    // `PGBUNKER_KEY_FILE=` in a runbook or unit file clears the setting:
                    // an empty file name counts as unset, not as a file to open.
                    let val = std::env::var(&var)
                        .ok()
                        .filter(|v| !(suffix.ends_with("_FILE") && v.is_empty()))?;
                    Some((var, suffix, Zeroizing::new(val)))
                })
                .collect();
        if set.len() > 1 {
            let names: Vec<&str> = set.iter().map(|(n, _, _)| n.as_str()).collect();
            return Err(ArchiveError::BadKeyInput(format!(
                "{} are all set; set exactly one",
                names.join(" and ")
            )));
        }
        let Some((var, suffix, val)) = set.into_iter().next() else {
            return Ok(None);
        };
        let key = |bytes: &[u8]| {
            parse_key_bytes(bytes)
                .map(KeySource::Key)
                .map_err(|e| ArchiveError::codec(format!("{var} is not a valid key"), e))
        };
        match suffix {
            KEY_FILE => key(&read_secret_file(&var, &val)?),
            KEY => key(val.as_bytes()),
            PASSPHRASE_FILE => {
                let bytes = read_secret_file(&var, &val)?;
                let text = std::str::from_utf8(&bytes).map_err(|_| {
                    ArchiveError::BadKeyInput(format!("{var}: the passphrase file is not UTF-8"))
                })?;
                let line = text.strip_suffix('\n').unwrap_or(text);
                let line = line.strip_suffix('\r').unwrap_or(line);
                Self::passphrase(line).map_err(|_| {
                    ArchiveError::BadKeyInput(format!(
                        "{var}: the passphrase is empty (the file's first line holds it)"
                    ))
                })
            }
            _ => Self::passphrase(&val).map_err(|_| {
                ArchiveError::BadKeyInput(format!(
                    "{var} is set, but the passphrase is empty: unset it or set a passphrase"
                ))
            }),
        }
        .map(Some)
    }

    /// A key file named in the settings file: the same rules as `PGBUNKER_KEY_FILE`.
    pub fn from_key_file(path: &std::path::Path) -> Result<KeySource, ArchiveError> {
        let bytes = read_secret_file("key_file", &path.to_string_lossy())?;
        parse_key_bytes(&bytes)
            .map(KeySource::Key)
            .map_err(|e| ArchiveError::codec("key_file is not a valid key", e))
    }

    /// A typed passphrase (the binary prompts for one); empty ones are refused here so
    /// every way in follows the same rule.
    pub fn passphrase(p: &str) -> Result<KeySource, ArchiveError> {
        if p.is_empty() {
            return Err(ArchiveError::BadKeyInput("the passphrase is empty".into()));
        }
        Ok(KeySource::Passphrase(Zeroizing::new(p.to_owned())))
    }

    /// The slot kind this source makes, as `key list` shows it.
    pub fn kind(&self) -> &'static str {
        match self {
            KeySource::Key(_) => "key",
            KeySource::Passphrase(_) => "passphrase",
        }
    }
}
