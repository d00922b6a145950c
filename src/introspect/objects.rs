//! Reads the schema objects other than tables (see `sql/objects/README.md` for the
//! row every query returns) and the dependencies between everything read.

use std::collections::{HashMap, HashSet};
use std::ops::Range;

use tokio_postgres::Client;

use super::query;
use crate::catalog::{Acl, Dependency, ObjKey, QualName, SchemaObject, Section, PG_TYPE};
use crate::pg::PgError;

/// Every object query, with the server versions (`server_version_num`) it runs on.
/// Order here is only the order of the catalog; restore sorts by dependencies.
const QUERIES: &[(&str, Range<i32>, &str)] = &[
    (
        "extensions",
        ANY,
        include_str!("sql/objects/extensions.sql"),
    ),
    ("languages", ANY, include_str!("sql/objects/languages.sql")),
    (
        "collations",
        ANY,
        include_str!("sql/objects/collations.sql"),
    ),
    (
        "conversions",
        ANY,
        include_str!("sql/objects/conversions.sql"),
    ),
    ("types", ANY, include_str!("sql/objects/types.sql")),
    ("functions", ANY, include_str!("sql/objects/functions.sql")),
    (
        "aggregates",
        ANY,
        include_str!("sql/objects/aggregates.sql"),
    ),
    ("operators", ANY, include_str!("sql/objects/operators.sql")),
    ("casts", ANY, include_str!("sql/objects/casts.sql")),
    (
        "operator classes",
        ANY,
        include_str!("sql/objects/opclasses.sql"),
    ),
    (
        "access methods",
        ANY,
        include_str!("sql/objects/access_methods.sql"),
    ),
    (
        "text search",
        ANY,
        include_str!("sql/objects/text_search.sql"),
    ),
    (
        "foreign data",
        ANY,
        include_str!("sql/objects/foreign_data.sql"),
    ),
    ("views", ANY, include_str!("sql/objects/views.sql")),
    ("triggers", ANY, include_str!("sql/objects/triggers.sql")),
    ("rules", ANY, include_str!("sql/objects/rules.sql")),
    ("policies", ANY, include_str!("sql/objects/policies.sql")),
    (
        "statistics",
        ANY,
        include_str!("sql/objects/statistics.sql"),
    ),
    (
        "publications",
        0..150000,
        include_str!("sql/objects/publications.sql"),
    ),
    (
        "publications",
        150000..i32::MAX,
        include_str!("sql/objects/publications_15.sql"),
    ),
    (
        "default privileges",
        ANY,
        include_str!("sql/objects/default_privileges.sql"),
    ),
    (
        "event triggers",
        ANY,
        include_str!("sql/objects/event_triggers.sql"),
    ),
    (
        "transforms",
        ANY,
        include_str!("sql/objects/transforms.sql"),
    ),
    (
        "system privileges",
        ANY,
        include_str!("sql/objects/system_privileges.sql"),
    ),
];

const ANY: Range<i32> = 0..i32::MAX;

/// Turns an ACL column into [`Acl`]: `None` when the object has its default privileges.
pub(super) fn acl(
    target: Option<String>,
    items: Option<Vec<String>>,
    defaults: Option<Vec<String>>,
) -> Option<Acl> {
    match (target, items) {
        (Some(target), Some(items)) => Some(Acl {
            target,
            items,
            defaults: defaults.unwrap_or_default(),
        }),
        _ => None,
    }
}

pub(super) async fn read_objects(
    client: &Client,
    version: i32,
) -> Result<Vec<SchemaObject>, PgError> {
    let mut out = Vec::new();
    for (what, versions, sql) in QUERIES {
        if !versions.contains(&version) {
            continue;
        }
        for r in query(client, what, sql, &[]).await? {
            let section = match r.get::<_, String>("section").as_str() {
                "post-data" => Section::PostData,
                _ => Section::PreData,
            };
            let table_name: Option<String> = r.get("table_name");
            out.push(SchemaObject {
                key: ObjKey {
                    class: r.get("classid"),
                    oid: r.get("objid"),
                },
                kind: r.get("kind"),
                schema: r.get("schema"),
                name: r.get("name"),
                section,
                create: r.get("create"),
                target: r.get("target"),
                owner: r.get("owner"),
                acl: acl(r.get("acl_target"), r.get("acl"), r.get("acl_default")),
                comment: r.get("comment"),
                table: table_name.map(|n| QualName::new(r.get::<_, String>("table_schema"), n)),
            });
        }
    }
    Ok(out)
}

/// `pg_proc`'s OID: a function's edge to a type it is an I/O function of.
const PG_PROC: u32 = 1255;

/// The class a type's shell is named by: a function that only needs the shell
/// (`objects/types.sql` creates shells first) depends on it, not on the whole type.
const TYPE_SHELL: u32 = 1;

/// The `pg_depend` edges between user objects, each side reduced to the object a
/// restore creates (a column default to its table, a view's rewrite rule to the view,
/// an array type to its element type, …). The edges and the reductions are read as
/// they are and joined here: joined by the server, on 3000 tables, they were the
/// longest query of the catalog walk.
pub(super) async fn read_dependencies(client: &Client) -> Result<Vec<Dependency>, PgError> {
    let key = |r: &tokio_postgres::Row, at: usize| ObjKey {
        class: r.get(at),
        oid: r.get(at + 1),
    };
    let (edges, sides, shells) = futures::try_join!(
        query(
            client,
            "dependencies",
            include_str!("sql/dependency_edges.sql"),
            &[]
        ),
        query(
            client,
            "dependencies",
            include_str!("sql/dependency_sides.sql"),
            &[]
        ),
        query(
            client,
            "dependencies",
            include_str!("sql/dependency_shells.sql"),
            &[]
        ),
    )?;
    let mut reduced: HashMap<ObjKey, Vec<ObjKey>> = HashMap::new();
    for r in &sides {
        reduced.entry(key(r, 0)).or_default().push(key(r, 2));
    }
    let shells: HashSet<(u32, u32)> = shells.iter().map(|r| (r.get(0), r.get(1))).collect();
    // A side with no reduction is the object itself.
    let reduce = |k: ObjKey| reduced.get(&k).cloned().unwrap_or_else(|| vec![k]);
    let mut out = Vec::with_capacity(edges.len());
    for r in &edges {
        let (dependent, referenced) = (key(r, 0), key(r, 2));
        let on_shell = dependent.class == PG_PROC
            && referenced.class == PG_TYPE
            && shells.contains(&(dependent.oid, referenced.oid));
        for from in reduce(dependent) {
            for mut to in reduce(referenced) {
                if on_shell {
                    to.class = TYPE_SHELL;
                }
                out.push(Dependency {
                    dependent: from,
                    referenced: to,
                });
            }
        }
    }
    Ok(out)
}

/// The edges of `deps` between two different objects of `known`, sorted, once each.
pub(super) fn between(deps: Vec<Dependency>, known: &HashSet<ObjKey>) -> Vec<Dependency> {
    let mut out: Vec<Dependency> = deps
        .into_iter()
        .filter(|d| {
            d.dependent != d.referenced
                && known.contains(&d.dependent)
                && known.contains(&d.referenced)
        })
        .collect();
    out.sort();
    out.dedup();
    out
}
