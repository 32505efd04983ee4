//! The gateway protocol between a worker and its app child: frames, the environ
//! encoding and the response head. Pure functions over byte buffers (no I/O), so the
//! contract is unit-tested here and documented in docs/python.md.
//!
//! A frame is `u32 little-endian payload length`, `u8 kind`, then the payload.

use std::borrow::Cow;

use crate::app::{HeaderText, Request};

/// Bytes before a frame's payload.
pub const HEADER_LEN: usize = 5;

/// Frame kinds. Upper case mostly flows child -> worker, lower case worker -> child.
pub mod kind {
    /// worker -> child: a request (flags byte, then the NUL-separated environ).
    pub const REQUEST: u8 = b'R';
    /// worker -> child: request body bytes; empty means end of body.
    pub const DATA: u8 = b'D';
    /// worker -> child: the request body could not be read (client gone, bad framing).
    pub const DATA_FAILED: u8 = b'Z';
    /// worker -> child: the last body chunk was sent to the client, send the next one.
    pub const NEXT: u8 = b'n';
    /// worker -> child: the client is gone; close the iterable and answer `END`.
    pub const CANCEL: u8 = b'c';
    /// child -> worker: the app is loaded (payload: the interpreter's version).
    pub const READY: u8 = b'K';
    /// child -> worker: the app cannot be loaded (payload: the traceback, UTF-8).
    pub const LOAD_FAILED: u8 = b'L';
    /// child -> worker: read up to `u32` bytes of the request body.
    pub const READ: u8 = b'r';
    /// child -> worker: a complete response: `u32` head length, head, body.
    pub const FULL: u8 = b'F';
    /// child -> worker: the head of a streamed response; `BODY` frames follow.
    pub const START: u8 = b'S';
    /// child -> worker: one body chunk of a streamed response (waits for `NEXT`/`CANCEL`).
    pub const BODY: u8 = b'B';
    /// child -> worker: a streamed response ended normally.
    pub const END: u8 = b'E';
    /// child -> worker: the app failed before its response started: answer 500.
    pub const ERROR: u8 = b'X';
    /// child -> worker: the app failed after its response started: cut the connection.
    pub const ABORT: u8 = b'A';
}

/// Request flag: the request has a body the child may read with `READ`.
pub const FLAG_BODY: u8 = 1;

/// Starts a frame in `out`; finish it with [`end_frame`] once the payload is written.
pub fn begin_frame(out: &mut Vec<u8>, kind: u8) -> usize {
    let at = out.len();
    out.extend_from_slice(&[0, 0, 0, 0, kind]);
    at
}

/// Writes the payload length of the frame begun at `at`.
pub fn end_frame(out: &mut [u8], at: usize) {
    let len = (out.len() - at - HEADER_LEN) as u32;
    out[at..at + 4].copy_from_slice(&len.to_le_bytes());
}

/// Appends a whole frame.
pub fn push_frame(out: &mut Vec<u8>, kind: u8, payload: &[u8]) {
    let at = begin_frame(out, kind);
    out.extend_from_slice(payload);
    end_frame(out, at);
}

/// Parses a frame header: (kind, payload length).
pub fn parse_header(h: &[u8]) -> Option<(u8, usize)> {
    let len = u32::from_le_bytes(h.get(..4)?.try_into().ok()?);
    Some((*h.get(4)?, len as usize))
}

/// Why a request cannot be handed to the app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadRequest {
    /// The path decodes to a NUL byte, which no environ string may hold here.
    NulInPath,
}

/// Host and port for `SERVER_NAME`/`SERVER_PORT` when the request has no `Host` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerDefaults {
    pub name: String,
    pub port: String,
}

/// Appends a REQUEST frame for `req`: one buffer, written with one syscall.
///
/// The environ is `KEY\0VALUE\0KEY\0VALUE` (no trailing NUL), bytes as received, which
/// the child decodes as latin-1: exactly PEP 3333's "native strings". Constant keys
/// (`wsgi.*`) live in the child.
pub fn encode_request(
    out: &mut Vec<u8>,
    req: &Request<'_>,
    has_body: bool,
    defaults: &ServerDefaults,
) -> Result<(), BadRequest> {
    let at = begin_frame(out, kind::REQUEST);
    out.push(if has_body { FLAG_BODY } else { 0 });
    pair(out, b"REQUEST_METHOD", req.method().as_bytes());
    pair(out, b"SCRIPT_NAME", b"");
    key(out, b"PATH_INFO");
    percent_decode(out, origin_form(req.path()).as_bytes())?;
    pair(out, b"QUERY_STRING", req.query().as_bytes());
    pair(out, b"SERVER_PROTOCOL", req.version().as_str().as_bytes());
    if let Some(remote) = req.remote_addr() {
        key(out, b"REMOTE_ADDR");
        push_display(out, remote.ip());
        key(out, b"REMOTE_PORT");
        push_display(out, remote.port());
    }
    server_name_port(out, req.header("host"), defaults);
    encode_headers(out, req);
    end_frame(out, at);
    Ok(())
}

/// Strips the scheme and authority of an absolute-form target (`http://h/p` -> `/p`).
fn origin_form(path: &str) -> &str {
    let rest = path
        .strip_prefix("http://")
        .or_else(|| path.strip_prefix("https://"));
    match rest {
        Some(r) => r.find('/').map_or("/", |i| &r[i..]),
        None => path,
    }
}

fn key(out: &mut Vec<u8>, k: &[u8]) {
    out.push(0);
    out.extend_from_slice(k);
    out.push(0);
}

fn pair(out: &mut Vec<u8>, k: &[u8], v: &[u8]) {
    key(out, k);
    out.extend_from_slice(v);
}

fn push_display(out: &mut Vec<u8>, v: impl std::fmt::Display) {
    use std::io::Write;
    let _ = write!(out, "{v}");
}

fn server_name_port(out: &mut Vec<u8>, host: Option<&[u8]>, defaults: &ServerDefaults) {
    let (name, port) = match host.filter(|h| !h.is_empty()) {
        Some(h) => split_host(h),
        None => (defaults.name.as_bytes(), defaults.port.as_bytes()),
    };
    pair(out, b"SERVER_NAME", name);
    pair(
        out,
        b"SERVER_PORT",
        if port.is_empty() {
            defaults.port.as_bytes()
        } else {
            port
        },
    );
}

/// Splits `host[:port]`, `[v6][:port]`.
fn split_host(h: &[u8]) -> (&[u8], &[u8]) {
    let bracket_end = if h.first() == Some(&b'[') {
        h.iter().position(|&b| b == b']')
    } else {
        None
    };
    let search_from = bracket_end.unwrap_or(0);
    match h[search_from..].iter().rposition(|&b| b == b':') {
        Some(i) => (&h[..search_from + i], &h[search_from + i + 1..]),
        None => (h, b""),
    }
}

/// `Content-Type`/`Content-Length` become `CONTENT_*`, the rest `HTTP_*`. Repeated
/// headers are joined (`, `, or `; ` for cookies) as the PEP asks. Names with `_` are
/// dropped: `X_Forwarded_For` would otherwise pose as `X-Forwarded-For`.
fn encode_headers(out: &mut Vec<u8>, req: &Request<'_>) {
    let all = || req.headers();
    for (i, (name, value)) in all().enumerate() {
        if name.contains('_') || all().take(i).any(|(n, _)| n.eq_ignore_ascii_case(name)) {
            continue;
        }
        if name.eq_ignore_ascii_case("content-type") {
            key(out, b"CONTENT_TYPE");
        } else if name.eq_ignore_ascii_case("content-length") {
            key(out, b"CONTENT_LENGTH");
        } else {
            out.push(0);
            out.extend_from_slice(b"HTTP_");
            out.extend(name.bytes().map(|b| {
                if b == b'-' {
                    b'_'
                } else {
                    b.to_ascii_uppercase()
                }
            }));
            out.push(0);
        }
        out.extend_from_slice(value);
        let sep: &[u8] = if name.eq_ignore_ascii_case("cookie") {
            b"; "
        } else {
            b", "
        };
        for (_, more) in all()
            .skip(i + 1)
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            out.extend_from_slice(sep);
            out.extend_from_slice(more);
        }
    }
}

/// Appends `raw` with `%XX` escapes decoded (invalid escapes are kept as written).
pub fn percent_decode(out: &mut Vec<u8>, raw: &[u8]) -> Result<(), BadRequest> {
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        if b == b'%' && i + 2 < raw.len() {
            if let (Some(h), Some(l)) = (hex(raw[i + 1]), hex(raw[i + 2])) {
                let byte = h << 4 | l;
                if byte == 0 {
                    return Err(BadRequest::NulInPath);
                }
                out.push(byte);
                i += 3;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    Ok(())
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// A response head as the child sent it: `200 OK\0Name\0Value\0...`.
#[derive(Debug, PartialEq, Eq)]
pub struct Head {
    pub status: u16,
    pub headers: Vec<(HeaderText, HeaderText)>,
}

/// Why a response head is refused (the worker answers 500 instead).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadHead(pub &'static str);

/// Parses a head. Header names must be tokens and values must not hold CR/LF, so an app
/// cannot inject headers or split the response. `Content-Length` is dropped: the
/// runtime frames the body itself.
pub fn parse_head(head: &[u8]) -> Result<Head, BadHead> {
    let mut parts = head.split(|&b| b == 0);
    let status_line = parts.next().unwrap_or_default();
    let status = parse_status(status_line)?;
    let mut headers = Vec::new();
    while let Some(name) = parts.next() {
        let value = parts
            .next()
            .ok_or(BadHead("a header name without a value"))?;
        if name.is_empty() || !name.iter().all(|&b| is_token(b)) {
            return Err(BadHead("a header name that is not an HTTP token"));
        }
        if value.iter().any(|&b| b == b'\r' || b == b'\n') {
            return Err(BadHead("a header value with CR or LF"));
        }
        if name.eq_ignore_ascii_case(b"content-length") {
            continue;
        }
        headers.push((text(name), text(value)));
    }
    Ok(Head { status, headers })
}

fn parse_status(line: &[u8]) -> Result<u16, BadHead> {
    let code = line
        .get(..3)
        .ok_or(BadHead("a status shorter than 3 digits"))?;
    if !code.iter().all(u8::is_ascii_digit) || line.get(3).is_some_and(|&b| b != b' ') {
        return Err(BadHead("a status that is not 'NNN Reason'"));
    }
    let n = code
        .iter()
        .fold(0u16, |acc, d| acc * 10 + u16::from(d - b'0'));
    if !(100..=999).contains(&n) {
        return Err(BadHead("a status outside 100-999"));
    }
    Ok(n)
}

fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Header text: common names and values cost no allocation. Latin-1 bytes that are not
/// UTF-8 are carried as the characters they stand for (the core's headers are `str`).
fn text(b: &[u8]) -> HeaderText {
    const COMMON: &[&str] = &[
        "Content-Type",
        "text/plain",
        "text/html",
        "text/html; charset=utf-8",
        "text/plain; charset=utf-8",
        "application/json",
        "Cache-Control",
        "Vary",
        "X-Frame-Options",
        "DENY",
        "X-Content-Type-Options",
        "nosniff",
        "Referrer-Policy",
        "same-origin",
        "Cross-Origin-Opener-Policy",
        "Location",
        "Set-Cookie",
    ];
    if let Some(s) = COMMON.iter().find(|s| s.as_bytes() == b) {
        return Cow::Borrowed(s);
    }
    match std::str::from_utf8(b) {
        Ok(s) => Cow::Owned(s.to_owned()),
        Err(_) => Cow::Owned(b.iter().map(|&c| char::from(c)).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::Version;

    fn environ(
        method: &str,
        target: &str,
        headers: &[httparse::Header<'_>],
    ) -> Vec<(String, String)> {
        let mut body = std::io::empty();
        let remote = "127.0.0.1:5555".parse().ok();
        let req = Request::new(method, target, Version::Http11, headers, remote, &mut body);
        let mut out = Vec::new();
        let defaults = ServerDefaults {
            name: "localhost".into(),
            port: "8000".into(),
        };
        encode_request(&mut out, &req, false, &defaults).expect("encodes");
        let (k, len) = parse_header(&out).expect("header");
        assert_eq!(k, kind::REQUEST);
        assert_eq!(len, out.len() - HEADER_LEN);
        let payload = &out[HEADER_LEN + 1..];
        let text: String = payload.iter().map(|&b| char::from(b)).collect();
        let items: Vec<&str> = text.split('\0').skip(1).collect();
        items
            .chunks(2)
            .map(|kv| (kv[0].to_string(), kv[1].to_string()))
            .collect()
    }

    fn get<'a>(env: &'a [(String, String)], k: &str) -> Option<&'a str> {
        env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
    }

    #[test]
    fn environ_has_the_required_keys() {
        let hs = [
            httparse::Header {
                name: "Host",
                value: b"example.com:8080",
            },
            httparse::Header {
                name: "Content-Type",
                value: b"text/plain",
            },
            httparse::Header {
                name: "X-Thing",
                value: b"a",
            },
            httparse::Header {
                name: "x-thing",
                value: b"b",
            },
            httparse::Header {
                name: "X_Evil",
                value: b"c",
            },
        ];
        let env = environ("GET", "/a%20b/%E9?x=%20", &hs);
        assert_eq!(get(&env, "REQUEST_METHOD"), Some("GET"));
        assert_eq!(get(&env, "SCRIPT_NAME"), Some(""));
        assert_eq!(get(&env, "PATH_INFO"), Some("/a b/\u{e9}"));
        assert_eq!(get(&env, "QUERY_STRING"), Some("x=%20"));
        assert_eq!(get(&env, "SERVER_NAME"), Some("example.com"));
        assert_eq!(get(&env, "SERVER_PORT"), Some("8080"));
        assert_eq!(get(&env, "SERVER_PROTOCOL"), Some("HTTP/1.1"));
        assert_eq!(get(&env, "REMOTE_ADDR"), Some("127.0.0.1"));
        assert_eq!(get(&env, "REMOTE_PORT"), Some("5555"));
        assert_eq!(get(&env, "CONTENT_TYPE"), Some("text/plain"));
        assert_eq!(get(&env, "HTTP_X_THING"), Some("a, b"));
        assert_eq!(get(&env, "HTTP_HOST"), Some("example.com:8080"));
        assert_eq!(get(&env, "HTTP_X_EVIL"), None);
        assert_eq!(env.iter().filter(|(k, _)| k == "HTTP_X_THING").count(), 1);
    }

    #[test]
    fn server_name_falls_back_to_the_listener() {
        let env = environ("GET", "http://h/x", &[]);
        assert_eq!(get(&env, "SERVER_NAME"), Some("localhost"));
        assert_eq!(get(&env, "SERVER_PORT"), Some("8000"));
        assert_eq!(get(&env, "PATH_INFO"), Some("/x"));
        assert_eq!(split_host(b"[::1]:9"), (&b"[::1]"[..], &b"9"[..]));
        assert_eq!(split_host(b"[::1]"), (&b"[::1]"[..], &b""[..]));
    }

    #[test]
    fn percent_decoding_refuses_nul_and_keeps_bad_escapes() {
        let mut out = Vec::new();
        assert_eq!(
            percent_decode(&mut out, b"/%00"),
            Err(BadRequest::NulInPath)
        );
        out.clear();
        percent_decode(&mut out, b"/%zz%4").expect("ok");
        assert_eq!(out, b"/%zz%4");
    }

    #[test]
    fn heads_parse_and_refuse_injection() {
        let h = parse_head(b"404 Not Found\0Content-Type\0text/plain\0Content-Length\x003\0X-A\0b")
            .expect("ok");
        assert_eq!(h.status, 404);
        assert_eq!(h.headers.len(), 2);
        assert_eq!(h.headers[1].1, "b");
        assert!(parse_head(b"200 OK\0X\0a\r\nEvil: 1").is_err());
        assert!(parse_head(b"200 OK\0Bad Name\0v").is_err());
        assert!(parse_head(b"20 OK").is_err());
        assert!(parse_head(b"200 OK\0X").is_err());
        assert_eq!(parse_head(b"204").map(|h| h.status), Ok(204));
    }
}
