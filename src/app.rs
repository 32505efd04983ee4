//! The application API: what an app implements to be served by molt's worker runtime.
//!
//! The shape follows WSGI: one call per request, a status, headers and a body out. The
//! runtime owns everything else (sockets, parsing, keep-alive, limits, accounting), so an
//! app never sees a connection and cannot break the recycling contract.

use std::borrow::Cow;
use std::io::{self, Read};
use std::net::SocketAddr;

/// An application served by molt. One instance lives in each worker process, created
/// after fork, so per-worker state (caches, leaks) is really per worker.
pub trait App: Send + Sync + 'static {
    /// Maps one request to a response. Called from one of the worker's threads.
    fn call(&self, req: &mut Request<'_>) -> Response;

    /// Serves several requests that arrived together on different connections, none
    /// with a body, calling `respond` with each response in order (the runtime writes it
    /// to its client before `respond` returns). An app with a per-call fixed cost (a
    /// round trip to another process) overrides this to pay it once per batch; the
    /// default serves them one by one.
    fn call_many(&self, reqs: &mut [Request<'_>], respond: &mut dyn FnMut(usize, Response)) {
        for (i, req) in reqs.iter_mut().enumerate() {
            respond(i, self.call(req));
        }
    }

    /// Whether [`App::call_many`] is worth gathering requests for.
    fn batches(&self) -> bool {
        false
    }

    /// Processes this app runs on the worker's behalf (a Python child): their memory
    /// counts as the worker's in its own reload-on-rss check. Asked once, after load.
    fn helper_pids(&self) -> Vec<i32> {
        Vec::new()
    }
}

/// The HTTP version of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    Http10,
    Http11,
}

impl Version {
    /// The protocol string, e.g. `HTTP/1.1`.
    pub fn as_str(self) -> &'static str {
        match self {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
        }
    }
}

/// One request, borrowed from the connection's buffer for the duration of the call.
pub struct Request<'a> {
    method: &'a str,
    target: &'a str,
    version: Version,
    headers: &'a [httparse::Header<'a>],
    remote: Option<SocketAddr>,
    body: &'a mut dyn Read,
}

impl<'a> Request<'a> {
    /// Builds a request; used by the runtime and by tests of apps.
    pub fn new(
        method: &'a str,
        target: &'a str,
        version: Version,
        headers: &'a [httparse::Header<'a>],
        remote: Option<SocketAddr>,
        body: &'a mut dyn Read,
    ) -> Self {
        Request {
            method,
            target,
            version,
            headers,
            remote,
            body,
        }
    }

    /// The method, e.g. `GET`.
    pub fn method(&self) -> &str {
        self.method
    }

    /// The raw request target, e.g. `/leak?kb=10`.
    pub fn target(&self) -> &str {
        self.target
    }

    /// The path part of the target (before `?`), still percent-encoded.
    pub fn path(&self) -> &str {
        self.target.split_once('?').map_or(self.target, |(p, _)| p)
    }

    /// The query string (after `?`), empty when there is none.
    pub fn query(&self) -> &str {
        self.target.split_once('?').map_or("", |(_, q)| q)
    }

    /// The value of the query parameter `name`, if present.
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query().split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k == name).then_some(v)
        })
    }

    /// The HTTP version.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    }

    /// Every header in the order received.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.headers.iter().map(|h| (h.name, h.value))
    }

    /// The peer's address for TCP listeners.
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        self.remote
    }

    /// The request body, streamed from the connection (de-chunked when chunked).
    pub fn body(&mut self) -> &mut dyn Read {
        self.body
    }

    /// Reads the whole body into memory.
    pub fn read_body(&mut self) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        self.body.read_to_end(&mut out)?;
        Ok(out)
    }
}

/// A response body.
pub enum Body {
    /// No body.
    Empty,
    /// A body known in full (sent with Content-Length).
    Bytes(Cow<'static, [u8]>),
    /// A streamed body: sent chunked on HTTP/1.1 unless the app set Content-Length.
    Stream(Box<dyn Iterator<Item = io::Result<Vec<u8>>> + Send>),
}

/// A header name or value: static strings cost no allocation.
pub type HeaderText = Cow<'static, str>;

/// What an app returns.
pub struct Response {
    /// Status code, e.g. 200.
    pub status: u16,
    /// Response headers. The runtime adds Content-Length/Transfer-Encoding, Connection and Date.
    pub headers: Vec<(HeaderText, HeaderText)>,
    /// The body.
    pub body: Body,
}

impl Response {
    /// A response with a body known in full.
    pub fn new(
        status: u16,
        content_type: &'static str,
        body: impl Into<Cow<'static, [u8]>>,
    ) -> Self {
        Response {
            status,
            headers: vec![(Cow::Borrowed("Content-Type"), Cow::Borrowed(content_type))],
            body: Body::Bytes(body.into()),
        }
    }

    /// A `text/plain` response.
    pub fn text(status: u16, body: impl Into<Cow<'static, [u8]>>) -> Self {
        Response::new(status, "text/plain", body)
    }

    /// Adds a header.
    pub fn with_header(
        mut self,
        name: impl Into<HeaderText>,
        value: impl Into<HeaderText>,
    ) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}
