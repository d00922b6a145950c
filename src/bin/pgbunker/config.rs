//! `pgbunker.toml`: settings for cron jobs and systemd timers, so a nightly unit is one
//! short line. Precedence: flag, then environment variable, then this file, then the
//! built-in default. Secrets never live here: the key is named by `key_file` (a path),
//! and connection passwords belong in `~/.pgpass` or `PGPASSFILE`.

use std::path::{Path, PathBuf};

use pgbunker::archive::retention::RetentionPolicy;
use pgbunker::commands::CommandError;
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Repository URL (`PGBUNKER_REPO`, `--repo`).
    pub repo: Option<String>,
    /// A file holding the repository key (`PGBUNKER_KEY_FILE`).
    pub key_file: Option<PathBuf>,
    /// Where high-water marks are kept (`PGBUNKER_STATE_DIR`, `--state-dir`).
    pub state_dir: Option<PathBuf>,
    /// Database whose `backup_audit_log` also receives every audit record
    /// (`PGBUNKER_AUDIT_DB`, `--audit-db`); put its password in ~/.pgpass.
    pub audit_db: Option<String>,
    #[serde(default)]
    pub backup: BackupConfig,
    #[serde(default)]
    pub restore: RestoreConfig,
    #[serde(default)]
    pub verify: VerifyConfig,
    #[serde(default)]
    pub export: ExportConfig,
    #[serde(default)]
    pub prune: PruneConfig,
    #[serde(default)]
    pub check: CheckConfig,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckConfig {
    pub max_age: Option<String>,
    pub verify_max_age: Option<String>,
    pub min_free_percent: Option<f64>,
    pub prometheus: Option<PathBuf>,
    /// Seconds the repository has to answer (`--timeout`).
    pub timeout: Option<u64>,
    /// Write an audit record of each check (`--audit`).
    pub audit: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupConfig {
    /// Connection string or URL of the database to back up (no password).
    pub source: Option<String>,
    pub jobs: Option<usize>,
    pub compress_level: Option<i32>,
    pub part_size_mb: Option<u64>,
    pub chunk_size_kb: Option<u32>,
    pub lock_wait_timeout: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestoreConfig {
    pub jobs: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyConfig {
    pub jobs: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportConfig {
    pub jobs: Option<usize>,
}

/// `[prune]`: the retention policy's own fields (the library's type, as the flags),
/// and the grace period.
#[derive(Debug, Default, Deserialize)]
pub struct PruneConfig {
    #[serde(flatten)]
    pub policy: RetentionPolicy,
    /// How long tombstoned backups and leftovers wait before deletion ("24h"; "0"
    /// deletes at once).
    pub grace: Option<String>,
    /// Keys no field took: refused by [`load`], since serde's `deny_unknown_fields`
    /// does not work with `flatten`, and a typo must not weaken the policy silently.
    #[serde(flatten)]
    unknown: std::collections::BTreeMap<String, toml::Value>,
}

/// The default places, first found wins: `$XDG_CONFIG_HOME/pgbunker/pgbunker.toml`
/// (or `~/.config/…`), then `/etc/pgbunker/pgbunker.toml`.
fn default_paths() -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(x) = std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        out.push(PathBuf::from(x).join("pgbunker/pgbunker.toml"));
    } else if let Some(h) = std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        out.push(PathBuf::from(h).join(".config/pgbunker/pgbunker.toml"));
    }
    out.push(PathBuf::from("/etc/pgbunker/pgbunker.toml"));
    out
}

/// Loads the file named by `--config`/`PGBUNKER_CONFIG` (which must exist), else the
/// first default place that exists, else an empty configuration.
pub fn load(explicit: Option<&Path>) -> Result<(Config, Option<PathBuf>), CommandError> {
    let path = match explicit {
        Some(p) => Some(p.to_path_buf()),
        None => default_paths().into_iter().find(|p| p.is_file()),
    };
    let Some(path) = path else {
        return Ok((Config::default(), None));
    };
    let text = std::fs::read_to_string(&path).map_err(|e| {
        CommandError::Usage(format!("cannot read config file {}: {e}", path.display()))
    })?;
    let cfg: Config = toml::from_str(&text).map_err(|e| {
        CommandError::Usage(format!("config file {}: {}", path.display(), e.message()))
    })?;
    if let Some(key) = cfg.prune.unknown.keys().next() {
        return Err(CommandError::Usage(format!(
            "config file {}: unknown field `{key}` in [prune]",
            path.display()
        )));
    }
    Ok((cfg, Some(path)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_example_parses_and_typos_are_refused() {
        let cfg: Config = toml::from_str(include_str!("../../../docs/pgbunker.example.toml"))
            .expect("the example config parses");
        assert!(cfg.repo.unwrap().starts_with("s3://"));
        assert_eq!(cfg.prune.policy.keep_within.unwrap().to_string(), "30d");
        let typo: Config = toml::from_str("[prune]\nkeep_dayly = 7\n").unwrap();
        assert!(typo.prune.unknown.contains_key("keep_dayly"));
        let file: Config = toml::from_str("[prune]\nkeep_daily = 7\ngrace = \"0\"\n").unwrap();
        assert_eq!(file.prune.policy.keep_daily, Some(7));
        assert!(file.prune.unknown.is_empty());
        assert!(toml::from_str::<Config>("key = \"abc\"\n").is_err());
    }
}
