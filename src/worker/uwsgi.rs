//! The uwsgi binary protocol as nginx's `uwsgi_pass` speaks it, without I/O.
//!
//! A request is a 4-byte header (modifier1: u8, datasize: u16 little-endian, modifier2:
//! u8), then `datasize` bytes of variables, each a u16-LE-length-prefixed key and value
//! (CGI style: `REQUEST_METHOD`, `REQUEST_URI`, `HTTP_HOST`, ... from `uwsgi_params`),
//! then the body, exactly `CONTENT_LENGTH` bytes. The response is a plain HTTP response
//! and the connection closes after it (nginx does not keep uwsgi upstreams alive).
//!
//! This module turns the variables back into what the HTTP parser produces (method,
//! target, version, headers), so the runtime feeds both protocols into the same request
//! path and every app kind works behind nginx.

use std::net::SocketAddr;

use super::http::{Framing, HttpError};
use crate::app::Version;

/// Bytes of the packet header.
pub const HEADER_LEN: usize = 4;

/// A parsed uwsgi request head: the variables, borrowed from the connection buffer.
#[derive(Debug)]
pub struct Packet<'b> {
    /// Header plus variables: where the body starts.
    pub head_len: usize,
    pub vars: Vec<(&'b str, &'b str)>,
}

impl<'b> Packet<'b> {
    /// The value of a variable.
    pub fn var(&self, key: &str) -> Option<&'b str> {
        self.vars.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }

    /// `REQUEST_METHOD` (GET when absent, as CGI).
    pub fn method(&self) -> &'b str {
        self.var("REQUEST_METHOD").unwrap_or("GET")
    }

    /// The request target: `REQUEST_URI` as the client sent it, else rebuilt from
    /// `PATH_INFO` and `QUERY_STRING`.
    pub fn target(&self) -> String {
        if let Some(uri) = self.var("REQUEST_URI").filter(|u| !u.is_empty()) {
            return uri.to_string();
        }
        let path = self
            .var("PATH_INFO")
            .filter(|p| !p.is_empty())
            .unwrap_or("/");
        match self.var("QUERY_STRING").filter(|q| !q.is_empty()) {
            Some(q) => format!("{path}?{q}"),
            None => path.to_string(),
        }
    }

    /// `SERVER_PROTOCOL` (HTTP/1.1 when absent or unknown).
    pub fn version(&self) -> Version {
        match self.var("SERVER_PROTOCOL") {
            Some("HTTP/1.0") => Version::Http10,
            _ => Version::Http11,
        }
    }

    /// The client's address (`REMOTE_ADDR`, `REMOTE_PORT`), when it parses.
    pub fn remote(&self) -> Option<SocketAddr> {
        let ip = self.var("REMOTE_ADDR")?.parse().ok()?;
        let port = self
            .var("REMOTE_PORT")
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        Some(SocketAddr::new(ip, port))
    }

    /// The request headers rebuilt from `HTTP_*`, `CONTENT_TYPE` and `CONTENT_LENGTH`,
    /// with HTTP's spelling (`HTTP_USER_AGENT` -> `User-Agent`).
    pub fn headers(&self) -> Vec<(String, &'b str)> {
        self.vars
            .iter()
            .filter_map(|(k, v)| header_name(k).map(|n| (n, *v)))
            .collect()
    }

    /// How the body is framed: `CONTENT_LENGTH` bytes, checked against `limit-post`.
    pub fn framing(&self, max_body: Option<u64>) -> Result<Framing, HttpError> {
        let len = match self.var("CONTENT_LENGTH").map(str::trim) {
            None | Some("") => 0,
            Some(v) if v.bytes().all(|b| b.is_ascii_digit()) => v
                .parse::<u64>()
                .map_err(|_| HttpError::BadRequest("invalid CONTENT_LENGTH"))?,
            Some(_) => return Err(HttpError::BadRequest("invalid CONTENT_LENGTH")),
        };
        if max_body.is_some_and(|max| len > max) {
            return Err(HttpError::PayloadTooLarge);
        }
        Ok(if len == 0 {
            Framing::None
        } else {
            Framing::Length(len)
        })
    }
}

/// Parses a packet head from `buf`: `Ok(None)` until the variables are complete. The
/// variables block may not exceed `max_vars` bytes (`buffer-size`, as in uWSGI).
pub fn parse(buf: &[u8], max_vars: usize) -> Result<Option<Packet<'_>>, HttpError> {
    if buf.len() < HEADER_LEN {
        return Ok(None);
    }
    let size = usize::from(u16::from_le_bytes([buf[1], buf[2]]));
    if size > max_vars {
        return Err(HttpError::HeadersTooLarge);
    }
    let head_len = HEADER_LEN + size;
    if buf.len() < head_len {
        return Ok(None);
    }
    let vars = parse_vars(&buf[HEADER_LEN..head_len])?;
    Ok(Some(Packet { head_len, vars }))
}

fn parse_vars(mut block: &[u8]) -> Result<Vec<(&str, &str)>, HttpError> {
    let mut vars = Vec::with_capacity(32);
    while !block.is_empty() {
        let (key, rest) = take_string(block)?;
        let (value, rest) = take_string(rest)?;
        vars.push((key, value));
        block = rest;
    }
    Ok(vars)
}

/// One u16-LE-length-prefixed string (UTF-8, as HTTP heads in practice are ASCII).
fn take_string(b: &[u8]) -> Result<(&str, &[u8]), HttpError> {
    const BAD: HttpError = HttpError::BadRequest("malformed uwsgi variables");
    if b.len() < 2 {
        return Err(BAD);
    }
    let len = usize::from(u16::from_le_bytes([b[0], b[1]]));
    let end = 2 + len;
    if b.len() < end {
        return Err(BAD);
    }
    let s = std::str::from_utf8(&b[2..end]).map_err(|_| BAD)?;
    Ok((s, &b[end..]))
}

/// `HTTP_X_FORWARDED_FOR` -> `X-Forwarded-For`; `CONTENT_TYPE`/`CONTENT_LENGTH` too.
fn header_name(var: &str) -> Option<String> {
    let raw = match var {
        "CONTENT_TYPE" | "CONTENT_LENGTH" => var,
        _ => var.strip_prefix("HTTP_")?,
    };
    if raw.is_empty() {
        return None;
    }
    let mut out = String::with_capacity(raw.len());
    for (i, word) in raw.split('_').enumerate() {
        if i > 0 {
            out.push('-');
        }
        let mut chars = word.chars();
        if let Some(c) = chars.next() {
            out.push(c.to_ascii_uppercase());
            out.extend(chars.map(|c| c.to_ascii_lowercase()));
        }
    }
    Some(out)
}

/// Encodes a packet (for tests and tools that talk to a uwsgi socket).
pub fn encode(vars: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut block = Vec::new();
    for (k, v) in vars {
        for s in [k, v] {
            block.extend_from_slice(&(s.len() as u16).to_le_bytes());
            block.extend_from_slice(s.as_bytes());
        }
    }
    let mut out = vec![0u8];
    out.extend_from_slice(&(block.len() as u16).to_le_bytes());
    out.push(0);
    out.extend_from_slice(&block);
    out.extend_from_slice(body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nginx_like() -> Vec<u8> {
        encode(
            &[
                ("QUERY_STRING", "a=1"),
                ("REQUEST_METHOD", "POST"),
                ("CONTENT_TYPE", "text/plain"),
                ("CONTENT_LENGTH", "5"),
                ("REQUEST_URI", "/echo?a=1"),
                ("PATH_INFO", "/echo"),
                ("SERVER_PROTOCOL", "HTTP/1.1"),
                ("REMOTE_ADDR", "127.0.0.1"),
                ("REMOTE_PORT", "5555"),
                ("HTTP_HOST", "example.org"),
                ("HTTP_X_FORWARDED_FOR", "10.0.0.1"),
            ],
            b"hello",
        )
    }

    #[test]
    fn parses_what_nginx_sends() {
        let buf = nginx_like();
        let p = parse(&buf, 4096).unwrap().unwrap();
        assert_eq!(&buf[p.head_len..], b"hello");
        assert_eq!(p.method(), "POST");
        assert_eq!(p.target(), "/echo?a=1");
        assert_eq!(p.version(), Version::Http11);
        assert_eq!(p.remote(), Some("127.0.0.1:5555".parse().unwrap()));
        assert_eq!(p.framing(None), Ok(Framing::Length(5)));
        assert_eq!(p.framing(Some(4)), Err(HttpError::PayloadTooLarge));
        let h = p.headers();
        assert!(h.contains(&("Host".to_string(), "example.org")));
        assert!(h.contains(&("X-Forwarded-For".to_string(), "10.0.0.1")));
        assert!(h.contains(&("Content-Length".to_string(), "5")));
    }

    #[test]
    fn waits_for_a_whole_head_and_rejects_bad_ones() {
        let buf = nginx_like();
        for cut in 0..HEADER_LEN + 10 {
            assert!(parse(&buf[..cut], 4096).unwrap().is_none(), "cut at {cut}");
        }
        assert_eq!(parse(&buf, 16).unwrap_err(), HttpError::HeadersTooLarge);
        let mut bad = encode(&[("A", "b")], b"");
        bad[HEADER_LEN] = 200; // key length beyond the block
        assert!(parse(&bad, 4096).is_err());
        let p = encode(&[("PATH_INFO", "/x"), ("QUERY_STRING", "")], b"");
        assert_eq!(parse(&p, 4096).unwrap().unwrap().target(), "/x");
        let p = encode(&[("CONTENT_LENGTH", "-1")], b"");
        assert!(parse(&p, 4096).unwrap().unwrap().framing(None).is_err());
    }
}
