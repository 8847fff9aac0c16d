#!/usr/bin/env bash
# What CI runs after the test suite, on a throwaway machine, as root: build
# the .deb, install it with apt, run the installed conchd against a
# conch-bmcsim fleet, attach with conch and with Debian's conman client,
# find the man page, then remove and purge the package and check that
# nothing of it is left. It installs a system package, hence the guard.
#
# Usage: CI=true scripts/ci-package.sh
#        scripts/ci-package.sh --yes-modify-this-machine
set -euo pipefail

if [ "${CI:-}" != true ] && [ "${1:-}" != --yes-modify-this-machine ]; then
  echo "ci-package: this installs and removes the Debian package conch on this machine;" >&2
  echo "ci-package: run it with CI=true or --yes-modify-this-machine" >&2
  exit 2
fi
[ "$(id -u)" -eq 0 ] || { echo "ci-package: must run as root (apt-get install)" >&2; exit 2; }

cd "$(dirname "$0")/.."
REPO=$PWD
export DEBIAN_FRONTEND=noninteractive LC_ALL=C
step() { printf '\n== %s\n' "$*"; }
fail() { echo "ci-package: FAILED: $*" >&2; exit 1; }

# what this script needs beyond the test suite's packages
need=()
for p in go-md2man conman man-db; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  step "apt-get install ${need[*]}"
  apt-get update -q
  apt-get install -y -q "${need[@]}"
fi
if dpkg-query -W -f='${Status}' conch 2>/dev/null | grep -q 'installed'; then
  fail "the package conch is already installed; remove it first (apt-get purge conch)"
fi

W=$(mktemp -d /tmp/conch-ci-package.XXXXXX)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$W"
}
trap cleanup EXIT

# poll a condition (a shell command) until it holds or `secs` pass
wait_until() { # secs what cmd...
  local secs=$1 what=$2; shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt "$deadline" ] || fail "timed out after ${secs}s waiting for $what"
    sleep 0.2
  done
}

step "build the package"
t0=$SECONDS
build_args=()
[ -x node_modules/.bin/tsc ] && build_args+=(--skip-npm-ci) # the test suite's npm ci is enough
DEB=$(bash scripts/build-deb.sh "${build_args[@]}" | tail -n 1)
echo "$DEB ($((SECONDS - t0)) s)"
dpkg-deb --info "$DEB" | sed -n 's/^ \(Package\|Version\|Architecture\|Depends\|Installed-Size\): /  \1: /p'

step "apt-get install $DEB"
apt-get install -y -q "$DEB"
dpkg-query -W -f='${Package} ${Version} ${db:Status-Status}\n' conch
for f in /usr/sbin/conchd /usr/bin/conch /usr/bin/conch-bmcsim; do [ -x "$f" ] || fail "$f is not executable"; done
[ -d /var/lib/conch ] || fail "postinst did not create /var/lib/conch"
[ "$(stat -c %a /var/lib/conch)" = 750 ] || fail "/var/lib/conch is not mode 0750"
if command -v systemd-analyze >/dev/null; then
  out=$(systemd-analyze verify /lib/systemd/system/conchd.service 2>&1 || true)
  [ -z "$out" ] || fail "systemd-analyze verify conchd.service: $out"
  echo "systemd-analyze verify conchd.service: clean"
fi

step "conchd -t"
cat >"$W/sample.conf" <<EOF
server logdir="$W/log"
global log="%N.log"
console name="sample" dev="test:"
EOF
/usr/sbin/conchd -t -c "$W/sample.conf"

step "conchd -F on a conch-bmcsim fleet of 2 BMCs"
port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
# two consecutive free UDP ports below 32768 (FreeIPMI's limit, see conch-bmcsim(1))
udp=$(node -e '
const dgram = require("dgram");
const tryBase = (n) => { if (n === 0) process.exit(1);
  const base = 20000 + Math.floor(Math.random() * 12000), socks = [];
  let ok = 0, done = 0;
  for (const p of [base, base + 1]) { const s = dgram.createSocket("udp4"); socks.push(s);
    s.once("error", () => fin()); s.bind(p, "127.0.0.1", () => { ok++; fin(); }); }
  function fin() { if (++done < 2) return; socks.forEach((s) => { try { s.close(); } catch {} });
    if (ok === 2) console.log(base); else tryBase(n - 1); } };
tryBase(50);')
/usr/bin/conch-bmcsim --count 2 --base-port "$udp" --heartbeat 1 --control-port 0 \
  --conman-conf "$W/fleet.conf" --conman-line "server port=$port" \
  --conman-line "server logdir=\"$W/log\"" --conman-line 'global log="%N.log"' \
  >"$W/bmcsim.out" 2>&1 &
PIDS+=($!)
wait_until 30 "conch-bmcsim to be ready" grep -q '^# ready' "$W/bmcsim.out"
cat "$W/fleet.conf"
chmod 600 "$W/fleet.conf" # it holds the BMC passwords
/usr/sbin/conchd -F -c "$W/fleet.conf" >"$W/conchd.out" 2>&1 &
conchd_pid=$!
PIDS+=("$conchd_pid")
wait_until 30 "conchd to listen" grep -q 'Listening on TCP port' "$W/conchd.out"
for n in node01 node02; do
  wait_until 60 "the IPMI session of $n" grep -q 'IPMI session uses cipher suite' "$W/log/$n.log"
done
echo "conchd (pid $conchd_pid) listens on 127.0.0.1:$port; both SOL sessions are up"
[ "$(/usr/sbin/conchd -q -c "$W/fleet.conf")" = "$conchd_pid" ] || fail "conchd -q does not find the daemon"

step "conch -q and conman -q"
expect=$'node01\nnode02'
got=$(/usr/bin/conch -q -d "127.0.0.1:$port")
echo "conch -q:  $(echo $got)"
[ "$got" = "$expect" ] || fail "conch -q listed: $got"
got=$(conman -q -d "127.0.0.1:$port")
echo "conman -q: $(echo $got)"
[ "$got" = "$expect" ] || fail "conman -q listed: $got"

step "man pages"
for page in conchd conch conch-bmcsim conch.conf; do man -w "$page" || fail "man -w $page"; done
[ -z "$(man --warnings -l "$(man -w conchd)" 2>&1 >/dev/null)" ] || fail "man conchd renders with warnings"

step "stop"
/usr/sbin/conchd -k -c "$W/fleet.conf"
wait_until 30 "conchd to exit" sh -c "! kill -0 $conchd_pid"
wait "$conchd_pid" || fail "conchd exited with status $?"
kill "${PIDS[0]}"
wait "${PIDS[0]}" 2>/dev/null || true
PIDS=()
echo "conchd and conch-bmcsim stopped"

step "apt-get remove conch"
apt-get remove -y -q conch
[ "$(dpkg-query -W -f='${db:Status-Status}' conch)" = config-files ] || fail "conch not in state config-files after remove"
left=$(dpkg -L conch 2>/dev/null | grep -v '^/etc\(/logrotate.d\)\?$' | grep -v '^/etc/logrotate.d/conchd$' | grep -v '^/\.$' || true)
[ -z "$left" ] || fail "dpkg -L conch still lists: $left"
for f in /usr/sbin/conchd /usr/bin/conch /usr/bin/conch-bmcsim /usr/lib/conch /lib/systemd/system/conchd.service /usr/share/man/man8/conchd.8.gz /usr/share/doc/conch; do
  [ ! -e "$f" ] || fail "$f is left after remove"
done
[ -f /etc/logrotate.d/conchd ] || fail "the conffile /etc/logrotate.d/conchd went with remove"
echo "left after remove: /etc/logrotate.d/conchd (conffile), /var/lib/conch (state)"

step "apt-get purge conch"
apt-get purge -y -q conch
status=$(dpkg-query -W -f='${db:Status-Status}' conch 2>/dev/null || true)
[ -z "$status" ] || [ "$status" = not-installed ] || fail "conch in state $status after purge"
[ ! -e /etc/logrotate.d/conchd ] || fail "/etc/logrotate.d/conchd is left after purge"
[ ! -e /var/lib/conch ] || fail "/var/lib/conch is left after purge"
[ -z "$(dpkg -L conch 2>/dev/null || true)" ] || fail "dpkg -L conch still lists files after purge"

echo
echo "ci-package: OK: $(basename "$DEB") built, installed, served 2 IPMI consoles to conch and conman, removed and purged cleanly"
