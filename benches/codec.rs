//! Codec micro-benchmark: throughput of sealing and opening chunks (zstd + AES-256-GCM-SIV)
//! and of scanning PGCOPY binary tuples, through pgbunker's public API only.
//!
//! Run with `cargo bench --bench codec` (optionally followed by `-- FILTER` to run only
//! the measurements whose name contains FILTER). No criterion: plain `std::time`, each
//! measurement repeats for about half a second (at least 3 calls) and reports the median
//! call. Every MB/s figure is decimal megabytes of *uncompressed tuple data* per second,
//! on one thread. `seal_chunk` opens what it sealed as a self-check, so "seal" with a key
//! includes one encryption and one decryption.
//!
//! The input is ~8 MiB (one default backup chunk) of deterministic, vitals-like rows:
//! int8 id, timestamptz, numeric, a short enum-like text, a jsonb document, and a
//! nullable free-text note.

use std::hint::black_box;
use std::time::{Duration, Instant};

use pgbunker::codec::{open_chunk, seal_chunk, AeadId, ChunkHeader, CompId, SecretKey};
use pgbunker::pgcopy::{header, scan_tuples, Cutter, TupleScanner, TRAILER};

/// Target size of the generated tuple buffer: pgbunker's default chunk size.
const TARGET_BYTES: usize = 8 << 20;
/// How long each measurement keeps repeating.
const BUDGET: Duration = Duration::from_millis(500);
/// Minimum repetitions, even when one takes longer than the budget.
const MIN_ITERS: u32 = 3;
const LEVELS: [i32; 3] = [1, 3, 6];

/// xorshift64*: deterministic and dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn push_field(buf: &mut Vec<u8>, v: Option<&[u8]>) {
    match v {
        None => buf.extend_from_slice(&(-1i32).to_be_bytes()),
        Some(b) => {
            buf.extend_from_slice(&(b.len() as i32).to_be_bytes());
            buf.extend_from_slice(b);
        }
    }
}

/// PostgreSQL's binary `numeric` for a value with two decimals, given in hundredths.
fn numeric_2dp(hundredths: u64) -> Vec<u8> {
    let int = hundredths / 100;
    let frac = (hundredths % 100) * 100; // one base-10000 digit
    let (ndigits, weight, digits): (i16, i16, Vec<u16>) = if int == 0 {
        (1, -1, vec![frac as u16])
    } else if frac == 0 {
        (1, 0, vec![int as u16])
    } else {
        (2, 0, vec![int as u16, frac as u16])
    };
    let mut b = Vec::with_capacity(8 + 2 * digits.len());
    b.extend_from_slice(&ndigits.to_be_bytes());
    b.extend_from_slice(&weight.to_be_bytes());
    b.extend_from_slice(&0u16.to_be_bytes()); // sign: positive
    b.extend_from_slice(&2i16.to_be_bytes()); // dscale
    for d in digits {
        b.extend_from_slice(&d.to_be_bytes());
    }
    b
}

/// About `TARGET_BYTES` of whole tuples (no PGCOPY header or trailer), and the row count.
fn generate_tuples() -> (Vec<u8>, u64) {
    const KINDS: [&str; 7] = [
        "heart_rate",
        "bp_systolic",
        "bp_diastolic",
        "weight_kg",
        "spo2",
        "temperature_c",
        "glucose_mg_dl",
    ];
    const DEVICES: [&str; 4] = ["polar-h10", "withings-bpm", "omron-m7", "apple-watch-8"];
    const NOTES: [&str; 5] = [
        "patient reported mild dizziness after exercise",
        "reading repeated, cuff repositioned",
        "post-medication measurement",
        "manual entry by nurse",
        "device battery low; value may be unreliable",
    ];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut buf = Vec::with_capacity(TARGET_BYTES + 512);
    let mut rows = 0u64;
    // 2024-01-01 00:00:00 UTC in microseconds since 2000-01-01.
    let base_ts: i64 = 757_382_400_000_000;
    while buf.len() < TARGET_BYTES {
        let id = rows as i64 + 1;
        let patient = rng.below(4_000);
        let kind = KINDS[(rng.below(KINDS.len() as u64)) as usize];
        let ts = base_ts + id * 15_000_000 + rng.below(5_000_000) as i64;
        let value = 3_000 + rng.below(15_000);
        let json = format!(
            "{{\"seq\": {}, \"device\": \"{}\", \"patient\": {}, \"quality\": 0.{:02}, \"source\": \"{}\"}}",
            id,
            DEVICES[(patient % DEVICES.len() as u64) as usize],
            patient,
            rng.below(100),
            if rng.below(4) == 0 { "manual" } else { "sensor" },
        );
        let mut jsonb = Vec::with_capacity(json.len() + 1);
        jsonb.push(1u8); // jsonb binary format version
        jsonb.extend_from_slice(json.as_bytes());
        let note = (rng.below(10) < 3).then(|| {
            format!(
                "{} (#{})",
                NOTES[rng.below(NOTES.len() as u64) as usize],
                rng.below(1000)
            )
        });

        buf.extend_from_slice(&6i16.to_be_bytes());
        push_field(&mut buf, Some(&id.to_be_bytes()));
        push_field(&mut buf, Some(&ts.to_be_bytes()));
        push_field(&mut buf, Some(&numeric_2dp(value)));
        push_field(&mut buf, Some(kind.as_bytes()));
        push_field(&mut buf, Some(&jsonb));
        push_field(&mut buf, note.as_deref().map(str::as_bytes));
        rows += 1;
    }
    (buf, rows)
}

/// Repeats `f` for about `BUDGET` and returns the MB/s of the median call (robust to
/// another process taking the core for a moment), and the number of calls timed.
fn measure(bytes: usize, mut f: impl FnMut()) -> (f64, u32) {
    f(); // warm-up: page in buffers, initialise lazy state
    let mut times = Vec::new();
    let start = Instant::now();
    while times.len() < MIN_ITERS as usize || start.elapsed() < BUDGET {
        let t = Instant::now();
        f();
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    (bytes as f64 / median / 1e6, times.len() as u32)
}

fn report(name: &str, mbps: f64, iters: u32, extra: &str) {
    println!("{name:<34} {mbps:>9.1} MB/s  ({iters:>3} iters){extra}");
}

fn chunk_header(aead: AeadId, columns: bool) -> ChunkHeader {
    ChunkHeader {
        aead,
        comp: CompId::Zstd,
        is_final: true,
        columns,
        table_no: 7,
        part: 0,
        index: 42,
        backup: [0xb5; 16],
        dek_id: [0xd3; 8],
        nonce: [0; 12],
    }
}

fn main() {
    // `cargo bench` passes `--bench`; any other argument filters measurements by name.
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let wanted = |name: &str| filter.as_deref().is_none_or(|f| name.contains(f));

    let (tuples, rows) = generate_tuples();
    println!(
        "pgbunker codec benchmark: {} rows, {:.2} MiB of PGCOPY tuples (one chunk), MB/s of uncompressed data, one thread",
        rows,
        tuples.len() as f64 / (1 << 20) as f64
    );

    let key = SecretKey::from_bytes([0x5a; 32]);
    let repo_id = [0x11u8; 16];

    for level in LEVELS {
        for (label, k, columns) in [
            ("aes-gcm-siv", Some(&key), false),
            ("aes-gcm-siv by column", Some(&key), true),
            ("plaintext", None, false),
        ] {
            let aead = if k.is_some() {
                AeadId::Aes256GcmSiv
            } else {
                AeadId::None
            };
            let hdr = chunk_header(aead, columns);
            let seal_name = format!("seal  zstd-{level} {label}");
            let open_name = format!("open  zstd-{level} {label}");
            if !wanted(&seal_name) && !wanted(&open_name) {
                continue;
            }
            let sealed = seal_chunk(k, hdr.clone(), &repo_id, &tuples, level).expect("seal");
            let ratio = tuples.len() as f64 / sealed.bytes.len() as f64;
            if wanted(&seal_name) {
                let (mbps, iters) = measure(tuples.len(), || {
                    let s = seal_chunk(k, hdr.clone(), &repo_id, black_box(&tuples), level)
                        .expect("seal");
                    black_box(s.sha256);
                });
                report(&seal_name, mbps, iters, &format!("  ratio {ratio:.2}"));
            }
            if wanted(&open_name) {
                // A reader owns the object it fetched: the copy stands for the fetch.
                let (mbps, iters) = measure(tuples.len(), || {
                    let object = black_box(sealed.bytes.clone());
                    let out = open_chunk(k, &hdr, &repo_id, object, tuples.len()).expect("open");
                    black_box(out.len());
                });
                report(&open_name, mbps, iters, "");
            }
        }
    }

    let expected = scan_tuples(&tuples).expect("generated tuples are valid");
    assert_eq!(expected.rows, rows);
    let scan_name = "scan  scan_tuples";
    if wanted(scan_name) {
        let (mbps, iters) = measure(tuples.len(), || {
            let s = scan_tuples(black_box(&tuples)).expect("scan");
            black_box(s.checksum);
        });
        report(scan_name, mbps, iters, "");
    }
    let scanner_name = "scan  TupleScanner feed+cut";
    if wanted(scanner_name) {
        // The backup path: a full COPY stream fed in 64 KiB pieces (CopyData messages are
        // smaller, but the copy cost is what matters), cut where the keyed PRF says (1 MiB
        // on average).
        let mut stream = header().to_vec();
        stream.extend_from_slice(&tuples);
        stream.extend_from_slice(&TRAILER);
        let (mbps, iters) = measure(tuples.len(), || {
            let mut sc = TupleScanner::new(Cutter::new(&[7; 32], 1 << 20));
            let mut total = 0u64;
            for piece in black_box(&stream).chunks(64 << 10) {
                sc.feed(piece).expect("feed");
                while let Some(cut) = sc.next_cut() {
                    total += cut.stats.rows;
                }
            }
            total += sc.finish().expect("finish").stats.rows;
            assert_eq!(total, rows);
        });
        report(scanner_name, mbps, iters, "");
    }
}
