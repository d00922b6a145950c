//! The rules file: which columns get which transform.
//!
//! ```toml
//! large_objects = "drop"          # or "keep"; large objects cannot be masked
//!
//! [[rule]]
//! columns = "public.patients.first_name"   # [schema.]table.column, or a list
//! transform = "fake"
//! kind = "first_name"
//! ```
//!
//! Column patterns are `-t` table patterns with the column's name after one more dot
//! (`*` and `?` wildcards, double quotes for exact names): `patients.email`,
//! `*.*.email`, `clinical.clinical_notes.body`. A bare `email` names that column in
//! every table. The first rule that matches a column decides it.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::transform::Transform;
use super::MaskError;
use crate::plan::pattern::Pattern;

/// The furthest `shift_date` moves a date: 100 years.
const MAX_SHIFT_DAYS: u32 = 36_500;

/// What a masked restore does with the backup's large objects, whose contents are
/// opaque (often scanned documents): they are left out unless the rules say `keep`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LargeObjects {
    #[default]
    Drop,
    Keep,
}

/// `[schema.]table.column` with wildcards.
#[derive(Debug, Clone)]
pub struct ColumnPattern {
    text: String,
    /// `None`: every table.
    table: Option<Pattern>,
    /// A one-name pattern, read as a schema pattern is.
    column: Pattern,
}

impl ColumnPattern {
    pub fn parse(text: &str) -> Result<ColumnPattern, String> {
        // The last dot outside double quotes separates the column.
        let mut quoted = false;
        let mut split = None;
        for (i, c) in text.char_indices() {
            match c {
                '"' => quoted = !quoted,
                '.' if !quoted => split = Some(i),
                _ => {}
            }
        }
        let (table, column) = match split {
            Some(i) => (Some(&text[..i]), &text[i + 1..]),
            None => (None, text),
        };
        let table = table
            .map(Pattern::table)
            .transpose()
            .map_err(|e| e.to_string())?;
        let column = Pattern::schema(column).map_err(|e| e.to_string())?;
        Ok(ColumnPattern {
            text: text.into(),
            table,
            column,
        })
    }

    pub fn matches(&self, schema: &str, table: &str, column: &str) -> bool {
        self.table
            .as_ref()
            .is_none_or(|t| t.matches_table(schema, table))
            && self.column.matches_schema(column)
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

#[derive(Debug, Clone)]
pub struct Rule {
    /// 1-based, in file order: how reports name it.
    pub number: usize,
    pub columns: Vec<ColumnPattern>,
    pub transform: Transform,
}

#[derive(Debug, Clone, Default)]
pub struct Rules {
    pub rules: Vec<Rule>,
    pub large_objects: LargeObjects,
    /// SHA-256 of the file as read, hex: names the rules in reports and audit records
    /// without carrying them.
    pub sha256: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    large_objects: LargeObjects,
    #[serde(default)]
    rule: Vec<toml::Table>,
}

impl Rules {
    pub fn parse(text: &str) -> Result<Rules, MaskError> {
        let bad = |what: String| MaskError::Rules(what);
        // The whole message: it says the line and column.
        let file: File = toml::from_str(text).map_err(|e| bad(e.to_string().trim().to_string()))?;
        let mut rules = Vec::new();
        for (i, mut table) in file.rule.into_iter().enumerate() {
            let number = i + 1;
            let columns = match table.remove("columns") {
                Some(toml::Value::String(s)) => vec![s],
                Some(toml::Value::Array(a)) => a
                    .into_iter()
                    .map(|v| match v {
                        toml::Value::String(s) => Ok(s),
                        other => Err(bad(format!(
                            "rule {number}: `columns` holds {}, not a pattern string",
                            other.type_str()
                        ))),
                    })
                    .collect::<Result<_, _>>()?,
                Some(other) => {
                    return Err(bad(format!(
                        "rule {number}: `columns` is {}, not a pattern or a list of them",
                        other.type_str()
                    )))
                }
                None => {
                    return Err(bad(format!(
                        "rule {number} has no `columns` (a pattern like \"public.patients.email\")"
                    )))
                }
            };
            let columns = columns
                .iter()
                .map(|c| {
                    ColumnPattern::parse(c)
                        .map_err(|e| bad(format!("rule {number}, column pattern {c:?}: {e}")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let transform: Transform = toml::Value::Table(table)
                .try_into()
                .map_err(|e: toml::de::Error| bad(format!("rule {number}: {}", e.message())))?;
            if let Transform::ShiftDate { max_days, .. } = transform {
                if !(1..=MAX_SHIFT_DAYS).contains(&max_days) {
                    return Err(bad(format!(
                        "rule {number}: max_days must be 1 to {MAX_SHIFT_DAYS} (100 years), not \
                         {max_days}"
                    )));
                }
            }
            rules.push(Rule {
                number,
                columns,
                transform,
            });
        }
        Ok(Rules {
            rules,
            large_objects: file.large_objects,
            sha256: hex::encode(Sha256::digest(text.as_bytes())),
        })
    }

    /// The first rule naming the column.
    pub fn rule_for(&self, schema: &str, table: &str, column: &str) -> Option<&Rule> {
        self.rules
            .iter()
            .find(|r| r.columns.iter().any(|p| p.matches(schema, table, column)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mask::fake::FakeKind;

    #[test]
    fn rules_read_with_their_parameters_and_first_match_wins() {
        let r = Rules::parse(
            r#"
            large_objects = "keep"
            [[rule]]
            columns = "public.patients.first_name"
            transform = "fake"
            kind = "first_name"
            [[rule]]
            columns = ["*.email", "users.display_name"]
            transform = "redact"
            [[rule]]
            columns = "vitals_samples.recorded_at"
            transform = "shift_date"
            by = "patient_id"
            "#,
        )
        .unwrap();
        assert_eq!(r.large_objects, LargeObjects::Keep);
        assert_eq!(
            r.rule_for("public", "patients", "first_name")
                .unwrap()
                .transform,
            Transform::Fake {
                kind: FakeKind::FirstName
            }
        );
        assert_eq!(r.rule_for("x", "users", "email").unwrap().number, 2);
        assert!(r.rule_for("public", "patients", "last_name").is_none());
        assert_eq!(
            r.rule_for("public", "vitals_samples", "recorded_at")
                .unwrap()
                .transform,
            Transform::ShiftDate {
                by: "patient_id".into(),
                max_days: 365
            }
        );
        assert_eq!(r.sha256.len(), 64);
    }

    #[test]
    fn mistakes_are_named_with_the_rule() {
        let err = |t: &str| Rules::parse(t).unwrap_err().to_string();
        assert!(
            err("[[rule]]\ncolumns = \"a.b\"\ntransform = \"fake\"\nknd = \"email\"")
                .contains("rule 1")
        );
        assert!(err("[[rule]]\ntransform = \"null\"").contains("no `columns`"));
        assert!(err("[[rule]]\ncolumns = \"a.b\"\ntransform = \"scramble\"").contains("scramble"));
        assert!(err("[[rule]]\ncolumns = \"a.b.c.d\"\ntransform = \"null\"").contains("a.b.c.d"));
        assert!(err("rules = 1").contains("rules"));
        assert!(
            err("[[rule]]\ncolumns = ").contains("line 2"),
            "{}",
            err("[[rule]]\ncolumns = ")
        );
        assert!(err(
            "[[rule]]\ncolumns = \"a.b\"\ntransform = \"shift_date\"\nby = \"x\"\nmax_days = 99999"
        )
        .contains("36500"));
    }
}
