//! The built-in demo app (`--demo`): routes that exercise every recycling rule.
//!
//! - `GET /` -> `Hello, World!`
//! - `GET /pid` -> the worker's pid
//! - `GET /leak?kb=N` -> keeps N KiB (touched, so resident) for the life of the worker
//! - `GET /sleep?ms=N` -> answers after N ms
//! - `GET /crash` -> the worker aborts
//! - `POST /echo` -> the request body back
//! - `GET /env?name=NAME` -> the worker's environment variable NAME (404 if unset)
//!
//! - `GET /preload` -> the size of the preloaded block and a sum of one byte per page
//!
//! `MOLT_DEMO_PRELOAD=MB` makes the master fill a block of MB MiB before forking (see
//! [`preload_from_env`]): every worker then shares it copy-on-write and only reads it,
//! like a framework's preloaded code and data. Each worker's RSS counts the whole block;
//! its PSS counts a 1/N share.
//!
//! `MOLT_DEMO_BOOT` makes each worker's boot misbehave, to try recycling rules on a
//! slow or broken app: `delay:MS` (boot takes MS ms), `fail` (the app cannot load),
//! `exit:N` (the worker exits with status N while booting).

use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use crate::app::{App, Request, Response};

/// Most KiB one `/leak` request may keep (a guard against typos, 1 GiB).
const MAX_LEAK_KB: usize = 1024 * 1024;

/// The block `MOLT_DEMO_PRELOAD` filled in the master: read-only from then on.
static PRELOADED: OnceLock<Box<[u8]>> = OnceLock::new();

/// Most MiB `MOLT_DEMO_PRELOAD` may ask for (a guard against typos).
const MAX_PRELOAD_MB: usize = 16 * 1024;

/// In the master, before any fork: fills `MOLT_DEMO_PRELOAD` MiB (once per process, so
/// a reload keeps the block). Returns the size preloaded, in MiB.
pub fn preload_from_env() -> Result<usize, String> {
    let Ok(text) = std::env::var("MOLT_DEMO_PRELOAD") else {
        return Ok(0);
    };
    let mb: usize = text
        .trim()
        .parse()
        .ok()
        .filter(|&mb| mb <= MAX_PRELOAD_MB)
        .ok_or_else(|| {
            format!("MOLT_DEMO_PRELOAD={text}: expected MiB from 0 to {MAX_PRELOAD_MB}")
        })?;
    // Written byte by byte (not calloc'd zero pages), so every page is really resident.
    let block = PRELOADED.get_or_init(|| vec![0x5Au8; mb << 20].into_boxed_slice());
    Ok(block.len() >> 20)
}

/// The demo's factory. Called in the master (before forking), so this is where
/// `MOLT_DEMO_PRELOAD` fills the block every worker then shares.
pub fn factory() -> crate::worker::AppFactory {
    match preload_from_env() {
        Ok(0) => {}
        Ok(mb) => log::info!("demo: preloaded {mb} MiB before forking"),
        Err(e) => log::error!("demo: {e}"),
    }
    std::sync::Arc::new(boot)
}

/// Builds the demo app in a worker, honouring `MOLT_DEMO_BOOT`.
pub fn boot() -> Result<Box<dyn App>, String> {
    let knob = std::env::var("MOLT_DEMO_BOOT").unwrap_or_default();
    match knob.split_once(':').unwrap_or((knob.as_str(), "")) {
        ("", _) => {}
        ("delay", ms) => std::thread::sleep(Duration::from_millis(ms.parse().unwrap_or(0))),
        ("fail", _) => return Err("MOLT_DEMO_BOOT=fail: the demo app refuses to load".into()),
        ("exit", code) => std::process::exit(code.parse().unwrap_or(1)),
        (other, _) => {
            return Err(format!(
                "MOLT_DEMO_BOOT: unknown knob '{other}' (use delay:MS, fail or exit:N)"
            ))
        }
    }
    Ok(Box::new(Demo::default()))
}

/// The demo application.
#[derive(Default)]
pub struct Demo {
    /// Memory kept on purpose by `/leak`.
    leaked: Mutex<Vec<Vec<u8>>>,
}

impl App for Demo {
    fn call(&self, req: &mut Request<'_>) -> Response {
        match req.path() {
            "/" => Response::text(200, &b"Hello, World!"[..]),
            "/pid" => Response::text(200, std::process::id().to_string().into_bytes()),
            "/leak" => self.leak(req),
            "/preload" => preloaded(),
            "/sleep" => sleep(req),
            "/crash" => std::process::abort(),
            "/echo" => echo(req),
            "/env" => env_var(req),
            _ => Response::text(404, &b"Not Found\n"[..]),
        }
    }
}

impl Demo {
    fn leak(&self, req: &Request<'_>) -> Response {
        let Some(kb) = number(req, "kb") else {
            return bad("kb must be a whole number");
        };
        let kb = (kb as usize).min(MAX_LEAK_KB);
        // Touch every page so the memory is resident, as a real leak would be.
        let block = vec![0xA5u8; kb * 1024];
        let mut kept = self.leaked.lock().unwrap_or_else(|p| p.into_inner());
        kept.push(block);
        let total: usize = kept.iter().map(Vec::len).sum();
        Response::text(
            200,
            format!("leaked {kb} KiB, {} KiB in total\n", total / 1024).into_bytes(),
        )
    }
}

/// Reads one byte per page of the preloaded block: reading keeps the pages shared.
fn preloaded() -> Response {
    let block = PRELOADED.get().map_or(&[][..], |b| &b[..]);
    let sum: u64 = block.iter().step_by(4096).map(|&b| u64::from(b)).sum();
    Response::text(
        200,
        format!("{} MiB, sum {sum}\n", block.len() >> 20).into_bytes(),
    )
}

fn sleep(req: &Request<'_>) -> Response {
    let Some(ms) = number(req, "ms") else {
        return bad("ms must be a whole number");
    };
    std::thread::sleep(Duration::from_millis(ms));
    Response::text(200, format!("slept {ms} ms\n").into_bytes())
}

fn echo(req: &mut Request<'_>) -> Response {
    match req.read_body() {
        Ok(body) => Response::new(200, "application/octet-stream", body),
        Err(e) => Response::text(400, format!("cannot read body: {e}\n").into_bytes()),
    }
}

fn env_var(req: &Request<'_>) -> Response {
    let value = req.query_param("name").and_then(|n| std::env::var(n).ok());
    match value {
        Some(v) => Response::text(200, v.into_bytes()),
        None => Response::text(404, &b"unset\n"[..]),
    }
}

fn number(req: &Request<'_>, name: &str) -> Option<u64> {
    req.query_param(name)?.parse().ok()
}

fn bad(why: &'static str) -> Response {
    Response::text(400, why.as_bytes())
}
