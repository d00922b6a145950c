//! pgbunker: logical, snapshot-consistent, encrypted PostgreSQL backups without pg_dump.
//!
//! Layers (each module imports only from the layers below it; see DESIGN.md):
//! `commands` → engine (`introspect`, `ddl`, `plan`, `dump`, `load`, `export`, `verify`,
//! `diff`, `mask`) →
//! `archive` → leaves (`codec`, `store`, `pg`, `pgcopy`, `catalog`, `sandbox`, `error`,
//! `progress`, `teardown`). See docs/architecture.md.

pub mod archive;
pub mod catalog;
pub mod codec;
pub mod commands;
pub mod ddl;
pub mod diff;
pub mod dump;
pub mod error;
pub mod export;
pub mod interrupt;
pub mod introspect;
pub mod load;
pub mod mask;
pub mod pg;
pub mod pgcopy;
pub mod plan;
pub mod progress;
pub mod restored;
pub mod sandbox;
pub mod store;
pub mod teardown;
#[cfg(test)]
mod testing;
pub mod verify;
