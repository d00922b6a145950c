//! libpq's connection-string grammar, tokenized once for everyone who reads one:
//! [`super::tls`] takes the `ssl*` keywords out before tokio-postgres parses the
//! rest, and the binary cuts passwords out of its arguments.
//!
//! `key = value` pairs are separated by blanks; a value is a bare word running to the
//! next unescaped blank, or single-quoted; `\` escapes the next character in both.
//! URL parameters are percent-decoded with the `percent-encoding` crate.
//!
//! No I/O, no allocation beyond the decoded values; every index stays within the input.

use std::borrow::Cow;
use std::ops::Range;

use percent_encoding::percent_decode;

/// Whether `s` starts like a URL libpq (and tokio-postgres) reads.
pub fn is_url(s: &str) -> bool {
    s.starts_with("postgresql://") || s.starts_with("postgres://")
}

/// The first index at or after `i` that is not an ASCII blank.
pub fn skip_blanks(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && b[i].is_ascii_whitespace() {
        i += 1;
    }
    i
}

/// One value as libpq reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Value {
    /// Where the value ends: after its closing quote, at the next unescaped blank, or
    /// at the end of the input.
    pub end: usize,
    /// The value with quotes and escapes removed.
    pub decoded: Vec<u8>,
    /// A quoted value whose closing quote is missing.
    pub unterminated: bool,
}

/// The value that starts at `i`: quoted (`'…'`) or bare, `\` escaping the next byte.
pub fn value(b: &[u8], mut i: usize) -> Value {
    let mut decoded = Vec::new();
    if b.get(i) == Some(&b'\'') {
        i += 1;
        loop {
            match b.get(i) {
                None => {
                    return Value {
                        end: b.len(),
                        decoded,
                        unterminated: true,
                    }
                }
                Some(b'\'') => {
                    return Value {
                        end: i + 1,
                        decoded,
                        unterminated: false,
                    }
                }
                Some(b'\\') if i + 1 < b.len() => {
                    decoded.push(b[i + 1]);
                    i += 2;
                }
                Some(&c) => {
                    decoded.push(c);
                    i += 1;
                }
            }
        }
    }
    while i < b.len() && !b[i].is_ascii_whitespace() {
        if b[i] == b'\\' && i + 1 < b.len() {
            i += 1;
        }
        decoded.push(b[i]);
        i += 1;
    }
    Value {
        end: i,
        decoded,
        unterminated: false,
    }
}

/// One `key = value` pair of a connection string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    /// The whole pair as written, from the key to the end of the value.
    pub span: Range<usize>,
    pub key: Range<usize>,
    pub value: Value,
}

/// The pairs of a `key = value` string, in order. `Err(at)` when the word at `at` is
/// not followed by `=`: the string is not in this grammar (the driver words the error).
pub fn pairs(s: &str) -> Pairs<'_> {
    Pairs {
        b: s.as_bytes(),
        i: 0,
        done: false,
    }
}

pub struct Pairs<'a> {
    b: &'a [u8],
    i: usize,
    done: bool,
}

impl Iterator for Pairs<'_> {
    type Item = Result<Pair, usize>;

    fn next(&mut self) -> Option<Self::Item> {
        let b = self.b;
        let start = skip_blanks(b, self.i);
        if self.done || start >= b.len() {
            return None;
        }
        let mut i = start;
        while i < b.len() && b[i] != b'=' && !b[i].is_ascii_whitespace() {
            i += 1;
        }
        let key = start..i;
        i = skip_blanks(b, i);
        if b.get(i) != Some(&b'=') {
            self.done = true;
            return Some(Err(start));
        }
        let value = value(b, skip_blanks(b, i + 1));
        self.i = value.end;
        self.done = value.unterminated;
        Some(Ok(Pair {
            span: start..value.end,
            key,
            value,
        }))
    }
}

/// A URL's query split on `&` into pieces, empty ones included, and each piece at its
/// first `=` (a piece without one has an empty value): `(piece, key, value)`, not
/// decoded.
pub fn query_pairs(query: &[u8]) -> impl Iterator<Item = (&[u8], &[u8], &[u8])> {
    query
        .split(|&b| b == b'&')
        .map(|piece| match piece.iter().position(|&b| b == b'=') {
            Some(eq) => (piece, &piece[..eq], &piece[eq + 1..]),
            None => (piece, piece, &[][..]),
        })
}

/// `%XX` escapes decoded; a `%` not followed by two hex digits stays as it is.
pub fn percent_decoded(s: &[u8]) -> Cow<'_, [u8]> {
    percent_decode(s).into()
}

/// `%XX` escapes decoded, strictly: a `%` not followed by two hex digits, or a result
/// that is not UTF-8, is an error (libpq refuses both).
pub fn percent_decoded_strict(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let well_formed = b.iter().enumerate().all(|(i, &c)| {
        c != b'%'
            || b.get(i + 1..i + 3)
                .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
    });
    if !well_formed {
        return Err("invalid percent-encoded token in the URL".to_owned());
    }
    percent_decode(b)
        .decode_utf8()
        .map(Cow::into_owned)
        .map_err(|_| "a URL parameter is not valid UTF-8".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(s: &str) -> Vec<Result<(String, String), usize>> {
        pairs(s)
            .map(|p| {
                p.map(|p| {
                    (
                        s[p.key].to_owned(),
                        String::from_utf8(p.value.decoded).unwrap(),
                    )
                })
            })
            .collect()
    }

    #[test]
    fn pairs_read_bare_quoted_and_escaped_values() {
        let own = |k: &str, v: &str| Ok((k.to_owned(), v.to_owned()));
        assert_eq!(
            all(" host=db  port = 5 a='x \\' y' b=c\\ d e="),
            [
                own("host", "db"),
                own("port", "5"),
                own("a", "x ' y"),
                own("b", "c d"),
                own("e", "")
            ]
        );
        assert_eq!(all("host=db oops x=y"), [own("host", "db"), Err(8)]);
        let p: Vec<_> = pairs("a='open").collect();
        assert_eq!(p.len(), 1);
        assert!(p[0].as_ref().unwrap().value.unterminated);
    }

    #[test]
    fn percent_decoding_strict_and_lenient() {
        assert_eq!(percent_decoded_strict("a%20b%2F").unwrap(), "a b/");
        assert!(percent_decoded_strict("a%2")
            .unwrap_err()
            .contains("invalid"));
        assert!(percent_decoded_strict("%+1").is_err());
        assert!(percent_decoded_strict("%ff").unwrap_err().contains("UTF-8"));
        assert_eq!(&*percent_decoded(b"p%40ss%zz%4"), b"p@ss%zz%4");
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config {
            failure_persistence: None,
            rng_seed: proptest::test_runner::RngSeed::Fixed(0x5c0ffee),
            ..proptest::test_runner::Config::default()
        })]

        /// Any input: tokens stay in bounds and in order, and never panic.
        #[test]
        fn tokens_stay_in_bounds(s in "[ a-z='\\\\]{0,40}") {
            let mut last = 0;
            for p in pairs(&s) {
                match p {
                    Ok(p) => {
                        proptest::prop_assert!(p.span.start >= last && p.span.end <= s.len());
                        proptest::prop_assert!(p.key.end <= p.span.end);
                        last = p.span.end;
                    }
                    Err(at) => proptest::prop_assert!(at < s.len()),
                }
            }
        }

        /// A value quoted the libpq way reads back as itself.
        #[test]
        fn quoted_values_round_trip(v in "[^\\x00]{0,24}") {
            let quoted = format!("k='{}'", v.replace('\\', "\\\\").replace('\'', "\\'"));
            let p = pairs(&quoted).next().unwrap().unwrap();
            proptest::prop_assert_eq!(p.value.decoded, v.as_bytes());
            proptest::prop_assert_eq!(p.span.end, quoted.len());
        }
    }
}
