//! A flag shared by every worker forked from the master: which worker reports first.
//!
//! When the app cannot be imported every worker fails the same way; the first one to
//! fail prints the traceback, the others say "see above". The flag lives in one shared
//! anonymous page mapped before fork, so no file or IPC is needed.

use std::num::NonZeroUsize;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering::AcqRel};

use nix::sys::mman::{mmap_anonymous, MapFlags, ProtFlags};

/// One shared bit; without shared memory (mmap failed) every worker counts as first.
pub struct OnceFlag {
    page: Option<NonNull<AtomicBool>>,
}

// SAFETY: the page is only accessed through an atomic and is never unmapped.
unsafe impl Send for OnceFlag {}
// SAFETY: as above.
unsafe impl Sync for OnceFlag {}

impl OnceFlag {
    /// Maps the shared page (call before fork).
    pub fn new() -> Self {
        let len = NonZeroUsize::new(4096).expect("non-zero");
        // SAFETY: a fresh anonymous mapping, aliasing nothing.
        let page = unsafe {
            mmap_anonymous(
                None,
                len,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_SHARED,
            )
        };
        OnceFlag {
            page: page.ok().map(|p| p.cast::<AtomicBool>()),
        }
    }

    /// True for the first caller across every process sharing the flag.
    pub fn first(&self) -> bool {
        match self.page {
            // SAFETY: the mapping is zeroed (false), aligned and lives for the process.
            Some(p) => !unsafe { p.as_ref() }.swap(true, AcqRel),
            None => true,
        }
    }
}

impl Default for OnceFlag {
    fn default() -> Self {
        Self::new()
    }
}
