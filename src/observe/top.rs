//! `molt top ADDR`: a one-shot report from a running molt's stats socket (plain or
//! HTTP): every worker with its requests and memory, then the leak finder's routes by
//! total growth and by growth per request.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use serde_json::Value;

use super::reqlog::human;
use super::view::{by_per_request, Leak};

/// Formats the leak finder's two rankings.
pub fn leak_report(leaks: &[Leak]) -> String {
    let mut o = String::new();
    for (title, list) in [
        ("routes by total memory growth", leaks.to_vec()),
        ("routes by memory growth per request", by_per_request(leaks)),
    ] {
        o.push_str(&format!(
            "{title}\n{:<40} {:>10} {:>12} {:>12}\n",
            "ROUTE", "REQUESTS", "GROWTH", "PER REQ"
        ));
        for l in list.iter().take(10) {
            o.push_str(&format!(
                "{:<40} {:>10} {:>12} {:>12}\n",
                l.route,
                l.requests,
                human(l.growth as f64),
                human(l.per_request())
            ));
        }
        o.push('\n');
    }
    o
}

/// Runs `molt top ADDR`; returns the exit code.
pub fn main(args: &[String]) -> i32 {
    let Some(addr) = args.first() else {
        eprintln!("usage: molt top ADDR   (the --stats address: HOST:PORT, a unix path, or http://HOST:PORT)");
        return 2;
    };
    match fetch(addr).and_then(|text| report(&text)) {
        Ok(out) => {
            print!("{out}");
            0
        }
        Err(e) => {
            eprintln!("molt top: {addr}: {e}");
            1
        }
    }
}

/// Reads the stats document from `addr`.
fn fetch(addr: &str) -> Result<String, String> {
    let timeout = Some(Duration::from_secs(10));
    let raw = if let Some(rest) = addr.strip_prefix("http://") {
        let host = rest.split('/').next().unwrap_or(rest);
        let mut s = TcpStream::connect(host).map_err(|e| e.to_string())?;
        s.set_read_timeout(timeout).map_err(|e| e.to_string())?;
        s.write_all(
            format!("GET /stats HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .map_err(|e| e.to_string())?;
        read_all(s)?
    } else if addr.contains(':') {
        let s = TcpStream::connect(addr).map_err(|e| e.to_string())?;
        s.set_read_timeout(timeout).map_err(|e| e.to_string())?;
        read_all(s)?
    } else {
        let s = UnixStream::connect(addr).map_err(|e| e.to_string())?;
        s.set_read_timeout(timeout).map_err(|e| e.to_string())?;
        read_all(s)?
    };
    // An HTTP answer carries the document after its head.
    Ok(match raw.split_once("\r\n\r\n") {
        Some((head, body)) if head.starts_with("HTTP/") => body.to_string(),
        _ => raw,
    })
}

fn read_all(mut r: impl Read) -> Result<String, String> {
    let mut s = String::new();
    r.read_to_string(&mut s).map_err(|e| e.to_string())?;
    Ok(s)
}

/// The report for one stats document.
pub fn report(text: &str) -> Result<String, String> {
    let doc: Value =
        serde_json::from_str(text).map_err(|e| format!("not a stats document: {e}"))?;
    let mut o = format!(
        "molt {} pid {} - listen queue {}\n{:>4} {:>8} {:>9} {:>6} {:>10} {:>10} {:>8} {}\n",
        doc["version"].as_str().unwrap_or("?"),
        doc["pid"],
        doc["listen_queue"],
        "WID",
        "PID",
        "REQ",
        "STATUS",
        "RSS",
        "PSS",
        "RESPAWN",
        "LAST RECYCLE"
    );
    for w in doc["workers"].as_array().into_iter().flatten() {
        let n = |k: &str| w[k].as_u64().unwrap_or(0);
        o.push_str(&format!(
            "{:>4} {:>8} {:>9} {:>6} {:>10} {:>10} {:>8} {}\n",
            n("id"),
            n("pid"),
            n("requests"),
            w["status"].as_str().unwrap_or("?"),
            human(n("rss") as f64),
            w["pss"]
                .as_u64()
                .map_or("-".to_string(), |b| human(b as f64)),
            n("respawn_count"),
            w["last_recycle_reason"].as_str().unwrap_or("-")
        ));
    }
    o.push('\n');
    let leaks: Vec<Leak> = doc["molt"]["leaks"]["by_growth"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|l| Leak {
            route: l["route"].as_str().unwrap_or("?").to_string(),
            requests: l["requests"].as_u64().unwrap_or(0),
            growth: l["growth"].as_u64().unwrap_or(0),
        })
        .collect();
    if leaks.is_empty() {
        o.push_str("leak finder: no data (start molt with --leak-finder or --memory-report)\n");
    } else {
        o.push_str(&leak_report(&leaks));
    }
    Ok(o)
}
