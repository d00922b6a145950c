//! Schema objects other than tables and their data: types, functions, views,
//! triggers, policies and the rest. Each one is kept the way pg_dump keeps it in its
//! archive: the statements that create it (written at backup time with the server's
//! own `pg_get_*def` functions where they exist), who owns it, who may use it, its
//! comment, and what it depends on. Keeping SQL rather than a structured model per
//! kind means a new kind needs a catalog query, not a new model and renderer.

use serde::{Deserialize, Serialize};

use super::QualName;

/// A catalog row's identity, `(classid, objid)` as `pg_depend` names it. Only valid
/// within one backup: dependencies are resolved at backup time.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
pub struct ObjKey {
    pub class: u32,
    pub oid: u32,
}

/// When an object is created relative to the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Section {
    /// Before the data: what the tables and the COPY need.
    PreData,
    /// After the data and the keys: what would slow the load down or act on it
    /// (triggers, rules, policies, materialized view contents, event triggers).
    PostData,
}

/// One schema object and how to recreate it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SchemaObject {
    pub key: ObjKey,
    /// What users call it: `function`, `view`, `trigger`, …
    pub kind: String,
    /// The schema it lives in; `None` for objects that belong to the database
    /// (extensions name theirs inside `create`, event triggers have none).
    #[serde(default)]
    pub schema: Option<String>,
    /// Unquoted display name (`add(integer, integer)`, `audit on public.t`).
    pub name: String,
    pub section: Section,
    /// Complete statements, schema-qualified, run in order.
    pub create: Vec<String>,
    /// The object as `COMMENT ON` and `ALTER … OWNER TO` name it
    /// (`FUNCTION "s"."f"(integer)`); `None` when neither applies.
    #[serde(default)]
    pub target: Option<String>,
    #[serde(default)]
    pub owner: Option<String>,
    #[serde(default)]
    pub acl: Option<Acl>,
    #[serde(default)]
    pub comment: Option<String>,
    /// The table the object belongs to (trigger, rule, policy), for partial backups
    /// and restores of one table.
    #[serde(default)]
    pub table: Option<QualName>,
}

/// Privileges as the server stores them: `aclitem` texts, with the defaults a new
/// object gets, so restore grants and revokes only what differs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acl {
    /// `GRANT … ON <this>`: `TABLE "s"."t"`, `FUNCTION "s"."f"(integer)`, …
    pub target: String,
    pub items: Vec<String>,
    pub defaults: Vec<String>,
}

/// `dependent` needs `referenced` to exist first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Dependency {
    pub dependent: ObjKey,
    pub referenced: ObjKey,
}
