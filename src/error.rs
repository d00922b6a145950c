//! Error classes shared by every layer.
//!
//! Each module keeps its own typed error; this leaf only says how an error should be
//! treated by whoever finally reports it: which exit code it maps to, and what the user
//! can do about it. Keeping the classification here (and not one giant enum) lets the
//! layers stay independent while the binary still gets stable, documented exit codes.

use std::fmt;

/// What kind of failure happened, from the user's point of view.
///
/// The numeric exit code of each class is part of the CLI contract (see README).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Wrong flags, missing arguments, conflicting options.
    Usage,
    /// No key, a malformed key, or a key that does not open the repository.
    Key,
    /// The database could not be reached or refused us.
    Connection,
    /// The database reported an error while we worked (SQL error, missing table, ...).
    Database,
    /// The repository is missing, not a pgbunker repository, or unreachable.
    Repository,
    /// Data in the repository failed an integrity check: never trust it silently.
    Corrupt,
    /// Local I/O failed (disk full, permissions, ...).
    Io,
    /// The run was interrupted (signal) and left no complete-looking result.
    Interrupted,
    /// What the user said to expect did not hold (`diff --expect-append-only`).
    Expectation,
    /// Anything else: a bug or an unexpected state.
    Internal,
}

impl Class {
    /// The process exit code for this class; documented in README.md.
    pub fn exit_code(self) -> i32 {
        match self {
            Class::Internal | Class::Expectation => 1,
            Class::Usage => 2,
            Class::Connection => 3,
            Class::Database => 4,
            Class::Repository => 5,
            Class::Key => 6,
            Class::Corrupt => 7,
            Class::Io => 8,
            Class::Interrupted => 130,
        }
    }
}

impl fmt::Display for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Class::Usage => "usage error",
            Class::Key => "key error",
            Class::Connection => "connection error",
            Class::Database => "database error",
            Class::Repository => "repository error",
            Class::Corrupt => "integrity error",
            Class::Io => "I/O error",
            Class::Interrupted => "interrupted",
            Class::Expectation => "expectation not met",
            Class::Internal => "internal error",
        };
        f.write_str(s)
    }
}

/// Implemented by every module error so the binary can pick an exit code and a hint
/// without knowing the module.
pub trait Classify: std::error::Error {
    fn class(&self) -> Class;
    /// A sentence telling the user what to do next, when we know one.
    fn hint(&self) -> Option<String> {
        None
    }
}

/// A run that went to its end and found what it looked at unsound: damage in a
/// backup, a tampered audit trail, tables a restore could not load. The run itself
/// worked, so its report (every detail of it) is the answer, and this verdict only
/// picks the exit code and the closing error line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failed {
    pub class: Class,
    /// One line naming what failed.
    pub message: String,
    pub hint: Option<String>,
}

/// Implemented by every report: a report is data even when it says "failed", and the
/// caller (the binary, the audit record) decides what a failure means for it.
pub trait Outcome {
    /// `None` when the run found nothing wrong.
    fn failed(&self) -> Option<Failed> {
        None
    }
}
