//! The layering of DESIGN.md, checked: a module may only use the modules its row
//! allows (anyone may use `error`, `progress` and `teardown`, the cleanups the binary
//! awaits before exit). Arrows point down only.
//!
//! Two deliberate additions to the design table: `dump` uses `introspect` (the catalog
//! must be read inside the leader's snapshot transaction, which `dump` owns), and the
//! engines use `codec` for its CPU pool. `export` uses `store` to write its files to
//! object storage.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

fn allowed() -> BTreeMap<&'static str, Vec<&'static str>> {
    BTreeMap::from([
        ("error", vec![]),
        ("progress", vec![]),
        ("teardown", vec![]),
        ("pgcopy", vec![]),
        ("codec", vec![]),
        ("store", vec![]),
        ("pg", vec![]),
        ("catalog", vec![]),
        ("sandbox", vec!["pg"]),
        ("archive", vec!["codec", "store", "catalog"]),
        ("introspect", vec!["pg", "catalog"]),
        ("ddl", vec!["catalog"]),
        ("plan", vec!["catalog"]),
        (
            "dump",
            vec![
                "pg",
                "pgcopy",
                "archive",
                "catalog",
                "plan",
                "introspect",
                "codec",
            ],
        ),
        (
            "load",
            vec!["pg", "pgcopy", "archive", "catalog", "plan", "ddl", "codec"],
        ),
        (
            "export",
            vec!["pgcopy", "archive", "catalog", "plan", "store"],
        ),
        (
            "verify",
            vec!["pgcopy", "archive", "catalog", "codec", "store"],
        ),
        (
            "commands",
            vec![
                "pg",
                "pgcopy",
                "archive",
                "catalog",
                "plan",
                "ddl",
                "codec",
                "store",
                "sandbox",
                "introspect",
                "dump",
                "load",
                "export",
                "verify",
            ],
        ),
    ])
}

fn crate_uses(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, _) in text.match_indices("crate::") {
        let rest = &text[i + "crate::".len()..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() {
            out.insert(name);
        }
    }
    out
}

#[test]
fn modules_only_use_the_layers_below_them() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let rules = allowed();
    let mut violations = Vec::new();
    let mut seen = BTreeSet::new();
    for entry in std::fs::read_dir(&src).unwrap().flatten() {
        let path = entry.path();
        let module = path.file_stem().unwrap().to_string_lossy().into_owned();
        // `testing` is compiled for the library's own tests only.
        if module == "lib" || module == "bin" || module == "testing" {
            continue;
        }
        let Some(ok) = rules.get(module.as_str()) else {
            violations.push(format!("src/{module} is not in the layering table"));
            continue;
        };
        seen.insert(module.clone());
        let files = if path.is_dir() {
            crate::support::files(&path)
        } else {
            vec![path.clone()]
        };
        for f in files
            .iter()
            .filter(|f| f.extension().is_some_and(|e| e == "rs"))
        {
            let text = std::fs::read_to_string(f).unwrap();
            for used in crate_uses(&text) {
                let fine = used == module
                    || used == "error"
                    || used == "progress"
                    || used == "teardown"
                    || used == "testing"
                    || ok.contains(&used.as_str());
                if !fine {
                    violations.push(format!("{} uses crate::{used}", f.display()));
                }
            }
        }
    }
    assert!(
        violations.is_empty(),
        "layering violations:\n{}",
        violations.join("\n")
    );
    assert_eq!(seen.len(), rules.len(), "every module in the table exists");
    // The binary talks to the library through `commands` (and the leaf types its
    // options are built from), never to the engines directly.
    let bin = std::fs::read_to_string(src.join("bin/pgbunker/main.rs")).unwrap();
    for engine in [
        "pgbunker::archive::Repository",
        "pgbunker::dump::run",
        "pgbunker::load::run",
    ] {
        assert!(!bin.contains(engine), "the binary calls {engine} directly");
    }
}
