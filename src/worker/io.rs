//! Socket I/O with deadlines for non-blocking sockets, used when the runtime must finish
//! a transfer inside one request (writing a response, streaming a request body).

use std::io;
use std::os::fd::{BorrowedFd, RawFd};
use std::time::Duration;

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{recv, send, MsgFlags};

/// Waits until `fd` is ready for `flags`, or fails with `TimedOut`.
pub fn wait_ready(fd: RawFd, flags: PollFlags, timeout: Duration) -> io::Result<()> {
    // SAFETY: the caller owns `fd` for the duration of the call.
    let bfd = unsafe { BorrowedFd::borrow_raw(fd) };
    let ms = PollTimeout::try_from(timeout).unwrap_or(PollTimeout::MAX);
    loop {
        let mut fds = [PollFd::new(bfd, flags)];
        match poll(&mut fds, ms) {
            Ok(0) => return Err(io::Error::new(io::ErrorKind::TimedOut, "socket timeout")),
            Ok(_) => return Ok(()),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Writes all of `buf`, waiting at most `timeout` for each step of progress.
pub fn write_all(fd: RawFd, mut buf: &[u8], timeout: Duration) -> io::Result<()> {
    while !buf.is_empty() {
        match send(fd, buf, MsgFlags::MSG_NOSIGNAL) {
            Ok(n) => buf = &buf[n..],
            Err(Errno::EAGAIN) => wait_ready(fd, PollFlags::POLLOUT, timeout)?,
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Reads once without blocking: `Ok(None)` when nothing is available now.
pub fn read_nonblocking(fd: RawFd, buf: &mut [u8]) -> io::Result<Option<usize>> {
    loop {
        match recv(fd, buf, MsgFlags::empty()) {
            Ok(n) => return Ok(Some(n)),
            Err(Errno::EAGAIN) => return Ok(None),
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// Reads once without blocking into `buf`'s spare capacity (never zero-filled first),
/// extending its length by what was read: `Ok(None)` when nothing is available now.
pub fn read_into_spare(fd: RawFd, buf: &mut Vec<u8>) -> io::Result<Option<usize>> {
    let spare = buf.spare_capacity_mut();
    loop {
        // SAFETY: recv writes at most spare.len() bytes into memory we own.
        let n = unsafe { libc::recv(fd, spare.as_mut_ptr().cast(), spare.len(), 0) };
        if n >= 0 {
            let n = n as usize;
            // SAFETY: the kernel initialised the first n bytes of the spare capacity.
            unsafe { buf.set_len(buf.len() + n) };
            return Ok(Some(n));
        }
        match Errno::last() {
            Errno::EAGAIN => return Ok(None),
            Errno::EINTR => {}
            e => return Err(e.into()),
        }
    }
}

/// Reads at least one byte, waiting at most `timeout`; `Ok(0)` is end of stream.
pub fn read_blocking(fd: RawFd, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
    loop {
        if let Some(n) = read_nonblocking(fd, buf)? {
            return Ok(n);
        }
        wait_ready(fd, PollFlags::POLLIN, timeout)?;
    }
}
