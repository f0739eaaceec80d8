#!/usr/bin/env bash
# MedServer installer for Linux and macOS.
#
#   bash install.sh                 # asks for a Hugging Face token, installs MedServer
#   bash install.sh --yes           # no questions (CI, scripts)
#   bash install.sh --yes --dev     # also the test tools, Debian's chromium and nginx
#   bash install.sh --model 4       # then download MedGemma 1.5 4B's weights
#   bash install.sh --wheelhouse DIR   # no internet: install from a folder of wheels
#   bash install.sh --help
#
# It creates .venv in this folder (kept when it already exists), installs
# PyTorch first (pinned), then MedServer itself in editable mode, then the
# optional GPU extras the machine can use: on Linux with a GPU of compute
# capability 8.0 or newer, SGLang in an environment of its own (.venv-sglang).
# Running it again is safe and quick: everything already in place is left as it is.
set -euo pipefail

TORCH_VERSION="${TORCH_VERSION:-2.13.0}"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${ROOT}/.venv"
# SGLang pins other torch and transformers releases than MedServer: it gets an
# environment of its own, from which MedServer starts its server.
SGLANG_VENV="${ROOT}/.venv-sglang"
SGLANG_REQUIREMENTS="${ROOT}/scripts/sglang-requirements.txt"
ENV_FILE="${ROOT}/.env"

usage() {
  cat <<EOF
Usage: bash install.sh [options]

Install MedServer into ${VENV}.

Options:
  --yes                    ask no questions (no Hugging Face token prompt)
  --dev                    also install the test tools (the [dev] extra) and,
                           with apt-get, Debian's chromium, nginx and openssl
                           for the browser and reverse-proxy tests
  --hf-token TOKEN         save this Hugging Face token to .env (mode 600)
  --model 4|27|27t         then download that model's weights (medserver download)
  --wheelhouse DIR         install every package from the wheels in DIR, with no
                           index and no internet (make DIR on a connected machine
                           with scripts/make_wheelhouse.sh; SGLang's wheels go in
                           DIR/sglang, made with its --sglang)
  --python PATH            the Python (3.10 or newer; 3.11 or newer for SGLang) to
                           build .venv and .venv-sglang with (default: python3,
                           then python)
  --torch-index-url URL    where pip gets PyTorch, e.g. the CPU-only index
                           https://download.pytorch.org/whl/cpu on a machine
                           without an NVIDIA GPU (avoids multi-GB CUDA wheels)
  -h, --help               show this help and exit

Environment:
  TORCH_VERSION            the PyTorch release to install (default: ${TORCH_VERSION})
EOF
}

say() { printf '==> %s\n' "$*"; }
note() { printf '    %s\n' "$*"; }
warn() { printf 'install.sh: warning: %s\n' "$*" >&2; }
die() {
  printf 'install.sh: error: %s\n' "$*" >&2
  exit 1
}

# --- Flags --------------------------------------------------------------------
ASSUME_YES=0
DEV=0
HF_TOKEN_ARG=""
PYTHON_ARG=""
TORCH_INDEX_URL=""
MODEL=""
WHEELHOUSE=""

need_value() {
  # need_value FLAG NUMBER-OF-REMAINING-ARGS
  [ "$2" -ge 2 ] || die "$1 needs a value (see bash install.sh --help)"
}

while [ $# -gt 0 ]; do
  case "$1" in
    --yes | -y) ASSUME_YES=1 ;;
    --dev) DEV=1 ;;
    --hf-token)
      need_value "$1" $#
      HF_TOKEN_ARG="$2"
      shift
      ;;
    --hf-token=*) HF_TOKEN_ARG="${1#*=}" ;;
    --python)
      need_value "$1" $#
      PYTHON_ARG="$2"
      shift
      ;;
    --python=*) PYTHON_ARG="${1#*=}" ;;
    --torch-index-url)
      need_value "$1" $#
      TORCH_INDEX_URL="$2"
      shift
      ;;
    --torch-index-url=*) TORCH_INDEX_URL="${1#*=}" ;;
    --model)
      need_value "$1" $#
      MODEL="$2"
      shift
      ;;
    --model=*) MODEL="${1#*=}" ;;
    --wheelhouse)
      need_value "$1" $#
      WHEELHOUSE="$2"
      shift
      ;;
    --wheelhouse=*) WHEELHOUSE="${1#*=}" ;;
    -h | --help)
      usage
      exit 0
      ;;
    *) die "unknown option '$1' (see bash install.sh --help)" ;;
  esac
  shift
done

if [ -n "$HF_TOKEN_ARG" ] && [[ "$HF_TOKEN_ARG" =~ [[:space:]\"\'] ]]; then
  die "the Hugging Face token must not contain spaces or quotes"
fi
case "$MODEL" in
  "" | 4 | 27 | 27t) ;;
  *) die "--model takes 4, 27 or 27t (the models that download), not '$MODEL'" ;;
esac
if [ -n "$WHEELHOUSE" ]; then
  [ -z "$TORCH_INDEX_URL" ] || die "--wheelhouse and --torch-index-url do not go together: the wheelhouse holds PyTorch"
  [ -d "$WHEELHOUSE" ] || die "--wheelhouse $WHEELHOUSE: no such folder"
  WHEELHOUSE="$(cd "$WHEELHOUSE" && pwd)"
  compgen -G "${WHEELHOUSE}/*.whl" >/dev/null || die "--wheelhouse $WHEELHOUSE holds no wheels (*.whl); make it with scripts/make_wheelhouse.sh"
fi

cd "$ROOT"

# --- 1. Python 3.10 or newer ----------------------------------------------------
say "Checking Python"
if [ -n "$PYTHON_ARG" ]; then
  PYTHON="$PYTHON_ARG"
  command -v "$PYTHON" >/dev/null 2>&1 || die "--python $PYTHON: no such program"
elif command -v python3 >/dev/null 2>&1; then
  PYTHON="python3"
elif command -v python >/dev/null 2>&1; then
  PYTHON="python"
else
  die "Python 3.10 or newer is needed and none was found. Install it (Debian/Ubuntu: sudo apt-get install python3 python3-venv), or pass --python PATH."
fi

python_ok() {
  "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' 2>/dev/null
}
python_version() {
  "$1" -c 'import sys; print(".".join(map(str, sys.version_info[:3])))' 2>/dev/null || echo "unknown"
}

if ! python_ok "$PYTHON"; then
  die "MedServer needs Python 3.10 or newer; $PYTHON is $(python_version "$PYTHON"). Install a newer Python, or pass --python /path/to/python3.11."
fi
note "$PYTHON ($(python_version "$PYTHON"))"

# --- 2. The virtual environment (.venv, created once) -------------------------
VENV_PY="${VENV}/bin/python"
if [ -e "$VENV" ]; then
  say "Using the existing virtual environment .venv"
  if ! "$VENV_PY" -c 'pass' >/dev/null 2>&1; then
    die ".venv exists but its Python does not run (moved or upgraded?). Remove it with 'rm -rf .venv' and run install.sh again."
  fi
  python_ok "$VENV_PY" || die ".venv has Python $(python_version "$VENV_PY"); MedServer needs 3.10 or newer. Remove it with 'rm -rf .venv' and run install.sh again."
else
  say "Creating the virtual environment .venv"
  if ! "$PYTHON" -m venv "$VENV"; then
    rm -rf "$VENV"
    die "could not create .venv with $PYTHON. On Debian/Ubuntu install the venv module first: sudo apt-get install python3-venv"
  fi
fi

# With --wheelhouse, pip looks at that folder only: no index, no network.
PIP_SOURCE=()
if [ -n "$WHEELHOUSE" ]; then
  PIP_SOURCE=(--no-index --find-links "$WHEELHOUSE")
fi

pip_install() {
  "$VENV_PY" -m pip install -q --disable-pip-version-check "${PIP_SOURCE[@]}" "$@"
}

editable_install() {
  # PYTHONWARNINGS: setuptools' generic "editable installation" banner is noise here.
  PYTHONWARNINGS=ignore pip_install -c "$CONSTRAINTS" -e "$@"
}

# --- 3. pip --------------------------------------------------------------------
if [ -n "$WHEELHOUSE" ]; then
  say "Installing from the wheelhouse ${WHEELHOUSE} (no index, no network)"
  if compgen -G "${WHEELHOUSE}/pip-*.whl" >/dev/null; then
    pip_install --upgrade pip
  else
    note "No pip wheel there; keeping .venv's pip"
  fi
else
  say "Upgrading pip"
  pip_install --upgrade pip
fi

# --- 4. NVIDIA GPU --------------------------------------------------------------
GPU_NAME=""
GPU_CC=""
if command -v nvidia-smi >/dev/null 2>&1; then
  # One line per GPU, e.g. "NVIDIA H100 80GB HBM3, 9.0"; the first one decides.
  gpu_line="$(nvidia-smi --query-gpu=name,compute_cap --format=csv,noheader 2>/dev/null | head -n 1 || true)"
  if [ -n "$gpu_line" ]; then
    GPU_NAME="$(printf '%s' "${gpu_line%,*}" | sed 's/^ *//; s/ *$//')"
    GPU_CC="$(printf '%s' "${gpu_line##*,}" | tr -d ' ')"
  fi
fi
if [ -n "$GPU_NAME" ]; then
  say "NVIDIA GPU found: $GPU_NAME (compute capability ${GPU_CC:-unknown})"
else
  say "No NVIDIA GPU found (nvidia-smi absent or silent); MedServer will run on the CPU"
fi

cc_at_least_8() {
  [ -n "$GPU_CC" ] && awk -v cc="$GPU_CC" 'BEGIN { exit !(cc + 0 >= 8.0) }'
}

# --- 5. PyTorch, pinned, before anything that depends on it --------------------
torch_args=("torch==${TORCH_VERSION}")
if [ -n "$TORCH_INDEX_URL" ]; then
  torch_args+=(--index-url "$TORCH_INDEX_URL")
  say "Installing PyTorch ${TORCH_VERSION} from ${TORCH_INDEX_URL}"
elif [ -n "$WHEELHOUSE" ]; then
  say "Installing PyTorch ${TORCH_VERSION} from the wheelhouse"
else
  say "Installing PyTorch ${TORCH_VERSION} (the first time can take minutes: CUDA builds are large)"
fi
pip_install "${torch_args[@]}"

# Later installs must not swap this torch for another release.
CONSTRAINTS="$(mktemp)"
trap 'rm -f "$CONSTRAINTS"' EXIT
printf 'torch==%s\n' "$TORCH_VERSION" >"$CONSTRAINTS"

# --- 6. MedServer itself (editable), with the test tools for --dev -------------
if [ "$DEV" -eq 1 ]; then
  say "Installing MedServer and its test tools (pip install -e \".[dev]\")"
  editable_install ".[dev]"
else
  say "Installing MedServer (pip install -e .)"
  editable_install .
fi

# --- 7. Optional GPU extras: a failure is a warning, never the end --------------
EXTRAS=()
# optional_extra NAME: install .[NAME]; pip's messages go to a log kept only on failure.
optional_extra() {
  local log="${VENV}/install-$1.log"
  if editable_install ".[$1]" >"$log" 2>&1; then
    rm -f "$log"
    EXTRAS+=("$1")
  else
    return 1
  fi
}

# SGLang, in .venv-sglang: sglang and the releases it pins, as listed in
# scripts/sglang-requirements.txt. MedServer finds it there (or --sglang-python).
SGLANG_STATE="not installed (it needs Linux and an NVIDIA GPU of compute capability 8.0 or newer)"
SGLANG_PY="${SGLANG_VENV}/bin/python"
SGLANG_VERSION_PROBE="from importlib.metadata import version; print(version('sglang'))"
install_sglang() {
  local log="${VENV}/install-sglang.log" line wanted requirements=() source=()
  while IFS= read -r line || [ -n "$line" ]; do
    line="${line%%#*}"
    line="$(printf '%s' "$line" | tr -d '[:space:]')"
    [ -z "$line" ] || requirements+=("$line")
  done <"$SGLANG_REQUIREMENTS"
  wanted="${requirements[0]#sglang==}"
  if [ -x "$SGLANG_PY" ] && [ "$("$SGLANG_PY" -c "$SGLANG_VERSION_PROBE" 2>/dev/null)" = "$wanted" ]; then
    say "SGLang ${wanted} is already installed in .venv-sglang"
    SGLANG_STATE="SGLang ${wanted} in .venv-sglang"
    return 0
  fi
  if ! "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
    SGLANG_STATE="not installed: SGLang ${wanted} needs Python 3.11 or newer, and $PYTHON is $(python_version "$PYTHON")"
    warn "SGLang ${wanted} needs Python 3.11 or newer and $PYTHON is $(python_version "$PYTHON"); MedServer will use the Transformers engine. Run again with --python python3.11 (or newer)."
    return 1
  fi
  if [ -n "$WHEELHOUSE" ]; then
    if ! compgen -G "${WHEELHOUSE}/sglang/*.whl" >/dev/null; then
      SGLANG_STATE="not installed: the wheelhouse has no sglang/ folder of wheels"
      warn "the wheelhouse has no SGLang wheels (${WHEELHOUSE}/sglang/*.whl; make them with scripts/make_wheelhouse.sh --sglang); MedServer will use the Transformers engine."
      return 1
    fi
    source=(--no-index --find-links "${WHEELHOUSE}/sglang")
  fi
  say "Installing SGLang ${wanted} into its own environment .venv-sglang: ${requirements[*]}"
  note "It pins torch and transformers releases other than MedServer's, so it lives apart;"
  note "MedServer starts SGLang's server with .venv-sglang/bin/python. The first time takes a while."
  if {
    { [ -x "$SGLANG_PY" ] || "$PYTHON" -m venv "$SGLANG_VENV"; } \
      && if [ -z "$WHEELHOUSE" ] || compgen -G "${WHEELHOUSE}/sglang/pip-*.whl" >/dev/null; then
        "$SGLANG_PY" -m pip install -q --disable-pip-version-check "${source[@]}" --upgrade pip
      fi \
      && "$SGLANG_PY" -m pip install -q --disable-pip-version-check "${source[@]}" "${requirements[@]}"
  } >"$log" 2>&1; then
    rm -f "$log"
    SGLANG_STATE="SGLang ${wanted} in .venv-sglang"
    return 0
  fi
  # A half-made environment would pass for an install; the log says what failed.
  rm -rf "$SGLANG_VENV"
  SGLANG_STATE="not installed (see .venv/install-sglang.log)"
  warn "SGLang ${wanted} could not be installed into .venv-sglang; MedServer will use the Transformers engine. pip's messages: .venv/install-sglang.log"
  return 1
}

if [ -n "$GPU_NAME" ]; then
  if [ "$(uname -s)" = "Linux" ] && cc_at_least_8; then
    install_sglang || true
  else
    note "SGLang skipped: it needs Linux and a GPU of compute capability 8.0 or newer."
  fi
  say "Installing 4-bit quantization support (pip install -e \".[quantize]\")"
  if ! optional_extra quantize; then
    warn "bitsandbytes could not be installed, so -q (4-bit weights) will not work. pip's messages: .venv/install-quantize.log"
  fi
fi

# --- 8. System tools for the tests (--dev only): chromium, nginx, openssl ------
# The browser tests drive /usr/bin/chromium; the reverse-proxy tests run nginx
# with a certificate made by openssl. Debian/Ubuntu packages, through apt-get.
SYSTEM_PROBLEM=""
if [ "$DEV" -eq 1 ]; then
  missing=()
  [ -x /usr/bin/chromium ] || missing+=(chromium)
  command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx)
  command -v openssl >/dev/null 2>&1 || missing+=(openssl)
  if [ ${#missing[@]} -eq 0 ]; then
    say "Test tools from the system: chromium, nginx and openssl are already installed"
  elif ! command -v apt-get >/dev/null 2>&1; then
    SYSTEM_PROBLEM="the tests need ${missing[*]} (chromium at /usr/bin/chromium) and this system has no apt-get to install Debian's packages. Install them yourself."
  else
    SUDO=()
    if [ "$(id -u)" -ne 0 ]; then
      if command -v sudo >/dev/null 2>&1; then
        SUDO=(sudo)
      else
        SYSTEM_PROBLEM="the tests need Debian's ${missing[*]}; run 'apt-get install ${missing[*]}' as root (sudo is not available here)."
      fi
    fi
    if [ -z "$SYSTEM_PROBLEM" ]; then
      say "Installing Debian's ${missing[*]} for the tests (${SUDO[*]:+sudo }apt-get install ${missing[*]})"
      # policy-rc.d may stop the nginx package from starting its service; the tests
      # start their own nginx, so that is fine either way.
      if ! "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq \
        || ! "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null \
        || [ ! -x /usr/bin/chromium ]; then
        SYSTEM_PROBLEM="'apt-get install ${missing[*]}' failed, so some tests cannot run. See apt-get's messages above."
      fi
    fi
  fi
fi

# --- 9. Hugging Face token, in .env (mode 600), never in shell rc files --------
env_has_token() {
  [ -f "$ENV_FILE" ] && grep -Eq '^[[:space:]]*(export[[:space:]]+)?HF_TOKEN=.+' "$ENV_FILE"
}

write_token() {
  local token="$1" tmp
  tmp="$(umask 077 && mktemp "${ROOT}/.env.XXXXXX")"
  if [ -f "$ENV_FILE" ]; then
    grep -Ev '^[[:space:]]*(export[[:space:]]+)?HF_TOKEN=' "$ENV_FILE" >"$tmp" || true
  fi
  printf 'HF_TOKEN=%s\n' "$token" >>"$tmp"
  chmod 600 "$tmp"
  mv -f "$tmp" "$ENV_FILE"
}

TOKEN_STATE=""
if [ -n "$HF_TOKEN_ARG" ]; then
  write_token "$HF_TOKEN_ARG"
  TOKEN_STATE="saved to .env"
elif env_has_token; then
  TOKEN_STATE="already in .env"
elif [ "$ASSUME_YES" -eq 0 ] && [ -t 0 ]; then
  say "Hugging Face token"
  note "The MedGemma models are gated: accept their terms on huggingface.co, then paste"
  note "a read token from https://huggingface.co/settings/tokens (Enter to skip)."
  token=""
  read -rs -p "    HF token: " token || true
  printf '\n'
  if [ -z "$token" ]; then
    TOKEN_STATE="not set (the demo model and local folders need none)"
  elif [[ "$token" =~ [[:space:]\"\'] ]]; then
    warn "that token has spaces or quotes in it; not saved. Run again with --hf-token TOKEN."
    TOKEN_STATE="not set"
  else
    write_token "$token"
    TOKEN_STATE="saved to .env"
  fi
  unset token
else
  TOKEN_STATE="not set (add HF_TOKEN=... to .env or pass --hf-token; the demo model needs none)"
fi

# --- 10. The model's weights (--model only), with medserver's own downloader -----
MODEL_STATE=""
MODEL_PROBLEM=""
if [ -n "$MODEL" ]; then
  say "Downloading the weights of -m $MODEL (medserver download -m $MODEL; run again to resume)"
  if "${VENV}/bin/medserver" download -m "$MODEL"; then
    MODEL_STATE="-m $MODEL downloaded"
  else
    MODEL_STATE="-m $MODEL NOT downloaded (see the error above)"
    MODEL_PROBLEM="the weights of -m $MODEL could not be downloaded (see above); MedServer itself is installed. Retry with: .venv/bin/medserver download -m $MODEL"
  fi
fi

# --- 11. Summary ----------------------------------------------------------------
say "Summary"
if [ -n "$WHEELHOUSE" ]; then
  note "Installed from the wheelhouse $WHEELHOUSE, without the network"
fi
"$VENV_PY" -c 'import sys, torch; print(f"    Python {sys.version.split()[0]}, torch {torch.__version__}, CUDA available: {torch.cuda.is_available()}")'
if [ -n "$GPU_NAME" ]; then
  note "GPU: $GPU_NAME (compute capability ${GPU_CC:-unknown})"
  if ! "$VENV_PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
    warn "PyTorch cannot use the GPU: a CPU-only build, or a driver problem (check nvidia-smi). For a CUDA build: .venv/bin/pip uninstall -y torch && bash install.sh"
  fi
else
  note "GPU: none found"
fi
note "SGLang engine: $SGLANG_STATE"
if [ ${#EXTRAS[@]} -gt 0 ]; then
  note "Optional extras: ${EXTRAS[*]}"
else
  note "Optional extras: none"
fi
if [ "$DEV" -eq 1 ]; then
  note "Test tools: installed (.[dev])"
fi
note "Hugging Face token: $TOKEN_STATE"
if [ -n "$MODEL_STATE" ]; then
  note "Model weights: $MODEL_STATE"
fi

if [ -n "$SYSTEM_PROBLEM" ]; then
  die "$SYSTEM_PROBLEM"
fi
if [ -n "$MODEL_PROBLEM" ]; then
  die "$MODEL_PROBLEM"
fi

printf '\nNext:\n'
if [ -n "$MODEL" ]; then
  note "source .venv/bin/activate && medserver -m $MODEL"
else
  note "source .venv/bin/activate && medserver -m demo    # tiny built-in model, no GPU, no download"
  note "source .venv/bin/activate && medserver -m 4       # MedGemma 1.5 4B (needs the token and a GPU)"
fi
note "To run it at boot, behind nginx: README.md, \"Run as a service\" and \"Behind a reverse proxy\"."
