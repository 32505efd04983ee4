#!/usr/bin/env bash
# What the Python zygote buys a Django project: how long a recycled worker takes to be
# ready, and the throughput of Django's admin login page under wrk with and without
# --max-requests, with the app imported once in the zygote (default) and with
# --lazy-apps (imported in every child, as molt did before the zygote).
# Usage: benches/django_recycle.sh [seconds per run, default 8]
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-8}
LOGDIR=target/bench-logs
mkdir -p "$LOGDIR"
command -v wrk >/dev/null || apt-get install -y wrk >/dev/null
python3 -c 'import django' 2>/dev/null || pip install --quiet -r tools/requirements-test.txt
cargo build --release --quiet
MOLT=target/release/molt

WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -INT "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT
(cd "$WORK" && python3 -m django startproject mysite >/dev/null)
echo "ALLOWED_HOSTS = ['*']" >> "$WORK/mysite/mysite/settings.py"
(cd "$WORK/mysite" && python3 manage.py migrate --noinput >/dev/null)

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# run NAME ARGS...: molt on the project; prints "rps errors median-ready-ms recycles".
run() {
    local name=$1; shift
    local port; port=$(free_port)
    $MOLT --http-socket "127.0.0.1:$port" --processes 2 --chdir "$WORK/mysite" \
        --module mysite.wsgi:application --env DJANGO_SETTINGS_MODULE=mysite.settings \
        --disable-logging "$@" >"$LOGDIR/django-$name.log" 2>&1 &
    local pid=$!; PIDS+=("$pid")
    for _ in $(seq 300); do
        curl -sf -o /dev/null "http://127.0.0.1:$port/admin/login/" && break
        sleep 0.1
    done
    wrk -t2 -c16 -d1s "http://127.0.0.1:$port/admin/login/" >/dev/null
    local out; out=$(wrk -t2 -c16 -d"${DURATION}s" "http://127.0.0.1:$port/admin/login/")
    kill -INT "$pid"; wait "$pid" 2>/dev/null || true
    local rps errs ready recycles
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    errs=$(echo "$out" | awk '/Non-2xx/ {n+=$NF} /Socket errors/ {gsub(",",""); n+=$4+$6+$8+$10} END {print n+0}')
    # Readiness of the replacements only (the first two workers boot with the zygote).
    ready=$(grep -o 'ready in [0-9]* ms' "$LOGDIR/django-$name.log" | awk 'NR > 2 {print $3}' | sort -n |
        awk '{v[NR]=$1} END {if (NR) print v[int((NR+1)/2)]; else print "-"}')
    recycles=$(grep -c 'recycling: max-requests' "$LOGDIR/django-$name.log" || true)
    printf '%-28s %8s req/s  errors %s  replacement ready in %s ms (median)  recycles %s\n' \
        "$name" "$rps" "$errs" "$ready" "$recycles" >&2
    echo "$rps"
}

echo "Django $(python3 -c 'import django; print(django.get_version())') admin login page, 2 workers, wrk -t2 -c16 -d${DURATION}s, $(nproc) cores" >&2
plain=$(run zygote)
mr=$(run zygote-max-requests-100 --max-requests 100)
lazy=$(run lazy-apps --lazy-apps)
lazy_mr=$(run lazy-apps-max-requests-100 --lazy-apps --max-requests 100)
ratio() { python3 -c "print('%.2f' % ($1 / $2))"; }
echo
echo "max-requests=100 / none, app imported in the zygote: $(ratio "$mr" "$plain")"
echo "max-requests=100 / none, --lazy-apps:               $(ratio "$lazy_mr" "$lazy")"
