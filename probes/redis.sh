#!/usr/bin/env bash
# The layout of Debian's packaged redis-server, which ships stripped: compile
# a probe with -g against the installed version's own source (Debian's
# patches applied: one of them adds a member to struct redisServer), with
# Debian's compiler flags, that uses every type and global the redis schema
# reads, and let xgen read the probe's DWARF into a layout keyed to
# /usr/bin/redis-server (its build-id and release).
#   bash test-targets/redis/debian-probe.sh   -> packs/redis/RELEASE/<build-id>.json
set -euo pipefail
# XWALK_LAYOUTS_INTO=DIR: write the layout into DIR/PACK/RELEASE/ (a folder of XWALK_PACKS), not the pack's own folder.
INTO=(${XWALK_LAYOUTS_INTO:+--into "$XWALK_LAYOUTS_INTO"})
log() { echo "redis-probe: $*" >&2; }
die() { echo "redis-probe: ERROR: $*" >&2; exit 1; }

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BINARY=${XWALK_PROBE_FOR:-/usr/bin/redis-server}
WORK=${XWALK_PROBE_WORK:-"$ROOT/build/redis-debian-probe"}

[ -x "$BINARY" ] || die "$BINARY is missing: apt-get install redis-server"
[ -f "$ROOT/dist/xgen.js" ] || die "dist/xgen.js is missing: run make build"
# The source of the installed version, with Debian's patches (build.sh fetches it, and builds our own -g redis).
bash "$ROOT/test-targets/redis/build.sh"
VERSION=$(dpkg-query -W -f '${Version}' redis-server)
UPSTREAM=${VERSION#*:}
UPSTREAM=${UPSTREAM%-*}
SRC="$ROOT/build/redis/redis-$UPSTREAM/src"

rm -rf "$WORK"
mkdir -p "$WORK"
{
  echo '#include "server.h"'
  echo '#include "slowlog.h"'
  echo '/* The schema names these two by their struct tags, which redis does not typedef. */'
  echo 'typedef struct redisServer redisServer;'
  echo 'typedef struct redisCommand redisCommand;'
  node "$ROOT/dist/xgen.js" probe --pack redis
} >"$WORK/probe.c"
# Debian's flags (debian/rules: dpkg-buildflags, and src/Makefile's own). Its -DUSE_JEMALLOC, -DUSE_OPENSSL and
# -DHAVE_LIBSYSTEMD are left out: they need headers of packages the tests do not install, and no member of a
# structure the schema reads is under #if (server.h, dict.h, adlist.h, sds.h, connection.h, slowlog.h).
log "compiling the probe"
# shellcheck disable=SC2046
(cd "$SRC" && cc $(DEB_BUILD_MAINT_OPTIONS=hardening=+all dpkg-buildflags --get CFLAGS) \
  $(DEB_BUILD_MAINT_OPTIONS=hardening=+all dpkg-buildflags --get CPPFLAGS) \
  -pedantic -DREDIS_STATIC="" -std=c11 -I. -I../deps/hiredis -I../deps/linenoise -I../deps/lua/src -I../deps/hdr_histogram \
  -c "$WORK/probe.c" -o "$WORK/probe.o") >"$WORK/cc.log" 2>&1 \
  || { tail -20 "$WORK/cc.log" >&2; die "the probe did not compile (log: $WORK/cc.log)"; }
node "$ROOT/dist/xgen.js" layout "${INTO[@]}" --pack redis --for "$BINARY" "$WORK/probe.o"
