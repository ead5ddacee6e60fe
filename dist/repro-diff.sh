#!/usr/bin/env bash
# Say where two builds of one binary differ: per ELF section (size and SHA-256), then the
# first differing bytes and any build paths that leaked into either (dist/build.sh --repro).
set -uo pipefail
a=$1 b=$2
echo "sizes: $(stat -c %s "$a") vs $(stat -c %s "$b")"
sections() { readelf -SW "$1" | sed -n 's/^ *\[ *[0-9]*\] \([^ ]*\) .*/\1/p' | grep -v '^$'; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for s in $(sections "$a"); do
  objcopy -O binary --only-section="$s" "$a" "$tmp/a" 2>/dev/null || continue
  objcopy -O binary --only-section="$s" "$b" "$tmp/b" 2>/dev/null || { echo "$s: only in $a"; continue; }
  cmp -s "$tmp/a" "$tmp/b" || echo "$s differs: $(stat -c %s "$tmp/a") vs $(stat -c %s "$tmp/b") bytes"
done
echo "first differing bytes (offset, octal a, octal b):"
cmp -l "$a" "$b" | head -n 10
for f in "$a" "$b"; do
  echo "build paths in $f:"
  strings "$f" | grep -E '^/(root|home|work|tmp)/' | sort -u | head -n 10
done
