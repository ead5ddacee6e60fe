#!/usr/bin/env bash
# Run a Windows release archive under wine (Debian's wine64) and check the commands a user
# starts with; print ok/FAIL per step. Needs `wine`, `unzip` and (for wine before 9)
# `gcc-mingw-w64-x86-64`.
#
#   bash dist/smoke-wine.sh dist/out/openclaw-rs-VERSION-core-x86_64-windows.zip [PREFIX]
#
# PREFIX (default /var/tmp/openclaw-rs-wine) is the wine prefix, made on first use and kept
# (dist/wine/prefix.sh). Nothing needs a display: the smoke list is console commands.
set -euo pipefail
cd "$(dirname "$0")/.."
archive=${1:?usage: smoke-wine.sh ARCHIVE.zip [PREFIX]}
# shellcheck source=dist/wine/prefix.sh
. dist/wine/prefix.sh
wine_prefix "${2:-/var/tmp/openclaw-rs-wine}"
echo "wine: $(wine --version) prefix $WINEPREFIX"

fixture=$PWD/tests/fixtures/wasm/echo.wat
archive=$(readlink -f "$archive")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
unzip -q "$archive" -d "$work"
cd "$work"/openclaw-rs-*/
cp "$fixture" echo.wat

pass=0
fail=0
# check NAME COMMAND...: run in the unpacked archive; the state dir is a Windows path in the
# prefix (Z: is wine's view of /).
check() {
  local name=$1
  shift
  local log
  if log=$(NO_COLOR=1 bash -c "$*" 2>&1); then
    echo "ok   $name"
    pass=$((pass + 1))
  else
    echo "FAIL $name"
    sed 's/^/     /' <<<"$log" | tail -n 20
    fail=$((fail + 1))
  fi
}
state="Z:$(pwd | tr / '\\')\\state"
o="wine ./openclaw-rs.exe --home '$state'"

check "--help" "$o --help | grep -q 'terminal workstation'"
check "--version --verbose" "$o --version --verbose | tee /dev/stderr | grep -q 'x86_64-pc-windows-gnu'"
check "status --json" "$o status --json | grep -q '\"buildTrack\": *\"core\"'"
# The doctor exits 1 when it finds something at warn or above; 2 (it could not run) fails.
check "doctor --json" "$o doctor --json > doctor.json; rc=\$?; [ \$rc -le 1 ] && grep -q '\"findings\"' doctor.json"
# The audit names the checks that do not apply on Windows instead of passing them silently.
check "security audit --json" "$o security audit --json > audit.json; rc=\$?; [ \$rc -le 1 ] && grep -q 'summary.not_applicable' audit.json"
check "memory add" "$o memory add 'the wine smoke test stores this note' --tag smoke"
check "memory search" "$o memory search 'wine note' --json | grep -q 'smoke test stores'"
check "sandbox run (wasmi)" "$o sandbox run echo.wat --backend wasmi --input '{\"text\":\"hi\"}' | grep -q hi"
check "--batch round trip" "printf '%s\n' '{\"id\":1,\"method\":\"status\"}' '{\"id\":2,\"method\":\"memory.search\",\"params\":{\"query\":\"wine\"}}' | $o --batch > batch.out && [ \$(grep -c '\"ok\":true' batch.out) -eq 2 ]"
check "man page and completions shipped" "test -s man/man1/openclaw-rs.1 && test -s completions/_openclaw-rs.ps1"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
