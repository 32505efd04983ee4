//! Property test of the ini reader: any input (random bytes, or random lines built from ini
//! syntax fragments) gives a config or a list of errors, never a panic, in bounded time.
//!
//! A small seeded xorshift generator keeps it dependency-free and reproducible; a failure
//! prints the seed and the input.

mod common;

use common::Scratch;
use molt::config::{reload, Sources};
use std::time::{Duration, Instant};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const KEYS: &[&str] = &[
    "processes",
    "http-socket",
    "demo",
    "module",
    "wsgi-file",
    "env",
    "ini",
    "if-env",
    "if-not-env",
    "if-exists",
    "if-opt",
    "else",
    "endif",
    "end",
    "max-requests",
    "reload-on-rss",
    "harakiri",
    "strict",
    "toml",
    "set-placeholder",
    "callable",
    "x",
    "",
    "=",
    "[uwsgi]",
    "[other]",
    "[",
    "]",
    "pythonpath",
    "master",
    "static-map",
    "threads",
    "chdir",
];
const VALUES: &[&str] = &[
    "",
    "4",
    "-1",
    "0",
    ":8000",
    "true",
    "maybe",
    "$(HOME)",
    "$(",
    "%(",
    "%(x)",
    "%(processes)",
    "%d",
    "%n",
    "%%",
    "%",
    "%(_)",
    "@(",
    "@(/dev/null)",
    "@(/nonexistent)",
    ":uwsgi",
    ":other",
    "fuzz.ini",
    "fuzz.ini:other",
    "a=b",
    "=",
    "18446744073709551616",
    "2G",
    "1.5",
    "((((",
    "))",
    "é",
    "\t",
    "\r",
    "x:y:z",
    "/",
    "FOO=bar",
];

fn structured(rng: &mut Rng) -> Vec<u8> {
    let mut s = String::new();
    for _ in 0..rng.below(30) {
        let key = rng.pick(KEYS);
        match rng.below(4) {
            0 => s.push_str(key),
            1 => s.push_str(&format!("{key} = {}", rng.pick(VALUES))),
            2 => s.push_str(&format!("{}{}", rng.pick(VALUES), rng.pick(VALUES))),
            _ => s.push_str(&format!("{key}={}{}", rng.pick(VALUES), rng.pick(VALUES))),
        }
        s.push_str(if rng.below(5) == 0 { "\r\n" } else { "\n" });
    }
    s.into_bytes()
}

fn random_bytes(rng: &mut Rng) -> Vec<u8> {
    let alphabet = b"[]=%$@()#;: \t\r\nabcuwsgi-_01\\\"'\xff\x00";
    (0..rng.below(200))
        .map(|_| alphabet[rng.below(alphabet.len())])
        .collect()
}

#[test]
fn ini_reader_never_panics() {
    let scratch = Scratch::new("fuzz");
    let path = scratch.0.join("fuzz.ini");
    let env = vec![
        ("HOME".to_string(), "/root".to_string()),
        ("FOO".to_string(), "bar".to_string()),
    ];
    let started = Instant::now();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut cases = 0;
    while cases < 3000 && started.elapsed() < Duration::from_secs(20) {
        let seed = rng.0;
        let input = if cases % 3 == 0 {
            random_bytes(&mut rng)
        } else {
            structured(&mut rng)
        };
        std::fs::write(&path, &input).expect("write fuzz input");
        let args = vec![path.to_string_lossy().into_owned()];
        let sources = Sources::new(args, env.clone(), scratch.0.clone());
        let outcome = std::panic::catch_unwind(|| reload(&sources));
        assert!(
            outcome.is_ok(),
            "panic at seed {seed:#x} on input {:?}",
            String::from_utf8_lossy(&input)
        );
        cases += 1;
    }
    assert!(cases >= 500, "only {cases} cases ran in the time bound");
}
