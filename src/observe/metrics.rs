//! Prometheus text exposition (format 0.0.4) at `/metrics` of the HTTP stats listener.
//!
//! Counters are pool totals since molt started: the master adds each dead worker's last
//! counters to its ledger, so a recycle never makes a counter go backwards. Per-process
//! gauges carry `worker` (the id, stable across recycles) and `pid` labels.

use std::fmt::Write as _;

use super::view::View;
use crate::scoreboard::DURATION_BUCKETS_US;

/// Renders every metric.
pub fn render(v: &View<'_>) -> String {
    let rows = v.rows();
    let totals = v.totals(&rows);
    let mut o = String::with_capacity(4096);
    counter(
        &mut o,
        "molt_requests_total",
        "Requests served by every worker since start.",
    );
    let _ = writeln!(o, "molt_requests_total {}", totals.requests);
    counter(
        &mut o,
        "molt_exceptions_total",
        "Responses with status >= 500 since start.",
    );
    let _ = writeln!(o, "molt_exceptions_total {}", totals.errors);
    counter(
        &mut o,
        "molt_tx_bytes_total",
        "Response bytes written since start.",
    );
    let _ = writeln!(o, "molt_tx_bytes_total {}", totals.tx);
    counter(
        &mut o,
        "molt_worker_requests_total",
        "Requests served per worker id (all its processes).",
    );
    for (id, n) in v.requests_by_id(&rows) {
        let _ = writeln!(o, "molt_worker_requests_total{{worker=\"{id}\"}} {n}");
    }
    counter(
        &mut o,
        "molt_respawns_total",
        "Worker processes that ended, by reason.",
    );
    for (reason, n) in &v.book.respawns {
        let _ = writeln!(o, "molt_respawns_total{{reason=\"{}\"}} {n}", esc(reason));
    }
    counter(
        &mut o,
        "molt_oom_kills_total",
        "Workers killed by the kernel's OOM killer (confirmed by the cgroup's counter).",
    );
    let _ = writeln!(o, "molt_oom_kills_total {}", v.memory.oom_kills);
    counter(
        &mut o,
        "molt_foreign_sigkills_total",
        "Workers killed by a SIGKILL molt did not send (the OOM killer, most often).",
    );
    let _ = writeln!(
        o,
        "molt_foreign_sigkills_total {}",
        v.memory.foreign_sigkills
    );
    counter(
        &mut o,
        "molt_pool_recycles_total",
        "Workers recycled by the pool memory rules.",
    );
    let _ = writeln!(o, "molt_pool_recycles_total {}", v.memory.pool_recycles);
    counter(
        &mut o,
        "molt_harakiri_total",
        "Workers killed for a request over the harakiri limit.",
    );
    let harakiri: u64 = v.book.ids.values().map(|b| b.harakiri).sum();
    let _ = writeln!(o, "molt_harakiri_total {harakiri}");
    gauge(&mut o, "molt_workers", "Live worker processes.");
    let _ = writeln!(o, "molt_workers {}", rows.len());
    gauge(&mut o, "molt_workers_busy", "Workers inside a request now.");
    let busy = rows.iter().filter(|r| r.cores.iter().any(|c| c.1)).count();
    let _ = writeln!(o, "molt_workers_busy {busy}");
    per_worker(&mut o, v, &rows);
    gauge(
        &mut o,
        "molt_listen_queue",
        "Connections waiting in a listener's accept queue (TCP_INFO).",
    );
    for s in &v.sockets {
        let _ = writeln!(
            o,
            "molt_listen_queue{{socket=\"{}\"}} {}",
            esc(&s.name),
            s.queue
        );
    }
    gauge(&mut o, "molt_listen_queue_max", "A listener's backlog.");
    for s in &v.sockets {
        let _ = writeln!(
            o,
            "molt_listen_queue_max{{socket=\"{}\"}} {}",
            esc(&s.name),
            s.max_queue
        );
    }
    histogram(&mut o, &totals.durations, totals.busy_us);
    leaks(&mut o, v);
    o
}

fn per_worker(o: &mut String, v: &View<'_>, rows: &[super::view::Row]) {
    type Pick = fn(&super::view::Row) -> Option<u64>;
    let gauges: [(&str, &str, Pick); 5] = [
        (
            "molt_worker_rss_bytes",
            "Resident memory of a worker and its children, measured by the master.",
            |r| Some(r.rss),
        ),
        (
            "molt_worker_pss_bytes",
            "Proportional set size of a worker (smaps_rollup).",
            |r| r.detail.pss,
        ),
        (
            "molt_worker_uss_bytes",
            "Unique set size of a worker: private clean + dirty (smaps_rollup).",
            |r| r.detail.uss,
        ),
        ("molt_worker_vsz_bytes", "Virtual size of a worker.", |r| {
            r.detail.vsz
        }),
        (
            "molt_worker_busy",
            "1 while the worker is inside a request.",
            |r| Some(u64::from(r.cores.iter().any(|c| c.1))),
        ),
    ];
    for (name, help, pick) in gauges {
        gauge(o, name, help);
        for r in rows {
            if let Some(x) = pick(r) {
                let _ = writeln!(o, "{name}{{worker=\"{}\",pid=\"{}\"}} {x}", r.id, r.pid);
            }
        }
    }
    counter(
        o,
        "molt_worker_respawns_total",
        "Processes of a worker id that ended.",
    );
    for (id, b) in &v.book.ids {
        let _ = writeln!(
            o,
            "molt_worker_respawns_total{{worker=\"{id}\"}} {}",
            b.respawns
        );
    }
}

fn histogram(o: &mut String, buckets: &[u64], sum_us: u64) {
    let name = "molt_request_duration_seconds";
    let _ = writeln!(
        o,
        "# HELP {name} Request duration, from parsed head to response written."
    );
    let _ = writeln!(o, "# TYPE {name} histogram");
    let mut cumulative = 0u64;
    for (bound, n) in DURATION_BUCKETS_US.iter().zip(buckets) {
        cumulative += n;
        let _ = writeln!(
            o,
            "{name}_bucket{{le=\"{}\"}} {cumulative}",
            *bound as f64 / 1e6
        );
    }
    cumulative += buckets.last().copied().unwrap_or(0);
    let _ = writeln!(o, "{name}_bucket{{le=\"+Inf\"}} {cumulative}");
    let _ = writeln!(o, "{name}_sum {}", sum_us as f64 / 1e6);
    let _ = writeln!(o, "{name}_count {cumulative}");
}

fn leaks(o: &mut String, v: &View<'_>) {
    let leaks = v.leaks();
    counter(
        o,
        "molt_route_memory_growth_bytes_total",
        "Resident memory growth caused by requests of a route (leak finder).",
    );
    for l in &leaks {
        let _ = writeln!(
            o,
            "molt_route_memory_growth_bytes_total{{route=\"{}\"}} {}",
            esc(&l.route),
            l.growth
        );
    }
    counter(
        o,
        "molt_route_requests_total",
        "Requests per route (leak finder).",
    );
    for l in &leaks {
        let _ = writeln!(
            o,
            "molt_route_requests_total{{route=\"{}\"}} {}",
            esc(&l.route),
            l.requests
        );
    }
}

fn counter(o: &mut String, name: &str, help: &str) {
    let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} counter");
}

fn gauge(o: &mut String, name: &str, help: &str) {
    let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} gauge");
}

/// Escapes a label value (backslash, quote, newline).
fn esc(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
