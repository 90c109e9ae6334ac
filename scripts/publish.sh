#!/usr/bin/env bash
# Publishes Offload's two programs into one folder, the way they ship:
#   offload         the CLI, Native AOT (starts in milliseconds; needs a C toolchain: clang or gcc)
#   offload-daemon  the daemon and the Simulator server, ReadyToRun (started by offload)
# Usage: scripts/publish.sh DEST [extra dotnet publish arguments]
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: scripts/publish.sh DEST" >&2; exit 2; }
dest="$1"; shift
cd "$(dirname "$0")/.."

cli=()
if ! command -v clang >/dev/null 2>&1 && ! command -v gcc >/dev/null 2>&1; then
  echo "publish: no C toolchain (clang or gcc) for the Native AOT build of the CLI; building it with ReadyToRun instead, which starts ≈ 10× slower. For the fast CLI: apt-get install clang (or gcc), then run this again" >&2
  cli=(-p:PublishAot=false -p:PublishReadyToRun=true --self-contained false)
fi
dotnet publish src/Offload/Offload.csproj -c Release -o "$dest" --nologo -v quiet -p:GenerateDocumentationFile=false "${cli[@]}" "$@" >&2
dotnet publish src/Offload.Daemon/Offload.Daemon.csproj -c Release -o "$dest" --nologo -v quiet -p:GenerateDocumentationFile=false "$@" >&2
rm -f "$dest/offload.dbg"   # the AOT build's separate debug symbols (16 MB); nothing reads them
