//! Values that carry type OIDs inside them: arrays of enums, of extension types, of
//! composites and of domains, composites (standalone and tables' row types) holding
//! such arrays and each other, domains over arrays, ranges over an enum and over a
//! composite, multiranges (PostgreSQL 14+). The restored database gives those types
//! new OIDs, so restore rewrites the OIDs inside the values.
//!
//! PostgreSQL 13 refuses values with the old OIDs ("wrong element type", "wrong data
//! type"); from 14 on the server ignores OIDs of non-built-in types inside binary
//! values. So the test runs on the default server and on PostgreSQL 13
//! (`PGBUNKER_PG_BIN_OLD`), where a restore without the rewrite fails.

use crate::support::{oids_in, ok, restore_with_new_oids, stderr, World};

const SOURCE: &str = r#"
CREATE SCHEMA "Odd Types";
CREATE TYPE "Odd Types"."Mood" AS ENUM ('calm', 'tense', 'we''ird');
CREATE TYPE public.level AS ENUM ('low', 'high');

-- A row type with a dropped column (row values carry live fields only) and an enum
-- array field.
CREATE TABLE public.a_point (x int, gone text, moods "Odd Types"."Mood"[]);
ALTER TABLE public.a_point DROP COLUMN gone;
INSERT INTO public.a_point VALUES (1, '{calm,tense}'), (NULL, NULL);

-- A row type nesting the first one, alone and in an array.
CREATE TABLE public.b_segment (
    start public.a_point,
    stops public.a_point[],
    level public.level
);
INSERT INTO public.b_segment VALUES
    (ROW(1, '{calm}'), ARRAY[ROW(2, '{}'), NULL, ROW(NULL, NULL)]::public.a_point[], 'low');

CREATE TABLE "Odd Types".readings (
    id int PRIMARY KEY,
    mood "Odd Types"."Mood",
    moods "Odd Types"."Mood"[],
    doubled int GENERATED ALWAYS AS (id * 2) STORED,
    grid "Odd Types"."Mood"[][],
    levels public.level[],
    plain int[],
    seg public.b_segment,
    segs public.b_segment[],
    pt public.a_point
);
INSERT INTO "Odd Types".readings (id, mood, moods, grid, levels, plain, seg, segs, pt) VALUES
    (1, 'calm', '{calm,tense,we''ird}', '{{calm,tense},{NULL,calm}}', '{low,high}', '{1,2}',
     (SELECT s FROM public.b_segment s),
     ARRAY[(SELECT s FROM public.b_segment s), NULL],
     ROW(7, '{we''ird,NULL}')),
    -- Empty arrays, NULL everywhere, an all-NULL composite.
    (2, NULL, '{}', '{}', NULL, '{}', ROW(NULL, NULL, NULL), '{}', ROW(NULL, NULL)),
    (3, 'tense', NULL, NULL, '{NULL}', NULL, NULL, NULL, NULL),
    -- Non-default lower bounds, NULL elements, three dimensions.
    (4, 'we''ird', '[-2:0]={calm,NULL,tense}', '[0:1][5:6]={{calm,NULL},{tense,we''ird}}',
     '[3:3]={high}', '[-1:0]={NULL,5}', NULL,
     '[2:3]={NULL,"(\"(1,\\\"{calm}\\\")\",{},high)"}',
     ROW(NULL, '[10:11]={tense,calm}'));
INSERT INTO "Odd Types".readings (id, grid)
SELECT 100 + g, '[1:2][1:2][0:1]={{{calm,tense},{NULL,calm}},{{tense,tense},{calm,NULL}}}'
FROM generate_series(1, 500) g;
"#;

/// What needs the DDL of types beyond enums: standalone composites, domains,
/// ranges, extension types.
const MORE: &str = r#"
CREATE SCHEMA ext;
CREATE EXTENSION citext SCHEMA ext;
CREATE EXTENSION hstore SCHEMA ext;
-- A standalone composite (a citext field, an enum array, a row type), domains over
-- arrays, arrays of a domain, ranges over an enum and over a composite.
CREATE TYPE public.pair AS (label ext.citext, moods "Odd Types"."Mood"[], at public.a_point);
CREATE DOMAIN public.small_ints AS int[] CHECK (cardinality(VALUE) <= 3);
CREATE DOMAIN public.mood_list AS "Odd Types"."Mood"[] NOT NULL;
CREATE TYPE public.mood_span AS RANGE (subtype = "Odd Types"."Mood");
CREATE TYPE public.cpt AS (x int, tags ext.citext[]);
CREATE TYPE public.cpt_span AS RANGE (subtype = public.cpt);
CREATE TABLE public.c_more (
    id int PRIMARY KEY,
    p public.pair,
    ps public.pair[],
    si public.small_ints,
    ml public.mood_list,
    mls public.mood_list[],
    span public.mood_span,
    spans public.mood_span[],
    cspan public.cpt_span,
    tags ext.citext[],
    docs ext.hstore[]
);
INSERT INTO public.c_more VALUES
    (1, ROW('Ab', '{calm}', ROW(1, '{tense}')), ARRAY[ROW('x', NULL, NULL)::public.pair, NULL],
     '{1,2}', '{calm,tense}', '{"{calm}","{}"}',
     '[calm,we''ird)', ARRAY['[calm,tense]'::public.mood_span, 'empty'],
     public.cpt_span(ROW(1, '{a}'), ROW(2, '{B,NULL}'), '[]'),
     '{Foo,NULL,bar}', ARRAY['a=>1'::ext.hstore, NULL]),
    (2, NULL, NULL, NULL, '{}', NULL, NULL, NULL, NULL, NULL, NULL),
    (3, ROW(NULL, NULL, NULL), '{}', '[0:1]={NULL,3}', '[5:5]={we''ird}', '{}',
     '(,calm]', '{}', 'empty', '{}', '{}'),
    (4, NULL, NULL, NULL, '{}', NULL, NULL, NULL,
     public.cpt_span(NULL, ROW(3, '{}'), '(]'), NULL, NULL);
-- Multiranges exist from PostgreSQL 14.
DO $$ BEGIN
  IF pg_catalog.current_setting('server_version_num')::int >= 140000 THEN
    ALTER TABLE public.c_more ADD COLUMN cspans public.cpt_span_multirange;
    EXECUTE 'UPDATE public.c_more SET cspans = public.cpt_span_multirange(cspan)';
  END IF;
END $$;
"#;

#[tokio::test(flavor = "multi_thread")]
async fn arrays_and_composites_of_user_types_round_trip() {
    round_trip(&World::start()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn arrays_and_composites_of_user_types_round_trip_into_postgres_13() {
    let w = World::start_version("PGBUNKER_PG_BIN_OLD");
    assert!(
        w.server_version().await < 140000,
        "PGBUNKER_PG_BIN_OLD must name PostgreSQL 13, the one release that checks the \
         type OIDs inside binary values\nhint: PGBUNKER_PG_BIN_OLD=/opt/pgbunker-pg/13/bin"
    );
    round_trip(&w).await;
}

/// Source with every shape, backup, restore into a new database, judged whole.
async fn round_trip(w: &World) {
    let src = w.empty_db("usertypes").await;
    src.connect()
        .await
        .unwrap()
        .batch_execute(&format!("{SOURCE}\n{MORE}"))
        .await
        .unwrap();
    let repo = w.init_repo("repo");
    let o = w.backup(&repo, "usertypes", &["-j", "2"]);
    let err = stderr(&o);
    ok(o);
    assert!(
        !err.contains("restore would fail"),
        "these columns restore now: {err}"
    );

    // The OID counter is cluster-wide and only moves on, so the restored types get new
    // OIDs anyway; types created and dropped meanwhile, as on a busy cluster, widen
    // the gap.
    let dst = restore_with_new_oids(w, &repo).await;

    let oids = "SELECT '\"Odd Types\".\"Mood\"'::regtype::oid, 'public.a_point'::regtype::oid";
    let (a, b) = (
        oids_in(w, "usertypes", oids).await,
        oids_in(w, "restored", oids).await,
    );
    assert!(
        a.iter().zip(&b).all(|(x, y)| x != y),
        "the restored types have new OIDs: {a:?} {b:?}"
    );
    w.assert_same("usertypes", "restored").await;

    // The values are whole, not merely equal as text: operators on them still work.
    let c = dst.connect().await.unwrap();
    let r = c
        .query_one(
            "SELECT grid[1][6]::text, (segs[3]).start.moods[1]::text, array_lower(moods, 1) \
             FROM \"Odd Types\".readings WHERE id = 4",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(r.get::<_, String>(0), "we'ird");
    assert_eq!(r.get::<_, String>(1), "calm");
    assert_eq!(r.get::<_, i32>(2), -2);
    let r = c
        .query_one(
            "SELECT (p).label OPERATOR(ext.=) 'AB'::ext.citext, (lower(cspan)).tags[1]::text, ps[1]::text \
             FROM public.c_more WHERE id = 1",
            &[],
        )
        .await
        .unwrap();
    assert!(r.get::<_, bool>(0));
    assert_eq!(r.get::<_, String>(1), "a");
    assert_eq!(r.get::<_, String>(2), "(x,,)");
}
