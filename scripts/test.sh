#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine: install, lint, type
# check, start the Slurm lab (as root), pytest, stop the lab. Arguments go to
# pytest (e.g. -m "not browser and not production" for the fast suite).
#
# Without root the lab cannot start: its tests then skip with a message, except
# under CI=true, where a test that needs the lab and cannot get it fails.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh test
.venv/bin/ruff check collector app tests bench
.venv/bin/mypy   # the files and settings are in pyproject.toml

if [[ $(id -u) -eq 0 && "${LIBRARIAN_SKIP_LAB:-}" != 1 ]]; then
    trap 'tests/slurm_lab/down.sh' EXIT
    tests/slurm_lab/up.sh
fi
.venv/bin/python -m pytest "$@"
