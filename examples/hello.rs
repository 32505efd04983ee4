//! A Rust app served by molt through the public library API.
//!
//! Run: `cargo run --release --example hello -- --http-socket 127.0.0.1:8000 --processes 2 --max-requests 1000`
//! (the same options as the `molt` binary).

use molt::app::{App, Request, Response};

/// Answers `Hello, World!` on `/` and the worker's pid on `/pid`.
struct Hello;

impl App for Hello {
    fn call(&self, req: &mut Request<'_>) -> Response {
        match req.path() {
            "/" => Response::text(200, &b"Hello, World!"[..]),
            "/pid" => Response::text(200, std::process::id().to_string().into_bytes()),
            _ => Response::text(404, &b"Not Found\n"[..]),
        }
    }
}

fn main() {
    // The factory runs inside each worker, after fork.
    molt::cli_main(|| Ok(Box::new(Hello)));
}
