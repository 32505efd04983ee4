//! `logto`: the master points its stderr (the log) at a file before forking, so workers
//! inherit it; on SIGUSR2 the master reopens it and tells the workers to do the same,
//! so logrotate's `postrotate kill -USR2` works (SIGUSR1 is the graceful respawn).

use std::fs::OpenOptions;
use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;

/// Opens `path` for appending and makes it this process's stderr.
pub fn redirect_stderr(path: &Path) -> io::Result<()> {
    let file = OpenOptions::new().create(true).append(true).open(path)?;
    // SAFETY: dup2 onto fd 2 with a valid fd; the file closes its own copy on drop.
    if unsafe { libc::dup2(file.as_raw_fd(), 2) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
