//! The hash-chained catalog: `catalog/<seq>` objects, write-once, each naming the
//! SHA-256 of its predecessor. A backup is committed when an entry lists it; the
//! create-only put of the next entry is the commit point and the concurrency control.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::repo::Repository;
use super::sealed::{self, Kind};
use super::watermark::{self, Mark, Seen};
use super::{layout, ArchiveError};
use crate::store::StoreError;

/// A committed backup as the catalog lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveBackup {
    pub bid: String,
    pub manifest_sha256: String,
    pub created_at: String,
    #[serde(default)]
    pub keep_until: Option<String>,
    #[serde(default)]
    pub legal_hold: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tombstone {
    pub bid: String,
    pub at: String,
}

/// The body of one catalog entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogState {
    pub seq: u64,
    pub prev_sha256: Option<String>,
    pub live: Vec<LiveBackup>,
    #[serde(default)]
    pub tombstones: Vec<Tombstone>,
}

const KIND: Kind = Kind {
    magic: b"PGBKCAT\x01",
    domain: b"pgbunker/v1/catalog",
    what: "a catalog entry",
};

fn encode(repo: &Repository, state: &CatalogState) -> Result<Vec<u8>, ArchiveError> {
    let json = serde_json::to_vec(state).expect("catalog serializes");
    sealed::seal(repo, &KIND, state.seq, &json)
}

fn decode(repo: &Repository, seq: u64, bytes: &[u8]) -> Result<CatalogState, ArchiveError> {
    let json = sealed::open(repo, &KIND, seq, &format!("catalog entry {seq}"), bytes)?;
    let state: CatalogState =
        serde_json::from_slice(&json).map_err(|e| ArchiveError::json("a catalog entry", e))?;
    if state.seq != seq {
        return Err(ArchiveError::Corrupt(format!(
            "catalog entry {seq}: its body names another sequence number"
        )));
    }
    Ok(state)
}

/// Writes entry `state.seq` create-only; returns the SHA-256 of the object.
pub(crate) async fn write_entry(
    repo: &Repository,
    state: &CatalogState,
) -> Result<String, ArchiveError> {
    let bytes = encode(repo, state)?;
    let sha = hex::encode(Sha256::digest(&bytes));
    repo.store()
        .put_new(&layout::catalog_entry(state.seq), Bytes::from(bytes))
        .await?;
    Ok(sha)
}

/// The newest entry and the SHA-256 of its object. The link to its predecessor is
/// checked so a replaced or truncated chain shows up at once.
pub(crate) async fn read_latest(repo: &Repository) -> Result<(CatalogState, String), ArchiveError> {
    let keys = repo.store().list(layout::CATALOG).await?;
    let mut seqs: Vec<u64> = keys
        .iter()
        .filter_map(|k| layout::parse_catalog_seq(k))
        .collect();
    seqs.sort_unstable();
    let Some(&last) = seqs.last() else {
        return Err(ArchiveError::Corrupt("the catalog is missing".into()));
    };
    let bytes = repo.store().get(&layout::catalog_entry(last)).await?;
    let state = decode(repo, last, &bytes)?;
    let sha = hex::encode(Sha256::digest(&bytes));
    if last > 0 {
        let prev = repo
            .store()
            .get_opt(&layout::catalog_entry(last - 1))
            .await?
            .ok_or_else(|| {
                ArchiveError::Corrupt(format!("catalog entry {} is missing", last - 1))
            })?;
        let prev_sha = hex::encode(Sha256::digest(&prev));
        if state.prev_sha256.as_deref() != Some(prev_sha.as_str()) {
            return Err(ArchiveError::Corrupt(format!(
                "catalog entry {last} does not chain to entry {}",
                last - 1
            )));
        }
    }
    Ok((state, sha))
}

/// The newest entry, checked against this machine's high-water mark (when the
/// repository has a state folder), which is then raised to it.
pub(crate) async fn read_checked(
    repo: &Repository,
) -> Result<(CatalogState, String), ArchiveError> {
    // The mark is read before the catalog is listed: a concurrent run on this
    // machine may raise it meanwhile, and a mark newer than our listing would look
    // like a rollback.
    let mark = match repo.state_dir() {
        Some(dir) => dir.load(repo.store().location())?,
        None => None,
    };
    let (state, sha) = read_latest(repo).await?;
    if let Some(dir) = repo.state_dir() {
        let location = repo.store().location();
        if let Some(mark) = mark {
            let old_sha = if mark.max_seq == state.seq {
                Some(sha.clone())
            } else {
                repo.store()
                    .get_opt(&layout::catalog_entry(mark.max_seq))
                    .await?
                    .map(|b| hex::encode(Sha256::digest(&b)))
            };
            let seen = Seen {
                location,
                repo_id: &repo.config().repo_id,
                seq: state.seq,
            };
            watermark::check(dir, &mark, &seen, old_sha.as_deref())?;
        }
        raise_mark(repo, state.seq, &sha)?;
    }
    Ok((state, sha))
}

pub(crate) fn raise_mark(repo: &Repository, seq: u64, sha: &str) -> Result<(), ArchiveError> {
    match repo.state_dir() {
        Some(dir) => dir.raise(&Mark {
            location: repo.store().location().into(),
            repo_id: repo.config().repo_id.clone(),
            max_seq: seq,
            sha256: sha.into(),
        }),
        None => Ok(()),
    }
}

/// Appends an entry made by `change` from the newest one. When another writer commits
/// first, the create-only put fails and we start again from its entry.
pub(crate) async fn commit(
    repo: &Repository,
    change: impl Fn(&mut CatalogState),
) -> Result<CatalogState, ArchiveError> {
    for _ in 0..50 {
        let (current, sha) = read_checked(repo).await?;
        let mut next = current.clone();
        next.seq = current.seq + 1;
        next.prev_sha256 = Some(sha);
        change(&mut next);
        let bytes = encode(repo, &next)?;
        let sha = hex::encode(Sha256::digest(&bytes));
        let key = layout::catalog_entry(next.seq);
        match repo.store().put_new(&key, Bytes::from(bytes)).await {
            Ok(()) => {}
            // The store's client retries a put whose answer was lost; the retry then
            // finds our own entry. Only someone else's entry means we lost the race.
            Err(StoreError::AlreadyExists(_)) => {
                let stored = repo.store().get(&key).await?;
                if hex::encode(Sha256::digest(&stored)) != sha {
                    continue;
                }
            }
            Err(e) => return Err(e.into()),
        }
        raise_mark(repo, next.seq, &sha)?;
        return Ok(next);
    }
    Err(ArchiveError::Corrupt(
        "could not commit to the catalog after 50 attempts (too many concurrent writers?)".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::KeySource;
    use crate::codec::SecretKey;
    use crate::store::Store;

    fn live(bid: &str) -> LiveBackup {
        LiveBackup {
            bid: bid.into(),
            manifest_sha256: "0".repeat(64),
            created_at: "2026-01-01T00:00:00Z".into(),
            keep_until: None,
            legal_hold: false,
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn concurrent_commits_all_land_and_the_chain_holds() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::create(dir.path().to_str().unwrap()).unwrap();
        let key = KeySource::Key(SecretKey::from_bytes([9; 32]));
        let (repo, _) = Repository::init(store, Some(&key), false).await.unwrap();
        let mut tasks = Vec::new();
        for i in 0..8 {
            let repo = repo.clone();
            tasks.push(tokio::spawn(async move {
                let b = live(&format!("b{i}"));
                commit(&repo, move |s| s.live.push(b.clone())).await
            }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        let (state, _) = read_latest(&repo).await.unwrap();
        assert_eq!(state.seq, 8);
        let mut bids: Vec<String> = state.live.iter().map(|b| b.bid.clone()).collect();
        bids.sort();
        assert_eq!(bids, (0..8).map(|i| format!("b{i}")).collect::<Vec<_>>());
        // Every link checks out.
        for seq in 1..=8u64 {
            let prev = repo
                .store()
                .get(&layout::catalog_entry(seq - 1))
                .await
                .unwrap();
            let cur = repo.store().get(&layout::catalog_entry(seq)).await.unwrap();
            let s = decode(&repo, seq, &cur).unwrap();
            assert_eq!(s.prev_sha256.unwrap(), hex::encode(Sha256::digest(&prev)));
        }
    }

    #[tokio::test]
    async fn an_entry_from_another_repository_or_seq_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let key = KeySource::Key(SecretKey::from_bytes([9; 32]));
        let a = Store::create(dir.path().join("a").to_str().unwrap()).unwrap();
        let b = Store::create(dir.path().join("b").to_str().unwrap()).unwrap();
        let (ra, _) = Repository::init(a, Some(&key), false).await.unwrap();
        let (rb, _) = Repository::init(b, Some(&key), false).await.unwrap();
        let entry_a = ra.store().get(&layout::catalog_entry(0)).await.unwrap();
        let e = decode(&rb, 0, &entry_a).unwrap_err().to_string();
        assert!(e.contains("another repository"), "{e}");
        let e = decode(&ra, 1, &entry_a).unwrap_err().to_string();
        assert!(e.contains("sequence number"), "{e}");
    }
}
