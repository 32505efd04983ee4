//! The live page: one self-contained HTML document (inline SVG, inline JS, no external
//! assets) with each worker id's memory over the last minutes, a red mark where a
//! worker process ended (recycle or crash), requests per second and the leak finder's
//! table. The chart is drawn by the server, so the page shows data without scripts;
//! the script only refreshes the fragment every two seconds.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::reqlog::human;
use super::view::View;

/// Line colours per worker id (cycled); red is kept for recycle marks.
pub const PALETTE: [&str; 6] = [
    "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf",
];
/// Colour of recycle marks.
pub const MARK: &str = "#d62728";

const W: f64 = 900.0;
const H: f64 = 300.0;
const PAD: f64 = 40.0;

/// The whole page.
pub fn page(v: &View<'_>) -> String {
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>molt: live</title>\
<style>body{{font-family:sans-serif;margin:16px;background:#fff;color:#222}}\
table{{border-collapse:collapse}}td,th{{padding:2px 10px;border-bottom:1px solid #ddd;text-align:right}}\
td:first-child,th:first-child{{text-align:left}}</style></head><body>\
<h1>molt {}</h1><div id=\"live\">{}</div>\
<script>setInterval(function(){{fetch('/live?fragment=1').then(function(r){{return r.text()}})\
.then(function(t){{document.getElementById('live').innerHTML=t}}).catch(function(){{}})}},2000);</script>\
</body></html>",
        env!("CARGO_PKG_VERSION"),
        fragment(v)
    )
}

/// The part of the page that refreshes.
pub fn fragment(v: &View<'_>) -> String {
    let mut o = String::new();
    let _ = write!(
        o,
        "<p>{} workers &middot; {:.1} requests/s &middot; {} recycles in view</p>",
        v.pool.workers.len(),
        rps(v),
        v.book.events.len()
    );
    chart(&mut o, v);
    leak_table(&mut o, v);
    o
}

fn rps(v: &View<'_>) -> f64 {
    let n = v.book.frames.len();
    if n < 2 {
        return 0.0;
    }
    let (a, b) = (&v.book.frames[n - 2], &v.book.frames[n - 1]);
    let dt = b.at.saturating_sub(a.at) as f64 / 1e9;
    if dt <= 0.0 {
        return 0.0;
    }
    b.requests.saturating_sub(a.requests) as f64 / dt
}

fn chart(o: &mut String, v: &View<'_>) {
    let frames = &v.book.frames;
    let start = frames.front().map_or(v.now, |f| f.at);
    let span = (v.now.saturating_sub(start) as f64 / 1e9).max(10.0);
    let max_rss = frames
        .iter()
        .flat_map(|f| f.workers.iter().map(|w| w.2))
        .max()
        .unwrap_or(1)
        .max(1) as f64
        * 1.1;
    let x = |t: u64| PAD + (W - 2.0 * PAD) * (1.0 - v.now.saturating_sub(t) as f64 / 1e9 / span);
    let y = |b: u64| H - PAD - (H - 2.0 * PAD) * (b as f64 / max_rss);
    let _ = write!(
        o,
        "<svg id=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" \
viewBox=\"0 0 {W} {H}\"><rect width=\"{W}\" height=\"{H}\" fill=\"#fff\"/>\
<line x1=\"{PAD}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#999\"/>\
<text x=\"{PAD}\" y=\"16\" font-size=\"12\">resident memory per worker (max {}), last {:.0} s</text>",
        H - PAD,
        W - PAD,
        H - PAD,
        human(max_rss / 1.1),
        span
    );
    let mut lines: BTreeMap<u32, Vec<(f64, f64)>> = BTreeMap::new();
    for f in frames {
        for (id, _, rss) in &f.workers {
            lines.entry(*id).or_default().push((x(f.at), y(*rss)));
        }
    }
    for (i, (id, pts)) in lines.iter().enumerate() {
        let colour = PALETTE[(*id as usize - 1) % PALETTE.len()];
        // Workers with the same memory would draw one line over the other and hide it:
        // each line sits one stroke width above the previous one.
        let lift = 3.0 * i as f64;
        let points: Vec<String> = pts
            .iter()
            .map(|(a, b)| format!("{a:.1},{:.1}", b - lift))
            .collect();
        let _ = write!(
            o,
            "<polyline class=\"worker\" data-worker=\"{id}\" fill=\"none\" stroke=\"{colour}\" \
stroke-width=\"3\" shape-rendering=\"crispEdges\" points=\"{}\"/>\
<text x=\"{}\" y=\"{}\" font-size=\"12\" fill=\"{colour}\">worker {id}</text>",
            points.join(" "),
            W - PAD - 70.0,
            30.0 + 14.0 * i as f64
        );
    }
    for e in &v.book.events {
        let ex = x(e.at);
        let _ = write!(
            o,
            "<g class=\"recycle\"><line x1=\"{ex:.1}\" y1=\"{}\" x2=\"{ex:.1}\" y2=\"{}\" stroke=\"{MARK}\" \
stroke-width=\"3\" shape-rendering=\"crispEdges\"/><title>worker {} (pid {}): {}</title></g>",
            PAD,
            H - PAD,
            e.id,
            e.pid,
            html(&e.reason)
        );
    }
    o.push_str("</svg>");
}

fn leak_table(o: &mut String, v: &View<'_>) {
    let leaks = v.leaks();
    if leaks.is_empty() {
        o.push_str(
            "<p>Leak finder: no data (start molt with --leak-finder or --memory-report).</p>",
        );
        return;
    }
    o.push_str("<h2>Routes by memory growth</h2><table><tr><th>route</th><th>requests</th><th>growth</th><th>per request</th></tr>");
    for l in leaks.iter().take(15) {
        let _ = write!(
            o,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            html(&l.route),
            l.requests,
            human(l.growth as f64),
            human(l.per_request())
        );
    }
    o.push_str("</table>");
}

/// Escapes text for HTML.
pub fn html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
