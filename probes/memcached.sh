#!/usr/bin/env bash
# The layout of Debian's packaged memcached, which ships stripped: fetch the
# installed version's own source (Debian's patches applied), configure it as
# debian/rules does (--enable-sasl --enable-tls, dpkg-buildflags with
# hardening=+all: TLS adds a member to LIBEVENT_THREAD, whose size is the
# stride of the threads array), compile a probe with -g *as thread.c* (the
# static `threads` lives there) that uses every type and global the memcached
# schema reads, and let xgen read the probe's DWARF into a layout keyed to
# /usr/bin/memcached (its build-id and release).
#   bash probes/memcached.sh   -> packs/memcached/RELEASE/<build-id>.json
# (XWALK_PROBE_FOR, XWALK_PROBE_WORK, XWALK_LAYOUTS_INTO...: see probes/lib.sh.)
set -euo pipefail
PROBE=memcached-probe
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BINARY=${XWALK_PROBE_FOR:-/usr/bin/memcached}
[ -x "$BINARY" ] || die "$BINARY is missing: apt-get install memcached"
need_xgen
VERSION=$(dpkg-query -W -f '${Version}' memcached 2>/dev/null) || die "memcached is not installed as a Debian package"
UPSTREAM=$(upstream "$VERSION")

ensure_packages dpkg-dev build-essential pkg-config libevent-dev libsasl2-dev libssl-dev
ensure_deb_src
make_work
# The source of the installed version, with Debian's patches.
fetch_source "memcached=$VERSION"
SRC_REL="memcached-$UPSTREAM"
[ -f "$BUILD/$SRC_REL/memcached.h" ] && [ -f "$BUILD/$SRC_REL/thread.c" ] || die "the source of memcached $VERSION has no memcached.h and thread.c"

flags() { DEB_BUILD_MAINT_OPTIONS=hardening=+all dpkg-buildflags --get "$1"; }
log "configure --enable-sasl --enable-tls (debian/rules)"
as_builder sh -c 'cd "$0" && CFLAGS="$1" CPPFLAGS="$2" LDFLAGS="$3" exec ./configure --enable-sasl --enable-tls' \
  "$SRC_REL" "$(flags CFLAGS)" "$(flags CPPFLAGS)" "$(flags LDFLAGS)" >"$WORK/configure.log" 2>&1 \
  || { tail -20 "$WORK/configure.log" >&2; die "configure failed (log: $WORK/configure.log)"; }
grep -q '^#define TLS 1' "$BUILD/$SRC_REL/config.h" || die "configure did not enable TLS (is libssl-dev installed?): the layout would not be Debian's"

# Compiled as the builder, in the source folder: WORK's files (ours) are read by path, its output goes to BUILD.
# shellcheck disable=SC2046
cc_probe() { as_builder sh -c 'cd "$0" && exec cc "$@"' "$SRC_REL" $(flags CFLAGS) $(flags CPPFLAGS) -DHAVE_CONFIG_H -I. -pthread "$@"; }
# The DWARF of the headers, every type kept, tells xgen probe which names are struct tags (struct stats) and which typedefs.
echo '#include "thread.c"' >"$WORK/head.c"
chmod 0644 "$WORK/head.c"
cc_probe -g -fno-eliminate-unused-debug-types -c "$WORK/head.c" -o "$BUILD/types.o" >"$WORK/cc.log" 2>&1 \
  || { tail -20 "$WORK/cc.log" >&2; die "thread.c did not compile (log: $WORK/cc.log)"; }
{
  cat "$WORK/head.c"
  xgen probe --pack memcached --dwarf "$BUILD/types.o"
} >"$WORK/probe.c"
chmod 0644 "$WORK/probe.c"
log "compiling the probe (thread.c with the schema's declarations)"
cc_probe -g -c "$WORK/probe.c" -o "$BUILD/probe.o" >"$WORK/cc.log" 2>&1 \
  || { tail -20 "$WORK/cc.log" >&2; die "the probe did not compile (log: $WORK/cc.log)"; }
xgen layout "${INTO[@]}" --pack memcached --for "$BINARY" "$BUILD/probe.o"
