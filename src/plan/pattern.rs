//! Name patterns as `pg_dump -t/-T/-n/-N` and psql's `\d` commands read them (the psql
//! manual, "Patterns"; `patternToSQLRegex` in PostgreSQL's `fe_utils/string_utils.c`):
//!
//! - `*` matches any sequence of characters (none too), `?` any single character;
//! - letters outside double quotes are folded to lower case (ASCII only, like SQL
//!   identifiers), so `-t Patients` selects `patients`;
//! - double quotes stop folding and make everything inside literal: `*`, `?` and `.`
//!   included; `""` inside quotes is one `"`. Quotes may cover just part of a pattern:
//!   `FOO"FOO"BAR` is the name `fooFOObar`;
//! - an unquoted `.` separates the schema from the name: `clinical.*`. A table pattern
//!   without a dot matches the name in every schema (pg_dump only looks in the schemas
//!   of the search path; a backup has no search path, so we take them all);
//! - `$` is always literal, and so is `[]` (array type names);
//! - the whole name must match (the pattern is anchored at both ends).
//!
//! pg_dump passes any other regular-expression character outside double quotes to the
//! server's regex engine (`[0-9]`, `+`, `|`, `(…)`, `{n}`, `^`, `\`). pgbunker has no
//! such engine, so it refuses those patterns instead of matching them differently:
//! quote the character to match it literally. pg_dump's `database.schema.table` (and
//! `database.schema` for `-n`) forms are refused too: a backup covers the database it
//! connects to.

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

/// Why a pattern cannot be used. The messages name the pattern; the caller adds which
/// flag it came from.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PatternError {
    #[error("the pattern is empty")]
    Empty,
    #[error("{pattern:?} has an empty {part} (write schema.table, or quote a dot that is part of a name)")]
    EmptyPart { pattern: String, part: &'static str },
    #[error(
        "{pattern:?} has too many dotted names: a table pattern is table or schema.table \
         (pg_dump's database.schema.table is not accepted: the backup covers the database it \
         connects to); quote a dot that is part of a name: \"my.table\""
    )]
    TooManyTableDots { pattern: String },
    #[error(
        "{pattern:?} has a dot: a schema pattern is a schema name (pg_dump's database.schema \
         is not accepted: the backup covers the database it connects to); quote a dot that is \
         part of the name: \"my.schema\""
    )]
    SchemaDot { pattern: String },
    #[error("{pattern:?} has an unterminated double quote")]
    UnterminatedQuote { pattern: String },
    #[error(
        "{pattern:?}: {ch:?} is regular-expression notation in pg_dump patterns, which pgbunker \
         does not support; use * and ?, or put {ch:?} inside double quotes to match it literally"
    )]
    Regex { pattern: String, ch: char },
}

/// One piece of a parsed name pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    Lit(char),
    /// `?`
    One,
    /// `*`
    Any,
}

/// A pattern for one name (a schema name or a table name), anchored at both ends.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Glob(Vec<Token>);

impl Glob {
    fn matches(&self, name: &str, fold: bool) -> bool {
        let norm = |c: char| {
            if fold {
                c.to_lowercase().next().unwrap_or(c)
            } else {
                c
            }
        };
        let name: Vec<char> = name.chars().map(norm).collect();
        let toks: Vec<Token> = self
            .0
            .iter()
            .map(|t| match t {
                Token::Lit(c) => Token::Lit(norm(*c)),
                other => *other,
            })
            .collect();
        // Classic wildcard matching: remember the last `*` and retry one character
        // further on a mismatch. Linear in practice, quadratic at worst (names are short).
        let (mut t, mut n) = (0, 0);
        let mut star: Option<(usize, usize)> = None;
        while n < name.len() {
            match toks.get(t) {
                Some(Token::Any) => {
                    star = Some((t, n));
                    t += 1;
                }
                Some(Token::One) => {
                    t += 1;
                    n += 1;
                }
                Some(Token::Lit(c)) if *c == name[n] => {
                    t += 1;
                    n += 1;
                }
                _ => match star {
                    Some((st, sn)) => {
                        t = st + 1;
                        n = sn + 1;
                        star = Some((st, sn + 1));
                    }
                    None => return false,
                },
            }
        }
        toks[t..].iter().all(|t| *t == Token::Any)
    }

    /// The literal text when the glob has no wildcard.
    fn literal(&self) -> Option<String> {
        self.0
            .iter()
            .map(|t| match t {
                Token::Lit(c) => Some(*c),
                _ => None,
            })
            .collect()
    }
}

/// What a pattern is written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `-t`/`-T`: `name` or `schema.name`.
    Table,
    /// `-n`/`-N`: a schema name.
    Schema,
}

/// A parsed `-t`/`-T` (table) or `-n`/`-N` (schema) pattern. Displays as typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    text: String,
    kind: Kind,
    /// Table patterns only: the schema part, when the pattern has a dot.
    schema: Option<Glob>,
    /// The table name (table patterns) or the schema name (schema patterns).
    name: Glob,
}

impl Pattern {
    /// A `-t`/`-T` pattern: `table` or `schema.table`.
    pub fn table(text: &str) -> Result<Pattern, PatternError> {
        let mut parts = split(text)?;
        let name = parts.pop().expect("split returns at least one part");
        let schema = match parts.len() {
            0 => None,
            1 => parts.pop(),
            _ => {
                return Err(PatternError::TooManyTableDots {
                    pattern: text.into(),
                })
            }
        };
        if schema.as_ref().is_some_and(|s| s.0.is_empty()) {
            return Err(PatternError::EmptyPart {
                pattern: text.into(),
                part: "schema name before the dot",
            });
        }
        if name.0.is_empty() {
            return Err(PatternError::EmptyPart {
                pattern: text.into(),
                part: "table name",
            });
        }
        Ok(Pattern {
            text: text.into(),
            kind: Kind::Table,
            schema,
            name,
        })
    }

    /// A `-n`/`-N` pattern: a schema name.
    pub fn schema(text: &str) -> Result<Pattern, PatternError> {
        let mut parts = split(text)?;
        if parts.len() > 1 {
            return Err(PatternError::SchemaDot {
                pattern: text.into(),
            });
        }
        let name = parts.pop().expect("split returns at least one part");
        Ok(Pattern {
            text: text.into(),
            kind: Kind::Schema,
            schema: None,
            name,
        })
    }

    /// The pattern as the user typed it.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether a table (or any relation) `schema.name` matches this table pattern. A
    /// schema pattern matches no table.
    pub fn matches_table(&self, schema: &str, name: &str) -> bool {
        self.matches_table_folded(schema, name, false)
    }

    /// Whether schema `name` matches this schema pattern. A table pattern matches no
    /// schema.
    pub fn matches_schema(&self, name: &str) -> bool {
        self.kind == Kind::Schema && self.name.matches(name, false)
    }

    /// Like [`Pattern::matches_table`], ignoring case: for "did you mean" hints.
    pub(crate) fn matches_table_ignoring_case(&self, schema: &str, name: &str) -> bool {
        self.matches_table_folded(schema, name, true)
    }

    /// Like [`Pattern::matches_schema`], ignoring case: for "did you mean" hints.
    pub(crate) fn matches_schema_ignoring_case(&self, name: &str) -> bool {
        self.kind == Kind::Schema && self.name.matches(name, true)
    }

    fn matches_table_folded(&self, schema: &str, name: &str, fold: bool) -> bool {
        self.kind == Kind::Table
            && self.name.matches(name, fold)
            && self.schema.as_ref().is_none_or(|s| s.matches(schema, fold))
    }

    /// The name this pattern spells out when it has no wildcard: `schema.table` or
    /// `table` (table patterns), the schema (schema patterns). For spelling hints.
    pub(crate) fn literal(&self) -> Option<(Option<String>, String)> {
        let schema = match &self.schema {
            Some(s) => Some(s.literal()?),
            None => None,
        };
        Some((schema, self.name.literal()?))
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Parses as a table pattern (`-t`), the common case; use [`Pattern::schema`] for `-n`.
impl FromStr for Pattern {
    type Err = PatternError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Pattern::table(s)
    }
}

/// Characters pg_dump hands to the regular-expression engine when they are outside
/// double quotes (besides `*`, `?`, `.` and `$`, which have their own meaning).
const REGEX_CHARS: &str = "|+()[{^\\";

/// Splits a pattern at unquoted dots into globs, folding, unquoting and translating
/// wildcards on the way.
fn split(text: &str) -> Result<Vec<Glob>, PatternError> {
    if text.is_empty() {
        return Err(PatternError::Empty);
    }
    let mut parts = vec![Glob(Vec::new())];
    let mut in_quotes = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let cur = &mut parts.last_mut().expect("never empty").0;
        match c {
            '"' if in_quotes && chars.peek() == Some(&'"') => {
                chars.next();
                cur.push(Token::Lit('"'));
            }
            '"' => in_quotes = !in_quotes,
            _ if in_quotes => cur.push(Token::Lit(c)),
            '*' => cur.push(Token::Any),
            '?' => cur.push(Token::One),
            '.' => parts.push(Glob(Vec::new())),
            'A'..='Z' => cur.push(Token::Lit(c.to_ascii_lowercase())),
            // `[]` is taken literally: it is far more likely an array type name.
            '[' if chars.peek() == Some(&']') => {
                chars.next();
                cur.extend([Token::Lit('['), Token::Lit(']')]);
            }
            _ if REGEX_CHARS.contains(c) => {
                return Err(PatternError::Regex {
                    pattern: text.into(),
                    ch: c,
                })
            }
            _ => cur.push(Token::Lit(c)),
        }
    }
    if in_quotes {
        return Err(PatternError::UnterminatedQuote {
            pattern: text.into(),
        });
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(p: &str) -> Pattern {
        Pattern::table(p).unwrap_or_else(|e| panic!("{p}: {e}"))
    }

    fn s(p: &str) -> Pattern {
        Pattern::schema(p).unwrap_or_else(|e| panic!("{p}: {e}"))
    }

    #[test]
    fn pattern_plain_names_match_exactly_in_any_schema() {
        let p = t("patients");
        assert!(p.matches_table("public", "patients"));
        assert!(p.matches_table("clinical", "patients"));
        assert!(!p.matches_table("public", "patients2"));
        assert!(!p.matches_table("public", "patient"));
        assert!(
            !p.matches_table("public", "my_patients"),
            "anchored at the start"
        );
        assert_eq!(p.to_string(), "patients");
    }

    #[test]
    fn pattern_unquoted_letters_fold_to_lower_case() {
        let p = t("Patients");
        assert!(p.matches_table("public", "patients"));
        assert!(!p.matches_table("public", "Patients"));
        let p = t("PUBLIC.PATIENTS");
        assert!(p.matches_table("public", "patients"));
        // Only ASCII folds, as for SQL identifiers in multibyte encodings.
        let p = t("Élan");
        assert!(p.matches_table("public", "Élan"));
        assert!(!p.matches_table("public", "élan"));
    }

    #[test]
    fn pattern_double_quotes_preserve_case_and_make_everything_literal() {
        let p = t("\"Patients\"");
        assert!(p.matches_table("public", "Patients"));
        assert!(!p.matches_table("public", "patients"));
        // Part of a pattern may be quoted: FOO"FOO"BAR is fooFOObar.
        assert!(t("FOO\"FOO\"BAR").matches_table("s", "fooFOObar"));
        // A quoted dot is part of the name, not a separator.
        let p = t("\"my.table\"");
        assert!(p.matches_table("public", "my.table"));
        assert!(!p.matches_table("my", "table"));
        let p = t("\"Mixed Case\".\"Order\"");
        assert!(p.matches_table("Mixed Case", "Order"));
        assert!(!p.matches_table("mixed case", "order"));
        // Wildcards inside quotes are literal.
        let p = t("\"a*b?\"");
        assert!(p.matches_table("public", "a*b?"));
        assert!(!p.matches_table("public", "axxbc"));
        // "" inside quotes is one quote: "FOO""BAR" is FOO"BAR.
        let p = t("\"FOO\"\"BAR\"");
        assert!(p.matches_table("public", "FOO\"BAR"));
        assert!(!p.matches_table("public", "foo\"bar"));
        assert!(t("\"we\"\"ird\"").matches_table("public", "we\"ird"));
        // Regular-expression characters are fine inside quotes.
        let p = t("\"a+b|(c)[d]{e}^\\\"");
        assert!(p.matches_table("public", "a+b|(c)[d]{e}^\\"));
    }

    #[test]
    fn pattern_star_and_question_mark_are_wildcards() {
        let p = t("vital*");
        assert!(p.matches_table("public", "vitals_samples"));
        assert!(p.matches_table("public", "vital"), "* matches nothing too");
        assert!(!p.matches_table("public", "avital"));
        let p = t("*_log*");
        assert!(p.matches_table("public", "audit_log"));
        assert!(p.matches_table("public", "medication_logs"));
        assert!(!p.matches_table("public", "audit"));
        let p = t("user?");
        assert!(p.matches_table("public", "users"));
        assert!(!p.matches_table("public", "user"));
        assert!(!p.matches_table("public", "userss"));
        // ? is one character, not one byte.
        assert!(t("caf?").matches_table("public", "café"));
        let p = t("a*b*c");
        assert!(p.matches_table("public", "abc"));
        assert!(p.matches_table("public", "aXbYbZc"));
        assert!(!p.matches_table("public", "aXbYcZ"));
        assert!(t("*").matches_table("any", "thing"));
        assert!(t("**").matches_table("any", ""));
    }

    #[test]
    fn pattern_dot_separates_schema_and_table() {
        let p = t("clinical.*");
        assert!(p.matches_table("clinical", "clinical_notes"));
        assert!(p.matches_table("clinical", "therapy_sessions"));
        assert!(!p.matches_table("public", "patients"));
        let p = t("*.patients");
        assert!(p.matches_table("public", "patients"));
        assert!(p.matches_table("clinical", "patients"));
        let p = t("pub*.p?tients");
        assert!(p.matches_table("public", "patients"));
        assert!(!p.matches_table("clinical", "patients"));
    }

    #[test]
    fn pattern_dollar_and_empty_brackets_are_literal() {
        let p = t("price$");
        assert!(p.matches_table("public", "price$"));
        assert!(!p.matches_table("public", "price"));
        assert!(t("a$b").matches_table("public", "a$b"));
        assert!(t("int[]").matches_table("public", "int[]"));
        assert!(t("a]").matches_table("public", "a]"));
        assert!(t("a}").matches_table("public", "a}"));
        assert!(t("a-b c").matches_table("public", "a-b c"));
    }

    #[test]
    fn pattern_regular_expression_notation_outside_quotes_is_refused() {
        for (p, ch) in [
            ("log_[0-9]", '['),
            ("a+", '+'),
            ("a|b", '|'),
            ("(ab)", '('),
            ("a)", ')'),
            ("a{2}", '{'),
            ("^a", '^'),
            ("a\\d", '\\'),
        ] {
            let e = Pattern::table(p).unwrap_err();
            assert_eq!(
                e,
                PatternError::Regex {
                    pattern: p.into(),
                    ch
                },
                "{p}"
            );
            assert!(e.to_string().contains("double quotes"), "{e}");
            assert!(Pattern::schema(p).is_err(), "{p}");
        }
    }

    #[test]
    fn pattern_too_many_dots_and_empty_parts_are_refused() {
        let e = Pattern::table("heart.public.patients").unwrap_err();
        assert!(matches!(e, PatternError::TooManyTableDots { .. }), "{e:?}");
        assert!(e.to_string().contains("database.schema.table"), "{e}");
        assert!(Pattern::table("a.b.c.d").is_err());
        assert_eq!(Pattern::table(""), Err(PatternError::Empty));
        assert_eq!(Pattern::schema(""), Err(PatternError::Empty));
        assert!(matches!(
            Pattern::table(".patients"),
            Err(PatternError::EmptyPart { .. })
        ));
        assert!(matches!(
            Pattern::table("public."),
            Err(PatternError::EmptyPart { .. })
        ));
        assert!(matches!(
            Pattern::table("\"unterminated"),
            Err(PatternError::UnterminatedQuote { .. })
        ));
        // Quoted dots do not count.
        assert!(Pattern::table("\"a.b\".\"c.d\"").is_ok());
    }

    #[test]
    fn pattern_for_schemas_has_no_dot() {
        let p = s("clinical");
        assert!(p.matches_schema("clinical"));
        assert!(!p.matches_schema("public"));
        assert!(!p.matches_table("clinical", "clinical"), "a schema pattern");
        assert!(!t("clinical").matches_schema("clinical"), "a table pattern");
        assert!(s("CLIN*").matches_schema("clinical"));
        assert!(s("p?blic").matches_schema("public"));
        assert!(s("\"Mixed Case\"").matches_schema("Mixed Case"));
        assert!(s("\"a.b\"").matches_schema("a.b"));
        let e = Pattern::schema("heart.clinical").unwrap_err();
        assert!(matches!(e, PatternError::SchemaDot { .. }), "{e:?}");
        assert!(e.to_string().contains("database.schema"), "{e}");
    }

    #[test]
    fn pattern_case_insensitive_matching_and_literals_serve_hints() {
        let p = t("\"Patients\"");
        assert!(p.matches_table_ignoring_case("public", "patients"));
        assert_eq!(p.literal(), Some((None, "Patients".into())));
        assert_eq!(
            t("public.patiens").literal(),
            Some((Some("public".into()), "patiens".into()))
        );
        assert_eq!(t("pat*").literal(), None);
        assert!(s("\"Clinical\"").matches_schema_ignoring_case("clinical"));
        assert_eq!("x.y".parse::<Pattern>().unwrap(), t("x.y"));
    }
}
