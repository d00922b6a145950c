//! Faults injected while backups, restores and exports run: the server kills the
//! session, the server restarts, the network drops, the disk fills, object storage goes
//! away, the process is told to stop. Each run must end with a non-zero exit naming
//! the cause; a backup must never look complete, its leftovers go with the next prune,
//! and the next backup succeeds; a restore leaves whole tables only and says which; an
//! export leaves no files.
//!
//! Traffic goes through a loopback proxy that slows it down, so the fault lands while a
//! COPY is running, which the test checks in `pg_stat_activity` before acting.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Child, Output, Stdio};
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use pgbunker::pg::ConnSpec;
use pgbunker::sandbox::s3::S3Server;

use crate::support::{all_rows, ok, pgbunker, pgbunker_command, stderr, stdout, World, KEY};

/// A loopback TCP proxy in front of a server: it passes at most `rate` bytes per
/// second per direction and connection. On command it cuts every connection and
/// refuses new ones, stalls (holds every byte, keeps every connection open), or
/// answers every new HTTP request with `503 Service Unavailable`, until healed.
struct Proxy {
    port: u16,
    /// Bumped by [`Proxy::cut`] and [`Proxy::fail_http`]: connections of an older
    /// generation end.
    generation: Arc<AtomicU64>,
    mode: Arc<AtomicU8>,
    /// Bytes per second per connection and direction; 0 for no limit.
    rate: Arc<AtomicUsize>,
    /// Bytes passed so far, both directions.
    passed: Arc<AtomicU64>,
}

const PASS: u8 = 0;
const REFUSE: u8 = 1;
const STALL: u8 = 2;
const FAIL_HTTP: u8 = 3;

impl Proxy {
    fn start(target: u16, rate: usize) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let port = listener.local_addr().unwrap().port();
        let generation = Arc::new(AtomicU64::new(0));
        let mode = Arc::new(AtomicU8::new(PASS));
        let rate = Arc::new(AtomicUsize::new(rate));
        let passed = Arc::new(AtomicU64::new(0));
        let (g, m, r, p) = (
            Arc::clone(&generation),
            Arc::clone(&mode),
            Arc::clone(&rate),
            Arc::clone(&passed),
        );
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                match m.load(Ordering::SeqCst) {
                    REFUSE => continue, // dropped: the connection is closed at once
                    FAIL_HTTP => {
                        std::thread::spawn(move || answer_503(client));
                        continue;
                    }
                    _ => {}
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
                    continue;
                };
                let link = Link {
                    generation: Arc::clone(&g),
                    born: g.load(Ordering::SeqCst),
                    mode: Arc::clone(&m),
                    rate: Arc::clone(&r),
                    passed: Arc::clone(&p),
                };
                link.pump(client.try_clone().unwrap(), server.try_clone().unwrap());
                link.pump(server, client);
            }
        });
        Proxy {
            port,
            generation,
            mode,
            rate,
            passed,
        }
    }

    /// Drops every connection and refuses new ones.
    fn cut(&self) {
        self.mode.store(REFUSE, Ordering::SeqCst);
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// Stops passing bytes; connections stay open and new ones are accepted.
    fn stall(&self) {
        self.mode.store(STALL, Ordering::SeqCst);
    }

    /// Drops every connection; new ones get an HTTP 503 for each request.
    fn fail_http(&self) {
        self.mode.store(FAIL_HTTP, Ordering::SeqCst);
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    fn heal(&self) {
        self.mode.store(PASS, Ordering::SeqCst);
    }

    /// Heals and lifts the rate limit, so what follows the fault runs at full speed.
    fn heal_fully(&self) {
        self.heal();
        self.set_rate(0);
    }

    /// Waits until at least `bytes` have passed since the proxy started.
    async fn wait_for_traffic(&self, bytes: u64) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.passed.load(Ordering::SeqCst) < bytes {
            assert!(
                Instant::now() < deadline,
                "fewer than {bytes} bytes passed the proxy in 60 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Sets the rate limit of new and open connections (0: none).
    fn set_rate(&self, rate: usize) {
        self.rate.store(rate, Ordering::SeqCst);
    }
}

/// Reads one HTTP request (head and `Content-Length` body) and answers it with a 503,
/// as an overloaded S3 endpoint does, then closes the connection.
fn answer_503(mut client: TcpStream) {
    let _ = client.set_read_timeout(Some(Duration::from_secs(10)));
    let mut got = Vec::new();
    let mut buf = [0u8; 16 << 10];
    let head_end = loop {
        if let Some(i) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match client.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    };
    let head = String::from_utf8_lossy(&got[..head_end]).to_ascii_lowercase();
    let body: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let mut left = (head_end + body).saturating_sub(got.len());
    while left > 0 {
        match client.read(&mut buf[..left.min(16 << 10)]) {
            Ok(0) | Err(_) => return,
            Ok(n) => left -= n,
        }
    }
    let body =
        "<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>";
    let _ = write!(
        client,
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/xml\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = client.shutdown(Shutdown::Both);
}

/// One proxied connection's settings, shared by its two directions.
#[derive(Clone)]
struct Link {
    generation: Arc<AtomicU64>,
    born: u64,
    mode: Arc<AtomicU8>,
    rate: Arc<AtomicUsize>,
    passed: Arc<AtomicU64>,
}

impl Link {
    /// Copies `from` to `to` until either side ends or the proxy cuts; then closes
    /// both sockets, as a dead peer's kernel would, so the far side notices at once.
    fn pump(&self, mut from: TcpStream, mut to: TcpStream) {
        let link = self.clone();
        std::thread::spawn(move || {
            from.set_read_timeout(Some(Duration::from_millis(100)))
                .unwrap();
            let mut buf = [0u8; 16 << 10];
            while link.generation.load(Ordering::SeqCst) == link.born {
                if link.mode.load(Ordering::SeqCst) == STALL {
                    std::thread::sleep(Duration::from_millis(50));
                    continue;
                }
                let n = match from.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) =>
                    {
                        continue
                    }
                    Err(_) => break,
                };
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
                link.passed.fetch_add(n as u64, Ordering::SeqCst);
                let rate = link.rate.load(Ordering::SeqCst);
                if rate > 0 {
                    std::thread::sleep(Duration::from_secs_f64(n as f64 / rate as f64));
                }
            }
            let _ = to.shutdown(Shutdown::Both);
            let _ = from.shutdown(Shutdown::Both);
        });
    }
}

/// The sandbox's URL for `db`, through the proxy.
fn via(w: &World, proxy: &Proxy, db: &str) -> String {
    w.pg.url(db)
        .replace(&format!(":{}/", w.pg.port()), &format!(":{}/", proxy.port))
}

/// A database with one table big enough (about 24 MB of COPY data, little of it
/// compressible) that a throttled COPY of it takes seconds, and two small ones.
async fn big_db(w: &World, name: &str) -> ConnSpec {
    let conn = w.empty_db(name).await;
    let c = conn.connect().await.unwrap();
    c.batch_execute(
        "CREATE TABLE small (id int PRIMARY KEY, note text);
         INSERT INTO small SELECT g, 'note ' || g FROM generate_series(1, 500) g;
         CREATE TABLE big (id int PRIMARY KEY, a text, b text);
         INSERT INTO big SELECT g, md5(g::text) || md5(random()::text),
                                md5(random()::text) || md5((g * 7)::text)
           FROM generate_series(1, 160000) g;
         CREATE TABLE other (id int PRIMARY KEY, small_id int REFERENCES small);
         INSERT INTO other SELECT g, g % 500 + 1 FROM generate_series(1, 2000) g;",
    )
    .await
    .unwrap();
    conn
}

/// Waits until a session in `db` that started after `since` runs a COPY whose text
/// contains `direction` (`TO STDOUT`, `FROM STDIN`) and returns its pid. Sessions of
/// an earlier run are ignored: the server may not have noticed yet that their client
/// is gone, and acting on them would hit the new run before it is under way.
async fn copy_session(w: &World, db: &str, direction: &str, since: SystemTime) -> i32 {
    let admin = w.pg.conn("postgres").connect().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let rows = admin
            .query(
                "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND query ILIKE 'COPY%' \
                 AND query LIKE '%' || $2 || '%' AND query LIKE '%big%' AND state = 'active' \
                 AND backend_start > $3",
                &[&db, &direction, &since],
            )
            .await
            .unwrap();
        if let Some(r) = rows.first() {
            return r.get(0);
        }
        assert!(
            Instant::now() < deadline,
            "no COPY … {direction} of big started in {db} within 90 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn terminate(w: &World, pid: i32) {
    let admin = w.pg.conn("postgres").connect().await.unwrap();
    admin
        .execute("SELECT pg_terminate_backend($1)", &[&pid])
        .await
        .unwrap();
}

fn spawn(args: &[&str], env: &[(&str, &str)]) -> Child {
    pgbunker_command(args, env)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start pgbunker")
}

/// Waits for `child` (at most 4 minutes: object storage retries for a while).
fn finish(mut child: Child) -> Output {
    let deadline = Instant::now() + Duration::from_secs(240);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("pgbunker did not stop within 4 minutes of the fault");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child.wait_with_output().unwrap()
}

fn signal(child: &Child, sig: i32) {
    // SAFETY: kill(2) on our own child's pid.
    let rc = unsafe { libc::kill(child.id() as i32, sig) };
    assert_eq!(rc, 0, "signal the child");
}

/// `(backup id, status)` of every backup the repository shows.
fn statuses(repo: &str, env: &[(&str, &str)]) -> Vec<(String, String)> {
    let out = ok(pgbunker(&["--json", "list", "--repo", repo], env));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v["backups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["backup_id"].as_str().unwrap().to_string(),
                b["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// After a failed backup: nothing new is complete, `prune` removes its leftovers at
/// once with a zero grace period, and a backup without the fault succeeds.
fn recovers(repo: &str, env: &[(&str, &str)], url: &str, before: usize) {
    let listed = statuses(repo, env);
    let complete = listed.iter().filter(|(_, s)| s == "complete").count();
    assert_eq!(
        complete, before,
        "a failed backup shows as complete: {listed:?}"
    );
    let pruned = ok(pgbunker(
        &[
            "--json",
            "prune",
            "--repo",
            repo,
            "--keep-last",
            "100",
            "--grace",
            "0",
        ],
        env,
    ));
    let pruned: serde_json::Value = serde_json::from_str(&pruned).unwrap();
    let leftovers = listed.iter().filter(|(_, s)| s == "incomplete").count();
    assert_eq!(
        pruned["leftovers_deleted"].as_array().unwrap().len(),
        leftovers,
        "{pruned}"
    );
    let after = statuses(repo, env);
    assert!(
        after.iter().all(|(_, s)| s == "complete"),
        "prune left leftovers: {after:?} {:?}",
        walk(std::path::Path::new(repo))
    );
    ok(pgbunker(&["backup", "--repo", repo, url], env));
    ok(pgbunker(
        &["verify", "--repo", repo, "--data", "latest"],
        env,
    ));
}

const ENV: [(&str, &str); 1] = [("PGBUNKER_KEY", KEY)];
/// Bytes per second per connection and direction: the big table takes about 10 s.
const SLOW: usize = 2_500_000;

/// A fault to inject once a COPY runs.
#[derive(Clone, Copy, Debug)]
enum Fault {
    /// `pg_terminate_backend` of the COPY's session.
    Kill,
    /// The proxy drops every connection.
    Cut,
    /// `pg_ctl restart -m fast`.
    Restart,
    /// A signal to the pgbunker process.
    Signal(i32),
}

async fn inject(w: &World, proxy: &Proxy, child: &Child, pid: i32, fault: Fault) {
    match fault {
        Fault::Kill => terminate(w, pid).await,
        Fault::Cut => proxy.cut(),
        Fault::Restart => w.pg.restart().expect("restart the server"),
        Fault::Signal(sig) => signal(child, sig),
    }
}

/// A database `src` with the big table, a repository, and a slow proxy in front of
/// the server.
struct BackupLab {
    w: World,
    repo: String,
    proxy: Proxy,
}

impl BackupLab {
    async fn start() -> BackupLab {
        let w = World::start();
        big_db(&w, "src").await;
        let repo = w.init_repo("repo");
        let proxy = Proxy::start(w.pg.port(), SLOW);
        BackupLab { w, repo, proxy }
    }

    /// Runs a backup through the proxy and injects `fault` while it copies `big`.
    async fn backup_with(&self, fault: Fault) -> Output {
        let url = via(&self.w, &self.proxy, "src");
        let since = SystemTime::now();
        let child = spawn(&["backup", "--repo", &self.repo, "--jobs", "2", &url], &ENV);
        let pid = copy_session(&self.w, "src", "TO STDOUT", since).await;
        inject(&self.w, &self.proxy, &child, pid, fault).await;
        finish(child)
    }

    /// After the fault: nothing complete, prune cleans up, the next backup works.
    fn recovers(&self) {
        self.proxy.heal();
        recovers(&self.repo, &ENV, &self.w.pg.url("src"), 0);
    }
}

/// The exit is a connection (3) or database (4) error, and stderr says what happened:
/// the server's own message when its FATAL reached the client whole, else that the
/// connection was lost.
fn names_the_lost_session(out: &Output) {
    let err = stderr(out);
    assert!(
        matches!(out.status.code(), Some(3 | 4)),
        "exit {:?}: {err}",
        out.status.code()
    );
    assert!(
        err.contains("administrator command") || err.contains("connection to the server was lost"),
        "the cause is named: {err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn backup_whose_session_is_killed_fails_and_the_next_one_succeeds() {
    let lab = BackupLab::start().await;
    names_the_lost_session(&lab.backup_with(Fault::Kill).await);
    lab.recovers();
}

#[tokio::test(flavor = "multi_thread")]
async fn backup_during_a_server_restart_fails_and_the_next_one_succeeds() {
    let lab = BackupLab::start().await;
    names_the_lost_session(&lab.backup_with(Fault::Restart).await);
    lab.recovers();
}

#[tokio::test(flavor = "multi_thread")]
async fn backup_whose_connection_drops_fails_and_the_next_one_succeeds() {
    let lab = BackupLab::start().await;
    let out = lab.backup_with(Fault::Cut).await;
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    names_the_lost_session(&out);
    lab.recovers();
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_and_sigint_stop_a_backup_without_a_complete_looking_result() {
    let lab = BackupLab::start().await;
    for (sig, name) in [(libc::SIGTERM, "SIGTERM"), (libc::SIGINT, "SIGINT")] {
        let out = lab.backup_with(Fault::Signal(sig)).await;
        assert_eq!(out.status.code(), Some(130), "{name}: {}", stderr(&out));
        assert!(stderr(&out).contains(name), "{}", stderr(&out));
    }
    lab.recovers();
}

/// A small filesystem for the repository or the export: tmpfs when this process may
/// mount (root in CI), else the pgbunker process gets a file-size limit, which fails
/// its writes the same way (EFBIG instead of ENOSPC).
struct SmallDisk {
    dir: std::path::PathBuf,
    mounted: bool,
}

impl SmallDisk {
    fn new(w: &World, name: &str, bytes: u64) -> SmallDisk {
        let dir = w.dir.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        SmallDisk::mount(dir, bytes)
    }

    /// A tmpfs of `bytes` on the existing folder `dir`, if this process may mount.
    fn mount(dir: std::path::PathBuf, bytes: u64) -> SmallDisk {
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}")])
            .arg("tmpfs")
            .arg(&dir)
            .output()
            .is_ok_and(|o| o.status.success());
        SmallDisk { dir, mounted }
    }

    fn grow(&self) {
        if self.mounted {
            let o = std::process::Command::new("mount")
                .args(["-o", "remount,size=1g"])
                .arg(&self.dir)
                .output()
                .unwrap();
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        }
    }

    /// Runs pgbunker with writes limited to this disk's size when it is not a tmpfs.
    fn run(&self, args: &[&str], env: &[(&str, &str)], bytes: u64) -> Output {
        let mut cmd = pgbunker_command(args, env);
        if !self.mounted {
            use std::os::unix::process::CommandExt;
            // SAFETY: only async-signal-safe calls between fork and exec.
            unsafe {
                cmd.pre_exec(move || {
                    libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
                    let lim = libc::rlimit {
                        rlim_cur: bytes,
                        rlim_max: bytes,
                    };
                    libc::setrlimit(libc::RLIMIT_FSIZE, &lim);
                    Ok(())
                });
            }
        }
        cmd.output().unwrap()
    }

    /// What the failure says on this kind of disk.
    fn full_message(&self) -> &'static str {
        if self.mounted {
            "No space left"
        } else {
            "too large"
        }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        if self.mounted {
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(&self.dir)
                .output();
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_disk_fails_the_backup_clearly_and_loses_nothing() {
    let w = World::start();
    big_db(&w, "src").await;
    let disk = SmallDisk::new(&w, "disk", 4 << 20);
    let repo = disk.dir.join("repo").display().to_string();
    ok(pgbunker(&["init", "--repo", &repo], &ENV));
    let out = disk.run(
        &["backup", "--repo", &repo, &w.pg.url("src")],
        &ENV,
        4 << 20,
    );
    assert_ne!(out.status.code(), Some(0), "{}", stderr(&out));
    if disk.mounted {
        assert_eq!(out.status.code(), Some(8), "{}", stderr(&out));
    }
    assert!(
        stderr(&out).contains(disk.full_message()),
        "the full disk is named: {}",
        stderr(&out)
    );
    disk.grow();
    recovers(&repo, &ENV, &w.pg.url("src"), 0);

    // An export that fills its disk leaves no file behind.
    let out_dir = disk.dir.join("export");
    let small = SmallDisk::new(&w, "export-disk", 2 << 20);
    let out = small.run(
        &[
            "export",
            "--repo",
            &repo,
            "latest",
            "--out",
            small.dir.to_str().unwrap(),
            "--compression",
            "none",
        ],
        &ENV,
        2 << 20,
    );
    assert_ne!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(small.full_message()),
        "{}",
        stderr(&out)
    );
    let left: Vec<_> = walk(&small.dir);
    assert!(left.is_empty(), "a failed export left files: {left:?}");
    let _ = out_dir;
}

/// Every file below `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// Retries object storage for this many seconds (3 minutes by default): the tests of
/// lasting failures need not wait that long.
const RETRY_WINDOW: &str = "PGBUNKER_STORE_RETRY_TIMEOUT";

/// The URL of `prefix` in bucket `faults` of `s3`, reached through `proxy`.
fn proxied(s3: &S3Server, proxy: &Proxy, prefix: &str) -> String {
    s3.repo_url("faults", prefix).replace(
        &format!("127.0.0.1:{}", s3.port()),
        &format!("127.0.0.1:{}", proxy.port),
    )
}

/// A repository on moto_server reached through a [`Proxy`], and a database to back up.
struct S3Lab {
    w: World,
    s3: S3Server,
    proxy: Proxy,
    repo: String,
    env: Vec<(&'static str, &'static str)>,
}

impl S3Lab {
    /// `extra` environment goes to every pgbunker run (e.g. a shorter request timeout).
    async fn start(extra: &[(&'static str, &'static str)]) -> S3Lab {
        let w = World::start();
        big_db(&w, "src").await;
        let s3 = S3Server::start().unwrap_or_else(|e| {
            panic!("could not start the S3 test server: {e}\nhint: pip install 'moto[server]'")
        });
        s3.create_bucket("faults").unwrap();
        let proxy = Proxy::start(s3.port(), SLOW);
        let repo = proxied(&s3, &proxy, "repo");
        let mut env = s3.env().to_vec();
        env.push(("PGBUNKER_KEY", KEY));
        env.extend_from_slice(extra);
        ok(pgbunker(&["init", "--repo", &repo], &env));
        S3Lab {
            w,
            s3,
            proxy,
            repo,
            env,
        }
    }

    /// The URL of `prefix` in the lab's bucket, through the proxy.
    fn url(&self, prefix: &str) -> String {
        proxied(&self.s3, &self.proxy, prefix)
    }

    /// After the fault: a restore of the latest backup into a fresh database equals
    /// the source.
    async fn restores_whole(&self) {
        self.w.empty_db("again").await;
        ok(pgbunker(
            &[
                "restore",
                "--repo",
                &self.repo,
                "latest",
                "--target",
                &self.w.pg.url("again"),
            ],
            &self.env,
        ));
        assert_eq!(
            all_rows(&self.w.pg.conn("again")).await,
            all_rows(&self.w.pg.conn("src")).await
        );
    }

    /// Starts a backup and returns once its COPY runs, so its chunks are on their way.
    async fn backup_under_way(&self) -> Child {
        let since = SystemTime::now();
        let child = spawn(
            &["backup", "--repo", &self.repo, &self.w.pg.url("src")],
            &self.env,
        );
        copy_session(&self.w, "src", "TO STDOUT", since).await;
        child
    }
}

/// Object storage fails for good while a backup uploads (`fault` is done to the proxy
/// in front of it): exit 5 with stderr naming `named`, nothing complete, and once
/// storage is back prune cleans up and the next backup succeeds.
async fn backup_against_failing_storage(fault: fn(&Proxy), named: &str) {
    let lab = S3Lab::start(&[(RETRY_WINDOW, "5")]).await;
    let child = lab.backup_under_way().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    fault(&lab.proxy);
    let out = finish(child);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(named),
        "the storage failure is named: {}",
        stderr(&out)
    );
    lab.proxy.heal_fully();
    recovers(&lab.repo, &lab.env, &lab.w.pg.url("src"), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn object_storage_going_away_fails_the_backup_and_the_next_one_succeeds() {
    backup_against_failing_storage(Proxy::cut, "could not write").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn object_storage_answering_503_fails_the_backup_clearly_and_the_next_one_succeeds() {
    backup_against_failing_storage(Proxy::fail_http, "503 Service Unavailable").await;
}

/// Returns `child` if it still runs; else fails with what it printed.
fn still_running(mut child: Child, when: &str) -> Child {
    if child.try_wait().unwrap().is_none() {
        return child;
    }
    let out = child.wait_with_output().unwrap();
    panic!(
        "the backup ended ({:?}) before {when}: {}",
        out.status.code(),
        stderr(&out)
    );
}

/// Object storage that answers 503 for a few seconds, then stalls for longer than the
/// request timeout, then recovers: retries and resent create-only puts carry the
/// backup through, and it restores whole.
#[tokio::test(flavor = "multi_thread")]
async fn object_storage_errors_and_stalls_that_pass_do_not_fail_the_backup() {
    let lab = S3Lab::start(&[("AWS_TIMEOUT", "2s")]).await;
    // Slower than the other tests: with several uploads in parallel, the 1.5 s of
    // flow before the stall ends must not be enough to finish the backup.
    lab.proxy.set_rate(SLOW / 4);
    let mut child = lab.backup_under_way().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    child = still_running(child, "the errors began");
    lab.proxy.fail_http();
    tokio::time::sleep(Duration::from_secs(3)).await;
    lab.proxy.heal();
    tokio::time::sleep(Duration::from_millis(500)).await;
    child = still_running(child, "the stall began");
    lab.proxy.stall();
    tokio::time::sleep(Duration::from_secs(5)).await;
    child = still_running(child, "the stall ended");
    lab.proxy.heal_fully();
    let out = finish(child);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    ok(pgbunker(
        &["verify", "--repo", &lab.repo, "--data", "latest"],
        &lab.env,
    ));
    lab.restores_whole().await;
}

/// Row counts of the restore target's tables.
async fn counts(conn: &ConnSpec) -> Vec<(String, i64)> {
    let c = conn.connect().await.unwrap();
    let mut out = Vec::new();
    for t in ["small", "big", "other"] {
        let n = c
            .query_one(&format!("SELECT count(*) FROM {t}"), &[])
            .await
            .map(|r| r.get::<_, i64>(0))
            .unwrap_or(-1);
        out.push((t.to_string(), n));
    }
    out
}

/// A restore that was hit by a fault: every table is whole or empty, the report (when
/// there is one) names the failed tables, and a clean re-run restores everything.
async fn restore_fault(fault: Fault) {
    let w = World::start();
    let src = big_db(&w, "src").await;
    let repo = w.init_repo("repo");
    ok(w.backup(&repo, "src", &[]));
    let target = w.empty_db("dst").await;
    let proxy = Proxy::start(w.pg.port(), SLOW);
    let url = via(&w, &proxy, "dst");
    let since = SystemTime::now();
    let child = spawn(
        &[
            "--json", "restore", "--repo", &repo, "latest", "--target", &url, "--jobs", "2",
        ],
        &ENV,
    );
    let pid = copy_session(&w, "dst", "FROM STDIN", since).await;
    inject(&w, &proxy, &child, pid, fault).await;
    let out = finish(child);
    assert_ne!(out.status.code(), Some(0), "{fault:?}: {}", stdout(&out));
    if let Fault::Signal(_) = fault {
        assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    }
    if let Fault::Kill = fault {
        // The session that died took only its own table with it.
        only_big_failed(&out, &["administrator", "connection"]);
    }
    whole_tables_only(&src, &target, &format!("{fault:?}")).await;
    // A clean re-run into a fresh database restores everything.
    w.empty_db("again").await;
    ok(w.restore(&repo, "latest", "again"));
    assert_eq!(all_rows(&w.pg.conn("again")).await, all_rows(&src).await);
}

/// The `--json` report of a restore says table `big` failed, with an error holding
/// one of `causes`, and every other table was restored.
fn only_big_failed(out: &Output, causes: &[&str]) {
    let report: serde_json::Value = serde_json::from_str(&stdout(out))
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", stdout(out), stderr(out)));
    let tables = report["tables"].as_array().unwrap();
    assert!(
        tables.iter().any(|t| t["table"] == "public.big"),
        "big is in the report: {report}"
    );
    for t in tables {
        if t["table"] == "public.big" {
            assert_eq!(t["status"], "failed", "{report}");
            let why = t["error"].as_str().unwrap();
            assert!(causes.iter().any(|c| why.contains(c)), "{report}");
        } else {
            assert_eq!(t["status"], "restored", "{report}");
        }
    }
}

/// Whole tables only, whatever the fault: each table of `target` has all the rows of
/// its source or none.
async fn whole_tables_only(src: &ConnSpec, target: &ConnSpec, fault: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let source = counts(src).await;
    loop {
        // After a restart the server needs a moment; after a signal the sessions end.
        let got = counts(target).await;
        if got.iter().all(|(_, n)| *n >= 0) {
            for ((t, n), (_, want)) in got.iter().zip(&source) {
                assert!(
                    *n == 0 || n == want,
                    "{fault}: {t} holds {n} of {want} rows: a half-loaded table"
                );
            }
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{fault}: the target stays broken"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn restore_whose_session_is_killed_reports_the_table_and_keeps_the_rest_whole() {
    restore_fault(Fault::Kill).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn restore_whose_connection_drops_leaves_whole_tables_only() {
    restore_fault(Fault::Cut).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn restore_during_a_server_restart_leaves_whole_tables_only() {
    restore_fault(Fault::Restart).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_stops_a_restore_with_whole_tables_only() {
    restore_fault(Fault::Signal(libc::SIGTERM)).await;
}

/// The export's biggest file is being uploaded (slowly, through the proxy) when the
/// signal arrives: the upload is let finish, then everything is deleted, and no
/// unfinished upload is left for the store to keep.
#[tokio::test(flavor = "multi_thread")]
async fn an_interrupted_export_to_object_storage_leaves_no_objects() {
    let lab = S3Lab::start(&[]).await;
    let repo = lab.w.init_repo("local");
    ok(lab.w.backup(&repo, "src", &[]));
    let before = lab.s3.keys("faults").unwrap();
    let child = spawn(
        &[
            "export",
            "--repo",
            &repo,
            "latest",
            "--out",
            &lab.url("export"),
            "--jobs",
            "1",
        ],
        &lab.env,
    );
    // Several MiB have gone up: the biggest file's upload is under way.
    lab.proxy.wait_for_traffic(3 << 20).await;
    signal(&child, libc::SIGTERM);
    lab.proxy.set_rate(0);
    let out = finish(child);
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    let left = lab.s3.keys("faults").unwrap();
    assert_eq!(left, before, "an interrupted export left objects");
    let unfinished = lab.s3.unfinished_uploads("faults").unwrap();
    assert!(
        unfinished.is_empty(),
        "an interrupted export left unfinished uploads of {unfinished:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_interrupted_export_leaves_no_files() {
    let w = World::start();
    big_db(&w, "src").await;
    let repo = w.init_repo("repo");
    ok(w.backup(&repo, "src", &[]));
    let out_dir = w.dir.path().join("export");
    // Jobs 1 and no compression keep the export busy long enough to be stopped.
    let child = spawn(
        &[
            "export",
            "--repo",
            &repo,
            "latest",
            "--out",
            out_dir.to_str().unwrap(),
            "--jobs",
            "1",
            "--compression",
            "none",
            "--row-group-size",
            "1000",
        ],
        &ENV,
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while walk(&out_dir).is_empty() {
        assert!(Instant::now() < deadline, "the export wrote nothing");
        std::thread::sleep(Duration::from_millis(10));
    }
    signal(&child, libc::SIGTERM);
    let out = finish(child);
    if out.status.code() == Some(0) {
        // It finished first: then it is complete and says so.
        assert!(out_dir.join("_pgbunker_export.json").exists());
        return;
    }
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    let left = walk(&out_dir);
    assert!(left.is_empty(), "an interrupted export left {left:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn restore_whose_repository_goes_away_fails_clearly_with_whole_tables_only() {
    let lab = S3Lab::start(&[(RETRY_WINDOW, "5")]).await;
    lab.proxy.set_rate(0);
    ok(pgbunker(
        &["backup", "--repo", &lab.repo, &lab.w.pg.url("src")],
        &lab.env,
    ));
    lab.proxy.set_rate(SLOW);
    let target = lab.w.empty_db("dst").await;
    let since = SystemTime::now();
    let child = spawn(
        &[
            "restore",
            "--repo",
            &lab.repo,
            "latest",
            "--target",
            &lab.w.pg.url("dst"),
            "--jobs",
            "2",
        ],
        &lab.env,
    );
    copy_session(&lab.w, "dst", "FROM STDIN", since).await;
    lab.proxy.cut();
    let out = finish(child);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("could not"),
        "the storage failure is named: {}",
        stderr(&out)
    );
    let src = lab.w.pg.conn("src");
    whole_tables_only(&src, &target, "storage gone").await;
    lab.proxy.heal_fully();
    lab.restores_whole().await;
}

/// The restore target's disk fills (its database lives in a tablespace on a small
/// tmpfs): the table that did not fit fails and is rolled back, the others are whole,
/// the report names the full disk, and once there is room that table alone can be
/// loaded again.
#[tokio::test(flavor = "multi_thread")]
async fn a_full_target_disk_fails_only_the_table_that_did_not_fit() {
    let w = World::start();
    let src = big_db(&w, "src").await;
    let repo = w.init_repo("repo");
    ok(w.backup(&repo, "src", &[]));
    let dir = w.pg.server_folder("small_tablespace").unwrap();
    // The new database's catalog takes about 8 MB of it; the big table does not fit.
    let disk = SmallDisk::mount(dir.clone(), 20 << 20);
    if !disk.mounted {
        // The server's disk cannot be limited without mounting (CI runs as root).
        eprintln!("not run: mounting a small file system needs root");
        return;
    }
    w.pg.hand_over(&dir).unwrap();
    let admin = w.pg.conn("postgres").connect().await.unwrap();
    for sql in [
        format!("CREATE TABLESPACE small LOCATION '{}'", dir.display()),
        "CREATE DATABASE dst TABLESPACE small".to_string(),
    ] {
        admin.batch_execute(&sql).await.unwrap();
    }
    let out = pgbunker(
        &[
            "--json",
            "restore",
            "--repo",
            &repo,
            "latest",
            "--target",
            &w.pg.url("dst"),
        ],
        &ENV,
    );
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    only_big_failed(&out, &["No space left on device"]);
    let dst = w.pg.conn("dst");
    whole_tables_only(&src, &dst, "full target disk").await;
    disk.grow();
    ok(pgbunker(
        &[
            "restore",
            "--repo",
            &repo,
            "latest",
            "-t",
            "public.big",
            "--data-only",
            "--target",
            &w.pg.url("dst"),
        ],
        &ENV,
    ));
    assert_eq!(all_rows(&dst).await, all_rows(&src).await);
}

/// `verify` holds a reader's lock while it reads a backup: a prune that runs meanwhile
/// keeps that backup instead of deleting its chunks under the check (which would
/// report a sound backup as damaged), and removes it once the verify is done.
#[tokio::test(flavor = "multi_thread")]
async fn a_prune_during_a_verify_keeps_the_backup_being_checked() {
    let lab = S3Lab::start(&[]).await;
    lab.proxy.set_rate(0);
    let url = lab.w.pg.url("src");
    for _ in 0..2 {
        ok(pgbunker(&["backup", "--repo", &lab.repo, &url], &lab.env));
    }
    let older = statuses(&lab.repo, &lab.env).last().unwrap().0.clone();
    // Slow enough that the verify is still reading when the prune has run.
    lab.proxy.set_rate(SLOW / 5);
    let before = lab.proxy.passed.load(Ordering::SeqCst);
    let verify = spawn(&["verify", "--repo", &lab.repo, "--data", &older], &lab.env);
    // Chunks are on their way down: the lock is held.
    lab.proxy.wait_for_traffic(before + (2 << 20)).await;
    let prune = |what: &str| -> serde_json::Value {
        let out = ok(pgbunker(
            &[
                "--json",
                "prune",
                "--repo",
                &lab.repo,
                "--keep-last",
                "1",
                "--grace",
                "0",
            ],
            &lab.env,
        ));
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{what}: {e}: {out}"))
    };
    let during = prune("during the verify");
    assert_eq!(during["tombstoned"], serde_json::json!([]), "{during}");
    let verified = finish(verify);
    assert_eq!(verified.status.code(), Some(0), "{}", stderr(&verified));
    lab.proxy.set_rate(0);
    let after = prune("after the verify");
    assert_eq!(after["tombstoned"], serde_json::json!([older]), "{after}");
}
