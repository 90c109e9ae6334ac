#!/usr/bin/env bash
# Builds Offload and installs the `offload` command, and bubblewrap (the sandbox for the agent's commands) when missing.
#   ./install.sh              → /usr/local/bin/offload as root, else ~/.local/bin/offload
#   PREFIX=/opt/x ./install.sh → /opt/x/bin/offload
# Needs the .NET 10 SDK and git; a C toolchain (clang or gcc) makes the CLI and the daemon native programs (fast to
# start, half the memory); without one both are built with ReadyToRun instead. bubblewrap is installed with the
# system's package manager (apt-get, dnf, pacman, zypper or apk) when this script may: as root, or through sudo
# without a password. Otherwise it prints the one command to run; until then the agent's commands ask before running.
set -euo pipefail

# The package manager's command that installs bubblewrap, as words; none when no known package manager is found.
bubblewrap_install_command() {
  if command -v apt-get >/dev/null 2>&1; then echo "apt-get install -y -q bubblewrap"
  elif command -v dnf >/dev/null 2>&1; then echo "dnf install -y bubblewrap"
  elif command -v pacman >/dev/null 2>&1; then echo "pacman -S --noconfirm --needed bubblewrap"
  elif command -v zypper >/dev/null 2>&1; then echo "zypper --non-interactive install bubblewrap"
  elif command -v apk >/dev/null 2>&1; then echo "apk add bubblewrap"
  fi
}

# Installs bubblewrap when bwrap is missing and this script may; otherwise says the one command to run. Never fails
# the installation: Offload works without it (each of the agent's commands asks first).
ensure_bubblewrap() {
  command -v bwrap >/dev/null 2>&1 && return 0
  local words sudo=()
  words=$(bubblewrap_install_command)
  if [ -z "$words" ]; then
    echo "install.sh: bubblewrap (bwrap) is not installed and no known package manager was found (apt-get, dnf, pacman, zypper, apk); install bubblewrap with your system's packages. Until then the agent's commands ask before running (docs/sandbox.md)" >&2
    return 0
  fi
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true >/dev/null 2>&1; then
      sudo=(sudo -n)
    else
      echo "install.sh: bubblewrap (bwrap), the sandbox for the agent's commands, is not installed, and installing it needs root; run: sudo $words" >&2
      return 0
    fi
  fi
  echo "install.sh: installing bubblewrap, the sandbox for the agent's commands: ${sudo[*]:+${sudo[*]} }$words"
  local ok=1
  case "$words" in
    apt-get*) DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get update -q >/dev/null 2>&1 || true ;; # a fresh machine has no package lists
  esac
  # shellcheck disable=SC2086 # words are split on purpose
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" $words >/dev/null 2>&1 || ok=0
  hash -r
  if [ "$ok" = 1 ] && command -v bwrap >/dev/null 2>&1; then
    echo "install.sh: bubblewrap installed: the agent's commands run sandboxed"
  else
    echo "install.sh: installing bubblewrap failed, so the agent's commands will ask before running; install it: ${sudo[*]:+sudo }$words" >&2
  fi
}

main() {
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
  ensure_bubblewrap
}

# Sourced (the tests call ensure_bubblewrap alone), nothing runs.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  main "$@"
fi
