//! Everything after pre-data as one graph of steps over the sessions: a table's keys
//! and indexes are built as soon as its rows are in, while other tables still load;
//! a foreign key follows once its tables have their keys (added NOT VALID one after
//! another, then checked at once); ANALYZE of a table (or, on PostgreSQL 18+, the
//! import of its statistics) once nothing else locks it; the rest of post-data. Among
//! the steps that may start, the largest table's goes first, so the longest index
//! builds begin early instead of after a queue of small ones.

use std::sync::{Arc, Mutex};

use tokio_postgres::{Client, SimpleQueryMessage};

use super::data::{self, Tables};
use super::parallel::{reason, BUILD_SETTINGS};
use super::{first_line, LoadError, LoadedTable};
use crate::archive::BackupReader;
use crate::catalog::TableKind;
use crate::ddl::{import_statistics, PostData};
use crate::pg::{run_graph, ConnSpec, Node, PgError};
use crate::plan::scope::Scope;
use crate::progress::{Progress, TableTally};

/// What runs after pre-data.
pub(super) struct Steps {
    /// The data section, and how it treats the tables.
    pub data: Option<Tables>,
    pub post_data: Option<PostData>,
    pub analyze: bool,
    /// The target takes the statistics the backup carries (PostgreSQL 18+): a table
    /// that has them gets them instead of ANALYZE.
    pub import_statistics: bool,
    pub mask: Option<Arc<crate::mask::Masking>>,
}

/// What the steps left.
pub(super) struct Ran {
    /// One entry per loaded table.
    pub tables: Vec<LoadedTable>,
    /// Post-data statements that failed, with the server's message.
    pub failed: Vec<(String, String)>,
    /// `ANALYZE` statements that failed, with the server's message.
    pub analyze_failed: Vec<(String, String)>,
}

enum Step {
    Load(data::Unit),
    /// Empties a split table whose load failed in part.
    Settle(usize),
    /// Statements run in order on one session; one that fails is reported and the
    /// others still run.
    Statements(Vec<String>),
    /// Statements sent as one batch: one round trip and one transaction instead of
    /// one each. Then ANALYZE of the table `analyze` names, unless its rows failed to
    /// load. If the batch fails, each statement runs again by itself, so the failure
    /// is named and the others still take effect.
    Batch {
        statements: Vec<String>,
        analyze: Option<usize>,
    },
    Analyze(usize),
}

enum Done {
    Loaded(Vec<LoadedTable>),
    Emptied(usize),
    Failed(Vec<(String, String)>),
    AnalyzeFailed(Option<(String, String)>),
    Finished {
        failed: Vec<(String, String)>,
        analyze_failed: Option<(String, String)>,
    },
}

/// Adds nodes to a graph and remembers their positions.
struct Graph {
    nodes: Vec<Node<Step>>,
}

impl Graph {
    fn add(&mut self, item: Step, after: Vec<usize>, cost: u64) -> usize {
        self.add_holding(item, after, Vec::new(), cost)
    }

    fn add_holding(
        &mut self,
        item: Step,
        after: Vec<usize>,
        holds: Vec<usize>,
        cost: u64,
    ) -> usize {
        self.nodes.push(Node {
            item,
            after,
            holds,
            cost,
        });
        self.nodes.len() - 1
    }
}

/// Costs that put a step ahead of any table's: the foreign keys' additions hold up
/// every check after them.
const URGENT: u64 = u64::MAX / 2;

/// Added to the cost of a table's keys and indexes: a table that has its rows gets
/// them before another table starts loading, so the foreign keys that wait for them
/// (on a thousand small tables, one long line of additions to the table they all
/// reference) can start early instead of after every load.
const KEYS: u64 = u64::MAX / 4;

/// Added to the cost of loading a table that foreign keys reference: the additions
/// need its keys too.
const REFERENCED: u64 = u64::MAX / 8;

/// At most this many foreign keys of small tables are added in one batch.
const FOREIGN_KEY_BATCH: usize = 16;

/// The graph, with how many parts each table loads and the raw bytes they hold.
fn graph(reader: &BackupReader, scope: &Scope, steps: &Steps) -> (Graph, Vec<u32>, u64) {
    let cat = &scope.catalog;
    let n = cat.tables.len();
    let mut g = Graph { nodes: Vec::new() };
    let raw = |i: usize| {
        reader
            .manifest()
            .table(scope.table_numbers[i])
            .map_or(0, |t| t.raw_bytes)
    };
    // What a table's later steps wait for: its rows, whole or emptied.
    let mut loaded: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut parts_of = vec![0u32; n];
    let mut bytes = 0u64;
    let positions = cat.table_positions();
    // How many foreign keys reference each table: their additions all wait for its
    // keys.
    let mut referenced = vec![0u64; n];
    if steps.post_data.is_some() {
        for t in &cat.tables {
            for r in t.referenced_tables().filter_map(|r| positions.get(r)) {
                referenced[*r] += 1;
            }
        }
    }
    // Among tables alike, those more foreign keys wait for first, then the larger.
    let urgency =
        |t: usize, bytes: u64| (referenced[t].min(0xffff) << 44) | bytes.min((1 << 44) - 1);
    if let Some(mode) = steps.data {
        for unit in data::units(reader, scope, mode) {
            bytes += unit.raw_bytes;
            for (t, parts) in &unit.tables {
                parts_of[*t] += parts.len() as u32;
            }
            let tables: Vec<usize> = unit.tables.iter().map(|t| t.0).collect();
            let cost = match tables.iter().copied().max_by_key(|&t| referenced[t]) {
                Some(t) if referenced[t] > 0 => REFERENCED + urgency(t, unit.raw_bytes),
                _ => unit.raw_bytes,
            };
            let id = g.add(Step::Load(unit), Vec::new(), cost);
            for t in tables {
                loaded[t].push(id);
            }
        }
        if mode == Tables::Fresh {
            for t in (0..n).filter(|&t| parts_of[t] > 1) {
                let id = g.add(Step::Settle(t), loaded[t].clone(), raw(t));
                loaded[t] = vec![id];
            }
        }
    }
    let mut before_analyze = loaded.clone();
    // Tables analyzed with their keys.
    let mut analyzed = vec![false; n];
    let analyzed_after_rest = tables_analyze_reads_in_rest(cat, &positions);
    if let Some(post) = &steps.post_data {
        // What a table's constraints wait for: its rows and its keys.
        let mut keyed = loaded.clone();
        let mut indexes = Vec::new();
        // Partitions and inheritance children are locked by their parent's statements
        // too, beyond the tables an addition names; and ANALYZE of a parent samples its
        // children, so it waits for theirs.
        let in_hierarchy: Vec<bool> = {
            let mut parents = std::collections::HashSet::new();
            for t in &cat.tables {
                parents.extend(t.inherits.iter());
                parents.extend(t.partition_of.as_ref().map(|p| &p.parent));
            }
            cat.tables
                .iter()
                .map(|t| {
                    t.kind != TableKind::Ordinary
                        || t.partition_of.is_some()
                        || !t.inherits.is_empty()
                        || parents.contains(&t.name)
                })
                .collect()
        };
        // A large table's indexes are built in parallel, each by itself; a small
        // table's are one step with its ANALYZE, where nothing set later changes what
        // ANALYZE reads and it reads no other table's rows.
        let analyze_with_keys = |t: usize| {
            steps.analyze
                && steps.data.is_some()
                && !in_hierarchy[t]
                && !analyzed_after_rest[t]
                && !(steps.import_statistics && cat.tables[t].statistics.is_some())
        };
        let mut small: Vec<Option<Vec<String>>> = (0..n)
            .map(|t| (raw(t) < data::SMALL_TABLE_BYTES && parts_of[t] <= 1).then(Vec::new))
            .collect();
        for (t, sql) in &post.indexes {
            if let Some(batch) = &mut small[*t] {
                batch.push(sql.clone());
                continue;
            }
            let id = g.add(
                Step::Statements(vec![sql.clone()]),
                loaded[*t].clone(),
                KEYS + urgency(*t, raw(*t)),
            );
            keyed[*t].push(id);
            indexes.push(id);
        }
        for (t, batch) in small.into_iter().enumerate() {
            let Some(statements) = batch else { continue };
            let analyze = analyze_with_keys(t);
            if statements.is_empty() && !analyze {
                continue;
            }
            analyzed[t] = analyze;
            let step = Step::Batch {
                statements,
                analyze: analyze.then_some(t),
            };
            let id = g.add(step, loaded[t].clone(), KEYS + urgency(t, raw(t)));
            keyed[t].push(id);
            indexes.push(id);
        }
        let mut constraints = indexes.clone();
        if !post.attach.is_empty() {
            let attach = g.add(Step::Statements(post.attach.clone()), indexes, URGENT);
            keyed = vec![vec![attach]; n];
            constraints = vec![attach];
        }
        for (gi, group) in post.constraint_groups.iter().enumerate() {
            // Each addition as soon as its table and the tables it references have
            // their keys, holding those tables: additions that share a table run one
            // at a time (each locks both of its tables, and two waiting on each other
            // would deadlock), the others at once. On a thousand tables referencing
            // one, the additions to it (each slower than the last, as PostgreSQL
            // rereads the referenced table's triggers) run one after another in the
            // order their tables load, beside the others' loads and keys. A group
            // that reaches partitions or inheritance children holds the whole group,
            // one addition after another: those lock tables they do not name.
            let whole_group = group.add.iter().any(|(t, _)| {
                in_hierarchy[*t]
                    || cat.tables[*t]
                        .referenced_tables()
                        .filter_map(|r| positions.get(r))
                        .any(|&r| in_hierarchy[r])
            });
            // A small table's additions that reference the same tables go in batches:
            // one round trip and one transaction for several is under half the
            // server's time of one each (PostgreSQL rebuilds the referenced table's
            // trigger list fewer times).
            let references = |t: usize| -> Vec<usize> {
                let mut r: Vec<usize> = cat.tables[t]
                    .referenced_tables()
                    .filter_map(|r| positions.get(r).copied())
                    .collect();
                r.sort_unstable();
                r.dedup();
                r
            };
            let mut by_target: std::collections::BTreeMap<Vec<usize>, Vec<(usize, String)>> =
                Default::default();
            let mut alone: Vec<(usize, String)> = Vec::new();
            for (t, sql) in &group.add {
                if whole_group || raw(*t) >= data::SMALL_TABLE_BYTES {
                    alone.push((*t, sql.clone()));
                } else {
                    by_target
                        .entry(references(*t))
                        .or_default()
                        .push((*t, sql.clone()));
                }
            }
            // Additions that share their referenced tables with no other go in batches
            // of their own kind, in the order ddl gives.
            let (shared, single): (Vec<_>, Vec<_>) =
                by_target.into_values().partition(|adds| adds.len() > 1);
            let single: Vec<(usize, String)> = single.into_iter().flatten().collect();
            let mut batches: Vec<(Vec<usize>, Vec<String>)> = Vec::new();
            for adds in shared.iter().chain(std::iter::once(&single)) {
                for chunk in adds.chunks(FOREIGN_KEY_BATCH) {
                    let (owners, statements) = chunk.iter().cloned().unzip();
                    batches.push((owners, statements));
                }
            }
            // What an addition waits for and holds: its tables' keys, and its tables
            // (the whole group's, where that reaches partitions).
            let mut add = |g: &mut Graph, step: Step, tables: Vec<usize>, after: Vec<usize>| {
                let mut after: Vec<usize> = tables
                    .iter()
                    .flat_map(|&r| keyed[r].iter().copied())
                    .chain(after)
                    .collect();
                after.sort_unstable();
                after.dedup();
                let mut holds = if whole_group {
                    vec![n + gi]
                } else {
                    tables.clone()
                };
                holds.sort_unstable();
                holds.dedup();
                let id = g.add_holding(step, after, holds, URGENT);
                for r in tables {
                    before_analyze[r].push(id);
                }
                constraints.push(id);
                id
            };
            for (owners, statements) in batches {
                let tables: Vec<usize> = owners
                    .iter()
                    .flat_map(|&t| std::iter::once(t).chain(references(t)))
                    .collect();
                let step = Step::Batch {
                    statements,
                    analyze: None,
                };
                add(&mut g, step, tables, Vec::new());
            }
            // A large table's additions one after another, in the order ddl gives.
            let mut last_of = std::collections::HashMap::new();
            for (t, sql) in alone {
                let tables: Vec<usize> = std::iter::once(t).chain(references(t)).collect();
                let after = last_of.get(&t).copied().into_iter().collect();
                let id = add(&mut g, Step::Statements(vec![sql]), tables, after);
                last_of.insert(t, id);
            }
            for (t, sql) in &group.validate {
                let after = last_of.get(t).copied().into_iter().collect();
                let id = g.add(Step::Statements(vec![sql.clone()]), after, raw(*t));
                before_analyze[*t].push(id);
                constraints.push(id);
            }
        }
        let rest = g.add(Step::Statements(post.rest.clone()), constraints, URGENT);
        // ANALYZE of a table runs once nothing else will lock it, while other tables'
        // keys are still built: after its keys and every foreign key on it or
        // pointing at it. The rest sets index statistics targets and creates extended
        // statistics objects, which ANALYZE reads: their tables wait for it.
        for (t, after) in before_analyze.iter_mut().enumerate() {
            after.extend(&keyed[t]);
            if analyzed_after_rest[t] {
                after.push(rest);
            }
            after.sort_unstable();
            after.dedup();
        }
    }
    if steps.analyze && steps.data.is_some() {
        for (t, after) in before_analyze.into_iter().enumerate() {
            if !analyzed[t] {
                g.add(Step::Analyze(t), after, raw(t));
            }
        }
    }
    (g, parts_of, bytes)
}

/// By table position: whether post-data's rest sets something ANALYZE of the table
/// reads (an index's statistics target, an extended statistics object on it).
fn tables_analyze_reads_in_rest(
    cat: &crate::catalog::Catalog,
    positions: &std::collections::HashMap<&crate::catalog::QualName, usize>,
) -> Vec<bool> {
    let mut out: Vec<bool> = cat
        .tables
        .iter()
        .map(|t| t.indexes.iter().any(|i| !i.statistics.is_empty()))
        .collect();
    for o in cat.objects.iter().filter(|o| o.kind == "statistics object") {
        if let Some(&t) = o.table.as_ref().and_then(|name| positions.get(name)) {
            out[t] = true;
        }
    }
    out
}

/// Runs the steps over at most `jobs` sessions.
pub(super) async fn run(
    target: &ConnSpec,
    reader: &BackupReader,
    scope: &Arc<Scope>,
    steps: Steps,
    jobs: usize,
    progress: Arc<dyn Progress>,
) -> Result<Ran, LoadError> {
    let (graph, parts_of, bytes) = graph(reader, scope, &steps);
    let left = Arc::new(TableTally::new(parts_of));
    if steps.data.is_some() {
        progress.start("restore", left.tables(), bytes);
    }
    // Tables whose rows did not load: their split parts are emptied, and ANALYZE
    // leaves them alone.
    let failed_tables = Arc::new(Mutex::new(std::collections::HashSet::new()));
    let statements = graph
        .nodes
        .iter()
        .map(|n| match &n.item {
            Step::Statements(s) => s.len() as u64,
            Step::Batch {
                statements,
                analyze,
            } => statements.len() as u64 + u64::from(analyze.is_some()),
            Step::Analyze(_) => 1,
            Step::Load(_) | Step::Settle(_) => 0,
        })
        .sum();
    if statements > 0 {
        progress.steps(statements);
    }
    let setup = |client: Arc<Client>| async move {
        client
            .batch_execute(&format!("SET synchronous_commit = off; {BUILD_SETTINGS}"))
            .await
            .map_err(|e| PgError::query("configure the session", e))?;
        Ok::<_, LoadError>(())
    };
    let import = steps.import_statistics;
    let mask = steps.mask.clone();
    let (s, r, p) = (scope.clone(), reader.clone(), progress.clone());
    let work = move |client: Arc<Client>, step: Step| {
        let (scope, reader, progress) = (s.clone(), r.clone(), p.clone());
        let mask = mask.clone();
        let (failed_tables, left) = (failed_tables.clone(), left.clone());
        async move {
            let cat = &scope.catalog;
            Ok::<_, LoadError>(match step {
                Step::Load(unit) => {
                    let tables: Vec<(usize, u32)> = unit
                        .tables
                        .iter()
                        .map(|(t, p)| (*t, p.len() as u32))
                        .collect();
                    let out = data::load_unit(
                        &client,
                        unit,
                        &scope,
                        &reader,
                        mask.as_deref(),
                        progress.as_ref(),
                    )
                    .await;
                    if out.iter().any(|t| t.error.is_some()) {
                        failed_tables
                            .lock()
                            .expect("lock")
                            .extend(tables.iter().map(|t| t.0));
                    }
                    for (t, parts) in tables {
                        let label = cat.tables[t].name.plain();
                        let rows: u64 =
                            out.iter().filter(|l| l.name == label).map(|l| l.rows).sum();
                        if let Some(rows) = left.done(t, parts, rows) {
                            progress.table_finished(&label, rows);
                        }
                    }
                    Done::Loaded(out)
                }
                Step::Settle(t) => {
                    if !failed_tables.lock().expect("lock").contains(&t) {
                        return Ok(Done::Failed(Vec::new()));
                    }
                    data::empty(&client, &cat.tables[t]).await?;
                    Done::Emptied(t)
                }
                Step::Statements(group) => {
                    Done::Failed(run_each(&client, group, progress.as_ref(), false).await?)
                }
                Step::Batch {
                    statements,
                    analyze,
                } => {
                    let sql = |t: usize| format!("ANALYZE {}", cat.tables[t].name);
                    // A table whose rows failed to load is left alone, and counted.
                    let analyze = match analyze {
                        Some(t) if failed_tables.lock().expect("lock").contains(&t) => {
                            progress.step_finished(&sql(t));
                            None
                        }
                        a => a.map(sql),
                    };
                    let labels: Vec<String> = statements
                        .iter()
                        .chain(&analyze)
                        .map(|s| first_line(s))
                        .collect();
                    for l in &labels {
                        progress.step_started(l);
                    }
                    let batch = statements
                        .iter()
                        .chain(&analyze)
                        .map(String::as_str)
                        .collect::<Vec<_>>()
                        .join(";\n");
                    match client.batch_execute(&batch).await {
                        Ok(()) => {
                            for l in &labels {
                                progress.step_finished(l);
                            }
                            Done::Finished {
                                failed: Vec::new(),
                                analyze_failed: None,
                            }
                        }
                        Err(e) if client.is_closed() => {
                            return Err(PgError::query("run post-data", e).into())
                        }
                        Err(_) => {
                            let p = progress.as_ref();
                            let failed = run_each(&client, statements, p, true).await?;
                            let analyze_failed = match analyze {
                                Some(sql) => run_each(&client, vec![sql], p, true).await?.pop(),
                                None => None,
                            };
                            Done::Finished {
                                failed,
                                analyze_failed,
                            }
                        }
                    }
                }
                Step::Analyze(t) => {
                    let table = &cat.tables[t];
                    let sql = format!("ANALYZE {}", table.name);
                    if failed_tables.lock().expect("lock").contains(&t) {
                        progress.step_finished(&sql);
                        return Ok(Done::AnalyzeFailed(None));
                    }
                    progress.step_started(&sql);
                    if let Some(stats) = table.statistics.as_ref().filter(|_| import) {
                        let import = import_statistics(&table.name, stats, cat.server_version_num);
                        // Each call answers whether the server took every value; one
                        // that did not leaves the table to ANALYZE.
                        let taken = client.simple_query(&import).await.map(|messages| {
                            messages.iter().all(|m| match m {
                                SimpleQueryMessage::Row(r) => r.get(0) == Some("t"),
                                _ => true,
                            })
                        });
                        match taken {
                            Ok(true) => {
                                progress.step_finished(&sql);
                                return Ok(Done::AnalyzeFailed(None));
                            }
                            Err(e) if client.is_closed() => {
                                return Err(PgError::query("import statistics", e).into())
                            }
                            Ok(false) | Err(_) => {
                                // The import's transaction ends (an error left it
                                // open); ANALYZE then computes everything afresh.
                                let _ = client.batch_execute("ROLLBACK").await;
                            }
                        }
                    }
                    let done = client.batch_execute(&sql).await;
                    progress.step_finished(&sql);
                    match done {
                        Ok(()) => Done::AnalyzeFailed(None),
                        Err(e) if client.is_closed() => {
                            return Err(PgError::query("run ANALYZE", e).into())
                        }
                        Err(e) => Done::AnalyzeFailed(Some((sql, reason(&e)))),
                    }
                }
            })
        }
    };
    let done = run_graph(target.into(), jobs, graph.nodes, setup, work).await;
    progress.finish();
    let mut ran = Ran {
        tables: Vec::new(),
        failed: Vec::new(),
        analyze_failed: Vec::new(),
    };
    let mut parts = Vec::new();
    let mut emptied = Vec::new();
    for d in done? {
        match d {
            Done::Loaded(t) => parts.extend(t),
            Done::Emptied(t) => emptied.push(scope.catalog.tables[t].name.plain()),
            Done::Failed(f) => ran.failed.extend(f),
            Done::AnalyzeFailed(f) => ran.analyze_failed.extend(f),
            Done::Finished {
                failed,
                analyze_failed,
            } => {
                ran.failed.extend(failed);
                ran.analyze_failed.extend(analyze_failed);
            }
        }
    }
    ran.tables = data::by_table(parts);
    for t in ran.tables.iter_mut().filter(|t| emptied.contains(&t.name)) {
        t.rows = 0;
        t.raw_bytes = 0;
    }
    Ok(ran)
}

/// Runs statements one after another on one session; one that fails is reported with
/// the server's message and the others still run. Only a lost session is an error.
/// `announced`: progress was already told they started.
async fn run_each(
    client: &Client,
    statements: Vec<String>,
    progress: &dyn Progress,
    announced: bool,
) -> Result<Vec<(String, String)>, LoadError> {
    let mut failed = Vec::new();
    for sql in statements {
        let label = first_line(&sql);
        if !announced {
            progress.step_started(&label);
        }
        let done = client.batch_execute(&sql).await;
        progress.step_finished(&label);
        if let Err(e) = done {
            if client.is_closed() {
                return Err(PgError::query("run post-data", e).into());
            }
            failed.push((sql, reason(&e)));
        }
    }
    Ok(failed)
}
