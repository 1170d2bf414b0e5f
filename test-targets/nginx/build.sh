#!/usr/bin/env bash
# Build a debug nginx 1.22.1 (DWARF, -O2) from Debian's source package, for the tests.
#
#   bash test-targets/nginx/build.sh            -> build/nginx/nginx-1.22.1/objs/nginx
#   bash test-targets/nginx/build.sh v2debug    -> build/nginx-v2debug/nginx-1.22.1/objs/nginx
#
# The v2debug variant is configured with other options (HTTP/2, --with-debug,
# no SSL, no threads), which move fields of ngx_http_request_t and
# ngx_connection_t: it proves that each build gets its own layout.
#
# Idempotent: when that binary exists, is newer than the source tarball and was
# configured with the same options, the script does nothing.
# Needs root (or passwordless apt) only when packages or deb-src entries are missing.
set -euo pipefail

NGINX_VERSION=1.22.1

log() { echo "nginx-build: $*" >&2; }
die() { echo "nginx-build: ERROR: $*" >&2; exit 1; }
trap 'rc=$?; [ $rc -eq 0 ] || echo "nginx-build: failed (exit $rc)" >&2' EXIT

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# build/ may be a link shared by several checkouts: its physical path, so that the stamp below (which
# names the source folder) is the same from each of them and none rebuilds what another built.
mkdir -p "$ROOT/build"
BUILD=$(cd "$ROOT/build" && pwd -P)
VARIANT="${1:-}"
case "$VARIANT" in
  "") WORK="$BUILD/nginx" ;;
  v2debug) WORK="$BUILD/nginx-v2debug" ;;
  *) die "unknown variant '$VARIANT' (known: v2debug)" ;;
esac
FETCHED="$BUILD/nginx"
TARBALL="$FETCHED/nginx_${NGINX_VERSION}.orig.tar.gz"
SRCDIR="$WORK/nginx-${NGINX_VERSION}"
# The tests always pass -p DIR, so the prefix is never used; a fixed one (and
# the source path mapped away through CFLAGS, which nginx -V does not record)
# makes the binary, and so its build-id, the same in every checkout: the
# layout committed in packs/nginx/1.22.1/ then serves it.
PREFIX="/usr/local/xwalk-nginx"
BINARY="$SRCDIR/objs/nginx"
STAMP="$WORK/configure.args"
BUILDLOG="$WORK/build.log"

if [ -z "$VARIANT" ]; then
  CONFIGURE_ARGS=(
    "--prefix=$PREFIX"
    "--with-cc-opt=-g -O2"
    --with-http_ssl_module
    --with-http_stub_status_module
    --with-threads
    # nginx picks PCRE2 when its headers are installed (nginx-dev pulls them in):
    # pin PCRE1 so the binary, and its build-id, do not depend on what else is installed.
    --without-pcre2
  )
else
  CONFIGURE_ARGS=(
    "--prefix=$PREFIX"
    "--with-cc-opt=-g -O2"
    --with-http_v2_module
    --with-http_stub_status_module
    --with-debug
    --without-pcre2
  )
fi
export CFLAGS="-fdebug-prefix-map=$SRCDIR=."
ARGS_TEXT=$(printf '%s\n' "${CONFIGURE_ARGS[@]}" "CFLAGS=$CFLAGS")

mkdir -p "$WORK" "$FETCHED"

# Serialise concurrent runs (tap runs test files in parallel).
exec 9>"$FETCHED/.lock"
if command -v flock >/dev/null 2>&1; then
  flock 9
fi

up_to_date() {
  [ -x "$BINARY" ] && [ -f "$TARBALL" ] && [ "$BINARY" -nt "$TARBALL" ] \
    && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$ARGS_TEXT" ]
}

if up_to_date; then
  log "up to date: $BINARY"
  exit 0
fi

# shellcheck source=../../probes/lib.sh
source "$ROOT/probes/lib.sh"

# --- 1. build dependencies ------------------------------------------------------
ensure_packages dpkg-dev build-essential libpcre3-dev zlib1g-dev libssl-dev

# --- 2. fetch the source tarball ------------------------------------------------
tarball_version() {
  tar -xzOf "$TARBALL" "nginx-${NGINX_VERSION}/src/core/nginx.h" 2>/dev/null \
    | sed -n 's/^#define NGINX_VERSION[[:space:]]*"\([^"]*\)".*/\1/p'
}

# sha256 of nginx_<v>.orig.tar.gz as listed in the (signed) apt Sources index.
indexed_sha256() {
  apt-cache showsrc nginx 2>/dev/null \
    | awk -v f="nginx_${NGINX_VERSION}.orig.tar.gz" '
        /^[^ ]/ { in_sha = ($1 == "Checksums-Sha256:") ; next }
        in_sha && $3 == f { print $1 }' | sort -u
}

fetch_tarball() {
  ensure_deb_src
  if ! apt-cache showsrc nginx 2>/dev/null | grep -q '^Package: nginx'; then
    [ $APT_UPDATED -eq 1 ] || apt_update
  fi
  local want
  want=$(indexed_sha256)
  [ -n "$want" ] || die "apt's Sources index has no nginx_${NGINX_VERSION}.orig.tar.gz (versions known: $(apt-cache showsrc nginx 2>/dev/null | sed -n 's/^Version: //p' | tr '\n' ' '))"
  local fetch="$FETCHED/.fetch" spec got
  # Try the candidate first, then every source version apt knows about (a mirror
  # may lack the newest .dsc/.debian.tar while still serving the shared orig tarball).
  for spec in nginx $(apt-cache showsrc nginx 2>/dev/null | sed -n 's/^Version: /nginx=/p'); do
    rm -rf "$fetch"; mkdir -p "$fetch"
    # let apt's sandbox user write there (avoids the "unsandboxed as root" warning)
    if [ "$(id -u)" -eq 0 ] && id _apt >/dev/null 2>&1; then chown _apt "$fetch"; fi
    log "apt-get source --download-only $spec"
    if ! (cd "$fetch" && apt-get source -qq --download-only "$spec" >&2); then
      log "apt-get source --download-only $spec reported errors"
    fi
    if [ -f "$fetch/nginx_${NGINX_VERSION}.orig.tar.gz" ]; then
      got=$(sha256sum "$fetch/nginx_${NGINX_VERSION}.orig.tar.gz" | cut -d' ' -f1)
      if grep -qx "$got" <<<"$want"; then
        log "nginx_${NGINX_VERSION}.orig.tar.gz sha256 matches apt's Sources index"
        mv "$fetch/nginx_${NGINX_VERSION}.orig.tar.gz" "$TARBALL"
        rm -rf "$fetch"
        return 0
      fi
      log "sha256 of downloaded nginx_${NGINX_VERSION}.orig.tar.gz does not match apt's index"
    fi
  done
  got=$(cd "$fetch" && ls nginx_*.orig.tar.* 2>/dev/null | tr '\n' ' ' || true)
  rm -rf "$fetch"
  die "could not fetch nginx_${NGINX_VERSION}.orig.tar.gz with apt-get source (last attempt got: ${got:-nothing})"
}

if [ ! -f "$TARBALL" ]; then
  fetch_tarball
fi

v=$(tarball_version)
[ "$v" = "$NGINX_VERSION" ] || die "$TARBALL contains nginx '${v:-unknown}', expected $NGINX_VERSION (delete it to fetch again)"

# --- 3. extract -----------------------------------------------------------------
if [ ! -f "$SRCDIR/configure" ]; then
  log "extracting $(basename "$TARBALL")"
  tmp="$WORK/.extract.$$"
  rm -rf "$tmp" "$SRCDIR"
  mkdir -p "$tmp"
  tar -xzf "$TARBALL" -C "$tmp" || die "cannot extract $TARBALL"
  [ -f "$tmp/nginx-${NGINX_VERSION}/configure" ] || die "$TARBALL has no nginx-${NGINX_VERSION}/configure"
  mv "$tmp/nginx-${NGINX_VERSION}" "$SRCDIR"
  rm -rf "$tmp"
fi

# --- 4. configure + make --------------------------------------------------------
: >"$BUILDLOG"
fail_with_log() {
  echo "---- last lines of $BUILDLOG ----" >&2
  tail -n 40 "$BUILDLOG" >&2 || true
  die "$1"
}

if [ ! -f "$SRCDIR/objs/Makefile" ] || [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$ARGS_TEXT" ]; then
  log "configure ${CONFIGURE_ARGS[*]}"
  rm -f "$STAMP"
  (cd "$SRCDIR" && ./configure "${CONFIGURE_ARGS[@]}") >>"$BUILDLOG" 2>&1 \
    || fail_with_log "configure failed (full log: $BUILDLOG)"
  rm -f "$BINARY"
fi

log "make -j2 (log: build/nginx/build.log)"
start=$(date +%s)
(cd "$SRCDIR" && make -j2) >>"$BUILDLOG" 2>&1 || fail_with_log "make failed (full log: $BUILDLOG)"
[ -x "$BINARY" ] || die "make succeeded but $BINARY is missing"
readelf -S "$BINARY" | grep -q '\.debug_info' || die "$BINARY has no .debug_info section (no DWARF)"
touch "$BINARY"
printf '%s\n' "$ARGS_TEXT" >"$STAMP"
log "built $BINARY in $(( $(date +%s) - start ))s"
