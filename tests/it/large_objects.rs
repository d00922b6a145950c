//! Large objects: carried by a plain backup under their OIDs with owner, privileges
//! and comment, across several chunks, left out of partial backups and restores
//! unless asked for, refused over a clashing OID, and checked by verify.

use crate::support::{ok, pgbunker, run_sql, stderr, table_chunks, World, KEY};
use crate::torture::large_objects;

/// A table pointing at large objects: a 3.2 MB one of incompressible text, a small
/// one with a comment and a grant, and an empty one, owned by `lo_keeper`.
const DOCS: &str = "
    DO $$ BEGIN
      IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'lo_keeper') THEN
        CREATE ROLE lo_keeper LOGIN PASSWORD 'keeper-pw';
      END IF;
      IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'lo_reader') THEN
        CREATE ROLE lo_reader;
      END IF;
    END $$;
    CREATE TABLE public.docs (id int PRIMARY KEY, blob oid);
    CREATE TABLE public.other (id int);
    INSERT INTO public.other VALUES (1);
    INSERT INTO public.docs VALUES
      (1, lo_from_bytea(5551001, (SELECT string_agg(md5(i::text), '')
                                  FROM generate_series(1, 100000) i)::bytea)),
      (2, lo_from_bytea(5551002, 'a small one')),
      (3, lo_from_bytea(5551003, ''));
    ALTER LARGE OBJECT 5551001 OWNER TO lo_keeper;
    ALTER LARGE OBJECT 5551002 OWNER TO lo_keeper;
    GRANT SELECT ON LARGE OBJECT 5551002 TO lo_reader;
    COMMENT ON LARGE OBJECT 5551002 IS 'it''s small';
    ALTER TABLE public.docs OWNER TO lo_keeper;
    ALTER TABLE public.other OWNER TO lo_keeper;
";

async fn docs_db(w: &World, name: &str) {
    w.empty_db(name).await;
    run_sql(w, name, DOCS).await;
}

fn json(out: &str) -> serde_json::Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("no JSON ({e}): {out}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_large_object_spanning_several_chunks_round_trips_and_passes_a_restore_test() {
    let w = World::start();
    docs_db(&w, "docs").await;
    let repo = w.init_repo("repo");
    ok(w.backup(&repo, "docs", &["--chunk-size-kb", "64", "-j", "2"]));
    let lo_chunks = table_chunks(&repo, "latest", "pg_catalog.pg_largeobject")
        .await
        .len();
    assert!(lo_chunks > 3, "{lo_chunks} large-object chunks");
    w.empty_db("restored").await;
    ok(w.restore(&repo, "latest", "restored"));
    let source = large_objects(&w, "docs").await;
    assert_eq!(source.len(), 3);
    assert_eq!(large_objects(&w, "restored").await, source);
    w.assert_same("docs", "restored").await;

    ok(pgbunker(
        &["verify", "--repo", &repo, "latest", "--data"],
        &[("PGBUNKER_KEY", KEY)],
    ));
    let out = ok(w.restore_test(&repo).await);
    let r = json(&out);
    assert_eq!(r["result"], "PASS", "{out}");
    assert_eq!(r["large_objects_expected"], 3, "{out}");
    assert_eq!(r["large_objects_ok"], 3, "{out}");
    assert!(
        large_objects(&w, "scratch").await.is_empty(),
        "the restore test unlinks what it restored"
    );

    // Export writes tables only, and says the large objects were left out.
    let out = ok(pgbunker(
        &[
            "--json",
            "export",
            "--repo",
            &repo,
            "latest",
            "--out",
            w.dir.path().join("parquet").to_str().unwrap(),
        ],
        &[("PGBUNKER_KEY", KEY)],
    ));
    assert!(
        out.contains("3 large object(s) in the backup were not exported"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_database_holding_only_large_objects_round_trips() {
    let w = World::start();
    w.empty_db("blobs").await;
    run_sql(
        &w,
        "blobs",
        "SELECT lo_from_bytea(7770001, 'one'); SELECT lo_from_bytea(7770002, ''); \
         SELECT lo_create(7770003); SELECT lo_put(7770003, 100000, '\\xff');",
    )
    .await;
    let repo = w.init_repo("repo");
    let out = ok(w.backup(&repo, "blobs", &["--json"]));
    assert_eq!(json(&out)["not_covered"], serde_json::json!([]), "{out}");
    w.empty_db("restored").await;
    ok(w.restore(&repo, "latest", "restored"));
    let source = large_objects(&w, "blobs").await;
    assert_eq!(source.len(), 3);
    assert_eq!(large_objects(&w, "restored").await, source);
}

#[tokio::test(flavor = "multi_thread")]
async fn table_selections_leave_large_objects_out_unless_asked_for() {
    let w = World::start();
    docs_db(&w, "docs").await;
    let source = large_objects(&w, "docs").await;
    let repo = w.init_repo("repo");

    // Backup -t: left out and listed as not covered, as pg_dump -t leaves them out.
    let out = ok(w.backup(&repo, "docs", &["--json", "-t", "public.docs"]));
    assert_eq!(
        json(&out)["not_covered"],
        serde_json::json!(["large objects: 3 large object(s)"]),
        "{out}"
    );
    w.empty_db("partial").await;
    ok(w.restore(&repo, "latest", "partial"));
    assert!(large_objects(&w, "partial").await.is_empty());

    // Backup -t --large-objects: carried.
    ok(w.backup(&repo, "docs", &["-t", "public.docs", "--large-objects"]));
    w.empty_db("asked").await;
    ok(w.restore(&repo, "latest", "asked"));
    assert_eq!(large_objects(&w, "asked").await, source);

    // A whole backup restored with -t: left out, unless -b.
    ok(w.backup(&repo, "docs", &[]));
    w.empty_db("one_table").await;
    ok(w.restore_with(&repo, "latest", "one_table", &["-t", "public.other"]));
    assert!(large_objects(&w, "one_table").await.is_empty());
    w.empty_db("one_table_b").await;
    ok(w.restore_with(
        &repo,
        "latest",
        "one_table_b",
        &["-t", "public.other", "-b"],
    ));
    assert_eq!(large_objects(&w, "one_table_b").await, source);
    // And a whole restore without them.
    w.empty_db("no_lo").await;
    ok(w.restore_with(&repo, "latest", "no_lo", &["--no-large-objects"]));
    assert!(large_objects(&w, "no_lo").await.is_empty());
    w.assert_same("docs", "no_lo").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_clashing_oid_in_the_target_is_refused_before_anything_is_written() {
    let w = World::start();
    docs_db(&w, "docs").await;
    let repo = w.init_repo("repo");
    ok(w.backup(&repo, "docs", &[]));
    w.empty_db("target").await;
    run_sql(
        &w,
        "target",
        "SELECT lo_from_bytea(5551002, 'someone else''s')",
    )
    .await;
    let before = large_objects(&w, "target").await;

    let o = w.restore(&repo, "latest", "target");
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("already has 1 of the large objects to restore (OIDs 5551002)"),
        "{err}"
    );
    assert!(
        err.contains("--clean") && err.contains("--no-large-objects"),
        "{err}"
    );
    // Nothing was written: no table, the large object untouched.
    let tables: i64 =
        w.pg.conn("target")
            .connect()
            .await
            .unwrap()
            .query_one(
                "SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace",
                &[],
            )
            .await
            .unwrap()
            .get(0);
    assert_eq!(tables, 0);
    assert_eq!(large_objects(&w, "target").await, before);

    // --clean replaces it with the backup's.
    ok(w.restore_with(&repo, "latest", "target", &["--clean", "--if-exists"]));
    assert_eq!(
        large_objects(&w, "target").await,
        large_objects(&w, "docs").await
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_finds_a_missing_or_damaged_large_object_chunk() {
    let w = World::start();
    docs_db(&w, "docs").await;
    let repo = w.init_repo("repo");
    ok(w.backup(&repo, "docs", &["--chunk-size-kb", "64", "-j", "1"]));
    let chunks = table_chunks(&repo, "latest", "pg_catalog.pg_largeobject").await;
    assert!(chunks.len() >= 3, "{chunks:?}");
    let env = [("PGBUNKER_KEY", KEY)];
    ok(pgbunker(
        &["verify", "--repo", &repo, "latest", "--data"],
        &env,
    ));

    let mut bytes = std::fs::read(&chunks[1]).unwrap();
    let n = bytes.len() - 10;
    bytes[n] ^= 0x40;
    std::fs::write(&chunks[1], bytes).unwrap();
    std::fs::remove_file(&chunks[2]).unwrap();
    let name = |p: &std::path::PathBuf| p.file_name().unwrap().to_str().unwrap().to_owned();

    let o = pgbunker(&["verify", "--repo", &repo, "latest"], &env);
    assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));
    let all = format!("{}{}", crate::support::stdout(&o), stderr(&o));
    assert!(all.contains("pg_catalog.pg_largeobject"), "{all}");
    assert!(
        all.contains(&name(&chunks[2])) && all.contains("missing"),
        "{all}"
    );

    let o = pgbunker(&["verify", "--repo", &repo, "latest", "--data"], &env);
    assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));
    let all = format!("{}{}", crate::support::stdout(&o), stderr(&o));
    assert!(all.contains(&name(&chunks[1])), "{all}");

    // Restore refuses it at the pre-flight, before the target is touched.
    w.empty_db("target").await;
    let o = w.restore(&repo, "latest", "target");
    assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));
    assert!(stderr(&o).contains("pre-flight"), "{}", stderr(&o));
    assert!(large_objects(&w, "target").await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_role_that_owns_its_large_objects_backs_them_up_and_others_are_named() {
    let w = World::start();
    docs_db(&w, "docs").await;
    // 5551003 stays the superuser's, without a grant: lo_keeper may not read it.
    let repo = w.init_repo("repo");
    let url = format!(
        "postgresql://lo_keeper:keeper-pw@127.0.0.1:{}/docs",
        w.pg.port()
    );
    let env = [("PGBUNKER_KEY", KEY)];
    let o = pgbunker(&["backup", "--repo", &repo, &url], &env);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("role lo_keeper may not read 1 large object(s): 5551003"),
        "{}",
        stderr(&o)
    );
    run_sql(
        &w,
        "docs",
        "GRANT SELECT ON LARGE OBJECT 5551003 TO lo_keeper",
    )
    .await;
    ok(pgbunker(&["backup", "--repo", &repo, &url], &env));
    w.empty_db("restored").await;
    ok(w.restore(&repo, "latest", "restored"));
    assert_eq!(
        large_objects(&w, "restored").await,
        large_objects(&w, "docs").await
    );
}
