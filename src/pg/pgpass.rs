//! `~/.pgpass` (or `PGPASSFILE`) lookup, as libpq does it, so cron jobs that rely on it
//! keep working without putting passwords in URLs or the environment.

use std::path::PathBuf;

/// Splits one `.pgpass` line into its five fields, honouring `\:` and `\\`.
fn fields(line: &str) -> Option<[String; 5]> {
    let mut out: Vec<String> = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.last_mut()?.push(chars.next().unwrap_or('\\')),
            ':' if out.len() < 5 => out.push(String::new()),
            c => out.last_mut()?.push(c),
        }
    }
    out.try_into().ok()
}

fn matches(pattern: &str, value: &str) -> bool {
    pattern == "*" || pattern == value
}

/// The password for the first matching line of `text`. `host` is the host name, or
/// `localhost` for a Unix socket, as in libpq.
pub fn lookup_in(text: &str, host: &str, port: u16, db: &str, user: &str) -> Option<String> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty())
        .filter_map(fields)
        .find(|[h, p, d, u, _]| {
            matches(h, host) && matches(p, &port.to_string()) && matches(d, db) && matches(u, user)
        })
        .map(|[.., pw]| pw)
}

/// Reads the password file if it exists and is private (libpq ignores a file that
/// group or others can read; so do we, with a warning).
pub fn lookup(host: &str, port: u16, db: &str, user: &str) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PGPASSFILE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".pgpass")))?;
    let meta = std::fs::metadata(&path).ok()?;
    if !meta.is_file() {
        return None;
    }
    if meta.permissions().mode() & 0o077 != 0 {
        tracing::warn!(
            "password file {} has group or world access; ignoring it (chmod 0600 to use it)",
            path.display()
        );
        return None;
    }
    lookup_in(&std::fs::read_to_string(&path).ok()?, host, port, db, user)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_matching_line_wins_with_wildcards_and_escapes() {
        let text = "# comment\n\
                    db.example:5432:clinic:alice:first\n\
                    *:*:*:alice:pa\\:ss\\\\word\n\
                    *:*:*:*:fallback\n";
        assert_eq!(
            lookup_in(text, "db.example", 5432, "clinic", "alice").as_deref(),
            Some("first")
        );
        assert_eq!(
            lookup_in(text, "other", 6543, "x", "alice").as_deref(),
            Some("pa:ss\\word")
        );
        assert_eq!(
            lookup_in(text, "other", 1, "x", "bob").as_deref(),
            Some("fallback")
        );
        assert_eq!(
            lookup_in("h:1:d:u\n", "h", 1, "d", "u"),
            None,
            "four fields is malformed"
        );
    }
}
