//! The pidfile is a lock, not a liveness oracle: the master holds `flock` on it for its
//! whole life, so a stale file (nobody holds the lock) is simply overwritten and a live
//! one makes a second molt fail fast.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::error::Error;

/// A written and locked pidfile; removed on drop if it still holds our pid.
pub struct Pidfile {
    file: File,
    path: PathBuf,
    pid: u32,
}

impl Pidfile {
    /// Locks `path` and writes our pid into it.
    pub fn create(path: &Path) -> Result<Self, Error> {
        let fail = |reason: String| Error::Pidfile {
            path: path.display().to_string(),
            reason,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| fail(e.to_string()))?;
        // SAFETY: flock on an fd we own.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let mut held = String::new();
            let _ = file.read_to_string(&mut held);
            return Err(fail(format!(
                "already running (lock held by pid {})",
                held.trim()
            )));
        }
        let pid = std::process::id();
        // The pid line first, then the truncation: a reader always sees a whole first line.
        let text = format!("{pid}\n");
        file.write_all_at(text.as_bytes(), 0)
            .map_err(|e| fail(e.to_string()))?;
        file.set_len(text.len() as u64)
            .map_err(|e| fail(e.to_string()))?;
        let _ = file.seek(SeekFrom::Start(0));
        Ok(Pidfile {
            file,
            path: path.to_path_buf(),
            pid,
        })
    }
}

impl Drop for Pidfile {
    fn drop(&mut self) {
        let ours =
            std::fs::read_to_string(&self.path).is_ok_and(|t| t.trim() == self.pid.to_string());
        if ours {
            let _ = std::fs::remove_file(&self.path);
        }
        let _ = &self.file;
    }
}
