#!/usr/bin/env bash
# Layouts for the Debian builds installed here that no committed layout covers:
# a machine with a newer Debian point release (a security update of nginx,
# lua-nginx-module, LuaJIT or redis) probes that build from its own Debian
# source, as `make debian-layout`, `make lua-layout` and `make redis-layout`
# do, so that the tests read what is installed. Nothing is probed when every
# installed build already has its layout. The layouts go to a folder of packs
# outside the source tree, build/installed-layouts/PACK/RELEASE/, which make
# test names in XWALK_PACKS: a test run never writes into packs/.
#   bash test-targets/installed-layouts.sh
set -euo pipefail
log() { echo "installed-layouts: $*" >&2; }

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MULTIARCH=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
export XWALK_LAYOUTS_INTO=${XWALK_LAYOUTS_INTO:-$ROOT/build/installed-layouts}
mkdir -p "$XWALK_LAYOUTS_INTO"

build_id() { readelf -n "$1" 2>/dev/null | sed -n 's/^ *Build ID: *//p' | head -1; }
# True when some layout of the pack (any release, any object) is keyed to the file's build-id: a committed one,
# or one probed here since the pack's schema last changed.
covered() {
  local id local_file yaml
  id=$(build_id "$1")
  [ -n "$id" ] || return 1
  compgen -G "$ROOT/packs/$2/*/$id.json" >/dev/null && return 0
  for local_file in "$XWALK_LAYOUTS_INTO/$2"/*/"$id.json"; do
    [ -f "$local_file" ] || continue
    for yaml in "$ROOT/packs/$2"/*.yaml; do [ "$yaml" -nt "$local_file" ] && return 1; done
    return 0
  done
  return 1
}

probe_unless_covered() {
  local file=$1 pack=$2 script=$3
  [ -e "$file" ] || return 0
  if covered "$(readlink -f "$file")" "$pack"; then return 0; fi
  log "$file (build-id $(build_id "$(readlink -f "$file")")) has no committed layout: bash $script"
  bash "$ROOT/$script"
}

probe_unless_covered /usr/sbin/nginx nginx probes/nginx.sh
probe_unless_covered /usr/lib/nginx/modules/ngx_http_lua_module.so nginx probes/lua.sh
probe_unless_covered "/usr/lib/$MULTIARCH/libluajit-5.1.so.2" nginx probes/lua.sh
probe_unless_covered /usr/bin/redis-server redis probes/redis.sh
probe_unless_covered /usr/bin/memcached memcached probes/memcached.sh
