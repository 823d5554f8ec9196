#!/usr/bin/env bash
# Creates (or updates) the virtual environment .venv in the checkout and installs kao into it,
# editable, with its default dependencies: what `kao analyze`, `kao detect` and the other
# everyday commands need (scripts/test.sh adds the extras and test tools: `.[dev]`).
#   bash scripts/setup.sh              kao
#   bash scripts/setup.sh --baselines  also face_recognition 1.3 (dlib), for `kao eval`/`kao bench`
set -euo pipefail
cd "$(dirname "$0")/.."

python=$(command -v python3.11 || command -v python3 || true)
if [ -z "$python" ]; then
  echo "setup: Python 3.10 or newer is needed (python3.11 or python3 on PATH)" >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
pip=(.venv/bin/python -m pip install --quiet --disable-pip-version-check)
"${pip[@]}" --upgrade pip
"${pip[@]}" -e .

if [ "${1:-}" = "--baselines" ]; then
  # kao[eval]: face_recognition_models, setuptools<81 (for its pkg_resources) and httpx.
  # face_recognition itself asks for dlib, which pip would compile: installed without it.
  "${pip[@]}" -e ".[eval]"
  "${pip[@]}" --no-deps face_recognition==1.3.0
fi
echo "setup: kao is installed in .venv (run .venv/bin/kao --help)"
