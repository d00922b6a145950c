//! Planner statistics carried from the source, as the statements that give them to a
//! PostgreSQL 18+ target (`pg_restore_relation_stats`, `pg_restore_attribute_stats`,
//! as pg_dump 18's `--statistics` writes them): the restored table is ready to plan
//! with at once, without reading it all again in ANALYZE.

use crate::catalog::text_session;
use crate::catalog::{quote_literal, QualName, Statistics};

/// The first server version with the import functions.
pub const IMPORT_FROM_VERSION: i32 = 180000;

/// The type of each argument the import functions take; any other name in a
/// manifest is left out.
const ARGUMENT_TYPES: [(&str, &str); 19] = [
    ("relpages", "integer"),
    ("reltuples", "real"),
    ("relallvisible", "integer"),
    ("relallfrozen", "integer"),
    ("attname", "text"),
    ("inherited", "boolean"),
    ("null_frac", "real"),
    ("avg_width", "integer"),
    ("n_distinct", "real"),
    ("most_common_vals", "text"),
    ("most_common_freqs", "real[]"),
    ("histogram_bounds", "text"),
    ("correlation", "real"),
    ("most_common_elems", "text"),
    ("most_common_elem_freqs", "real[]"),
    ("elem_count_histogram", "real[]"),
    ("range_length_histogram", "text"),
    ("range_empty_frac", "real"),
    ("range_bounds_histogram", "text"),
];

/// One transaction (a batch of simple statements) that imports `stats` into `table`;
/// each call returns true when the server took every value. The values were written
/// under text COPY's settings, which the transaction sets again.
pub fn import_statistics(table: &QualName, stats: &Statistics, source_version: i32) -> String {
    let call = |function: &str, values: &[(String, String)]| {
        let mut args = vec![
            format!("'version', {source_version}::integer"),
            format!("'schemaname', {}", quote_literal(&table.schema)),
            format!("'relname', {}", quote_literal(&table.name)),
        ];
        for (name, value) in values {
            if let Some((_, ty)) = ARGUMENT_TYPES.iter().find(|(n, _)| n == name) {
                args.push(format!(
                    "{}, {}::{ty}",
                    quote_literal(name),
                    quote_literal(value)
                ));
            }
        }
        format!("SELECT pg_catalog.{function}({})", args.join(", "))
    };
    let mut sql = vec!["BEGIN".to_owned(), text_session(true)];
    sql.push(call("pg_restore_relation_stats", &stats.relation));
    sql.extend(
        stats
            .columns
            .iter()
            .map(|c| call("pg_restore_attribute_stats", c)),
    );
    sql.push("COMMIT".into());
    sql.join(";\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_quoted_typed_and_unknown_names_left_out() {
        let stats = Statistics {
            relation: vec![
                ("relpages".into(), "11".into()),
                ("reltuples".into(), "1000".into()),
                ("from_the_future".into(), "1".into()),
            ],
            columns: vec![vec![
                ("attname".into(), "it's".into()),
                ("inherited".into(), "false".into()),
                ("most_common_vals".into(), "{a,b}".into()),
            ]],
        };
        let sql = import_statistics(&QualName::new("public", "t"), &stats, 150004);
        assert!(sql.starts_with("BEGIN;\nSET LOCAL DateStyle"), "{sql}");
        assert!(sql.contains(
            "SELECT pg_catalog.pg_restore_relation_stats('version', 150004::integer, \
             'schemaname', 'public', 'relname', 't', 'relpages', '11'::integer, \
             'reltuples', '1000'::real)"
        ));
        assert!(sql.contains("'attname', 'it''s'::text"), "{sql}");
        assert!(sql.contains("'most_common_vals', '{a,b}'::text"), "{sql}");
        assert!(!sql.contains("from_the_future"));
        assert!(sql.ends_with("COMMIT"));
    }
}
