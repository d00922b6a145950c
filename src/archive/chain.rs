//! The hash-chained catalog: `catalog/<seq>` objects, write-once, each naming the
//! SHA-256 of its predecessor. A backup is committed when an entry lists it; the
//! create-only put of the next entry is the commit point and the concurrency control.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::keymgmt;
use super::keyring::KeyRing;
use super::repo::Repository;
use super::sealed::{self, Kind};
use super::timestamp::Timestamp;
use super::watermark::{self, Mark, Seen};
use super::{layout, trust, ArchiveError};
use crate::store::StoreError;

/// A committed backup as the catalog lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveBackup {
    pub bid: String,
    pub manifest_sha256: String,
    pub created_at: Timestamp,
    #[serde(default)]
    pub keep_until: Option<Timestamp>,
    #[serde(default)]
    pub legal_hold: bool,
    /// The key ring generation its data key and manifest were sealed under (format 3;
    /// `None` for backups written before).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tombstone {
    pub bid: String,
    pub at: Timestamp,
    /// The backup's manifest hash and key generation, as it had them while live
    /// (absent in tombstones written before format 5): until its objects go, the
    /// chunks it lists are kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest_sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<u64>,
}

/// The body of one catalog entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogState {
    pub seq: u64,
    pub prev_sha256: Option<String>,
    pub live: Vec<LiveBackup>,
    #[serde(default)]
    pub tombstones: Vec<Tombstone>,
    /// The key ring generation in force from the next entry on, and the ring key that
    /// seals it (format 3). A key change announces its generation here first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ring: Option<RingDecl>,
    /// The generation this entry's header names (`None` for a header from before
    /// format 3): read from the header, never stored in the JSON.
    #[serde(skip)]
    pub sealed_under: Option<u64>,
    /// Whether the entry was encrypted (from its header).
    #[serde(skip)]
    pub sealed: bool,
}

/// A key ring generation as the catalog announces it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RingDecl {
    pub generation: u64,
    pub ring_key_id: String,
}

impl CatalogState {
    /// The generation every later entry must be sealed under, at least.
    pub(crate) fn in_force(&self) -> u64 {
        let declared = self.ring.as_ref().map_or(0, |d| d.generation);
        declared.max(self.sealed_under.unwrap_or(0))
    }
}

const KIND: Kind = Kind {
    magic: b"PGBKCAT\x01",
    domain: b"pgbunker/v1/catalog",
    what: "a catalog entry",
};

pub(crate) fn encode(repo: &Repository, state: &CatalogState) -> Result<Vec<u8>, ArchiveError> {
    encode_with(repo.keys(), repo.repo_id(), state)
}

fn encode_with(
    ring: Option<&KeyRing>,
    repo_id: &[u8; 16],
    state: &CatalogState,
) -> Result<Vec<u8>, ArchiveError> {
    let json = serde_json::to_vec(state).expect("catalog serializes");
    sealed::seal_with(ring, repo_id, &KIND, state.seq, &json)
}

fn decode(repo: &Repository, seq: u64, bytes: &[u8]) -> Result<CatalogState, ArchiveError> {
    decode_with(repo.keys(), repo.repo_id(), seq, bytes)
}

fn decode_with(
    ring: Option<&KeyRing>,
    repo_id: &[u8; 16],
    seq: u64,
    bytes: &[u8],
) -> Result<CatalogState, ArchiveError> {
    let name = format!("catalog entry {seq}");
    let opened = sealed::open_with(ring, repo_id, &KIND, seq, &name, bytes)?;
    let mut state: CatalogState = serde_json::from_slice(&opened.json)
        .map_err(|e| ArchiveError::json("a catalog entry", e))?;
    state.sealed_under = opened.generation;
    state.sealed = opened.sealed;
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
    // A key ring reloaded after the listing may already be in force after an entry the
    // listing did not see yet: list again rather than take it for a deleted entry.
    for _ in 0..ATTEMPTS {
        if let Some(found) = read_latest_once(repo).await? {
            return Ok(found);
        }
    }
    Err(ArchiveError::Corrupt(format!(
        "the key ring kept changing while the catalog was read ({ATTEMPTS} attempts)"
    )))
}

const ATTEMPTS: usize = 50;

async fn read_latest_once(
    repo: &Repository,
) -> Result<Option<(CatalogState, String)>, ArchiveError> {
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
    // An entry sealed under a generation newer than the ring this process opened means
    // another client changed the keys since: read with the ring as stored now.
    let fresh = match (repo.keys(), sealed::header_generation(&bytes)) {
        (Some(ring), Some(g)) if g > ring.generation => {
            Some(keymgmt::reload(repo.store(), repo.repo_id(), ring, None).await?)
        }
        _ => None,
    };
    let ring = fresh.as_ref().or(repo.keys());
    let state = decode_with(ring, repo.repo_id(), last, &bytes)?;
    let sha = hex::encode(Sha256::digest(&bytes));
    if ring.is_none() && last > 0 {
        // pgbunker.json is plaintext and anyone who can write the bucket can say
        // "none" there: entry 0, written by init, says what the repository really is.
        let first = repo.store().get(&layout::catalog_entry(0)).await?;
        if sealed::is_sealed(&KIND, &first) == Some(true) {
            return Err(ArchiveError::Downgraded {
                what: "pgbunker.json says it is not, and catalog entry 0 is encrypted".into(),
            });
        }
    }
    let mut previous = None;
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
        previous = Some(decode_with(ring, repo.repo_id(), last - 1, &prev)?);
    }
    if fresh
        .as_ref()
        .and_then(KeyRing::in_force_after)
        .is_some_and(|from| from > last)
    {
        return Ok(None);
    }
    check_generations(ring, &state, previous.as_ref())?;
    Ok(Some((state, sha)))
}

/// The rules that make key generations bind integrity (schema/FORMAT.md, "Generations
/// bind integrity"), checked between the newest entry, its predecessor and the key
/// ring. Each writer checks them before it appends, so the newest entry and its
/// predecessor are all a reader needs: an older RK can seal an entry, but not one that
/// passes for newer than the generation in force.
fn check_generations(
    ring: Option<&KeyRing>,
    newest: &CatalogState,
    prev: Option<&CatalogState>,
) -> Result<(), ArchiveError> {
    let what = format!("catalog entry {}", newest.seq);
    if let Some(p) = prev {
        if p.sealed && !newest.sealed {
            return Err(ArchiveError::Downgraded {
                what: format!("{what} is not encrypted while entry {} is", p.seq),
            });
        }
        let required = p.in_force();
        let generation = newest.sealed_under.unwrap_or(0);
        let format3_before = p.sealed_under.is_some() || p.ring.is_some();
        if generation < required || (newest.sealed_under.is_none() && format3_before) {
            return Err(ArchiveError::StaleGeneration {
                what,
                generation,
                required: required.max(1),
            });
        }
        if let Some(pd) = &p.ring {
            let kept = newest.ring.as_ref().is_some_and(|nd| {
                nd.generation > pd.generation
                    || (nd.generation == pd.generation && nd.ring_key_id == pd.ring_key_id)
            });
            if !kept {
                return Err(ArchiveError::Corrupt(format!(
                    "{what} takes back the key ring generation entry {} announced",
                    p.seq
                )));
            }
        }
        for b in newest
            .live
            .iter()
            .filter(|b| !p.live.iter().any(|o| o.bid == b.bid))
        {
            let ok = match (newest.sealed_under, b.generation) {
                (Some(g), Some(bg)) => bg >= required && bg <= g,
                (None, None) => true,
                (Some(0), None) => !newest.sealed,
                _ => false,
            };
            if !ok {
                return Err(ArchiveError::StaleGeneration {
                    what: format!("backup {} (added by {what})", b.bid),
                    generation: b.generation.unwrap_or(0),
                    required: required.max(1),
                });
            }
        }
    }
    let Some(ring) = ring else {
        return Ok(());
    };
    let Some(from) = ring.in_force_after() else {
        return Ok(());
    };
    let n = ring.generation;
    if newest.seq < from {
        return Err(ArchiveError::Corrupt(format!(
            "key ring generation {n} is in force after catalog entry {from}, but the newest \
             entry is {}: catalog entries were deleted",
            newest.seq
        )));
    }
    let generation = newest.sealed_under.unwrap_or(0);
    if newest.seq > from && generation < n {
        return Err(ArchiveError::StaleGeneration {
            what,
            generation,
            required: n,
        });
    }
    // The newest generation must be the one the catalog announced, under the ring key
    // it announced: anyone can seal a ring key to a slot's public key.
    match &newest.ring {
        Some(d) if d.generation > n => Ok(()),
        Some(d) if d.generation == n && Some(&d.ring_key_id) == ring.ring_key_id().as_ref() => {
            Ok(())
        }
        _ => Err(ArchiveError::Corrupt(format!(
            "key ring generation {n} is not the one the catalog announced: it was planted"
        ))),
    }
}

/// Entry `seq` and the SHA-256 of its object; `None` when it is gone.
pub(crate) async fn read_entry(
    repo: &Repository,
    seq: u64,
) -> Result<Option<(CatalogState, String)>, ArchiveError> {
    let Some(bytes) = repo.store().get_opt(&layout::catalog_entry(seq)).await? else {
        return Ok(None);
    };
    let state = decode(repo, seq, &bytes)?;
    Ok(Some((state, hex::encode(Sha256::digest(&bytes)))))
}

/// The newest entry, checked against this machine's high-water mark (when the
/// repository has a state folder), which is then raised to it. Entries the mark had
/// not reached yet are each compared with their predecessor, so removals another
/// client made are noticed (see `trust`).
pub(crate) async fn read_checked(
    repo: &Repository,
) -> Result<(CatalogState, String), ArchiveError> {
    // The mark is read before the catalog is listed: a concurrent run on this
    // machine may raise it meanwhile, and a mark newer than our listing would look
    // like a rollback.
    let mark = match repo.state_dir() {
        Some(dir) => {
            let location = dir.load(repo.store().location())?;
            let by_id = dir.load_by_id(&repo.config().repo_id)?;
            match (location, by_id) {
                (Some(l), Some(i)) if l.repo_id == i.repo_id && i.max_seq > l.max_seq => Some(i),
                (Some(l), _) => Some(l),
                (None, i) => i,
            }
        }
        None => None,
    };
    let (state, sha) = read_latest(repo).await?;
    let now = repo.trust().now();
    if let Some(e) = trust::future_time(&state, now) {
        return Err(introduced(repo, e).await.into());
    }
    trust::check_expected(repo.trust(), &state)?;
    let Some(dir) = repo.state_dir() else {
        trust::first_contact(repo, &state, &sha);
        return Ok((state, sha));
    };
    let location = repo.store().location();
    let mut removals = Vec::new();
    match mark {
        Some(mark) => {
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
            watermark::check_keys(dir, &mark, &seen, repo.is_encrypted(), repo.keys())?;
            removals = walk(repo, mark.max_seq, &state, &sha).await?;
        }
        None => trust::first_contact(repo, &state, &sha),
    }
    raise_mark(repo, state.seq, &sha)?;
    trust::note(repo, dir, removals, &state, now)?;
    Ok((state, sha))
}

/// Compares every entry after `from` with its predecessor, up to the newest one
/// (`newest`, already read), checking each link on the way.
async fn walk(
    repo: &Repository,
    from: u64,
    newest: &CatalogState,
    newest_sha: &str,
) -> Result<Vec<trust::Removal>, ArchiveError> {
    let mut removals = Vec::new();
    if from >= newest.seq {
        return Ok(removals);
    }
    let missing = |seq: u64| ArchiveError::Corrupt(format!("catalog entry {seq} is missing"));
    let (mut prev, mut prev_sha) = read_entry(repo, from).await?.ok_or_else(|| missing(from))?;
    for seq in from + 1..=newest.seq {
        let (next, next_sha) = if seq == newest.seq {
            (newest.clone(), newest_sha.to_owned())
        } else {
            read_entry(repo, seq).await?.ok_or_else(|| missing(seq))?
        };
        if next.prev_sha256.as_deref() != Some(prev_sha.as_str()) {
            return Err(ArchiveError::Corrupt(format!(
                "catalog entry {seq} does not chain to entry {}",
                seq - 1
            )));
        }
        removals.extend(trust::removal(&prev, &next, &next_sha));
        (prev, prev_sha) = (next, next_sha);
    }
    Ok(removals)
}

/// Names the entry that first carried the refused time, walking back from the
/// newest (a forensic answer for the error; the walk stops at the first entry
/// without it).
async fn introduced(repo: &Repository, e: trust::TrustError) -> trust::TrustError {
    let trust::TrustError::FutureTime { seq, .. } = &e else {
        return e;
    };
    let mut first = *seq;
    while first > 0 {
        match read_entry(repo, first - 1).await {
            Ok(Some((state, _))) if trust::carries(&state, &e) => first -= 1,
            _ => break,
        }
    }
    match e {
        trust::TrustError::FutureTime {
            bid, what, at, now, ..
        } => trust::TrustError::FutureTime {
            seq: first,
            bid,
            what,
            at,
            now,
        },
        e => e,
    }
}

pub(crate) fn raise_mark(repo: &Repository, seq: u64, sha: &str) -> Result<(), ArchiveError> {
    match repo.state_dir() {
        Some(dir) => {
            let mark = Mark {
                location: repo.store().location().into(),
                repo_id: repo.config().repo_id.clone(),
                max_seq: seq,
                sha256: sha.into(),
                encrypted: Some(repo.is_encrypted()),
                generation: repo.keys().and_then(KeyRing::bound_generation),
            };
            dir.raise(&mark)?;
            dir.raise_by_id(&mark)
        }
        None => Ok(()),
    }
}

/// Appends an entry made by `change` from the newest one. When another writer commits
/// first, the create-only put fails and we start again from its entry. The keys are
/// brought to the current format first (see `keymgmt::ensure_current`).
pub(crate) async fn commit(
    repo: &Repository,
    change: impl Fn(&mut CatalogState),
) -> Result<CatalogState, ArchiveError> {
    let (ring, _) = keymgmt::ensure_current(repo).await?;
    commit_raw(repo, ring.as_ref(), |_, next| {
        change(next);
        Ok(())
    })
    .await
    .map(|(state, _)| state)
}

/// Appends an entry sealed under `ring`, made by `change` from the newest one (given
/// too). A key change announced since `ring` was loaded is finished when it was left
/// half done; a backup sealed under a generation older than the one now in force is
/// refused, never committed.
pub(crate) async fn commit_raw(
    repo: &Repository,
    ring: Option<&KeyRing>,
    change: impl Fn(&CatalogState, &mut CatalogState) -> Result<(), ArchiveError>,
) -> Result<(CatalogState, String), ArchiveError> {
    let mut ring = ring.cloned();
    for _ in 0..50 {
        let (current, sha) = read_checked(repo).await?;
        if let Some(r) = &ring {
            let in_force = current.in_force();
            if in_force > r.generation {
                let fresh = keymgmt::reload(repo.store(), repo.repo_id(), r, None).await?;
                let fresh = match &current.ring {
                    Some(d) if d.generation > fresh.generation => {
                        keymgmt::finish_pending(
                            repo.store(),
                            repo.repo_id(),
                            &fresh,
                            d,
                            current.seq,
                        )
                        .await?
                    }
                    _ => fresh,
                };
                ring = Some(fresh);
            }
        }
        let mut next = current.clone();
        next.seq = current.seq + 1;
        next.prev_sha256 = Some(sha);
        change(&current, &mut next)?;
        let required = current.in_force();
        for b in next
            .live
            .iter()
            .filter(|b| !current.live.iter().any(|o| o.bid == b.bid))
        {
            if let (Some(bg), Some(_)) = (
                b.generation,
                ring.as_ref().and_then(KeyRing::bound_generation),
            ) {
                if bg < required {
                    return Err(ArchiveError::KeysChanged {
                        what: format!("backup {}", b.bid),
                        generation: bg,
                        required,
                    });
                }
            }
        }
        let bytes = encode_with(ring.as_ref(), repo.repo_id(), &next)?;
        let sha = hex::encode(Sha256::digest(&bytes));
        if trust::removal(&current, &next, &sha).is_some() {
            trust::record_written(
                repo,
                trust::EntryRef {
                    seq: next.seq,
                    sha256: sha.clone(),
                },
            )?;
        }
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
        return Ok((next, sha));
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
            generation: Some(1),
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
