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
# XWALK_LAYOUTS_INTO=DIR: write the layout into DIR/memcached/RELEASE/ (a folder of XWALK_PACKS) instead.
# XWALK_PROBE_WORK=DIR: where to fetch and build (default: a new private folder under /tmp, removed after).
# XWALK_MEMCACHED_SRC=DIR: an unpacked source tree of the installed version to use instead of apt-get source.
set -euo pipefail
INTO=(${XWALK_LAYOUTS_INTO:+--into "$XWALK_LAYOUTS_INTO"})
log() { echo "memcached-probe: $*" >&2; }
die() { echo "memcached-probe: ERROR: $*" >&2; exit 1; }

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BINARY=${XWALK_PROBE_FOR:-/usr/bin/memcached}
XGEN=${XWALK_XGEN:-"$ROOT/dist/xgen.js"}
[ -x "$BINARY" ] || die "$BINARY is missing: apt-get install memcached"
[ -f "$XGEN" ] || die "$XGEN is missing: run make build"
VERSION=$(dpkg-query -W -f '${Version}' memcached) || die "memcached is not installed as a Debian package"
UPSTREAM=${VERSION#*:}
UPSTREAM=${UPSTREAM%-*}

if [ -n "${XWALK_PROBE_WORK:-}" ]; then
  WORK=$XWALK_PROBE_WORK
  rm -rf "$WORK"
  mkdir -p "$WORK"
else
  WORK=$(mktemp -d /tmp/xwalk-memcached-probe.XXXXXX)
  trap 'rm -rf "$WORK"' EXIT
fi

if [ -n "${XWALK_MEMCACHED_SRC:-}" ]; then
  cp -a "$XWALK_MEMCACHED_SRC" "$WORK/src"
  (cd "$WORK/src" && { [ ! -f Makefile ] || make distclean >/dev/null 2>&1 || true; })
else
  APT_SH="$ROOT/probes/lib/apt.sh"
  [ -f "$APT_SH" ] || APT_SH="$ROOT/test-targets/lib/apt.sh"
  # shellcheck source=../test-targets/lib/apt.sh
  source "$APT_SH"
  ensure_packages dpkg-dev build-essential pkg-config libevent-dev libsasl2-dev libssl-dev
  ensure_deb_src
  apt_source memcached "$VERSION" "$WORK/src" "$WORK"
fi
SRC="$WORK/src"
[ -f "$SRC/memcached.h" ] && [ -f "$SRC/thread.c" ] || die "the source of memcached $VERSION has no memcached.h and thread.c"

flags() { DEB_BUILD_MAINT_OPTIONS=hardening=+all dpkg-buildflags --get "$1"; }
log "configure --enable-sasl --enable-tls (debian/rules)"
(cd "$SRC" && CFLAGS="$(flags CFLAGS)" CPPFLAGS="$(flags CPPFLAGS)" LDFLAGS="$(flags LDFLAGS)" \
  ./configure --enable-sasl --enable-tls) >"$WORK/configure.log" 2>&1 \
  || { tail -20 "$WORK/configure.log" >&2; die "configure failed (log: $WORK/configure.log)"; }
grep -q '^#define TLS 1' "$SRC/config.h" || die "configure did not enable TLS (is libssl-dev installed?): the layout would not be Debian's"

# shellcheck disable=SC2046
cc_probe() { (cd "$SRC" && cc $(flags CFLAGS) $(flags CPPFLAGS) -DHAVE_CONFIG_H -I. -pthread "$@"); }
# The DWARF of the headers, every type kept, tells xgen probe which names are struct tags (struct stats) and which typedefs.
echo '#include "thread.c"' >"$WORK/head.c"
cc_probe -g -fno-eliminate-unused-debug-types -c "$WORK/head.c" -o "$WORK/types.o" >"$WORK/cc.log" 2>&1 \
  || { tail -20 "$WORK/cc.log" >&2; die "thread.c did not compile (log: $WORK/cc.log)"; }
{
  cat "$WORK/head.c"
  node "$XGEN" probe --pack memcached --dwarf "$WORK/types.o"
} >"$WORK/probe.c"
log "compiling the probe (thread.c with the schema's declarations)"
cc_probe -g -c "$WORK/probe.c" -o "$WORK/probe.o" >"$WORK/cc.log" 2>&1 \
  || { tail -20 "$WORK/cc.log" >&2; die "the probe did not compile (log: $WORK/cc.log)"; }
node "$XGEN" layout "${INTO[@]}" --pack memcached --for "$BINARY" "$WORK/probe.o"
