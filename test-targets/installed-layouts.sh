#!/usr/bin/env bash
# Layouts for the Debian builds installed here that no committed layout covers:
# a machine with a newer Debian point release (a security update of nginx,
# lua-nginx-module, LuaJIT or redis) probes that build from its own Debian
# source, as `make debian-layout`, `make lua-layout` and `make redis-layout`
# do, so that the tests read what is installed. Nothing is probed when every
# installed build already has its layout.
#   bash test-targets/installed-layouts.sh
set -euo pipefail
log() { echo "installed-layouts: $*" >&2; }

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MULTIARCH=$(dpkg-architecture -qDEB_HOST_MULTIARCH)

build_id() { readelf -n "$1" 2>/dev/null | sed -n 's/^ *Build ID: *//p' | head -1; }
# True when some layout of the pack (any release, any object) is keyed to the file's build-id.
covered() { local id; id=$(build_id "$1"); [ -n "$id" ] && compgen -G "$ROOT/packs/$2/*/$id.json" >/dev/null; }

probe_unless_covered() {
  local file=$1 pack=$2 script=$3
  [ -e "$file" ] || return 0
  if covered "$(readlink -f "$file")" "$pack"; then return 0; fi
  log "$file (build-id $(build_id "$(readlink -f "$file")")) has no committed layout: bash $script"
  bash "$ROOT/$script"
}

probe_unless_covered /usr/sbin/nginx nginx test-targets/nginx/debian-probe.sh
probe_unless_covered /usr/lib/nginx/modules/ngx_http_lua_module.so nginx test-targets/nginx/lua-probe.sh
probe_unless_covered "/usr/lib/$MULTIARCH/libluajit-5.1.so.2" nginx test-targets/nginx/lua-probe.sh
probe_unless_covered /usr/bin/redis-server redis test-targets/redis/debian-probe.sh
