//! `restore --clean`: the `DROP`s that clear the catalog's objects out of an existing
//! database before they are created again, in the same transaction.
//!
//! Dependents go first: the creation order read backwards, post-data before pre-data,
//! schemas last. Nothing is dropped with CASCADE: an object outside the restore that
//! needs one of these makes its drop fail with the server's own message, so a restore
//! never takes away more than it brings back.

use super::order::{self, PreObject};
use crate::catalog::{quote_ident, Catalog, ConstraintKind, SchemaObject, Sequence};

/// The `DROP` statements, in order. `if_exists` (pg_restore's `--if-exists`) lets the
/// target lack some of the objects; without it, every object must be there.
///
/// Post-data objects are dropped one by one even when they belong to a table, as
/// pg_restore does: a policy or rule on one table may read another, and dropping
/// that other table first would fail. Foreign keys between the catalog's tables go
/// before the tables for the same reason (two tables that reference each other).
pub fn drops(cat: &Catalog, if_exists: bool) -> Vec<String> {
    let ie = if if_exists { " IF EXISTS" } else { "" };
    let mut out: Vec<String> = order::post_data(cat)
        .into_iter()
        .rev()
        .filter_map(|o| object(o, ie))
        .collect();
    for t in &cat.tables {
        let fks = t.constraints.iter().filter(|c| {
            c.kind == ConstraintKind::ForeignKey
                && c.local
                && c.references.as_ref().is_some_and(|r| {
                    *r != t.name && cat.tables.iter().any(|other| other.name == *r)
                })
        });
        // Not ONLY: a partitioned table's key takes its partitions' copies with it.
        out.extend(fks.map(|c| {
            format!(
                "ALTER TABLE{ie} {} DROP CONSTRAINT{ie} {}",
                t.name,
                quote_ident(&c.name)
            )
        }));
    }
    for item in order::pre_data(cat).into_iter().rev() {
        out.extend(match item {
            // Takes its indexes, constraints, triggers, rules, policies and the
            // sequences it owns (identity ones included) with it.
            PreObject::Table(t) => Some(format!("DROP TABLE{ie} {}", t.name)),
            PreObject::Sequence(s) if !owned_by_a_table(cat, s) => {
                Some(format!("DROP SEQUENCE{ie} {}", s.name))
            }
            PreObject::Sequence(_) => None,
            PreObject::Enum(e) => Some(format!("DROP TYPE{ie} {}", e.name)),
            PreObject::Object(o) => object(o, ie),
        });
    }
    let schemas = cat.schemas.iter().rev();
    out.extend(
        schemas
            .filter(|s| !s.existing && s.name != "public")
            .map(|s| format!("DROP SCHEMA{ie} {}", quote_ident(&s.name))),
    );
    out
}

/// A sequence a table of the catalog owns goes with that table.
fn owned_by_a_table(cat: &Catalog, s: &Sequence) -> bool {
    s.owned_by
        .as_ref()
        .is_some_and(|o| cat.tables.iter().any(|t| t.name == o.table))
}

/// `DROP <target>`, with `IF EXISTS` after the kind's keywords. Nothing for objects
/// that cannot be dropped on their own: materialized view contents (class 0; they
/// go with the view) and default privileges (no target: they are settings of a
/// role, and the restore's statements set them again whatever they were).
fn object(o: &SchemaObject, ie: &str) -> Option<String> {
    if o.key.class == 0 {
        return None;
    }
    if o.kind == "user mapping" {
        let m = o.create.first().and_then(|c| user_mapping(c))?;
        return Some(format!("DROP USER MAPPING{ie} {m}"));
    }
    let (kind, name) = split_kind(o.target.as_deref()?);
    // `IF EXISTS` goes between the two words of this one kind.
    if let Some(rest) = kind.strip_prefix("TRANSFORM ") {
        return Some(format!("DROP TRANSFORM{ie} {rest} {name}"));
    }
    Some(format!("DROP {kind}{ie} {name}"))
}

/// Splits a target into its kind and the rest: `OPERATOR CLASS` and
/// `"s"."c" USING btree`, `CAST` and `(integer AS text)`. The introspection SQL quotes
/// any name that is not all lower case (`%I`, `quote_ident`), so the kind is the
/// leading run of words in capitals.
fn split_kind(target: &str) -> (&str, &str) {
    let mut end = 0;
    for word in target.split(' ') {
        if word.is_empty() || !word.bytes().all(|b| b.is_ascii_uppercase()) {
            break;
        }
        end += word.len() + 1;
    }
    let end = end.min(target.len());
    (target[..end].trim_end(), &target[end..])
}

/// `CREATE USER MAPPING FOR <role> SERVER <server> [OPTIONS (…)]` → `FOR <role>
/// SERVER <server>`: a mapping has no target, and its display name is unquoted.
fn user_mapping(create: &str) -> Option<String> {
    let rest = create.strip_prefix("CREATE USER MAPPING FOR ")?;
    let (role, rest) = ident(rest)?;
    let (server, _) = ident(rest.strip_prefix(" SERVER ")?)?;
    Some(format!("FOR {role} SERVER {server}"))
}

/// Splits one identifier as `quote_ident` writes it (bare, or in double quotes with
/// `""` inside) off the front of `s`.
fn ident(s: &str) -> Option<(&str, &str)> {
    let end = match s.strip_prefix('"') {
        Some(rest) => {
            let b = rest.as_bytes();
            let mut i = 0;
            loop {
                match (b.get(i), b.get(i + 1)) {
                    (Some(b'"'), Some(b'"')) => i += 2,
                    (Some(b'"'), _) => break i + 2,
                    (Some(_), _) => i += 1,
                    (None, _) => return None,
                }
            }
        }
        None => s.find(' ').unwrap_or(s.len()),
    };
    Some(s.split_at(end))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{
        Constraint, Dependency, EnumType, ObjKey, OwnedBy, QualName, Schema, Section, Table,
        PG_CLASS, PG_TYPE,
    };

    const PG_PROC: u32 = 1255;

    fn key(class: u32, oid: u32) -> ObjKey {
        ObjKey { class, oid }
    }

    fn object(kind: &str, key: ObjKey, target: Option<&str>, section: Section) -> SchemaObject {
        SchemaObject {
            key,
            kind: kind.into(),
            schema: None,
            name: target.unwrap_or(kind).to_lowercase(),
            section,
            create: vec![format!("CREATE {kind}")],
            target: target.map(Into::into),
            owner: None,
            acl: None,
            comment: None,
            table: None,
        }
    }

    fn sequence(name: &str, oid: u32, owned_by: Option<&str>) -> Sequence {
        Sequence {
            oid,
            name: QualName::new("app", name),
            owned_by: owned_by.map(|t| OwnedBy {
                table: QualName::new("app", t),
                column: "id".into(),
            }),
            ..Default::default()
        }
    }

    fn fk(name: &str, to: &str) -> Constraint {
        Constraint {
            name: name.into(),
            kind: ConstraintKind::ForeignKey,
            definition: format!("FOREIGN KEY (x) REFERENCES app.{to}(id)"),
            references: Some(QualName::new("app", to)),
            local: true,
            ..Default::default()
        }
    }

    fn dep(dependent: ObjKey, referenced: ObjKey) -> Dependency {
        Dependency {
            dependent,
            referenced,
        }
    }

    fn sample() -> Catalog {
        let schema = |name: &str, existing| Schema {
            name: name.into(),
            comment: None,
            existing,
            owner: None,
            acl: None,
        };
        let table = |name: &str, oid, fks| Table {
            oid,
            name: QualName::new("app", name),
            constraints: fks,
            ..Default::default()
        };
        let (mood, counter, t, u) = (key(PG_TYPE, 10), key(PG_CLASS, 11), 20, 21);
        let view = key(PG_CLASS, 30);
        let mut trigger = object(
            "trigger",
            key(2620, 40),
            Some("TRIGGER \"tr\" ON app.t"),
            Section::PostData,
        );
        trigger.table = Some(QualName::new("app", "t"));
        let mut refresh = object(
            "materialized view data",
            key(0, 31),
            None,
            Section::PostData,
        );
        refresh.table = Some(QualName::new("app", "mv"));
        let mut mapping = object("user mapping", key(1418, 50), None, Section::PreData);
        mapping.create =
            vec!["CREATE USER MAPPING FOR \"bob \"\"x\"\"\" SERVER srv OPTIONS (user 'x')".into()];
        Catalog {
            schemas: vec![schema("public", true), schema("app", false)],
            enums: vec![EnumType {
                oid: 10,
                name: QualName::new("app", "mood"),
                labels: vec!["ok".into()],
                comment: None,
                owner: None,
                acl: None,
            }],
            sequences: vec![
                sequence("counter", 11, None),
                sequence("t_id_seq", 12, Some("t")),
                sequence("elsewhere_seq", 13, Some("not_in_the_backup")),
            ],
            tables: vec![
                table("t", t, vec![fk("t_u", "u")]),
                table("u", u, vec![fk("u_t", "t"), fk("u_u", "u")]),
            ],
            objects: vec![
                object("view", view, Some("VIEW app.v"), Section::PreData),
                object(
                    "function",
                    key(PG_PROC, 60),
                    Some("FUNCTION app.f(integer)"),
                    Section::PreData,
                ),
                object(
                    "text search configuration",
                    key(3602, 61),
                    Some("TEXT SEARCH CONFIGURATION app.cfg"),
                    Section::PreData,
                ),
                object(
                    "operator class",
                    key(2616, 62),
                    Some("OPERATOR CLASS app.c USING btree"),
                    Section::PreData,
                ),
                object(
                    "cast",
                    key(2605, 63),
                    Some("CAST (app.mood AS text)"),
                    Section::PreData,
                ),
                object(
                    "operator",
                    key(2617, 64),
                    Some("OPERATOR app.=== (integer, integer)"),
                    Section::PreData,
                ),
                object(
                    "event trigger",
                    key(3466, 70),
                    Some("EVENT TRIGGER e"),
                    Section::PostData,
                ),
                object("default privileges", key(826, 71), None, Section::PostData),
                trigger,
                refresh,
                mapping,
            ],
            dependencies: vec![
                dep(key(PG_CLASS, t), mood),
                dep(key(PG_CLASS, t), counter),
                dep(view, key(PG_CLASS, t)),
            ],
            ..Default::default()
        }
    }

    #[test]
    fn dependents_go_first_and_owned_sequences_with_their_table() {
        let d = drops(&sample(), false);
        let at = |s: &str| {
            d.iter()
                .position(|x| x == s)
                .unwrap_or_else(|| panic!("{s} missing from {d:#?}"))
        };
        assert!(at("DROP VIEW app.v") < at(r#"DROP TABLE "app"."t""#));
        assert!(at(r#"DROP TABLE "app"."t""#) < at(r#"DROP TYPE "app"."mood""#));
        assert!(at(r#"DROP TABLE "app"."t""#) < at(r#"DROP SEQUENCE "app"."counter""#));
        assert!(at(r#"DROP SEQUENCE "app"."elsewhere_seq""#) < at(r#"DROP SCHEMA "app""#));
        assert!(!d.iter().any(|s| s.contains("t_id_seq")), "{d:#?}");
        assert_eq!(
            at(r#"DROP SCHEMA "app""#),
            d.len() - 1,
            "schemas last, never public"
        );
        // Foreign keys between the tables first (they reference each other), a
        // key to its own table goes with it.
        let fks = [
            r#"ALTER TABLE "app"."t" DROP CONSTRAINT "t_u""#,
            r#"ALTER TABLE "app"."u" DROP CONSTRAINT "u_t""#,
        ];
        assert!(fks.iter().all(|f| at(f) < at(r#"DROP TABLE "app"."u""#)));
        assert!(!d.iter().any(|s| s.contains("u_u")));
        // Post-data objects before the pre-data ones; contents and default
        // privileges have nothing to drop.
        assert_eq!(d[0], "DROP EVENT TRIGGER e");
        assert_eq!(d[1], r#"DROP TRIGGER "tr" ON app.t"#);
        assert!(!d
            .iter()
            .any(|s| s.contains("PRIVILEGES") || s.contains("mv")));
        assert!(d.iter().all(|s| !s.contains("CASCADE")));
    }

    #[test]
    fn if_exists_follows_the_whole_kind() {
        let d = drops(&sample(), true);
        for s in [
            "DROP VIEW IF EXISTS app.v",
            "DROP FUNCTION IF EXISTS app.f(integer)",
            "DROP TEXT SEARCH CONFIGURATION IF EXISTS app.cfg",
            "DROP OPERATOR CLASS IF EXISTS app.c USING btree",
            "DROP CAST IF EXISTS (app.mood AS text)",
            "DROP OPERATOR IF EXISTS app.=== (integer, integer)",
            "DROP EVENT TRIGGER IF EXISTS e",
            r#"DROP TRIGGER IF EXISTS "tr" ON app.t"#,
            r#"DROP USER MAPPING IF EXISTS FOR "bob ""x""" SERVER srv"#,
            r#"DROP TABLE IF EXISTS "app"."t""#,
            r#"DROP TYPE IF EXISTS "app"."mood""#,
            r#"DROP SEQUENCE IF EXISTS "app"."counter""#,
            r#"ALTER TABLE IF EXISTS "app"."t" DROP CONSTRAINT IF EXISTS "t_u""#,
            r#"DROP SCHEMA IF EXISTS "app""#,
        ] {
            assert!(d.iter().any(|x| x == s), "{s} missing from {d:#?}");
        }
    }

    #[test]
    fn kinds_split_off_every_target_the_introspection_writes() {
        for (target, kind) in [
            ("FOREIGN DATA WRAPPER w", "FOREIGN DATA WRAPPER"),
            (r#"FOREIGN TABLE "S".t"#, "FOREIGN TABLE"),
            ("SERVER s", "SERVER"),
            ("MATERIALIZED VIEW s.m", "MATERIALIZED VIEW"),
            ("ACCESS METHOD heap2", "ACCESS METHOD"),
            ("AGGREGATE s.a(*)", "AGGREGATE"),
            ("OPERATOR FAMILY s.f USING hash", "OPERATOR FAMILY"),
            ("OPERATOR s.- (NONE, integer)", "OPERATOR"),
            ("TEXT SEARCH PARSER s.p", "TEXT SEARCH PARSER"),
            ("LANGUAGE plfoo", "LANGUAGE"),
            ("EXTENSION hstore", "EXTENSION"),
            (r#"DOMAIN s."UPPER""#, "DOMAIN"),
            ("PUBLICATION p", "PUBLICATION"),
        ] {
            assert_eq!(split_kind(target).0, kind, "{target}");
        }
        assert_eq!(
            ident(r#""a""b" SERVER x"#),
            Some((r#""a""b""#, " SERVER x"))
        );
        assert_eq!(ident(r#""open"#), None);
        assert_eq!(
            user_mapping("CREATE USER MAPPING FOR PUBLIC SERVER s"),
            Some("FOR PUBLIC SERVER s".into())
        );
    }
}
