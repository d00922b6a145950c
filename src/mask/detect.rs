//! Columns that look like identifiers: by their name, and by a sample of their values.
//!
//! HIPAA's Safe Harbor method lists what a de-identified data set must not hold:
//! names, geography below a state, dates (but the year) tied to a person, phone and
//! fax numbers, emails, SSNs, record and account numbers, device identifiers, IP
//! addresses, photos, and free text that may say any of it. The names and patterns
//! below look for those; each finding comes with the transform a starting rules file
//! gives it. They find what they can, and the admin reviews the rules: a column with
//! an innocent name and innocent sampled values can still hold an identifier.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use regex::Regex;

use super::fake::FakeKind;
use super::plan::mentioned_columns;
use super::transform::{Generalization, Transform, ValueKind};
use crate::catalog::{Column, Table};

/// Why a column was flagged, and what to do about it by default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// `email address (name)`, `phone numbers (18 of 20 sampled values)`.
    pub why: String,
    pub default: Transform,
}

/// Tables whose plain `name` column names a person.
const PERSON_TABLES: &[&str] = &[
    "patient",
    "user",
    "person",
    "people",
    "contact",
    "member",
    "customer",
    "employee",
    "staff",
    "provider",
    "doctor",
    "physician",
    "nurse",
    "client",
    "guardian",
    "caregiver",
    "clinician",
];

/// `inet`, `cidr`, `macaddr`, `macaddr8`.
const ADDRESS_TYPES: [u32; 4] = [869, 650, 829, 774];

/// Who a `…_name` column can name.
const PERSON_WORDS: &[&str] = &[
    "patient",
    "guardian",
    "doctor",
    "physician",
    "nurse",
    "parent",
    "mother",
    "father",
    "spouse",
    "contact",
    "kin",
    "relative",
    "caregiver",
    "provider",
    "referrer",
    "witness",
    "emergency",
    "person",
    "owner",
    "holder",
    "member",
    "customer",
    "employee",
];

/// Whether the name holds one of the words: multi-word keys (`first_name`) anywhere,
/// single words as a whole `_`-separated part, its plural, or (five letters and more)
/// the start of a part (`phonenumber`), so that `city` does not flag `ethnicity`.
fn has(name: &str, words: &[&str]) -> bool {
    words.iter().any(|w| {
        if w.contains('_') {
            return name.contains(w);
        }
        name.split('_').any(|part| {
            part == *w || part.strip_suffix('s') == Some(w) || (w.len() >= 5 && part.starts_with(w))
        })
    })
}

/// What a column's name says it holds.
pub fn by_name(table: &Table, column: &Column, kind: &ValueKind) -> Option<Finding> {
    let n = column.name.to_lowercase();
    let t = table.name.name.to_lowercase();
    let found = |what: &str, default: Transform| {
        Some(Finding {
            why: format!("{what} (by its name)"),
            default,
        })
    };
    let fake = |kind: FakeKind| Transform::Fake { kind };
    if ADDRESS_TYPES.contains(&column.type_oid) {
        return found("IP or hardware address", Transform::Null);
    }
    if has(
        &n,
        &[
            "latitude",
            "longitude",
            "lat",
            "lon",
            "lng",
            "geo",
            "geolocation",
            "coordinates",
        ],
    ) {
        return found("geographic coordinates", Transform::Null);
    }
    // Arrays and other types transforms cannot rewrite: named like identifiers, they
    // are flagged for `null` (or an explicit `keep`).
    if matches!(kind, ValueKind::Other)
        && has(
            &n,
            &["phone", "email", "address", "name", "ssn", "mrn", "contact"],
        )
    {
        return found(
            "identifiers in a type masking can only null",
            Transform::Null,
        );
    }
    match kind {
        ValueKind::Text { .. } => {
            if has(&n, &["first_name", "firstname", "given_name", "forename"]) || n == "fname" {
                found("first name", fake(FakeKind::FirstName))
            } else if has(&n, &["last_name", "lastname", "surname", "family_name"]) || n == "lname"
            {
                found("last name", fake(FakeKind::LastName))
            } else if has(
                &n,
                &[
                    "full_name",
                    "fullname",
                    "display_name",
                    "maiden",
                    "nickname",
                ],
            ) || (n == "name" && has(&t, PERSON_TABLES))
                || (n.ends_with("_name") && has(&n, PERSON_WORDS))
            {
                found("person's name", fake(FakeKind::FullName))
            } else if has(&n, &["username", "user_name", "login"]) {
                found("user name", Transform::FormatPreserving)
            } else if has(&n, &["email", "e_mail"]) {
                found("email address", fake(FakeKind::Email))
            } else if has(&n, &["phone", "fax", "mobile", "cellphone"]) {
                found("phone or fax number", fake(FakeKind::Phone))
            } else if has(
                &n,
                &[
                    "ssn",
                    "social_security",
                    "mrn",
                    "medical_record",
                    "record_number",
                    "insurance",
                    "policy_n",
                    "member_id",
                    "account_n",
                    "license",
                    "licence",
                    "passport",
                    "beneficiary",
                    "serial",
                ],
            ) {
                found(
                    "record, account or licence number",
                    Transform::FormatPreserving,
                )
            } else if has(&n, &["zip", "zipcode", "postal", "postcode"]) {
                found(
                    "postal code",
                    Transform::Generalize {
                        kind: Generalization::Zip3,
                    },
                )
            } else if has(&n, &["address", "street", "addr", "line1", "line2"]) {
                found("street address", fake(FakeKind::Address))
            } else if has(&n, &["city", "town", "county"]) {
                found("city or county", fake(FakeKind::City))
            } else if has(
                &n,
                &[
                    "note",
                    "body",
                    "comment",
                    "description",
                    "instruction",
                    "narrative",
                    "remark",
                    "subject",
                    "message",
                    "summary",
                    "history",
                ],
            ) {
                found("free text", Transform::Redact { text: None })
            } else if has(&n, &["url", "website", "homepage"]) {
                found("web address", Transform::Redact { text: None })
            } else {
                None
            }
        }
        ValueKind::Date | ValueKind::Timestamp => {
            if has(&n, &["birth", "death", "deceased"]) || n == "dob" || n == "dod" {
                found("date of birth or death", Transform::YearOnly)
            } else {
                None
            }
        }
        ValueKind::Int(_) => {
            if n == "age" || n.ends_with("_age") {
                found(
                    "age",
                    Transform::Generalize {
                        kind: Generalization::Age,
                    },
                )
            } else if has(&n, &["ssn", "mrn", "medical_record", "phone"]) {
                found("record or phone number", Transform::FormatPreserving)
            } else {
                None
            }
        }
        ValueKind::Json | ValueKind::Jsonb => (has(
            &n,
            &["address", "contact", "emergency", "guardian", "next_of_kin"],
        ))
        .then(|| Finding {
            why: "contact details (by its name)".into(),
            default: Transform::Null,
        }),
        ValueKind::Uuid => has(&n, &["device", "serial"]).then(|| Finding {
            why: "device identifier (by its name)".into(),
            default: Transform::Hash,
        }),
        ValueKind::Bytea => has(
            &n,
            &[
                "photo",
                "image",
                "picture",
                "scan",
                "attachment",
                "document",
                "signature",
                "fingerprint",
                "face",
            ],
        )
        .then(|| Finding {
            why: "image or document (by its name)".into(),
            default: Transform::Null,
        }),
        ValueKind::Other => None,
    }
}

static EMAIL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$").expect("valid"));
static SSN: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^\d{3}-\d{2}-\d{4}$").expect("valid"));
static PHONE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\+?[\d\s().-]{7,24}$").expect("valid"));
static RECORD: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z]{1,5}[-#/ ]?\d{4,}$").expect("valid"));
static EMAIL_INSIDE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"[^@\s\x22]+@[^@\s\x22]+\.[A-Za-z]{2,}").expect("valid"));
static PHONE_INSIDE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\+?\d[\d\s().-]{6,}\d").expect("valid"));

/// What a sample of a column's non-null values (as text) says it holds: a pattern
/// most of them match. Fewer than 3 values say nothing.
pub fn by_values(kind: &ValueKind, values: &[String]) -> Option<Finding> {
    if values.len() < 3 {
        return None;
    }
    let share = |re: &Regex| values.iter().filter(|v| re.is_match(v)).count();
    let found = |what: &str, n: usize, default: Transform| {
        Some(Finding {
            why: format!("{what} ({n} of {} sampled values)", values.len()),
            default,
        })
    };
    let most = |n: usize| n * 5 >= values.len() * 3;
    match kind {
        ValueKind::Text { .. } => {
            let digits_ok =
                |v: &String| (7..=15).contains(&v.bytes().filter(u8::is_ascii_digit).count());
            let phones = values
                .iter()
                .filter(|v| PHONE.is_match(v) && digits_ok(v))
                .count();
            let spaces = |v: &String| v.bytes().filter(|b| *b == b' ').count();
            let free = values
                .iter()
                .filter(|v| v.chars().count() >= 40 && spaces(v) >= 5)
                .count();
            if most(share(&EMAIL)) {
                found(
                    "email addresses",
                    share(&EMAIL),
                    Transform::Fake {
                        kind: FakeKind::Email,
                    },
                )
            } else if most(share(&SSN)) {
                found(
                    "social security numbers",
                    share(&SSN),
                    Transform::FormatPreserving,
                )
            } else if most(phones) {
                found(
                    "phone numbers",
                    phones,
                    Transform::Fake {
                        kind: FakeKind::Phone,
                    },
                )
            } else if most(share(&RECORD)) {
                found(
                    "record numbers",
                    share(&RECORD),
                    Transform::FormatPreserving,
                )
            } else if most(free) {
                found("free text", free, Transform::Redact { text: None })
            } else {
                None
            }
        }
        ValueKind::Json | ValueKind::Jsonb => {
            let hits = values
                .iter()
                .filter(|v| EMAIL_INSIDE.is_match(v) || PHONE_INSIDE.is_match(v))
                .count();
            (hits * 10 >= values.len() * 3).then(|| Finding {
                why: format!(
                    "emails or phone numbers inside ({hits} of {} sampled values)",
                    values.len()
                ),
                default: Transform::Null,
            })
        }
        _ => None,
    }
}

/// Columns under a primary key, unique constraint or unique index: their default is a
/// transform that keeps values distinct.
pub fn unique_columns(table: &Table) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for c in &table.constraints {
        if let Some(k) = c.key_columns() {
            out.extend(k);
        }
    }
    for i in table
        .indexes
        .iter()
        .filter(|i| i.definition.starts_with("CREATE UNIQUE INDEX"))
    {
        let after = i
            .definition
            .find(" USING ")
            .map_or("", |p| &i.definition[p..]);
        out.extend(mentioned_columns(after, table));
    }
    out
}

/// The finding's default made to fit the column: distinct values for unique columns,
/// no NULL for NOT NULL columns.
pub fn fitted_default(f: &Finding, column: &Column, kind: &ValueKind, unique: bool) -> Transform {
    let mut t = f.default.clone();
    if unique && Transform::FormatPreserving.applies_to(kind) {
        t = Transform::FormatPreserving;
    }
    if t == Transform::Null && column.not_null {
        let redact = Transform::Redact { text: None };
        t = if redact.applies_to(kind) {
            redact
        } else {
            Transform::Hash
        };
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::QualName;

    fn table(name: &str) -> Table {
        Table {
            name: QualName::new("public", name),
            ..Default::default()
        }
    }

    fn col(name: &str, oid: u32) -> Column {
        Column {
            name: name.into(),
            type_oid: oid,
            ..Default::default()
        }
    }

    const TEXT: ValueKind = ValueKind::Text {
        max_chars: None,
        padded: false,
    };

    #[test]
    fn names_flag_identifiers_and_leave_the_rest() {
        let p = table("patients");
        let flagged = |c: &str, k: &ValueKind| by_name(&p, &col(c, 25), k).map(|f| f.default);
        assert_eq!(
            flagged("first_name", &TEXT),
            Some(Transform::Fake {
                kind: FakeKind::FirstName
            })
        );
        assert_eq!(flagged("mrn", &TEXT), Some(Transform::FormatPreserving));
        assert_eq!(
            flagged("date_of_birth", &ValueKind::Date),
            Some(Transform::YearOnly)
        );
        assert_eq!(
            flagged("name", &TEXT),
            Some(Transform::Fake {
                kind: FakeKind::FullName
            })
        );
        assert_eq!(
            by_name(&table("medications"), &col("name", 25), &TEXT),
            None
        );
        assert_eq!(flagged("surgery_type", &TEXT), None);
        assert!(by_name(&p, &col("last_login_ip", 869), &ValueKind::Other).is_some());
        assert_eq!(flagged("ethnicity", &TEXT), None);
        assert_eq!(
            flagged("clinical_notes", &TEXT),
            Some(Transform::Redact { text: None })
        );
        assert!(flagged("phonenumber", &TEXT).is_some());
    }

    #[test]
    fn values_flag_what_most_samples_match() {
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let emails = v(&["a@b.org", "c.d@e.example", "x@y.com", "nothing"]);
        assert!(by_values(&TEXT, &emails).unwrap().why.contains("3 of 4"));
        let phones = v(&["+1 (200) 555-0037", "+1 (201) 555-0074", "555 123 4567"]);
        assert_eq!(
            by_values(&TEXT, &phones).unwrap().default,
            Transform::Fake {
                kind: FakeKind::Phone
            }
        );
        let mrns = v(&["MRN-00000001", "MRN-00000002", "MRN-00000003"]);
        assert_eq!(
            by_values(&TEXT, &mrns).unwrap().default,
            Transform::FormatPreserving
        );
        let words = v(&["oral", "iv", "topical"]);
        assert_eq!(by_values(&TEXT, &words), None);
        let json = v(&[
            r#"{"number": "+1-555-0101"}"#,
            "{}",
            r#"{"email": "a@b.org"}"#,
        ]);
        assert!(by_values(&ValueKind::Jsonb, &json).is_some());
    }
}
