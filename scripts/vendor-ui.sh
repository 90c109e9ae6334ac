#!/usr/bin/env bash
# Refreshes the dashboard's vendored libraries (docs/ui.md, "Files"): installs the npm packages pinned in
# src/Offload.Core/Daemon/Ui/vendor/package-lock.json with `npm ci` (checksums from the lockfile) into a temporary
# folder, and copies the files the page uses, with their licenses, into src/Offload.Core/Daemon/Ui/web/vendor/.
# The copies are committed: a clean clone builds, and its tests run, without npm or a network. Run this after
# changing a version in vendor/package.json (then `npm install --package-lock-only` there) and commit the result.
set -euo pipefail
cd "$(dirname "$0")/.."
src=src/Offload.Core/Daemon/Ui/vendor
dest=src/Offload.Core/Daemon/Ui/web/vendor
command -v npm >/dev/null 2>&1 || { echo "vendor-ui: npm is missing; install Node.js and npm, then run this again" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$src/package.json" "$src/package-lock.json" "$work/"
(cd "$work" && npm ci --silent --no-audit --no-fund --ignore-scripts)
hl="$work/node_modules/@highlightjs/cdn-assets"
mkdir -p "$dest"
cp "$hl/es/highlight.min.js" "$dest/highlight.min.js"
cp "$hl/styles/github.min.css" "$dest/highlight-light.min.css"
cp "$hl/styles/github-dark.min.css" "$dest/highlight-dark.min.css"
cp "$hl/LICENSE" "$dest/highlight.LICENSE.txt"
echo "vendor-ui: highlight.js $(node -p "require('$hl/package.json').version") copied into $dest"
