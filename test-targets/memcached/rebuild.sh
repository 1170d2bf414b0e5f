#!/usr/bin/env bash
# Debian's memcached rebuilt from its own source (the installed version, with
# Debian's patches, flags and dpkg-buildpackage), not stripped: its .text,
# .rodata and .data are byte-identical to the installed /usr/bin/memcached
# while its build-id differs (the id hashes the debug sections too), so its
# .symtab names every global and static of Debian's binary. The tests make a
# recovered symbol table from it (test/lib/symbol-table-of.ts) where `xgen
# symbols` is not there to make one. Built once, kept in build/readers/.
#   bash test-targets/memcached/rebuild.sh   -> prints the path of the unstripped memcached
set -euo pipefail
log() { echo "memcached-rebuild: $*" >&2; }
die() { echo "memcached-rebuild: ERROR: $*" >&2; exit 1; }

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
WORK=${XWALK_MEMCACHED_REBUILD:-"$ROOT/build/readers/memcached-rebuild"}
VERSION=$(dpkg-query -W -f '${Version}' memcached) || die "memcached is not installed as a Debian package"
OUT="$WORK/memcached"
STAMP="$WORK/version"

if [ -x "$OUT" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$VERSION" ]; then
  echo "$OUT"
  exit 0
fi

# shellcheck source=../lib/apt.sh
source "$ROOT/test-targets/lib/apt.sh"
ensure_packages dpkg-dev build-essential fakeroot debhelper adduser pkg-config libevent-dev libsasl2-dev libssl-dev
ensure_deb_src

mkdir -p "$WORK"
rm -f "$OUT" "$STAMP"
SRC="$WORK/src"
apt_source memcached "$VERSION" "$SRC" "$WORK"
[ -f "$SRC/debian/rules" ] || die "the source of memcached $VERSION has no debian/rules"
log "dpkg-buildpackage -b (nocheck nostrip; log: $WORK/build.log)"
(cd "$SRC" && flock /tmp/xwalk-build.lock nice -n 10 env DEB_BUILD_OPTIONS='nocheck nostrip' dpkg-buildpackage -b -uc -us -j2) >"$WORK/build.log" 2>&1 \
  || { tail -30 "$WORK/build.log" >&2; die "dpkg-buildpackage failed (log: $WORK/build.log)"; }
[ -x "$SRC/memcached" ] || die "the build left no memcached"
readelf -S "$SRC/memcached" | grep -q '\.symtab' || die "$SRC/memcached has no .symtab"
cp "$SRC/memcached" "$OUT"
printf '%s\n' "$VERSION" >"$STAMP"
rm -rf "$SRC" "$WORK"/memcached_* "$WORK"/memcached-dbgsym_*
echo "$OUT"
