#!/usr/bin/env bash
# Builds the Debian package conch_<version>_<arch>.deb: the JavaScript
# compiled from src/, the production npm dependencies (native addons, hence
# an architecture-specific package), sh wrappers in /usr/sbin and /usr/bin,
# the systemd unit, the logrotate file, man pages and the copyright file.
# Offline apart from `npm ci` (the npm registry), which --skip-npm-ci skips.
#
# Usage: scripts/build-deb.sh [-o OUTDIR] [--skip-npm-ci] [--keep-stage]
#   -o, --out DIR     where the .deb goes (default dist/deb/)
#   --skip-npm-ci     use node_modules as it is (needs typescript and the
#                     runtime dependencies installed); for tests and CI
#                     after the test suite
#   --keep-stage      leave the staging directory and print its path
# Needs: node >= 20, npm, dpkg-deb, go-md2man, gzip.
set -euo pipefail

cd "$(dirname "$0")/.."
REPO=$PWD
OUT=$REPO/dist/deb
SKIP_NPM_CI=0
KEEP=0
while [ $# -gt 0 ]; do
  case "$1" in
    -o|--out) OUT=$2; shift 2 ;;
    --out=*) OUT=${1#--out=}; shift ;;
    --skip-npm-ci) SKIP_NPM_CI=1; shift ;;
    --keep-stage) KEEP=1; shift ;;
    -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "build-deb: unknown argument $1" >&2; exit 2 ;;
  esac
done
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

for tool in node npm dpkg-deb go-md2man gzip; do
  command -v "$tool" >/dev/null || { echo "build-deb: $tool not found (go-md2man: apt-get install go-md2man)" >&2; exit 1; }
done

umask 022
export LC_ALL=C
VERSION=$(node -p 'require("./package.json").version')
ARCH=$(dpkg --print-architecture)
NODE_ARCH=$(node -p process.arch)
# man page dates and file times from the last commit, so rebuilds of one commit match
EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
DATE=$(date -u -d "@$EPOCH" +%Y-%m-%d)

STAGE=$(mktemp -d "${TMPDIR:-/tmp}/conch-deb.XXXXXX")
if [ "$KEEP" = 1 ]; then echo "build-deb: staging in $STAGE"; else trap 'rm -rf "$STAGE"' EXIT; fi
ROOT=$STAGE/root
LIB=$ROOT/usr/lib/conch

if [ "$SKIP_NPM_CI" = 1 ]; then
  [ -x node_modules/.bin/tsc ] || { echo "build-deb: --skip-npm-ci, but node_modules has no typescript; run npm ci" >&2; exit 1; }
else
  npm ci --no-audit --no-fund
fi

# 1. the JavaScript from src/ only (tests and benchmarks are not shipped)
mkdir -p "$LIB"
node node_modules/typescript/bin/tsc -p tsconfig.build.json --outDir "$LIB/dist" --sourceMap false
node scripts/chmod-bins.mjs "$LIB/dist"
cp package.json "$LIB/"
# the web UI's static files, found by the compiled code at dist/src/web/../../../web
cp -r web "$LIB/web"

# 2. production dependencies: a copy of node_modules pruned of dev packages,
# so the native addons built here are reused and nothing is fetched
cp package.json package-lock.json "$STAGE/"
cp -a node_modules "$STAGE/node_modules"
(cd "$STAGE" && npm prune --omit=dev --offline --no-audit --no-fund --ignore-scripts >/dev/null)
# prebuilt addons for other systems are dead weight (and foreign binaries)
find "$STAGE/node_modules" -type d -path '*/prebuilds/*' -prune ! -name "linux-$NODE_ARCH*" -exec rm -rf {} +
rm -rf "$STAGE/node_modules/node-pty/deps" "$STAGE/node_modules/node-pty/third_party" # Windows only
rm -rf "$STAGE/node_modules/node-pty/build/"{Makefile,*.mk,config.gypi} # build files naming this checkout
find "$STAGE/node_modules" -depth -type d -empty -delete # e.g. @types/ after the prune
mv "$STAGE/node_modules" "$LIB/node_modules"
for mod in node-pty serialport; do
  [ -d "$LIB/node_modules/$mod" ] || { echo "build-deb: $mod missing from the production dependencies" >&2; exit 1; }
done

# 3. entry points: sh wrappers that find the library next to themselves
wrapper() { # name dir
  mkdir -p "$ROOT/$2"
  cat >"$ROOT/$2/$1" <<EOF
#!/bin/sh
# $1 from the conch package: Node.js runs the compiled JavaScript. The
# library is found from this script's real location, so that a symlink to it
# and a package unpacked elsewhere (dpkg-deb -x) work too.
lib=\$(dirname "\$(readlink -f "\$0")")/../lib/conch
exec node "\$lib/dist/src/bin/$1.js" "\$@"
EOF
  chmod 0755 "$ROOT/$2/$1"
}
wrapper conchd usr/sbin
wrapper conch usr/bin
wrapper conch-bmcsim usr/bin

# 4. systemd unit, logrotate, man pages, documentation
install -D -m 0644 etc/conchd.service "$ROOT/lib/systemd/system/conchd.service"
install -D -m 0644 etc/conchd.logrotate "$ROOT/etc/logrotate.d/conchd"
for md in docs/man/*.md; do
  page=$(basename "$md" .md)            # conchd.8
  section=${page##*.}
  mkdir -p "$ROOT/usr/share/man/man$section"
  sed -e "s/@VERSION@/$VERSION/g" -e "s/@DATE@/$DATE/g" "$md" >"$STAGE/$page.md"
  go-md2man -in "$STAGE/$page.md" -out "$STAGE/$page"
  gzip -9n <"$STAGE/$page" >"$ROOT/usr/share/man/man$section/$page.gz"
done
DOC=$ROOT/usr/share/doc/conch
mkdir -p "$DOC"
gzip -9n <README.md >"$DOC/README.md.gz"
gzip -9n <docs/ipmi.md >"$DOC/ipmi.md.gz"
{
  cat <<EOF
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: conch

Files: *
Copyright: conch developers
License: GPL-3.0-or-later
 This program is free software: you can redistribute it and/or modify it
 under the terms of the GNU General Public License as published by the Free
 Software Foundation, either version 3 of the License, or (at your option)
 any later version.
 .
 This program is distributed in the hope that it will be useful, but WITHOUT
 ANY WARRANTY; without even the implied warranty of MERCHANTABILITY or
 FITNESS FOR A PARTICULAR PURPOSE. See the GNU General Public License for
 more details.
 .
 On Debian systems, the complete text of the GNU General Public License
 version 3 can be found in /usr/share/common-licenses/GPL-3.
EOF
  # the bundled npm packages, each with its own license file
  for pj in "$LIB"/node_modules/*/package.json "$LIB"/node_modules/@*/*/package.json; do
    [ -f "$pj" ] || continue
    dir=${pj%/package.json}
    printf '\nFiles: usr/lib/conch/node_modules/%s/*\nCopyright: see %s\nLicense: %s\n' \
      "${dir#"$LIB"/node_modules/}" \
      "$(cd "$dir" && ls -d LICENSE* LICENCE* license* 2>/dev/null | head -1 | sed "s|^|/usr/lib/conch/node_modules/${dir#"$LIB"/node_modules/}/|")" \
      "$(node -p 'require(process.argv[1]).license ?? "see the package"' "$pj")"
  done
} >"$DOC/copyright"

# normalise modes of everything copied (npm tarballs carry odd ones)
chmod -R u+rwX,go+rX,go-w "$ROOT"
find "$ROOT" -type f -name '*.node' -exec chmod 0644 {} +

# 5. control data
mkdir -p "$ROOT/DEBIAN"
INSTALLED_KB=$(du -sk --exclude=DEBIAN "$ROOT" | cut -f1)
cat >"$ROOT/DEBIAN/control" <<EOF
Package: conch
Version: $VERSION
Architecture: $ARCH
Maintainer: conch developers <conch@localhost>
Installed-Size: $INSTALLED_KB
Depends: nodejs (>= 20)
Suggests: conman, logrotate
Section: admin
Priority: optional
Description: console manager for data centres, compatible with conman
 conchd holds the serial consoles of many servers open, logs every byte
 and lets people attach to watch, type, send a serial break, share or take
 over a session. It reads an existing /etc/conman.conf and speaks conman's
 protocol, so the conman client keeps working; conch is its own client with
 conman's options. Console types: IPMI 2.0 Serial-over-LAN (native, and it
 never steals a SOL session a person is using), telnet, serial, unix
 sockets, programs on a pseudo-terminal.
 .
 The service is installed but neither enabled nor started: see conchd(8)
 for switching from conmand. conch-bmcsim simulates a fleet of IPMI BMCs
 for trials.
EOF
echo /etc/logrotate.d/conchd >"$ROOT/DEBIAN/conffiles"

cat >"$ROOT/DEBIAN/postinst" <<'EOF'
#!/bin/sh
set -e
if [ "$1" = configure ]; then
  # state that must outlive the daemon (IPMI session records)
  mkdir -p /var/lib/conch
  chmod 0750 /var/lib/conch
  if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || true
    # nothing is started or restarted here: a site switches daemons
    # deliberately, and picks up an upgrade when it chooses (see conchd(8))
  fi
  if [ -z "$2" ]; then
    echo "conch: conchd.service is not enabled; to switch from conmand see conchd(8)."
  fi
fi
exit 0
EOF
cat >"$ROOT/DEBIAN/prerm" <<'EOF'
#!/bin/sh
set -e
# the package never stops or starts services itself (a site's console
# daemon is the administrator's to switch): it says what is still running
if [ "$1" = remove ] && pgrep -f '^conchd ' >/dev/null 2>&1; then
  echo "conch: conchd is still running on the removed files; stop the conchd service" >&2
fi
exit 0
EOF
cat >"$ROOT/DEBIAN/postrm" <<'EOF'
#!/bin/sh
set -e
case "$1" in
  purge)
    rm -rf /var/lib/conch
    rm -f /etc/systemd/system/multi-user.target.wants/conchd.service
    ;;
esac
if [ -d /run/systemd/system ] && { [ "$1" = remove ] || [ "$1" = purge ]; }; then
  systemctl daemon-reload >/dev/null 2>&1 || true
fi
exit 0
EOF
chmod 0755 "$ROOT/DEBIAN" "$ROOT/DEBIAN/postinst" "$ROOT/DEBIAN/prerm" "$ROOT/DEBIAN/postrm"
chmod 0644 "$ROOT/DEBIAN/control" "$ROOT/DEBIAN/conffiles"
(cd "$ROOT" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) >"$ROOT/DEBIAN/md5sums"
chmod 0644 "$ROOT/DEBIAN/md5sums"

find "$ROOT" -exec touch -h -d "@$EPOCH" {} +
DEB=$OUT/conch_${VERSION}_${ARCH}.deb
dpkg-deb --root-owner-group -Zxz --build "$ROOT" "$DEB" >/dev/null
echo "$DEB"
