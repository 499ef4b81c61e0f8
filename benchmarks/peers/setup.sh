#!/usr/bin/env bash
# One virtual environment per peer under .peers/<name> (git-ignored), from the package index by name only.
# Not part of ric's install and not run by .ci/run.  Usage: bash benchmarks/peers/setup.sh [crypten|concrete]
# The versions pinned below are the ones that installed and ran on this machine (docs/results/peers.md).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
peers="$root/.peers"
mkdir -p "$peers"
want="${1:-all}"

findpy() {  # findpy 3.10: that Python, on PATH or from pyenv
    if "python$1" -V >/dev/null 2>&1; then command -v "python$1"; return; fi
    local d; for d in "$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")"/versions/"$1".*; do
        if [ -x "$d/bin/python$1" ]; then echo "$d/bin/python$1"; return; fi; done
    echo "no python$1 found (set PY_CRYPTEN / PY_CONCRETE)" >&2; return 1
}

mkvenv() {  # mkvenv NAME PYTHON PACKAGES...
    local name="$1" py="$2"; shift 2
    if [ ! -x "$peers/$name/bin/python" ]; then "$py" -m venv "$peers/$name"; fi
    nice -n 19 "$peers/$name/bin/python" -m pip install -q --upgrade pip
    nice -n 19 "$peers/$name/bin/python" -m pip install -q "$@"
    "$peers/$name/bin/python" -m pip freeze > "$peers/$name/freeze.txt"
}

# PEERS_FROZEN=1: install exactly the set that ran for docs/results/peers.md (freeze-<name>.txt beside this
# script, complete lists, so --no-deps). Disk: ~3.7 GB for crypten, ~6.2 GB for concrete (CUDA torch wheels).
if [ "${PEERS_FROZEN:-0}" = 1 ]; then
    for name in crypten concrete; do
        if [ "$want" = all ] || [ "$want" = "$name" ]; then
            [ -x "$peers/$name/bin/python" ] || "$(findpy 3.10)" -m venv "$peers/$name"
            nice -n 19 "$peers/$name/bin/python" -m pip install -q --no-deps -r "$(dirname "$0")/freeze-$name.txt"
        fi
    done
    exit 0
fi

# CrypTen 0.4.1 (last release, 2022) predates Python 3.11 and torch 2.x: give it Python 3.10 and torch 1.13.
# PyPI's torch 1.13.1 wheel is the CUDA build (~2 GB with its nvidia-* wheels); it runs on CPU.
if [ "$want" = all ] || [ "$want" = crypten ]; then
    # crypten 0.4.1 requires the withdrawn "sklearn" placeholder, which no longer builds: install it without
    # dependencies and give it its requirements by hand (scikit-learn for sklearn).
    mkvenv crypten "${PY_CRYPTEN:-$(findpy 3.10)}" \
        "torch==1.13.1" "torchvision==0.14.1" "numpy<2" "onnx==1.13.1" "omegaconf" "pandas" "pyyaml" \
        "tensorboard" "future" "scipy" "scikit-learn" "safetensors" "psutil"
    nice -n 19 "$peers/crypten/bin/python" -m pip install -q --no-deps "crypten==0.4.1"
    "$peers/crypten/bin/python" -m pip freeze > "$peers/crypten/freeze.txt"
fi
# Concrete ML pins its own torch (2.3.1 for 1.9.0, CPU build from PyPI is again the CUDA wheel).
if [ "$want" = all ] || [ "$want" = concrete ]; then
    mkvenv concrete "${PY_CONCRETE:-$(findpy 3.10)}" "concrete-ml==1.9.0" "safetensors" "psutil"
fi
