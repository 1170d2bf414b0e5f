#!/usr/bin/env bash
# The layout of Debian's packaged redis-server, which ships stripped: compile
# a probe with -g against the installed version's own source (apt-get source,
# Debian's patches applied: one of them adds a member to struct redisServer),
# with Debian's compiler flags, that uses every type and global the redis
# schema reads, and let xgen read the probe's DWARF into a layout keyed to
# /usr/bin/redis-server (its build-id and release).
#   bash probes/redis.sh   -> packs/redis/RELEASE/<build-id>.json
# (XWALK_PROBE_FOR, XWALK_PROBE_WORK, XWALK_LAYOUTS_INTO...: see probes/lib.sh.)
set -euo pipefail
PROBE=redis-probe
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BINARY=${XWALK_PROBE_FOR:-/usr/bin/redis-server}
[ -x "$BINARY" ] || die "$BINARY is missing: apt-get install redis-server"
need_xgen
VERSION=$(dpkg-query -W -f '${Version}' redis-server 2>/dev/null) || die "redis-server is not installed: apt-get install redis-server"
UPSTREAM=$(upstream "$VERSION")

ensure_packages dpkg-dev build-essential
ensure_deb_src
make_work
# The source of the installed version, with Debian's patches.
fetch_source "redis=$VERSION"
SRC="$BUILD/redis-$UPSTREAM/src"
[ -f "$SRC/server.h" ] || die "the source of redis $VERSION has no src/server.h"

{
  echo '#include "server.h"'
  echo '#include "slowlog.h"'
  echo '/* The schema names these two by their struct tags, which redis does not typedef. */'
  echo 'typedef struct redisServer redisServer;'
  echo 'typedef struct redisCommand redisCommand;'
  xgen probe --pack redis
} >"$WORK/probe.c"
chmod 0644 "$WORK/probe.c"
# Debian's flags (debian/rules: dpkg-buildflags, and src/Makefile's own). Its -DUSE_JEMALLOC, -DUSE_OPENSSL and
# -DHAVE_LIBSYSTEMD are left out: they need headers of packages the tests do not install, and no member of a
# structure the schema reads is under #if (server.h, dict.h, adlist.h, sds.h, connection.h, slowlog.h).
log "compiling the probe"
# shellcheck disable=SC2046
as_builder sh -c 'cd "$0" && exec cc "$@"' "redis-$UPSTREAM/src" $(DEB_BUILD_MAINT_OPTIONS=hardening=+all dpkg-buildflags --get CFLAGS) \
  $(DEB_BUILD_MAINT_OPTIONS=hardening=+all dpkg-buildflags --get CPPFLAGS) \
  -pedantic -DREDIS_STATIC="" -std=c11 -I. -I../deps/hiredis -I../deps/linenoise -I../deps/lua/src -I../deps/hdr_histogram \
  -c "$WORK/probe.c" -o "$BUILD/probe.o" >"$WORK/cc.log" 2>&1 \
  || { tail -20 "$WORK/cc.log" >&2; die "the probe did not compile (log: $WORK/cc.log)"; }
xgen layout "${INTO[@]}" --pack redis --for "$BINARY" "$BUILD/probe.o"
