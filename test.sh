#!/usr/bin/env bash
# Runs every test: installs what the tests need (bubblewrap, the real claude CLI) when missing, publishes offload and
# offload-daemon the way install.sh does (Native AOT CLI), then dotnet test. The end-to-end tests run the published
# programs (OFFLOAD_TEST_PROGRAMS); without it, they run the plain builds next to the test assembly.
set -euo pipefail
cd "$(dirname "$0")"
./scripts/test-deps.sh
echo "test.sh: publishing offload and offload-daemon into artifacts/published"
./scripts/publish.sh artifacts/published
OFFLOAD_TEST_PROGRAMS="$PWD/artifacts/published" dotnet test Offload.slnx -c Release --nologo "$@"
