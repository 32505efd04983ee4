#!/usr/bin/env bash
# End-to-end benchmark of molt against nginx, and of molt's recycling cost (issue 2).
#
# One run measures, on 127.0.0.1 with one listening port and 2 worker processes each:
#   1. molt --demo vs nginx (return 200 "Hello, World!"), wrk -t2 -c16 keep-alive;
#   2. molt --max-requests 100 vs the plain molt of (1), same load, with wrk's errors;
#   3. molt --max-requests 1 --min-worker-lifetime 0, one client, a new connection per
#      request (Connection: close): requests per second and errors;
#   4. benches/fairness.py: 16 keep-alive connections on 2 workers, none may starve.
# Each load is run ROUNDS times (interleaved, so drift on this shared machine hits every
# server alike) and every round is printed; ratios use the mean of the rounds.
#
# Exits non-zero only when the setup fails; a missed target is reported as MISSED.
# Environment: DURATION (s per wrk run, default 10), WARMUP (s, default 2), ROUNDS (default 2).
set -euo pipefail

DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
ROUNDS=${ROUNDS:-2}
WORKERS=2

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TMP=$(mktemp -d "${TMPDIR:-/tmp}/molt-bench.XXXXXX")
PIDS=()

die() {
    echo "e2e.sh: setup failed: $*" >&2
    exit 2
}

# Stops only the processes this script started, by pid: TERM, a grace, then KILL.
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- setup -----------------------------------------------------------------------------

need_install=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need_install+=(nginx)
command -v wrk >/dev/null 2>&1 || need_install+=(wrk)
if [ ${#need_install[@]} -gt 0 ]; then
    echo "installing ${need_install[*]}" >&2
    # Only refresh the package lists when the install cannot find the packages.
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_install[@]}" >"$TMP/apt.log" 2>&1; then
        apt-get update -qq >>"$TMP/apt.log" 2>&1 || die "apt-get update (see $TMP/apt.log)"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_install[@]}" >>"$TMP/apt.log" 2>&1 \
            || { cat "$TMP/apt.log" >&2; die "apt-get install ${need_install[*]}"; }
    fi
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
command -v python3 >/dev/null 2>&1 || die "python3 is needed for fairness.py"
command -v curl >/dev/null 2>&1 || die "curl is needed for readiness checks"

echo "building molt (release)" >&2
(cd "$ROOT" && cargo build --release --quiet) || die "cargo build --release"
MOLT="$ROOT/target/release/molt"

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_ready() { # url pid
    for _ in $(seq 100); do
        kill -0 "$2" 2>/dev/null || return 1
        curl -fs -o /dev/null --max-time 1 "$1" && return 0
        sleep 0.1
    done
    return 1
}

start_molt() { # name port args...
    local name=$1 port=$2
    shift 2
    RUST_LOG=${MOLT_LOG:-info} "$MOLT" --demo --http-socket "127.0.0.1:$port" --processes "$WORKERS" "$@" \
        2>"$TMP/$name.log" &
    local pid=$!
    PIDS+=("$pid")
    wait_ready "http://127.0.0.1:$port/" "$pid" || { tail -20 "$TMP/$name.log" >&2; die "$name did not start"; }
}

start_nginx() { # port
    local port=$1 user=""
    mkdir -p "$TMP/nginx/tmp"
    # As root, nginx would switch its workers to nobody: keep them as the current user.
    [ "$(id -u)" = 0 ] && user="user $(id -un) $(id -gn);"
    cat >"$TMP/nginx/nginx.conf" <<EOF
$user
worker_processes $WORKERS;
daemon off;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 65;
    client_body_temp_path $TMP/nginx/tmp;
    proxy_temp_path $TMP/nginx/tmp;
    fastcgi_temp_path $TMP/nginx/tmp;
    uwsgi_temp_path $TMP/nginx/tmp;
    scgi_temp_path $TMP/nginx/tmp;
    server {
        listen 127.0.0.1:$port;
        default_type text/plain;
        location / { return 200 "Hello, World!"; }
    }
}
EOF
    "$NGINX" -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" -e "$TMP/nginx/error.log" 2>"$TMP/nginx/stderr.log" &
    local pid=$!
    PIDS+=("$pid")
    wait_ready "http://127.0.0.1:$port/" "$pid" || { cat "$TMP/nginx/stderr.log" "$TMP/nginx/error.log" >&2; die "nginx did not start"; }
}

# --- measuring -------------------------------------------------------------------------

# wrk's summary: "Requests/sec: N", and only when non-zero "Socket errors: connect A,
# read B, write C, timeout D" and "Non-2xx or 3xx responses: N".
rps_of() { awk '/^Requests\/sec:/ {printf "%.0f", $2}' "$1"; }
errors_of() {
    awk '/Socket errors:/ {gsub(",", ""); n += $4 + $6 + $8 + $10}
         /Non-2xx or 3xx responses:/ {n += $5}
         END {print n + 0}' "$1"
}

run_wrk() { # out-file wrk-args... ; prints nothing, leaves wrk's output in out-file
    local out=$1
    shift
    wrk "$@" >"$out" 2>&1 || die "wrk failed: $(cat "$out")"
    [ -n "$(rps_of "$out")" ] || die "cannot read wrk's output: $(cat "$out")"
}

MOLT_PORT=$(free_port)
NGINX_PORT=$(free_port)
MR100_PORT=$(free_port)
MR1_PORT=$(free_port)

start_nginx "$NGINX_PORT"
MOLT_LOG=warn start_molt molt "$MOLT_PORT"
start_molt mr100 "$MR100_PORT" --max-requests 100
start_molt mr1 "$MR1_PORT" --max-requests 1 --min-worker-lifetime 0

KEEPALIVE=(-t2 -c16)
SEQUENTIAL=(-t1 -c1 -H "Connection: close")
declare -A URL=(
    [nginx]="http://127.0.0.1:$NGINX_PORT/"
    [molt]="http://127.0.0.1:$MOLT_PORT/"
    [mr100]="http://127.0.0.1:$MR100_PORT/"
    [mr1]="http://127.0.0.1:$MR1_PORT/"
)
SERVERS=(nginx molt mr100 mr1)
load() { # server out-file wrk-args...: the sequential load for mr1, keep-alive otherwise
    local s=$1 out=$2
    shift 2
    if [ "$s" = mr1 ]; then
        run_wrk "$out" "${SEQUENTIAL[@]}" "$@" "${URL[$s]}"
    else
        run_wrk "$out" "${KEEPALIVE[@]}" "$@" "${URL[$s]}"
    fi
}
recycles() { grep -c 'recycling: max-requests' "$TMP/$1.log" || true; }

echo "warming up (${WARMUP}s each)" >&2
for s in "${SERVERS[@]}"; do
    load "$s" "$TMP/warmup-$s.txt" -d"${WARMUP}s"
done
# Recycles caused by the warm-up are not part of the figures.
WARM_MR100=$(recycles mr100)
WARM_MR1=$(recycles mr1)

declare -A RPS ERR
for r in $(seq "$ROUNDS"); do
    for s in "${SERVERS[@]}"; do
        out="$TMP/round$r-$s.txt"
        load "$s" "$out" --latency -d"${DURATION}s"
        RPS[$s,$r]=$(rps_of "$out")
        ERR[$s,$r]=$(errors_of "$out")
        printf 'round %d  %-6s %8s req/s  errors %s\n' "$r" "$s" "${RPS[$s,$r]}" "${ERR[$s,$r]}" >&2
    done
done
RECYCLES_MR100=$(($(recycles mr100) - WARM_MR100))
RECYCLES_MR1=$(($(recycles mr1) - WARM_MR1))

echo "fairness: 16 keep-alive connections on $WORKERS molt workers" >&2
FAIR_STATUS=OK
python3 "$ROOT/benches/fairness.py" --port "$MOLT_PORT" --connections 16 --seconds 4 >"$TMP/fairness.txt" 2>&1 \
    || FAIR_STATUS=MISSED
FAIR_LINE=$(tail -1 "$TMP/fairness.txt")

# --- report ----------------------------------------------------------------------------

mean() { # server
    local s=$1 sum=0 r
    for r in $(seq "$ROUNDS"); do sum=$((sum + RPS[$s,$r])); done
    echo $((sum / ROUNDS))
}
rounds() { # server -> "a / b"
    local s=$1 r out=""
    for r in $(seq "$ROUNDS"); do out+="${out:+ / }${RPS[$s,$r]}"; done
    echo "$out"
}
errsum() {
    local s=$1 sum=0 r
    for r in $(seq "$ROUNDS"); do sum=$((sum + ERR[$s,$r])); done
    echo "$sum"
}
ratios() { # a b -> per-round ratios "x / y" (adjacent rounds see the same machine load)
    local r out=""
    for r in $(seq "$ROUNDS"); do out+="${out:+ / }$(ratio "${RPS[$1,$r]}" "${RPS[$2,$r]}")"; done
    echo "$out"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", (b > 0 ? a / b : 0)}'; }
verdict() { awk -v v="$1" -v t="$2" 'BEGIN {print (v >= t ? "ok" : "MISSED")}'; }

R_NGINX=$(ratio "$(mean molt)" "$(mean nginx)")
R_MR100=$(ratio "$(mean mr100)" "$(mean molt)")
E_MR100=$(errsum mr100)
E_MR1=$(errsum mr1)
zero() { [ "$1" = 0 ] && echo ok || echo MISSED; }

cat <<EOF

molt e2e benchmark  $(date -u '+%Y-%m-%d %H:%M UTC')  $(nproc) cores, $WORKERS workers, wrk ${DURATION}s x $ROUNDS rounds
load: keep-alive = wrk -t2 -c16; sequential = wrk -t1 -c1 -H 'Connection: close'

figure                                   rounds (req/s)          mean      target     result
nginx, keep-alive                        $(printf '%-22s %8s' "$(rounds nginx)" "$(mean nginx)")
molt, keep-alive                         $(printf '%-22s %8s' "$(rounds molt)" "$(mean molt)")
molt / nginx                             $(printf '%-22s %8s   %-10s %s' "$(ratios molt nginx)" "$R_NGINX" ">= 0.80" "$(verdict "$R_NGINX" 0.8)")
molt --max-requests 100, keep-alive      $(printf '%-22s %8s' "$(rounds mr100)" "$(mean mr100)")
  ratio to plain molt                    $(printf '%-22s %8s   %-10s %s' "$(ratios mr100 molt)" "$R_MR100" ">= 0.90" "$(verdict "$R_MR100" 0.9)")
  errors (socket + non-2xx)              $(printf '%-22s %8s   %-10s %s' "" "$E_MR100" "0" "$(zero "$E_MR100")")
  workers recycled                       $(printf '%-22s %8s' "" "$RECYCLES_MR100")
molt --max-requests 1, sequential        $(printf '%-22s %8s   %-10s %s' "$(rounds mr1)" "$(mean mr1)" ">= 2000" "$(verdict "$(mean mr1)" 2000)")
  errors (socket + non-2xx)              $(printf '%-22s %8s   %-10s %s' "" "$E_MR1" "0" "$(zero "$E_MR1")")
  workers recycled                       $(printf '%-22s %8s' "" "$RECYCLES_MR1")
fairness, 16 conns on $WORKERS workers          $FAIR_LINE  $FAIR_STATUS
EOF
