#!/usr/bin/env bash
# Install fedsim and everything it needs on a Debian machine, idempotently.
#
#   1. Debian packages: the offline data sets (dataset-fashion-mnist, and
#      bible-kjv with its text bible-kjv-text), and chromium with
#      chromium-driver for the HTML report's browser test, when they are
#      missing (needs root; skipped with a notice otherwise).
#   2. A virtual environment in .venv (override with FEDSIM_VENV).
#   3. torch, pinned (override with FEDSIM_TORCH, e.g. "torch==2.13.0"):
#      on this project's CPU machines pip takes a CPU build from local disk;
#      on a machine with an NVIDIA GPU the same pin from PyPI is a CUDA build.
#      To force a CPU build elsewhere set
#      FEDSIM_TORCH_INDEX=https://download.pytorch.org/whl/cpu
#   4. fedsim itself, editable, with its test and tracking extras (MLflow, TensorBoard).
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${FEDSIM_VENV:-.venv}
TORCH=${FEDSIM_TORCH:-torch==2.13.0}
PY=${PYTHON:-python3}

need_apt=()
[ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] || need_apt+=(dataset-fashion-mnist)
command -v bible >/dev/null && bible Ge1:1 >/dev/null 2>&1 || need_apt+=(bible-kjv bible-kjv-text)
command -v chromium >/dev/null || need_apt+=(chromium)
command -v chromedriver >/dev/null || need_apt+=(chromium-driver)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "[install] apt-get install ${need_apt[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  else
    echo "[install] not root: please run 'sudo apt-get install ${need_apt[*]}'" >&2
  fi
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "[install] creating virtual environment $VENV"
  "$PY" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check -q)
# Some machines' pip configuration names local package folders that may be absent;
# pip then warns once per package. Drop those lines, keep every other message.
pip_quiet() { "${PIP[@]}" "$@" 2> >(grep -v "^WARNING: Location 'file://" >&2); }

if ! "$VENV/bin/python" -c "import torch" >/dev/null 2>&1; then
  echo "[install] $TORCH"
  if [ -n "${FEDSIM_TORCH_INDEX:-}" ]; then
    pip_quiet install "$TORCH" --index-url "$FEDSIM_TORCH_INDEX"
  else
    pip_quiet install "$TORCH"
  fi
fi

echo "[install] fedsim and its dependencies"
pip_quiet install -e ".[test,tracking]"
echo "[install] done: $("$VENV/bin/python" -c 'import torch, flwr, opacus; print(f"torch {torch.__version__} (cuda={torch.cuda.is_available()}), flwr {flwr.__version__}, opacus {opacus.__version__}")')"
