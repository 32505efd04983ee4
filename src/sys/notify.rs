//! The master's end of the worker protocol (docs/worker-protocol.md) for exec'd workers.
//!
//! Each exec'd worker gets its own unix datagram socket in the abstract namespace, named
//! in its `NOTIFY_SOCKET` (sd_notify's convention, so existing sd_notify libraries work).
//! The master reads it directly, without a relay process in the worker: one process per
//! worker keeps memory accounting and signals exact (the exec'd app *is* the worker, so
//! SIGTERM reaches the app and `LISTEN_PID` names it), and the master's loop already
//! wakes on fds.
//!
//! What arrives is telemetry, written into the worker's scoreboard slot exactly as an
//! in-process worker would write it, and judged by the same untrusting sampler. The
//! kernel-attested sender (SCM_CREDENTIALS) must be the worker or a process in its group;
//! nothing else is taken from a message (no pids).

use std::io::{self, IoSliceMut};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::Ordering::Relaxed;

use log::{debug, info, warn};
use nix::errno::Errno;
use nix::sys::socket::{
    bind, recvmsg, setsockopt, socket, sockopt, AddressFamily, ControlMessageOwned, MsgFlags,
    SockFlag, SockType, UnixAddr,
};

use crate::pool::Nanos;
use crate::scoreboard::{Slot, SlotState};
use crate::worker::exec::ExecMeta;

/// Largest datagram read; longer ones are truncated (sd_notify messages are short).
const MAX_DATAGRAM: usize = 4096;

/// One field of a notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// `READY=1`: the worker accepts connections.
    Ready,
    /// `STOPPING=1`: the worker stopped accepting.
    Stopping,
    /// `REQUESTS=N`: requests served so far (cumulative).
    Requests(u64),
    /// `BUSY=1` (a request is running) or `BUSY=0` / `IDLE=1`.
    Busy(bool),
    /// `STATUS=...`: free text for the log.
    Status(String),
}

/// Parses one datagram: newline-separated `KEY=VALUE` fields; unknown keys (MAINPID,
/// WATCHDOG, ...) and malformed values are skipped.
pub fn parse(datagram: &[u8]) -> Vec<Note> {
    let text = String::from_utf8_lossy(datagram);
    text.lines()
        .filter_map(|line| line.split_once('='))
        .filter_map(|(k, v)| match (k.trim(), v.trim()) {
            ("READY", "1") => Some(Note::Ready),
            ("STOPPING", "1") => Some(Note::Stopping),
            ("REQUESTS", n) => n.parse().ok().map(Note::Requests),
            ("BUSY", "1") => Some(Note::Busy(true)),
            ("BUSY", "0") | ("IDLE", "1") => Some(Note::Busy(false)),
            ("STATUS", s) => Some(Note::Status(s.chars().take(200).collect())),
            _ => None,
        })
        .collect()
}

/// Writes one note into the worker's slot, as the in-process runtime would.
pub fn apply(note: &Note, slot: &Slot, now: Nanos) {
    match note {
        Note::Ready => {
            if slot.state() == Some(SlotState::Booting) {
                slot.set_state(SlotState::Ready);
            }
        }
        Note::Stopping => slot.set_state(SlotState::Draining),
        Note::Requests(n) => slot.requests.store(*n, Relaxed),
        Note::Busy(true) => {
            let _ = slot.cores[0]
                .busy_since_ns
                .compare_exchange(0, now, Relaxed, Relaxed);
        }
        Note::Busy(false) => slot.cores[0].busy_since_ns.store(0, Relaxed),
        Note::Status(_) => {}
    }
}

/// An exec'd worker as the master tracks it.
pub struct ExecWorker {
    sock: OwnedFd,
    /// The worker's pid (0 until the fork returned).
    pub pid: i32,
    /// Its scoreboard slot.
    pub slot: usize,
    pub meta: ExecMeta,
    /// Without the protocol: when the worker counts as ready.
    ready_after: Option<Nanos>,
}

impl ExecWorker {
    /// Binds the worker's notify socket, before fork (so no message can be lost).
    pub fn bind(meta: ExecMeta, slot: usize, now: Nanos) -> io::Result<ExecWorker> {
        let sock = socket(
            AddressFamily::Unix,
            SockType::Datagram,
            SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
            None,
        )?;
        setsockopt(&sock, sockopt::PassCred, &true)?;
        let name = meta.notify_socket.trim_start_matches('@');
        bind(sock.as_raw_fd(), &UnixAddr::new_abstract(name.as_bytes())?)?;
        let ready_after = (!meta.notify).then(|| now + meta.ready_delay.as_nanos() as u64);
        Ok(ExecWorker {
            sock,
            pid: 0,
            slot,
            meta,
            ready_after,
        })
    }

    pub fn fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }

    /// Reads every pending notification into `slot`, then applies the ready delay.
    pub fn pump(&mut self, slot: &Slot, now: Nanos) {
        let mut buf = [0u8; MAX_DATAGRAM];
        while let Some((len, sender)) = self.receive(&mut buf) {
            if !self.sent_by_worker(sender) {
                warn!(
                    "worker pid {}: ignoring a notification from pid {sender:?}, not in its process group",
                    self.pid
                );
                continue;
            }
            for note in parse(&buf[..len]) {
                if let Note::Status(s) = &note {
                    debug!("worker pid {} status: {s}", self.pid);
                }
                if note == Note::Ready && slot.state() == Some(SlotState::Booting) {
                    info!("worker pid {} sent READY=1", self.pid);
                }
                apply(&note, slot, now);
            }
        }
        if self.ready_after.is_some_and(|t| now >= t) {
            self.ready_after = None;
            apply(&Note::Ready, slot, now);
        }
    }

    /// One datagram and its sender's pid (from the kernel), or None when none is queued.
    fn receive(&self, buf: &mut [u8]) -> Option<(usize, Option<i32>)> {
        let mut cmsg = nix::cmsg_space!(nix::sys::socket::UnixCredentials);
        let mut iov = [IoSliceMut::new(buf)];
        loop {
            let res = recvmsg::<()>(
                self.sock.as_raw_fd(),
                &mut iov,
                Some(&mut cmsg),
                MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_CMSG_CLOEXEC,
            );
            match res {
                Ok(msg) => {
                    let sender = msg.cmsgs().ok().and_then(|mut c| {
                        c.find_map(|m| match m {
                            ControlMessageOwned::ScmCredentials(cred) => Some(cred.pid()),
                            _ => None,
                        })
                    });
                    return Some((msg.bytes, sender));
                }
                Err(Errno::EINTR) => continue,
                Err(_) => return None,
            }
        }
    }

    /// The sender is the worker or one of its process group (the app's own children).
    fn sent_by_worker(&self, sender: Option<i32>) -> bool {
        let Some(pid) = sender else { return false };
        if pid == self.pid {
            return true;
        }
        nix::unistd::getpgid(Some(nix::unistd::Pid::from_raw(pid)))
            .is_ok_and(|g| g.as_raw() == self.pid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sd_notify_style_fields() {
        let notes = parse(b"READY=1\nSTATUS=serving\nREQUESTS=42\nBUSY=1\nMAINPID=9\nREQUESTS=x\n");
        assert_eq!(
            notes,
            vec![
                Note::Ready,
                Note::Status("serving".into()),
                Note::Requests(42),
                Note::Busy(true)
            ]
        );
        assert_eq!(parse(b"IDLE=1"), vec![Note::Busy(false)]);
        assert_eq!(parse(b"garbage\xff\x00"), vec![]);
    }
}
