#!/usr/bin/env bash
# Build the release archives, their SHA256SUMS and one provenance file per archive into
# dist/out/ (see dist/README.md).
#
#   bash dist/build.sh                 core and edge for every target in $TARGETS
#   TRACKS=core bash dist/build.sh     one track
#   bash dist/build.sh --repro         also build core a second time from a copy of the tree in
#                                      another directory and require byte-identical binaries
#
# TARGETS defaults to the static Linux build (x86_64-unknown-linux-musl) and Windows
# (x86_64-pc-windows-gnu, core track only, with Debian's gcc-mingw-w64-x86-64; its binary is
# checked under wine when wine is installed). Builds are
# reproducible: SOURCE_DATE_EPOCH is the commit's time unless set, and every build path is
# remapped (--remap-path-prefix), so the same commit gives the same bytes in any directory.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

TARGETS="${TARGETS:-x86_64-unknown-linux-musl x86_64-pc-windows-gnu}"
TRACKS="${TRACKS:-core edge}"
repro=false
[ "${1:-}" = "--repro" ] && repro=true

out="$root/dist/out"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
mkdir -p "$out"

export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct)}"
export CARGO_INCREMENTAL=0
version=$(cargo metadata --no-deps --format-version 1 --locked |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["packages"][0]["version"])')
commit=$(git rev-parse HEAD)
dirty=false
[ -n "$(git status --porcelain --untracked-files=no)" ] && dirty=true

# Paths that would otherwise end up in panic messages and debug sections.
remap_flags() {
  local src=$1 reg
  reg=$(cargo metadata --format-version 1 --locked 2>/dev/null | python3 -c '
import json, sys, os
pkgs = json.load(sys.stdin)["packages"]
dirs = {os.path.dirname(os.path.dirname(p["manifest_path"])) for p in pkgs if p["source"]}
print(sorted(dirs)[0] if dirs else "")')
  local flags="--remap-path-prefix=$src=/build/openclaw-rs"
  [ -n "$reg" ] && flags="$flags --remap-path-prefix=$reg=/cargo/registry/src"
  flags="$flags --remap-path-prefix=${CARGO_HOME:-$HOME/.cargo}=/cargo"
  flags="$flags --remap-path-prefix=${RUSTUP_HOME:-$HOME/.rustup}=/rustup"
  echo "$flags"
}

# Linux binaries are linked with their symbols and stripped when packed, so that
# `cargo bloat` run with this same environment (dist/README.md, "Size") reuses the build
# instead of building again. Windows keeps the profile's strip.
build_env() {
  local triple=$1
  [[ $triple == *linux* ]] && echo CARGO_PROFILE_RELEASE_STRIP=none
  return 0
}

# build SRC_DIR TARGET_DIR TRIPLE TRACK -> path of the binary
build() {
  local src=$1 tdir=$2 triple=$3 track=$4 features=()
  [ "$track" = edge ] && features=(--features edge)
  (
    cd "$src"
    env $(build_env "$triple") RUSTFLAGS="$(remap_flags "$src")" CARGO_TARGET_DIR="$tdir" \
      cargo build --release --locked --target "$triple" "${features[@]}" >&2
  )
  local exe=openclaw-rs
  [[ $triple == *windows* ]] && exe=openclaw-rs.exe
  echo "$tdir/$triple/release/$exe"
}

# How the Linux binary links: "static", or "glibc X.Y" (the newest GLIBC_ version it needs),
# failing above 2.31 (Ubuntu 20.04, Debian 11).
linkage() {
  local bin=$1
  if ! readelf -d "$bin" | grep -q NEEDED && ! readelf -l "$bin" | grep -q INTERP; then
    echo static
    return
  fi
  local floor
  floor=$(objdump -T "$bin" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -V | tail -n1)
  if [ "$(printf '%s\n2.31\n' "$floor" | sort -V | tail -n1)" != 2.31 ]; then
    echo "$bin needs glibc $floor, newer than 2.31 (Ubuntu 20.04)" >&2
    exit 1
  fi
  echo "glibc $floor"
}

# How the Windows binary links: it may import only DLLs every Windows has, never the
# mingw-w64 runtime (libgcc_s, libwinpthread, libstdc++), which a user would not have.
windows_linkage() {
  local bin=$1 dlls
  dlls=$(x86_64-w64-mingw32-objdump -p "$bin" | sed -n 's/^\s*DLL Name: //p' | sort -u)
  if grep -qiE '^(libgcc|libwinpthread|libstdc)' <<<"$dlls"; then
    echo "$bin needs the mingw-w64 runtime:"$'\n'"$dlls" >&2
    exit 1
  fi
  echo "windows, system DLLs only ($(tr '\n' ' ' <<<"$dlls" | sed 's/ $//'))"
}

# shellcheck source=dist/wine/prefix.sh
. dist/wine/prefix.sh

# Run a built binary: Windows ones under wine, in the prefix wine_prefix made.
run_bin() {
  local bin=$1
  shift
  if [[ $bin == *.exe ]]; then
    wine "$bin" "$@"
  else
    "$bin" "$@"
  fi
}

# Files with the build's date and no owner, so archives are reproducible too.
normalise() {
  find "$1" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
  find "$1" -type d -exec chmod 755 {} +
  find "$1" -type f -exec chmod 644 {} +
}

stage_root="$target_dir/dist-stage"
rm -rf "$stage_root"
mkdir -p "$stage_root"

gen="$stage_root/generated"

artifacts=()
# Track by track, so the quicker core archives for every target are done before edge's long
# link step starts.
for track in $TRACKS; do
  for triple in $TARGETS; do
    case $triple in
      *linux*) os=linux ;;
      *windows*) os=windows ;;
      *) echo "unknown target $triple" >&2; exit 2 ;;
    esac
    if [ "$os" = windows ] && [ "$track" = edge ]; then
      # wasmtime, tract and candle are not ported to Windows here (dist/README.md).
      echo "skipping edge for $triple: Windows ships the core track" >&2
      continue
    fi
    started=$(date +%s)
    bin=$(build "$root" "$target_dir" "$triple" "$track")
    echo "built $triple $track in $(($(date +%s) - started)) s" >&2
    if [ "$os" = linux ]; then
      mkdir -p "$stage_root/bin/$triple-$track"
      strip -o "$stage_root/bin/$triple-$track/openclaw-rs" "$bin"
      bin="$stage_root/bin/$triple-$track/openclaw-rs"
    fi
    # Completions and man pages come from the parser: the first Linux binary (static, so it
    # runs here) writes them for every archive; the command line is the same everywhere.
    if [ ! -d "$gen" ]; then
      [ "$os" = linux ] || { echo "put a Linux target first in TARGETS" >&2; exit 2; }
      "$bin" generate completions --out "$gen/completions" >/dev/null
      "$bin" generate man --out "$gen/man/man1" >/dev/null
    fi
    name="openclaw-rs-$version-$track-x86_64-$os"
    if [ "$os" = linux ]; then
      link=$(linkage "$bin")
    else
      link=$(windows_linkage "$bin")
    fi
    if [ "$os" = windows ] && command -v wine >/dev/null; then
      wine_prefix
    fi
    if [ "$os" = linux ] || command -v wine >/dev/null; then
      reported=$(run_bin "$bin" --home "$(mktemp -d)" status --json |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["buildTrack"])')
      [ "$reported" = "$track" ] || { echo "$bin reports track $reported" >&2; exit 1; }
      verbose=$(run_bin "$bin" --version --verbose | tr -d '\r')
      want_date=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)
      grep -qx "build date: $want_date" <<<"$verbose" ||
        { echo "$bin: build date is not SOURCE_DATE_EPOCH:"$'\n'"$verbose" >&2; exit 1; }
    else
      echo "wine is not installed: $bin is packed unchecked" >&2
    fi

    stage="$stage_root/$name"
    mkdir -p "$stage/examples"
    cp "$bin" "$stage/"
    cp README.md LICENSE-MIT LICENSE-APACHE "$stage/"
    cp -r "$gen/completions" "$stage/completions"
    cp -r "$gen/man" "$stage/man"
    cp -r themes keymaps profiles "$stage/examples/"
    normalise "$stage"
    chmod 755 "$stage/$(basename "$bin")"

    if [ "$os" = linux ]; then
      archive="$name.tar.gz"
      tar --sort=name --mtime="@$SOURCE_DATE_EPOCH" --owner=0 --group=0 --numeric-owner \
        -C "$stage_root" -cf - "$name" | gzip -n -9 >"$out/$archive"
    else
      archive="$name.zip"
      rm -f "$out/$archive"
      (cd "$stage_root" && find "$name" | LC_ALL=C sort | TZ=UTC zip -X -q -9 "$out/$archive" -@)
    fi

    size=$(stat -c %s "$bin")
    python3 dist/provenance.py --archive "$out/$archive" --binary "$bin" --target "$triple" \
      --track "$track" --commit "$commit" --dirty "$dirty" --linkage "$link" \
      --rustflags "$(remap_flags "$root")" >"$out/$name.provenance.json"
    printf '%-48s %9d bytes  %s\n' "$archive" "$size" "$link"
    artifacts+=("$archive" "$name.provenance.json")
  done
done

(cd "$out" && sha256sum "${artifacts[@]}" >SHA256SUMS && cat SHA256SUMS)

if $repro; then
  # The same commit in another directory, built into another target dir: same bytes.
  triple=${TARGETS%% *}
  copy="$target_dir/repro-src"
  rm -rf "$copy"
  git clone -q "$root" "$copy"
  git -C "$copy" checkout -q "$commit"
  first=$(build "$root" "$target_dir" "$triple" core)
  second=$(build "$copy" "$target_dir/repro-target" "$triple" core)
  if cmp -s "$first" "$second"; then
    echo "reproducible: $(sha256sum "$first" | cut -c1-64) from $root and $copy"
  else
    echo "NOT reproducible: $first and $second differ" >&2
    bash dist/repro-diff.sh "$first" "$second" >&2
    exit 1
  fi
fi
