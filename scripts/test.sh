#!/usr/bin/env bash
# Sets up .venv with every extra and the test tools (`.[dev]`), then runs the linters, the whole
# test suite (extra arguments go to pytest and skip the next step) and scripts/install_check.sh
# (the wheel installed into a fresh environment, its commands run from there).
# The gallery tests also run against PostgreSQL: $KAO_TEST_POSTGRES_URL when set, else the test
# server of scripts/postgres.sh (installed and started on first use). Outside CI, a failure to
# start it only skips those tests; with CI=true it stops the run. The browser tests need
# Chromium and Playwright (scripts/browser.sh installs them), treated the same way.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[dev]"
.venv/bin/ruff check kao tests
.venv/bin/ruff format --check kao tests
if [ -z "${KAO_TEST_POSTGRES_URL:-}" ]; then
  if url=$(bash scripts/postgres.sh start); then
    export KAO_TEST_POSTGRES_URL=$url
  elif [ "${CI:-}" = "true" ]; then
    echo "test.sh: could not start PostgreSQL for the gallery tests" >&2
    exit 1
  else
    echo "test.sh: PostgreSQL is not available; its gallery tests will be skipped" >&2
  fi
fi
if ! bash scripts/browser.sh; then
  if [ "${CI:-}" = "true" ]; then
    echo "test.sh: could not install Chromium and Playwright for the browser tests" >&2
    exit 1
  fi
  echo "test.sh: Chromium or Playwright is not available; the browser tests will be skipped" >&2
fi
.venv/bin/python -m pytest -q "$@"
if [ "$#" -eq 0 ]; then  # the whole suite (as CI runs it), not a chosen test file
  bash scripts/install_check.sh
fi
