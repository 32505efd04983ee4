#!/usr/bin/env bash
# Master CPU spent sampling memory, with many workers: starts molt with N idle demo
# workers, reads /proc/<master>/stat utime+stime over an interval, and prints CPU ms per
# second for each sampling mode. Usage: benches/sampling.sh [WORKERS] [SECONDS]
#   rss  : statm every 1 s (the default)
#   pss  : statm + smaps_rollup every 1 s (pool-metric pss)
#   fast : statm + smaps_rollup every 100 ms (10x the default rate)
set -euo pipefail
cd "$(dirname "$0")/.."
workers=${1:-64}
secs=${2:-10}
bin=target/release/molt
[ -x "$bin" ] || cargo build --release --quiet
tick=$(getconf CLK_TCK)

cpu_ticks() { # utime + stime of a pid (fields 14 and 15 after the comm field)
    sed 's/^.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'
}

run() {
    local name=$1; shift
    local log; log=$(mktemp)
    "$bin" --demo --processes "$workers" --http-socket 127.0.0.1:0 "$@" 2>"$log" &
    local pid=$!
    for _ in $(seq 1 300); do
        [ "$(grep -c 'ready in' "$log")" -ge "$workers" ] && break
        sleep 0.1
    done
    sleep 1 # let start-up work settle before measuring
    local t0 c0 c1 t1
    t0=$(date +%s%N); c0=$(cpu_ticks "$pid")
    sleep "$secs"
    c1=$(cpu_ticks "$pid"); t1=$(date +%s%N)
    kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
    rm -f "$log"
    awk -v n="$name" -v w="$workers" -v c=$((c1 - c0)) -v hz="$tick" -v ns=$((t1 - t0)) \
        'BEGIN { printf "%-5s %3d workers: master CPU %.2f ms per second (%.3f%% of a core)\n", n, w, c * 1000 / hz / (ns / 1e9), c * 100 / hz / (ns / 1e9) }'
}

run rss --pool-soft-limit 90%
run pss --pool-soft-limit 90% --pool-metric pss
run fast --pool-soft-limit 90% --pool-metric pss --memory-sample-interval 100 --smaps-sample-interval 100
