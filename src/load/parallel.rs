//! Runs independent statements (index builds, constraint validation, ANALYZE) over
//! several connections.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::task::JoinSet;

use super::{first_line, LoadError};
use crate::pg::{prepare_session, ConnSpec, PgError};

pub(super) async fn run_statements(
    target: &ConnSpec,
    jobs: usize,
    section: &'static str,
    statements: Vec<String>,
) -> Result<(), LoadError> {
    if statements.is_empty() {
        return Ok(());
    }
    let n = jobs.clamp(1, statements.len());
    let queue = Arc::new(Mutex::new(VecDeque::from(statements)));
    let mut set = JoinSet::new();
    for _ in 0..n {
        let (target, queue) = (target.clone(), queue.clone());
        set.spawn(async move {
            let client = target.connect().await?;
            prepare_session(&client).await?;
            client
                .batch_execute("SET maintenance_work_mem = '256MB'")
                .await
                .map_err(|e| PgError::query("configure the session", e))?;
            loop {
                let next = queue.lock().expect("queue lock").pop_front();
                let Some(sql) = next else { break };
                client
                    .batch_execute(&sql)
                    .await
                    .map_err(|e| LoadError::Ddl {
                        section,
                        statement: first_line(&sql),
                        source: PgError::query(section, e),
                    })?;
            }
            Ok::<(), LoadError>(())
        });
    }
    while let Some(r) = set.join_next().await {
        match r {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                set.abort_all();
                return Err(e);
            }
            Err(e) => {
                set.abort_all();
                return Err(LoadError::Worker(e.to_string()));
            }
        }
    }
    Ok(())
}
