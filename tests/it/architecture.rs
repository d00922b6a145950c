//! The layering of DESIGN.md, checked: a module may only use the modules its row
//! allows (anyone may use `error`, `progress`, `interrupt` (the signal flag) and
//! `teardown`, the cleanups the binary
//! awaits before exit). Arrows point down only.
//!
//! Two deliberate additions to the design table: `dump` uses `introspect` (the catalog
//! must be read inside the leader's snapshot transaction, which `dump` owns), and the
//! engines use `codec` for its CPU pool. `export` uses `store` to write its files to
//! object storage, and `verify` uses it to tell a missing chunk from a failing store.
//! `load` uses `verify`: a restore runs the pre-flight check before it writes.
//! `restored` checks what a restore left behind with the backup's own fingerprint
//! (`dump`) and type remapping (`load`).
//!
//! Verbs (`src/commands/*.rs`) call engines, never each other: a `super::verb` or
//! `crate::commands::verb` path in a verb is a violation, except the audit record every
//! verb writes (`super::audit::{Audit, who}`). See docs/architecture.md.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

fn allowed() -> BTreeMap<&'static str, Vec<&'static str>> {
    BTreeMap::from([
        ("error", vec![]),
        ("progress", vec![]),
        ("teardown", vec![]),
        ("interrupt", vec![]),
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
            "mask",
            vec!["pgcopy", "archive", "catalog", "plan", "codec"],
        ),
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
            vec![
                "pg", "pgcopy", "archive", "catalog", "plan", "ddl", "codec", "verify", "mask",
            ],
        ),
        (
            "export",
            vec!["pgcopy", "archive", "catalog", "plan", "store", "mask"],
        ),
        (
            "verify",
            vec!["pgcopy", "archive", "catalog", "codec", "store"],
        ),
        (
            "diff",
            vec![
                "pg",
                "pgcopy",
                "archive",
                "catalog",
                "plan",
                "codec",
                "introspect",
                "dump",
                "export",
            ],
        ),
        (
            "restored",
            vec!["pg", "archive", "catalog", "introspect", "dump", "load"],
        ),
        (
            "commands",
            vec![
                "restored",
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
                "diff",
                "mask",
            ],
        ),
    ])
}

/// Items of `audit` every verb may use: the trait its report implements and the name
/// of who runs it.
const AUDIT_ITEMS: &[&str] = &["Audit", "who"];

/// The sibling verbs one verb's text names through `super::x` or
/// `crate::commands::x`, with the item path that follows.
fn verb_uses(text: &str, verbs: &BTreeSet<String>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for prefix in ["super::", "crate::commands::"] {
        for (i, _) in text.match_indices(prefix) {
            let rest = &text[i + prefix.len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if verbs.contains(&name) {
                let path: String = rest[name.len()..]
                    .chars()
                    .take_while(|c| *c != ';' && *c != '(')
                    .collect();
                out.push((name, path));
            }
        }
    }
    out
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
                    || used == "interrupt"
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
}

#[test]
fn verbs_call_engines_not_each_other() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/commands");
    // A verb is a file of `commands/`; its own submodules live in `commands/<verb>/`.
    let verbs: BTreeSet<String> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|f| f.extension().is_some_and(|e| e == "rs"))
        .map(|f| f.file_stem().unwrap().to_string_lossy().into_owned())
        .filter(|v| v != "mod")
        .collect();
    let mut violations = Vec::new();
    for verb in &verbs {
        let mut files = vec![dir.join(format!("{verb}.rs"))];
        if dir.join(verb).is_dir() {
            files.extend(crate::support::files(&dir.join(verb)));
        }
        let texts: Vec<String> = files
            .iter()
            .map(|f| std::fs::read_to_string(f).unwrap())
            .collect();
        // Unit tests may use their module through `super::*`.
        let uses = texts
            .iter()
            .flat_map(|t| verb_uses(t.split("#[cfg(test)]").next().unwrap(), &verbs));
        for (used, path) in uses {
            let audit_only = used == "audit"
                && path
                    .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
                    .filter(|w| !w.is_empty())
                    .all(|w| AUDIT_ITEMS.contains(&w));
            if used == *verb || audit_only {
                continue;
            }
            violations.push(format!("commands/{verb}.rs calls the verb {used}{path}"));
        }
    }
    assert!(
        violations.is_empty(),
        "verbs calling verbs (move the shared part into an engine):\n{}",
        violations.join("\n")
    );
}

#[test]
fn the_binary_calls_verbs_not_engines() {
    // The binary talks to the library through `commands` (and the leaf types its
    // options are built from), never to the engines directly: every file of it.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/bin/pgbunker");
    let files = crate::support::files(&dir);
    assert!(files.len() > 1, "the binary's files are found");
    let forbidden = [
        ("archive", "Repository"),
        ("dump", "run"),
        ("load", "run"),
        ("load", "restore"),
        ("export", "run"),
        ("verify", "preflight"),
        ("verify", "Check"),
    ];
    let mut violations = Vec::new();
    for f in files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "rs"))
    {
        let text = std::fs::read_to_string(f).unwrap();
        for (i, _) in text.match_indices("pgbunker::") {
            let path: String = text[i + "pgbunker::".len()..]
                .chars()
                .take_while(|c| *c != ';' && *c != '(')
                .collect();
            let mut words = path
                .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
                .filter(|w| !w.is_empty());
            let Some(module) = words.next() else { continue };
            let words: Vec<&str> = words.collect();
            for (m, item) in forbidden {
                if module == m && words.contains(&item) {
                    violations.push(format!("{} calls pgbunker::{m}::{item}", f.display()));
                }
            }
        }
    }
    assert!(
        violations.is_empty(),
        "the binary calls engines directly:\n{}",
        violations.join("\n")
    );
}
