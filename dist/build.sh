#!/usr/bin/env bash
# Build both release tracks and write them, with SHA-256 sums, to dist/out/.
#   core: cargo build --release                  (small, low RAM; wasmi sandbox)
#   edge: cargo build --release --features edge  (JIT sandbox and heavier features)
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
out=dist/out
mkdir -p "$out"
version=$(cargo metadata --no-deps --format-version 1 | sed -n 's/.*"version":"\([^"]*\)".*/\1/p' | head -n1)
arch=$(uname -m)

cargo build --release --locked
cp "$target/release/openclaw-rs" "$out/openclaw-rs-$version-core-$arch"
cargo build --release --locked --features edge
cp "$target/release/openclaw-rs" "$out/openclaw-rs-$version-edge-$arch"

for track in core edge; do
  bin="$out/openclaw-rs-$version-$track-$arch"
  reported=$("$bin" --home "$(mktemp -d)" status --json | sed -n 's/.*"buildTrack": *"\([a-z]*\)".*/\1/p')
  [ "$reported" = "$track" ] || { echo "$bin reports track '$reported', expected '$track'" >&2; exit 1; }
done
(cd "$out" && sha256sum openclaw-rs-"$version"-* > SHA256SUMS && cat SHA256SUMS && ls -l)
