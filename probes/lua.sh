#!/usr/bin/env bash
# The layouts of OpenResty's Lua as Debian ships it, stripped: lua-nginx-module
# (libnginx-mod-http-lua) and the LuaJIT it runs on (libluajit2-5.1-2). For
# each, a probe that uses every type and global the nginx schema gives that
# object (xgen probe --object) is compiled with -g from the Debian source of
# the installed version, with Debian's flags, and xgen reads its DWARF into a
# layout keyed to the installed object's build-id.
#   bash probes/lua.sh
#     -> packs/nginx/luajit-VERSION/<build-id>.json, packs/nginx/lua-module-VERSION/<build-id>.json
# (XWALK_PROBE_WORK, XWALK_LAYOUTS_INTO...: see probes/lib.sh; the objects are the installed ones.)
set -euo pipefail
PROBE=lua-probe
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MULTIARCH=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
LUAJIT=$(readlink -f "/usr/lib/$MULTIARCH/libluajit-5.1.so.2" || true)
MODULE=/usr/lib/nginx/modules/ngx_http_lua_module.so
NGX_SRC=/usr/share/nginx/src
# The layouts go into the pack's folder, or XWALK_LAYOUTS_INTO's, named after the object and its version.
PACKS=${XWALK_LAYOUTS_INTO:-$XWALK_ROOT/packs}

need_xgen
[ -f "$MODULE" ] || die "$MODULE is missing: apt-get install libnginx-mod-http-lua"
[ -f "$LUAJIT" ] || die "libluajit-5.1.so.2 is missing: apt-get install libluajit2-5.1-2"
[ -f "$NGX_SRC/conf_flags" ] || die "$NGX_SRC/conf_flags is missing: apt-get install nginx-dev"
dpkg-query -W libluajit2-5.1-2 >/dev/null 2>&1 || die "the LuaJIT installed is not OpenResty's (libluajit2-5.1-2), which lua-nginx-module needs"

# The source package of the installed version: package=version.
installed() { dpkg-query -W -f '${Version}' "$1"; }
LJ_VERSION=$(installed libluajit2-5.1-2)
LUA_VERSION=$(installed libnginx-mod-http-lua)
NDK_VERSION=$(installed libnginx-mod-http-ndk)

ensure_packages dpkg-dev build-essential
ensure_deb_src
make_work
for spec in "luajit2=$LJ_VERSION" "libnginx-mod-http-lua=$LUA_VERSION" "libnginx-mod-http-ndk=$NDK_VERSION"; do
  fetch_source "$spec"
done
LJ_SRC=$(ls -d "$BUILD"/luajit2-*/ | head -1)
LUA_SRC=$(ls -d "$BUILD"/libnginx-mod-http-lua-*/ | head -1)
NDK_SRC=$(ls -d "$BUILD"/libnginx-mod-http-ndk-*/ | head -1)

# --- LuaJIT: its own headers, with the flags Debian's build gives (src/Makefile, debian/rules: GC64 on amd64).
log "compiling the LuaJIT probe"
{
  echo '#include "lj_obj.h"'
  echo '#include "lj_dispatch.h"'
  echo '#include "lj_bc.h"'
  echo '#include "lj_ctype.h"'
  xgen probe --pack nginx --object luajit >"$WORK/probe-luajit.list"
  # The schema's lj_bc_OP types carry the build's opcode numbers, as sizes: sizeof(lj_bc_OP) - 1 == BC_OP.
  sed -n 's/^lj_bc_\([A-Z0-9_]*\) \*.*/typedef char lj_bc_\1[BC_\1 + 1];/p' "$WORK/probe-luajit.list"
  cat "$WORK/probe-luajit.list"
} >"$WORK/probe-luajit.c"
# The collector's phases are an enum without a name in lj_gc.h: the schema's enum lj_gc_state is that enum, its
# enumerators copied from the build's own lj_gc.h into a unit of their own (the probe's headers include lj_gc.h,
# whose enumerators would clash), used so that -g keeps it, and linked into the probe's object.
{
  sed -n '/Garbage collector states/,/};/p' "$LJ_SRC/src/lj_gc.h" | sed 's/^enum {/enum lj_gc_state {/'
  echo 'enum lj_gc_state *xwalk_probe_enum_lj_gc_state;'
} >"$WORK/probe-luajit-enums.c"
chmod 0644 "$WORK/probe-luajit.c" "$WORK/probe-luajit-enums.c"
for unit in probe-luajit probe-luajit-enums; do
  as_builder cc -g -O2 -fPIC -fomit-frame-pointer -D_FILE_OFFSET_BITS=64 -D_LARGEFILE_SOURCE -U_FORTIFY_SOURCE -DLUAJIT_UNWIND_EXTERNAL \
    -I "$LJ_SRC/src" -c "$WORK/$unit.c" -o "$BUILD/$unit-unit.o" 2>"$WORK/cc-luajit.log" \
    || { tail -20 "$WORK/cc-luajit.log" >&2; die "the LuaJIT probe did not compile (log: $WORK/cc-luajit.log)"; }
done
as_builder ld -r -o "$BUILD/probe-luajit.o" "$BUILD/probe-luajit-unit.o" "$BUILD/probe-luajit-enums-unit.o"
xgen layout --pack nginx --object luajit --release "$(upstream "$LJ_VERSION")" \
  --out "$PACKS/nginx/luajit-$(upstream "$LJ_VERSION")" --for "$LUAJIT" "$BUILD/probe-luajit.o"

# --- lua-nginx-module: nginx-dev's source configured with Debian's flags and the two modules, as Debian builds them.
log "configuring nginx with ndk and lua-nginx-module"
as_builder cp -r "$NGX_SRC" "$BUILD/nginx"
as_builder mkdir -p "$BUILD/lib"
as_builder ln -sf "$LUAJIT" "$BUILD/lib/libluajit-5.1.so"
# shellcheck disable=SC1091
source "$NGX_SRC/conf_flags"   # NGX_CONF_FLAGS=( ... ), Debian's configure options (nginx-dev's own file, not the copy)
as_builder env LUAJIT_INC="$LJ_SRC/src" LUAJIT_LIB="$BUILD/lib" sh -c 'cd nginx && exec ./configure "$@"' configure "${NGX_CONF_FLAGS[@]}" \
  --with-cc-opt='-g -O0 -DNDK_SET_VAR' --add-dynamic-module="$NDK_SRC" --add-dynamic-module="$LUA_SRC" >"$WORK/configure.log" 2>&1 \
  || { tail -20 "$WORK/configure.log" >&2; die "configure failed (log: $WORK/configure.log)"; }
INCS=$(awk '/^ALL_INCS = /,/^$/' "$BUILD/nginx/objs/Makefile" | sed -e 's/^ALL_INCS = //' -e 's/\\$//' | tr '\n' ' ')
ADDON_INCS=$(awk '/^ADDON_INCS = /,/^$/' "$BUILD/nginx/objs/Makefile" | sed -e 's/^ADDON_INCS = //' -e 's/\\$//' | tr '\n' ' ')
{
  echo '#include <ngx_config.h>'
  echo '#include <ngx_core.h>'
  echo '#include <ngx_http.h>'
  echo '#include "ngx_http_lua_common.h"'
  echo '#include "ngx_http_lua_socket_tcp.h"'
  xgen probe --pack nginx --object lua_module
} >"$WORK/probe-lua-module.c"
chmod 0644 "$WORK/probe-lua-module.c"
log "compiling the lua-nginx-module probe"
# shellcheck disable=SC2086
as_builder sh -c 'cd nginx && exec cc "$@"' cc -g -O0 -fPIC -DNDK_SET_VAR -I "$LJ_SRC/src" $INCS $ADDON_INCS -I "$LUA_SRC/src" -I "$NDK_SRC/src" -I "$NDK_SRC/objs" \
  -c "$WORK/probe-lua-module.c" -o "$BUILD/probe-lua-module.o" 2>"$WORK/cc-lua-module.log" \
  || { tail -20 "$WORK/cc-lua-module.log" >&2; die "the lua-nginx-module probe did not compile (log: $WORK/cc-lua-module.log)"; }
xgen layout --pack nginx --object lua_module --release "$(upstream "$LUA_VERSION")" \
  --out "$PACKS/nginx/lua-module-$(upstream "$LUA_VERSION")" --for "$MODULE" "$BUILD/probe-lua-module.o"
