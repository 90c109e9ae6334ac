#!/usr/bin/env bash
# Builds Offload as it ships (scripts/publish.sh: the CLI and the daemon as Native AOT) and runs the benchmarks against it.
#   bench/run.sh            all figures (a few minutes on 2 cores)
#   bench/run.sh --quick    fewer runs and turns
#   bench/run.sh --only background,memory,cpu,logs,many,cli,prompt,search,longmem,cache,runs,ui   [--claude PATH|none]
# Not part of the test suite. The figures and their goals are in docs/benchmarks.md.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
artifacts="${OFFLOAD_BENCH_ARTIFACTS:-${TMPDIR:-/tmp}/offload-bench-artifacts}"
"$root/scripts/publish.sh" "$artifacts/offload" --artifacts-path "$artifacts"
dotnet build "$root/bench/Offload.Bench" -c Release --artifacts-path "$artifacts" -v quiet -nologo >&2
cd "$root"
exec dotnet "$artifacts/bin/Offload.Bench/release/Offload.Bench.dll" --offload "$artifacts/offload/offload" "$@"
