//! Which backups a retention policy keeps (a restic-style "forget" policy).
//!
//! This module only *decides*; it never lists, reads or deletes anything and never
//! reads the clock. `now` is always a parameter so that a decision can be reproduced
//! exactly (in tests, in a `--dry-run`, or when a run is investigated after the fact),
//! and so that the code that actually deletes can show the user the same decision it
//! is about to carry out.
//!
//! # Semantics
//!
//! * One [`Decision`] per candidate, **newest first** (by `created_at`, ties broken by
//!   `bid` descending). "Newest" in every rule below means "first in this order", so
//!   that the result never depends on the order the caller listed the backups in.
//! * `keep_last n` keeps the `n` newest backups (reason `"last n"`).
//! * `keep_hourly` / `keep_daily` / `keep_weekly` / `keep_monthly` / `keep_yearly n`
//!   walk the backups newest first and put each one in a bucket: its UTC hour, UTC
//!   calendar day, ISO 8601 week (ISO week-numbering year + week number, so
//!   2027-01-03 belongs to 2026-W53), calendar month or calendar year. The newest backup
//!   of each bucket is kept, for the `n` newest buckets *that contain a backup*.
//!   Buckets without a backup do not count (as in restic): a month in which every
//!   backup failed must not push an older good backup out of the policy. Buckets are
//!   taken in UTC whatever offset a timestamp carries, so that the same history gives
//!   the same answer on every machine and across daylight-saving changes.
//! * `keep_within d` keeps every backup with `created_at >= now - d` (reason
//!   `"within d"`). Years and months are subtracted calendar-wise, in UTC, as one
//!   number of months (`1y6mo` = 18 months), clamping the day of the month
//!   (2026-03-31 minus `1mo` is 2026-02-28): "one month" in a runbook means "since the
//!   same day last month", not "30 days". Weeks, days and hours are then subtracted as
//!   exact durations. A cutoff before the earliest representable date keeps everything.
//! * Protections apply whatever the rules say, even when no rule matches: a backup under
//!   legal hold (`"legal hold"`), one whose `keep_until` is later than `now`
//!   (`"kept until <RFC 3339>"`) and one a running restore, verify or export reads
//!   from (`"in use by a running restore, verify or export"`) are always kept. These
//!   are promises made to someone else (a lawyer, an operator, a process); a policy
//!   may not break them.
//! * The newest backup is always kept (`"newest backup"`), so that a misconfigured
//!   policy, or a run of failed nightly backups that lets every backup age out of
//!   `keep_within`, can never delete the last good backup.
//! * A backup collects every reason that applies, in this order: newest, protections,
//!   `keep_last`, `keep_within`, then hourly to yearly. `keep == !reasons.is_empty()`;
//!   a backup that may go has no reasons.
//! * A policy with no rule (every `keep_*` `None` or `0`, no `keep_within`) is refused
//!   with [`RetentionError::EmptyPolicy`] rather than read as "keep only what is
//!   protected": an empty policy is far more likely a configuration mistake than an
//!   intent to delete almost everything.
//! * Backups dated in the future (clock skew on the machine that took them) are kept by
//!   `keep_within` and otherwise count like any other backup; in particular the
//!   newest one is whichever has the latest timestamp.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;
use time::format_description::well_known::Rfc3339;
use time::{Date, Duration, Month, OffsetDateTime, UtcOffset};

use crate::error::{Class, Classify};

/// How many backups to keep per period; all `None`/`0` means "no policy" and is refused.
///
/// Counts are per rule and the rules are combined by union: a backup is kept if *any*
/// rule (or protection) wants it, so adding a rule can only ever keep more. The same
/// fields are `prune`'s flags and the settings file's `[prune]` keys; the field
/// comments are the flags' help.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct RetentionPolicy {
    /// Keep the N newest backups.
    #[cfg_attr(
        feature = "cli",
        arg(long, env = "PGBUNKER_KEEP_LAST", value_name = "N")
    )]
    pub keep_last: Option<u32>,
    /// Keep the newest backup of each of the last N hours that have one.
    #[cfg_attr(
        feature = "cli",
        arg(long, env = "PGBUNKER_KEEP_HOURLY", value_name = "N")
    )]
    pub keep_hourly: Option<u32>,
    /// Keep the newest backup of each of the last N days that have one.
    #[cfg_attr(
        feature = "cli",
        arg(long, env = "PGBUNKER_KEEP_DAILY", value_name = "N")
    )]
    pub keep_daily: Option<u32>,
    /// Keep the newest backup of each of the last N ISO weeks that have one.
    #[cfg_attr(
        feature = "cli",
        arg(long, env = "PGBUNKER_KEEP_WEEKLY", value_name = "N")
    )]
    pub keep_weekly: Option<u32>,
    /// Keep the newest backup of each of the last N months that have one.
    #[cfg_attr(
        feature = "cli",
        arg(long, env = "PGBUNKER_KEEP_MONTHLY", value_name = "N")
    )]
    pub keep_monthly: Option<u32>,
    /// Keep the newest backup of each of the last N years that have one.
    #[cfg_attr(
        feature = "cli",
        arg(long, env = "PGBUNKER_KEEP_YEARLY", value_name = "N")
    )]
    pub keep_yearly: Option<u32>,
    /// Keep every backup younger than this (e.g. 30d, 12h, 2w, 1y6mo; units y, mo, w,
    /// d, h, min).
    #[cfg_attr(
        feature = "cli",
        arg(long, env = "PGBUNKER_KEEP_WITHIN", value_name = "SPAN")
    )]
    pub keep_within: Option<KeepWithin>,
}

impl RetentionPolicy {
    fn has_rule(&self) -> bool {
        let counts = [
            self.keep_last,
            self.keep_hourly,
            self.keep_daily,
            self.keep_weekly,
            self.keep_monthly,
            self.keep_yearly,
        ];
        self.keep_within.is_some() || counts.iter().any(|n| n.unwrap_or(0) > 0)
    }
}

/// A span: `30d`, `12h`, `2w`, `1y6mo`, `1y2mo3d4h`, `30min`. One parser for every
/// span pgbunker reads (`--keep-within`, `--grace`, `check --max-age`, `audit --since`,
/// the settings file).
///
/// Units: `y` years, `mo` months, `w` weeks, `d` days, `h` hours, `min` minutes; each
/// at most once, lower case only. A bare `m` is refused: read as months by restic and
/// as minutes by most other tools, `30m` in a monitoring check once meant 30 months
/// and never fired. The text is kept as written so that reasons and listings show the
/// user their own words, and it is what (de)serializes, so a config file round-trips
/// as written. A `KeepWithin` is never zero: a zero span would keep nothing and is
/// almost certainly a typo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeepWithin {
    text: String,
    years: u32,
    months: u32,
    weeks: u32,
    days: u32,
    hours: u32,
    minutes: u32,
}

/// Shown when a unit is not understood.
const UNITS: &str = "units: y years, mo months, w weeks, d days, h hours, min minutes";

/// Longer spans are refused: they cannot be a deliberate retention period, and
/// calendar arithmetic that far out leaves the range of [`Date`].
const MAX_WITHIN_DAYS: u64 = 3_652_425; // 10 000 years of 365.2425 days

impl KeepWithin {
    /// The oldest `created_at` that is still "within", or `None` when that instant lies
    /// before the earliest representable date (then every backup is within).
    pub fn cutoff(&self, now: OffsetDateTime) -> Option<OffsetDateTime> {
        let now = utc(now);
        let months_back = i64::from(self.years) * 12 + i64::from(self.months);
        let index = i64::from(now.year()) * 12 + i64::from(u8::from(now.month())) - 1;
        let target = index - months_back;
        let year = i32::try_from(target.div_euclid(12)).ok()?;
        let month = Month::try_from(u8::try_from(target.rem_euclid(12) + 1).ok()?).ok()?;
        let day = now.day().min(month.length(year));
        let date = Date::from_calendar_date(year, month, day).ok()?;
        let shifted = now.replace_date(date);
        let hours = (i64::from(self.weeks) * 7 + i64::from(self.days)) * 24 + i64::from(self.hours);
        shifted.checked_sub(Duration::hours(hours) + Duration::minutes(i64::from(self.minutes)))
    }
}

impl fmt::Display for KeepWithin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for KeepWithin {
    type Err = RetentionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |why: String| RetentionError::BadDuration(format!("{s:?}: {why}"));
        if s.is_empty() {
            return Err(bad("empty".into()));
        }
        // Slots for y, mo, w, d, h, min.
        let mut parts: [Option<u32>; 6] = [None; 6];
        let mut rest = s;
        while !rest.is_empty() {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            let (number, tail) = rest.split_at(digits);
            if number.is_empty() {
                let c = tail.chars().next().unwrap_or_default();
                return Err(bad(format!("expected a number, found {c:?}")));
            }
            let letters = tail
                .find(|c: char| !c.is_ascii_lowercase())
                .unwrap_or(tail.len());
            let (unit, tail) = tail.split_at(letters);
            let slot = match unit {
                "y" => 0,
                "mo" => 1,
                "w" => 2,
                "d" => 3,
                "h" => 4,
                "min" => 5,
                "m" => {
                    return Err(bad(format!(
                        "\"m\" could mean months or minutes: write {number}mo for months or \
                         {number}min for minutes"
                    )))
                }
                "" => match tail.chars().next() {
                    None => return Err(bad(format!("{number} has no unit"))),
                    Some(other) => return Err(bad(format!("unknown unit {other:?} ({UNITS})"))),
                },
                other => return Err(bad(format!("unknown unit {other:?} ({UNITS})"))),
            };
            if parts[slot].is_some() {
                return Err(bad(format!("unit {unit:?} given twice")));
            }
            // Only ASCII digits, so the only possible failure is overflow.
            let value: u32 = number
                .parse()
                .map_err(|_| bad(format!("{number} is too large")))?;
            parts[slot] = Some(value);
            rest = tail;
        }
        let [years, months, weeks, days, hours, minutes] = parts.map(|p| p.unwrap_or(0));
        if [years, months, weeks, days, hours, minutes]
            .iter()
            .all(|&n| n == 0)
        {
            return Err(bad("a zero span would keep nothing".into()));
        }
        let approx_days = u64::from(years) * 365
            + u64::from(months) * 30
            + u64::from(weeks) * 7
            + u64::from(days)
            + u64::from(hours) / 24
            + u64::from(minutes) / 1440;
        if approx_days > MAX_WITHIN_DAYS {
            return Err(bad("longer than 10000 years".into()));
        }
        Ok(KeepWithin {
            text: s.to_owned(),
            years,
            months,
            weeks,
            days,
            hours,
            minutes,
        })
    }
}

impl Serialize for KeepWithin {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for KeepWithin {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// What the policy needs to know about one backup; the caller gathers it from the
/// catalog so that this module stays free of I/O.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub bid: String,
    pub created_at: OffsetDateTime,
    pub legal_hold: bool,
    pub keep_until: Option<OffsetDateTime>,
    pub in_use: bool,
}

/// The verdict on one backup, with every reason it is kept, so that a dry run can
/// explain itself and an operator can see which rule protects what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub bid: String,
    pub keep: bool,
    pub reasons: Vec<String>,
}

/// Why no decision could be made; both are mistakes in the user's input, not in the
/// repository.
#[derive(Debug, Error)]
pub enum RetentionError {
    #[error("no retention rule given; refusing to decide that every backup may go")]
    EmptyPolicy,
    #[error("invalid span {0} (use e.g. 30d, 12h, 2w, 1y6mo, 30min)")]
    BadDuration(String),
}

impl Classify for RetentionError {
    fn class(&self) -> Class {
        Class::Usage
    }

    fn hint(&self) -> Option<String> {
        Some(match self {
            RetentionError::EmptyPolicy => {
                "set at least one of keep-last, keep-hourly, keep-daily, \
                 keep-weekly, keep-monthly, keep-yearly (above 0) or keep-within"
                    .into()
            }
            RetentionError::BadDuration(_) => "write the span as numbers with units y (years), \
                 mo (months), w (weeks), d (days), h (hours), min (minutes), e.g. 30d or 1y6mo"
                .into(),
        })
    }
}

/// Decides, for every candidate, whether the policy keeps it and why.
///
/// Pure and deterministic: the same policy, candidates and `now` always give the same
/// decisions, whatever order the candidates come in. See the module documentation for
/// the rules.
pub fn decide(
    policy: &RetentionPolicy,
    candidates: &[Candidate],
    now: OffsetDateTime,
) -> Result<Vec<Decision>, RetentionError> {
    if !policy.has_rule() {
        return Err(RetentionError::EmptyPolicy);
    }

    let mut order: Vec<&Candidate> = candidates.iter().collect();
    order.sort_by(|a, b| {
        b.created_at
            .cmp(&a.created_at)
            .then_with(|| b.bid.cmp(&a.bid))
    });

    let keep_last = policy.keep_last.unwrap_or(0);
    let keep_last_len = usize::try_from(keep_last).unwrap_or(usize::MAX);
    let within = policy
        .keep_within
        .as_ref()
        .map(|span| (span, span.cutoff(now)));
    let mut periodic: Vec<Bucketing> = [
        (Period::Hourly, policy.keep_hourly),
        (Period::Daily, policy.keep_daily),
        (Period::Weekly, policy.keep_weekly),
        (Period::Monthly, policy.keep_monthly),
        (Period::Yearly, policy.keep_yearly),
    ]
    .into_iter()
    .filter_map(|(period, n)| match n {
        Some(left) if left > 0 => Some(Bucketing {
            period,
            left,
            last: None,
        }),
        _ => None,
    })
    .collect();

    let mut decisions = Vec::with_capacity(order.len());
    for (index, candidate) in order.into_iter().enumerate() {
        let mut reasons = Vec::new();
        if index == 0 {
            reasons.push("newest backup".to_owned());
        }
        if candidate.legal_hold {
            reasons.push("legal hold".to_owned());
        }
        if let Some(until) = candidate.keep_until.filter(|until| *until > now) {
            let shown = until.format(&Rfc3339).unwrap_or_else(|_| until.to_string());
            reasons.push(format!("kept until {shown}"));
        }
        if candidate.in_use {
            reasons.push("in use by a running restore, verify or export".to_owned());
        }
        if index < keep_last_len {
            reasons.push(format!("last {keep_last}"));
        }
        if let Some((span, cutoff)) = &within {
            let inside = match cutoff {
                Some(cutoff) => candidate.created_at >= *cutoff,
                None => true,
            };
            if inside {
                reasons.push(format!("within {span}"));
            }
        }
        let created = utc(candidate.created_at);
        for bucketing in &mut periodic {
            bucketing.offer(created, &mut reasons);
        }
        decisions.push(Decision {
            bid: candidate.bid.clone(),
            keep: !reasons.is_empty(),
            reasons,
        });
    }
    Ok(decisions)
}

/// Buckets are taken in UTC; a timestamp so close to the end of the representable range
/// that it has no UTC form keeps its own offset rather than aborting the decision.
fn utc(t: OffsetDateTime) -> OffsetDateTime {
    t.checked_to_offset(UtcOffset::UTC).unwrap_or(t)
}

#[derive(Debug, Clone, Copy)]
enum Period {
    Hourly,
    Daily,
    Weekly,
    Monthly,
    Yearly,
}

impl Period {
    /// The bucket a UTC timestamp falls in; the label doubles as the bucket key, since it
    /// names the bucket uniquely.
    fn label(self, t: OffsetDateTime) -> String {
        let (y, m, d) = (t.year(), u8::from(t.month()), t.day());
        match self {
            Period::Hourly => format!("{y:04}-{m:02}-{d:02} {:02}h", t.hour()),
            Period::Daily => format!("{y:04}-{m:02}-{d:02}"),
            Period::Weekly => {
                let (iso_year, week, _) = t.to_iso_week_date();
                format!("{iso_year:04}-W{week:02}")
            }
            Period::Monthly => format!("{y:04}-{m:02}"),
            Period::Yearly => format!("{y:04}"),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Period::Hourly => "hourly",
            Period::Daily => "daily",
            Period::Weekly => "weekly",
            Period::Monthly => "monthly",
            Period::Yearly => "yearly",
        }
    }
}

/// The state of one periodic rule during the newest-first walk.
struct Bucketing {
    period: Period,
    /// Buckets still to fill.
    left: u32,
    /// The bucket of the last backup this rule kept.
    last: Option<String>,
}

impl Bucketing {
    /// Keeps `t`'s backup when it is the first (so newest) one seen in a new bucket.
    /// Works because the walk is newest first: a bucket's backups are contiguous.
    fn offer(&mut self, t: OffsetDateTime, reasons: &mut Vec<String>) {
        if self.left == 0 {
            return;
        }
        let label = self.period.label(t);
        if self.last.as_deref() == Some(label.as_str()) {
            return;
        }
        reasons.push(format!("{} snapshot ({label})", self.period.name()));
        self.left -= 1;
        self.last = Some(label);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{datetime, format_description};

    const NOW: OffsetDateTime = datetime!(2027-01-06 09:30 UTC);

    fn bid_of(t: OffsetDateTime) -> String {
        utc(t)
            .format(format_description!(
                "[year]-[month]-[day]T[hour]:[minute]:[second]"
            ))
            .unwrap()
    }

    fn at(t: OffsetDateTime) -> Candidate {
        Candidate {
            bid: bid_of(t),
            created_at: t,
            legal_hold: false,
            keep_until: None,
            in_use: false,
        }
    }

    /// One backup every 6 hours for 400 days (2025-12-02 12:00 to 2027-01-06 06:00
    /// UTC), plus an old pre-migration backup, a manual year-end backup and one taken
    /// in the last second of ISO week 2026-W53; listed in a scrambled order.
    fn history() -> Vec<Candidate> {
        let first = datetime!(2025-12-02 12:00 UTC);
        let mut all: Vec<Candidate> = (0..1600)
            .map(|i| at(first + Duration::hours(6 * i)))
            .collect();
        assert_eq!(all.last().unwrap().bid, "2027-01-06T06:00:00");
        all.extend([
            at(datetime!(2023-06-15 03:00 UTC)),
            at(datetime!(2026-12-31 23:30 UTC)),
            at(datetime!(2027-01-03 23:59:59 UTC)),
        ]);
        all.rotate_left(777);
        all
    }

    /// Runs `decide` and checks the invariants every result must meet.
    fn run(
        policy: &RetentionPolicy,
        candidates: &[Candidate],
        now: OffsetDateTime,
    ) -> Vec<Decision> {
        let decisions = decide(policy, candidates, now).unwrap();
        assert_eq!(decisions.len(), candidates.len());
        for d in &decisions {
            assert_eq!(d.keep, !d.reasons.is_empty(), "{d:?}");
        }
        let created: Vec<(OffsetDateTime, &str)> = decisions
            .iter()
            .map(|d| {
                let c = candidates.iter().find(|c| c.bid == d.bid).unwrap();
                (c.created_at, d.bid.as_str())
            })
            .collect();
        assert!(created.windows(2).all(|w| w[0] > w[1]), "not newest first");
        decisions
    }

    fn kept(decisions: &[Decision]) -> Vec<&str> {
        decisions
            .iter()
            .filter(|d| d.keep)
            .map(|d| d.bid.as_str())
            .collect()
    }

    fn reasons<'a>(decisions: &'a [Decision], bid: &str) -> Vec<&'a str> {
        decisions
            .iter()
            .find(|d| d.bid == bid)
            .unwrap_or_else(|| panic!("no decision for {bid}"))
            .reasons
            .iter()
            .map(String::as_str)
            .collect()
    }

    fn within(text: &str) -> KeepWithin {
        text.parse().unwrap()
    }

    #[test]
    fn keep_last_keeps_the_n_newest() {
        let policy = RetentionPolicy {
            keep_last: Some(3),
            ..Default::default()
        };
        let d = run(&policy, &history(), NOW);
        assert_eq!(
            kept(&d),
            [
                "2027-01-06T06:00:00",
                "2027-01-06T00:00:00",
                "2027-01-05T18:00:00"
            ]
        );
        assert_eq!(
            reasons(&d, "2027-01-06T06:00:00"),
            ["newest backup", "last 3"]
        );
        assert_eq!(reasons(&d, "2027-01-05T18:00:00"), ["last 3"]);
        assert_eq!(reasons(&d, "2027-01-05T12:00:00"), Vec::<&str>::new());
    }

    #[test]
    fn keep_daily_keeps_the_newest_of_each_of_the_last_7_days() {
        let policy = RetentionPolicy {
            keep_daily: Some(7),
            ..Default::default()
        };
        let d = run(&policy, &history(), NOW);
        assert_eq!(
            kept(&d),
            [
                "2027-01-06T06:00:00",
                "2027-01-05T18:00:00",
                "2027-01-04T18:00:00",
                "2027-01-03T23:59:59",
                "2027-01-02T18:00:00",
                "2027-01-01T18:00:00",
                "2026-12-31T23:30:00",
            ]
        );
        assert_eq!(
            reasons(&d, "2027-01-06T06:00:00"),
            ["newest backup", "daily snapshot (2027-01-06)"]
        );
        assert_eq!(
            reasons(&d, "2027-01-03T23:59:59"),
            ["daily snapshot (2027-01-03)"]
        );
        assert!(!d.iter().any(|x| x.bid == "2027-01-03T18:00:00" && x.keep));
    }

    #[test]
    fn daily_buckets_are_utc_days_whatever_the_offset() {
        // 23:30 at -05:00 is 04:30 the next day in UTC, so it is the newest backup of
        // 2026-11-21 (UTC) and the 20th is represented by its 12:00 backup.
        let evening = at(datetime!(2026-11-20 23:30 -05:00));
        assert_eq!(evening.bid, "2026-11-21T04:30:00");
        let candidates = vec![
            at(datetime!(2026-11-21 02:00 UTC)),
            evening,
            at(datetime!(2026-11-20 12:00 UTC)),
            at(datetime!(2026-11-20 06:00 UTC)),
            at(datetime!(2026-11-19 12:00 UTC)),
        ];
        let policy = RetentionPolicy {
            keep_daily: Some(2),
            ..Default::default()
        };
        let d = run(&policy, &candidates, datetime!(2026-11-21 12:00 UTC));
        assert_eq!(kept(&d), ["2026-11-21T04:30:00", "2026-11-20T12:00:00"]);
        assert_eq!(
            reasons(&d, "2026-11-21T04:30:00"),
            ["newest backup", "daily snapshot (2026-11-21)"]
        );
    }

    #[test]
    fn keep_hourly_keeps_the_newest_of_each_utc_hour() {
        let candidates = vec![
            at(datetime!(2026-11-20 13:00 UTC)),
            at(datetime!(2026-11-20 14:05 UTC)),
            at(datetime!(2026-11-20 14:50 UTC)),
            at(datetime!(2026-11-20 15:10 UTC)),
            at(datetime!(2026-11-20 16:59:59 UTC)),
            at(datetime!(2026-11-20 16:00 UTC)),
        ];
        let policy = RetentionPolicy {
            keep_hourly: Some(3),
            ..Default::default()
        };
        let d = run(&policy, &candidates, datetime!(2026-11-20 17:00 UTC));
        assert_eq!(
            kept(&d),
            [
                "2026-11-20T16:59:59",
                "2026-11-20T15:10:00",
                "2026-11-20T14:50:00"
            ]
        );
        assert_eq!(
            reasons(&d, "2026-11-20T14:50:00"),
            ["hourly snapshot (2026-11-20 14h)"]
        );
    }

    #[test]
    fn keep_weekly_uses_iso_weeks_across_the_year_change() {
        let policy = RetentionPolicy {
            keep_weekly: Some(4),
            ..Default::default()
        };
        let d = run(&policy, &history(), NOW);
        // 2026-12-28 (Mon) .. 2027-01-03 (Sun) is ISO week 2026-W53; 2027-01-04 (Mon)
        // starts 2027-W01.
        assert_eq!(
            kept(&d),
            [
                "2027-01-06T06:00:00",
                "2027-01-03T23:59:59",
                "2026-12-27T18:00:00",
                "2026-12-20T18:00:00",
            ]
        );
        assert_eq!(
            reasons(&d, "2027-01-06T06:00:00"),
            ["newest backup", "weekly snapshot (2027-W01)"]
        );
        assert_eq!(
            reasons(&d, "2027-01-03T23:59:59"),
            ["weekly snapshot (2026-W53)"]
        );
        assert_eq!(
            reasons(&d, "2026-12-27T18:00:00"),
            ["weekly snapshot (2026-W52)"]
        );
        assert_eq!(
            reasons(&d, "2026-12-20T18:00:00"),
            ["weekly snapshot (2026-W51)"]
        );
    }

    #[test]
    fn iso_week_of_late_december_belongs_to_the_next_year() {
        // 2025-12-29 (Mon) is the first day of 2026-W01; 2025-12-28 (Sun) ends 2025-W52.
        let candidates = vec![
            at(datetime!(2025-12-28 12:00 UTC)),
            at(datetime!(2025-12-29 00:00 UTC)),
            at(datetime!(2026-01-01 12:00 UTC)),
            at(datetime!(2026-01-04 23:59:59 UTC)),
            at(datetime!(2026-01-05 00:00 UTC)),
        ];
        let policy = RetentionPolicy {
            keep_weekly: Some(10),
            ..Default::default()
        };
        let d = run(&policy, &candidates, datetime!(2026-01-05 12:00 UTC));
        assert_eq!(
            kept(&d),
            [
                "2026-01-05T00:00:00",
                "2026-01-04T23:59:59",
                "2025-12-28T12:00:00"
            ]
        );
        assert_eq!(
            reasons(&d, "2026-01-04T23:59:59"),
            ["weekly snapshot (2026-W01)"]
        );
        assert_eq!(
            reasons(&d, "2025-12-28T12:00:00"),
            ["weekly snapshot (2025-W52)"]
        );
    }

    #[test]
    fn keep_monthly_12_keeps_the_newest_of_each_month() {
        let policy = RetentionPolicy {
            keep_monthly: Some(12),
            ..Default::default()
        };
        let d = run(&policy, &history(), NOW);
        assert_eq!(
            kept(&d),
            [
                "2027-01-06T06:00:00",
                "2026-12-31T23:30:00",
                "2026-11-30T18:00:00",
                "2026-10-31T18:00:00",
                "2026-09-30T18:00:00",
                "2026-08-31T18:00:00",
                "2026-07-31T18:00:00",
                "2026-06-30T18:00:00",
                "2026-05-31T18:00:00",
                "2026-04-30T18:00:00",
                "2026-03-31T18:00:00",
                "2026-02-28T18:00:00",
            ]
        );
        assert_eq!(
            reasons(&d, "2026-12-31T23:30:00"),
            ["monthly snapshot (2026-12)"]
        );
    }

    #[test]
    fn months_without_a_backup_do_not_count() {
        // Nothing between 2023-06 and 2025-12: the 15th bucket is 2023-06.
        let policy = RetentionPolicy {
            keep_monthly: Some(15),
            ..Default::default()
        };
        let d = run(&policy, &history(), NOW);
        let k = kept(&d);
        assert_eq!(k.len(), 15);
        assert_eq!(
            k[12..],
            [
                "2026-01-31T18:00:00",
                "2025-12-31T18:00:00",
                "2023-06-15T03:00:00"
            ]
        );
        assert_eq!(
            reasons(&d, "2023-06-15T03:00:00"),
            ["monthly snapshot (2023-06)"]
        );
    }

    #[test]
    fn keep_yearly_keeps_the_newest_of_each_year() {
        let three = RetentionPolicy {
            keep_yearly: Some(3),
            ..Default::default()
        };
        let d = run(&three, &history(), NOW);
        assert_eq!(
            kept(&d),
            [
                "2027-01-06T06:00:00",
                "2026-12-31T23:30:00",
                "2025-12-31T18:00:00"
            ]
        );
        assert_eq!(
            reasons(&d, "2026-12-31T23:30:00"),
            ["yearly snapshot (2026)"]
        );

        // 2024 holds no backup, so the fourth bucket is 2023.
        let ten = RetentionPolicy {
            keep_yearly: Some(10),
            ..Default::default()
        };
        let d = run(&ten, &history(), NOW);
        assert_eq!(
            kept(&d),
            [
                "2027-01-06T06:00:00",
                "2026-12-31T23:30:00",
                "2025-12-31T18:00:00",
                "2023-06-15T03:00:00",
            ]
        );
    }

    #[test]
    fn runbook_policy_within_30d_plus_monthly_12() {
        let policy = RetentionPolicy {
            keep_within: Some(within("30d")),
            keep_monthly: Some(12),
            ..Default::default()
        };
        let d = run(&policy, &history(), NOW);

        // Cutoff 2026-12-07 09:30: every regular backup from 2026-12-07 12:00 on,
        // plus the two irregular ones in that range...
        let mut expected: Vec<String> = Vec::new();
        let mut t = datetime!(2027-01-06 06:00 UTC);
        while t >= datetime!(2026-12-07 12:00 UTC) {
            expected.push(bid_of(t));
            t -= Duration::hours(6);
        }
        assert_eq!(expected.len(), 120);
        expected.push("2026-12-31T23:30:00".into());
        expected.push("2027-01-03T23:59:59".into());
        expected.sort_by(|a, b| b.cmp(a));
        // ...then the month ends of the ten older months.
        expected.extend(
            [
                "2026-11-30T18:00:00",
                "2026-10-31T18:00:00",
                "2026-09-30T18:00:00",
                "2026-08-31T18:00:00",
                "2026-07-31T18:00:00",
                "2026-06-30T18:00:00",
                "2026-05-31T18:00:00",
                "2026-04-30T18:00:00",
                "2026-03-31T18:00:00",
                "2026-02-28T18:00:00",
            ]
            .map(String::from),
        );
        assert_eq!(kept(&d), expected);
        assert_eq!(kept(&d).len(), 132);

        assert_eq!(reasons(&d, "2026-12-07T12:00:00"), ["within 30d"]);
        assert_eq!(reasons(&d, "2026-12-07T06:00:00"), Vec::<&str>::new());
        assert_eq!(
            reasons(&d, "2027-01-06T06:00:00"),
            ["newest backup", "within 30d", "monthly snapshot (2027-01)"]
        );
        assert_eq!(
            reasons(&d, "2026-12-31T23:30:00"),
            ["within 30d", "monthly snapshot (2026-12)"]
        );
        assert_eq!(
            reasons(&d, "2026-11-30T18:00:00"),
            ["monthly snapshot (2026-11)"]
        );
    }

    #[test]
    fn protections_survive_a_policy_that_would_remove_them() {
        let now = datetime!(2026-11-20 12:00 UTC);
        let mut held = at(datetime!(2026-11-19 00:00 UTC));
        held.legal_hold = true;
        let mut until_later = at(datetime!(2026-11-18 00:00 UTC));
        until_later.keep_until = Some(datetime!(2026-12-01 00:00 UTC));
        let mut until_now = at(datetime!(2026-11-17 00:00 UTC));
        until_now.keep_until = Some(now);
        let mut until_past = at(datetime!(2026-11-16 00:00 UTC));
        until_past.keep_until = Some(datetime!(2026-11-01 00:00 UTC));
        let mut restoring = at(datetime!(2026-11-15 00:00 UTC));
        restoring.in_use = true;
        let mut both = at(datetime!(2026-11-13 00:00 UTC));
        both.legal_hold = true;
        both.in_use = true;
        let candidates = vec![
            at(datetime!(2026-11-20 00:00 UTC)),
            held,
            until_later,
            until_now,
            until_past,
            restoring,
            at(datetime!(2026-11-14 00:00 UTC)),
            both,
        ];
        let policy = RetentionPolicy {
            keep_last: Some(1),
            ..Default::default()
        };
        let d = run(&policy, &candidates, now);
        assert_eq!(
            kept(&d),
            [
                "2026-11-20T00:00:00",
                "2026-11-19T00:00:00",
                "2026-11-18T00:00:00",
                "2026-11-15T00:00:00",
                "2026-11-13T00:00:00",
            ]
        );
        assert_eq!(reasons(&d, "2026-11-19T00:00:00"), ["legal hold"]);
        assert_eq!(
            reasons(&d, "2026-11-18T00:00:00"),
            ["kept until 2026-12-01T00:00:00Z"]
        );
        assert_eq!(
            reasons(&d, "2026-11-15T00:00:00"),
            ["in use by a running restore, verify or export"]
        );
        assert_eq!(
            reasons(&d, "2026-11-13T00:00:00"),
            [
                "legal hold",
                "in use by a running restore, verify or export"
            ]
        );
    }

    #[test]
    fn the_newest_backup_is_always_kept() {
        // Nightly backups stopped a week ago; keep_within 1d alone would keep nothing.
        let candidates: Vec<Candidate> = (7..12)
            .map(|days| at(datetime!(2026-11-20 02:00 UTC) - Duration::days(days)))
            .collect();
        let policy = RetentionPolicy {
            keep_within: Some(within("1d")),
            ..Default::default()
        };
        let d = run(&policy, &candidates, datetime!(2026-11-20 12:00 UTC));
        assert_eq!(kept(&d), ["2026-11-13T02:00:00"]);
        assert_eq!(reasons(&d, "2026-11-13T02:00:00"), ["newest backup"]);
    }

    #[test]
    fn future_backups_are_kept_by_keep_within_and_count_normally() {
        let now = datetime!(2026-11-20 12:00 UTC);
        let candidates = vec![
            at(datetime!(2026-10-01 00:00 UTC)),
            at(datetime!(2026-11-19 00:00 UTC)),
            at(datetime!(2026-11-21 00:00 UTC)), // clock skew
            at(datetime!(2026-11-20 00:00 UTC)),
        ];
        let recent = RetentionPolicy {
            keep_within: Some(within("2d")),
            ..Default::default()
        };
        let d = run(&recent, &candidates, now);
        assert_eq!(
            kept(&d),
            [
                "2026-11-21T00:00:00",
                "2026-11-20T00:00:00",
                "2026-11-19T00:00:00"
            ]
        );
        assert_eq!(
            reasons(&d, "2026-11-21T00:00:00"),
            ["newest backup", "within 2d"]
        );

        let last = RetentionPolicy {
            keep_last: Some(2),
            ..Default::default()
        };
        let d = run(&last, &candidates, now);
        assert_eq!(kept(&d), ["2026-11-21T00:00:00", "2026-11-20T00:00:00"]);

        let daily = RetentionPolicy {
            keep_daily: Some(2),
            ..Default::default()
        };
        let d = run(&daily, &candidates, now);
        assert_eq!(kept(&d), ["2026-11-21T00:00:00", "2026-11-20T00:00:00"]);
        assert_eq!(
            reasons(&d, "2026-11-21T00:00:00"),
            ["newest backup", "daily snapshot (2026-11-21)"]
        );
    }

    #[test]
    fn keep_within_cutoff_is_inclusive() {
        let candidates = vec![
            at(datetime!(2026-11-20 06:00 UTC)),
            at(datetime!(2026-11-20 00:00 UTC)),
            at(datetime!(2026-11-19 23:59:59 UTC)),
        ];
        let policy = RetentionPolicy {
            keep_within: Some(within("12h")),
            ..Default::default()
        };
        let d = run(&policy, &candidates, datetime!(2026-11-20 12:00 UTC));
        assert_eq!(kept(&d), ["2026-11-20T06:00:00", "2026-11-20T00:00:00"]);
        assert_eq!(reasons(&d, "2026-11-20T00:00:00"), ["within 12h"]);
    }

    #[test]
    fn one_month_back_from_march_31_is_february_28() {
        let candidates = vec![
            at(datetime!(2026-03-30 00:00 UTC)),
            at(datetime!(2026-02-28 10:00 UTC)),
            at(datetime!(2026-02-28 09:59:59 UTC)),
        ];
        let policy = RetentionPolicy {
            keep_within: Some(within("1mo")),
            ..Default::default()
        };
        let d = run(&policy, &candidates, datetime!(2026-03-31 10:00 UTC));
        assert_eq!(kept(&d), ["2026-03-30T00:00:00", "2026-02-28T10:00:00"]);
    }

    #[test]
    fn keep_within_cutoff_is_calendar_aware() {
        let cases = [
            (
                "1mo",
                datetime!(2026-03-31 10:00 UTC),
                datetime!(2026-02-28 10:00 UTC),
            ),
            (
                "1mo",
                datetime!(2028-03-31 10:00 UTC),
                datetime!(2028-02-29 10:00 UTC),
            ),
            (
                "1y",
                datetime!(2028-02-29 00:00 UTC),
                datetime!(2027-02-28 00:00 UTC),
            ),
            (
                "13mo",
                datetime!(2026-01-31 00:00 UTC),
                datetime!(2024-12-31 00:00 UTC),
            ),
            (
                "1y6mo",
                datetime!(2026-08-31 00:00 UTC),
                datetime!(2025-02-28 00:00 UTC),
            ),
            (
                "1y2mo3d4h",
                datetime!(2026-05-10 12:00 UTC),
                datetime!(2025-03-07 08:00 UTC),
            ),
            (
                "2w",
                datetime!(2026-01-10 00:00 UTC),
                datetime!(2025-12-27 00:00 UTC),
            ),
            (
                "30d",
                datetime!(2026-03-01 00:00 UTC),
                datetime!(2026-01-30 00:00 UTC),
            ),
            (
                "12h",
                datetime!(2026-03-29 01:00 UTC),
                datetime!(2026-03-28 13:00 UTC),
            ),
            // Calendar arithmetic happens in UTC: 01:00+02:00 on the 31st is the 30th.
            (
                "1mo",
                datetime!(2026-03-31 01:00 +02:00),
                datetime!(2026-02-28 23:00 UTC),
            ),
        ];
        for (text, now, expected) in cases {
            assert_eq!(
                within(text).cutoff(now),
                Some(expected),
                "{text} from {now}"
            );
        }
        // Before the earliest representable date: everything is within.
        let dawn = Date::MIN.midnight().assume_utc();
        assert_eq!(within("1d").cutoff(dawn), None);
        let policy = RetentionPolicy {
            keep_within: Some(within("1d")),
            ..Default::default()
        };
        let old = Candidate {
            bid: "dawn".into(),
            ..at(dawn)
        };
        let newer = at(datetime!(2026-01-01 00:00 UTC));
        let d = run(&policy, &[old, newer], dawn);
        assert_eq!(kept(&d), ["2026-01-01T00:00:00", "dawn"]);
        assert_eq!(reasons(&d, "dawn"), ["within 1d"]);
    }

    #[test]
    fn empty_policy_is_refused() {
        let zeros = RetentionPolicy {
            keep_last: Some(0),
            keep_hourly: Some(0),
            keep_daily: Some(0),
            keep_weekly: Some(0),
            keep_monthly: Some(0),
            keep_yearly: Some(0),
            keep_within: None,
        };
        for policy in [RetentionPolicy::default(), zeros.clone()] {
            let err = decide(&policy, &history(), NOW).unwrap_err();
            assert!(matches!(err, RetentionError::EmptyPolicy), "{err:?}");
            // Even with nothing to decide about: the mistake is in the policy.
            let err = decide(&policy, &[], NOW).unwrap_err();
            assert!(matches!(err, RetentionError::EmptyPolicy), "{err:?}");
            assert!(err.to_string().contains("refusing"));
            assert_eq!(err.class(), Class::Usage);
            assert!(err.hint().unwrap().contains("keep-within"));
        }
        // One non-zero rule is enough.
        let one = RetentionPolicy {
            keep_yearly: Some(1),
            ..zeros
        };
        assert_eq!(decide(&one, &[], NOW).unwrap(), Vec::new());
    }

    #[test]
    fn decisions_are_newest_first_with_ties_broken_by_bid_descending() {
        let same = datetime!(2026-11-20 00:00 UTC);
        let named = |bid: &str, t| Candidate {
            bid: bid.into(),
            ..at(t)
        };
        let candidates = vec![
            named("b", same),
            named("old", datetime!(2026-11-01 00:00 UTC)),
            named("c", same),
            named("new", datetime!(2026-11-21 00:00 UTC)),
            named("a", same),
        ];
        let policy = RetentionPolicy {
            keep_last: Some(2),
            ..Default::default()
        };
        let d = decide(&policy, &candidates, datetime!(2026-11-22 00:00 UTC)).unwrap();
        let order: Vec<&str> = d.iter().map(|x| x.bid.as_str()).collect();
        assert_eq!(order, ["new", "c", "b", "a", "old"]);
        assert_eq!(kept(&d), ["new", "c"]);

        // The same tie decides which backup represents the day.
        let daily = RetentionPolicy {
            keep_daily: Some(5),
            ..Default::default()
        };
        let d = decide(&daily, &candidates, datetime!(2026-11-22 00:00 UTC)).unwrap();
        assert_eq!(kept(&d), ["new", "c", "old"]);
    }

    #[test]
    fn keep_within_parses_good_inputs() {
        let cases: [(&str, [u32; 6]); 8] = [
            ("30d", [0, 0, 0, 30, 0, 0]),
            ("12h", [0, 0, 0, 0, 12, 0]),
            ("2w", [0, 0, 2, 0, 0, 0]),
            ("1y6mo", [1, 6, 0, 0, 0, 0]),
            ("1y2mo3d4h", [1, 2, 0, 3, 4, 0]),
            ("6mo1y", [1, 6, 0, 0, 0, 0]),
            ("0y1mo", [0, 1, 0, 0, 0, 0]),
            ("1h30min", [0, 0, 0, 0, 1, 30]),
        ];
        for (text, [years, months, weeks, days, hours, minutes]) in cases {
            let parsed = within(text);
            assert_eq!(
                parsed,
                KeepWithin {
                    text: text.into(),
                    years,
                    months,
                    weeks,
                    days,
                    hours,
                    minutes
                }
            );
            assert_eq!(parsed.to_string(), text);
        }
        let now = datetime!(2026-05-10 12:00 UTC);
        assert_eq!(
            within("90min").cutoff(now),
            Some(datetime!(2026-05-10 10:30 UTC))
        );
    }

    #[test]
    fn keep_within_rejects_bad_inputs() {
        let cases = [
            ("", "empty"),
            ("30", "has no unit"),
            ("1d30", "has no unit"),
            ("d", "expected a number"),
            ("-1d", "expected a number"),
            ("1.5d", "unknown unit '.'"),
            (" 30d", "expected a number"),
            ("30d ", "expected a number"),
            ("30x", "unknown unit \"x\""),
            ("30D", "unknown unit 'D'"),
            ("30é", "unknown unit 'é'"),
            ("0d", "zero"),
            ("0y0mo0w0d0h0min", "zero"),
            ("30m", "write 30mo for months or 30min for minutes"),
            ("1y6m", "could mean months or minutes"),
            ("30mins", "unknown unit \"mins\""),
            ("4294967296d", "too large"),
            ("1d1d", "given twice"),
            ("20000y", "longer than 10000 years"),
        ];
        for (text, why) in cases {
            let err = text.parse::<KeepWithin>().unwrap_err();
            let RetentionError::BadDuration(detail) = &err else {
                panic!("{text:?}: {err:?}");
            };
            assert!(detail.contains(why), "{text:?}: {detail}");
            let shown = err.to_string();
            assert!(shown.contains(&format!("{text:?}")), "{shown}");
            assert!(
                shown.contains("use e.g. 30d, 12h, 2w, 1y6mo, 30min"),
                "{shown}"
            );
            assert_eq!(err.class(), Class::Usage);
        }
    }

    #[test]
    fn policy_round_trips_through_serde_with_keep_within_as_text() {
        let policy: RetentionPolicy =
            serde_json::from_str(r#"{"keep_within":"30d","keep_monthly":12}"#).unwrap();
        assert_eq!(
            policy,
            RetentionPolicy {
                keep_within: Some(within("30d")),
                keep_monthly: Some(12),
                ..Default::default()
            }
        );
        let json = serde_json::to_value(&policy).unwrap();
        assert_eq!(json["keep_within"], "30d");
        let back: RetentionPolicy = serde_json::from_value(json).unwrap();
        assert_eq!(back, policy);

        let err = serde_json::from_str::<RetentionPolicy>(r#"{"keep_within":"30x"}"#).unwrap_err();
        assert!(err.to_string().contains("unknown unit \"x\""), "{err}");
    }
}
