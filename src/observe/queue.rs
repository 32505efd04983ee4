//! Listen queue depth of a listener, the way `ss -ltn` shows it: `getsockopt(TCP_INFO)`
//! on a listening TCP socket reports the connections waiting in the accept queue in
//! `tcpi_unacked` and the backlog in `tcpi_sacked`. One syscall per listener per stats
//! request; unix sockets have no such counter and report 0.

use std::os::fd::RawFd;

/// (queued, backlog) of a listening socket, or None if it is not TCP.
pub fn depth(fd: RawFd) -> Option<(u64, u64)> {
    // SAFETY: tcp_info is plain old data; zeroed is a valid value.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: valid pointer and length for the option's buffer.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut libc::tcp_info).cast(),
            &mut len,
        )
    };
    (rc == 0).then(|| (u64::from(info.tcpi_unacked), u64::from(info.tcpi_sacked)))
}
