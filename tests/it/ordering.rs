//! The creation-order cases pg_dump's `pg_dump_sort.c` and `pg_backup_archiver.c`
//! handle, each named so that alphabetical order (the sorter's tie-break) would be
//! the wrong order: every case fails the restore if its rule is missing.

use crate::support::{ok, run_sql, shift_type_oids, stderr, World};

/// Objects whose order `pg_depend` alone does not give.
const CASES: &str = r#"
SET check_function_bodies = off;
-- An SQL function whose quoted body names a table created later (pagila's
-- film_in_stock): pg_depend does not see inside the body; check_function_bodies off.
CREATE FUNCTION public.a_in_stock(p int) RETURNS bigint LANGUAGE sql STABLE
    AS $$ SELECT count(*) FROM public.z_inventory WHERE film = p $$;
CREATE TABLE public.z_inventory (id int PRIMARY KEY, film int NOT NULL);
INSERT INTO public.z_inventory VALUES (1, 7), (2, 7), (3, 8);

-- A view valid only because of a primary key (GROUP BY the key selects the other
-- columns), a view on that view, and a function returning the view's rows.
CREATE TABLE public.films (id int PRIMARY KEY, title text COLLATE "C" NOT NULL, year int);
INSERT INTO public.films VALUES (7, 'Alien', 1979), (8, 'Brazil', 1985), (9, 'Casablanca', 1942);
CREATE VIEW public.a_film_counts WITH (security_barrier) AS
    SELECT f.id, f.title, f.year, count(i.id) AS copies
    FROM public.films f LEFT JOIN public.z_inventory i ON i.film = f.id GROUP BY f.id;
COMMENT ON VIEW public.a_film_counts IS 'needs the primary key of films';
CREATE VIEW public.a_popular AS SELECT * FROM public.a_film_counts WHERE copies > 1;
CREATE FUNCTION public.a_counts() RETURNS SETOF public.a_film_counts LANGUAGE sql STABLE
    AS $$ SELECT * FROM public.a_film_counts $$;

-- A materialized view that needs the key, and materialized views that read each other
-- through a plain view: z_mv_base must be refreshed before a_mv_top.
CREATE MATERIALIZED VIEW public.a_mv_counts AS
    SELECT f.id, f.title, count(*) AS n FROM public.films f GROUP BY f.id;
CREATE UNIQUE INDEX a_mv_counts_id ON public.a_mv_counts (id);
CREATE MATERIALIZED VIEW public.z_mv_base AS SELECT id, title FROM public.films;
CREATE VIEW public.m_between AS SELECT id, upper(title) AS shout FROM public.z_mv_base;
CREATE MATERIALIZED VIEW public.a_mv_top AS SELECT * FROM public.m_between;
CREATE MATERIALIZED VIEW public.a_mv_of_counts AS SELECT * FROM public.a_film_counts;

-- A function taking a table's row type, and a CHECK of that table calling it.
CREATE TABLE public.shapes (w int, h int);
CREATE FUNCTION public.area_ok(s public.shapes) RETURNS boolean LANGUAGE sql IMMUTABLE
    AS $$ SELECT s.w * s.h < 1000 $$;
ALTER TABLE public.shapes ADD CONSTRAINT shapes_area CHECK (public.area_ok(shapes.*));
INSERT INTO public.shapes VALUES (10, 20), (30, 30);

-- A base type with binary I/O, made from built-in functions (a C type without the
-- compiler), its shell, an array of it, and a range type with a canonical function.
CREATE TYPE public.myint;
CREATE FUNCTION public.myint_in(cstring) RETURNS public.myint
    LANGUAGE internal IMMUTABLE STRICT AS 'int4in';
CREATE FUNCTION public.myint_out(public.myint) RETURNS cstring
    LANGUAGE internal IMMUTABLE STRICT AS 'int4out';
CREATE FUNCTION public.myint_recv(internal) RETURNS public.myint
    LANGUAGE internal IMMUTABLE STRICT AS 'int4recv';
CREATE FUNCTION public.myint_send(public.myint) RETURNS bytea
    LANGUAGE internal IMMUTABLE STRICT AS 'int4send';
CREATE TYPE public.myint (INPUT = public.myint_in, OUTPUT = public.myint_out,
    RECEIVE = public.myint_recv, SEND = public.myint_send, INTERNALLENGTH = 4,
    PASSEDBYVALUE, ALIGNMENT = int4, CATEGORY = 'N', DEFAULT = '0');
COMMENT ON TYPE public.myint IS 'int4 under another name';
CREATE TABLE public.counters (id int PRIMARY KEY, n public.myint, ns public.myint[]);
INSERT INTO public.counters VALUES (1, '42', '{1,2,3}'), (2, NULL, '{}'), (3, '-7', NULL);
CREATE TYPE public.never_filled;
CREATE TYPE public.evens;
CREATE FUNCTION public.evens_canonical(public.evens) RETURNS public.evens
    LANGUAGE internal IMMUTABLE STRICT AS 'int4range_canonical';
CREATE TYPE public.evens AS RANGE (subtype = int4, canonical = public.evens_canonical);
CREATE TABLE public.spans (id int PRIMARY KEY, s public.evens);
INSERT INTO public.spans VALUES (1, '[1,5]'), (2, 'empty'), (3, '(,3)');
"#;

/// On PostgreSQL 14 and later: an SQL-standard function body, which pg_depend sees
/// into, reading the postponed view.
const CASES_14: &str = r#"
CREATE FUNCTION public.a_standard_counts() RETURNS SETOF public.a_film_counts
    LANGUAGE sql STABLE BEGIN ATOMIC SELECT * FROM public.a_film_counts; END;
"#;

#[tokio::test(flavor = "multi_thread")]
async fn objects_pg_dump_orders_specially_round_trip() {
    let w = World::start();
    let src = w.empty_db("ordering").await;
    run_sql(&w, "ordering", CASES).await;
    if w.server_version().await >= 140000 {
        run_sql(&w, "ordering", CASES_14).await;
    }
    let repo = w.init_repo("repo");
    let out = ok(w.backup(&repo, "ordering", &["--json"]));
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        report["not_covered"],
        serde_json::json!([]),
        "nothing of this database is left out"
    );
    let dst = w.empty_db("restored").await;
    // Type OIDs differ in the target, as in any new cluster: the arrays of the base
    // type carry their element's OID, which the restore rewrites.
    shift_type_oids(&dst.connect().await.unwrap()).await;
    let restored = w.restore(&repo, "latest", "restored");
    assert!(restored.status.success(), "{}", stderr(&restored));
    w.assert_same("ordering", "restored").await;
    crate::census::assert_same_census(&src, &dst).await;
    // The postponed view has its real query again, and the materialized views hold
    // the rows their sources give.
    let c = dst.connect().await.unwrap();
    let copies: i64 = c
        .query_one("SELECT copies FROM public.a_film_counts WHERE id = 7", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(copies, 2);
    let top: Vec<String> = c
        .query("SELECT shout FROM public.a_mv_top ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(top, ["ALIEN", "BRAZIL", "CASABLANCA"]);
    let bad = c
        .execute("INSERT INTO public.shapes VALUES (100, 100)", &[])
        .await;
    assert!(bad.is_err(), "the CHECK calling area_ok is back");

    // A base type of the database is exported as its text form.
    let out = w.dir.path().join("export");
    ok(crate::support::pgbunker(
        &[
            "export",
            "--repo",
            &repo,
            "latest",
            "--out",
            out.to_str().unwrap(),
        ],
        &[("PGBUNKER_KEY", crate::support::KEY)],
    ));
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("_pgbunker_export.json")).unwrap())
            .unwrap();
    let text = summary.to_string();
    assert!(
        text.contains("public.counters") && text.contains("COPY text format"),
        "{text}"
    );
}
