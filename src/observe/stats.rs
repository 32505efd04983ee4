//! The stats document in uWSGI's stats-server layout (what uwsgitop, uwsgi_exporter and
//! Telegraf's uwsgi input read), with molt's additions in extra keys: `pss`, `uss`,
//! `generation`, `busy_since`, `molt_phase`, `recycle_reasons`, and a top-level `molt`
//! object (pool totals, respawns by reason, the leak finder's tables).
//!
//! Units follow uWSGI: bytes for memory and tx, microseconds for `running_time` and
//! `avg_rt`, Unix seconds for `last_spawn`.

use serde_json::{json, Map, Value};

use super::view::{by_per_request, Leak, Row, View};

/// Rows of the leak tables in the document.
const TOP_LEAKS: usize = 10;

/// Renders the document (one line of JSON).
pub fn document(v: &View<'_>) -> String {
    let rows = v.rows();
    let totals = v.totals(&rows);
    let queue: u64 = v.sockets.iter().map(|s| s.queue).sum();
    let busy = rows.iter().filter(|r| r.cores.iter().any(|c| c.1)).count();
    let leaks = v.leaks();
    let doc = json!({
        "version": concat!(env!("CARGO_PKG_VERSION"), "-molt"),
        "listen_queue": queue,
        "listen_queue_errors": 0,
        "signal_queue": 0,
        "load": busy,
        "pid": std::process::id(),
        "uid": nix::unistd::getuid().as_raw(),
        "gid": nix::unistd::getgid().as_raw(),
        "cwd": std::env::current_dir().map(|p| p.display().to_string()).unwrap_or_default(),
        "locks": [],
        "sockets": v.sockets.iter().map(|s| json!({
            "name": s.name, "proto": "http", "queue": s.queue, "max_queue": s.max_queue,
            "shared": 0, "can_offload": 0,
        })).collect::<Vec<_>>(),
        "workers": rows.iter().map(|r| worker(r, v.unix_now)).collect::<Vec<_>>(),
        "molt": {
            "requests_total": totals.requests,
            "exceptions_total": totals.errors,
            "tx_total": totals.tx,
            "batched_total": totals.batched,
            "respawns": v.book.respawns,
            "oom_kills": v.memory.oom_kills,
            "foreign_sigkills": v.memory.foreign_sigkills,
            "pool_recycles": v.memory.pool_recycles,
            "leak_finder": v.leak_finder,
            "leaks": {
                "by_growth": leaks.iter().take(TOP_LEAKS).map(leak).collect::<Vec<_>>(),
                "by_growth_per_request": by_per_request(&leaks).iter().take(TOP_LEAKS).map(leak).collect::<Vec<_>>(),
            },
        },
    });
    doc.to_string()
}

fn worker(r: &Row, unix_now: f64) -> Value {
    let requests = r.live.requests;
    let busy = r.cores.iter().any(|c| c.1);
    let mut w = json!({
        "id": r.id,
        "pid": r.pid,
        "accepting": u8::from(r.accepting),
        "requests": requests,
        "delta_requests": requests,
        "exceptions": r.live.errors,
        "harakiri_count": r.harakiri,
        "signals": 0,
        "signal_queue": 0,
        "status": if busy { "busy" } else { "idle" },
        "rss": r.rss,
        "vsz": r.detail.vsz.unwrap_or(0),
        "running_time": r.live.busy_us,
        "last_spawn": r.spawned_unix as u64,
        "respawn_count": r.respawns + 1,
        "tx": r.live.tx,
        "avg_rt": r.live.busy_us.checked_div(requests).unwrap_or(0),
        "apps": [{
            "id": 0, "modifier1": 0, "mountpoint": "", "startup_time": 0,
            "requests": requests, "exceptions": r.live.errors, "chdir": "",
        }],
        "cores": r.cores.iter().enumerate().map(|(i, (req, busy))| json!({
            "id": i, "requests": req, "static_requests": 0, "routed_requests": 0,
            "offloaded_requests": 0, "write_errors": 0, "read_errors": 0,
            "in_request": u8::from(*busy), "vars": [], "req_info": {},
        })).collect::<Vec<_>>(),
    });
    let extra: Map<String, Value> = [
        ("pss", json!(r.detail.pss)),
        ("uss", json!(r.detail.uss)),
        ("batched_requests", json!(r.live.batched)),
        ("generation", json!(r.generation)),
        ("busy_since", json!(r.busy_since_unix)),
        (
            "busy_for",
            json!(r.busy_since_unix.map(|t| (unix_now - t).max(0.0))),
        ),
        ("molt_phase", json!(r.phase)),
        ("recycling", json!(r.recycling)),
        ("last_recycle_reason", json!(r.last_reason)),
        ("recycle_reasons", reasons(r)),
        ("lifetime_s", json!(r.running_s)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    if let Value::Object(m) = &mut w {
        m.extend(extra);
    }
    w
}

fn leak(l: &Leak) -> Value {
    json!({
        "route": l.route,
        "requests": l.requests,
        "growth": l.growth,
        "growth_per_request": l.per_request().round() as u64,
    })
}

fn reasons(r: &Row) -> Value {
    let m: Map<String, Value> = r
        .reasons
        .iter()
        .map(|(k, n)| (k.clone(), json!(n)))
        .collect();
    Value::Object(m)
}
