#!/usr/bin/env bash
# Installs what the tests need on a fresh machine (idempotent, quick when done already).
# Each block says which tests need it.
set -euo pipefail
cd "$(dirname "$0")/.."

# Python packages for the WSGI / Django tests (issue 3) and stats tools (issue 6).
if [ -s tools/requirements-test.txt ]; then
    python3 -m pip install --quiet --disable-pip-version-check -r tools/requirements-test.txt
fi

# Debian packages: nginx for the uwsgi_pass tests (tests/launch.rs, issue 5); tmux runs
# uwsgitop (it has no one-shot mode) and chromium screenshots the live page (tests/observe.rs,
# issue 6); wrk drives benches/; systemd provides systemd-socket-activate for the socket
# activation test (issue 5).
missing=()
for pkg in nginx tmux chromium wrk; do
    command -v "$pkg" >/dev/null 2>&1 || [ -x "/usr/sbin/$pkg" ] || missing+=("$pkg")
done
command -v systemd-socket-activate >/dev/null 2>&1 || missing+=(systemd)
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
