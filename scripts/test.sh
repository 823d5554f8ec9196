#!/usr/bin/env bash
# Sets up .venv, then runs the linters and the whole test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check kao tests
.venv/bin/ruff format --check kao tests
.venv/bin/python -m pytest -q "$@"
