#!/usr/bin/env bash
# The layout of Debian's packaged nginx, which ships stripped (no debug info
# on the host): configure nginx-dev's copy of the source with Debian's own
# flags (conf_flags), compile a probe with -g against those headers that
# uses every type and global the nginx schema reads, and let xgen read the
# probe's DWARF into a layout keyed to /usr/sbin/nginx (its build-id,
# release and module signature; xgen checks the probe's signature matches).
#   bash probes/nginx.sh   -> packs/nginx/1.22.1/<build-id>.json
# (XWALK_PROBE_FOR, XWALK_PROBE_WORK, XWALK_LAYOUTS_INTO...: see probes/lib.sh.)
set -euo pipefail
PROBE=nginx-probe
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SRC=/usr/share/nginx/src
BINARY=${XWALK_PROBE_FOR:-/usr/sbin/nginx}

[ -x "$BINARY" ] || die "$BINARY is missing: apt-get install nginx"
[ -f "$SRC/conf_flags" ] || die "$SRC/conf_flags is missing: apt-get install nginx-dev"
need_xgen

make_work
as_builder cp -r "$SRC" "$BUILD/src"
# shellcheck disable=SC1091
source "$SRC/conf_flags"   # NGX_CONF_FLAGS=( ... ), Debian's configure options (nginx-dev's own file, not the copy)
log "configure ${NGX_CONF_FLAGS[*]}"
(as_builder sh -c 'cd src && exec ./configure "$@"' configure "${NGX_CONF_FLAGS[@]}" --with-cc-opt='-g -O0') >"$WORK/configure.log" 2>&1 \
  || { tail -20 "$WORK/configure.log" >&2; die "configure failed (log: $WORK/configure.log)"; }

INCS=$(awk '/^ALL_INCS = /,/^$/' "$BUILD/src/objs/Makefile" | sed -e 's/^ALL_INCS = //' -e 's/\\$//' | tr '\n' ' ')
{
  echo '#include <ngx_config.h>'
  echo '#include <ngx_core.h>'
  echo '#include <ngx_event.h>'
  echo '#include <ngx_http.h>'
  echo '/* The probe carries the signature its configuration gives: xgen compares it with the binary. */'
  echo 'const char xwalk_probe_signature[] = NGX_MODULE_SIGNATURE;'
  xgen probe --pack nginx
} >"$WORK/probe.c"
chmod 0644 "$WORK/probe.c"
log "compiling the probe"
# shellcheck disable=SC2086
as_builder sh -c 'cd src && exec cc -g -O0 -c "$@"' cc $INCS "$WORK/probe.c" -o "$BUILD/probe.o" >"$WORK/cc.log" 2>&1 \
  || { tail -20 "$WORK/cc.log" >&2; die "the probe did not compile (log: $WORK/cc.log)"; }
xgen layout "${INTO[@]}" --pack nginx --for "$BINARY" "$BUILD/probe.o"
