//! Times as the repository stores them: RFC 3339 text, kept byte for byte.
//!
//! Catalog entries, manifests, summaries, key slots, marks and audit records carry
//! times that anyone who can write the repository can write too. Parsing them on the
//! way in would let one malformed time make the whole catalog unreadable, and writing
//! them back would re-spell times that hashes and seals cover. So a stored time keeps
//! its text, and it is parsed in one place, [`Timestamp::time`]: `None` for text that
//! is not RFC 3339, and each caller says what such a time means to it (unknown, or
//! "protect the backup").

use std::fmt;

use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(String);

impl Timestamp {
    pub fn now() -> Timestamp {
        OffsetDateTime::now_utc().into()
    }

    /// The time, when the text is RFC 3339.
    pub fn time(&self) -> Option<OffsetDateTime> {
        OffsetDateTime::parse(&self.0, &Rfc3339).ok()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<OffsetDateTime> for Timestamp {
    fn from(t: OffsetDateTime) -> Timestamp {
        Timestamp(t.format(&Rfc3339).expect("a UTC time formats as RFC 3339"))
    }
}

/// Text as stored (old fixtures, tests): kept as it is, parsed only when used.
impl From<&str> for Timestamp {
    fn from(text: &str) -> Timestamp {
        Timestamp(text.to_owned())
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Reports print and cut stored times as text (`&created_at[..10]`).
impl std::ops::Deref for Timestamp {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_text_survives_a_round_trip_and_bad_text_is_no_time() {
        for text in ["2026-01-01T00:00:00.000000Z", "2026-01-01T01:00:00+01:00"] {
            let t: Timestamp = serde_json::from_str(&format!("{text:?}")).unwrap();
            assert_eq!(serde_json::to_string(&t).unwrap(), format!("{text:?}"));
            assert!(t.time().is_some());
        }
        let bad: Timestamp = serde_json::from_str("\"yesterday\"").unwrap();
        assert_eq!(bad.time(), None);
        let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
        assert_eq!(Timestamp::from(now).time(), Some(now));
    }
}
