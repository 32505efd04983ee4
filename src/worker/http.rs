//! HTTP/1.1 message rules, without I/O: parsing and validating a request head (httparse
//! does the tokenising; the framing rules that prevent request smuggling live here), a
//! strict incremental chunked decoder, and response-head serialisation.

use crate::app::Version;

/// Most headers accepted in one request head.
pub const MAX_HEADERS: usize = 64;

/// Why a request cannot be served: each maps to a status, and the connection is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpError {
    /// Malformed request or ambiguous framing (400).
    BadRequest(&'static str),
    /// The request line alone exceeds the head limit (414).
    UriTooLong,
    /// The head exceeds the limit or has too many fields (431).
    HeadersTooLarge,
    /// The body exceeds `limit-post` (413).
    PayloadTooLarge,
    /// A transfer coding molt does not implement (501).
    NotImplemented,
    /// An HTTP version other than 1.0/1.1 (505).
    VersionNotSupported,
}

impl HttpError {
    /// The status code sent for this error.
    pub fn status(self) -> u16 {
        match self {
            HttpError::BadRequest(_) => 400,
            HttpError::UriTooLong => 414,
            HttpError::HeadersTooLarge => 431,
            HttpError::PayloadTooLarge => 413,
            HttpError::NotImplemented => 501,
            HttpError::VersionNotSupported => 505,
        }
    }

    /// A short reason for the log.
    pub fn reason(self) -> &'static str {
        match self {
            HttpError::BadRequest(why) => why,
            HttpError::UriTooLong => "request line too long",
            HttpError::HeadersTooLarge => "request head too large",
            HttpError::PayloadTooLarge => "request body too large",
            HttpError::NotImplemented => "unsupported transfer coding",
            HttpError::VersionNotSupported => "unsupported HTTP version",
        }
    }
}

/// How the request body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body.
    None,
    /// Exactly this many bytes.
    Length(u64),
    /// Chunked transfer coding.
    Chunked,
}

/// What the runtime needs to know about a parsed head, beyond httparse's fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadInfo {
    /// Bytes of the head, including the final empty line.
    pub head_len: usize,
    pub version: Version,
    pub framing: Framing,
    /// Whether the connection may stay open after this request.
    pub keep_alive: bool,
    /// The client sent `Expect: 100-continue`.
    pub expect_continue: bool,
}

/// Limits applied while parsing.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest head in bytes (`buffer-size`).
    pub max_head: usize,
    /// Largest body in bytes (`limit-post`).
    pub max_body: Option<u64>,
}

/// Parses a head from `buf`. `Ok(None)` means more bytes are needed.
pub fn parse_head<'b>(
    buf: &'b [u8],
    headers: &'b mut [httparse::Header<'b>],
    limits: Limits,
) -> Result<Option<(httparse::Request<'b, 'b>, HeadInfo)>, HttpError> {
    let mut req = httparse::Request::new(headers);
    match req.parse(buf) {
        Ok(httparse::Status::Partial) => {
            check_partial_size(buf, limits)?;
            Ok(None)
        }
        Ok(httparse::Status::Complete(head_len)) => {
            if head_len > limits.max_head {
                return Err(HttpError::HeadersTooLarge);
            }
            let info = head_info(&req, head_len, limits)?;
            Ok(Some((req, info)))
        }
        Err(httparse::Error::TooManyHeaders) => Err(HttpError::HeadersTooLarge),
        Err(httparse::Error::Version) => Err(HttpError::VersionNotSupported),
        Err(_) => Err(HttpError::BadRequest("malformed request head")),
    }
}

fn check_partial_size(buf: &[u8], limits: Limits) -> Result<(), HttpError> {
    if buf.len() <= limits.max_head {
        return Ok(());
    }
    let line_ends = buf[..limits.max_head].contains(&b'\n');
    Err(if line_ends {
        HttpError::HeadersTooLarge
    } else {
        HttpError::UriTooLong
    })
}

fn head_info(
    req: &httparse::Request<'_, '_>,
    head_len: usize,
    limits: Limits,
) -> Result<HeadInfo, HttpError> {
    let version = match req.version {
        Some(0) => Version::Http10,
        Some(1) => Version::Http11,
        _ => return Err(HttpError::VersionNotSupported),
    };
    let method = req.method.unwrap_or("");
    check_target(method, req.path.unwrap_or(""))?;
    let fields = Fields::scan(req.headers)?;
    if version == Version::Http11 && fields.hosts == 0 {
        return Err(HttpError::BadRequest("HTTP/1.1 request without Host"));
    }
    let framing = framing(&fields, version, limits)?;
    let keep_alive = match version {
        Version::Http11 => !fields.conn_close,
        Version::Http10 => fields.conn_keep_alive && !fields.conn_close,
    };
    Ok(HeadInfo {
        head_len,
        version,
        framing,
        keep_alive,
        expect_continue: fields.expect_continue,
    })
}

fn check_target(method: &str, target: &str) -> Result<(), HttpError> {
    let ok = target.starts_with('/')
        || (target == "*" && method == "OPTIONS")
        || target.starts_with("http://")
        || target.starts_with("https://");
    if ok {
        Ok(())
    } else {
        Err(HttpError::BadRequest("invalid request target"))
    }
}

/// The header fields that decide framing and connection handling.
#[derive(Default)]
struct Fields<'a> {
    content_length: Option<&'a [u8]>,
    transfer_encoding: Option<&'a [u8]>,
    hosts: usize,
    conn_close: bool,
    conn_keep_alive: bool,
    expect_continue: bool,
}

impl<'a> Fields<'a> {
    fn scan(headers: &[httparse::Header<'a>]) -> Result<Self, HttpError> {
        let mut f = Fields::default();
        for h in headers {
            let name = h.name;
            if name.eq_ignore_ascii_case("content-length") {
                if f.content_length.is_some_and(|v| v != h.value) {
                    return Err(HttpError::BadRequest("conflicting Content-Length"));
                }
                f.content_length = Some(h.value);
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                if f.transfer_encoding.is_some() {
                    return Err(HttpError::BadRequest("repeated Transfer-Encoding"));
                }
                f.transfer_encoding = Some(h.value);
            } else if name.eq_ignore_ascii_case("host") {
                f.hosts += 1;
                if f.hosts > 1 {
                    return Err(HttpError::BadRequest("repeated Host"));
                }
            } else if name.eq_ignore_ascii_case("connection") {
                for token in h.value.split(|&b| b == b',') {
                    let t = trim(token);
                    f.conn_close |= t.eq_ignore_ascii_case(b"close");
                    f.conn_keep_alive |= t.eq_ignore_ascii_case(b"keep-alive");
                }
            } else if name.eq_ignore_ascii_case("expect") {
                f.expect_continue = trim(h.value).eq_ignore_ascii_case(b"100-continue");
            }
        }
        Ok(f)
    }
}

fn framing(f: &Fields<'_>, version: Version, limits: Limits) -> Result<Framing, HttpError> {
    match (f.transfer_encoding, f.content_length) {
        (Some(_), Some(_)) => Err(HttpError::BadRequest(
            "both Content-Length and Transfer-Encoding",
        )),
        (Some(_), None) if version == Version::Http10 => {
            Err(HttpError::BadRequest("Transfer-Encoding on HTTP/1.0"))
        }
        (Some(te), None) => transfer_coding(te),
        (None, Some(cl)) => {
            let n = parse_content_length(cl)?;
            if limits.max_body.is_some_and(|max| n > max) {
                return Err(HttpError::PayloadTooLarge);
            }
            Ok(if n == 0 {
                Framing::None
            } else {
                Framing::Length(n)
            })
        }
        (None, None) => Ok(Framing::None),
    }
}

/// Only `chunked` alone is accepted: chunked not last is a framing error (RFC 9112 6.3),
/// any other coding is not implemented.
fn transfer_coding(te: &[u8]) -> Result<Framing, HttpError> {
    let codings: Vec<&[u8]> = te.split(|&b| b == b',').map(trim).collect();
    let chunked_at = codings
        .iter()
        .position(|c| c.eq_ignore_ascii_case(b"chunked"));
    match chunked_at {
        Some(i) if i == codings.len() - 1 && codings.len() == 1 => Ok(Framing::Chunked),
        Some(i) if i != codings.len() - 1 => Err(HttpError::BadRequest(
            "chunked is not the final transfer coding",
        )),
        Some(_) => Err(HttpError::NotImplemented),
        None if codings.iter().all(|c| is_token(c)) => {
            Err(HttpError::BadRequest("Transfer-Encoding without chunked"))
        }
        None => Err(HttpError::BadRequest("malformed Transfer-Encoding")),
    }
}

/// Digits only: no sign, no spaces, no list form, no overflow.
fn parse_content_length(v: &[u8]) -> Result<u64, HttpError> {
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return Err(HttpError::BadRequest("invalid Content-Length"));
    }
    Ok(v.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0')))
}

fn trim(v: &[u8]) -> &[u8] {
    let start = v
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(v.len());
    let end = v
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &v[start..end]
}

fn is_token(v: &[u8]) -> bool {
    !v.is_empty()
        && v.iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// A strict, incremental decoder for the chunked transfer coding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkedDecoder {
    state: ChunkState,
    size: u64,
    size_digits: u8,
    trailer_bytes: usize,
    line_empty: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    Size,
    Ext,
    SizeLf,
    Data,
    DataCr,
    DataLf,
    Trailer,
    TrailerLf,
    Done,
}

/// Largest trailer section accepted.
const MAX_TRAILER: usize = 8192;

impl Default for ChunkedDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl ChunkedDecoder {
    pub fn new() -> Self {
        ChunkedDecoder {
            state: ChunkState::Size,
            size: 0,
            size_digits: 0,
            trailer_bytes: 0,
            line_empty: true,
        }
    }

    /// True once the last chunk and the trailer section have been read.
    pub fn is_done(&self) -> bool {
        self.state == ChunkState::Done
    }

    /// Decodes from `input` into `out`; returns (bytes consumed, bytes produced). Stops
    /// when `out` is full, `input` is exhausted or the body is done.
    pub fn decode(&mut self, input: &[u8], out: &mut [u8]) -> Result<(usize, usize), HttpError> {
        let (mut i, mut o) = (0, 0);
        while i < input.len() && self.state != ChunkState::Done {
            if self.state == ChunkState::Data {
                if o == out.len() {
                    break;
                }
                let n = (input.len() - i).min(out.len() - o).min(self.size as usize);
                out[o..o + n].copy_from_slice(&input[i..i + n]);
                (i, o) = (i + n, o + n);
                self.size -= n as u64;
                if self.size == 0 {
                    self.state = ChunkState::DataCr;
                }
                continue;
            }
            self.step(input[i])?;
            i += 1;
        }
        Ok((i, o))
    }

    fn step(&mut self, b: u8) -> Result<(), HttpError> {
        use ChunkState::*;
        let bad = |why| Err(HttpError::BadRequest(why));
        self.state = match (self.state, b) {
            (Size, b) if b.is_ascii_hexdigit() => {
                if self.size_digits >= 15 {
                    return bad("chunk size too large");
                }
                self.size = self.size * 16 + u64::from((b as char).to_digit(16).unwrap_or(0));
                self.size_digits += 1;
                Size
            }
            (Size, b';') if self.size_digits > 0 => Ext,
            (Size, b'\r') if self.size_digits > 0 => SizeLf,
            (Size, _) => return bad("invalid chunk size"),
            (Ext, b'\r') => SizeLf,
            (Ext, b'\n') => return bad("bare LF in chunk extension"),
            (Ext, _) => Ext,
            (SizeLf, b'\n') if self.size == 0 => {
                self.line_empty = true;
                Trailer
            }
            (SizeLf, b'\n') => Data,
            (SizeLf, _) => return bad("chunk size line not ended by CRLF"),
            (DataCr, b'\r') => DataLf,
            (DataLf, b'\n') => {
                self.size_digits = 0;
                Size
            }
            (DataCr | DataLf, _) => return bad("chunk data not followed by CRLF"),
            (Trailer, b'\r') => TrailerLf,
            (Trailer, b'\n') => return bad("bare LF in trailer"),
            (Trailer, _) => {
                self.trailer_bytes += 1;
                self.line_empty = false;
                if self.trailer_bytes > MAX_TRAILER {
                    return Err(HttpError::HeadersTooLarge);
                }
                Trailer
            }
            (TrailerLf, b'\n') if self.line_empty => Done,
            (TrailerLf, b'\n') => {
                self.line_empty = true;
                Trailer
            }
            (TrailerLf, _) => return bad("trailer line not ended by CRLF"),
            (Data | Done, _) => self.state,
        };
        Ok(())
    }
}

/// The reason phrase for a status code.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        414 => "URI Too Long",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

/// How the response body will be delimited on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    Length(u64),
    Chunked,
    /// Delimited by closing the connection (HTTP/1.0 streams).
    Close,
}

/// Writes a status line and headers. `app_headers` are written as given, except that
/// framing and connection headers are owned by the runtime and skipped.
pub fn write_head<'h>(
    out: &mut Vec<u8>,
    version: Version,
    status: u16,
    app_headers: impl Iterator<Item = (&'h str, &'h str)>,
    framing: BodyFraming,
    keep_alive: bool,
    date: &[u8],
) {
    out.extend_from_slice(version.as_str().as_bytes());
    out.push(b' ');
    push_u64(out, u64::from(status));
    out.push(b' ');
    out.extend_from_slice(reason_phrase(status).as_bytes());
    out.extend_from_slice(b"\r\nServer: molt\r\nDate: ");
    out.extend_from_slice(date);
    out.extend_from_slice(b"\r\n");
    for (name, value) in app_headers {
        if is_runtime_header(name) {
            continue;
        }
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    match framing {
        BodyFraming::Length(n) => {
            out.extend_from_slice(b"Content-Length: ");
            push_u64(out, n);
            out.extend_from_slice(b"\r\n");
        }
        BodyFraming::Chunked => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
        BodyFraming::Close => {}
    }
    match (keep_alive, version) {
        (false, _) => out.extend_from_slice(b"Connection: close\r\n"),
        (true, Version::Http10) => out.extend_from_slice(b"Connection: keep-alive\r\n"),
        (true, Version::Http11) => {}
    }
    out.extend_from_slice(b"\r\n");
}

/// Headers the runtime writes itself; an app's copies are dropped.
pub fn is_runtime_header(name: &str) -> bool {
    [
        "content-length",
        "transfer-encoding",
        "connection",
        "date",
        "server",
        "keep-alive",
    ]
    .iter()
    .any(|h| name.eq_ignore_ascii_case(h))
}

/// Appends the decimal digits of `n`.
pub fn push_u64(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(decimal(n, &mut [0u8; 20]));
}

/// The decimal digits of `n`, written into `buf` without allocating (so it is also safe
/// between fork and exec).
pub fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &buf[i..]
}

/// Formats Unix seconds as an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
pub fn http_date(unix_secs: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = unix_secs / 86_400;
    let secs = unix_secs % 86_400;
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} GMT",
        DAYS[(days % 7) as usize],
        d,
        MONTHS[(m - 1) as usize],
        y,
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Howard Hinnant's days-to-civil algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests;
