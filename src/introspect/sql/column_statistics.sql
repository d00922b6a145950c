-- pg_stats rows of the given tables, as pg_restore_attribute_stats takes them: every
-- value in its text form, read with the fixed settings of text COPY. The range
-- histograms, from PostgreSQL 17, come in at the end of the list.
SELECT c.oid, s.attname::text AS attname, s.inherited::text AS inherited,
       s.null_frac::text AS null_frac, s.avg_width::text AS avg_width,
       s.n_distinct::text AS n_distinct,
       s.most_common_vals::text AS most_common_vals,
       s.most_common_freqs::text AS most_common_freqs,
       s.histogram_bounds::text AS histogram_bounds,
       s.correlation::text AS correlation,
       s.most_common_elems::text AS most_common_elems,
       s.most_common_elem_freqs::text AS most_common_elem_freqs,
       s.elem_count_histogram::text AS elem_count_histogram{range}
FROM pg_catalog.pg_stats s
JOIN pg_catalog.pg_namespace n ON n.nspname = s.schemaname
JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = s.tablename
WHERE c.oid = ANY($1)
ORDER BY c.oid, s.attname, s.inherited
