#!/usr/bin/env bash
# Installs what the tests need on a fresh machine (idempotent, quick when done already).
# Each block says which tests need it.
set -euo pipefail
cd "$(dirname "$0")/.."

# Python packages for the WSGI / Django tests (issue 3) and stats tools (issue 6).
if [ -s tools/requirements-test.txt ]; then
    python3 -m pip install --quiet --disable-pip-version-check -r tools/requirements-test.txt
fi

# Debian packages for the observability tests (issue 6): tmux runs uwsgitop (it has no
# one-shot mode), chromium screenshots the live page; wrk is for benches/observe.sh.
missing=()
for pkg in tmux chromium wrk; do
    command -v "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
