#!/usr/bin/env bash
# Runs every test: installs what the tests need (bubblewrap, the real claude CLI) when missing, then dotnet test.
set -euo pipefail
cd "$(dirname "$0")"
./scripts/test-deps.sh
dotnet test Offload.slnx -c Release --nologo "$@"
