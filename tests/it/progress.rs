//! What backup and restore tell a log file (stderr that is no terminal) while they run:
//! tables counted as tables (not as the parts a big one is split into), then the keys,
//! indexes, foreign keys and ANALYZE counted as they end.

use crate::support::{ok, World};

/// `(announced, done, of)` from `<phase>: N tables` and the last `<phase>: D/T tables`.
fn tables(stderr: &str, phase: &str) -> (u64, u64, u64) {
    let prefix = format!("{phase}: ");
    let announced = stderr
        .lines()
        .find_map(|l| l.strip_prefix(&prefix)?.strip_suffix(" tables"))
        .unwrap_or_else(|| panic!("{phase} announces its tables: {stderr}"));
    let last = stderr
        .lines()
        .rev()
        .find(|l| l.starts_with(&prefix))
        .expect("a last progress line");
    let counts = last[prefix.len()..].split(' ').next().unwrap();
    let (done, of) = counts.split_once('/').unwrap_or_else(|| panic!("{last}"));
    (
        announced.parse().unwrap(),
        done.parse().unwrap(),
        of.parse().unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn split_tables_count_once_and_post_data_is_counted_to_the_last() {
    let w = World::start();
    w.fixture_db("heart", 1).await;
    let repo = w.init_repo("repo");
    // 1 MiB parts: vitals_samples and others are read and loaded in several parts.
    let out = w.backup(&repo, "heart", &["-j", "2", "--part-size-mb", "1"]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    let report = ok(out);
    let (announced, done, of) = tables(&err, "backup");
    assert_eq!((done, of), (announced, announced), "{err}");
    assert!(
        report.contains(&format!("complete: {announced} tables")),
        "{report}\n{err}"
    );

    w.empty_db("restored").await;
    let out = w.restore_with(&repo, "latest", "restored", &["-j", "2"]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    ok(out);
    let (restored, done, of) = tables(&err, "restore");
    assert_eq!(
        (restored, done, of),
        (announced, announced, announced),
        "{err}"
    );
    let last = err
        .lines()
        .rev()
        .find(|l| l.starts_with("restore: "))
        .unwrap();
    let counts = last
        .split("post-data ")
        .nth(1)
        .unwrap_or_else(|| panic!("post-data is counted: {last}"));
    let (done, total) = counts.split_once('/').expect("done/total");
    let (done, total): (u64, u64) = (done.parse().unwrap(), total.parse().unwrap());
    assert!(
        total >= 20,
        "keys, indexes, foreign keys and ANALYZE: {last}"
    );
    assert_eq!(done, total, "{last}");
}
