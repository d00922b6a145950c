//! Roles live in the cluster, not in the database, so a restore into another cluster
//! meets owners and grantees it does not have. Like `pg_dumpall --globals-only`
//! (without passwords), the backup records the roles its objects name; a restore can
//! create the missing ones, or put other roles in their place.

use std::collections::{BTreeSet, HashMap};

use super::{acl, DdlOptions};
use crate::catalog::{quote_ident, quote_literal, Acl, Catalog, Role};

/// Object kinds whose statements name roles in their text (quoted, always: see the
/// introspection queries), besides owners and privileges.
const ROLES_IN_TEXT: &[&str] = &["policy", "default privileges", "user mapping"];

/// Statements that create each recorded role the target lacks, with its attributes
/// and comment, then the memberships between recorded roles the target lacks. A role
/// the target has is left as it is.
pub fn create_roles(cat: &Catalog) -> Vec<String> {
    let mut out: Vec<String> = cat.roles.iter().map(create_role).collect();
    for r in &cat.roles {
        for (group, admin) in &r.member_of {
            out.push(format!(
                "DO $pgbunker$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_auth_members m \
                 WHERE m.roleid = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = {}) \
                 AND m.member = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = {})) THEN \
                 GRANT {} TO {}{}; END IF; END $pgbunker$",
                quote_literal(group),
                quote_literal(&r.name),
                quote_ident(group),
                quote_ident(&r.name),
                if *admin { " WITH ADMIN OPTION" } else { "" }
            ));
        }
    }
    out
}

fn create_role(r: &Role) -> String {
    let flag = |on: bool, word: &str| format!(" {}{word}", if on { "" } else { "NO" });
    let mut create = format!(
        "CREATE ROLE {} WITH{}{}{}{}{}{}{} CONNECTION LIMIT {}",
        quote_ident(&r.name),
        flag(r.superuser, "SUPERUSER"),
        flag(r.inherit, "INHERIT"),
        flag(r.create_role, "CREATEROLE"),
        flag(r.create_db, "CREATEDB"),
        flag(r.login, "LOGIN"),
        flag(r.replication, "REPLICATION"),
        flag(r.bypass_rls, "BYPASSRLS"),
        r.connection_limit
    );
    if let Some(v) = &r.valid_until {
        create.push_str(&format!(" VALID UNTIL {}", quote_literal(v)));
    }
    let mut body = vec![create];
    if let Some(c) = &r.comment {
        body.push(format!(
            "COMMENT ON ROLE {} IS {}",
            quote_ident(&r.name),
            quote_literal(c)
        ));
    }
    // Dollar quoting keeps the statements' own quotes as they are.
    format!(
        "DO $pgbunker$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = {}) \
         THEN {}; END IF; END $pgbunker$",
        quote_literal(&r.name),
        body.join("; ")
    )
}

/// The roles the restore's statements will name under `opts`: owners (unless
/// `--no-owner`), grantees and grantors (unless `--no-privileges`), and the recorded
/// roles that policies and user mappings name in their text. A target cluster that
/// lacks one of them fails the restore at the first statement naming it.
pub fn named_roles(cat: &Catalog, opts: &DdlOptions) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut owner = |o: &Option<String>| {
        if opts.owners {
            out.extend(o.iter().cloned());
        }
    };
    for s in &cat.schemas {
        owner(&s.owner);
    }
    for e in &cat.enums {
        owner(&e.owner);
    }
    for s in &cat.sequences {
        owner(&s.owner);
    }
    for t in &cat.tables {
        owner(&t.owner);
    }
    for o in &cat.objects {
        owner(&o.owner);
    }
    if opts.privileges {
        let acls = cat
            .schemas
            .iter()
            .map(|s| &s.acl)
            .chain(cat.enums.iter().map(|e| &e.acl))
            .chain(cat.sequences.iter().map(|s| &s.acl))
            .chain(cat.tables.iter().map(|t| &t.acl))
            .chain(cat.objects.iter().map(|o| &o.acl))
            .flatten()
            .flat_map(|a| a.items.iter());
        let columns = cat
            .tables
            .iter()
            .flat_map(|t| t.columns.iter().flat_map(|c| c.acl.iter()));
        for item in acls.chain(columns) {
            out.extend(acl::roles_of(item));
        }
    }
    for o in cat
        .objects
        .iter()
        .filter(|o| ROLES_IN_TEXT.contains(&o.kind.as_str()))
        .filter(|o| opts.privileges || o.kind != "default privileges")
    {
        for r in &cat.roles {
            if o.create.iter().any(|s| s.contains(&quote_ident(&r.name))) {
                out.insert(r.name.clone());
            }
        }
    }
    out
}

/// Puts role `new` wherever the catalog names role `old`: owners, privileges (grantees
/// and grantors), the roles of policies, default privileges and user mappings, and the
/// recorded roles themselves (a mapped role is not created: it is the target's).
pub fn map_roles(cat: &mut Catalog, map: &HashMap<String, String>) {
    if map.is_empty() {
        return;
    }
    for s in &mut cat.schemas {
        map_owner_and_acl(&mut s.owner, &mut s.acl, map);
    }
    for e in &mut cat.enums {
        map_owner_and_acl(&mut e.owner, &mut e.acl, map);
    }
    for s in &mut cat.sequences {
        map_owner_and_acl(&mut s.owner, &mut s.acl, map);
    }
    for t in &mut cat.tables {
        map_owner_and_acl(&mut t.owner, &mut t.acl, map);
        for c in &mut t.columns {
            rename_items(&mut c.acl, map);
        }
    }
    for o in &mut cat.objects {
        map_owner_and_acl(&mut o.owner, &mut o.acl, map);
        if ROLES_IN_TEXT.contains(&o.kind.as_str()) {
            for stmt in &mut o.create {
                for (old, new) in map {
                    *stmt = stmt.replace(&quote_ident(old), &quote_ident(new));
                }
            }
        }
    }
    if let Some(d) = &mut cat.database {
        map_owner_and_acl(&mut d.owner, &mut d.acl, map);
    }
    cat.roles.retain(|r| !map.contains_key(&r.name));
    for r in &mut cat.roles {
        for (group, _) in &mut r.member_of {
            if let Some(new) = map.get(group.as_str()) {
                *group = new.clone();
            }
        }
    }
}

/// One object's owner and privileges with the roles of `map` put in (also for what
/// lives outside the catalog, such as large objects).
pub fn map_owner_and_acl(
    owner: &mut Option<String>,
    acl: &mut Option<Acl>,
    map: &HashMap<String, String>,
) {
    if let Some(new) = owner.as_ref().and_then(|o| map.get(o)) {
        *owner = Some(new.clone());
    }
    if let Some(a) = acl {
        rename_items(&mut a.items, map);
        rename_items(&mut a.defaults, map);
    }
}

fn rename_items(items: &mut [String], map: &HashMap<String, String>) {
    for item in items {
        *item = acl::rename(item, map);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{SchemaObject, Section, Table};

    #[test]
    fn roles_are_created_only_when_missing_and_without_passwords() {
        let cat = Catalog {
            roles: vec![Role {
                name: "clinic\"staff".into(),
                login: true,
                connection_limit: 5,
                comment: Some("nurses' role".into()),
                member_of: vec![("readers".into(), true)],
                ..Default::default()
            }],
            ..Default::default()
        };
        let sql = create_roles(&cat);
        assert_eq!(sql.len(), 2);
        assert!(sql[0].contains("WHERE rolname = 'clinic\"staff'"));
        assert!(sql[0].contains(
            "CREATE ROLE \"clinic\"\"staff\" WITH NOSUPERUSER NOINHERIT NOCREATEROLE NOCREATEDB \
             LOGIN NOREPLICATION NOBYPASSRLS CONNECTION LIMIT 5"
        ));
        assert!(sql[0].contains("COMMENT ON ROLE \"clinic\"\"staff\" IS 'nurses'' role'"));
        assert!(!sql[0].to_lowercase().contains("password"));
        assert!(sql[1].contains("GRANT \"readers\" TO \"clinic\"\"staff\" WITH ADMIN OPTION"));
    }

    #[test]
    fn a_role_map_reaches_owners_grants_and_policies() {
        let mut cat = Catalog {
            tables: vec![Table {
                owner: Some("alice".into()),
                acl: Some(Acl {
                    target: "TABLE public.t".into(),
                    items: vec!["alice=arwdDxt/alice".into(), "bob=r/alice".into()],
                    defaults: vec!["alice=arwdDxt/alice".into()],
                }),
                ..Default::default()
            }],
            objects: vec![SchemaObject {
                key: Default::default(),
                kind: "policy".into(),
                schema: None,
                name: "p on public.t".into(),
                section: Section::PostData,
                create: vec!["CREATE POLICY p ON public.t TO \"bob\", PUBLIC".into()],
                target: None,
                owner: None,
                acl: None,
                comment: None,
                table: None,
            }],
            roles: vec![Role {
                name: "alice".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let map = HashMap::from([
            ("alice".to_string(), "Dr Who".to_string()),
            ("bob".to_string(), "carol".to_string()),
        ]);
        map_roles(&mut cat, &map);
        let t = &cat.tables[0];
        assert_eq!(t.owner.as_deref(), Some("Dr Who"));
        let acl = t.acl.as_ref().unwrap();
        assert_eq!(
            acl.items,
            ["\"Dr Who\"=arwdDxt/\"Dr Who\"", "carol=r/\"Dr Who\""]
        );
        assert_eq!(acl.defaults, ["\"Dr Who\"=arwdDxt/\"Dr Who\""]);
        assert_eq!(
            cat.objects[0].create,
            ["CREATE POLICY p ON public.t TO \"carol\", PUBLIC"]
        );
        assert!(cat.roles.is_empty(), "a mapped role is the target's own");
    }
}
