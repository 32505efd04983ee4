#!/usr/bin/env bash
# WSGI hello world (13 bytes), 2 workers, wrk with 16 keep-alive connections:
# molt vs uWSGI (--http-socket + 'Connection: close', see issue 3) vs gunicorn (sync),
# in the same run; then molt with --max-requests 100 vs without.
# Usage: benches/wsgi.sh [seconds per run, default 10]  (ROUNDS=N interleaved rounds, default 2)
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-10}
CONNS=16
WORKERS=2
VENV=target/bench-venv
APP_DIR=benches
LOGDIR=target/bench-logs
mkdir -p "$LOGDIR"

if ! command -v wrk >/dev/null; then
    apt-get install -y wrk >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y wrk >/dev/null; }
fi
if [ ! -x "$VENV/bin/uwsgi" ] || [ ! -x "$VENV/bin/gunicorn" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet uwsgi gunicorn
fi
cargo build --release --quiet
MOLT=target/release/molt

PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -INT "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Waits (at most 30 s) until the server answers the hello world.
wait_ready() {
    for _ in $(seq 300); do
        if curl -sf -m 1 "http://127.0.0.1:$1/" 2>/dev/null | grep -q 'Hello, World!'; then return 0; fi
        sleep 0.1
    done
    echo "server on port $1 never answered" >&2; return 1
}

# Stops a server we started, by pid, and waits for it.
stop() {
    kill -INT "$1" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
    kill -KILL "$1" 2>/dev/null || true
}

# run NAME PORT: warm up, then wrk; prints "NAME rps errors".
run_wrk() {
    local name=$1 port=$2 out
    wrk -t2 -c$CONNS -d1s "http://127.0.0.1:$port/" >/dev/null
    out=$(wrk -t2 -c$CONNS -d"${DURATION}s" --latency "http://127.0.0.1:$port/")
    echo "$out" > "$LOGDIR/$name.wrk"
    local rps errs
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    errs=$(echo "$out" | awk '/Non-2xx/ {n+=$NF} /Socket errors/ {gsub(",",""); n+=$4+$6+$8+$10} END {print n+0}')
    printf '%-22s %10s req/s   errors %s\n' "$name" "$rps" "$errs" >&2
    echo "$rps $errs"
}

bench_molt() {
    local name=$1; shift
    local port; port=$(free_port)
    # Like for like: no request log for any server (uWSGI runs with --disable-logging,
    # gunicorn has no access log unless asked); benches/observe.sh measures the log's cost.
    $MOLT --http-socket "127.0.0.1:$port" --processes $WORKERS --wsgi-file $APP_DIR/hello_wsgi.py \
        --disable-logging "$@" \
        >"$LOGDIR/$name.log" 2>&1 &
    local pid=$!; PIDS+=("$pid")
    wait_ready "$port"
    python3 benches/conns16.py 127.0.0.1 "$port" $CONNS >"$LOGDIR/$name.conns" || true
    run_wrk "$name" "$port"
    stop "$pid"
}

bench_uwsgi() {
    local port; port=$(free_port)
    "$VENV/bin/uwsgi" --http-socket "127.0.0.1:$port" --add-header 'Connection: close' --master \
        --processes $WORKERS --wsgi-file $APP_DIR/hello_wsgi.py --disable-logging \
        >"$LOGDIR/uwsgi.log" 2>&1 &
    local pid=$!; PIDS+=("$pid")
    wait_ready "$port"
    run_wrk uwsgi "$port"
    stop "$pid"
}

bench_gunicorn() {
    local port; port=$(free_port)
    "$VENV/bin/gunicorn" --chdir $APP_DIR -w $WORKERS -k sync -b "127.0.0.1:$port" --log-level warning \
        hello_wsgi:application >"$LOGDIR/gunicorn.log" 2>&1 &
    local pid=$!; PIDS+=("$pid")
    wait_ready "$port"
    run_wrk gunicorn "$port"
    stop "$pid"
}

ROUNDS=${ROUNDS:-2}
echo "WSGI hello world, $WORKERS workers, wrk -t2 -c$CONNS -d${DURATION}s, $ROUNDS rounds, $(nproc) cores" >&2
ratio() { python3 -c "print('%.2f' % ($1 / $2))"; }
mean() { python3 -c "import sys; v=[float(x) for x in sys.argv[1:]]; print('%.0f' % (sum(v)/len(v)))" "$@"; }
# Interleaved rounds (molt, molt --max-requests 100, uWSGI, gunicorn, again), so drift on
# this shared machine hits every server alike; ratios are per round, then of the means.
molt_all=(); uwsgi_all=(); gun_all=(); mr_all=(); errs=0; per_round=()
for r in $(seq "$ROUNDS"); do
    read -r m e < <(bench_molt molt); molt_all+=("$m"); errs=$((errs + e))
    # Right after the plain run: the pair sees the same machine, so drift cancels out.
    read -r x e < <(bench_molt molt-max-requests-100 --max-requests 100); mr_all+=("$x"); mr_err=$((${mr_err:-0} + e))
    read -r u e < <(bench_uwsgi); uwsgi_all+=("$u"); errs=$((errs + e))
    read -r g e < <(bench_gunicorn); gun_all+=("$g"); errs=$((errs + e))
    per_round+=("round $r: molt/uWSGI $(ratio "$m" "$u"), molt/gunicorn $(ratio "$m" "$g"), max-requests=100 $(ratio "$x" "$m")")
done
molt_rps=$(mean "${molt_all[@]}"); uwsgi_rps=$(mean "${uwsgi_all[@]}")
gun_rps=$(mean "${gun_all[@]}"); mr_rps=$(mean "${mr_all[@]}")

echo
printf '%s\n' "${per_round[@]}"
echo "molt serves all $CONNS connections at once: $(cat "$LOGDIR/molt.conns")"
echo "molt / uWSGI            = $(ratio "$molt_rps" "$uwsgi_rps")   (means; target >= 1.0, goal >= 1.5)"
echo "molt / gunicorn         = $(ratio "$molt_rps" "$gun_rps")   (means; target >= 5)"
echo "molt max-requests=100   = $(ratio "$mr_rps" "$molt_rps") of molt   (means; target >= 0.9), errors $mr_err (target 0)"
echo "errors in the other runs: $errs"
echo "recycles during the last max-requests run: $(grep -c 'max-requests' "$LOGDIR/molt-max-requests-100.log" || true)"
