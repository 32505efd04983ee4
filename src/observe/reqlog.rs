//! The request log line: compiled once per worker from a `%(var)` format (uWSGI's names),
//! rendered per request into a reusable buffer and written with one `write` to fd 2
//! (stderr, or the `logto` file the master pointed it at).

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::SocketAddr;

/// molt's default line: when, who, what, how it went.
pub const DEFAULT: &str =
    "[%(ltime)] worker %(wid) (pid %(pid)) %(addr) %(method) %(uri) => %(status) %(size) bytes in %(msecs) ms";

/// Appended to the default line under `--memory-report`.
pub const MEMORY_SUFFIX: &str = " rss %(rssM) MB (%(rssdeltaK) KB)";

/// A variable of the format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Var {
    Method,
    Uri,
    Proto,
    Status,
    Size,
    Msecs,
    Micros,
    Pid,
    Wid,
    Core,
    Addr,
    Host,
    Uagent,
    Referer,
    Rss,
    RssM,
    Vsz,
    VszM,
    RssDelta,
    RssDeltaK,
    Ltime,
    Epoch,
}

impl Var {
    fn from_name(name: &str) -> Option<Var> {
        Some(match name {
            "method" => Var::Method,
            "uri" => Var::Uri,
            "proto" => Var::Proto,
            "status" => Var::Status,
            "size" | "rsize" => Var::Size,
            "msecs" => Var::Msecs,
            "micros" => Var::Micros,
            "pid" => Var::Pid,
            "wid" => Var::Wid,
            "core" => Var::Core,
            "addr" => Var::Addr,
            "host" => Var::Host,
            "uagent" => Var::Uagent,
            "referer" => Var::Referer,
            "rss" => Var::Rss,
            "rssM" => Var::RssM,
            "vsz" => Var::Vsz,
            "vszM" => Var::VszM,
            "rssdelta" => Var::RssDelta,
            "rssdeltaK" => Var::RssDeltaK,
            "ltime" | "ctime" => Var::Ltime,
            "time" | "epoch" => Var::Epoch,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Var(Var),
}

/// A compiled log format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Format {
    pieces: Vec<Piece>,
    /// Whether any variable needs the worker's memory (rss, vsz, rssdelta).
    pub needs_memory: bool,
}

/// What one request contributes to its log line.
pub struct Record<'a> {
    pub method: &'a str,
    pub uri: &'a str,
    pub proto: &'a str,
    pub status: u16,
    pub size: u64,
    pub micros: u64,
    pub pid: u32,
    pub wid: u32,
    pub core: usize,
    pub addr: Option<SocketAddr>,
    pub host: Option<&'a [u8]>,
    pub uagent: Option<&'a [u8]>,
    pub referer: Option<&'a [u8]>,
    /// (rss, vsz) after the request, and the rss change it caused.
    pub memory: Option<(u64, u64, i64)>,
    /// The HTTP date of this second, and the Unix time.
    pub date: &'a [u8],
    pub epoch: u64,
}

impl Format {
    /// Compiles a format; an unknown `%(name)` is an error naming it.
    pub fn parse(text: &str) -> Result<Format, String> {
        let mut pieces = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("%(") {
            push_text(&mut pieces, &rest[..start]);
            let after = &rest[start + 2..];
            let end = after
                .find(')')
                .ok_or_else(|| format!("unclosed %( in log format {text:?}"))?;
            let name = &after[..end];
            let var = Var::from_name(name).ok_or_else(|| {
                format!("unknown log variable %({name}); known: method, uri, proto, status, size, msecs, micros, pid, wid, core, addr, host, uagent, referer, rss, rssM, vsz, vszM, rssdelta, rssdeltaK, ltime, time, epoch")
            })?;
            pieces.push(Piece::Var(var));
            rest = &after[end + 1..];
        }
        push_text(&mut pieces, rest);
        let needs_memory = pieces.iter().any(|p| {
            matches!(
                p,
                Piece::Var(
                    Var::Rss | Var::RssM | Var::Vsz | Var::VszM | Var::RssDelta | Var::RssDeltaK
                )
            )
        });
        Ok(Format {
            pieces,
            needs_memory,
        })
    }

    /// The format a worker uses: `log-format` if set, else molt's line (with the memory
    /// suffix under `memory-report`).
    pub fn configured(custom: Option<&str>, memory_report: bool) -> Result<Format, String> {
        match custom {
            Some(text) => Format::parse(text),
            None if memory_report => Format::parse(&format!("{DEFAULT}{MEMORY_SUFFIX}")),
            None => Format::parse(DEFAULT),
        }
    }

    /// Renders one line (with its newline) into `out`, which is cleared first.
    pub fn render(&self, r: &Record<'_>, out: &mut Vec<u8>) {
        out.clear();
        for piece in &self.pieces {
            match piece {
                Piece::Text(t) => out.extend_from_slice(t.as_bytes()),
                Piece::Var(v) => render_var(*v, r, out),
            }
        }
        out.push(b'\n');
    }
}

fn push_text(pieces: &mut Vec<Piece>, text: &str) {
    if !text.is_empty() {
        pieces.push(Piece::Text(text.to_string()));
    }
}

fn render_var(v: Var, r: &Record<'_>, out: &mut Vec<u8>) {
    let mem = r.memory;
    // Writing into a Vec cannot fail.
    let _ = match v {
        Var::Method => out.write_all(r.method.as_bytes()),
        Var::Uri => out.write_all(r.uri.as_bytes()),
        Var::Proto => out.write_all(r.proto.as_bytes()),
        Var::Status => write!(out, "{}", r.status),
        Var::Size => write!(out, "{}", r.size),
        Var::Msecs => write!(out, "{}", r.micros / 1000),
        Var::Micros => write!(out, "{}", r.micros),
        Var::Pid => write!(out, "{}", r.pid),
        Var::Wid => write!(out, "{}", r.wid),
        Var::Core => write!(out, "{}", r.core),
        Var::Addr => match r.addr {
            Some(a) => write!(out, "{}", a.ip()),
            None => out.write_all(b"-"),
        },
        Var::Host => out.write_all(r.host.unwrap_or(b"-")),
        Var::Uagent => out.write_all(r.uagent.unwrap_or(b"-")),
        Var::Referer => out.write_all(r.referer.unwrap_or(b"-")),
        Var::Rss => write!(out, "{}", mem.map_or(0, |m| m.0)),
        Var::RssM => write!(out, "{:.1}", mem.map_or(0, |m| m.0) as f64 / 1048576.0),
        Var::Vsz => write!(out, "{}", mem.map_or(0, |m| m.1)),
        Var::VszM => write!(out, "{:.1}", mem.map_or(0, |m| m.1) as f64 / 1048576.0),
        Var::RssDelta => write!(out, "{:+}", mem.map_or(0, |m| m.2)),
        Var::RssDeltaK => write!(out, "{:+}", mem.map_or(0, |m| m.2) / 1024),
        Var::Ltime => out.write_all(r.date),
        Var::Epoch => write!(out, "{}", r.epoch),
    };
}

/// Writes a rendered line to fd 2 with one `write` (a line under PIPE_BUF stays whole
/// among concurrent writers on a pipe; `logto` files are opened O_APPEND).
pub fn emit(line: &[u8]) {
    // SAFETY: writing an initialised buffer to fd 2.
    unsafe { libc::write(2, line.as_ptr().cast(), line.len()) };
}

/// Human-readable byte count for reports (`12.3 MB`).
pub fn human(bytes: f64) -> String {
    let mut s = String::new();
    let abs = bytes.abs();
    let _ = if abs >= 1048576.0 {
        write!(s, "{:.1} MB", bytes / 1048576.0)
    } else if abs >= 1024.0 {
        write!(s, "{:.1} KB", bytes / 1024.0)
    } else {
        write!(s, "{bytes:.0} B")
    };
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> Record<'static> {
        Record {
            method: "GET",
            uri: "/leak?kb=1",
            proto: "HTTP/1.1",
            status: 200,
            size: 42,
            micros: 2500,
            pid: 77,
            wid: 2,
            core: 0,
            addr: "127.0.0.1:5000".parse().ok(),
            host: Some(b"example"),
            uagent: None,
            referer: None,
            memory: Some((10 * 1048576, 20 * 1048576, 65536)),
            date: b"Tue, 03 Mar 2026 10:00:00 GMT",
            epoch: 1,
        }
    }

    #[test]
    fn renders_uwsgi_variables() {
        let f = Format::parse("%(addr) %(method) %(uri) %(status) %(size) %(msecs) %(wid)/%(pid) %(rssM) %(rssdelta) %(host) %(uagent)").unwrap();
        let mut out = Vec::new();
        f.render(&record(), &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "127.0.0.1 GET /leak?kb=1 200 42 2 2/77 10.0 +65536 example -\n"
        );
        assert!(f.needs_memory);
    }

    #[test]
    fn default_line_and_errors() {
        let f = Format::configured(None, false).unwrap();
        assert!(!f.needs_memory);
        let mut out = Vec::new();
        f.render(&record(), &mut out);
        let line = String::from_utf8(out).unwrap();
        assert!(line.contains("worker 2 (pid 77) 127.0.0.1 GET /leak?kb=1 => 200 42 bytes in 2 ms"));
        assert!(Format::configured(None, true).unwrap().needs_memory);
        assert!(Format::parse("%(nope)").unwrap_err().contains("nope"));
        assert!(Format::parse("%(uri").is_err());
    }
}
