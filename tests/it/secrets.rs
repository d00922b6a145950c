//! Secrets never leave the process: a full cycle run with the most verbose logging
//! prints no password, key or passphrase (in any spelling) on stdout or stderr, in
//! `--json` output, audit records (the repository's and the `backup_audit_log` table)
//! or any file it writes; the process list never shows a password given on the
//! command line; and everything written to local disk is owner-only.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;

use crate::support::{files, ok, pgbunker, pgbunker_command, stderr, stdout, World};

const PASSWORD: &str = "Pw-q7Zr4-Unguessable-5830";
const WRONG_PASSWORD: &str = "Wrong-Pw-h2Kx-9914";
const PASSPHRASE: &str = "Quiet-Meadow-Passphrase-6247";
const WRONG_KEY: &str = "00000000000000000000000000000000000000000000000000000000000000aa";
const KEY_BYTES: [u8; 32] = [
    0xc3, 0x5e, 0x91, 0x07, 0x4a, 0xd8, 0x26, 0xfb, 0x11, 0x9e, 0x73, 0x0c, 0xb4, 0x58, 0xe2, 0x6d,
    0x39, 0xa7, 0x04, 0xcf, 0x82, 0x1b, 0x6e, 0xf5, 0x40, 0xd3, 0x97, 0x2a, 0x8c, 0x15, 0x7b, 0xe9,
];
/// Looks like a cloud secret pasted into a repository URL.
const CLOUD_SECRET: &str = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYzz";

/// Every spelling of every secret that must never appear.
fn forbidden() -> Vec<(String, Vec<u8>)> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let b64_nopad = base64::engine::general_purpose::STANDARD_NO_PAD;
    let b64_url = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut v: Vec<(String, Vec<u8>)> = vec![
        ("the key, raw".into(), KEY_BYTES.to_vec()),
        ("the key, hex".into(), hex::encode(KEY_BYTES).into_bytes()),
        (
            "the key, upper-case hex".into(),
            hex::encode_upper(KEY_BYTES).into_bytes(),
        ),
        ("the key, base64".into(), b64.encode(KEY_BYTES).into_bytes()),
        (
            "the key, base64 unpadded".into(),
            b64_nopad.encode(KEY_BYTES).into_bytes(),
        ),
        (
            "the key, base64url".into(),
            b64_url.encode(KEY_BYTES).into_bytes(),
        ),
        ("the wrong key".into(), WRONG_KEY.as_bytes().to_vec()),
        ("the masking key".into(), MASK_KEY.as_bytes().to_vec()),
    ];
    for (what, s) in [
        ("the password", PASSWORD),
        ("the wrong password", WRONG_PASSWORD),
        ("the passphrase", PASSPHRASE),
        ("the cloud secret", CLOUD_SECRET),
    ] {
        v.push((what.into(), s.as_bytes().to_vec()));
        v.push((format!("{what}, hex"), hex::encode(s).into_bytes()));
        v.push((format!("{what}, base64"), b64.encode(s).into_bytes()));
    }
    v
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Everything one run showed, labelled for the failure message.
struct Seen {
    outputs: Vec<(String, Vec<u8>)>,
}

impl Seen {
    fn run(&mut self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let o = pgbunker(args, env);
        let label = format!("pgbunker {}", args.join(" "));
        self.outputs
            .push((format!("stdout of {label}"), o.stdout.clone()));
        self.outputs
            .push((format!("stderr of {label}"), o.stderr.clone()));
        o
    }

    fn file_tree(&mut self, dir: &Path) {
        for f in files(dir) {
            self.outputs
                .push((f.display().to_string(), std::fs::read(&f).unwrap()));
        }
    }

    fn assert_clean(&self) {
        for (what, bytes) in &self.outputs {
            for (secret, form) in forbidden() {
                assert!(
                    !contains(bytes, &form),
                    "{secret} appears in {what}:\n{}",
                    String::from_utf8_lossy(bytes)
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn no_secret_in_any_output_of_a_full_cycle() {
    let w = World::start();
    w.fixture_db("heart", 1).await;
    w.pg.add_password_role("clinic_admin", PASSWORD, true)
        .await
        .unwrap();
    w.empty_db("restored").await;
    w.empty_db("scratch").await;
    w.empty_db("auditlog").await;
    let port = w.pg.port();
    let url = |db: &str| format!("postgresql://clinic_admin:{PASSWORD}@127.0.0.1:{port}/{db}");
    let conninfo = |db: &str| {
        format!("host=127.0.0.1 port={port} user=clinic_admin password='{PASSWORD}' dbname={db}")
    };
    let keyfile = w.dir.path().join("repo.key");
    std::fs::write(&keyfile, hex::encode(KEY_BYTES)).unwrap();
    std::fs::set_permissions(&keyfile, std::fs::Permissions::from_mode(0o600)).unwrap();
    let keyfile = keyfile.display().to_string();
    let state = w.dir.path().join("state").display().to_string();
    let reports = w.dir.path().join("reports").display().to_string();
    let exported = w.dir.path().join("export").display().to_string();
    let prom = w.dir.path().join("pgbunker.prom").display().to_string();
    let repo = w.repo("repo");
    let audit_db = url("auditlog");
    // The most verbose logging there is, on every run.
    let env = [
        ("PGBUNKER_KEY_FILE", keyfile.as_str()),
        ("PGBUNKER_LOG", "trace"),
        ("PGBUNKER_STATE_DIR", state.as_str()),
        ("PGBUNKER_AUDIT_DB", audit_db.as_str()),
    ];
    let mut seen = Seen {
        outputs: Vec::new(),
    };
    let mut run = |args: &[&str], env: &[(&str, &str)]| seen.run(args, env);

    ok(run(&["-vv", "init", "--repo", &repo], &env));
    ok(run(
        &["-vv", "backup", "--repo", &repo, &url("heart")],
        &env,
    ));
    ok(run(
        &[
            "-vv",
            "--json",
            "backup",
            "--repo",
            &repo,
            "-d",
            &conninfo("heart"),
        ],
        &env,
    ));
    ok(run(&["-vv", "list", "--repo", &repo], &env));
    ok(run(&["-vv", "--json", "list", "--repo", &repo], &env));
    ok(run(
        &["-vv", "verify", "--repo", &repo, "--data", "all"],
        &env,
    ));
    ok(run(
        &[
            "-vv",
            "--json",
            "restore",
            "--repo",
            &repo,
            "latest",
            "--target",
            &url("restored"),
        ],
        &env,
    ));
    // A masked restore, with the masking key in the environment too.
    let preset = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/heart_recovery/mask.toml")
        .display()
        .to_string();
    let mut masked_env = env.to_vec();
    masked_env.push(("PGBUNKER_MASK_KEY", MASK_KEY));
    w.empty_db("masked").await;
    ok(run(
        &[
            "-vv",
            "--json",
            "restore",
            "--repo",
            &repo,
            "latest",
            "--target",
            &url("masked"),
            "--mask",
            &preset,
        ],
        &masked_env,
    ));
    ok(run(
        &[
            "-vv",
            "verify",
            "--repo",
            &repo,
            "latest",
            "--restore-test",
            "--scratch",
            &url("scratch"),
            "--report-dir",
            &reports,
        ],
        &env,
    ));
    ok(run(
        &[
            "-vv",
            "export",
            "--repo",
            &repo,
            "latest",
            "--out",
            &exported,
            "-t",
            "public.patients",
        ],
        &env,
    ));
    // A second key slot, a passphrase, then used to open the repository.
    let mut with_new = env.to_vec();
    with_new.push(("PGBUNKER_NEW_PASSPHRASE", PASSPHRASE));
    ok(run(&["-vv", "key", "add", "--repo", &repo], &with_new));
    let by_passphrase = [
        ("PGBUNKER_PASSPHRASE", PASSPHRASE),
        ("PGBUNKER_LOG", "trace"),
        ("PGBUNKER_STATE_DIR", state.as_str()),
    ];
    ok(run(
        &["-vv", "--json", "key", "list", "--repo", &repo],
        &by_passphrase,
    ));
    ok(run(
        &[
            "-vv",
            "prune",
            "--repo",
            &repo,
            "--keep-last",
            "1",
            "--grace",
            "0",
        ],
        &env,
    ));
    let o = run(
        &[
            "-vv",
            "--json",
            "check",
            "--repo",
            &repo,
            "--prometheus",
            &prom,
        ],
        &env,
    );
    assert!(matches!(o.status.code(), Some(0 | 1)), "{}", stderr(&o));

    // Failures: a wrong password, a wrong key, a pasted cloud secret, and flags clap
    // rejects while quoting the URL.
    let wrong_pw = format!("postgresql://clinic_admin:{WRONG_PASSWORD}@127.0.0.1:{port}/heart");
    let o = run(&["-vv", "backup", "--repo", &repo, &wrong_pw], &env);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let o = run(
        &["-vv", "backup", "--repo", &repo, "-d", &format!("host=127.0.0.1 port={port} user=clinic_admin password={WRONG_PASSWORD} dbname=heart")],
        &env,
    );
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let mut wrong_key = env.to_vec();
    wrong_key.retain(|(k, _)| *k != "PGBUNKER_KEY_FILE");
    wrong_key.push(("PGBUNKER_KEY", WRONG_KEY));
    let o = run(&["-vv", "list", "--repo", &repo], &wrong_key);
    assert_eq!(o.status.code(), Some(6), "{}", stderr(&o));
    let o = run(
        &[
            "-vv",
            "--json",
            "check",
            "--repo",
            &format!("s3://AKIAEXAMPLE:{CLOUD_SECRET}@bucket/x"),
        ],
        &env,
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let o = run(
        &[
            "-vv",
            "--json",
            "init",
            "--repo",
            &format!("s3://bucket/x?secret_access_key={CLOUD_SECRET}"),
        ],
        &env,
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    // `--target` forgotten: clap sees an unexpected argument and quotes it.
    let o = run(
        &["restore", "--repo", &repo, "latest", &url("restored")],
        &env,
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!(
            "postgresql://clinic_admin@127.0.0.1:{port}/restored"
        )),
        "{}",
        stderr(&o)
    );
    let o = run(&["backup", "--repo", &repo, "--jobs", &url("x")], &env);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let o = run(
        &["backup", "--repo", &repo, &format!("--jobs={}", url("x"))],
        &env,
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));

    // The audit trail, both copies.
    let audit = ok(run(&["--json", "audit", "--repo", &repo], &env));
    let records: serde_json::Value = serde_json::from_str(&audit).unwrap();
    assert!(
        records["records"].as_array().unwrap().len() >= 10,
        "{audit}"
    );
    let client = w.pg.conn("auditlog").connect().await.unwrap();
    let rows: Vec<String> = client
        .query("SELECT t::text FROM backup_audit_log t", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(rows.len() >= 10, "{rows:?}");
    seen.outputs
        .push(("backup_audit_log".into(), rows.join("\n").into_bytes()));
    // Every file written: the repository (audit records included, sealed), the
    // state folder, restore-test reports, the export, the Prometheus textfile.
    for dir in [&repo, &state, &reports, &exported] {
        seen.file_tree(Path::new(dir));
    }
    seen.outputs
        .push((prom.clone(), std::fs::read(&prom).unwrap()));
    assert!(seen.outputs.len() > 60, "{} outputs", seen.outputs.len());
    seen.assert_clean();
}

/// Waits until a session of `application_name = 'pgbunker'` waits for a lock.
async fn wait_for_lock_waiters(w: &World, n: i64) {
    let client = w.pg.conn("postgres").connect().await.unwrap();
    let start = Instant::now();
    loop {
        let waiting: i64 = client
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pgbunker' \
                 AND wait_event_type = 'Lock'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if waiting >= n {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the backups never waited for the lock"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_process_list_never_shows_a_password() {
    let w = World::start();
    w.fixture_db("heart", 1).await;
    w.pg.add_password_role("clinic_admin", PASSWORD, true)
        .await
        .unwrap();
    let port = w.pg.port();
    let url = format!("postgresql://clinic_admin:{PASSWORD}@127.0.0.1:{port}/heart");
    let conninfo =
        format!("host=127.0.0.1 port={port} user=clinic_admin password={PASSWORD} dbname=heart");
    let audit_db = format!("postgresql://clinic_admin:{PASSWORD}@127.0.0.1:{port}/postgres");
    let (r1, r2) = (w.init_repo("r1"), w.init_repo("r2"));
    // Hold a lock the backups must wait for, so they are surely running when looked at.
    let locker = w.pg.conn("heart").connect().await.unwrap();
    locker
        .batch_execute("BEGIN; LOCK TABLE public.patients IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let env = [("PGBUNKER_KEY", crate::support::KEY)];
    let spawn = |args: &[&str]| {
        pgbunker_command(args, &env)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let a = spawn(&["--audit-db", &audit_db, "backup", "--repo", &r1, &url]);
    let b = spawn(&["backup", "--repo", &r2, "--dbname", &conninfo]);
    wait_for_lock_waiters(&w, 2).await;
    let cmdline = |pid: u32| {
        let raw = std::fs::read(PathBuf::from(format!("/proc/{pid}/cmdline"))).unwrap();
        String::from_utf8_lossy(&raw).replace('\0', " ")
    };
    let (ca, cb) = (cmdline(a.id()), cmdline(b.id()));
    locker.batch_execute("COMMIT").await.unwrap();
    let (oa, ob) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert!(oa.status.success(), "{}", stderr(&oa));
    assert!(ob.status.success(), "{}", stderr(&ob));
    for (c, shown) in [
        (
            &ca,
            format!("postgresql://clinic_admin@127.0.0.1:{port}/heart"),
        ),
        (
            &cb,
            format!("host=127.0.0.1 port={port} user=clinic_admin dbname=heart"),
        ),
        (
            &ca,
            format!("postgresql://clinic_admin@127.0.0.1:{port}/postgres"),
        ),
    ] {
        assert!(!c.contains(PASSWORD), "ps shows the password: {c}");
        assert!(c.contains(&shown), "{c}");
    }
    for o in [&oa, &ob] {
        assert!(!stdout(o).contains(PASSWORD) && !stderr(o).contains(PASSWORD));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn everything_written_to_local_disk_is_owner_only() {
    let w = World::start();
    w.fixture_db("heart", 1).await;
    w.empty_db("scratch").await;
    let state = w.dir.path().join("state");
    let reports = w.dir.path().join("reports");
    let exported = w.dir.path().join("export");
    let state_s = state.display().to_string();
    let env = [
        ("PGBUNKER_KEY", crate::support::KEY),
        ("PGBUNKER_STATE_DIR", state_s.as_str()),
    ];
    let repo = w.repo("repo");
    ok(pgbunker(&["init", "--repo", &repo], &env));
    ok(w.backup(&repo, "heart", &[]));
    ok(pgbunker(
        &["backup", "--repo", &repo, &w.pg.url("heart")],
        &env,
    ));
    ok(pgbunker(
        &["prune", "--repo", &repo, "--keep-last", "1", "--grace", "0"],
        &env,
    ));
    ok(pgbunker(
        &[
            "verify",
            "--repo",
            &repo,
            "latest",
            "--restore-test",
            "--scratch",
            &w.pg.url("scratch"),
            "--report-dir",
            &reports.display().to_string(),
        ],
        &env,
    ));
    ok(pgbunker(
        &[
            "export",
            "--repo",
            &repo,
            "latest",
            "--out",
            &exported.display().to_string(),
            "-t",
            "public.patients",
        ],
        &env,
    ));
    let mut checked = 0;
    for root in [Path::new(&repo), &state, &reports, &exported] {
        let mut stack = vec![root.to_path_buf()];
        while let Some(p) = stack.pop() {
            let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode & 0o077, 0, "{} has mode {mode:o}", p.display());
            checked += 1;
            if p.is_dir() {
                stack.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
            }
        }
    }
    assert!(checked > 30, "{checked} paths");
}

#[test]
fn key_and_passphrase_files_open_to_others_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo").display().to_string();
    let file = |name: &str, body: &[u8], mode: u32| {
        let p = dir.path().join(name);
        std::fs::write(&p, body).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p.display().to_string()
    };
    let key = file("world.key", hex::encode(KEY_BYTES).as_bytes(), 0o644);
    let o = pgbunker(&["init", "--repo", &repo], &[("PGBUNKER_KEY_FILE", &key)]);
    assert_eq!(o.status.code(), Some(6), "{}", stderr(&o));
    assert_eq!(
        stderr(&o).lines().next().unwrap(),
        format!(
            "error: PGBUNKER_KEY_FILE names {key}, which group or others may read or write \
             (mode 0644): a key or passphrase file must be its owner's only; run \
             `chmod 600 {key}`"
        )
    );
    assert!(!Path::new(&repo).join("pgbunker.json").exists());
    // The same key, owner-only, is fine; then every other way in is checked too.
    let own = file("own.key", hex::encode(KEY_BYTES).as_bytes(), 0o600);
    ok(pgbunker(
        &["init", "--repo", &repo],
        &[("PGBUNKER_KEY_FILE", &own)],
    ));
    let pass = file("group.pass", format!("{PASSPHRASE}\n").as_bytes(), 0o620);
    let o = pgbunker(
        &["key", "add", "--repo", &repo],
        &[
            ("PGBUNKER_KEY_FILE", &own),
            ("PGBUNKER_NEW_PASSPHRASE_FILE", &pass),
        ],
    );
    assert_eq!(o.status.code(), Some(6), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!(
            "PGBUNKER_NEW_PASSPHRASE_FILE names {pass}, which group or others may read or \
             write (mode 0620)"
        )),
        "{}",
        stderr(&o)
    );
    let pass = file("others.pass", format!("{PASSPHRASE}\n").as_bytes(), 0o604);
    let o = pgbunker(
        &["list", "--repo", &repo],
        &[("PGBUNKER_PASSPHRASE_FILE", &pass)],
    );
    assert_eq!(o.status.code(), Some(6), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!("run `chmod 600 {pass}`")),
        "{}",
        stderr(&o)
    );
    let new_key = file("new.key", &[7u8; 32], 0o666);
    let o = pgbunker(
        &["key", "add", "--repo", &repo],
        &[
            ("PGBUNKER_KEY_FILE", &own),
            ("PGBUNKER_NEW_KEY_FILE", &new_key),
        ],
    );
    assert_eq!(o.status.code(), Some(6), "{}", stderr(&o));
    assert!(stderr(&o).contains("(mode 0666)"), "{}", stderr(&o));
    // The settings file's key_file follows the same rule.
    let cfg = dir.path().join("pgbunker.toml");
    std::fs::write(&cfg, format!("key_file = {key:?}\n")).unwrap();
    let o = pgbunker(
        &["list", "--repo", &repo, "--config", cfg.to_str().unwrap()],
        &[],
    );
    assert_eq!(o.status.code(), Some(6), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!("key_file names {key}, which group or others")),
        "{}",
        stderr(&o)
    );
}

/// A TCP server that accepts connections and never answers: a command talking to it
/// as its object store stays alive, past its start-up, for as long as the test looks.
struct Silent {
    listener: std::net::TcpListener,
    held: Vec<std::net::TcpStream>,
}

impl Silent {
    fn start() -> Silent {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        Silent {
            listener,
            held: Vec::new(),
        }
    }

    fn port(&self) -> u16 {
        self.listener.local_addr().unwrap().port()
    }

    /// Waits for the first connection: the process is past its start-up then.
    fn wait_for_a_client(&mut self) {
        let start = Instant::now();
        loop {
            match self.listener.accept() {
                Ok((s, _)) => {
                    self.held.push(s);
                    return;
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    assert!(
                        start.elapsed() < Duration::from_secs(60),
                        "pgbunker never reached its object store"
                    );
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => panic!("accept: {e}"),
            }
        }
    }
}

/// A masking key, kept out of `/proc` like the repository's.
const MASK_KEY: &str = "5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed";

#[test]
fn a_running_pgbunker_shows_no_secret_in_proc_and_cannot_dump_core() {
    use std::os::unix::fs::MetadataExt;
    use std::os::unix::process::CommandExt;
    let mut store = Silent::start();
    let port = store.port();
    let repo = format!(
        "s3://clinic/repo?endpoint=http://127.0.0.1:{port}&allow_http=true&region=us-east-1"
    );
    let source = format!("postgresql://clinic_admin:{PASSWORD}@127.0.0.1:1/heart");
    let key = hex::encode(KEY_BYTES);
    let env = [
        ("PGBUNKER_KEY", key.as_str()),
        ("PGBUNKER_MASK_KEY", MASK_KEY),
        ("PGPASSWORD", WRONG_PASSWORD),
        ("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE"),
        ("AWS_SECRET_ACCESS_KEY", CLOUD_SECRET),
    ];
    let mut cmd = pgbunker_command(&["backup", "--repo", &repo, &source], &env);
    cmd.stdout(Stdio::null()).stderr(Stdio::null());
    // As root the test reads any process's files whatever its dumpable flag: run
    // pgbunker as another user, so the owner of /proc/<pid>/environ shows the flag (a
    // process that cannot dump has its files shown as root's).
    // SAFETY: geteuid only reads this process's effective user id.
    let root = unsafe { libc::geteuid() } == 0;
    if root {
        cmd.uid(65534).gid(65534);
    }
    let mut child = cmd.spawn().unwrap();
    store.wait_for_a_client();
    let pid = child.id();
    let proc_file = |name: &str| std::fs::read(format!("/proc/{pid}/{name}"));
    let cmdline = proc_file("cmdline").unwrap();
    let environ = proc_file("environ");
    let limits = String::from_utf8(proc_file("limits").unwrap()).unwrap();
    // Files of a process that cannot dump belong to root (its folder keeps its owner).
    let owner = std::fs::metadata(format!("/proc/{pid}/environ"))
        .unwrap()
        .uid();
    child.kill().unwrap();
    child.wait().unwrap();

    // Not dumpable, and no core file either.
    assert_eq!(
        owner, 0,
        "/proc/{pid}/environ belongs to uid {owner}: the process is dumpable"
    );
    let core = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .unwrap();
    assert_eq!(
        core.split_whitespace().collect::<Vec<_>>(),
        ["Max", "core", "file", "size", "0", "0", "bytes"],
        "{limits}"
    );
    // The arguments show the URL without its password.
    let shown = String::from_utf8_lossy(&cmdline).replace('\0', " ");
    assert!(
        shown.contains("postgresql://clinic_admin@127.0.0.1:1/heart"),
        "{shown}"
    );
    let mut seen = Seen {
        outputs: vec![("/proc/<pid>/cmdline".into(), cmdline)],
    };
    match environ {
        Ok(environ) => {
            let text = String::from_utf8_lossy(&environ).into_owned();
            // A real environment was read: the harmless variables are still there.
            assert!(text.contains("AWS_ACCESS_KEY_ID=AKIAEXAMPLE"), "{text:?}");
            for name in [
                "PGBUNKER_KEY=",
                "PGBUNKER_MASK_KEY=",
                "PGBUNKER_HIDDEN_ARGS=",
                "PGPASSWORD=",
                "AWS_SECRET_ACCESS_KEY=",
            ] {
                assert!(
                    !text.contains(name),
                    "/proc/{pid}/environ shows {name}: {text:?}"
                );
            }
            seen.outputs.push(("/proc/<pid>/environ".into(), environ));
        }
        // Only root reads the environment of a process that cannot dump.
        Err(e) => assert!(
            !root && e.kind() == std::io::ErrorKind::PermissionDenied,
            "/proc/{pid}/environ: {e}"
        ),
    }
    seen.assert_clean();
}
