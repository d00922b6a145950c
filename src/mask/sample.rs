//! The survey behind `mask check` and `--mask`'s refusal: every column of the chosen
//! tables that looks like an identifier, by name and by a sample of the values in the
//! table's first chunk, with what the rules do to it.

use futures::{StreamExt, TryStreamExt};
use serde::Serialize;

use super::detect::{by_name, by_values, fitted_default, unique_columns};
use super::plan::{value_kind, Masking};
use super::rules::Rules;
use super::transform::{Transform, ValueKind};
use super::MaskError;
use crate::archive::{BackupReader, CopyFormat};
use crate::catalog::Table;
use crate::pgcopy::{tuples, value};
use crate::plan::scope::Scope;

/// Rows of a table's first chunk whose values are looked at.
const SAMPLE_ROWS: usize = 200;

/// A column that looks like an identifier.
#[derive(Debug, Clone, Serialize)]
pub struct Flagged {
    pub table: String,
    pub column: String,
    #[serde(rename = "type")]
    pub type_sql: String,
    /// Why it was flagged (its name, its values).
    pub why: Vec<String>,
    /// What the rules do to it; `None`: no rule covers it.
    pub covered_by: Option<String>,
    /// The transform a starting rules file gives it.
    #[serde(skip)]
    pub suggested: Transform,
    /// The column pattern naming exactly this column.
    #[serde(skip)]
    pub pattern: String,
    pub suggestion: String,
}

/// First chunks fetched at once while sampling.
const SAMPLING_FETCHES: usize = 8;

/// Surveys the scope's tables. `masking` says what the rules cover; without rules
/// nothing is covered. Values are sampled only from columns no rule masks.
pub async fn survey(
    reader: &BackupReader,
    scope: &Scope,
    masking: Option<&Masking>,
) -> Result<Vec<Flagged>, MaskError> {
    let cat = &scope.catalog;
    let covers = |t: &Table, c: &str| masking.and_then(|m| m.covers(t, c)).map(str::to_string);
    // Per table: its copied columns' kinds, and which of them to sample.
    let plans: Vec<(Vec<ValueKind>, Vec<usize>)> = cat
        .tables
        .iter()
        .map(|t| {
            let kinds: Vec<ValueKind> = t.copy_columns().map(|c| value_kind(cat, c)).collect();
            let sample_at = t
                .copy_columns()
                .enumerate()
                // A `keep` is looked behind too: a wildcard one is named with what it
                // keeps.
                .filter(|(k, c)| {
                    matches!(
                        kinds[*k],
                        ValueKind::Text { .. } | ValueKind::Json | ValueKind::Jsonb
                    ) && covers(t, &c.name).is_none_or(|c| c.starts_with("keep"))
                })
                .map(|(k, _)| k)
                .collect();
            (kinds, sample_at)
        })
        .collect();
    let samples: Vec<Vec<Vec<String>>> = futures::stream::iter(cat.tables.iter().enumerate())
        .map(|(i, t)| {
            let (kinds, sample_at) = &plans[i];
            async move {
                if sample_at.is_empty() || !t.has_data() {
                    Ok(vec![Vec::new(); kinds.len()])
                } else {
                    sample(reader, t, scope.table_numbers[i], kinds).await
                }
            }
        })
        .buffered(SAMPLING_FETCHES)
        .try_collect()
        .await?;
    let mut out = Vec::new();
    for (i, t) in cat.tables.iter().enumerate() {
        let unique = unique_columns(t);
        let (kinds, sample_at) = &plans[i];
        for (k, c) in t.copy_columns().enumerate() {
            let kind = &kinds[k];
            let named = by_name(t, c, kind);
            let valued = if sample_at.contains(&k) {
                by_values(kind, &samples[i][k])
            } else {
                None
            };
            let Some(first) = named.clone().or(valued.clone()) else {
                continue;
            };
            let suggested = fitted_default(&first, c, kind, unique.contains(&c.name));
            out.push(Flagged {
                table: t.name.plain(),
                column: c.name.clone(),
                type_sql: c.type_sql.clone(),
                why: named.into_iter().chain(valued).map(|f| f.why).collect(),
                covered_by: covers(t, &c.name),
                pattern: [&t.name.schema, &t.name.name, &c.name]
                    .map(|p| quote_part(p))
                    .join("."),
                suggestion: suggested.describe(),
                suggested,
            });
        }
    }
    Ok(out)
}

/// The non-null values, as text, of the sampled kinds of columns in the table's
/// first chunk; empty for others and for tables copied in text format.
async fn sample(
    reader: &BackupReader,
    table: &Table,
    table_no: u32,
    kinds: &[ValueKind],
) -> Result<Vec<Vec<String>>, MaskError> {
    let width = kinds.len();
    let mut out = vec![Vec::new(); width];
    let Some(record) = reader.manifest().table(table_no) else {
        return Ok(out);
    };
    let Some(chunk) = record.chunks.first() else {
        return Ok(out);
    };
    if record.copy_format == CopyFormat::Text {
        return Ok(out);
    }
    let fetched = reader.fetch_chunk(record, chunk).await?;
    let data = reader.open_chunk(record, chunk, fetched)?;
    for tuple in tuples(&data).take(SAMPLE_ROWS) {
        let tuple = tuple.map_err(|source| MaskError::Framing {
            table: table.name.plain(),
            source,
        })?;
        for (k, v) in tuple.enumerate().take(width) {
            let text = match (&kinds[k], v) {
                (ValueKind::Text { .. } | ValueKind::Json, Some(v)) => value::text(v).ok(),
                (ValueKind::Jsonb, Some(v)) => value::jsonb(v).ok(),
                _ => None,
            };
            if let Some(s) = text {
                out[k].push(s.to_string());
            }
        }
    }
    Ok(out)
}

/// Flagged columns that a `keep` rule with a wildcard acknowledges (`columns = "*"`):
/// named, since a blanket `keep` silences every check it covers.
pub fn wildcard_keeps(flagged: &[Flagged], rules: &Rules) -> Vec<String> {
    let mut by_rule: std::collections::BTreeMap<usize, Vec<String>> = Default::default();
    for f in flagged {
        let Some((schema, table)) = f.table.split_once('.') else {
            continue;
        };
        let Some(rule) = rules.rule_for(schema, table, &f.column) else {
            continue;
        };
        let wild = rule.columns.iter().any(|p| p.as_str().contains(['*', '?']));
        if wild && rule.transform == Transform::Keep {
            by_rule
                .entry(rule.number)
                .or_default()
                .push(format!("{}.{}", f.table, f.column));
        }
    }
    by_rule
        .into_iter()
        .map(|(n, cols)| {
            format!(
                "rule {n} keeps {} column(s) that look like identifiers through a wildcard: {}",
                cols.len(),
                cols.join(", ")
            )
        })
        .collect()
}

/// A starting rules file: one rule per flagged column, with its suggested transform
/// and why it was flagged, for the admin to review.
pub fn starting_rules(flagged: &[Flagged]) -> String {
    let mut out = String::from(
        "# pgbunker masking rules, written by `pgbunker mask check --write-rules`.\n\
         # Review every rule: the flags come from column names and sampled values, and a\n\
         # column this file does not name is restored as it is.\n\
         # Transforms: keep, null, redact, hash, fake (kind = first_name, last_name,\n\
         # full_name, email, phone, address, city), shift_date (by = \"column\",\n\
         # max_days = 365), year_only, generalize (kind = zip3, age), format_preserving.\n\n\
         # Large objects cannot be masked: \"drop\" leaves them out, \"keep\" carries them.\n\
         large_objects = \"drop\"\n",
    );
    for f in flagged {
        out.push_str(&format!(
            "\n# {}: {}\n[[rule]]\n",
            f.type_sql,
            f.why.join("; ")
        ));
        let rule = RuleOut {
            columns: f.pattern.clone(),
            transform: f.suggested.clone(),
        };
        out.push_str(&toml::to_string(&rule).expect("rules serialize"));
    }
    out
}

#[derive(Serialize)]
struct RuleOut {
    columns: String,
    #[serde(flatten)]
    transform: Transform,
}

/// A name as a pattern matches it exactly: quoted unless it is plain lower case.
fn quote_part(name: &str) -> String {
    if name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        name.into()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}
