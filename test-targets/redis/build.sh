#!/usr/bin/env bash
# Build a debug redis-server (DWARF, -O2) from Debian's source package of the
# installed redis-server (Debian's patches applied), for the tests: gdb reads
# its structures by name, which checks what xsample reads through layouts.
#
#   bash test-targets/redis/build.sh   -> build/redis/redis-VERSION/src/redis-server
#
# Idempotent: when that binary exists and was built from the installed version's
# source, the script does nothing. Needs root (or passwordless apt) only when
# packages or deb-src entries are missing.
set -euo pipefail

log() { echo "redis-build: $*" >&2; }
die() { echo "redis-build: ERROR: $*" >&2; exit 1; }
trap 'rc=$?; [ $rc -eq 0 ] || echo "redis-build: failed (exit $rc)" >&2' EXIT

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
WORK="$ROOT/build/redis"
VERSION=$(dpkg-query -W -f '${Version}' redis-server 2>/dev/null) || die "redis-server is not installed (make deps installs it)"
UPSTREAM=${VERSION#*:}
UPSTREAM=${UPSTREAM%-*}
SRCDIR="$WORK/redis-$UPSTREAM"
BINARY="$SRCDIR/src/redis-server"
STAMP="$WORK/source.version"
BUILDLOG="$WORK/build.log"

mkdir -p "$WORK"
# Serialise concurrent runs (tap runs test files in parallel).
exec 9>"$WORK/.lock"
if command -v flock >/dev/null 2>&1; then
  flock 9
fi

if [ -x "$BINARY" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$VERSION" ]; then
  log "up to date: $BINARY"
  exit 0
fi

# shellcheck source=../../probes/lib.sh
source "$ROOT/probes/lib.sh"
ensure_packages dpkg-dev build-essential pkg-config
ensure_deb_src

# --- the source of the installed version, with Debian's patches ------------------
fetch="$WORK/.fetch"
rm -rf "$fetch" "$SRCDIR" "$STAMP"
mkdir -p "$fetch"
# let apt's sandbox user write there (avoids the "unsandboxed as root" warning)
if [ "$(id -u)" -eq 0 ] && id _apt >/dev/null 2>&1; then chown _apt "$fetch"; fi
log "apt-get source redis=$VERSION"
if ! (cd "$fetch" && apt-get source -qq "redis=$VERSION" >"$WORK/source.log" 2>&1); then
  [ $APT_UPDATED -eq 1 ] || apt_update
  (cd "$fetch" && apt-get source -qq "redis=$VERSION" >"$WORK/source.log" 2>&1) \
    || { tail -5 "$WORK/source.log" >&2; die "apt-get source redis=$VERSION failed"; }
fi
[ -f "$fetch/redis-$UPSTREAM/src/server.h" ] || die "the source of redis $VERSION has no src/server.h"
mv "$fetch/redis-$UPSTREAM" "$SRCDIR"
rm -rf "$fetch"

# --- make -------------------------------------------------------------------------
# libc's malloc and no TLS or systemd: nothing the structures the pack reads depend on,
# and nothing to install. Redis builds with -g by default; no -flto, which gdb reads less well.
log "make redis-server (log: build/redis/build.log)"
start=$(date +%s)
(cd "$SRCDIR/src" && make -j2 MALLOC=libc BUILD_TLS=no USE_SYSTEMD=no OPTIMIZATION=-O2 \
  REDIS_CFLAGS="-fdebug-prefix-map=$SRCDIR=." redis-server) >"$BUILDLOG" 2>&1 \
  || { tail -n 40 "$BUILDLOG" >&2; die "make failed (full log: $BUILDLOG)"; }
[ -x "$BINARY" ] || die "make succeeded but $BINARY is missing"
readelf -S "$BINARY" | grep -q '\.debug_info' || die "$BINARY has no .debug_info section (no DWARF)"
printf '%s\n' "$VERSION" >"$STAMP"
log "built $BINARY in $(( $(date +%s) - start ))s"
