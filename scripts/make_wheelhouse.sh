#!/usr/bin/env bash
# Prepare a wheelhouse: every package MedServer needs, as wheel files in one folder,
# for `bash install.sh --wheelhouse DIR` on a machine without internet.
#
#   bash scripts/make_wheelhouse.sh DIR                        # for a machine like this one
#   bash scripts/make_wheelhouse.sh DIR --extra quantize       # with bitsandbytes (-q)
#   bash scripts/make_wheelhouse.sh DIR --sglang               # and SGLang's own, in DIR/sglang
#   bash scripts/make_wheelhouse.sh DIR --platform manylinux_2_28_x86_64 --python-version 3.11
#   bash scripts/make_wheelhouse.sh DIR --torch-index-url https://download.pytorch.org/whl/cpu
#
# Run it on a connected machine from a checkout of the same MedServer version, then
# copy DIR and the checkout to the other machine. With no --platform, the target
# must match this machine (OS, CPU, Python minor version); pip builds wheels for
# any package published only as source. With --platform, pip fetches ready-made
# wheels for that platform only. PyTorch is pinned as in install.sh (TORCH_VERSION).
set -euo pipefail

TORCH_VERSION="${TORCH_VERSION:-2.13.0}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"

usage() {
  cat <<EOF
Usage: bash scripts/make_wheelhouse.sh DIR [options]

Put MedServer, PyTorch ${TORCH_VERSION} and every dependency into DIR as wheels.

Options:
  --extra NAME             also an optional extra: quantize or dev (repeatable)
  --sglang                 also SGLang and the releases it pins, in DIR/sglang, for
                           the environment install.sh gives it (.venv-sglang; Linux,
                           Python 3.11 or newer; several GB of CUDA wheels)
  --torch-index-url URL    where pip gets PyTorch (the CPU-only or a CUDA index;
                           default: PyPI, whose Linux wheels are CUDA builds)
  --platform TAG           prepare for another kind of machine, by pip platform tag:
                           manylinux_2_28_x86_64, manylinux_2_28_aarch64, win_amd64,
                           macosx_11_0_arm64 ...
  --python-version X.Y     that machine's Python (with --platform; default: ${PYTHON}'s)
  -h, --help               show this help and exit

Environment:
  TORCH_VERSION            the PyTorch release (default: ${TORCH_VERSION}; keep install.sh's)
  PYTHON                   the Python whose pip does the work (default: python3)
EOF
}

die() {
  printf 'make_wheelhouse.sh: error: %s\n' "$*" >&2
  exit 1
}
say() { printf '==> %s\n' "$*"; }

DIR=""
EXTRAS=()
SGLANG=0
TORCH_INDEX_URL=""
PLATFORM=""
PYTHON_VERSION=""
while [ $# -gt 0 ]; do
  case "$1" in
    --extra)
      [ $# -ge 2 ] || die "--extra needs a value"
      # SGLang was an extra once; it has its own environment (and folder) now.
      if [ "$2" = "sglang" ]; then SGLANG=1; else EXTRAS+=("$2"); fi
      shift
      ;;
    --sglang) SGLANG=1 ;;
    --torch-index-url)
      [ $# -ge 2 ] || die "--torch-index-url needs a value"
      TORCH_INDEX_URL="$2"
      shift
      ;;
    --platform)
      [ $# -ge 2 ] || die "--platform needs a value"
      PLATFORM="$2"
      shift
      ;;
    --python-version)
      [ $# -ge 2 ] || die "--python-version needs a value"
      PYTHON_VERSION="$2"
      shift
      ;;
    -h | --help)
      usage
      exit 0
      ;;
    -*) die "unknown option '$1' (see --help)" ;;
    *)
      [ -z "$DIR" ] || die "one folder only (got '$DIR' and '$1')"
      DIR="$1"
      ;;
  esac
  shift
done
[ -n "$DIR" ] || die "which folder? bash scripts/make_wheelhouse.sh DIR (see --help)"
[ -z "$PYTHON_VERSION" ] || [ -n "$PLATFORM" ] || die "--python-version goes with --platform"
command -v "$PYTHON" >/dev/null 2>&1 || die "no $PYTHON here; set PYTHON=/path/to/python3"
if [ "$SGLANG" -eq 1 ] && [ -z "$PLATFORM" ] \
  && ! "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
  die "--sglang: SGLang needs Python 3.11 or newer; set PYTHON=/path/to/python3.11 (or use --platform with --python-version 3.11)"
fi

mkdir -p "$DIR"
DIR="$(cd "$DIR" && pwd)"

# 1. MedServer itself: pure Python, one wheel for every platform.
say "Building MedServer's wheel"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$PYTHON" -m pip wheel -q --disable-pip-version-check --no-deps -w "$work" "$ROOT"
built=("$work"/medserver-*.whl)
[ -f "${built[0]}" ] || die "pip made no MedServer wheel"
MEDSERVER_WHEEL="${DIR}/$(basename "${built[0]}")"
mv -f "${built[0]}" "$MEDSERVER_WHEEL"

# The packages pip can take from DIR itself are not fetched twice.
if [ -n "$PLATFORM" ]; then
  fetch=("$PYTHON" -m pip download -q --disable-pip-version-check -d "$DIR" --find-links "$DIR"
    --only-binary=:all: --platform "$PLATFORM" --implementation cp)
  [ -z "$PYTHON_VERSION" ] || fetch+=(--python-version "$PYTHON_VERSION")
  target="$PLATFORM"
else
  fetch=("$PYTHON" -m pip wheel -q --disable-pip-version-check -w "$DIR" --find-links "$DIR")
  target="this machine's platform"
fi

# 2. PyTorch, pinned, first: from its own index when one is given.
say "Fetching PyTorch ${TORCH_VERSION} for ${target}"
torch_source=()
[ -z "$TORCH_INDEX_URL" ] || torch_source=(--index-url "$TORCH_INDEX_URL")
"${fetch[@]}" "${torch_source[@]}" "torch==${TORCH_VERSION}"

# 3. Everything else MedServer needs, and what install.sh installs with
# (pip, and setuptools for MedServer's editable install).
spec="$MEDSERVER_WHEEL"
if [ ${#EXTRAS[@]} -gt 0 ]; then
  spec="${MEDSERVER_WHEEL}[$(
    IFS=,
    echo "${EXTRAS[*]}"
  )]"
fi
say "Fetching MedServer's dependencies${EXTRAS[*]:+ and extras: ${EXTRAS[*]}}"
constraints="${work}/constraints.txt"
printf 'torch==%s\n' "$TORCH_VERSION" >"$constraints"
"${fetch[@]}" -c "$constraints" "$spec" pip setuptools

# 4. SGLang's own environment, apart: it pins another torch and transformers.
if [ "$SGLANG" -eq 1 ]; then
  requirements=()
  while IFS= read -r line || [ -n "$line" ]; do
    line="${line%%#*}"
    line="$(printf '%s' "$line" | tr -d '[:space:]')"
    [ -z "$line" ] || requirements+=("$line")
  done <"${ROOT}/scripts/sglang-requirements.txt"
  say "Fetching SGLang's environment into ${DIR}/sglang: ${requirements[*]}"
  mkdir -p "${DIR}/sglang"
  sglang_fetch=("${fetch[@]}")
  # The same command, aimed at the sub-folder (and looking for wheels there only).
  for i in "${!sglang_fetch[@]}"; do
    [ "${sglang_fetch[$i]}" != "$DIR" ] || sglang_fetch[$i]="${DIR}/sglang"
  done
  "${sglang_fetch[@]}" "${requirements[@]}" pip
fi

count="$(find "$DIR" -name '*.whl' | wc -l | tr -d ' ')"
size="$(du -sh "$DIR" | cut -f1)"
say "Done: ${count} wheels, ${size}, in ${DIR}"
cat <<EOF
Copy that folder and this checkout to the machine without internet, then run there:
    bash install.sh --wheelhouse /path/to/$(basename "$DIR")
EOF
