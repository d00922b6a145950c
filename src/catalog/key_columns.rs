//! The columns of keys and foreign keys, read from their definitions as
//! `pg_get_constraintdef` prints them: restore's merge, diff and masking need them.

use super::{Constraint, ConstraintKind};

impl Constraint {
    /// The columns of a primary key or unique constraint; `None` for other kinds, a
    /// key that is not plain equality (`WITHOUT OVERLAPS`) or a definition it cannot
    /// read.
    pub fn key_columns(&self) -> Option<Vec<String>> {
        matches!(
            self.kind,
            ConstraintKind::PrimaryKey | ConstraintKind::Unique
        )
        .then(|| column_list(&self.definition))?
    }

    /// The local and referenced columns of `FOREIGN KEY (a, b) REFERENCES t(x, y) …`.
    pub fn foreign_key_columns(&self) -> Option<(Vec<String>, Vec<String>)> {
        if self.kind != ConstraintKind::ForeignKey {
            return None;
        }
        let local = column_list(&self.definition)?;
        let after = &self.definition[self.definition.find(" REFERENCES ")?..];
        let referenced = column_list(after)?;
        (local.len() == referenced.len()).then_some((local, referenced))
    }
}

/// The columns of `PRIMARY KEY (a, "B c")` or `UNIQUE [NULLS NOT DISTINCT] (…)` as
/// `pg_get_constraintdef` prints them; `None` for a key that is not plain equality
/// (`WITHOUT OVERLAPS`) or a definition it cannot read.
fn column_list(definition: &str) -> Option<Vec<String>> {
    let open = definition.find('(')?;
    let mut columns = Vec::new();
    let mut rest = definition[open + 1..].trim_start();
    loop {
        let (name, after) = identifier(rest)?;
        columns.push(name);
        let after = after.trim_start();
        if let Some(after) = after.strip_prefix(',') {
            rest = after.trim_start();
        } else if after.starts_with(')') {
            return Some(columns);
        } else {
            // `WITHOUT OVERLAPS` or anything else: not a key whose rows match by equality.
            return None;
        }
    }
}

/// One identifier at the start of `s`, unquoted, and what follows it.
fn identifier(s: &str) -> Option<(String, &str)> {
    if let Some(quoted) = s.strip_prefix('"') {
        let mut name = String::new();
        let mut chars = quoted.char_indices();
        while let Some((i, c)) = chars.next() {
            if c != '"' {
                name.push(c);
            } else if quoted[i + 1..].starts_with('"') {
                name.push('"');
                chars.next();
            } else {
                return Some((name, &quoted[i + 1..]));
            }
        }
        return None;
    }
    let end = s
        .find(|c: char| c == ',' || c == ')' || c.is_whitespace())
        .unwrap_or(s.len());
    (end > 0).then(|| (s[..end].to_string(), &s[end..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_columns_are_read_as_postgresql_prints_them() {
        let k = |d: &str| column_list(d);
        assert_eq!(k("PRIMARY KEY (id)"), Some(vec!["id".into()]));
        assert_eq!(
            k(r#"PRIMARY KEY (a, "B ""c"")", z) INCLUDE (x)"#),
            Some(vec!["a".into(), r#"B "c")"#.into(), "z".into()])
        );
        assert_eq!(
            k("UNIQUE NULLS NOT DISTINCT (email)"),
            Some(vec!["email".into()])
        );
        assert_eq!(k("PRIMARY KEY (id, valid WITHOUT OVERLAPS)"), None);
        assert_eq!(k("PRIMARY KEY"), None);
    }
}
