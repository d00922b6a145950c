//! Support shared by the library's unit and property tests (compiled for tests only):
//! PGCOPY framing written by hand, and the one budget every property test runs on.

use proptest::test_runner::{Config, RngSeed};

/// Properties run in CI with proptest's fixed budget (`PROPTEST_CASES`, 256 by
/// default) and a fixed seed (`PROPTEST_RNG_SEED` picks another), so a run is
/// repeatable; nothing is persisted between runs.
pub fn proptest_config() -> Config {
    let mut c = Config {
        failure_persistence: None,
        ..Config::default()
    };
    if c.rng_seed == RngSeed::Random {
        c.rng_seed = RngSeed::Fixed(0x9b_0c_0a_7e);
    }
    c
}

/// A tuple of `fields` (`None`: NULL), in COPY's framing.
pub fn tuple(fields: &[Option<&[u8]>]) -> Vec<u8> {
    let mut t = (fields.len() as i16).to_be_bytes().to_vec();
    for f in fields {
        match f {
            None => t.extend((-1i32).to_be_bytes()),
            Some(v) => {
                t.extend((v.len() as i32).to_be_bytes());
                t.extend(*v);
            }
        }
    }
    t
}

/// [`tuple`] of owned values.
pub fn tuple_of(fields: &[Option<Vec<u8>>]) -> Vec<u8> {
    tuple(&fields.iter().map(Option::as_deref).collect::<Vec<_>>())
}
