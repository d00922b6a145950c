//! What a restore tells a log file (stderr that is no terminal) while it runs: the
//! tables, then the keys, indexes, foreign keys and ANALYZE counted as they end.

use crate::support::World;

#[tokio::test(flavor = "multi_thread")]
async fn a_restore_counts_its_post_data_statements_to_the_last() {
    let w = World::start();
    let repo = w.backed_up().await;
    w.empty_db("restored").await;
    let out = w.restore_with(&repo, "latest", "restored", &["-j", "2"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.lines()
            .any(|l| l.starts_with("restore: ") && l.ends_with(" tables")),
        "the tables are announced: {err}"
    );
    let last = err
        .lines()
        .rev()
        .find(|l| l.starts_with("restore: "))
        .expect("a last progress line");
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
