//! What a connection asks of TLS: `sslmode` and the `ssl*` keywords, taken out of the
//! connection string before tokio-postgres sees it, resolved with the `PGSSL*`
//! environment and libpq's defaults.

use std::fmt;

use crate::pg::conninfo;

/// libpq's `sslmode`, weakest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum SslMode {
    Disable,
    Allow,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    pub fn parse(s: &str) -> Option<SslMode> {
        Some(match s {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    /// Whether a connection without TLS is acceptable.
    pub fn allows_plain(self) -> bool {
        self <= SslMode::Prefer
    }
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The keywords taken out of a connection string before tokio-postgres sees it.
const OURS: &[&str] = &["sslmode", "sslrootcert", "sslcert", "sslkey", "sslsni"];

/// libpq keywords we know but do not implement: a clear refusal beats tokio-postgres'
/// "unknown option", and silently ignoring e.g. a CRL would be worse.
const UNSUPPORTED: &[&str] = &[
    "sslpassword",
    "sslcrl",
    "sslcrldir",
    "sslcompression",
    "sslcertmode",
    "ssl_min_protocol_version",
    "ssl_max_protocol_version",
    "sslkeylogfile",
    "requirepeer",
];

/// Splits `conninfo` (URL or `key=value` form) into what tokio-postgres can parse
/// and the `ssl*` settings it cannot, decoded. Everything else is left byte for byte.
pub(crate) fn take_ssl_params(conninfo: &str) -> Result<(String, Vec<(String, String)>), String> {
    if conninfo::is_url(conninfo) {
        take_from_url(conninfo)
    } else {
        take_from_keywords(conninfo)
    }
}

fn ours(key: &str) -> Result<bool, String> {
    if UNSUPPORTED.contains(&key) {
        return Err(format!("{key} is not supported by pgbunker"));
    }
    Ok(OURS.contains(&key))
}

fn take_from_url(url: &str) -> Result<(String, Vec<(String, String)>), String> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_owned(), Vec::new()));
    };
    let mut kept = Vec::new();
    let mut taken = Vec::new();
    for (piece, k, v) in conninfo::query_pairs(query.as_bytes()) {
        if piece.is_empty() {
            continue;
        }
        // Pieces of a str cut at ASCII bytes: nothing is lost.
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let key = conninfo::percent_decoded_strict(&text(k))?;
        if ours(&key)? {
            taken.push((key, conninfo::percent_decoded_strict(&text(v))?));
        } else {
            kept.push(text(piece));
        }
    }
    let rest = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((rest, taken))
}

/// libpq's `key = value` syntax (see [`conninfo`]).
fn take_from_keywords(s: &str) -> Result<(String, Vec<(String, String)>), String> {
    let mut rest = String::new();
    let mut taken = Vec::new();
    for pair in conninfo::pairs(s) {
        // Not a key=value string: leave the error to tokio-postgres, which words it
        // the usual way.
        let Ok(pair) = pair else {
            return Ok((s.to_owned(), Vec::new()));
        };
        let key = &s[pair.key.clone()];
        if pair.value.unterminated {
            return Err(format!("unterminated quoted value for {key}"));
        }
        if ours(key)? {
            let value =
                String::from_utf8(pair.value.decoded).map_err(|_| format!("{key} is not UTF-8"))?;
            taken.push((key.to_owned(), value));
        } else {
            if !rest.is_empty() {
                rest.push(' ');
            }
            rest.push_str(&s[pair.span]);
        }
    }
    Ok((rest, taken))
}

/// The resolved TLS settings of a connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TlsParams {
    pub mode: SslMode,
    /// `sslrootcert` / `PGSSLROOTCERT`: a file, or `system` for the OS's trusted CAs.
    pub rootcert: Option<String>,
    pub cert: Option<String>,
    pub key: Option<String>,
    pub sni: bool,
}

impl TlsParams {
    /// From the keywords [`take_ssl_params`] took (the last one wins, as in libpq),
    /// else the `PGSSL*` environment, else libpq's defaults.
    pub fn resolve(
        taken: &[(String, String)],
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<TlsParams, String> {
        let get = |key: &str, var: &str| {
            taken
                .iter()
                .rev()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
                .or_else(|| env(var))
                .filter(|v| !v.is_empty())
        };
        let rootcert = get("sslrootcert", "PGSSLROOTCERT");
        let system = rootcert.as_deref() == Some("system");
        let mode = match get("sslmode", "PGSSLMODE") {
            Some(m) => SslMode::parse(&m).ok_or_else(|| {
                format!(
                    "invalid sslmode value {m:?} (disable, allow, prefer, require, verify-ca \
                     or verify-full)"
                )
            })?,
            // libpq: the system's CAs are only worth anything with the host name checked.
            None if system => SslMode::VerifyFull,
            None => SslMode::Prefer,
        };
        if system && mode != SslMode::VerifyFull {
            return Err(format!(
                "weak sslmode {mode:?} may not be used with sslrootcert=system (use \
                 \"verify-full\")",
                mode = mode.as_str()
            ));
        }
        let sni = match get("sslsni", "PGSSLSNI").as_deref() {
            None | Some("1") => true,
            Some("0") => false,
            Some(other) => return Err(format!("invalid sslsni value {other:?} (0 or 1)")),
        };
        Ok(TlsParams {
            mode,
            rootcert,
            cert: get("sslcert", "PGSSLCERT"),
            key: get("sslkey", "PGSSLKEY"),
            sni,
        })
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub(in crate::pg::tls) fn taken(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn ssl_keywords_leave_urls_and_the_rest_untouched() {
        let (rest, t) = take_ssl_params(
            "postgresql://u:p%40ss@db:5433/x?sslmode=verify-full&application_name=a%20b\
             &sslrootcert=%2Fetc%2Fca%20dir%2Froot.crt",
        )
        .unwrap();
        assert_eq!(
            rest,
            "postgresql://u:p%40ss@db:5433/x?application_name=a%20b"
        );
        assert_eq!(
            t,
            taken(&[
                ("sslmode", "verify-full"),
                ("sslrootcert", "/etc/ca dir/root.crt")
            ])
        );
        let (rest, t) = take_ssl_params("postgres://db/x?sslmode=require").unwrap();
        assert_eq!(rest, "postgres://db/x");
        assert_eq!(t, taken(&[("sslmode", "require")]));
        let (rest, t) = take_ssl_params("postgresql://db/x").unwrap();
        assert_eq!((rest.as_str(), t.len()), ("postgresql://db/x", 0));
    }

    #[test]
    fn ssl_keywords_leave_key_value_strings_and_the_rest_untouched() {
        let (rest, t) = take_ssl_params(
            "host=db  sslmode = verify-ca sslrootcert='/a b/it\\'s.crt' password='x y' \
             sslkey=/k\\ ey dbname=clinic",
        )
        .unwrap();
        assert_eq!(rest, "host=db password='x y' dbname=clinic");
        assert_eq!(
            t,
            taken(&[
                ("sslmode", "verify-ca"),
                ("sslrootcert", "/a b/it's.crt"),
                ("sslkey", "/k ey")
            ])
        );
        assert!(take_ssl_params("host=db sslcrl=/x")
            .unwrap_err()
            .contains("sslcrl"));
        assert!(take_ssl_params("postgresql://db/x?sslpassword=s")
            .unwrap_err()
            .contains("sslpassword is not supported"));
    }

    #[test]
    fn settings_follow_libpq_precedence_and_defaults() {
        let none = |_: &str| None;
        let p = TlsParams::resolve(&[], none).unwrap();
        assert_eq!((p.mode, p.sni), (SslMode::Prefer, true));
        let env = |v: &str| match v {
            "PGSSLMODE" => Some("verify-ca".to_owned()),
            "PGSSLROOTCERT" => Some("/env/root.crt".to_owned()),
            _ => None,
        };
        let p = TlsParams::resolve(&taken(&[("sslmode", "require")]), env).unwrap();
        assert_eq!(p.mode, SslMode::Require);
        assert_eq!(p.rootcert.as_deref(), Some("/env/root.crt"));
        let p = TlsParams::resolve(&taken(&[("sslrootcert", "system")]), none).unwrap();
        assert_eq!(p.mode, SslMode::VerifyFull);
        let e = TlsParams::resolve(
            &taken(&[("sslrootcert", "system"), ("sslmode", "require")]),
            none,
        )
        .unwrap_err();
        assert!(e.contains("weak sslmode \"require\""), "{e}");
        let e = TlsParams::resolve(&taken(&[("sslmode", "verify_full")]), none).unwrap_err();
        assert!(e.contains("invalid sslmode value \"verify_full\""), "{e}");
        // The last keyword wins, as in libpq.
        let p = TlsParams::resolve(
            &taken(&[("sslmode", "disable"), ("sslmode", "allow")]),
            none,
        )
        .unwrap();
        assert_eq!(p.mode, SslMode::Allow);
    }
}
