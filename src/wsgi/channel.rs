//! One socketpair end between a worker thread and a thread of the app child, with a
//! read buffer that turns the byte stream into frames. Blocking I/O: a request runs to
//! completion on its thread, and harakiri covers an app that never answers.

use std::io::{self, Read, Write};
use std::ops::Range;
use std::os::unix::net::UnixStream;

use super::protocol::{parse_header, HEADER_LEN};

/// Initial read buffer: a typical response (head and body) arrives in one read.
const READ_BUFFER: usize = 64 * 1024;

/// A frame read from the child; its payload lives in the channel until the next read.
#[derive(Debug, Clone)]
pub struct Frame {
    pub kind: u8,
    range: Range<usize>,
}

/// A socketpair end plus its buffers, reused across requests (no per-request allocation).
pub struct Channel {
    sock: UnixStream,
    /// The frame(s) being written; sent whole with [`Channel::flush`].
    pub out: Vec<u8>,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// The child's thread serving this channel, kept on our CPU
    /// (`affinity::colocate`); `None` when unknown.
    pub peer_to_colocate: Option<i32>,
    /// Requests sent on this channel (when to colocate again).
    pub exchanges: u64,
}

impl Channel {
    pub fn new(sock: UnixStream) -> Self {
        Channel {
            sock,
            out: Vec::with_capacity(4096),
            buf: vec![0; READ_BUFFER],
            start: 0,
            end: 0,
            peer_to_colocate: None,
            exchanges: 0,
        }
    }

    /// Writes `out` in full and clears it.
    pub fn flush(&mut self) -> io::Result<()> {
        let res = self.sock.write_all(&self.out);
        self.out.clear();
        res
    }

    /// Reads the next frame; `UnexpectedEof` when the child is gone.
    pub fn read_frame(&mut self) -> io::Result<Frame> {
        if self.start == self.end {
            // Everything consumed (the last payload is no longer needed): read at the front.
            self.start = 0;
            self.end = 0;
        }
        self.fill(HEADER_LEN)?;
        let (kind, len) = parse_header(&self.buf[self.start..self.end])
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "short frame header"))?;
        self.fill(HEADER_LEN + len)?;
        let from = self.start + HEADER_LEN;
        self.start = from + len;
        Ok(Frame {
            kind,
            range: from..from + len,
        })
    }

    /// The payload of the last frame read.
    pub fn payload(&self, frame: &Frame) -> &[u8] {
        &self.buf[frame.range.clone()]
    }

    /// Makes at least `n` unread bytes available.
    fn fill(&mut self, n: usize) -> io::Result<()> {
        if self.end - self.start >= n {
            return Ok(());
        }
        if self.start + n > self.buf.len() {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            if n > self.buf.len() {
                self.buf.resize(n.next_power_of_two(), 0);
            }
        }
        while self.end - self.start < n {
            let got = self.sock.read(&mut self.buf[self.end..])?;
            if got == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the app child closed its socket",
                ));
            }
            self.end += got;
        }
        Ok(())
    }
}
