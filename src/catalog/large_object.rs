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

/// OIDs for a message: the first twenty, then how many more.
pub fn oid_list(oids: &[u32]) -> String {
    const SHOWN: usize = 20;
    let mut s: Vec<String> = oids.iter().take(SHOWN).map(u32::to_string).collect();
    if oids.len() > SHOWN {
        s.push(format!("… and {} more", oids.len() - SHOWN));
    }
    s.join(", ")
}
