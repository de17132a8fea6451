#!/usr/bin/env bash
# Create the virtual environment and install knowlearn with its test tools.
# torch first: with no GPU, the CPU build (torch 2.13.0 is pinned because a CPU wheel of it
# is what `pip install torch==2.13.0` finds on our machines; a bare `pip install torch`
# pulls a multi-GB CUDA build). Set TORCH_SPEC to choose another build.
set -euo pipefail
venv=${1:-.venv}
python3 -m venv "$venv"
py="$venv/bin/python"
if ! "$py" -c "import torch" 2>/dev/null; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi >/dev/null 2>&1; then
    spec=${TORCH_SPEC:-torch>=2.3}
  else
    spec=${TORCH_SPEC:-torch==2.13.0}
  fi
  echo "setup: installing $spec"
  "$py" -m pip install --quiet --disable-pip-version-check "$spec"
fi
"$py" -m pip install --quiet --disable-pip-version-check -e ".[dev]"
"$py" -c "import torch, transformers; print(f'setup: torch {torch.__version__}, transformers {transformers.__version__}')"
