//! Keyed permutations of small numeric domains: what `format_preserving` is built on.
//!
//! The construction is FF1's (NIST SP 800-38G): the value is a numeral string of
//! `len` digits in `radix`, split into halves A (`len / 2` digits) and B; ten Feistel
//! rounds each set `A, B = B, (A + F(round, B)) mod radix^m`, `m` alternating between
//! the halves' lengths. Each round is invertible, so the whole is a permutation of the
//! numeral strings. FF1 takes its round function from AES-CBC-MAC and refuses domains
//! under a million values; here it is a keyed BLAKE3 hash of the tweak, the round and
//! B, and small domains are allowed, because an MRN's four digits or a one-letter
//! prefix must keep their shape too. Values outside `[0, n)` are encrypted again until
//! they fall inside (cycle walking), which keeps a permutation of `[0, n)`.
//!
//! Pure code: the caller picks the domain and the tweak.

/// Rounds, as FF1.
const ROUNDS: u8 = 10;

/// A keyed permutation family, one permutation per (tweak, radix, length, bound).
pub struct Prp {
    key: [u8; 32],
}

impl Prp {
    pub fn new(key: [u8; 32]) -> Self {
        Prp { key }
    }

    /// The longest numeral string one call permutes: each half must hold at most
    /// 2^64 values, so that `A + F` cannot overflow and the whole fits in 128 bits.
    pub fn max_len(radix: u32) -> u32 {
        let mut len = 2;
        while pow(radix, len / 2 + 1).is_some_and(|h| h <= 1 << 64) {
            len += 2;
        }
        len
    }

    /// Permutes `x` within `[0, below)` (all of `radix^len` when `None`). `len` must be
    /// at most [`Prp::max_len`] and `radix^len` at least `below`.
    pub fn permute(
        &self,
        tweak: &[u8],
        radix: u32,
        len: u32,
        below: Option<u128>,
        x: u128,
    ) -> u128 {
        debug_assert!(len <= Self::max_len(radix));
        // One digit cannot be split in two halves: walk over two digits instead.
        let (len, below) = if len < 2 {
            (2, Some(below.unwrap_or(radix as u128)))
        } else {
            (len, below)
        };
        let t = blake3::keyed_hash(&self.key, tweak);
        let mut y = x;
        loop {
            y = self.feistel(t.as_bytes(), radix, len, y);
            if below.is_none_or(|b| y < b) {
                return y;
            }
        }
    }

    fn feistel(&self, tweak: &[u8; 32], radix: u32, len: u32, x: u128) -> u128 {
        let u = len / 2;
        let v = len - u;
        let (mu, mv) = (
            pow(radix, u).expect("checked by max_len"),
            pow(radix, v).expect("checked by max_len"),
        );
        // A is the high u digits, B the low v digits.
        let (mut a, mut b) = (x / mv, x % mv);
        let (mut ma, mut mb) = (mu, mv);
        for round in 0..ROUNDS {
            let mut input = [0u8; 32 + 1 + 16 + 8];
            input[..32].copy_from_slice(tweak);
            input[32] = round;
            input[33..49].copy_from_slice(&b.to_be_bytes());
            input[49..].copy_from_slice(&(u64::from(radix) << 32 | u64::from(len)).to_be_bytes());
            let h = blake3::keyed_hash(&self.key, &input);
            let f = u128::from_be_bytes(h.as_bytes()[..16].try_into().expect("16 bytes"));
            let c = (a + f % ma) % ma;
            (a, b) = (b, c);
            (ma, mb) = (mb, ma);
        }
        // After an even number of rounds the halves are back in place.
        debug_assert_eq!((ma, mb), (mu, mv));
        a * mb + b
    }
}

/// `radix^e`, or `None` past 128 bits.
fn pow(radix: u32, e: u32) -> Option<u128> {
    (radix as u128).checked_pow(e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn prp() -> Prp {
        Prp::new([7; 32])
    }

    #[test]
    fn small_domains_are_permuted_whole() {
        let p = prp();
        for (radix, len, below) in [
            (10, 1, None),
            (10, 2, None),
            (26, 1, None),
            (10, 3, Some(900)),
        ] {
            let n = below.unwrap_or((radix as u128).pow(len));
            let out: BTreeSet<u128> = (0..n)
                .map(|x| p.permute(b"t", radix, len, below, x))
                .collect();
            assert_eq!(out.len() as u128, n, "radix {radix} len {len}");
            assert!(out.iter().all(|&y| y < n));
        }
    }

    #[test]
    fn tweaks_and_keys_give_other_permutations() {
        let a: Vec<u128> = (0..100)
            .map(|x| prp().permute(b"a", 10, 2, None, x))
            .collect();
        let b: Vec<u128> = (0..100)
            .map(|x| prp().permute(b"b", 10, 2, None, x))
            .collect();
        let c: Vec<u128> = (0..100)
            .map(|x| Prp::new([8; 32]).permute(b"a", 10, 2, None, x))
            .collect();
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, (0..100).collect::<Vec<_>>());
    }

    #[test]
    fn the_longest_strings_do_not_overflow() {
        for radix in [2, 10, 16, 26] {
            let len = Prp::max_len(radix);
            let top = (radix as u128)
                .checked_pow(len)
                .map_or(u128::MAX, |n| n - 1);
            let y = prp().permute(b"t", radix, len, None, top);
            assert!(y <= top);
        }
        assert!(Prp::max_len(10) >= 36);
        assert_eq!(Prp::max_len(16), 32, "a uuid's 32 hex digits in one call");
    }
}
