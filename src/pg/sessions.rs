//! Work spread over several sessions: each worker opens its own connection, prepares
//! it once, then takes items from a shared queue in order until none are left. The
//! first error stops the other workers.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio::task::JoinSet;
use tokio_postgres::Client;

use super::{prepare_session, ConnSpec, PgError};

/// A worker task died without returning (a panic): reported, never swallowed.
#[derive(Debug)]
pub struct WorkerLost(pub String);

/// Runs `work` for every item over at most `jobs` connections. `setup` runs once per
/// connection after the standard session settings. Results come back in no particular
/// order.
pub async fn run_sessions<T, R, E, S, SF, W, WF>(
    conn: &ConnSpec,
    jobs: usize,
    items: Vec<T>,
    setup: S,
    work: W,
) -> Result<Vec<R>, E>
where
    T: Send + 'static,
    R: Send + 'static,
    E: From<PgError> + From<WorkerLost> + Send + 'static,
    S: Fn(Arc<Client>) -> SF + Clone + Send + Sync + 'static,
    SF: Future<Output = Result<(), E>> + Send,
    W: Fn(Arc<Client>, T) -> WF + Clone + Send + Sync + 'static,
    WF: Future<Output = Result<R, E>> + Send,
{
    if items.is_empty() {
        return Ok(Vec::new());
    }
    let n = jobs.clamp(1, items.len());
    let queue = Arc::new(Mutex::new(VecDeque::from(items)));
    let mut set = JoinSet::new();
    for _ in 0..n {
        let (conn, queue, setup, work) = (conn.clone(), queue.clone(), setup.clone(), work.clone());
        set.spawn(async move {
            let open = || async {
                let client = Arc::new(conn.connect().await?);
                prepare_session(&client).await?;
                setup(client.clone()).await?;
                Ok::<_, E>(client)
            };
            let mut client = open().await?;
            let mut out = Vec::new();
            loop {
                let next = queue.lock().expect("queue lock").pop_front();
                let Some(item) = next else { break };
                // A unit of work that recorded its own failure (a restored table whose
                // session the server ended) must not doom the next ones to a dead
                // connection: they get a new session.
                if client.is_closed() {
                    client = match conn.connect().await {
                        Ok(c) => {
                            let c = Arc::new(c);
                            prepare_session(&c).await?;
                            setup(c.clone()).await?;
                            c
                        }
                        // The server ended this session, and will not take a new one:
                        // what happened is the lost session, not a refused connect.
                        Err(PgError::Connect { reason, .. }) => {
                            return Err(PgError::Query {
                                what: "go on after the server ended a session (a new one \
                                       was refused)"
                                    .into(),
                                reason,
                                code: None,
                            }
                            .into())
                        }
                        Err(e) => return Err(e.into()),
                    };
                }
                out.push(work(client.clone(), item).await?);
            }
            Ok::<_, E>(out)
        });
    }
    let mut results = Vec::new();
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok(Ok(mut r)) => results.append(&mut r),
            Ok(Err(e)) => {
                set.abort_all();
                return Err(e);
            }
            Err(e) => {
                set.abort_all();
                return Err(WorkerLost(e.to_string()).into());
            }
        }
    }
    Ok(results)
}
