//! Shared-memory scoreboard (placeholder until the core lands).

/// Most threads one worker may run (one busy-since cell each).
pub const MAX_THREADS: usize = 64;
