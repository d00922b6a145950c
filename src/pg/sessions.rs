//! Work spread over several sessions: each worker opens its own connection, prepares
//! it once, then takes items from a shared schedule until none are left: in order, or
//! once their prerequisites have finished. The first error stops the other workers.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_postgres::Client;

use super::{prepare_session, ConnSpec, PgError};

/// A worker task died without returning (a panic): reported, never swallowed.
#[derive(Debug)]
pub struct WorkerLost(pub String);

/// Where a run's sessions come from: those already open first, then new
/// connections. A session already open was prepared and set up by its opener
/// (`setup` does not run on it); one more than the run needs is closed.
pub struct Sessions<'a> {
    pub conn: &'a ConnSpec,
    pub open: Vec<Arc<Client>>,
}

impl<'a> From<&'a ConnSpec> for Sessions<'a> {
    fn from(conn: &'a ConnSpec) -> Self {
        Sessions {
            conn,
            open: Vec::new(),
        }
    }
}

/// Runs `work` for every item over at most `jobs` connections, in order. `setup` runs
/// once per connection after the standard session settings. Results come back in no
/// particular order.
pub async fn run_sessions<T, R, E, S, SF, W, WF>(
    sessions: Sessions<'_>,
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
    let n = items.len() as u64;
    let nodes = items
        .into_iter()
        .enumerate()
        .map(|(i, item)| Node {
            item,
            after: Vec::new(),
            holds: Vec::new(),
            cost: n - i as u64,
        })
        .collect();
    run_graph(sessions, jobs, nodes, setup, work).await
}

/// One item of [`run_graph`].
pub struct Node<T> {
    pub item: T,
    /// Positions of the items that must have finished (succeeded or not: a failure
    /// the work recorded is its own business) before this one starts.
    pub after: Vec<usize>,
    /// Resources the item holds while it runs: no two items that name one run at
    /// once, in whichever order they become ready. Statements that lock the same
    /// tables then never wait for each other, so they cannot deadlock, and need no
    /// fixed order that one late prerequisite would hold up.
    pub holds: Vec<usize>,
    /// Among the items that may start, the costliest goes first.
    pub cost: u64,
}

/// Which items may start, and which wait for others.
struct Schedule<T> {
    items: Vec<Option<T>>,
    waiting_on: Vec<usize>,
    dependents: Vec<Vec<usize>>,
    ready: BinaryHeap<(u64, Reverse<usize>)>,
    costs: Vec<u64>,
    holds: Vec<Vec<usize>>,
    /// Resources held by running items.
    held: HashSet<usize>,
    /// Ready items set aside because a resource they hold was taken, by resource.
    blocked: HashMap<usize, BinaryHeap<(u64, Reverse<usize>)>>,
    unstarted: usize,
}

impl<T> Schedule<T> {
    fn new(nodes: Vec<Node<T>>) -> Self {
        let mut dependents = vec![Vec::new(); nodes.len()];
        let mut waiting_on = vec![0; nodes.len()];
        for (i, n) in nodes.iter().enumerate() {
            for &a in &n.after {
                dependents[a].push(i);
                waiting_on[i] += 1;
            }
        }
        let costs: Vec<u64> = nodes.iter().map(|n| n.cost).collect();
        let ready = (0..nodes.len())
            .filter(|&i| waiting_on[i] == 0)
            .map(|i| (costs[i], Reverse(i)))
            .collect();
        let mut holds = Vec::with_capacity(nodes.len());
        let mut items = Vec::with_capacity(nodes.len());
        for n in nodes {
            holds.push(n.holds);
            items.push(Some(n.item));
        }
        Schedule {
            unstarted: items.len(),
            items,
            waiting_on,
            dependents,
            ready,
            costs,
            holds,
            held: HashSet::new(),
            blocked: HashMap::new(),
        }
    }

    /// The next item to start; `Err(())` when every item has started.
    fn next(&mut self) -> Result<Option<(usize, T)>, ()> {
        while let Some((cost, Reverse(i))) = self.ready.pop() {
            if let Some(&taken) = self.holds[i].iter().find(|r| self.held.contains(r)) {
                self.blocked
                    .entry(taken)
                    .or_default()
                    .push((cost, Reverse(i)));
                // It may have been the one let go when another of its resources was
                // freed: the next in that resource's line takes its place.
                for r in self.holds[i].clone() {
                    if !self.held.contains(&r) {
                        self.release_one(r);
                    }
                }
                continue;
            }
            self.held.extend(self.holds[i].iter().copied());
            self.unstarted -= 1;
            return Ok(self.items[i].take().map(|t| (i, t)));
        }
        if self.unstarted == 0 {
            Err(())
        } else {
            Ok(None)
        }
    }

    /// Makes the costliest item set aside for `resource` ready again.
    fn release_one(&mut self, resource: usize) {
        if let Some(next) = self.blocked.get_mut(&resource).and_then(|b| b.pop()) {
            self.ready.push(next);
        }
    }

    fn finished(&mut self, i: usize) {
        for r in std::mem::take(&mut self.holds[i]) {
            self.held.remove(&r);
            self.release_one(r);
        }
        for d in std::mem::take(&mut self.dependents[i]) {
            self.waiting_on[d] -= 1;
            if self.waiting_on[d] == 0 {
                self.ready.push((self.costs[d], Reverse(d)));
            }
        }
    }
}

/// Runs `work` for every node over at most `jobs` connections, each node once the
/// nodes it comes after have finished, the costliest ready node first: index builds
/// of a table start as soon as its rows are in while other tables still load. The
/// prerequisites must not form a cycle. `setup` runs once per connection after the
/// standard session settings. Results come back in no particular order.
pub async fn run_graph<T, R, E, S, SF, W, WF>(
    sessions: Sessions<'_>,
    jobs: usize,
    nodes: Vec<Node<T>>,
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
    if nodes.is_empty() {
        return Ok(Vec::new());
    }
    let n = jobs.clamp(1, nodes.len());
    let schedule = Arc::new(Mutex::new(Schedule::new(nodes)));
    let wake = Arc::new(Notify::new());
    let mut set = JoinSet::new();
    let mut open = sessions.open.into_iter();
    for _ in 0..n {
        let ready = open.next();
        let (conn, schedule, wake, setup, work) = (
            sessions.conn.clone(),
            schedule.clone(),
            wake.clone(),
            setup.clone(),
            work.clone(),
        );
        set.spawn(async move {
            let open = || async {
                let client = Arc::new(conn.connect().await?);
                prepare_session(&client).await?;
                setup(client.clone()).await?;
                Ok::<_, E>(client)
            };
            let mut client = match ready {
                Some(client) => client,
                None => open().await?,
            };
            let mut out = Vec::new();
            loop {
                // Registered before looking, so a finish in between still wakes us.
                let woken = wake.notified();
                let next = schedule.lock().expect("schedule lock").next();
                let (i, item) = match next {
                    Err(()) => break,
                    Ok(Some(next)) => next,
                    Ok(None) => {
                        woken.await;
                        continue;
                    }
                };
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
                schedule.lock().expect("schedule lock").finished(i);
                wake.notify_waiters();
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

#[cfg(test)]
mod tests {
    use super::{Node, Schedule};

    fn node(after: Vec<usize>, holds: Vec<usize>, cost: u64) -> Node<usize> {
        Node {
            item: 0,
            after,
            holds,
            cost,
        }
    }

    /// Starts what may start, as `workers` sessions would, and finishes the oldest
    /// running item when none may; returns the order items started in.
    fn simulate(nodes: Vec<Node<usize>>, workers: usize) -> Vec<usize> {
        let mut s = Schedule::new(nodes);
        let (mut running, mut order): (Vec<usize>, Vec<usize>) = (Vec::new(), Vec::new());
        loop {
            while running.len() < workers {
                match s.next() {
                    Ok(Some((i, _))) => {
                        for &r in &running {
                            let shared = s.holds[i].iter().any(|h| s.holds[r].contains(h));
                            assert!(!shared, "{i} and {r} hold one resource at once");
                        }
                        running.push(i);
                        order.push(i);
                    }
                    Ok(None) => break,
                    Err(()) => return order,
                }
            }
            assert!(!running.is_empty(), "stalled after {order:?}");
            s.finished(running.remove(0));
        }
    }

    #[test]
    fn items_holding_one_resource_never_run_at_once_and_none_is_left_behind() {
        // 0 and 1 load two tables; 2..=5 hold table 10 (the parent), 6 and 7 other
        // tables, 8 holds 10 and 11 together, 9 waits for 8.
        let nodes = vec![
            node(vec![], vec![], 1),
            node(vec![], vec![], 1),
            node(vec![0], vec![10], 9),
            node(vec![0], vec![10], 9),
            node(vec![1], vec![10, 12], 9),
            node(vec![1], vec![10], 9),
            node(vec![0], vec![12], 5),
            node(vec![1], vec![13], 5),
            node(vec![], vec![10, 11], 2),
            node(vec![8], vec![11], 2),
        ];
        let order = simulate(nodes, 3);
        let mut all = order.clone();
        all.sort_unstable();
        assert_eq!(all, (0..10).collect::<Vec<_>>(), "{order:?}");
    }

    #[test]
    fn the_costliest_ready_item_goes_first_among_those_free_to_start() {
        let nodes = vec![
            node(vec![], vec![1], 1),
            node(vec![], vec![1], 7),
            node(vec![], vec![2], 3),
        ];
        assert_eq!(simulate(nodes, 1), vec![1, 2, 0]);
    }
}
