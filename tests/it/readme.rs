//! README.md's schedule, as written: its cron lines run after the documented install
//! (`scripts/install`), in a shell with cron's environment (`PATH=/usr/bin:/bin`, a
//! `HOME`, nothing else), against a real repository and database (issue 24, item 1).
//!
//! The lines are read from README.md, never copied here. Only what names this
//! machine's places is swapped for the test's own: the install prefix
//! (`/usr/local`), the folders under `/var`, the scratch server's address
//! (`postgres@localhost/` → the throwaway server's) and `mail` (a stub that records
//! what would have been mailed). The settings come from the settings file the README
//! says the lines use, here `$HOME/.config/pgbunker/pgbunker.toml`.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use crate::support::*;

const README: &str = include_str!("../../README.md");
const INSTALLED: &str = "/usr/local/bin/pgbunker";

/// Every line of README.md's ```cron blocks that is not a comment: (schedule,
/// command), the command as written after the five time fields.
fn cron_lines() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut inside = false;
    for line in README.lines() {
        if line.trim_start().starts_with("```") {
            inside = !inside && line.trim() == "```cron";
            continue;
        }
        let t = line.trim();
        if !inside || t.is_empty() || t.starts_with('#') {
            continue;
        }
        let mut rest = t;
        let mut fields = Vec::new();
        for _ in 0..5 {
            let end = rest.find(char::is_whitespace).expect("five time fields");
            fields.push(&rest[..end]);
            rest = rest[end..].trim_start();
        }
        out.push((fields.join(" "), rest.to_string()));
    }
    out
}

fn cron_shell(line: &str, home: &Path) -> Output {
    Command::new("/usr/bin/env")
        .args(["-i", "PATH=/usr/bin:/bin", "SHELL=/bin/sh", "LOGNAME=cron"])
        .arg(format!("HOME={}", home.display()))
        .args(["/bin/sh", "-c", line])
        .output()
        .expect("run sh")
}

#[test]
fn readme_cron_lines_call_pgbunker_by_its_installed_path() {
    let lines = cron_lines();
    assert!(lines.len() >= 5, "README.md's cron blocks: {lines:?}");
    for (_, cmd) in &lines {
        // Every pgbunker the line runs is the installed one: no bare `pgbunker`,
        // which cron's PATH does not find.
        for (i, _) in cmd.match_indices("pgbunker ") {
            let word_start = cmd[..i]
                .rfind(|c: char| c.is_whitespace() || c == '|' || c == '&')
                .map_or(0, |j| j + 1);
            let word = &cmd[word_start..i + "pgbunker".len()];
            let quoted = cmd[..i].matches('"').count() % 2 == 1;
            assert!(
                quoted || word == INSTALLED,
                "README.md's cron line calls `{word}`, not {INSTALLED}: {cmd}"
            );
        }
        assert!(cmd.starts_with(INSTALLED), "{cmd}");
    }
    // And the systemd units name the same path.
    for l in README.lines().filter(|l| l.starts_with("ExecStart=")) {
        assert!(
            l.starts_with(&format!("ExecStart={INSTALLED} ")),
            "README.md's unit: {l}"
        );
    }
}

#[tokio::test]
async fn readme_cron_lines_run_as_written_after_the_documented_install() {
    let w = World::start();
    let tmp = w.dir.path();

    // The documented install, without the release build: the test's binary.
    let prefix = tmp.join("prefix");
    let out = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/install"))
        .args(["--prefix", prefix.to_str().unwrap()])
        .args(["--binary", env!("CARGO_BIN_EXE_pgbunker")])
        .output()
        .expect("run scripts/install");
    assert!(
        out.status.success(),
        "scripts/install failed: {}{}",
        stdout(&out),
        stderr(&out)
    );
    let bin = prefix.join("bin/pgbunker");
    for f in [
        "bin/pgbunker",
        "share/man/man1/pgbunker.1",
        "share/man/man1/pgbunker-backup.1",
        "share/man/man1/pgbunker-restore.1",
        "share/man/man1/pgbunker-key-add.1",
        "share/bash-completion/completions/pgbunker",
        "share/zsh/site-functions/_pgbunker",
        "share/fish/vendor_completions.d/pgbunker.fish",
    ] {
        let meta = std::fs::metadata(prefix.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        assert_eq!(
            meta.permissions().mode() & 0o044,
            0o044,
            "{f} readable by all"
        );
    }
    let man = std::fs::read_to_string(prefix.join("share/man/man1/pgbunker-backup.1")).unwrap();
    assert!(man.contains("compress\\-level"), "{man}");
    let bash =
        std::fs::read_to_string(prefix.join("share/bash-completion/completions/pgbunker")).unwrap();
    assert!(
        bash.contains("--restore-test"),
        "bash completion knows verify's flags"
    );

    // cron's environment does not find a bare `pgbunker` (why the README's lines
    // call it by its path).
    let home = tmp.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let bare = cron_shell("pgbunker --version", &home);
    assert!(!bare.status.success(), "bare pgbunker found on cron's PATH");

    // The settings file the lines rely on, a key file, a repository, a database.
    w.fixture_db("heart_recovery", 1).await;
    w.empty_db("heart_recovery_test").await;
    let key = tmp.join("repo.key");
    std::fs::write(&key, KEY).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let repo = w.repo("repo");
    let config_dir = home.join(".config/pgbunker");
    std::fs::create_dir_all(&config_dir).unwrap();
    std::fs::write(
        config_dir.join("pgbunker.toml"),
        format!(
            "repo = \"{repo}\"\nkey_file = \"{}\"\n[backup]\nsource = \"{}\"\n\
             [prune]\nkeep_within = \"30d\"\nkeep_monthly = 12\n",
            key.display(),
            w.pg.url("heart_recovery")
        ),
    )
    .unwrap();
    let init = cron_shell(&format!("{} init", bin.display()), &home);
    assert!(init.status.success(), "init: {}", stderr(&init));

    // `mail`: records its arguments and what it was piped (with -E, as mailutils'
    // and bsd-mailx's, nothing when that was empty).
    let stub = tmp.join("mail");
    let mailed = tmp.join("mailed");
    std::fs::write(
        &stub,
        format!(
            "#!/bin/sh\nbody=\"$(cat)\"\n[ -z \"$body\" ] && [ \"$1\" = -E ] && exit 0\n\
             printf 'mail %s\\n%s\\n' \"$*\" \"$body\" >>'{}'\n",
            mailed.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&stub, std::fs::Permissions::from_mode(0o755)).unwrap();
    let textfile = tmp.join("textfile");
    std::fs::create_dir_all(&textfile).unwrap();
    let results = tmp.join("test-results");
    let port_url = w.pg.url("");

    let lines = cron_lines();
    for (schedule, line) in &lines {
        let run = line
            .replace(INSTALLED, bin.to_str().unwrap())
            .replace(
                "/var/lib/node_exporter/textfile",
                textfile.to_str().unwrap(),
            )
            .replace("/var/backups/test-results", results.to_str().unwrap())
            .replace("postgresql://postgres@localhost/", &port_url)
            .replace(" mail -", &format!(" {} -", stub.display()));
        let out = cron_shell(&run, &home);
        let mail = std::fs::read_to_string(&mailed).unwrap_or_default();
        assert!(
            out.status.success() && mail.is_empty(),
            "README.md's cron line `{schedule}  {line}` failed (exit {:?})\nran: {run}\n\
             stdout: {}\nstderr: {}\nmailed: {mail}",
            out.status.code(),
            stdout(&out),
            stderr(&out)
        );
    }

    // What the lines did: backups, a verified sample, a restore-test report, a
    // Prometheus textfile that says OK.
    let list = cron_shell(&format!("{} --json list", bin.display()), &home);
    assert!(list.status.success(), "{}", stderr(&list));
    let backups = json(&stdout(&list));
    assert!(
        backups.to_string().contains("\"complete\""),
        "the cron lines' backups: {backups}"
    );
    assert!(
        std::fs::read_dir(&results).map_or(0, |d| d.count()) > 0,
        "the restore test wrote its report into --report-dir"
    );
    let prom = std::fs::read_to_string(textfile.join("pgbunker.prom")).expect("textfile");
    assert!(prom.contains("pgbunker_check_status 0"), "{prom}");
}
