//! Master signals: the handlers only count and write one byte to a self-pipe; the loop
//! reads the counters. Counting (not a bounded queue) means no signal is ever dropped;
//! repeats of the same signal may coalesce only where that is harmless (HUP, USR1).

use std::io::{self, Read};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicUsize, Ordering};

use nix::sys::signal::{SigSet, SigmaskHow, Signal};

/// Every signal the master handles.
pub const HANDLED: [Signal; 9] = [
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGHUP,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGTTIN,
    Signal::SIGTTOU,
    Signal::SIGCHLD,
];

static COUNTS: [AtomicUsize; 65] = [const { AtomicUsize::new(0) }; 65];

/// Signals received since the last [`Signals::take`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pending {
    pub term: usize,
    pub int_or_quit: usize,
    pub hup: usize,
    pub usr1: usize,
    pub usr2: usize,
    pub ttin: usize,
    pub ttou: usize,
    pub chld: usize,
}

/// The installed handlers and the read end of their self-pipe.
pub struct Signals {
    read: UnixStream,
    write: UnixStream,
}

impl Signals {
    /// Installs the handlers. Call with the signals blocked (see [`block`]) so none is
    /// lost or takes its default action before the loop runs.
    pub fn install() -> io::Result<Self> {
        let (read, write) = UnixStream::pair()?;
        read.set_nonblocking(true)?;
        write.set_nonblocking(true)?;
        for sig in HANDLED {
            let n = sig as i32;
            // SAFETY: the action only touches an atomic (async-signal-safe).
            unsafe {
                signal_hook::low_level::register(n, move || {
                    COUNTS[n as usize].fetch_add(1, Ordering::SeqCst);
                })?;
            }
            signal_hook::low_level::pipe::register(n, write.try_clone()?)?;
        }
        Ok(Signals { read, write })
    }

    /// The fd to poll for wake-ups.
    pub fn fd(&self) -> RawFd {
        self.read.as_raw_fd()
    }

    /// Fds a worker must close after fork (the write ends the handlers use are clones
    /// held by signal-hook; the worker resets the handlers, so only these two matter).
    pub fn fds(&self) -> Vec<RawFd> {
        vec![self.read.as_raw_fd(), self.write.as_raw_fd()]
    }

    /// Empties the self-pipe and returns the counts since the last call.
    pub fn take(&mut self) -> Pending {
        let mut buf = [0u8; 256];
        while matches!(self.read.read(&mut buf), Ok(n) if n > 0) {}
        let take = |s: Signal| COUNTS[s as usize].swap(0, Ordering::SeqCst);
        Pending {
            term: take(Signal::SIGTERM),
            int_or_quit: take(Signal::SIGINT) + take(Signal::SIGQUIT),
            hup: take(Signal::SIGHUP),
            usr1: take(Signal::SIGUSR1),
            usr2: take(Signal::SIGUSR2),
            ttin: take(Signal::SIGTTIN),
            ttou: take(Signal::SIGTTOU),
            chld: take(Signal::SIGCHLD),
        }
    }
}

fn handled_set() -> SigSet {
    let mut set = SigSet::empty();
    for s in HANDLED {
        set.add(s);
    }
    set
}

/// Blocks the handled signals (from the first line of `main` until handlers exist).
pub fn block() -> nix::Result<()> {
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&handled_set()), None)
}

/// Unblocks them once the handlers are in place; pending ones are delivered now.
pub fn unblock() -> nix::Result<()> {
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_UNBLOCK, Some(&handled_set()), None)
}
