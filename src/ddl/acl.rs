//! Privileges: `aclitem` texts → `GRANT`/`REVOKE` statements that turn the privileges
//! a new object gets into the ones it had.

use crate::catalog::{quote_ident, Acl};

/// One parsed `aclitem`: `grantee=privileges/grantor`, grantee empty for PUBLIC.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Item {
    grantee: String,
    /// `(letter, with grant option)`.
    privileges: Vec<(char, bool)>,
    grantor: String,
}

/// Reads a role name as `aclitem` prints it: bare, or double-quoted with `""`.
fn role(s: &str) -> (String, &str) {
    if let Some(rest) = s.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = rest.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            if c == '"' {
                if matches!(chars.peek(), Some((_, '"'))) {
                    chars.next();
                    out.push('"');
                } else {
                    return (out, &rest[i + 1..]);
                }
            } else {
                out.push(c);
            }
        }
        (out, "")
    } else {
        let end = s.find(['=', '/']).unwrap_or(s.len());
        (s[..end].to_owned(), &s[end..])
    }
}

fn parse(text: &str) -> Option<Item> {
    let (grantee, rest) = role(text);
    let rest = rest.strip_prefix('=')?;
    let (privs, rest) = rest.split_once('/')?;
    let (grantor, _) = role(rest);
    let mut privileges = Vec::new();
    let mut chars = privs.chars().peekable();
    while let Some(c) = chars.next() {
        let option = chars.next_if_eq(&'*').is_some();
        privileges.push((c, option));
    }
    Some(Item {
        grantee,
        privileges,
        grantor,
    })
}

fn privilege_name(letter: char) -> Option<&'static str> {
    Some(match letter {
        'r' => "SELECT",
        'w' => "UPDATE",
        'a' => "INSERT",
        'd' => "DELETE",
        'D' => "TRUNCATE",
        'x' => "REFERENCES",
        't' => "TRIGGER",
        'X' => "EXECUTE",
        'U' => "USAGE",
        'C' => "CREATE",
        'c' => "CONNECT",
        'T' => "TEMPORARY",
        'm' => "MAINTAIN",
        's' => "SET",
        'A' => "ALTER SYSTEM",
        _ => return None,
    })
}

fn grantee_sql(name: &str) -> String {
    if name.is_empty() {
        "PUBLIC".to_owned()
    } else {
        quote_ident(name)
    }
}

/// `GRANT`s for one item; `columns` is ` (col)` for column privileges. With
/// `set_role`, a grant made by someone other than the object's owner is replayed as
/// that role; without (no owners restored), the restoring user makes it.
fn grants(
    item: &Item,
    target: &str,
    columns: &str,
    owner: Option<&str>,
    set_role: bool,
) -> Vec<String> {
    let mut out = Vec::new();
    for option in [false, true] {
        let names: Vec<String> = item
            .privileges
            .iter()
            .filter(|(_, o)| *o == option)
            .filter_map(|(l, _)| privilege_name(*l))
            .map(|n| format!("{n}{columns}"))
            .collect();
        if names.is_empty() {
            continue;
        }
        let mut stmt = format!(
            "GRANT {} ON {target} TO {}",
            names.join(", "),
            grantee_sql(&item.grantee)
        );
        if option {
            stmt.push_str(" WITH GRANT OPTION");
        }
        if set_role && owner.is_some_and(|o| o != item.grantor) && !item.grantor.is_empty() {
            stmt = format!(
                "SET ROLE {}; {stmt}; RESET ROLE",
                quote_ident(&item.grantor)
            );
        }
        out.push(stmt);
    }
    out
}

/// Statements that give an object exactly the privileges in `acl`, starting from the
/// defaults it has when created by `owner`.
/// A role name as `aclitem` prints it: bare when it is letters, digits and `_`.
fn role_text(name: &str) -> String {
    if !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        name.to_owned()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

/// The roles an `aclitem` names: its grantee (none for PUBLIC) and its grantor.
pub fn roles_of(text: &str) -> Vec<String> {
    parse(text)
        .map(|i| {
            [i.grantee, i.grantor]
                .into_iter()
                .filter(|r| !r.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

/// `text` with its grantee and grantor mapped; unchanged when it does not parse.
pub fn rename(text: &str, map: &std::collections::HashMap<String, String>) -> String {
    let Some(item) = parse(text) else {
        return text.to_owned();
    };
    let mapped = |r: &str| map.get(r).map_or(r, String::as_str).to_owned();
    let privileges: String = item
        .privileges
        .iter()
        .map(|(l, o)| if *o { format!("{l}*") } else { l.to_string() })
        .collect();
    let grantee = mapped(&item.grantee);
    let grantee = if grantee.is_empty() {
        grantee
    } else {
        role_text(&grantee)
    };
    format!(
        "{grantee}={privileges}/{}",
        role_text(&mapped(&item.grantor))
    )
}

pub fn statements(acl: &Acl, owner: Option<&str>, set_role: bool) -> Vec<String> {
    let items: Vec<Item> = acl.items.iter().filter_map(|t| parse(t)).collect();
    let defaults: Vec<Item> = acl.defaults.iter().filter_map(|t| parse(t)).collect();
    let mut out = Vec::new();
    for d in defaults.iter().filter(|d| !items.contains(d)) {
        out.push(format!(
            "REVOKE ALL ON {} FROM {}",
            acl.target,
            grantee_sql(&d.grantee)
        ));
    }
    for i in items.iter().filter(|i| !defaults.contains(i)) {
        out.extend(grants(i, &acl.target, "", owner, set_role));
    }
    out
}

/// Statements that give an object that already exists in the target (the `public`
/// schema) exactly the privileges in `acl`, whatever it had there.
pub fn replace_statements(acl: &Acl, owner: Option<&str>, set_role: bool) -> Vec<String> {
    let mut out = vec![format!("REVOKE ALL ON {} FROM PUBLIC", acl.target)];
    if let Some(o) = owner {
        out.push(format!(
            "REVOKE ALL ON {} FROM {}",
            acl.target,
            quote_ident(o)
        ));
    }
    for i in acl.items.iter().filter_map(|t| parse(t)) {
        out.extend(grants(&i, &acl.target, "", owner, set_role));
    }
    out
}

/// Column privileges (a column has none by default).
pub fn column_statements(
    table_target: &str,
    column: &str,
    items: &[String],
    owner: Option<&str>,
    set_role: bool,
) -> Vec<String> {
    let cols = format!(" ({})", quote_ident(column));
    items
        .iter()
        .filter_map(|t| parse(t))
        .flat_map(|i| grants(&i, table_target, &cols, owner, set_role))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aclitems_parse_with_quoted_roles_and_grant_options() {
        let i = parse("\"we\"\"ird\"=r*w/owner").unwrap();
        assert_eq!(i.grantee, "we\"ird");
        assert_eq!(i.privileges, vec![('r', true), ('w', false)]);
        assert_eq!(i.grantor, "owner");
        assert_eq!(parse("=U/o").unwrap().grantee, "");
    }

    #[test]
    fn only_differences_from_the_defaults_are_replayed() {
        let acl = Acl {
            target: "TABLE \"s\".\"t\"".into(),
            items: vec!["o=arwxt/o".into(), "r=r*/o".into(), "x=w/r".into()],
            defaults: vec!["o=arwdDxt/o".into()],
        };
        assert_eq!(
            statements(&acl, Some("o"), true),
            vec![
                "REVOKE ALL ON TABLE \"s\".\"t\" FROM \"o\"",
                "GRANT INSERT, SELECT, UPDATE, REFERENCES, TRIGGER ON TABLE \"s\".\"t\" TO \"o\"",
                "GRANT SELECT ON TABLE \"s\".\"t\" TO \"r\" WITH GRANT OPTION",
                "SET ROLE \"r\"; GRANT UPDATE ON TABLE \"s\".\"t\" TO \"x\"; RESET ROLE",
            ]
        );
        // Without owners the restoring user makes every grant itself.
        assert_eq!(
            statements(&acl, Some("o"), false)[3],
            "GRANT UPDATE ON TABLE \"s\".\"t\" TO \"x\""
        );
        let public = Acl {
            target: "FUNCTION f()".into(),
            items: vec!["o=X/o".into()],
            defaults: vec!["=X/o".into(), "o=X/o".into()],
        };
        assert_eq!(
            statements(&public, Some("o"), true),
            vec!["REVOKE ALL ON FUNCTION f() FROM PUBLIC"]
        );
    }
}
