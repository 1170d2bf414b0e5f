#!/usr/bin/env bash
# The layout of Debian's packaged nginx, which ships stripped (no debug info
# on the host): configure nginx-dev's copy of the source with Debian's own
# flags (conf_flags), compile a probe with -g against those headers that
# uses every type and global the nginx schema reads, and let xgen read the
# probe's DWARF into a layout keyed to /usr/sbin/nginx (its build-id,
# release and module signature; xgen checks the probe's signature matches).
#   bash test-targets/nginx/debian-probe.sh   -> packs/nginx/1.22.1/<build-id>.json
set -euo pipefail
# XWALK_LAYOUTS_INTO=DIR: write the layout into DIR/PACK/RELEASE/ (a folder of XWALK_PACKS), not the pack's own folder.
INTO=(${XWALK_LAYOUTS_INTO:+--into "$XWALK_LAYOUTS_INTO"})
log() { echo "debian-probe: $*" >&2; }
die() { echo "debian-probe: ERROR: $*" >&2; exit 1; }

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
WORK=${XWALK_PROBE_WORK:-"$ROOT/build/nginx-debian-probe"}
SRC=/usr/share/nginx/src
BINARY=${XWALK_PROBE_FOR:-/usr/sbin/nginx}

[ -x "$BINARY" ] || die "$BINARY is missing: apt-get install nginx"
[ -f "$SRC/conf_flags" ] || die "$SRC/conf_flags is missing: apt-get install nginx-dev"
[ -f "$ROOT/dist/xgen.js" ] || die "dist/xgen.js is missing: run make build"

rm -rf "$WORK"
mkdir -p "$WORK"
cp -r "$SRC" "$WORK/src"
# shellcheck disable=SC1091
source "$WORK/src/conf_flags"   # NGX_CONF_FLAGS=( ... ), Debian's configure options
log "configure ${NGX_CONF_FLAGS[*]}"
(cd "$WORK/src" && ./configure "${NGX_CONF_FLAGS[@]}" --with-cc-opt='-g -O0') >"$WORK/configure.log" 2>&1 \
  || { tail -20 "$WORK/configure.log" >&2; die "configure failed (log: $WORK/configure.log)"; }

INCS=$(awk '/^ALL_INCS = /,/^$/' "$WORK/src/objs/Makefile" | sed -e 's/^ALL_INCS = //' -e 's/\\$//' | tr '\n' ' ')
{
  echo '#include <ngx_config.h>'
  echo '#include <ngx_core.h>'
  echo '#include <ngx_event.h>'
  echo '#include <ngx_http.h>'
  echo '/* The probe carries the signature its configuration gives: xgen compares it with the binary. */'
  echo 'const char xwalk_probe_signature[] = NGX_MODULE_SIGNATURE;'
  node "$ROOT/dist/xgen.js" probe --pack nginx
} >"$WORK/probe.c"
log "compiling the probe"
# shellcheck disable=SC2086
(cd "$WORK/src" && cc -g -O0 -c $INCS "$WORK/probe.c" -o "$WORK/probe.o") >"$WORK/cc.log" 2>&1 \
  || { tail -20 "$WORK/cc.log" >&2; die "the probe did not compile (log: $WORK/cc.log)"; }
node "$ROOT/dist/xgen.js" layout "${INTO[@]}" --pack nginx --for "$BINARY" "$WORK/probe.o"
