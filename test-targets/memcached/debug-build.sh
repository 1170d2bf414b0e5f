#!/usr/bin/env bash
# A debug build of Debian's memcached VERSION: `apt-get source memcached=VERSION`,
# then Debian's own `dpkg-buildpackage -b` (its rules, flags and build path
# rules) with DEB_BUILD_OPTIONS=nostrip, so the binary keeps its .symtab and
# DWARF; nocheck skips the test suite. With PATCH, the patch is added to
# debian/patches/series first (a simulated point release: dpkg-source
# applies it before the build). Built in a private temporary folder, niced,
# under /tmp/xwalk-build.lock; a finished build with the same inputs is reused.
#   bash test-targets/memcached/debug-build.sh VERSION OUTDIR [PATCH]   -> OUTDIR/memcached
set -euo pipefail
log() { echo "memcached-debug-build: $*" >&2; }
die() { echo "memcached-debug-build: ERROR: $*" >&2; exit 1; }
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=../../probes/lib.sh
source "$ROOT/probes/lib.sh"

[ $# -ge 2 ] || die "usage: $0 VERSION OUTDIR [PATCH]"
VERSION=$1
OUT=$2
PATCH=${3:-}
[[ $VERSION =~ ^[0-9][A-Za-z0-9.+~:-]*$ ]] || die "not a Debian version: $VERSION"
STAMP="memcached=$VERSION patch=$([ -z "$PATCH" ] || sha256sum <"$PATCH" | cut -d' ' -f1)"
if [ -x "$OUT/memcached" ] && [ "$(cat "$OUT/stamp" 2>/dev/null)" = "$STAMP" ]; then
  log "reusing $OUT/memcached ($STAMP)"
  exit 0
fi
ensure_deb_src
ensure_packages dpkg-dev debhelper libevent-dev libsasl2-dev libssl-dev pkg-config
mkdir -p "$(dirname "$OUT")"
WORK=$(mktemp -d "$OUT.tmp.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
log "apt-get source memcached=$VERSION"
(cd "$WORK" && apt-get source -qq --download-only "memcached=$VERSION") >"$WORK/source.log" 2>&1 \
  || { tail -5 "$WORK/source.log" >&2; die "apt-get source memcached=$VERSION failed"; }
dsc=$(ls "$WORK"/memcached_*.dsc)
dpkg-source --no-check -x "$dsc" "$WORK/src" >>"$WORK/source.log" 2>&1 || die "dpkg-source -x $dsc failed"
if [ -n "$PATCH" ]; then
  cp "$PATCH" "$WORK/src/debian/patches/xwalk-point-release.patch"
  echo xwalk-point-release.patch >>"$WORK/src/debian/patches/series"
fi
log "dpkg-buildpackage -b (nostrip nocheck) in $WORK/src (log: $WORK/build.log)"
(cd "$WORK/src" && DEB_BUILD_OPTIONS='nocheck nostrip parallel=2' flock /tmp/xwalk-build.lock nice -n 10 dpkg-buildpackage -b -uc -us) >"$WORK/build.log" 2>&1 \
  || { tail -20 "$WORK/build.log" >&2; die "dpkg-buildpackage failed"; }
rm -rf "$OUT"
mkdir -p "$OUT"
cp "$WORK/src/debian/memcached/usr/bin/memcached" "$OUT/memcached"
echo "$STAMP" >"$OUT/stamp"
log "built $OUT/memcached"
