#!/usr/bin/env bash
# Publishes Offload's two programs into one folder, the way they ship:
#   offload         the CLI, Native AOT (starts in milliseconds; needs a C toolchain: clang or gcc)
#   offload-daemon  the daemon and the Simulator server, Native AOT too (started by offload; light and quick to start)
# Usage: scripts/publish.sh DEST [extra dotnet publish arguments]
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: scripts/publish.sh DEST" >&2; exit 2; }
dest="$1"; shift
cd "$(dirname "$0")/.."

cli=() daemon=()
if ! command -v clang >/dev/null 2>&1 && ! command -v gcc >/dev/null 2>&1; then
  echo "publish: no C toolchain (clang or gcc) for the Native AOT builds; building both programs with ReadyToRun instead: the CLI starts ≈ 10× slower and the daemon takes about twice the memory. For the fast, light build: apt-get install clang (or gcc), then run this again" >&2
  cli=(-p:PublishAot=false -p:PublishReadyToRun=true --self-contained false)
  daemon=(-p:PublishAot=false)
fi
dotnet publish src/Offload/Offload.csproj -c Release -o "$dest" --nologo -v quiet -p:GenerateDocumentationFile=false "${cli[@]}" "$@" >&2
dotnet publish src/Offload.Daemon/Offload.Daemon.csproj -c Release -o "$dest" --nologo -v quiet -p:GenerateDocumentationFile=false "${daemon[@]}" "$@" >&2
rm -f "$dest/offload.dbg" "$dest/offload-daemon.dbg" "$dest"/*.pdb   # debug symbols (16 MB, 68 MB); nothing reads them
