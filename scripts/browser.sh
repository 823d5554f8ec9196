#!/usr/bin/env bash
# Installs what the browser tests (tests/test_web.py) need: Debian's Chromium and, in .venv,
# Playwright for Python (the dev extra of pyproject.toml). Playwright drives /usr/bin/chromium;
# its own browser download (`playwright install`) is never used. Idempotent: quick when both
# are there. Exit code 0 when the tests can run; progress and errors go to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "browser.sh: $*" >&2; }
die() {
  say "$*"
  exit 1
}

# Runs a command as root: directly, or through passwordless sudo.
as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    sudo -n "$@"
  else
    die "Chromium is not installed and this user cannot install it: run as root, or install \
the Debian package chromium yourself"
  fi
}

if [ ! -x /usr/bin/chromium ]; then
  command -v apt-get >/dev/null || die "no /usr/bin/chromium and no apt-get to install it"
  if ! apt-cache policy chromium 2>/dev/null | grep -q 'Candidate: [0-9]'; then
    say "updating the apt package lists"
    as_root apt-get update -qq >&2
  fi
  say "installing the Debian package chromium"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >&2
fi
version=$(/usr/bin/chromium --version 2>/dev/null) || die "/usr/bin/chromium does not run"

[ -x .venv/bin/python ] || die "no .venv: run bash scripts/setup.sh first"
if ! .venv/bin/python -c "import playwright.sync_api" 2>/dev/null; then
  say "installing Playwright for Python into .venv"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[dev]" >&2
fi
.venv/bin/python -c "import playwright.sync_api" || die "Playwright did not install"
say "ready: $version, Playwright $(.venv/bin/python -m pip show playwright 2>/dev/null | sed -n 's/^Version: //p')"
