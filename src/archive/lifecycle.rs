//! What happens to a committed backup afterwards: legal holds, tombstones, deletion.
//!
//! Removal takes two catalog commits with a grace period between them. The first moves
//! a backup from `live` to `tombstones`: from then on it cannot be chosen for a new
//! restore, but a restore that started before keeps reading it. Its objects are
//! deleted only once the grace period has passed and no live lock names it; the
//! second commit then drops the tombstone. Every step is a create-only catalog put,
//! so a backup committing at the same time is never lost.

use time::OffsetDateTime;

use super::chain::{self, Tombstone};
use super::layout::BackupLayout;
use super::repo::Repository;
use super::timestamp::Timestamp;
use super::ArchiveError;

/// Whether `keep_until` is still in the future at `now`. An unparsable value
/// protects the backup: it was meant to keep it.
fn kept_until(keep_until: Option<&Timestamp>, now: OffsetDateTime) -> bool {
    keep_until.is_some_and(|t| t.time().is_none_or(|t| t > now))
}

/// How a hold changes.
#[derive(Debug, Clone)]
pub enum HoldChange {
    /// Legal hold: never pruned until released.
    LegalHold,
    /// Kept at least until this time.
    KeepUntil(OffsetDateTime),
    /// Drops both.
    Release,
}

impl Repository {
    /// Applies a hold to a committed backup.
    pub async fn set_hold(&self, bid: &str, change: HoldChange) -> Result<(), ArchiveError> {
        self.resolve(bid).await?;
        let bid = bid.to_owned();
        chain::commit(self, move |state| {
            if let Some(b) = state.live.iter_mut().find(|b| b.bid == bid) {
                match &change {
                    HoldChange::LegalHold => b.legal_hold = true,
                    HoldChange::KeepUntil(t) => b.keep_until = Some((*t).into()),
                    HoldChange::Release => {
                        b.legal_hold = false;
                        b.keep_until = None;
                    }
                }
            }
        })
        .await?;
        Ok(())
    }

    /// Moves backups from `live` to `tombstones`, skipping any that gained a hold
    /// since the caller looked. Returns the ids actually tombstoned.
    pub async fn tombstone(
        &self,
        bids: &[String],
        now: OffsetDateTime,
    ) -> Result<Vec<String>, ArchiveError> {
        if bids.is_empty() {
            return Ok(Vec::new());
        }
        let at = Timestamp::from(now);
        let wanted = bids.to_vec();
        let state = chain::commit(self, move |state| {
            let (gone, kept): (Vec<_>, Vec<_>) = state.live.drain(..).partition(|b| {
                wanted.contains(&b.bid) && !b.legal_hold && !kept_until(b.keep_until.as_ref(), now)
            });
            state.live = kept;
            state.tombstones.extend(gone.into_iter().map(|b| Tombstone {
                bid: b.bid,
                at: at.clone(),
                manifest_sha256: Some(b.manifest_sha256),
                generation: b.generation,
            }));
        })
        .await?;
        Ok(bids
            .iter()
            .filter(|b| state.tombstones.iter().any(|t| &t.bid == *b))
            .cloned()
            .collect())
    }

    /// Drops tombstones whose objects are deleted.
    pub async fn forget_tombstones(&self, bids: &[String]) -> Result<(), ArchiveError> {
        if bids.is_empty() {
            return Ok(());
        }
        let bids = bids.to_vec();
        chain::commit(self, move |state| {
            state.tombstones.retain(|t| !bids.contains(&t.bid));
        })
        .await?;
        Ok(())
    }

    /// Deletes every object of a backup that is not live (tombstoned or never
    /// committed) and returns how many went; `None` when the catalog, read afresh, now
    /// lists it as live (it committed since the caller looked). Chunks go first and
    /// the data key last, so an interrupted deletion leaves something `list` still
    /// shows as incomplete, and the next prune finishes.
    pub async fn delete_backup_objects(&self, bid: &str) -> Result<Option<u64>, ArchiveError> {
        if self.catalog().await?.live.iter().any(|b| b.bid == bid) {
            return Ok(None);
        }
        let layout = BackupLayout::new(bid);
        let mut keys = self.store().list(&layout.dir()).await?;
        let rank = |k: &String| {
            let name = k.rsplit('/').next().unwrap_or("");
            if name.starts_with("dek.") {
                2
            } else if name == "manifest" || name == "summary.json" {
                1
            } else {
                0
            }
        };
        keys.sort_by_key(rank);
        for k in &keys {
            self.store().delete(k).await?;
        }
        self.store().remove_empty_dirs(&layout.dir());
        Ok(Some(keys.len() as u64))
    }
}
