#!/bin/sh
# Records the signal state molt handed over (SigBlk/SigIgn of this process, from
# /proc/$$/status) in TAPP_START_SIGS, before an interpreter changes it (Python ignores
# SIGPIPE at start-up, perl SIGFPE), then execs the rest of the command line in the same
# process, so LISTEN_PID still names it. A non-interactive sh changes no disposition.
TAPP_START_SIGS=$(grep -E '^Sig(Blk|Ign):' "/proc/$$/status" | tr -d ' \t' | tr ':\n' '=,')
export TAPP_START_SIGS
exec "$@"
