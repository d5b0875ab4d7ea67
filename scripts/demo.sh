#!/usr/bin/env bash
# The demo, from a fresh Debian 12 machine: install, then `librarian demo`.
# Arguments go to `librarian demo` (e.g. --dir /tmp/librarian-demo).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
exec .venv/bin/librarian demo "$@"
