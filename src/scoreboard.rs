//! Shared-memory scoreboard: one slot per worker process, written with atomics.
//!
//! The master maps the board (anonymous `MAP_SHARED`) before the first fork, so every
//! worker inherits it and nothing outlives the master. Each slot is page-aligned; a
//! worker write-protects every page but its own right after fork, so a buggy worker
//! cannot scribble over its siblings. The master treats every value it reads as
//! untrusted telemetry (see `master::sample`): it never signals a pid read from here.
//!
//! Writing a slot costs no syscall: a request start stores its start time in the
//! thread's cell, a request end bumps counters.

use std::num::NonZeroUsize;
use std::ptr::NonNull;
use std::sync::atomic::{
    AtomicI32, AtomicU32, AtomicU64,
    Ordering::{Acquire, Relaxed, Release},
};

use nix::sys::mman::{mmap_anonymous, mprotect, munmap, MapFlags, ProtFlags};

/// Most threads one worker may run (one busy-since cell each).
pub const MAX_THREADS: usize = 64;

/// Number of slots: live workers plus those draining or booting at any moment.
pub const MAX_SLOTS: usize = 1024;

const PAGE: usize = 4096;

/// What a worker says it is doing. Telemetry only: the master decides from its own state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum SlotState {
    /// Forked, app not yet loaded.
    Booting = 0,
    /// Loaded and accepting.
    Ready = 1,
    /// Stopped accepting; finishing what it owns.
    Draining = 2,
}

/// Recycle requests a worker raises on itself (bits of [`Slot::flags`]).
pub mod flag {
    /// The worker reached its max-requests threshold.
    pub const MAX_REQUESTS: u32 = 1;
    /// The worker measured its memory above reload-on-rss and stopped accepting.
    pub const RSS: u32 = 2;
    /// The worker's RSS reached the ceiling the master leased it under pool-soft-limit,
    /// and it stopped accepting.
    pub const POOL: u32 = 4;
}

/// Per-thread request cell.
#[repr(C)]
pub struct Core {
    /// Monotonic nanoseconds when the running request started; 0 when idle.
    pub busy_since_ns: AtomicU64,
    /// Sequence number of the running request within this worker.
    pub request_id: AtomicU64,
}

/// One worker's telemetry.
#[repr(C, align(4096))]
pub struct Slot {
    /// Spawn sequence number, written by the master before fork.
    pub generation: AtomicU64,
    /// `SlotState` as u32.
    pub state: AtomicU32,
    /// Recycle requests raised by the worker (see [`flag`]).
    pub flags: AtomicU32,
    /// The worker's own pid, for display only.
    pub pid: AtomicI32,
    /// Connections the worker holds open (for accept balancing).
    pub open_conns: AtomicU32,
    /// A process serving this worker's requests outside its process tree (the Python
    /// child forked by the zygote), 0 if none. The master counts its memory as the
    /// worker's only after checking it runs in the worker's process group.
    pub helper_pid: AtomicI32,
    /// Requests served.
    pub requests: AtomicU64,
    /// Responses with status >= 500.
    pub errors: AtomicU64,
    /// Response bytes written.
    pub tx_bytes: AtomicU64,
    /// Requests the app served in batches (`App::call_many`), a subset of `requests`.
    pub batched: AtomicU64,
    /// Sum of request durations in microseconds (for an average).
    pub busy_us: AtomicU64,
    /// The worker's memory as it last measured it (bytes), for display only.
    pub self_rss: AtomicU64,
    /// Written by the master, read by the worker after each request: the RSS (bytes) at
    /// which it must stop accepting to keep the pool under pool-soft-limit; 0 = none.
    pub mem_ceiling: AtomicU64,
    /// Per-thread request cells.
    pub cores: [Core; MAX_THREADS],
    /// Request durations, one counter per bucket of [`DURATION_BUCKETS_US`] plus one
    /// for slower requests (not cumulative: the master sums them for Prometheus).
    pub durations: [AtomicU64; DURATION_BUCKETS_US.len() + 1],
    /// Memory growth per route (leak finder); the last cell collects overflow.
    pub routes: [RouteCell; ROUTES],
}

/// Upper bounds (microseconds) of the request duration histogram's buckets.
pub const DURATION_BUCKETS_US: [u64; 12] = [
    1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000,
    5_000_000,
];

/// Cells in a slot's route table; the last one is the overflow cell.
pub const ROUTES: usize = 28;

/// Bytes of a route name kept in a [`RouteCell`] (longer names are cut).
pub const ROUTE_NAME: usize = 48;

/// One route's memory growth in one worker. Claimed once by a compare-and-swap on
/// `key`, then named, then published by storing `len` (readers skip `len == 0`).
#[repr(C)]
pub struct RouteCell {
    /// Hash of the route name; 0 = free.
    pub key: AtomicU64,
    /// Length of the name in bytes; 0 until the name is written.
    pub len: AtomicU32,
    _pad: u32,
    /// The route name (`GET /items/:n`), as little-endian words.
    pub name: [AtomicU64; ROUTE_NAME / 8],
    /// Requests that hit this route.
    pub requests: AtomicU64,
    /// Sum of the positive resident-memory changes across those requests (bytes).
    pub growth: AtomicU64,
}

const _: () = assert!(std::mem::size_of::<Slot>() == PAGE);

/// Written by the master, read by every worker (read-only to them): pool-wide controls.
#[repr(C, align(4096))]
pub struct Control {
    /// Most connections one worker should hold before it stops accepting (0 = no limit).
    /// Keeps reconnecting keep-alive clients from piling onto one worker after a recycle.
    pub accept_limit: AtomicU32,
}

const _: () = assert!(std::mem::size_of::<Control>() == PAGE);

/// The shared mapping.
pub struct Scoreboard {
    base: NonNull<Slot>,
    len: usize,
}

// The mapping is shared memory accessed only through atomics.
unsafe impl Send for Scoreboard {}
unsafe impl Sync for Scoreboard {}

impl Scoreboard {
    /// Maps a zeroed board of [`MAX_SLOTS`] slots.
    pub fn new() -> nix::Result<Self> {
        // Slots, then the control page.
        let len = (MAX_SLOTS + 1) * PAGE;
        let size = NonZeroUsize::new(len).ok_or(nix::Error::EINVAL)?;
        // SAFETY: a fresh anonymous mapping; zeroed memory is a valid Slot (all atomics).
        let ptr = unsafe {
            mmap_anonymous(
                None,
                size,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_SHARED,
            )?
        };
        Ok(Scoreboard {
            base: ptr.cast(),
            len,
        })
    }

    /// The slot at `index` (`index < MAX_SLOTS`).
    pub fn slot(&self, index: usize) -> &Slot {
        assert!(index < MAX_SLOTS, "slot index out of range");
        // SAFETY: in bounds of a live mapping of MAX_SLOTS slots.
        unsafe { &*self.base.as_ptr().add(index) }
    }

    /// The pool-wide control page.
    pub fn control(&self) -> &Control {
        // SAFETY: the control page follows the last slot inside our mapping; zeroed
        // memory is a valid Control (all atomics).
        unsafe { &*self.base.as_ptr().add(MAX_SLOTS).cast::<Control>() }
    }

    /// Resets a slot before a new worker is forked into it.
    pub fn reset(&self, index: usize, generation: u64) {
        let s = self.slot(index);
        s.generation.store(generation, Relaxed);
        s.state.store(SlotState::Booting as u32, Relaxed);
        s.flags.store(0, Relaxed);
        s.pid.store(0, Relaxed);
        s.open_conns.store(0, Relaxed);
        s.helper_pid.store(0, Relaxed);
        for c in [
            &s.requests,
            &s.errors,
            &s.tx_bytes,
            &s.batched,
            &s.busy_us,
            &s.self_rss,
            &s.mem_ceiling,
        ] {
            c.store(0, Relaxed);
        }
        for core in &s.cores {
            core.busy_since_ns.store(0, Relaxed);
            core.request_id.store(0, Relaxed);
        }
        for d in &s.durations {
            d.store(0, Relaxed);
        }
        for r in &s.routes {
            r.reset();
        }
    }

    /// In a worker: makes every page but `own` read-only, so a bug cannot write elsewhere.
    pub fn protect_all_but(&self, own: usize) -> nix::Result<()> {
        let base = self.base.cast::<u8>();
        let before = own * PAGE;
        let after = (own + 1) * PAGE;
        // SAFETY: both ranges lie inside our mapping and are page-aligned.
        unsafe {
            if before > 0 {
                mprotect(base.cast(), before, ProtFlags::PROT_READ)?;
            }
            if after < self.len {
                let p = NonNull::new_unchecked(base.as_ptr().add(after));
                mprotect(p.cast(), self.len - after, ProtFlags::PROT_READ)?;
            }
        }
        Ok(())
    }
}

impl Drop for Scoreboard {
    fn drop(&mut self) {
        // SAFETY: unmapping our own mapping once.
        let _ = unsafe { munmap(self.base.cast(), self.len) };
    }
}

impl Slot {
    /// The worker-reported state, if it is a known value.
    pub fn state(&self) -> Option<SlotState> {
        match self.state.load(Relaxed) {
            0 => Some(SlotState::Booting),
            1 => Some(SlotState::Ready),
            2 => Some(SlotState::Draining),
            _ => None,
        }
    }

    /// Sets the worker-reported state.
    pub fn set_state(&self, s: SlotState) {
        self.state.store(s as u32, Relaxed);
    }

    /// The oldest running request's start (monotonic ns) among the first `threads` cells.
    pub fn oldest_busy_since(&self, threads: usize) -> Option<u64> {
        self.cores[..threads.min(MAX_THREADS)]
            .iter()
            .map(|c| c.busy_since_ns.load(Relaxed))
            .filter(|&t| t != 0)
            .min()
    }

    /// How many threads are inside a request.
    pub fn busy_threads(&self, threads: usize) -> usize {
        self.cores[..threads.min(MAX_THREADS)]
            .iter()
            .filter(|c| c.busy_since_ns.load(Relaxed) != 0)
            .count()
    }
}

impl RouteCell {
    fn reset(&self) {
        self.key.store(0, Relaxed);
        self.len.store(0, Relaxed);
        for w in &self.name {
            w.store(0, Relaxed);
        }
        self.requests.store(0, Relaxed);
        self.growth.store(0, Relaxed);
    }

    /// The published name, if any (untrusted: the length is bounds-checked).
    pub fn name(&self) -> Option<String> {
        let len = self.len.load(Acquire) as usize;
        if len == 0 || len > ROUTE_NAME {
            return None;
        }
        let mut bytes = [0u8; ROUTE_NAME];
        for (i, w) in self.name.iter().enumerate() {
            bytes[i * 8..i * 8 + 8].copy_from_slice(&w.load(Relaxed).to_le_bytes());
        }
        Some(String::from_utf8_lossy(&bytes[..len]).into_owned())
    }

    fn publish(&self, name: &[u8]) {
        let len = name.len().min(ROUTE_NAME);
        let mut bytes = [0u8; ROUTE_NAME];
        bytes[..len].copy_from_slice(&name[..len]);
        for (i, w) in self.name.iter().enumerate() {
            let mut word = [0u8; 8];
            word.copy_from_slice(&bytes[i * 8..i * 8 + 8]);
            w.store(u64::from_le_bytes(word), Relaxed);
        }
        self.len.store(len.max(1) as u32, Release);
    }
}

impl Slot {
    /// Counts one request of `micros` in the duration histogram.
    pub fn count_duration(&self, micros: u64) {
        let bucket = DURATION_BUCKETS_US
            .iter()
            .position(|&b| micros <= b)
            .unwrap_or(DURATION_BUCKETS_US.len());
        self.durations[bucket].fetch_add(1, Relaxed);
    }

    /// Adds one request and its memory growth to the route `name` (hashed as `key`,
    /// never 0). Threads of one worker race only on claiming a free cell, which the
    /// compare-and-swap settles; a full table counts into the overflow cell.
    pub fn count_route(&self, key: u64, name: &[u8], growth: u64) {
        let key = key.max(1);
        let cell = self.route_cell(key, name);
        cell.requests.fetch_add(1, Relaxed);
        cell.growth.fetch_add(growth, Relaxed);
    }

    fn route_cell(&self, key: u64, name: &[u8]) -> &RouteCell {
        let (table, overflow) = self.routes.split_at(ROUTES - 1);
        for cell in table {
            match cell.key.compare_exchange(0, key, Relaxed, Relaxed) {
                Ok(_) => {
                    cell.publish(name);
                    return cell;
                }
                Err(k) if k == key => return cell,
                Err(_) => {}
            }
        }
        let other = &overflow[0];
        if other.key.swap(u64::MAX, Relaxed) != u64::MAX {
            other.publish(b"(other routes)");
        }
        other
    }
}

/// Monotonic clock in nanoseconds (CLOCK_MONOTONIC: one clock for every process on the
/// host, so master and workers compare their stamps directly; a vDSO call, not a syscall).
pub fn mono_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid pointer; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_page_sized_and_reset() {
        let b = Scoreboard::new().expect("mmap");
        b.slot(3).requests.store(7, Relaxed);
        b.slot(3).cores[1].busy_since_ns.store(5, Relaxed);
        assert_eq!(b.slot(3).oldest_busy_since(4), Some(5));
        assert_eq!(b.slot(3).busy_threads(4), 1);
        b.reset(3, 9);
        assert_eq!(b.slot(3).requests.load(Relaxed), 0);
        assert_eq!(b.slot(3).generation.load(Relaxed), 9);
        assert_eq!(b.slot(3).oldest_busy_since(4), None);
        assert_eq!(b.slot(3).state(), Some(SlotState::Booting));
    }

    #[test]
    fn routes_are_claimed_once_and_overflow() {
        let b = Scoreboard::new().expect("mmap");
        let s = b.slot(0);
        s.count_route(7, b"GET /leak", 100);
        s.count_route(7, b"GET /leak", 50);
        assert_eq!(s.routes[0].name().as_deref(), Some("GET /leak"));
        assert_eq!(s.routes[0].requests.load(Relaxed), 2);
        assert_eq!(s.routes[0].growth.load(Relaxed), 150);
        for k in 100..200 {
            s.count_route(k, b"GET /x", 1);
        }
        assert_eq!(
            s.routes[ROUTES - 1].name().as_deref(),
            Some("(other routes)")
        );
        s.count_duration(3_000);
        s.count_duration(u64::MAX);
        assert_eq!(s.durations[2].load(Relaxed), 1);
        assert_eq!(s.durations[DURATION_BUCKETS_US.len()].load(Relaxed), 1);
    }
}
