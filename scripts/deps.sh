#!/usr/bin/env bash
# Installs what conch's tests run against: the real peers (Debian packages)
# and the npm dependencies. Safe to run again; used by scripts/test and CI.
set -euo pipefail
cd "$(dirname "$0")/.."

mapfile -t DEBS < <(grep -v '^#' scripts/debian-packages.txt | grep .)

missing=()
for p in "${DEBS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "Installing Debian packages: ${missing[*]}"
  $SUDO apt-get update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y "${missing[@]}"
fi

# ser2net and conmand come with services of their own; the tests leave them
# alone (a console server running these tests keeps its conmand) and start
# their own copies on free loopback ports with their own configurations.

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci
fi
