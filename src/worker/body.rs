//! The request body as the app reads it: bytes already buffered with the head first,
//! then the socket, de-chunked when chunked. Small bodies never touch the socket here.

use std::io::{self, Read};
use std::os::fd::RawFd;
use std::time::Duration;

use super::http::{ChunkedDecoder, Framing, HttpError};
use super::io::{read_blocking, write_all};

/// Reads one request body from `buffered` then `fd`.
pub struct BodyReader<'a> {
    buffered: &'a [u8],
    /// Bytes of `buffered` consumed so far.
    used: usize,
    fd: RawFd,
    timeout: Duration,
    kind: Kind,
    /// Bytes read from the socket beyond this body (the next pipelined request).
    pub overflow: Vec<u8>,
    /// Send `100 Continue` before the first socket read.
    pending_continue: bool,
    /// A framing error seen while reading: the connection must close.
    pub failed: Option<HttpError>,
}

enum Kind {
    Empty,
    Length {
        remaining: u64,
    },
    Chunked {
        dec: ChunkedDecoder,
        raw: Vec<u8>,
        raw_pos: usize,
    },
}

impl<'a> BodyReader<'a> {
    pub fn new(
        framing: Framing,
        buffered: &'a [u8],
        fd: RawFd,
        timeout: Duration,
        expect_continue: bool,
    ) -> Self {
        let kind = match framing {
            Framing::None => Kind::Empty,
            Framing::Length(n) => Kind::Length { remaining: n },
            Framing::Chunked => Kind::Chunked {
                dec: ChunkedDecoder::new(),
                raw: Vec::new(),
                raw_pos: 0,
            },
        };
        BodyReader {
            buffered,
            used: 0,
            fd,
            timeout,
            kind,
            overflow: Vec::new(),
            pending_continue: expect_continue,
            failed: None,
        }
    }

    /// Bytes of the connection buffer this body consumed.
    pub fn buffered_used(&self) -> usize {
        self.used
    }

    /// True when the whole body has been read.
    pub fn is_complete(&self) -> bool {
        match &self.kind {
            Kind::Empty => true,
            Kind::Length { remaining } => *remaining == 0,
            Kind::Chunked { dec, .. } => dec.is_done(),
        }
    }

    /// Reads and discards what the app left unread, up to `limit` bytes; false if more remains.
    pub fn skip_rest(&mut self, limit: u64) -> bool {
        let mut sink = [0u8; 8192];
        let mut skipped = 0u64;
        while !self.is_complete() && skipped <= limit {
            match self.read(&mut sink) {
                Ok(0) | Err(_) => return false,
                Ok(n) => skipped += n as u64,
            }
        }
        self.is_complete()
    }

    fn socket_read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pending_continue {
            self.pending_continue = false;
            write_all(self.fd, b"HTTP/1.1 100 Continue\r\n\r\n", self.timeout)?;
        }
        let n = read_blocking(self.fd, buf, self.timeout)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "client closed before the body ended",
            ));
        }
        Ok(n)
    }

    fn read_length(&mut self, out: &mut [u8], remaining: u64) -> io::Result<usize> {
        let want = (out.len() as u64).min(remaining) as usize;
        if want == 0 {
            return Ok(0);
        }
        let avail = &self.buffered[self.used..];
        let n = if !avail.is_empty() {
            let n = want.min(avail.len());
            out[..n].copy_from_slice(&avail[..n]);
            self.used += n;
            n
        } else {
            self.socket_read(&mut out[..want])?
        };
        self.kind = Kind::Length {
            remaining: remaining - n as u64,
        };
        Ok(n)
    }

    fn read_chunked(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            let Kind::Chunked { dec, raw, raw_pos } = &mut self.kind else {
                return Ok(0);
            };
            if dec.is_done() || out.is_empty() {
                return Ok(0);
            }
            let from_buffer = self.used < self.buffered.len();
            let input: &[u8] = if from_buffer {
                &self.buffered[self.used..]
            } else {
                &raw[*raw_pos..]
            };
            if !input.is_empty() {
                let (consumed, produced) = dec.decode(input, out).map_err(|e| {
                    self.failed = Some(e);
                    io::Error::new(io::ErrorKind::InvalidData, e.reason())
                })?;
                if from_buffer {
                    self.used += consumed;
                } else {
                    *raw_pos += consumed;
                }
                if dec.is_done() && !from_buffer {
                    self.overflow.extend_from_slice(&raw[*raw_pos..]);
                    raw.clear();
                }
                if produced > 0 || dec.is_done() {
                    return Ok(produced);
                }
                continue;
            }
            let mut chunk = vec![0u8; 16 * 1024];
            let n = self.socket_read(&mut chunk)?;
            chunk.truncate(n);
            let Kind::Chunked { raw, raw_pos, .. } = &mut self.kind else {
                return Ok(0);
            };
            *raw = chunk;
            *raw_pos = 0;
        }
    }
}

impl Read for BodyReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        match self.kind {
            Kind::Empty => Ok(0),
            Kind::Length { remaining } => self.read_length(out, remaining),
            Kind::Chunked { .. } => self.read_chunked(out),
        }
    }
}
