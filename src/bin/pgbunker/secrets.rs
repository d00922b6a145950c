//! Passwords given on the command line, kept out of the process list, of clap's
//! messages and of panic messages.
//!
//! Every user of the machine can read a process's arguments (`ps`,
//! `/proc/<pid>/cmdline`); only the same user and root can read its environment. So
//! when an argument carries a database password — a URL `postgresql://user:secret@host/db`,
//! a `password=` option in one, or `password=…` in a `key=value` connection string —
//! pgbunker first thing re-executes itself (`execve` of `/proc/self/exe`: the same
//! process id, before any thread, connection or file exists) with the password cut out
//! of that argument, and hands the original arguments to the new image in the
//! environment variable [`HANDOVER`]. The new image takes them back, removes the
//! variable from its environment (child processes never see it) and parses them as
//! given; `ps` shows `postgresql://user@host/db`.
//!
//! What remains: the first image shows the password for the few milliseconds before
//! the re-exec. A password in `~/.pgpass` or `PGPASSWORD` is never on the command line
//! at all, and stays the advice.

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};

use pgbunker::pg::conninfo;

/// Hands the original arguments to the re-executed image: `index:hex,index:hex`.
pub const HANDOVER: &str = "PGBUNKER_HIDDEN_ARGS";

/// The arguments to parse, and what to keep out of messages.
pub struct Args {
    /// The arguments as the user gave them, passwords included.
    pub args: Vec<OsString>,
    /// Per argument that holds a password: (as given, as shown).
    pub hidden: Vec<(String, String)>,
    /// The passwords themselves, as they appear in the arguments.
    pub passwords: Vec<String>,
}

/// Restores the arguments after a re-exec, or re-executes when an argument holds a
/// password. Call first in `main`, while the process has a single thread.
pub fn hide_passwords() -> Args {
    let mut args: Vec<OsString> = std::env::args_os().collect();
    let handover = std::env::var_os(HANDOVER);
    // Single-threaded still: nothing else reads the environment concurrently.
    std::env::remove_var(HANDOVER);
    let shown: Vec<Option<Redacted>> = args.iter().map(|a| redact(a.as_bytes())).collect();
    if shown.iter().all(Option::is_none) {
        for (i, original) in handover
            .as_ref()
            .map_or_else(Vec::new, |h| decode_handover(h.as_bytes()))
        {
            // Only an argument that is exactly what we made of it is taken back: a
            // stray variable in the environment must not change what runs.
            let redacted = redact(&original).map(|r| r.shown);
            if i < args.len() && redacted.as_deref() == Some(args[i].as_bytes()) {
                args[i] = OsString::from_vec(original);
            }
        }
        return collect(args);
    }
    // A password in our own arguments: any handover in the environment is stale.
    let handover: Vec<String> = args
        .iter()
        .zip(&shown)
        .enumerate()
        .filter(|(_, (_, r))| r.is_some())
        .map(|(i, (a, _))| format!("{i}:{}", hex::encode(a.as_bytes())))
        .collect();
    let new_args: Vec<OsString> = args
        .iter()
        .zip(shown)
        .map(|(a, r)| match r {
            Some(r) => OsString::from_vec(r.shown),
            None => a.clone(),
        })
        .collect();
    use std::os::unix::process::CommandExt;
    let err = std::process::Command::new("/proc/self/exe")
        .arg0(&new_args[0])
        .args(&new_args[1..])
        .env(HANDOVER, handover.join(","))
        .exec();
    // Only returns on failure (no /proc?): run on, the password still visible.
    eprintln!(
        "warning: could not hide the database password from the process list ({err}); \
         put it in ~/.pgpass or PGPASSWORD instead of the command line"
    );
    collect(args)
}

fn collect(args: Vec<OsString>) -> Args {
    let mut hidden = Vec::new();
    let mut passwords = Vec::new();
    for a in &args {
        if let Some(r) = redact(a.as_bytes()) {
            hidden.push((
                a.to_string_lossy().into_owned(),
                String::from_utf8_lossy(&r.shown).into_owned(),
            ));
            passwords.extend(
                r.passwords
                    .iter()
                    .map(|p| String::from_utf8_lossy(p).into_owned()),
            );
        }
    }
    Args {
        args,
        hidden,
        passwords,
    }
}

fn decode_handover(v: &[u8]) -> Vec<(usize, Vec<u8>)> {
    v.split(|&b| b == b',')
        .filter_map(|item| {
            let s = std::str::from_utf8(item).ok()?;
            let (i, h) = s.split_once(':')?;
            Some((i.parse().ok()?, hex::decode(h).ok()?))
        })
        .collect()
}

/// An argument with its passwords cut out.
#[derive(Debug, PartialEq, Eq)]
struct Redacted {
    shown: Vec<u8>,
    passwords: Vec<Vec<u8>>,
}

/// `arg` without its passwords, or `None` when it holds none. Reads what
/// tokio-postgres (like libpq) reads: in a `postgres://` or `postgresql://` URL the
/// user info is everything up to the first `@`, the password what follows its first
/// `:`, and options after `?` are `key=value` pairs split on `&`; in a `key=value`
/// string a value is quoted (`'…'`, backslash escapes) or runs to the next blank.
/// Every key ending in `password` (`sslpassword` too) counts. An argument that only
/// looks like one loses a bit of its shown text: it is never what gets parsed.
fn redact(arg: &[u8]) -> Option<Redacted> {
    let mut passwords = Vec::new();
    let shown = match find_url(arg) {
        Some(start) => redact_url(arg, start, &mut passwords),
        None => redact_conninfo(arg, &mut passwords),
    };
    passwords.retain(|p| !p.is_empty());
    (!passwords.is_empty()).then_some(Redacted { shown, passwords })
}

/// Where the part after `postgres://` or `postgresql://` starts.
fn find_url(arg: &[u8]) -> Option<usize> {
    ["postgresql://", "postgres://"]
        .iter()
        .filter_map(|p| {
            arg.windows(p.len())
                .position(|w| w.eq_ignore_ascii_case(p.as_bytes()))
                .map(|i| i + p.len())
        })
        .min()
}

fn is_password_key(key: &[u8]) -> bool {
    let key = conninfo::percent_decoded(key);
    key.len() >= 8 && key[key.len() - 8..].eq_ignore_ascii_case(b"password")
}

fn redact_url(arg: &[u8], start: usize, passwords: &mut Vec<Vec<u8>>) -> Vec<u8> {
    let mut out = arg[..start].to_vec();
    let mut rest = &arg[start..];
    if let Some(at) = rest.iter().position(|&b| b == b'@') {
        let creds = &rest[..at];
        match creds.iter().position(|&b| b == b':') {
            Some(colon) => {
                passwords.push(creds[colon + 1..].to_vec());
                out.extend_from_slice(&creds[..colon]);
            }
            None => out.extend_from_slice(creds),
        }
        out.push(b'@');
        rest = &rest[at + 1..];
    }
    match rest.iter().position(|&b| b == b'?') {
        None => out.extend_from_slice(rest),
        Some(q) => {
            out.extend_from_slice(&rest[..=q]);
            let kept: Vec<&[u8]> = conninfo::query_pairs(&rest[q + 1..])
                .filter(|&(_, key, value)| {
                    if is_password_key(key) {
                        passwords.push(value.to_vec());
                        false
                    } else {
                        true
                    }
                })
                .map(|(pair, _, _)| pair)
                .collect();
            out.extend_from_slice(&kept.join(&b'&'));
            if out.last() == Some(&b'?') {
                out.pop();
            }
        }
    }
    out
}

fn redact_conninfo(arg: &[u8], passwords: &mut Vec<Vec<u8>>) -> Vec<u8> {
    let mut out = Vec::with_capacity(arg.len());
    let mut i = 0;
    while i < arg.len() {
        // A keyword starts after a blank, the start or a `=` (`--target=password=…`).
        let at_word = i == 0 || arg[i - 1].is_ascii_whitespace() || arg[i - 1] == b'=';
        if at_word {
            let word_end = i + arg[i..]
                .iter()
                .take_while(|b| b.is_ascii_alphanumeric() || **b == b'_')
                .count();
            let j = conninfo::skip_blanks(arg, word_end);
            if word_end > i && j < arg.len() && arg[j] == b'=' && is_password_key(&arg[i..word_end])
            {
                let j = conninfo::skip_blanks(arg, j + 1);
                let end = conninfo::value(arg, j).end;
                passwords.push(arg[j..end].to_vec());
                // Drop the blank that separated it from what follows, if any.
                i = conninfo::skip_blanks(arg, end);
                continue;
            }
        }
        out.push(arg[i]);
        i += 1;
    }
    out
}

/// `text` with every hidden argument shown as on the process list, and every password
/// and `secrets` value replaced.
pub fn scrub(text: &str, args: &Args, secrets: &[String]) -> String {
    let mut out = text.to_owned();
    for (given, shown) in &args.hidden {
        out = out.replace(given.as_str(), shown);
        // clap quotes the value of `--flag=value` without the flag.
        if let Some((_, value)) = given.split_once('=') {
            if let Some(r) = redact(value.as_bytes()) {
                out = out.replace(value, &String::from_utf8_lossy(&r.shown));
            }
        }
    }
    let mut all: Vec<&String> = args.passwords.iter().chain(secrets).collect();
    all.sort_by_key(|s| std::cmp::Reverse(s.len()));
    for s in all.into_iter().filter(|s| !s.is_empty()) {
        out = out.replace(s.as_str(), "[redacted]");
    }
    out
}

/// Secrets the environment hands us, to keep out of panic messages: passwords and
/// keys as given (a key file's contents are never formatted into anything).
pub fn env_secrets() -> Vec<String> {
    let mut out = Vec::new();
    for var in [
        "PGPASSWORD",
        "PGBUNKER_KEY",
        "PGBUNKER_PASSPHRASE",
        "PGBUNKER_NEW_KEY",
        "PGBUNKER_NEW_PASSPHRASE",
        "PGBUNKER_MASK_KEY",
    ] {
        if let Some(v) = std::env::var_os(var).filter(|v| !v.is_empty()) {
            out.push(v.to_string_lossy().into_owned());
        }
    }
    for var in ["PGBUNKER_AUDIT_DB", "PGDATABASE", "DATABASE_URL"] {
        if let Some(r) = std::env::var_os(var).and_then(|v| redact(v.as_bytes())) {
            out.extend(
                r.passwords
                    .iter()
                    .map(|p| String::from_utf8_lossy(p).into_owned()),
            );
        }
    }
    out
}

/// Keeps keys and rows out of core files: no core dump at all (`RLIMIT_CORE` 0), and
/// not dumpable, which also stops other processes of the same user from attaching a
/// debugger or reading `/proc/<pid>/mem` and `environ`. Failures are only warned
/// about: running without them is what every earlier version did.
pub fn harden() {
    let none = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: setrlimit and prctl with these arguments only change this process's
    // limits and flags.
    let (limit, dumpable) = unsafe {
        (
            libc::setrlimit(libc::RLIMIT_CORE, &none),
            libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0),
        )
    };
    if limit != 0 || dumpable != 0 {
        eprintln!(
            "warning: could not turn core dumps off ({}): a crash could write keys to disk",
            std::io::Error::last_os_error()
        );
    }
}

/// Variables whose values are secrets. The process keeps them (its own reads go
/// through the C library's copy), but [`scrub_environ`] wipes them from the block the
/// kernel shows as `/proc/<pid>/environ`.
const SECRET_VARS: &[&str] = &[
    "PGBUNKER_KEY",
    "PGBUNKER_PASSPHRASE",
    "PGBUNKER_NEW_KEY",
    "PGBUNKER_NEW_PASSPHRASE",
    "PGBUNKER_MASK_KEY",
    "PGPASSWORD",
    "PGBUNKER_AUDIT_DB",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AZURE_STORAGE_ACCOUNT_KEY",
    "AZURE_STORAGE_ACCESS_KEY",
    "GOOGLE_SERVICE_ACCOUNT_KEY",
];

/// Wipes secrets from `/proc/<pid>/environ`, which shows the environment the process
/// was started with, not its current one: removing a variable leaves its bytes there.
/// The handover of [`hide_passwords`] (the passwords cut from the arguments) is wiped
/// and dropped; every other secret variable is wiped and set again, so the process
/// (and what it starts) still reads it from its own heap copy. Call right after
/// [`hide_passwords`], while the process has a single thread.
pub fn scrub_environ() {
    let mut keep = Vec::new();
    for name in SECRET_VARS {
        if let Some(v) = std::env::var_os(name) {
            keep.push((*name, v));
        }
    }
    let Some((start, end)) = environ_block() else {
        return;
    };
    // Single-threaded still: nothing reads the environment meanwhile.
    for (name, _) in &keep {
        std::env::remove_var(name);
    }
    // SAFETY: [start, end) is this process's initial environment block (the kernel's
    // `env_start`/`env_end`), mapped writable on the stack for the process's life. The
    // C library's environment no longer points into the wiped entries (removed above),
    // and nothing else holds a reference into them.
    let block = unsafe { std::slice::from_raw_parts_mut(start as *mut u8, end - start) };
    wipe(
        block,
        &keep
            .iter()
            .map(|(n, _)| *n)
            .chain([HANDOVER])
            .collect::<Vec<_>>(),
    );
    for (name, value) in keep {
        std::env::set_var(name, value);
    }
}

/// Zeroes every `NAME=value` entry of `block` whose name is in `names`.
fn wipe(block: &mut [u8], names: &[&str]) {
    let mut i = 0;
    while i < block.len() {
        let len = block[i..]
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(block.len() - i);
        let entry = &block[i..i + len];
        let hit = names.iter().any(|n| {
            entry.len() > n.len() && entry.starts_with(n.as_bytes()) && entry[n.len()] == b'='
        });
        if hit {
            block[i..i + len].fill(0);
        }
        i += len + 1;
    }
}

/// `env_start` and `env_end` of this process (fields 50 and 51 of `/proc/self/stat`).
fn environ_block() -> Option<(usize, usize)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) may hold blanks and parentheses: count after it.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3.
    let start: usize = fields.get(50 - 3)?.parse().ok()?;
    let end: usize = fields.get(51 - 3)?.parse().ok()?;
    (start != 0 && end > start).then_some((start, end))
}

/// Panic messages go through [`scrub`]: a bug must not print a password on its way out.
pub fn scrub_panics(args: &Args) {
    let hidden = Args {
        args: Vec::new(),
        hidden: args.hidden.clone(),
        passwords: args.passwords.clone(),
    };
    let secrets = env_secrets();
    std::panic::set_hook(Box::new(move |info| {
        let msg = scrub(&info.to_string(), &hidden, &secrets);
        eprintln!("pgbunker: internal error (a bug: please report it): {msg}");
        let bt = std::backtrace::Backtrace::capture();
        if bt.status() == std::backtrace::BacktraceStatus::Captured {
            eprintln!("{bt}");
        }
    }));
}

/// The argument as the process list shows it (for tests and messages).
#[cfg(test)]
fn shown(arg: &str) -> String {
    match redact(arg.as_bytes()) {
        Some(r) => String::from_utf8(r.shown).unwrap(),
        None => arg.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pw(arg: &str) -> Vec<String> {
        redact(arg.as_bytes())
            .map(|r| {
                r.passwords
                    .into_iter()
                    .map(|p| String::from_utf8(p).unwrap())
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn urls_lose_their_passwords() {
        assert_eq!(
            shown("postgresql://alice:s3cr3t@db:5432/clinic"),
            "postgresql://alice@db:5432/clinic"
        );
        assert_eq!(pw("postgresql://alice:s3cr3t@db:5432/clinic"), ["s3cr3t"]);
        assert_eq!(
            shown("--target=postgres://a:p%40ss@h/db?sslmode=disable&password=x%20y&application_name=z"),
            "--target=postgres://a@h/db?sslmode=disable&application_name=z"
        );
        assert_eq!(
            pw("postgres://a:p%40ss@h/db?password=x%20y"),
            ["p%40ss", "x%20y"]
        );
        // tokio-postgres takes everything up to the first `@` as user info.
        assert_eq!(shown("postgresql://u:a/b?c@h/db"), "postgresql://u@h/db");
        assert_eq!(
            shown("postgresql://h/db?sslpassword=k"),
            "postgresql://h/db"
        );
        // Without a password nothing changes (and nothing is re-executed).
        assert!(redact(b"postgresql://alice@db/clinic").is_none());
        assert!(redact(b"postgresql://alice:@db/clinic").is_none());
        assert!(redact(b"/var/backups/pgbunker").is_none());
        assert!(redact(b"--jobs").is_none());
    }

    #[test]
    fn conninfo_strings_lose_their_passwords() {
        assert_eq!(
            shown("host=db password=s3cr3t dbname=clinic"),
            "host=db dbname=clinic"
        );
        assert_eq!(
            shown("host=db password = 'a b\\' c' user=x"),
            "host=db user=x"
        );
        assert_eq!(pw("host=db password = 'a b\\' c' user=x"), ["'a b\\' c'"]);
        assert_eq!(shown("-dhost=h PASSWORD=x\\ y port=1"), "-dhost=h port=1");
        assert_eq!(shown("--target=password=zz host=h"), "--target=host=h");
        assert_eq!(shown("host=h sslpassword=k"), "host=h ");
        assert!(redact(b"host=db user=passwordless").is_none());
        assert!(redact(b"passwords.txt").is_none());
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config {
            failure_persistence: None,
            rng_seed: proptest::test_runner::RngSeed::Fixed(0x9b0c0a7e),
            ..proptest::test_runner::Config::default()
        })]

        /// Whatever the password, the driver finds none in what `ps` shows, and the
        /// same one as before in what is handed over.
        #[test]
        fn the_driver_reads_no_password_from_what_is_shown(
            pw in "[^\\x00]{1,24}",
            user in "[a-z][a-z0-9_]{0,8}",
            form in 0u8..5,
        ) {
            use std::str::FromStr;
            let quoted = pw.replace('\\', "\\\\").replace('\'', "\\'");
            let encoded: String = pw
                .bytes()
                .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
                .collect();
            let arg = match form {
                0 => format!("host=db user={user} password='{quoted}' dbname=clinic"),
                1 => format!("password = '{quoted}' host=db user={user}"),
                2 => format!("postgresql://{user}:{encoded}@db:5432/clinic?sslmode=disable"),
                3 => format!("postgresql://{user}@db/clinic?application_name=x&password={encoded}"),
                _ => {
                    let bare: String = pw
                        .chars()
                        .flat_map(|c| {
                            let esc = c == '\\' || c == '\'' || c.is_whitespace();
                            esc.then_some('\\').into_iter().chain([c])
                        })
                        .collect();
                    format!("user={user} password={bare} host=db")
                }
            };
            let given = tokio_postgres::Config::from_str(&arg).unwrap();
            proptest::prop_assert_eq!(given.get_password(), Some(pw.as_bytes()));
            let r = redact(arg.as_bytes()).expect("a password is found");
            let shown = String::from_utf8(r.shown).unwrap();
            let seen = tokio_postgres::Config::from_str(&shown).unwrap();
            proptest::prop_assert_eq!(seen.get_password(), None);
            proptest::prop_assert_eq!(seen.get_user(), Some(user.as_str()));
        }
    }

    #[test]
    fn only_the_named_entries_are_wiped() {
        let mut block =
            b"PATH=/bin\0PGBUNKER_KEY=abc\0PGBUNKER_KEYS=x\0PGBUNKER_HIDDEN_ARGS=1:ff\0HOME=/r"
                .to_vec();
        wipe(&mut block, &["PGBUNKER_KEY", HANDOVER]);
        let zeros = |n: usize| vec![0u8; n];
        let expected = [
            &b"PATH=/bin\0"[..],
            &zeros("PGBUNKER_KEY=abc".len() + 1),
            b"PGBUNKER_KEYS=x\0",
            &zeros("PGBUNKER_HIDDEN_ARGS=1:ff".len() + 1),
            b"HOME=/r",
        ]
        .concat();
        assert_eq!(block, expected);
    }

    #[test]
    fn handover_round_trips_any_bytes() {
        let v = format!("3:{},5:{}", hex::encode(b"a,b:c"), hex::encode([0xff, 0]));
        assert_eq!(
            decode_handover(v.as_bytes()),
            [(3, b"a,b:c".to_vec()), (5, vec![0xff, 0])]
        );
        assert!(decode_handover(b"x:zz,1").is_empty());
    }

    #[test]
    fn messages_are_scrubbed() {
        let args = collect(vec![
            "pgbunker".into(),
            "--target=postgresql://u:Sekr1t@h/db".into(),
        ]);
        let msg = "error: unexpected argument 'postgresql://u:Sekr1t@h/db' found; \
                   '--target=postgresql://u:Sekr1t@h/db'; panicked with Sekr1t and KEYHEX";
        let s = scrub(msg, &args, &["KEYHEX".into()]);
        assert!(!s.contains("Sekr1t") && !s.contains("KEYHEX"), "{s}");
        assert!(s.contains("'postgresql://u@h/db'"), "{s}");
    }
}
