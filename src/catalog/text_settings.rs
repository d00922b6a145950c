//! The session settings under which values have one text form: text COPY rows and
//! carried planner statistics are written and read back under them.

/// The settings under which a value's text form is the one a backup stores: dates,
/// intervals, floats, bytea and money printed (and read back) the same way on every
/// server and session, whatever the user's defaults. Applied before every text COPY
/// out, into the restored table, when a restored table is read to be compared, and
/// around planner statistics read and imported.
const TEXT_SETTINGS: [(&str, &str); 6] = [
    ("DateStyle", "'ISO, YMD'"),
    ("IntervalStyle", "postgres"),
    ("extra_float_digits", "3"),
    ("bytea_output", "hex"),
    ("TimeZone", "'UTC'"),
    ("lc_monetary", "'C'"),
];

/// The statements that apply those settings: `local` inside a transaction whose
/// session goes on to other work (a restore's loader), so they end with it.
pub fn text_session(local: bool) -> String {
    let set = if local { "SET LOCAL" } else { "SET" };
    TEXT_SETTINGS
        .iter()
        .map(|(name, value)| format!("{set} {name} = {value}"))
        .collect::<Vec<_>>()
        .join("; ")
}
