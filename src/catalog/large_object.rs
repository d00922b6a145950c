//! Large objects: tables refer to them by OID alone, so a restore must give each one
//! back its original OID, with its owner, privileges and comment.

use serde::{Deserialize, Serialize};

use super::Acl;

/// One large object's metadata as the source held it (its content travels in chunks).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LargeObject {
    pub oid: u32,
    #[serde(default)]
    pub owner: Option<String>,
    /// Target `LARGE OBJECT <oid>`; `None` when the object has its default privileges.
    #[serde(default)]
    pub acl: Option<Acl>,
    #[serde(default)]
    pub comment: Option<String>,
}
