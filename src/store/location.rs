//! Repository URL → an object_store backend.
//!
//! One URL names the repository everywhere (`init`, `backup`, cron lines, the config
//! file), so it holds the location and the non-secret options of S3-compatible stores
//! (`endpoint`, `region`, `path_style`, `allow_http`) and never a credential: those come
//! from each cloud's usual environment variables and files, which `ps` does not show.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use object_store::aws::{AmazonS3Builder, Checksum};
use object_store::azure::MicrosoftAzureBuilder;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::prefix::PrefixStore;
use object_store::{BackoffConfig, ObjectStore, RetryConfig};
use percent_encoding::percent_decode_str;

use super::aws_profile;
use super::StoreError;

/// Where a repository lives, parsed from its URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Location {
    Local(PathBuf),
    S3 {
        bucket: String,
        prefix: String,
        options: Vec<(String, String)>,
    },
    Gcs {
        bucket: String,
        prefix: String,
    },
    Azure {
        container: String,
        prefix: String,
    },
}

/// Query options accepted on `s3://` URLs. Anything else, credentials above all, is
/// refused rather than ignored, so a secret pasted into a URL fails loudly.
const S3_OPTIONS: [&str; 4] = ["endpoint", "region", "path_style", "allow_http"];

/// A refused URL may hold a pasted secret: the error shows it without user info and
/// without option values.
fn bad(url: &str, why: impl Into<String>) -> StoreError {
    StoreError::BadUrl {
        url: redact(url),
        why: why.into(),
    }
}

pub(super) fn redact(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let base = match base.split_once("://") {
        Some((scheme, rest)) => match rest.split_once('/') {
            Some((host, path)) => format!("{scheme}://{}/{path}", strip_userinfo(host)),
            None => format!("{scheme}://{}", strip_userinfo(rest)),
        },
        None => base.to_owned(),
    };
    match query {
        Some(q) => {
            let keys: Vec<&str> = q
                .split('&')
                .map(|p| p.split_once('=').map_or(p, |(k, _)| k))
                .collect();
            format!("{base}?{}", keys.join("=…&") + "=…")
        }
        None => base,
    }
}

fn strip_userinfo(host: &str) -> &str {
    host.rsplit_once('@').map_or(host, |(_, h)| h)
}

impl Location {
    pub(super) fn parse(url: &str) -> Result<Location, StoreError> {
        if url.is_empty() {
            return Err(bad(url, "the repository location is empty"));
        }
        let Some((scheme, rest)) = url.split_once("://") else {
            return Ok(Location::Local(PathBuf::from(url)));
        };
        let (rest, query) = match rest.split_once('?') {
            Some((r, q)) => (r, Some(q)),
            None => (rest, None),
        };
        if scheme == "file" {
            if !rest.starts_with('/') {
                return Err(bad(
                    url,
                    "file:// URLs need an absolute path (file:///srv/backups)",
                ));
            }
            return Ok(Location::Local(PathBuf::from(rest)));
        }
        let (bucket, prefix) = match rest.split_once('/') {
            Some((b, p)) => (b.to_owned(), p.trim_matches('/').to_owned()),
            None => (rest.to_owned(), String::new()),
        };
        if bucket.is_empty() || bucket.contains('@') || bucket.contains(':') {
            return Err(bad(
                url,
                "expected <scheme>://<bucket>/<prefix>; credentials never go in the URL",
            ));
        }
        let options = parse_query(url, query)?;
        if scheme != "s3" && !options.is_empty() {
            return Err(bad(url, format!("{scheme}:// URLs take no options")));
        }
        match scheme {
            "s3" => Ok(Location::S3 {
                bucket,
                prefix,
                options,
            }),
            "gs" => Ok(Location::Gcs { bucket, prefix }),
            "az" | "azure" => Ok(Location::Azure {
                container: bucket,
                prefix,
            }),
            other => Err(bad(
                url,
                format!("unknown scheme {other}://; use a path, file://, s3://, gs:// or az://"),
            )),
        }
    }

    /// One spelling per repository, for the client's high-water mark: `repo/`,
    /// `./repo` and `file:///abs/repo` are the same folder, and option order does not
    /// matter.
    pub(super) fn canonical(&self) -> String {
        let join = |scheme: &str, bucket: &str, prefix: &str| match prefix {
            "" => format!("{scheme}://{bucket}"),
            p => format!("{scheme}://{bucket}/{p}"),
        };
        match self {
            Location::Local(p) => {
                let abs = std::path::absolute(p).unwrap_or_else(|_| p.clone());
                let abs = std::fs::canonicalize(&abs).unwrap_or(abs);
                abs.display().to_string()
            }
            Location::S3 {
                bucket,
                prefix,
                options,
            } => {
                let base = join("s3", bucket, prefix);
                let opts: Vec<String> = options.iter().map(|(k, v)| format!("{k}={v}")).collect();
                match opts.is_empty() {
                    true => base,
                    false => format!("{base}?{}", opts.join("&")),
                }
            }
            Location::Gcs { bucket, prefix } => join("gs", bucket, prefix),
            Location::Azure { container, prefix } => join("az", container, prefix),
        }
    }

    /// Builds the backend. Cloud clients retry transient errors (5xx, timeouts,
    /// throttling) with exponential backoff before an error reaches us.
    pub(super) fn connect(
        &self,
        url: &str,
        window: Duration,
    ) -> Result<Arc<dyn ObjectStore>, StoreError> {
        let retry = || retry(window);
        let built =
            |r: object_store::Result<Arc<dyn ObjectStore>>| r.map_err(|e| bad(url, e.to_string()));
        match self {
            Location::Local(_) => unreachable!("local folders are opened by Store::local"),
            Location::S3 {
                bucket,
                prefix,
                options,
            } => {
                let mut b = AmazonS3Builder::from_env()
                    .with_bucket_name(bucket)
                    .with_retry(retry())
                    .with_checksum_algorithm(Checksum::SHA256);
                b = aws_profile::apply(b);
                for (k, v) in options {
                    b = match k.as_str() {
                        "endpoint" => b.with_endpoint(v),
                        "region" => b.with_region(v),
                        "path_style" => b.with_virtual_hosted_style_request(!truthy(url, k, v)?),
                        "allow_http" => b.with_allow_http(truthy(url, k, v)?),
                        _ => unreachable!("options are checked when parsed"),
                    };
                }
                built(b.build().map(|s| prefixed(Arc::new(s), prefix)))
            }
            Location::Gcs { bucket, prefix } => built(
                GoogleCloudStorageBuilder::from_env()
                    .with_bucket_name(bucket)
                    .with_retry(retry())
                    .build()
                    .map(|s| prefixed(Arc::new(s), prefix)),
            ),
            Location::Azure { container, prefix } => built(
                MicrosoftAzureBuilder::from_env()
                    .with_container_name(container)
                    .with_retry(retry())
                    .build()
                    .map(|s| prefixed(Arc::new(s), prefix)),
            ),
        }
    }
}

fn parse_query(url: &str, query: Option<&str>) -> Result<Vec<(String, String)>, StoreError> {
    let mut out = Vec::new();
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, "true"));
        if !S3_OPTIONS.contains(&k) {
            return Err(bad(
                url,
                format!(
                    "unknown option {k:?} (allowed: {}); credentials come from the \
                     environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_PROFILE)",
                    S3_OPTIONS.join(", ")
                ),
            ));
        }
        // `%XX` escapes decoded (an endpoint may be written `http%3A%2F%2Fhost%3A9000`).
        let v = percent_decode_str(v).decode_utf8_lossy().into_owned();
        if k == "endpoint" && endpoint_has_userinfo(&v) {
            return Err(bad(
                url,
                "the endpoint holds a user name or password; credentials come from the \
                 environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_PROFILE)",
            ));
        }
        out.push((k.to_owned(), v));
    }
    out.sort();
    Ok(out)
}

fn endpoint_has_userinfo(endpoint: &str) -> bool {
    let rest = endpoint.split_once("://").map_or(endpoint, |(_, r)| r);
    rest.split('/').next().unwrap_or_default().contains('@')
}

fn truthy(url: &str, key: &str, v: &str) -> Result<bool, StoreError> {
    match v {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(bad(url, format!("option {key} must be true or false"))),
    }
}

fn prefixed(store: Arc<dyn ObjectStore>, prefix: &str) -> Arc<dyn ObjectStore> {
    if prefix.is_empty() {
        store
    } else {
        Arc::new(PrefixStore::new(store, prefix))
    }
}

/// The environment variable that sets how long a failing request is retried.
const RETRY_TIMEOUT_ENV: &str = "PGBUNKER_STORE_RETRY_TIMEOUT";

/// How long a failing request to object storage is retried before the command fails:
/// 3 minutes, or `PGBUNKER_STORE_RETRY_TIMEOUT` seconds. Long enough that an S3
/// `SlowDown` burst or a brief outage does not fail a backup that has run for hours.
pub(super) fn retry_window(url: &str) -> Result<Duration, StoreError> {
    match std::env::var(RETRY_TIMEOUT_ENV) {
        Err(_) => Ok(Duration::from_secs(180)),
        Ok(v) => v
            .trim()
            .parse::<u64>()
            .map(Duration::from_secs)
            .map_err(|_| {
                bad(
                    url,
                    format!("{RETRY_TIMEOUT_ENV} must be a whole number of seconds, not {v:?}"),
                )
            }),
    }
}

/// Retries span the window rather than a count: object_store's jittered backoff grows
/// slowly, so eight retries from 100 ms were over in about a second. Backoff starts at
/// half a second and grows about 1.5× per attempt up to 15 s.
fn retry(window: Duration) -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(15),
            base: 3.0,
        },
        // The window ends the retries; this only bounds them (no wait is shorter than
        // the initial backoff).
        max_retries: (window.as_millis() / 500).max(1) as usize,
        retry_timeout: window,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_into_locations() {
        assert_eq!(
            Location::parse("/srv/b").unwrap(),
            Location::Local("/srv/b".into())
        );
        assert_eq!(
            Location::parse("file:///srv/b").unwrap(),
            Location::Local("/srv/b".into())
        );
        assert_eq!(
            Location::parse(
                "s3://bkt/clinic/prod/?endpoint=http%3A%2F%2F127.0.0.1%3A9000&path_style=true"
            )
            .unwrap(),
            Location::S3 {
                bucket: "bkt".into(),
                prefix: "clinic/prod".into(),
                options: vec![
                    ("endpoint".into(), "http://127.0.0.1:9000".into()),
                    ("path_style".into(), "true".into())
                ],
            }
        );
        assert_eq!(
            Location::parse("gs://b").unwrap(),
            Location::Gcs {
                bucket: "b".into(),
                prefix: String::new()
            }
        );
        assert_eq!(
            Location::parse("az://c/p").unwrap(),
            Location::Azure {
                container: "c".into(),
                prefix: "p".into()
            }
        );
    }

    #[test]
    fn one_repository_has_one_canonical_spelling() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().display().to_string();
        let a = Location::parse(&p).unwrap().canonical();
        assert_eq!(Location::parse(&format!("{p}/")).unwrap().canonical(), a);
        assert_eq!(
            Location::parse(&format!("file://{p}")).unwrap().canonical(),
            a
        );
        assert_eq!(
            Location::parse("s3://b/p/?region=x&endpoint=http://h")
                .unwrap()
                .canonical(),
            Location::parse("s3://b/p?endpoint=http://h&region=x")
                .unwrap()
                .canonical()
        );
    }

    #[test]
    fn credentials_and_unknown_things_in_urls_are_refused() {
        for url in [
            "s3://AKIA:secret@bkt/p",
            "s3://bkt/p?secret_access_key=abc",
            "s3://bkt/p?access_key_id=abc",
            "s3://bkt/p?endpoint=http://AKIA:secret@127.0.0.1:9000",
            "gs://b/p?endpoint=x",
            "ftp://x/y",
            "file://relative",
            "",
        ] {
            let e = Location::parse(url).unwrap_err();
            assert!(matches!(e, StoreError::BadUrl { .. }), "{url}: {e}");
            assert!(!e.to_string().contains("abc"), "{e}");
            assert!(!e.to_string().contains(":secret"), "{e}");
        }
    }
}
