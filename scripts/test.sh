#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine: install, lint, pytest.
# Arguments go to pytest (e.g. -k binning, -x).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh test
.venv/bin/ruff check collector app tests bench
exec .venv/bin/python -m pytest "$@"
