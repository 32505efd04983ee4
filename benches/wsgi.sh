#!/usr/bin/env bash
# WSGI hello world (13 bytes), 2 workers, wrk with 16 keep-alive connections:
# molt vs uWSGI (--http-socket + 'Connection: close', see issue 3) vs gunicorn (sync),
# in the same run; then molt with --max-requests 100 vs without.
# Usage: benches/wsgi.sh [seconds per run, default 10]
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
    $MOLT --http-socket "127.0.0.1:$port" --processes $WORKERS --wsgi-file $APP_DIR/hello_wsgi.py "$@" \
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

echo "WSGI hello world, $WORKERS workers, wrk -t2 -c$CONNS -d${DURATION}s, $(nproc) cores" >&2
read -r molt_rps molt_err < <(bench_molt molt)
read -r uwsgi_rps uwsgi_err < <(bench_uwsgi)
read -r gun_rps gun_err < <(bench_gunicorn)
read -r mr_rps mr_err < <(bench_molt molt-max-requests-100 --max-requests 100)

ratio() { python3 -c "print('%.2f' % ($1 / $2))"; }
echo
echo "molt serves all $CONNS connections at once: $(cat "$LOGDIR/molt.conns")"
echo "molt / uWSGI            = $(ratio "$molt_rps" "$uwsgi_rps")   (target >= 1.0, goal >= 1.5)"
echo "molt / gunicorn         = $(ratio "$molt_rps" "$gun_rps")   (target >= 5)"
echo "molt max-requests=100   = $(ratio "$mr_rps" "$molt_rps") of molt   (target >= 0.9), errors $mr_err (target 0)"
echo "errors: molt $molt_err, uwsgi $uwsgi_err, gunicorn $gun_err"
echo "recycles during the max-requests run: $(grep -c 'max-requests' "$LOGDIR/molt-max-requests-100.log" || true)"
