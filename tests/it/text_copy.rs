//! Tables binary COPY cannot carry (issue 17): reg* columns, whose binary form is a
//! bare OID that names another object, or none, once restored, and `aclitem`, which
//! has no binary I/O at all. Such tables are copied in text format, where reg* values
//! are the objects' qualified names; restore reads them back by name. The restore
//! target's OIDs are shifted first, so values carried as OIDs would name other
//! objects and the oracle (every row as text) would see it.

use std::path::{Path, PathBuf};

use crate::support::{
    oids_in, ok, pgbunker, restore_with_new_oids, run_sql, stderr, stdout, World, KEY,
};

/// `app.refs` holds reg* and aclitem columns beside ordinary ones, with values the
/// text format must escape (tab, newline, backslash), and enough rows (20000, about
/// 3 MiB) to span several 64 KiB chunks and 1 MiB parts; `app.plain` is an ordinary
/// table, copied in binary.
pub const SOURCE: &str = r#"
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'text_copy_reader') THEN
    CREATE ROLE text_copy_reader;
  END IF;
END $$;
CREATE SCHEMA app;
CREATE SCHEMA "Odd Schema";
CREATE TYPE app.mood AS ENUM ('calm', 'tense');
CREATE TABLE app.things (id int PRIMARY KEY, mood app.mood);
CREATE TABLE "Odd Schema"."Things ✓" (id int);
CREATE FUNCTION app.twice(x int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT 2 * x';
CREATE FUNCTION app.twice(x text) RETURNS text LANGUAGE sql IMMUTABLE AS 'SELECT x || x';
CREATE TABLE app.refs (
    id     int PRIMARY KEY,
    rel    regclass,
    typ    regtype,
    fn     regprocedure,
    rels   regclass[],
    acl    aclitem,
    note   text,
    at     timestamptz,
    span   interval,
    n      float8,
    tags   text[]
);
INSERT INTO app.refs VALUES
    (1, 'app.things', 'app.mood', 'app.twice(integer)',
     ARRAY['app.things', '"Odd Schema"."Things ✓"', 'pg_catalog.pg_class']::regclass[],
     'text_copy_reader=r/text_copy_reader', E'tab\there\nnew line \\ back\\slash \\N',
     '2024-02-29 12:34:56.789+05:30', '1 year 2 mons -3 days 04:05:06.789', 0.1,
     ARRAY[E'a\tb', 'c"d', NULL]),
    (2, '"Odd Schema"."Things ✓"', 'app.mood[]', 'app.twice(text)', '{}',
     '=X/text_copy_reader', '', '-infinity', '-1 mons', 'NaN', '{}'),
    (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
INSERT INTO app.refs (id, rel, typ, fn, rels, note)
    SELECT g, 'app.refs', 'app.things', 'app.twice(integer)', ARRAY['app.refs']::regclass[],
           md5(g::text)
    FROM generate_series(4, 20000) AS g;
CREATE TABLE app.plain (id int PRIMARY KEY, v text);
INSERT INTO app.plain VALUES (1, 'binary as ever');
"#;

const ENV: [(&str, &str); 1] = [("PGBUNKER_KEY", KEY)];

/// The source database `refs`, backed up into a new repository with small chunks and
/// `extra` flags.
async fn backed_up(w: &World, extra: &[&str]) -> String {
    w.empty_db("refs").await;
    run_sql(w, "refs", SOURCE).await;
    let repo = w.init_repo("repo");
    let mut args = vec!["-j", "2", "--chunk-size-kb", "64"];
    args.extend_from_slice(extra);
    ok(w.backup(&repo, "refs", &args));
    repo
}

#[tokio::test(flavor = "multi_thread")]
async fn reg_and_aclitem_columns_round_trip_by_name() {
    let w = World::start();
    // Split into page ranges (PostgreSQL 14+), each copied and restored on its own.
    let repo = backed_up(&w, &["--part-size-mb", "1"]).await;
    if w.server_version().await >= 140000 {
        let out = ok(pgbunker(&["--json", "verify", "--repo", &repo], &ENV));
        let report: serde_json::Value = serde_json::from_str(&out).unwrap();
        // Four tables with data, app.refs in more than one part.
        assert!(report["backups"][0]["parts"].as_u64() > Some(4), "{out}");
    }
    let dst = restore_with_new_oids(&w, &repo).await;

    let oids = "SELECT 'app.things'::regclass::oid, 'app.mood'::regtype::oid, \
                'app.twice(integer)'::regprocedure::oid";
    let (a, b) = (
        oids_in(&w, "refs", oids).await,
        oids_in(&w, "restored", oids).await,
    );
    assert!(
        a.iter().zip(&b).all(|(x, y)| x != y),
        "the restored objects have other OIDs: {a:?} {b:?}"
    );
    w.assert_same("refs", "restored").await;

    // The values name the restored objects: they resolve, by OID, to the same names.
    let c = dst.connect().await.unwrap();
    let r = c
        .query_one(
            "SELECT rel = 'app.things'::regclass, typ = 'app.mood'::regtype, \
             fn = 'app.twice(integer)'::regprocedure, rels[2]::text, \
             acl = 'text_copy_reader=r/text_copy_reader'::aclitem \
             FROM app.refs WHERE id = 1",
            &[],
        )
        .await
        .unwrap();
    assert!(r.get::<_, bool>(0) && r.get::<_, bool>(1) && r.get::<_, bool>(2));
    assert_eq!(r.get::<_, String>(3), "\"Odd Schema\".\"Things ✓\"");
    assert!(r.get::<_, bool>(4));

    // The restore test reads the restored tables back in each one's format and
    // compares checksums with the manifest.
    let out = ok(w.restore_test(&repo).await);
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["result"], "PASS", "{out}");
    let refs = report["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["table"] == "app.refs")
        .unwrap_or_else(|| panic!("no app.refs in {out}"));
    assert_eq!(refs["restored_rows"], 20000, "{refs}");
    assert_eq!(refs["checksum_ok"], true, "{refs}");
}

/// The chunks of `app.refs`, the table with many chunks.
async fn refs_chunks(repo: &str) -> Vec<PathBuf> {
    crate::support::table_chunks(repo, "latest", "app.refs").await
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_reads_text_chunks_and_names_a_damaged_one() {
    let w = World::start();
    let repo = backed_up(&w, &[]).await;
    let verify = |args: &[&str]| {
        let mut all = vec!["--json", "verify", "--repo", &repo];
        all.extend_from_slice(args);
        pgbunker(&all, &ENV)
    };
    let o = verify(&["--data"]);
    assert_eq!(o.status.code(), Some(0), "{}\n{}", stdout(&o), stderr(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let b = &report["backups"][0];
    // Every row of every table was parsed, text rows included, and every part's
    // checksum recomputed.
    assert_eq!(b["rows_read"], 20000 + 1, "{report}");
    assert_eq!(b["parts_checksummed"], b["parts"], "{report}");
    // The manifest's copy_format is described by its JSON Schema.
    crate::format::check_schemas(Path::new(&repo)).await;

    let chunks = refs_chunks(&repo).await;
    assert!(
        chunks.len() >= 3,
        "app.refs spans several chunks: {chunks:?}"
    );
    let victim = &chunks[chunks.len() / 2];
    let mut bytes = std::fs::read(victim).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x20;
    std::fs::write(victim, &bytes).unwrap();
    let o = verify(&["--data"]);
    assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let problems = report["backups"][0]["problems"].as_array().unwrap();
    let key = victim.strip_prefix(&repo).unwrap().display().to_string();
    assert!(
        problems
            .iter()
            .any(|p| p["table"] == "app.refs" && p["chunk"]["path"] == key.as_str()),
        "the damaged text chunk {key} is named: {report}"
    );
}
