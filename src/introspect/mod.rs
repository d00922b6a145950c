//! Reads `pg_catalog` into a [`Catalog`] inside the backup's snapshot. The only place
//! with catalog SQL; the queries live in `sql/` beside this file.

mod types;

mod large_objects;
mod objects;
mod restored;
mod statistics;
mod text_copy;

pub use large_objects::{read_large_objects, unreadable_large_objects};
pub use restored::{index_names, large_object_digest, validated_foreign_keys};
pub use statistics::read_statistics;

use std::collections::{HashMap, HashSet};

use tokio_postgres::Client;

use crate::catalog::quote_ident;
use crate::catalog::{
    Catalog, Column, Constraint, ConstraintKind, DatabaseProps, EnumType, IdentityKind, Index,
    ObjKey, OwnedBy, PartitionOf, QualName, Role, Schema, Sequence, Table, TableKind, PG_CLASS,
    PG_TYPE,
};
use crate::pg::PgError;
use objects::acl;

/// What introspection found: the model, and what it could not cover.
#[derive(Debug, Clone)]
pub struct Introspection {
    pub catalog: Catalog,
    pub server_version: String,
    pub database: String,
    /// Objects present in the database that this version does not back up, as
    /// "kind: name" lines. Shown to the user and kept in the manifest.
    pub not_covered: Vec<String>,
    /// Large objects in the database; the backup reads their metadata and content
    /// itself when it carries them.
    pub large_objects: u64,
    /// Tables (by OID) binary COPY cannot carry, with the types that are why: they
    /// are copied in text format.
    pub text_copy: HashMap<u32, Vec<String>>,
    /// Tables (by OID) the role may not read.
    pub unreadable: HashSet<u32>,
}

async fn query(
    client: &Client,
    what: &str,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<Vec<tokio_postgres::Row>, PgError> {
    client
        .query(sql, params)
        .await
        .map_err(|e| PgError::query(format!("read the catalog ({what})"), e))
}

/// The database's locale, comment and settings, read with the columns this server
/// version has.
async fn database_props(client: &Client, version: i32) -> Result<DatabaseProps, PgError> {
    let provider = if version >= 150000 {
        "CASE d.datlocprovider WHEN 'i' THEN 'icu' WHEN 'b' THEN 'builtin' ELSE 'libc' END"
    } else {
        "'libc'"
    };
    let locale = match version {
        170000.. => "d.datlocale",
        150000.. => "d.daticulocale",
        _ => "NULL::text",
    };
    let rules = if version >= 160000 {
        "d.daticurules"
    } else {
        "NULL::text"
    };
    let sql = include_str!("sql/database.sql")
        .replace("{provider}", provider)
        .replace("{locale}", locale)
        .replace("{rules}", rules);
    let r = &query(client, "database", &sql, &[]).await?[0];
    let name: String = r.get("datname");
    Ok(DatabaseProps {
        collate: r.get("collate"),
        ctype: r.get("ctype"),
        locale_provider: r.get("locale_provider"),
        locale: r.get("locale"),
        icu_rules: r.get("icu_rules"),
        comment: r.get("comment"),
        owner: r.get("owner"),
        acl: acl(
            Some(format!("DATABASE {}", quote_ident(&name))),
            r.get("acl"),
            r.get("acl_default"),
        ),
        settings: r.get("settings"),
    })
}

/// Reads the catalog over `sessions`, each inside the same snapshot with an empty
/// `search_path` so every expression comes back schema-qualified. Independent
/// queries run on different sessions at once: on thousands of tables the catalog
/// walk is half of a backup, and one session would leave the other cores idle.
pub async fn read_catalog(sessions: &[&Client]) -> Result<Introspection, PgError> {
    let on = |i: usize| sessions[i % sessions.len()];
    let server = &query(on(0), "server", include_str!("sql/server.sql"), &[]).await?[0];
    let version: i32 = server.get("server_version_num");
    // What needs only the list of tables runs beside the tables' parts.
    let relations = async {
        let mut tables = read_table_list(on(0)).await?;
        let (parts, types, text_copy) = futures::try_join!(
            read_table_parts([on(0), on(1), on(2)], &tables, version),
            types::read_types(on(0), &tables),
            text_copy::read_text_copy(on(0), &tables, version)
        )?;
        add_table_parts(&mut tables, parts);
        Ok::<_, PgError>((tables, types, text_copy))
    };
    let objects = async {
        let objects = objects::read_objects(on(1), version).await?;
        let database = database_props(on(1), version).await?;
        let roles = read_roles(on(1)).await?;
        let not_covered: Vec<String> =
            query(on(1), "coverage", include_str!("sql/not_covered.sql"), &[])
                .await?
                .iter()
                .map(|r| format!("{}: {}", r.get::<_, String>(0), r.get::<_, String>(1)))
                .collect();
        let large_objects = query(
            on(1),
            "large objects",
            "SELECT pg_catalog.count(*) FROM pg_catalog.pg_largeobject_metadata",
            &[],
        )
        .await?[0]
            .get::<_, i64>(0) as u64;
        Ok::<_, PgError>((objects, database, roles, not_covered, large_objects))
    };
    let rest = async {
        let dependencies = objects::read_dependencies(on(2)).await?;
        let schemas = read_schemas(on(2)).await?;
        let enums = read_enums(on(2)).await?;
        let sequences = read_sequences(on(2)).await?;
        let unreadable = query(
            on(2),
            "table privileges",
            include_str!("sql/unreadable.sql"),
            &[],
        )
        .await?
        .iter()
        .map(|r| r.get::<_, u32>(0))
        .collect();
        Ok::<_, PgError>((dependencies, schemas, enums, sequences, unreadable))
    };
    let (
        (tables, types, text_copy),
        (objects, database, roles, not_covered, large_objects),
        (dependencies, schemas, enums, sequences, unreadable),
    ) = futures::try_join!(relations, objects, rest)?;
    let mut catalog = Catalog {
        server_version_num: version,
        encoding: server.get("encoding"),
        schemas,
        enums,
        sequences,
        tables,
        objects,
        database: Some(database),
        roles,
        types,
        ..Default::default()
    };
    let mut known: HashSet<ObjKey> = catalog.objects.iter().map(|o| o.key).collect();
    known.extend(catalog.tables.iter().map(Table::key));
    known.extend(
        catalog
            .sequences
            .iter()
            .filter(|s| !s.identity)
            .map(|s| ObjKey {
                class: PG_CLASS,
                oid: s.oid,
            }),
    );
    known.extend(catalog.enums.iter().map(|e| ObjKey {
        class: PG_TYPE,
        oid: e.oid,
    }));
    catalog.dependencies = objects::between(dependencies, &known);
    break_check_cycles(&mut catalog);
    Ok(Introspection {
        large_objects,
        text_copy,
        catalog,
        server_version: server.get("server_version"),
        database: server.get("database"),
        not_covered,
        unreadable,
    })
}

async fn read_schemas(client: &Client) -> Result<Vec<Schema>, PgError> {
    Ok(
        query(client, "schemas", include_str!("sql/schemas.sql"), &[])
            .await?
            .iter()
            .map(|r| {
                let name: String = r.get(0);
                Schema {
                    acl: acl(
                        Some(format!("SCHEMA {}", quote_ident(&name))),
                        r.get("acl"),
                        r.get("acl_default"),
                    ),
                    name,
                    comment: r.get(1),
                    owner: r.get("owner"),
                    existing: r.get("existing"),
                }
            })
            .collect(),
    )
}

async fn read_enums(client: &Client) -> Result<Vec<EnumType>, PgError> {
    Ok(query(client, "enums", include_str!("sql/enums.sql"), &[])
        .await?
        .iter()
        .map(|r| {
            let name = QualName::new(r.get::<_, String>(0), r.get::<_, String>(1));
            EnumType {
                oid: r.get("oid"),
                acl: acl(
                    Some(format!("TYPE {name}")),
                    r.get("acl"),
                    r.get("acl_default"),
                ),
                name,
                labels: r.get(2),
                comment: r.get(3),
                owner: r.get("owner"),
            }
        })
        .collect())
}

/// A table whose CHECK calls a function that needs the table (see
/// `Constraint::after_functions`) depends on that function only through the check,
/// which is added after the data: the table itself comes first, then the function.
fn break_check_cycles(cat: &mut Catalog) {
    let tables: HashSet<ObjKey> = cat
        .tables
        .iter()
        .filter(|t| t.constraints.iter().any(|c| c.after_functions))
        .map(Table::key)
        .collect();
    let edges: HashSet<(ObjKey, ObjKey)> = cat
        .dependencies
        .iter()
        .map(|d| (d.dependent, d.referenced))
        .collect();
    cat.dependencies.retain(|d| {
        !(tables.contains(&d.dependent) && edges.contains(&(d.referenced, d.dependent)))
    });
}

async fn read_roles(client: &Client) -> Result<Vec<Role>, PgError> {
    Ok(query(client, "roles", include_str!("sql/roles.sql"), &[])
        .await?
        .iter()
        .map(|r| Role {
            name: r.get("name"),
            superuser: r.get("rolsuper"),
            inherit: r.get("rolinherit"),
            create_role: r.get("rolcreaterole"),
            create_db: r.get("rolcreatedb"),
            login: r.get("rolcanlogin"),
            replication: r.get("rolreplication"),
            bypass_rls: r.get("rolbypassrls"),
            connection_limit: r.get("rolconnlimit"),
            valid_until: r.get("valid_until"),
            comment: r.get("comment"),
            member_of: r
                .get::<_, Vec<String>>("member_of")
                .into_iter()
                .zip(r.get::<_, Vec<bool>>("admin_option"))
                .collect(),
        })
        .collect())
}

async fn read_sequences(client: &Client) -> Result<Vec<Sequence>, PgError> {
    let mut out = Vec::new();
    let rows = query(client, "sequences", include_str!("sql/sequences.sql"), &[]).await?;
    // Every sequence the role may not read, named at once rather than one per run.
    let unreadable: Vec<String> = rows
        .iter()
        .filter(|r| !r.get::<_, bool>("readable"))
        .map(|r| QualName::new(r.get::<_, String>(0), r.get::<_, String>(1)).plain())
        .collect();
    if !unreadable.is_empty() {
        return Err(PgError::Query {
            what: format!("read the values of {} sequence(s)", unreadable.len()),
            reason: format!("permission denied for {}", unreadable.join(", ")),
            code: Some("42501".into()),
        });
    }
    for r in rows {
        let name = QualName::new(r.get::<_, String>(0), r.get::<_, String>(1));
        let owner_table: Option<String> = r.get("owner_table");
        let deptype: Option<String> = r.get("deptype");
        let owned_by = owner_table.map(|t| OwnedBy {
            table: QualName::new(r.get::<_, String>("owner_schema"), t),
            column: r.get("owner_column"),
        });
        // Sequences are not transactional: this reads the current value, as pg_dump
        // does. A sequence ahead of the data is harmless; behind it would not be.
        let value = client
            .query_one(&format!("SELECT last_value, is_called FROM {name}"), &[])
            .await
            .map_err(|e| PgError::query(format!("read sequence {}", name.plain()), e))?;
        out.push(Sequence {
            data_type: r.get("data_type"),
            start: r.get("seqstart"),
            increment: r.get("seqincrement"),
            min: r.get("seqmin"),
            max: r.get("seqmax"),
            cache: r.get("seqcache"),
            cycle: r.get("seqcycle"),
            last_value: value.get(0),
            is_called: value.get(1),
            identity: deptype.as_deref() == Some("i"),
            owned_by,
            comment: r.get("comment"),
            oid: r.get("oid"),
            unlogged: r.get("unlogged"),
            owner: r.get("owner"),
            acl: acl(
                Some(format!("SEQUENCE {name}")),
                r.get("acl"),
                r.get("acl_default"),
            ),
            name,
        });
    }
    Ok(out)
}

fn parent_index(r: &tokio_postgres::Row) -> Option<QualName> {
    let name: Option<String> = r.get("parent_index");
    name.map(|n| QualName::new(r.get::<_, String>("parent_index_schema"), n))
}

fn constraint_kind(code: &str) -> ConstraintKind {
    match code {
        "p" => ConstraintKind::PrimaryKey,
        "u" => ConstraintKind::Unique,
        "f" => ConstraintKind::ForeignKey,
        "x" => ConstraintKind::Exclusion,
        _ => ConstraintKind::Check,
    }
}

/// The tables, without their columns, constraints and indexes ([`read_table_parts`]).
async fn read_table_list(client: &Client) -> Result<Vec<Table>, PgError> {
    let mut tables = Vec::new();
    for r in query(client, "tables", include_str!("sql/tables.sql"), &[]).await? {
        let oid: u32 = r.get(0);
        let name = QualName::new(r.get::<_, String>(1), r.get::<_, String>(2));
        let parents: Vec<QualName> = r
            .get::<_, Vec<String>>("parent_schemas")
            .into_iter()
            .zip(r.get::<_, Vec<String>>("parent_names"))
            .map(|(s, n)| QualName::new(s, n))
            .collect();
        let bound: Option<String> = r.get("bound");
        let (partition_of, inherits) = match bound {
            Some(bound) => (
                parents
                    .into_iter()
                    .next()
                    .map(|parent| PartitionOf { parent, bound }),
                Vec::new(),
            ),
            None => (None, parents),
        };
        tables.push(Table {
            oid,
            acl: acl(
                Some(format!("TABLE {name}")),
                r.get("acl"),
                r.get("acl_default"),
            ),
            name,
            columns: Vec::new(),
            constraints: Vec::new(),
            indexes: Vec::new(),
            comment: r.get(3),
            estimated_bytes: r.get::<_, i64>(4).max(0) as u64,
            heap_pages: r.get::<_, i64>(5).max(0) as u64,
            kind: if r.get::<_, String>("relkind") == "p" {
                TableKind::Partitioned
            } else {
                TableKind::Ordinary
            },
            unlogged: r.get("unlogged"),
            partition_key: r.get("partition_key"),
            partition_of,
            inherits,
            of_type: r.get("of_type"),
            access_method: r.get("access_method"),
            reloptions: r.get("reloptions"),
            toast_reloptions: r.get("toast_reloptions"),
            owner: r.get("owner"),
            row_security: r.get("relrowsecurity"),
            force_row_security: r.get("relforcerowsecurity"),
            replica_identity: r.get("replica_identity"),
            cluster_on: r.get("cluster_on"),
            statistics: None,
        });
    }
    Ok(tables)
}

/// The rows of the tables' columns, constraints and indexes, one query per session.
struct TableParts {
    columns: Vec<tokio_postgres::Row>,
    constraints: Vec<tokio_postgres::Row>,
    indexes: Vec<tokio_postgres::Row>,
}

async fn read_table_parts(
    [first, second, third]: [&Client; 3],
    tables: &[Table],
    version: i32,
) -> Result<TableParts, PgError> {
    let oids: Vec<u32> = tables.iter().map(|t| t.oid).collect();
    let params: &[&(dyn tokio_postgres::types::ToSql + Sync)] = &[&oids];
    // Read through to_jsonb(a) on every version, attcompression cost a third of the query.
    let compression = if version >= 140000 {
        "a.attcompression"
    } else {
        "NULL::pg_catalog.\"char\""
    };
    let columns_sql = include_str!("sql/columns.sql").replace("{compression}", compression);
    let (columns, constraints, indexes) = futures::try_join!(
        query(first, "columns", &columns_sql, params),
        query(
            second,
            "constraints",
            include_str!("sql/constraints.sql"),
            params
        ),
        query(third, "indexes", include_str!("sql/indexes.sql"), params),
    )?;
    Ok(TableParts {
        columns,
        constraints,
        indexes,
    })
}

/// Puts each row of `parts` in its table.
fn add_table_parts(tables: &mut [Table], parts: TableParts) {
    let by_oid: HashMap<u32, usize> = tables.iter().enumerate().map(|(i, t)| (t.oid, i)).collect();
    let TableParts {
        columns,
        constraints,
        indexes,
    } = parts;
    for r in columns {
        let t = &mut tables[by_oid[&r.get::<_, u32>(0)]];
        let identity = match r.get::<_, String>("identity").as_str() {
            "a" => Some(IdentityKind::Always),
            "d" => Some(IdentityKind::ByDefault),
            _ => None,
        };
        let expr: Option<String> = r.get("default_expr");
        let gen_kind = r.get::<_, String>("generated");
        let generated = gen_kind == "s" || gen_kind == "v";
        let coll_name: Option<String> = r.get("coll_name");
        t.columns.push(Column {
            name: r.get("attname"),
            type_sql: r.get("type_sql"),
            type_oid: r.get("atttypid"),
            not_null: r.get("attnotnull"),
            default: if generated { None } else { expr.clone() },
            generated: if generated { expr } else { None },
            generated_virtual: gen_kind == "v",
            identity,
            collation: coll_name.map(|n| QualName::new(r.get::<_, String>("coll_schema"), n)),
            comment: r.get("comment"),
            local: r.get("attislocal"),
            storage: r.get("storage"),
            compression: r.get("compression"),
            statistics: r.get("statistics"),
            options: r.get("options"),
            acl: r.get("acl"),
            not_null_name: r.get("not_null_name"),
            not_null_valid: r.get("not_null_valid"),
            not_null_inherited: r.get("not_null_inherited"),
        });
    }
    for r in constraints {
        let t = &mut tables[by_oid[&r.get::<_, u32>(0)]];
        let ref_table: Option<String> = r.get("ref_table");
        t.constraints.push(Constraint {
            name: r.get("conname"),
            kind: constraint_kind(&r.get::<_, String>("contype")),
            definition: r.get("definition"),
            references: ref_table.map(|n| QualName::new(r.get::<_, String>("ref_schema"), n)),
            comment: r.get("comment"),
            local: r.get("conislocal"),
            parent_index: parent_index(&r),
            after_functions: r.get("after_functions"),
            index_comment: r
                .get::<_, Option<String>>("index_comment")
                .map(|text| (r.get("index_name"), text)),
        });
    }
    for r in indexes {
        let t = &mut tables[by_oid[&r.get::<_, u32>(0)]];
        let columns: Vec<i32> = r.get("stat_columns");
        let targets: Vec<i32> = r.get("stat_targets");
        t.indexes.push(Index {
            name: r.get(1),
            definition: r.get(2),
            comment: r.get(3),
            parent_index: parent_index(&r),
            statistics: columns.into_iter().map(|c| c as i16).zip(targets).collect(),
        });
    }
}
