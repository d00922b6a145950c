//! The AWS shared files (`~/.aws/credentials`, `~/.aws/config`), which object_store
//! does not read: cron jobs and systemd timers usually get S3 credentials from a
//! profile, not from exported variables. Environment variables still win.

use std::collections::HashMap;
use std::path::PathBuf;

use object_store::aws::AmazonS3Builder;

/// Fills credentials, region and endpoint from the active profile where the
/// environment did not set them.
pub(super) fn apply(mut b: AmazonS3Builder) -> AmazonS3Builder {
    let profile = std::env::var("AWS_PROFILE").unwrap_or_else(|_| "default".into());
    let env = |k: &str| std::env::var(k).is_ok_and(|v| !v.is_empty());
    if !env("AWS_ACCESS_KEY_ID") {
        if let Some(creds) = file_section(
            "AWS_SHARED_CREDENTIALS_FILE",
            "credentials",
            &profile,
            &profile,
        ) {
            if let (Some(id), Some(secret)) = (
                creds.get("aws_access_key_id"),
                creds.get("aws_secret_access_key"),
            ) {
                b = b.with_access_key_id(id).with_secret_access_key(secret);
                if let Some(token) = creds.get("aws_session_token") {
                    b = b.with_token(token);
                }
            }
        }
    }
    let config_section = format!("profile {profile}");
    if let Some(cfg) = file_section("AWS_CONFIG_FILE", "config", &config_section, &profile) {
        if !env("AWS_REGION") && !env("AWS_DEFAULT_REGION") {
            if let Some(region) = cfg.get("region") {
                b = b.with_region(region);
            }
        }
        if !env("AWS_ENDPOINT_URL") && !env("AWS_ENDPOINT") {
            if let Some(endpoint) = cfg.get("endpoint_url") {
                b = b.with_endpoint(endpoint);
            }
        }
    }
    b
}

/// One `[section]` of an AWS INI file. The config file names profiles
/// `[profile x]` except `[default]`; both spellings are accepted.
fn file_section(
    var: &str,
    name: &str,
    section: &str,
    alt: &str,
) -> Option<HashMap<String, String>> {
    let path = std::env::var_os(var)
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".aws").join(name)))?;
    let text = std::fs::read_to_string(path).ok()?;
    let sections = parse_ini(&text);
    sections.get(section).or_else(|| sections.get(alt)).cloned()
}

fn parse_ini(text: &str) -> HashMap<String, HashMap<String, String>> {
    let mut out: HashMap<String, HashMap<String, String>> = HashMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = Some(name.trim().to_owned());
            continue;
        }
        if let (Some(sec), Some((k, v))) = (&current, line.split_once('=')) {
            out.entry(sec.clone())
                .or_default()
                .insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ini_sections_and_keys() {
        let s = parse_ini(
            "# c\n[default]\naws_access_key_id = A\n\n[profile backup]\nregion=eu-west-1\n\
             endpoint_url = http://h:9000 \n",
        );
        assert_eq!(s["default"]["aws_access_key_id"], "A");
        assert_eq!(s["profile backup"]["region"], "eu-west-1");
        assert_eq!(s["profile backup"]["endpoint_url"], "http://h:9000");
    }
}
