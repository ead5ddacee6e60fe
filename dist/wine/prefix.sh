# Sourced by dist/build.sh and dist/smoke-wine.sh: `wine_prefix [DIR]` makes WINEPREFIX (DIR,
# else $WINEPREFIX, else /var/tmp/openclaw-rs-wine) a prefix our .exe starts in, console only.
# `wineboot` makes it on first use (about a minute) and it is kept for the next run.
#
# Rust's std and getrandom seed from ProcessPrng in bcryptprimitives.dll (Windows 10 and
# later); wine 8 has no such DLL (wine 10 has), so a prefix without one gets a stand-in
# answering from RtlGenRandom (bcryptprimitives.c beside this file; it is never shipped).
# Without it the .exe stops before main, with nothing on stdout.
wine_prefix() {
  export WINEPREFIX=${1:-${WINEPREFIX:-/var/tmp/openclaw-rs-wine}}
  export WINEDEBUG=-all
  # No desktop: wine would otherwise try to open windows for its dialogs.
  unset DISPLAY WAYLAND_DISPLAY
  if [ ! -f "$WINEPREFIX/system.reg" ]; then
    wineboot -i >/dev/null 2>&1
  fi
  local shim="$WINEPREFIX/drive_c/windows/system32/bcryptprimitives.dll"
  if [ ! -f "$shim" ]; then
    x86_64-w64-mingw32-gcc -O2 -shared -s -o "$shim" \
      "$(dirname "${BASH_SOURCE[0]}")/bcryptprimitives.c" -ladvapi32
  fi
}
