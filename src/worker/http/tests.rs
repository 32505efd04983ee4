//! Parser tests modelled on gunicorn's invalid-request corpus (tests/requests/invalid)
//! and the smuggling CVEs: each bad input maps to one status, and the connection closes.

use super::*;

const LIMITS: Limits = Limits {
    max_head: 4096,
    max_body: None,
};

fn parse(raw: &str) -> Result<Option<HeadInfo>, HttpError> {
    let mut h = [httparse::EMPTY_HEADER; MAX_HEADERS];
    parse_head(raw.as_bytes(), &mut h, LIMITS).map(|o| o.map(|(_, info)| info))
}

fn status(raw: &str) -> u16 {
    match parse(raw) {
        Ok(_) => 200,
        Err(e) => e.status(),
    }
}

#[test]
fn good_requests() {
    let info = parse("GET /a?b=1 HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap()
        .unwrap();
    assert_eq!(info.framing, Framing::None);
    assert!(info.keep_alive);
    let info = parse("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
        .unwrap()
        .unwrap();
    assert_eq!(info.framing, Framing::Length(5));
    let info = parse("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        .unwrap()
        .unwrap();
    assert_eq!(info.framing, Framing::Chunked);
    let info = parse("GET / HTTP/1.0\r\n\r\n").unwrap().unwrap();
    assert!(!info.keep_alive, "HTTP/1.0 closes by default");
    let info = parse("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        .unwrap()
        .unwrap();
    assert!(info.keep_alive);
    let info = parse("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap()
        .unwrap();
    assert!(!info.keep_alive);
    let info = parse("OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap()
        .unwrap();
    assert_eq!(info.version, Version::Http11);
    let info =
        parse("PUT / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n")
            .unwrap()
            .unwrap();
    assert!(info.expect_continue);
}

#[test]
fn partial_heads_wait_for_more() {
    assert_eq!(parse("GET / HTTP/1.1\r\nHost:"), Ok(None));
    assert_eq!(parse("GE"), Ok(None));
}

#[test]
fn invalid_corpus_table() {
    let rows: &[(&str, u16)] = &[
        // Framing and smuggling.
        ("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +1\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0_1\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: bla-bla\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0 1\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
        ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity, chunked, identity, chunked\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        ("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 400),
        // Header syntax.
        ("GET / HTTP/1.1\r\nHost: x\r\nBad\0: y\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: x\r\nName : value\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: x\r\nA: b\x07c\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\n\r\n", 400),
        // Request line.
        ("GET\r\n\r\n", 400),
        ("G(T / HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        ("GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505),
        ("GET foo HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        ("GET * HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ];
    for (raw, want) in rows {
        assert_eq!(status(raw), *want, "{raw:?}");
    }
}

#[test]
fn limits() {
    let long_line = format!("GET /{} HTTP/1.1\r\n", "a".repeat(5000));
    assert_eq!(status(&long_line), 414);
    let big_head = format!("GET / HTTP/1.1\r\nHost: x\r\nX: {}\r\n", "b".repeat(5000));
    assert_eq!(status(&big_head), 431);
    let many: String = (0..100).map(|i| format!("X-{i}: y\r\n")).collect();
    assert_eq!(
        status(&format!("GET / HTTP/1.1\r\nHost: x\r\n{many}\r\n")),
        431
    );
    let mut h = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let limited = Limits {
        max_head: 4096,
        max_body: Some(10),
    };
    let raw = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n";
    assert_eq!(
        parse_head(raw, &mut h, limited).map(|_| ()),
        Err(HttpError::PayloadTooLarge)
    );
}

fn dechunk(input: &[u8]) -> Result<(Vec<u8>, usize, bool), HttpError> {
    let mut d = ChunkedDecoder::new();
    let mut out = vec![0u8; 1024];
    let (used, produced) = d.decode(input, &mut out)?;
    out.truncate(produced);
    Ok((out, used, d.is_done()))
}

#[test]
fn chunked_decoding() {
    let (body, used, done) = dechunk(b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\nNEXT").unwrap();
    assert_eq!(body, b"hello world");
    assert!(done);
    assert_eq!(
        used,
        b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n".len(),
        "stops at the next request"
    );
    let (body, _, done) = dechunk(b"3\r\nabc\r\n0\r\nTrailer: x\r\n\r\n").unwrap();
    assert_eq!((body.as_slice(), done), (&b"abc"[..], true));
    // Fed byte by byte, the result is the same.
    let input = b"A\r\n0123456789\r\n0\r\n\r\n";
    let mut d = ChunkedDecoder::new();
    let mut got = Vec::new();
    for b in input {
        let mut out = [0u8; 4];
        let (_, n) = d.decode(std::slice::from_ref(b), &mut out).unwrap();
        got.extend_from_slice(&out[..n]);
    }
    assert!(d.is_done());
    assert_eq!(got, b"0123456789");
}

#[test]
fn bad_chunks() {
    let rows: &[&[u8]] = &[
        b"-5\r\nhello\r\n0\r\n\r\n",
        b"+5\r\nhello\r\n0\r\n\r\n",
        b"5_0\r\nhello\r\n0\r\n\r\n",
        b"5 \r\nhello\r\n0\r\n\r\n",
        b"\r\nhello\r\n0\r\n\r\n",
        b"5;a\rb\r\nhello\r\n0\r\n\r\n",
        b"5\r\nhelloXX0\r\n\r\n",
        b"5\nhello\r\n0\r\n\r\n",
        b"fffffffffffffffff\r\n",
    ];
    for raw in rows {
        assert!(dechunk(raw).is_err(), "{:?}", String::from_utf8_lossy(raw));
    }
}

#[test]
fn response_head() {
    let mut out = Vec::new();
    let headers = [
        ("Content-Type", "text/plain"),
        ("Content-Length", "999"),
        ("X-A", "1"),
    ];
    write_head(
        &mut out,
        Version::Http11,
        200,
        headers.into_iter(),
        BodyFraming::Length(13),
        true,
        b"DATE",
    );
    let text = String::from_utf8(out).unwrap();
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"));
    assert!(
        text.contains("Content-Length: 13\r\n") && !text.contains("999"),
        "{text}"
    );
    assert!(text.contains("X-A: 1\r\n") && text.ends_with("\r\n\r\n"));
    assert!(!text.contains("Connection"));
    let mut out = Vec::new();
    write_head(
        &mut out,
        Version::Http11,
        503,
        std::iter::empty(),
        BodyFraming::Chunked,
        false,
        b"D",
    );
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.contains("Transfer-Encoding: chunked\r\n") && text.contains("Connection: close\r\n")
    );
}

#[test]
fn dates() {
    assert_eq!(http_date(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
    assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
    assert_eq!(http_date(1_709_164_800), "Thu, 29 Feb 2024 00:00:00 GMT");
}
