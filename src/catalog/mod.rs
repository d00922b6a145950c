//! The Catalog model: what a backup knows about the database's schema.
//!
//! Introspection fills it, the manifest stores it (serde), DDL generation and restore
//! planning read it. New fields must be `#[serde(default)]` so older manifests keep
//! reading: the manifest is a contract with users' archives.

mod key_columns;
mod large_object;
mod object;
mod text_settings;
pub mod types;

use std::fmt;

use serde::{Deserialize, Serialize};

pub use large_object::{oid_list, LargeObject};
pub use object::{Acl, Dependency, ObjKey, SchemaObject, Section};
pub use text_settings::text_session;

/// `pg_class`, `pg_type` and `pg_namespace` as `pg_depend` names them (fixed OIDs in
/// every PostgreSQL release).
pub const PG_CLASS: u32 = 1259;
pub const PG_TYPE: u32 = 1247;

/// Quotes an identifier for SQL. Always quoting is never wrong and avoids carrying a
/// keyword list that changes between server versions.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Quotes a string literal (standard_conforming_strings is on in every supported server).
pub fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// A schema-qualified name.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct QualName {
    pub schema: String,
    pub name: String,
}

impl QualName {
    pub fn new(schema: impl Into<String>, name: impl Into<String>) -> Self {
        QualName {
            schema: schema.into(),
            name: name.into(),
        }
    }

    /// The unquoted `schema.name` form users type in `-t` patterns and see in reports.
    pub fn plain(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }
}

/// Displays as quoted SQL: `"schema"."name"`.
impl fmt::Display for QualName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{}",
            quote_ident(&self.schema),
            quote_ident(&self.name)
        )
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Catalog {
    /// `server_version_num` of the source, e.g. 150008.
    pub server_version_num: i32,
    pub encoding: String,
    #[serde(default)]
    pub schemas: Vec<Schema>,
    #[serde(default)]
    pub enums: Vec<EnumType>,
    #[serde(default)]
    pub sequences: Vec<Sequence>,
    #[serde(default)]
    pub tables: Vec<Table>,
    /// Everything else: types, functions, views, triggers, policies, …
    #[serde(default)]
    pub objects: Vec<SchemaObject>,
    /// Which objects (tables, sequences, enums and `objects`) need which others first,
    /// from `pg_depend`, between objects of this catalog only.
    #[serde(default)]
    pub dependencies: Vec<Dependency>,
    /// Types whose OIDs binary COPY values of the tables carry inside them (arrays,
    /// composites, and what they are made of), to rewrite those OIDs on restore.
    #[serde(default)]
    pub types: Vec<types::TypeInfo>,
    /// The database's own locale, comment and settings, which `restore --create`
    /// gives the new database; `None` in backups written before they were recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<DatabaseProps>,
    /// The roles the database's objects name (owners, grantees, grantors, policy
    /// roles, user mappings), which live in the cluster, not the database: a restore
    /// into another cluster can create them (`--create-roles`). Never passwords.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<Role>,
}

/// A role as `CREATE ROLE` makes it, without its password: the backup of a database
/// is no place for the cluster's credentials, as `pg_dumpall --no-role-passwords`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Role {
    pub name: String,
    pub superuser: bool,
    pub inherit: bool,
    pub create_role: bool,
    pub create_db: bool,
    pub login: bool,
    pub replication: bool,
    pub bypass_rls: bool,
    /// -1: no limit.
    pub connection_limit: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// The recorded roles this one is a member of, and whether it may grant them on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub member_of: Vec<(String, bool)>,
}

/// What `CREATE DATABASE` and `ALTER DATABASE` carry besides the encoding: sort order
/// and character classes change query results and index order, and database-wide
/// settings (`search_path`, `timezone`, …) change what the application sees.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatabaseProps {
    /// `LC_COLLATE` and `LC_CTYPE` (for the libc provider, and the libc fallback of
    /// the others).
    pub collate: String,
    pub ctype: String,
    /// `libc`, `icu` or `builtin` (servers before 15 have only libc).
    pub locale_provider: String,
    /// The ICU or builtin locale; `None` for libc.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    /// ICU collation rules (16 and later).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icu_rules: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// The database's privileges (`CONNECT`, `TEMPORARY`, `CREATE`), when they are
    /// not the defaults; its `target` names the source database.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acl: Option<Acl>,
    /// `ALTER DATABASE … SET` settings for every role, as `name=value`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub settings: Vec<String>,
}

impl Catalog {
    pub fn table(&self, name: &QualName) -> Option<&Table> {
        self.tables.iter().find(|t| &t.name == name)
    }

    /// Each table's position in `tables`, by name.
    pub fn table_positions(&self) -> std::collections::HashMap<&QualName, usize> {
        self.tables
            .iter()
            .enumerate()
            .map(|(i, t)| (&t.name, i))
            .collect()
    }

    /// For each table, the smallest position of the tables it is linked to through
    /// foreign keys, in either direction and transitively: tables with the same number
    /// form one group. Adding a foreign key locks both of its tables, and emptying a
    /// referenced table needs its referencing tables emptied in the same statement, so
    /// such work is done per group.
    pub fn fk_components(&self) -> Vec<usize> {
        fn root(parent: &mut [usize], mut i: usize) -> usize {
            while parent[i] != i {
                parent[i] = parent[parent[i]];
                i = parent[i];
            }
            i
        }
        let index = self.table_positions();
        let mut parent: Vec<usize> = (0..self.tables.len()).collect();
        for (i, t) in self.tables.iter().enumerate() {
            for j in t.referenced_tables().filter_map(|r| index.get(r).copied()) {
                let (a, b) = (root(&mut parent, i), root(&mut parent, j));
                parent[a.max(b)] = a.min(b);
            }
        }
        (0..self.tables.len())
            .map(|i| root(&mut parent, i))
            .collect()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Schema {
    pub name: String,
    #[serde(default)]
    pub comment: Option<String>,
    /// Exists in every database (`public`): not created, only given its owner,
    /// privileges and comment, which differ between server versions.
    #[serde(default)]
    pub existing: bool,
    #[serde(default)]
    pub owner: Option<String>,
    #[serde(default)]
    pub acl: Option<Acl>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EnumType {
    #[serde(default)]
    pub oid: u32,
    pub name: QualName,
    pub labels: Vec<String>,
    #[serde(default)]
    pub comment: Option<String>,
    #[serde(default)]
    pub owner: Option<String>,
    #[serde(default)]
    pub acl: Option<Acl>,
}

/// Which column owns a sequence (serial columns, identity columns).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnedBy {
    pub table: QualName,
    pub column: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Sequence {
    #[serde(default)]
    pub oid: u32,
    pub name: QualName,
    /// `smallint`, `integer` or `bigint`.
    pub data_type: String,
    pub start: i64,
    pub increment: i64,
    pub min: i64,
    pub max: i64,
    pub cache: i64,
    pub cycle: bool,
    /// The value at backup time (sequences are not transactional: read at snapshot
    /// start, like pg_dump does).
    pub last_value: i64,
    pub is_called: bool,
    #[serde(default)]
    pub owned_by: Option<OwnedBy>,
    /// True when the sequence belongs to an identity column and is created with it.
    #[serde(default)]
    pub identity: bool,
    #[serde(default)]
    pub comment: Option<String>,
    #[serde(default)]
    pub unlogged: bool,
    #[serde(default)]
    pub owner: Option<String>,
    #[serde(default)]
    pub acl: Option<Acl>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentityKind {
    Always,
    ByDefault,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    /// The type as `format_type()` prints it, schema-qualified where needed.
    pub type_sql: String,
    /// The source type's OID (binary COPY of arrays and composites embeds OIDs).
    pub type_oid: u32,
    pub not_null: bool,
    #[serde(default)]
    pub default: Option<String>,
    #[serde(default)]
    pub identity: Option<IdentityKind>,
    /// Expression of a generated column; such columns are never copied.
    #[serde(default)]
    pub generated: Option<String>,
    /// The generated column is VIRTUAL (PostgreSQL 18+) rather than STORED.
    #[serde(default)]
    pub generated_virtual: bool,
    #[serde(default)]
    pub collation: Option<QualName>,
    #[serde(default)]
    pub comment: Option<String>,
    /// Declared by this table itself, not only inherited from a parent.
    #[serde(default = "yes")]
    pub local: bool,
    /// `STORAGE` when it differs from the type's default.
    #[serde(default)]
    pub storage: Option<String>,
    /// `COMPRESSION` method when one was set.
    #[serde(default)]
    pub compression: Option<String>,
    /// `SET STATISTICS` target when one was set.
    #[serde(default)]
    pub statistics: Option<i32>,
    /// Attribute options (`n_distinct=…`).
    #[serde(default)]
    pub options: Vec<String>,
    /// Column privileges as `aclitem` texts.
    #[serde(default)]
    pub acl: Vec<String>,
    /// Name of the NOT NULL constraint (PostgreSQL 18+ names them).
    #[serde(default)]
    pub not_null_name: Option<String>,
    /// False for a NOT NULL added `NOT VALID` (PostgreSQL 18+): added after the data.
    #[serde(default = "yes")]
    pub not_null_valid: bool,
    /// The NOT NULL comes only from a parent (PostgreSQL 18+ tells): the child's
    /// `INHERITS` brings it.
    #[serde(default)]
    pub not_null_inherited: bool,
}

fn yes() -> bool {
    true
}

/// The same defaults as a manifest that leaves the fields out.
impl Default for Column {
    fn default() -> Self {
        Column {
            name: String::new(),
            type_sql: String::new(),
            type_oid: 0,
            not_null: false,
            default: None,
            identity: None,
            generated: None,
            generated_virtual: false,
            collation: None,
            comment: None,
            local: true,
            storage: None,
            compression: None,
            statistics: None,
            options: Vec::new(),
            acl: Vec::new(),
            not_null_name: None,
            not_null_valid: true,
            not_null_inherited: false,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConstraintKind {
    PrimaryKey,
    #[default]
    Unique,
    Check,
    ForeignKey,
    Exclusion,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Constraint {
    pub name: String,
    pub kind: ConstraintKind,
    /// `pg_get_constraintdef()` output.
    pub definition: String,
    /// For foreign keys: the referenced table.
    #[serde(default)]
    pub references: Option<QualName>,
    #[serde(default)]
    pub comment: Option<String>,
    /// Declared by this table itself, not only inherited from a parent.
    #[serde(default = "yes")]
    pub local: bool,
    /// The partitioned parent's index this constraint's index attaches to.
    #[serde(default)]
    pub parent_index: Option<QualName>,
    /// A CHECK that calls a function which itself needs the table (takes its row
    /// type, or reads it): neither can be created before the other, so the check is
    /// added after the data, as pg_dump makes such a check a separate object.
    #[serde(default)]
    pub after_functions: bool,
    /// The comment on the index behind a key or exclusion constraint, with that
    /// index's name: the index is made by the constraint, not listed on its own.
    #[serde(default)]
    pub index_comment: Option<(String, String)>,
}

/// The same defaults as a manifest that leaves the fields out.
impl Default for Constraint {
    fn default() -> Self {
        Constraint {
            name: String::new(),
            kind: ConstraintKind::default(),
            definition: String::new(),
            references: None,
            comment: None,
            local: true,
            parent_index: None,
            after_functions: false,
            index_comment: None,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Index {
    pub name: String,
    /// `pg_get_indexdef()` output.
    pub definition: String,
    #[serde(default)]
    pub comment: Option<String>,
    /// The partitioned parent's index this one attaches to.
    #[serde(default)]
    pub parent_index: Option<QualName>,
    /// Per-column statistics targets of an expression index, by column number.
    #[serde(default)]
    pub statistics: Vec<(i16, i32)>,
}

/// A relation's planner statistics, as PostgreSQL 18's `pg_restore_relation_stats`
/// and `pg_restore_attribute_stats` take them: argument names with their values in
/// text, the arguments the source had no value for left out.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Statistics {
    /// `pg_class`'s counts: relpages, reltuples, relallvisible (and relallfrozen
    /// from PostgreSQL 18).
    pub relation: Vec<(String, String)>,
    /// One entry per `pg_stats` row, its column and `inherited` included.
    pub columns: Vec<Vec<(String, String)>>,
}

/// Whether a relation holds rows of its own.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TableKind {
    #[default]
    Ordinary,
    /// Rows live in its partitions; it has none to copy.
    Partitioned,
}

/// A partition's place under its parent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionOf {
    pub parent: QualName,
    /// `FOR VALUES …` or `DEFAULT`, as `pg_get_expr(relpartbound)` prints it.
    pub bound: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Table {
    pub oid: u32,
    pub name: QualName,
    pub columns: Vec<Column>,
    #[serde(default)]
    pub constraints: Vec<Constraint>,
    #[serde(default)]
    pub indexes: Vec<Index>,
    #[serde(default)]
    pub comment: Option<String>,
    /// On-disk size at backup time, used to schedule the largest work first.
    #[serde(default)]
    pub estimated_bytes: u64,
    /// Heap pages at backup time: big tables are split into ctid page ranges.
    #[serde(default)]
    pub heap_pages: u64,
    #[serde(default)]
    pub kind: TableKind,
    #[serde(default)]
    pub unlogged: bool,
    /// `PARTITION BY …` of a partitioned table.
    #[serde(default)]
    pub partition_key: Option<String>,
    #[serde(default)]
    pub partition_of: Option<PartitionOf>,
    /// Parents in inheritance order (not partitioning).
    #[serde(default)]
    pub inherits: Vec<QualName>,
    /// Created `OF` this composite type (a typed table).
    #[serde(default)]
    pub of_type: Option<String>,
    /// Table access method when it is not the default `heap`.
    #[serde(default)]
    pub access_method: Option<String>,
    #[serde(default)]
    pub reloptions: Vec<String>,
    #[serde(default)]
    pub toast_reloptions: Vec<String>,
    #[serde(default)]
    pub owner: Option<String>,
    #[serde(default)]
    pub acl: Option<Acl>,
    #[serde(default)]
    pub row_security: bool,
    #[serde(default)]
    pub force_row_security: bool,
    /// `REPLICA IDENTITY` when not the default: `FULL`, `NOTHING` or
    /// `USING INDEX "name"`.
    #[serde(default)]
    pub replica_identity: Option<String>,
    /// The index the table is `CLUSTER`ed on.
    #[serde(default)]
    pub cluster_on: Option<String>,
    /// The planner statistics the source had, carried so that a PostgreSQL 18+ target
    /// takes them instead of running ANALYZE (`None`: never analyzed, or from a
    /// backup made before pgbunker carried them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statistics: Option<Statistics>,
}

impl Table {
    /// The table as `pg_depend` names it, to order it among the other objects.
    pub fn key(&self) -> ObjKey {
        ObjKey {
            class: PG_CLASS,
            oid: self.oid,
        }
    }

    /// Partitioned tables keep their rows in their partitions.
    pub fn has_data(&self) -> bool {
        self.kind == TableKind::Ordinary
    }

    /// The columns COPY carries, in order: generated columns are never copied.
    pub fn copy_columns(&self) -> impl Iterator<Item = &Column> {
        self.columns.iter().filter(|c| c.generated.is_none())
    }

    /// The quoted column list COPY reads and writes, in column order.
    pub fn copy_column_list(&self) -> String {
        self.copy_columns()
            .map(|c| quote_ident(&c.name))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The `COPY` statement for this table's copyable columns; `direction` is
    /// `TO STDOUT` or `FROM STDIN`, `options` the option list (`FORMAT binary`, …).
    pub fn copy_statement(&self, direction: &str, options: &str) -> String {
        let cols = self.copy_column_list();
        if cols.is_empty() {
            format!("COPY {} {direction} ({options})", self.name)
        } else {
            format!("COPY {} ({cols}) {direction} ({options})", self.name)
        }
    }

    /// Tables this one references through foreign keys (itself included when it refers
    /// to itself).
    pub fn referenced_tables(&self) -> impl Iterator<Item = &QualName> {
        self.constraints
            .iter()
            .filter(|c| c.kind == ConstraintKind::ForeignKey)
            .filter_map(|c| c.references.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_handles_awkward_names() {
        assert_eq!(quote_ident("we\"ird"), "\"we\"\"ird\"");
        assert_eq!(
            QualName::new("Public", "user").to_string(),
            "\"Public\".\"user\""
        );
        assert_eq!(quote_literal("it's"), "'it''s'");
    }
}
