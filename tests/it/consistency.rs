//! Backups of busy and big tables: one snapshot across every worker and every part of
//! a split table, locks that make DDL wait (or the backup fail clearly), and split
//! tables that restore identically.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use pgbunker::archive::{BackupReader, KeySource, Repository};
use pgbunker::codec::parse_key_bytes;
use pgbunker::store::Store;

use crate::support::{all_rows, ok, pgbunker, sequence_values, stderr, World, KEY};

async fn open_latest(repo: &str) -> BackupReader {
    let key = KeySource::Key(parse_key_bytes(KEY.as_bytes()).unwrap());
    let repo = Repository::open(Store::open(repo).unwrap(), Some(&key))
        .await
        .unwrap();
    let live = repo.resolve("latest").await.unwrap();
    BackupReader::open(&repo, &live).await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_table_split_into_parts_restores_identically() {
    let w = World::start();
    let src = w.fixture_db("heart", 1).await;
    let repo = w.init_repo("repo");
    ok(w.backup(&repo, "heart", &["-j", "3", "--part-size-mb", "1"]));
    let reader = open_latest(&repo).await;
    let vitals = reader
        .manifest()
        .tables
        .iter()
        .find(|t| t.name == "vitals_samples")
        .unwrap();
    assert!(vitals.parts.len() >= 4, "{} parts", vitals.parts.len());
    assert_eq!(
        vitals.parts.iter().map(|p| p.rows).sum::<u64>(),
        vitals.rows
    );
    assert_eq!(vitals.parts.last().unwrap().end_page, None);
    crate::format::check_schemas(std::path::Path::new(&repo)).await;
    for p in &vitals.parts {
        let finals = vitals
            .part_chunks(p.part)
            .filter(|c| vitals.is_final(c))
            .count();
        assert_eq!(finals, 1, "each part ends with one FINAL chunk");
    }

    let dst = w.empty_db("restored").await;
    ok(w.restore_with(&repo, "latest", "restored", &["-j", "3"]));
    assert_eq!(all_rows(&src).await, all_rows(&dst).await);
    assert_eq!(w.schema_dump("heart"), w.schema_dump("restored"));
    assert_eq!(sequence_values(&src).await, sequence_values(&dst).await);
}

const ACCOUNTS: i64 = 20_000;
const START_BALANCE: i64 = 1_000;

/// Moves money between accounts and records each move, in one transaction, until
/// told to stop. Returns how many transfers committed.
async fn writer(w: pgbunker::pg::ConnSpec, seed: i64, stop: Arc<AtomicBool>, done: Arc<AtomicU64>) {
    let c = w.connect().await.unwrap();
    let mut i = seed;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let (from, to, amount) = (
            1 + (i * 7919) % ACCOUNTS,
            1 + (i * 104_729) % ACCOUNTS,
            1 + i % 50,
        );
        if from == to {
            continue;
        }
        c.batch_execute(&format!(
            "BEGIN; \
             UPDATE accounts SET balance = balance - {amount}, version = version + 1 WHERE id = {from}; \
             UPDATE accounts SET balance = balance + {amount}, version = version + 1 WHERE id = {to}; \
             INSERT INTO transfers (from_id, to_id, amount) VALUES ({from}, {to}, {amount}); \
             COMMIT"
        ))
        .await
        .unwrap();
        done.fetch_add(1, Ordering::Relaxed);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backup_under_concurrent_writes_sees_one_consistent_snapshot() {
    let w = World::start();
    let src = w.empty_db("bank").await;
    src.connect()
        .await
        .unwrap()
        .batch_execute(&format!(
            "CREATE TABLE accounts (id bigint PRIMARY KEY, balance bigint NOT NULL, \
                                    version bigint NOT NULL, filler text NOT NULL);
             CREATE TABLE transfers (id bigserial PRIMARY KEY,
                                     from_id bigint NOT NULL REFERENCES accounts,
                                     to_id bigint NOT NULL REFERENCES accounts,
                                     amount bigint NOT NULL);
             INSERT INTO accounts SELECT g, {START_BALANCE}, 0, repeat(md5(g::text), 6)
               FROM generate_series(1, {ACCOUNTS}) g;
             ANALYZE accounts;"
        ))
        .await
        .unwrap();
    let repo = w.init_repo("repo");

    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let writers: Vec<_> = (0..2)
        .map(|k| {
            tokio::spawn(writer(
                src.clone(),
                k * 1_000_003,
                stop.clone(),
                done.clone(),
            ))
        })
        .collect();
    // Let the writers get going, back up three times while they run.
    while done.load(Ordering::Relaxed) < 200 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let url = w.pg.url("bank");
    for _ in 0..3 {
        let (repo, url) = (repo.clone(), url.clone());
        let out = tokio::task::spawn_blocking(move || {
            pgbunker(
                &[
                    "backup",
                    "--repo",
                    &repo,
                    "-j",
                    "3",
                    "--part-size-mb",
                    "1",
                    &url,
                ],
                &[("PGBUNKER_KEY", KEY)],
            )
        })
        .await
        .unwrap();
        ok(out);
    }
    let before_stop = done.load(Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    for h in writers {
        h.await.unwrap();
    }
    assert!(before_stop > 200, "the writers ran during the backups");

    let dst = w.empty_db("restored").await;
    ok(w.restore(&repo, "latest", "restored"));
    let c = dst.connect().await.unwrap();
    let r = c
        .query_one(
            "SELECT (SELECT sum(balance) FROM accounts)::int8, (SELECT sum(version) FROM accounts)::int8, \
                    (SELECT count(*) FROM transfers)::int8, (SELECT count(*) FROM accounts)::int8",
            &[],
        )
        .await
        .unwrap();
    let (sum, versions, transfers, accounts): (i64, i64, i64, i64) =
        (r.get(0), r.get(1), r.get(2), r.get(3));
    assert_eq!(accounts, ACCOUNTS);
    assert_eq!(
        sum,
        ACCOUNTS * START_BALANCE,
        "money was neither created nor lost"
    );
    assert_eq!(
        versions,
        2 * transfers,
        "every transfer's two updates and its row, or none"
    );
    assert!(transfers > 0);
    // The foreign keys were added after the data: the restore would have failed on an
    // orphan. The transfers sequence is not behind the data either.
    let next: i64 = c
        .query_one("SELECT nextval('transfers_id_seq')", &[])
        .await
        .unwrap()
        .get(0);
    let max: i64 = c
        .query_one("SELECT coalesce(max(id), 0) FROM transfers", &[])
        .await
        .unwrap()
        .get(0);
    assert!(next > max);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_conflicting_lock_makes_the_backup_fail_clearly_after_the_timeout() {
    let w = World::start();
    let src = w.fixture_db("heart", 1).await;
    let repo = w.init_repo("repo");
    let env = [("PGBUNKER_KEY", KEY)];
    let holder = src.connect().await.unwrap();
    holder
        .batch_execute("BEGIN; LOCK TABLE public.patients IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let o = pgbunker(
        &[
            "backup",
            "--repo",
            &repo,
            "--lock-wait-timeout",
            "1",
            &w.pg.url("heart"),
        ],
        &env,
    );
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(stderr(&o).contains("lock"), "{}", stderr(&o));
    assert!(stderr(&o).contains("--lock-wait-timeout"), "{}", stderr(&o));
    holder.batch_execute("ROLLBACK").await.unwrap();
    ok(w.backup(&repo, "heart", &[]));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backup_taken_on_a_hot_standby_restores_the_primary_data() {
    let w = World::start();
    let src = w.fixture_db("heart", 1).await;
    let standby = w.pg.start_standby().expect("start a hot standby");
    // Wait until the standby has replayed everything the primary wrote.
    let primary = src.connect().await.unwrap();
    let target: String = primary
        .query_one("SELECT pg_current_wal_lsn()::text", &[])
        .await
        .unwrap()
        .get(0);
    let replica = standby.conn("heart").connect().await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let caught_up: bool = replica
            .query_one(
                "SELECT pg_is_in_recovery() AND pg_last_wal_replay_lsn() >= $1::text::pg_lsn",
                &[&target],
            )
            .await
            .unwrap()
            .get(0);
        if caught_up {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the standby never caught up"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let repo = w.init_repo("repo");
    let env = [("PGBUNKER_KEY", KEY)];
    ok(pgbunker(
        &[
            "backup",
            "--repo",
            &repo,
            "-j",
            "2",
            "--part-size-mb",
            "2",
            &standby.url("heart"),
        ],
        &env,
    ));
    assert!(open_latest(&repo).await.manifest().source.in_recovery);
    let dst = w.empty_db("restored").await;
    ok(w.restore(&repo, "latest", "restored"));
    assert_eq!(all_rows(&src).await, all_rows(&dst).await);
    assert_eq!(w.schema_dump("heart"), w.schema_dump("restored"));
}

/// Sets `max_locks_per_transaction` and restarts the server for it to apply.
async fn set_lock_table(w: &World, per_transaction: u32) {
    let c = w.pg.conn("postgres").connect().await.unwrap();
    c.batch_execute(&format!(
        "ALTER SYSTEM SET max_locks_per_transaction = {per_transaction}"
    ))
    .await
    .unwrap();
    drop(c);
    w.pg.restart().unwrap();
}

/// A backup locks each table once (the leader's lock); workers end their transaction
/// after each table, so they do not pile up a lock per table they read as pg_dump's
/// do. Where even that cannot fit the server's lock table, the backup refuses before
/// writing anything and names the setting to raise.
#[tokio::test(flavor = "multi_thread")]
async fn a_lock_table_too_small_is_named_before_anything_is_written() {
    let w = World::start();
    let db = w.empty_db("many").await;
    let c = db.connect().await.unwrap();
    // 1,100 small tables with TOAST (text) and a row each.
    let mut sql = String::new();
    for i in 0..1100 {
        sql.push_str(&format!(
            "CREATE TABLE t{i} (id int PRIMARY KEY, note text); INSERT INTO t{i} VALUES ({i}, 'n{i}');\n"
        ));
    }
    c.batch_execute(&sql).await.unwrap();
    drop(c);
    let repo = w.init_repo("repo");

    // 10 × 82 slots (max_connections 60 + autovacuum 3 + 1 + workers 8 + senders 10):
    // about 820 locks, fewer than the tables.
    set_lock_table(&w, 10).await;
    let o = w.backup(&repo, "many", &["-j", "2"]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("locks 1100 tables"), "{err}");
    assert!(
        err.contains("set max_locks_per_transaction to at least"),
        "{err}"
    );
    let listed = ok(pgbunker(
        &["list", "--repo", &repo, "--json"],
        &[("PGBUNKER_KEY", KEY)],
    ));
    assert_eq!(
        crate::support::json(&listed)["backups"]
            .as_array()
            .map(Vec::len),
        Some(0),
        "{listed}"
    );

    // 16 × 82 = 1312: room for the leader's 1,100 locks but not for twice as many,
    // which workers holding every table they read would need on top.
    set_lock_table(&w, 16).await;
    ok(w.backup(&repo, "many", &["-j", "2"]));
    // The restore creates the schema in one transaction (a failed pre-data leaves
    // nothing): a lock per table, index and TOAST table, so it needs the default room.
    set_lock_table(&w, 64).await;
    w.empty_db("back").await;
    ok(w.restore(&repo, "latest", "back"));
    w.assert_same("many", "back").await;
}
