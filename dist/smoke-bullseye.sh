#!/usr/bin/env bash
# Run a Linux release archive inside Debian 11 (bullseye: glibc 2.31, as Ubuntu 20.04) and
# check the commands a user starts with. Needs root (chroot) and debootstrap.
#
#   bash dist/smoke-bullseye.sh dist/out/openclaw-rs-VERSION-core-x86_64-linux.tar.gz [ROOT]
#
# ROOT (default /var/tmp/openclaw-rs-bullseye) is made with `debootstrap --variant=minbase
# bullseye` on first use and kept for the next run.
set -euo pipefail
cd "$(dirname "$0")/.."
archive=${1:?usage: smoke-bullseye.sh ARCHIVE.tar.gz [ROOT]}
root=${2:-/var/tmp/openclaw-rs-bullseye}

if [ ! -x "$root/bin/sh" ]; then
  debootstrap --variant=minbase bullseye "$root" http://deb.debian.org/debian >&2
fi
echo "root: $(chroot "$root" sh -c '. /etc/os-release; echo $PRETTY_NAME') glibc $(chroot "$root" ldd --version | head -n1 | grep -o '[0-9.]*$')"

work="$root/smoke"
rm -rf "$work"
mkdir -p "$work"
tar -xzf "$archive" -C "$work" --strip-components=1
cp tests/fixtures/wasm/echo.wat "$work/echo.wat"
mounted=false
if ! mountpoint -q "$root/proc"; then
  mount -t proc proc "$root/proc"
  mounted=true
fi
cleanup() {
  $mounted && umount "$root/proc"
  rm -rf "$work"
}
trap cleanup EXIT

pass=0
fail=0
# check NAME COMMAND...: run inside the root as a user would (HOME in the root, no network).
check() {
  local name=$1
  shift
  local log
  if log=$(chroot "$root" env -i HOME=/smoke/home PATH=/usr/bin:/bin NO_COLOR=1 \
    sh -c "cd /smoke && $*" 2>&1); then
    echo "ok   $name"
    pass=$((pass + 1))
  else
    echo "FAIL $name"
    sed 's/^/     /' <<<"$log" | tail -n 20
    fail=$((fail + 1))
  fi
}
o="./openclaw-rs --home /smoke/state"

check "--help" "$o --help | grep -q 'terminal workstation'"
check "--version --verbose" "$o --version --verbose | tee /dev/stderr | grep -q '^track: '"
check "status --json" "$o status --json | grep -q '\"buildTrack\"'"
# The doctor exits 1 when it finds something at warn or above (a fresh install has notes
# only); anything else (2: it could not run) fails.
check "doctor --json" "$o doctor --json > doctor.json; rc=\$?; [ \$rc -le 1 ] && grep -q '\"findings\"' doctor.json"
check "security audit --json" "$o security audit --json > audit.json; rc=\$?; [ \$rc -le 1 ] && grep -q '\"findings\"' audit.json"
check "memory add" "$o memory add 'the bullseye smoke test stores this note' --tag smoke"
check "memory search" "$o memory search 'bullseye note' --json | grep -q 'smoke test stores'"
check "sandbox run (wasmi)" "$o sandbox run echo.wat --backend wasmi --input '{\"text\":\"hi\"}' | grep -q hi"
# The edge track's own backend: Cranelift compiling to machine code in that older root.
if [[ $(basename "$archive") == *-edge-* ]]; then
  check "sandbox run (wasmtime)" "$o sandbox run echo.wat --backend wasmtime --input '{\"text\":\"hi\"}' | grep -q hi"
fi
check "--batch round trip" "printf '%s\n' '{\"id\":1,\"method\":\"status\"}' '{\"id\":2,\"method\":\"memory.search\",\"params\":{\"query\":\"bullseye\"}}' | $o --batch > batch.out && [ \$(grep -c '\"ok\":true' batch.out) -eq 2 ]"
check "man page and completions shipped" "test -s man/man1/openclaw-rs.1 && test -s completions/openclaw-rs.bash"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
