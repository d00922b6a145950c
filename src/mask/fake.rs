//! Made-up names, addresses, emails and phone numbers for `fake`.
//!
//! Names are put together from syllables rather than drawn from a list of real names:
//! a list of common names would hand some patients their own name back, and a masked
//! database must not hold any real identity even by chance. Emails use the reserved
//! `example.org` domain and phone numbers the 555 area code, which is not in service,
//! so a test system cannot mail or call anyone.
//!
//! Pure code: the caller gives a seed per input (a keyed hash), so the same input gets
//! the same fake everywhere.

use serde::{Deserialize, Serialize};

/// What `fake` makes up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FakeKind {
    FirstName,
    LastName,
    FullName,
    Email,
    Phone,
    /// A street address line.
    Address,
    City,
}

impl FakeKind {
    pub fn name(self) -> &'static str {
        match self {
            FakeKind::FirstName => "first_name",
            FakeKind::LastName => "last_name",
            FakeKind::FullName => "full_name",
            FakeKind::Email => "email",
            FakeKind::Phone => "phone",
            FakeKind::Address => "address",
            FakeKind::City => "city",
        }
    }
}

const ONSETS: &[&str] = &[
    "b", "br", "c", "d", "dr", "f", "g", "gr", "h", "j", "k", "kr", "l", "m", "n", "p", "q", "r",
    "s", "sh", "t", "th", "tr", "v", "w", "z", "",
];
const VOWELS: &[&str] = &[
    "a", "e", "i", "o", "u", "ai", "ei", "ou", "ae", "y", "ia", "eo",
];
const CODAS: &[&str] = &[
    "", "n", "r", "l", "s", "th", "x", "nd", "rk", "v", "m", "sk",
];
const STREETS: &[&str] = &[
    "Street", "Avenue", "Road", "Lane", "Way", "Court", "Place", "Terrace",
];
const TOWNS: &[&str] = &[
    "ville", "ford", "ton", "bury", "haven", "field", "wick", "stead",
];

/// Draws numbers from a seed, a few bits at a time.
struct Draw(u64, u64);

impl Draw {
    fn new(seed: [u8; 16]) -> Self {
        Draw(
            u64::from_le_bytes(seed[..8].try_into().expect("8 bytes")),
            u64::from_le_bytes(seed[8..].try_into().expect("8 bytes")),
        )
    }

    fn below(&mut self, n: usize) -> usize {
        if self.0 < 1 << 16 {
            // Spent: stir in the second half.
            self.0 ^= self.1 | 1 << 63;
            self.1 = self.1.rotate_left(29).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
        let v = (self.0 % n as u64) as usize;
        self.0 /= n as u64;
        v
    }

    fn pick<'a>(&mut self, list: &[&'a str]) -> &'a str {
        list[self.below(list.len())]
    }
}

fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// A made-up word of `syllables` syllables, lower case.
fn word(d: &mut Draw, syllables: usize) -> String {
    let mut w = String::new();
    for i in 0..syllables {
        w.push_str(d.pick(ONSETS));
        w.push_str(d.pick(VOWELS));
        if i + 1 == syllables || d.below(3) == 0 {
            w.push_str(d.pick(CODAS));
        }
    }
    w
}

/// The fake of kind `kind` for an input whose keyed hash is `seed`.
pub fn make(kind: FakeKind, seed: [u8; 16]) -> String {
    let mut d = Draw::new(seed);
    match kind {
        FakeKind::FirstName | FakeKind::LastName => name(&mut d),
        FakeKind::FullName => {
            let first = name(&mut d);
            format!("{first} {}", name(&mut d))
        }
        FakeKind::Email => {
            let f = word(&mut d, 2);
            let l = word(&mut d, 2);
            format!("{f}.{l}{}@example.org", d.below(100))
        }
        FakeKind::Phone => format!("+1 (555) {}-{:04}", 200 + d.below(800), d.below(10_000)),
        FakeKind::Address => {
            let n = 1 + d.below(9999);
            let name = capitalized(&word(&mut d, 2));
            format!("{n} {name} {}", d.pick(STREETS))
        }
        FakeKind::City => {
            let syllables = 1 + d.below(2);
            let stem = capitalized(&word(&mut d, syllables));
            format!("{stem}{}", d.pick(TOWNS))
        }
    }
}

/// A first or last name: two or three syllables.
fn name(d: &mut Draw) -> String {
    let n = 2 + d.below(2);
    capitalized(&word(d, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_fake_and_seeds_spread() {
        let a = make(FakeKind::FullName, [1; 16]);
        assert_eq!(a, make(FakeKind::FullName, [1; 16]));
        let many: std::collections::BTreeSet<String> = (0..1000u32)
            .map(|i| {
                let mut s = [0u8; 16];
                s[..4].copy_from_slice(&i.to_le_bytes());
                s[8..12].copy_from_slice(&i.wrapping_mul(2_654_435_761).to_le_bytes());
                make(
                    FakeKind::FullName,
                    *blake3::hash(&s).as_bytes().first_chunk().unwrap(),
                )
            })
            .collect();
        assert!(many.len() > 990, "{} distinct of 1000", many.len());
    }

    #[test]
    fn fakes_look_like_what_they_stand_for() {
        let s = [42; 16];
        assert!(make(FakeKind::Email, s).ends_with("@example.org"));
        assert!(make(FakeKind::Phone, s).starts_with("+1 (555) "));
        let name = make(FakeKind::FirstName, s);
        assert!(name.chars().next().unwrap().is_uppercase(), "{name}");
        assert!(name.chars().all(|c| c.is_ascii_alphabetic()), "{name}");
    }
}
