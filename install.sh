#!/usr/bin/env bash
# Builds Offload and installs the `offload` command.
#   ./install.sh              → /usr/local/bin/offload as root, else ~/.local/bin/offload
#   PREFIX=/opt/x ./install.sh → /opt/x/bin/offload
# Needs the .NET 10 SDK and git; a C toolchain (clang or gcc) makes the CLI and the daemon native programs (fast to
# start, half the memory); without one both are built with ReadyToRun instead.
set -euo pipefail
cd "$(dirname "$0")"

command -v dotnet >/dev/null 2>&1 || { echo "install.sh: the .NET 10 SDK is missing: https://dot.net/download (or apt-get install dotnet-sdk-10.0)" >&2; exit 1; }
command -v git >/dev/null 2>&1 || { echo "install.sh: git is missing: apt-get install git" >&2; exit 1; }

if [ -z "${PREFIX:-}" ]; then
  if [ "$(id -u)" = 0 ]; then PREFIX=/usr/local; else PREFIX="$HOME/.local"; fi
fi
LIB="$PREFIX/lib/offload"
BIN="$PREFIX/bin"

echo "install.sh: building Offload (Release)…"
# Built aside and swapped in whole, so files of an earlier version never linger beside the new ones; a failed
# build leaves the installed version as it was. A daemon still running keeps its files until it stops.
rm -rf "$LIB.new"
scripts/publish.sh "$LIB.new" >/dev/null
rm -rf "$LIB.old"
if [ -d "$LIB" ]; then mv "$LIB" "$LIB.old"; fi
mv "$LIB.new" "$LIB"
rm -rf "$LIB.old"
mkdir -p "$BIN"
ln -sf "$LIB/offload" "$BIN/offload"
echo "install.sh: installed $BIN/offload (program files in $LIB)"

case ":$PATH:" in
  *":$BIN:"*) ;;
  *) echo "install.sh: $BIN is not on your PATH; add it: export PATH=\"$BIN:\$PATH\"" ;;
esac
if ! command -v bwrap >/dev/null 2>&1; then
  echo "install.sh: note: bubblewrap is not installed, so the agent's commands will ask before running; install it: sudo apt-get install bubblewrap"
fi
