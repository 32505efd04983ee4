#!/usr/bin/env bash
# Installs what the tests need on a fresh machine (idempotent, quick when done already).
# Each block says which tests need it.
set -euo pipefail
cd "$(dirname "$0")/.."

# Python packages for the WSGI / Django tests (issue 3) and stats tools (issue 6).
if [ -s tools/requirements-test.txt ]; then
    python3 -m pip install --quiet --disable-pip-version-check -r tools/requirements-test.txt
fi

# nginx for the uwsgi_pass tests (tests/launch.rs, issue 5); systemd-socket-activate comes
# with the systemd package (the socket-activation test skips itself without it).
if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx
fi
