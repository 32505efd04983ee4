#!/usr/bin/env bash
# Does observing cost anything on the request path? wrk against the demo app's `/`,
# 2 workers, 16 connections, in four set-ups: baseline (request log to /dev/null),
# with the stats server (--stats, scraped every 0.5 s during the run), with
# --disable-logging, and with the leak finder. Prints requests/s and ratios.
# Usage: bash benches/observe.sh [SECONDS]   (needs wrk: tools/deps.sh installs it)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-5}
cargo build --release --quiet
bin=target/release/molt
port=18931
stats=18932

run() { # name, extra args...
    local name=$1; shift
    "$bin" --demo --processes 2 --http-socket 127.0.0.1:$port "$@" 2>/dev/null &
    local pid=$!
    for _ in $(seq 100); do curl -s -o /dev/null 127.0.0.1:$port/ && break; sleep 0.05; done
    local scraper=""
    if [[ " $* " == *" --stats "* ]]; then
        ( while kill -0 $pid 2>/dev/null; do curl -s -o /dev/null http://127.0.0.1:$stats/metrics || true; sleep 0.5; done ) &
        scraper=$!
    fi
    local rps
    rps=$(wrk -t2 -c16 -d"${secs}s" http://127.0.0.1:$port/ | awk '/Requests\/sec/ {print $2}')
    kill -TERM $pid; wait $pid 2>/dev/null || true
    [ -n "$scraper" ] && { kill $scraper 2>/dev/null || true; wait $scraper 2>/dev/null || true; }
    echo "$name $rps"
}

base=$(run baseline | awk '{print $2}')
with_stats=$(run stats --stats 127.0.0.1:$stats --stats-http | awk '{print $2}')
nolog=$(run nolog --disable-logging | awk '{print $2}')
leak=$(run leak --disable-logging --leak-finder | awk '{print $2}')
printf -- 'baseline (log to /dev/null)      %10.0f req/s\n' "$base"
printf -- '+ --stats (scraped 2/s)          %10.0f req/s  ratio %.3f\n' "$with_stats" "$(echo "$with_stats / $base" | bc -l)"
printf -- '--disable-logging                %10.0f req/s  ratio %.3f\n' "$nolog" "$(echo "$nolog / $base" | bc -l)"
printf -- '--disable-logging --leak-finder  %10.0f req/s  ratio %.3f (vs disable-logging %.3f)\n' "$leak" "$(echo "$leak / $base" | bc -l)" "$(echo "$leak / $nolog" | bc -l)"
