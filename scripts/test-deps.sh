#!/usr/bin/env bash
# Installs what the test suite needs beyond the .NET SDK, when it is missing:
#   - bubblewrap (the sandbox for the builtin Bash tool), from Debian's packages, when running as root
#   - chromium (the browser the dashboard's Playwright tests drive), from Debian's packages, when running as root
#   - the real Claude Code CLI from npm, into .tools/claude (the claude engine's tests run it)
#   - the real Codex CLI from npm, into .tools/codex (the codex engine's tests run it)
#   - the official MCP TypeScript client from npm, into .tools/mcp-sdk (the `offload mcp` tests drive the server with it)
# Safe to run again: it only installs what is not there.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v bwrap >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "test-deps: installing bubblewrap"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null
  else
    echo "test-deps: bubblewrap is missing; install it (sudo apt-get install bubblewrap) for the sandbox tests" >&2
  fi
fi

if ! [ -x /usr/bin/chromium ] && [ -z "${OFFLOAD_TEST_CHROMIUM:-}" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "test-deps: installing chromium"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "test-deps: chromium is missing; install it (sudo apt-get install chromium) for the dashboard's browser tests" >&2
  fi
fi

CLAUDE_VERSION="${OFFLOAD_CLAUDE_VERSION:-2.1.197}"
if [ ! -x .tools/claude/node_modules/.bin/claude ]; then
  if command -v npm >/dev/null 2>&1; then
    echo "test-deps: installing @anthropic-ai/claude-code@$CLAUDE_VERSION into .tools/claude"
    mkdir -p .tools/claude
    npm install --silent --no-audit --no-fund --prefix .tools/claude "@anthropic-ai/claude-code@$CLAUDE_VERSION" >/dev/null 2>&1 \
      || npm install --no-audit --no-fund --prefix .tools/claude "@anthropic-ai/claude-code@$CLAUDE_VERSION"
  else
    echo "test-deps: npm is missing; install Node.js and npm for the claude engine tests" >&2
  fi
fi

CODEX_VERSION="${OFFLOAD_CODEX_VERSION:-0.169.0}"
if [ ! -x .tools/codex/node_modules/.bin/codex ]; then
  if command -v npm >/dev/null 2>&1; then
    echo "test-deps: installing @openai/codex@$CODEX_VERSION into .tools/codex"
    mkdir -p .tools/codex
    npm install --silent --no-audit --no-fund --prefix .tools/codex "@openai/codex@$CODEX_VERSION" >/dev/null 2>&1 \
      || npm install --no-audit --no-fund --prefix .tools/codex "@openai/codex@$CODEX_VERSION"
  else
    echo "test-deps: npm is missing; install Node.js and npm for the codex engine tests" >&2
  fi
fi

MCP_SDK_VERSION="${OFFLOAD_MCP_SDK_VERSION:-1.32.2}"
if [ ! -f .tools/mcp-sdk/node_modules/@modelcontextprotocol/sdk/package.json ]; then
  if command -v npm >/dev/null 2>&1; then
    echo "test-deps: installing @modelcontextprotocol/sdk@$MCP_SDK_VERSION into .tools/mcp-sdk"
    mkdir -p .tools/mcp-sdk
    npm install --silent --no-audit --no-fund --prefix .tools/mcp-sdk "@modelcontextprotocol/sdk@$MCP_SDK_VERSION" >/dev/null 2>&1 \
      || npm install --no-audit --no-fund --prefix .tools/mcp-sdk "@modelcontextprotocol/sdk@$MCP_SDK_VERSION"
  else
    echo "test-deps: npm is missing; install Node.js and npm for the MCP client tests" >&2
  fi
fi
