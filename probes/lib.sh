# Shared by the probe scripts (probes/*.sh) and the build scripts of test-targets: root, apt, the
# deb-src entries that `apt-get source` needs (derived from the system's own apt sources, never a
# host name of ours), and the private work folder a probe builds in.
#
# A probe makes the layout of a stripped Debian build: it compiles, with -g, a small C file that uses
# every type and global the pack's schema reads, from the package's own source (or -dev headers) and
# with Debian's flags, and `xgen layout --for BUILD` reads that object's DWARF into a layout keyed to
# the installed build (its build-id). Each probe script is run by `xgen layout --for FILE` (an
# installed xwalk: no checkout needed), by the checkout's make targets (debian-layout, lua-layout,
# redis-layout) and by test-targets/installed-layouts.sh. Its interface, all optional:
#   XWALK_PROBE_FOR=FILE     the installed build to key the layout to (default: the package's own path)
#   XWALK_PROBE_WORK=DIR     the work folder (made, emptied; default: a new private folder under
#                            TMPDIR, removed when the probe succeeds, kept with its logs when it fails)
#   XWALK_LAYOUTS_INTO=DIR   write the layout into DIR/PACK/RELEASE/ (a folder of packs for
#                            XWALK_PACKS) rather than into the pack's own folder (committed layouts)
#   XWALK_NODE, XWALK_XGEN   the node and the xgen.js to run (default: node, and dist/xgen.js next to probes/)
#   XWALK_PROBE_USER=USER    run as root, the source fetch and the compiles run as USER (default
#                            nobody; "" to build as root), when USER can reach the work folder
# Progress lines go to stderr, prefixed with the probe's name; the xgen line that wrote the layout to stdout.
# Source it after defining PROBE (the name for the lines), or log and die.

# The build scripts of test-targets define their own log and die first.
declare -F log >/dev/null || log() { echo "${PROBE:-probe}: $*" >&2; }
declare -F die >/dev/null || die() { echo "${PROBE:-probe}: ERROR: $*" >&2; exit 1; }

# The package root: probes/.. (a checkout or an installed xwalk).
XWALK_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
xgen() { "${XWALK_NODE:-node}" "${XWALK_XGEN:-$XWALK_ROOT/dist/xgen.js}" "$@"; }
need_xgen() { [ -f "${XWALK_XGEN:-$XWALK_ROOT/dist/xgen.js}" ] || die "${XWALK_XGEN:-$XWALK_ROOT/dist/xgen.js} is missing: run make build"; }
# XWALK_LAYOUTS_INTO as xgen layout's option (empty: the pack's own folder).
INTO=(${XWALK_LAYOUTS_INTO:+--into "$XWALK_LAYOUTS_INTO"})

# The work folder WORK (root's or the caller's, 0711: the builder may pass through it, nothing more) and
# in it BUILD, where the source is fetched and compiled, owned by the builder (0700). Files the caller
# writes (the probe's C declarations) go into WORK, never into BUILD: the builder could have put a symlink there.
BUILDER=""
WORK_IS_TEMP=0
make_work() {
  if [ -n "${XWALK_PROBE_WORK:-}" ]; then
    WORK=$XWALK_PROBE_WORK
    rm -rf "$WORK"
    mkdir -p "$WORK"
  else
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/xwalk-$PROBE.XXXXXX")
    WORK_IS_TEMP=1
  fi
  chmod 0711 "$WORK"
  BUILD="$WORK/build"
  mkdir -m 0700 "$BUILD"
  local user=${XWALK_PROBE_USER-nobody}
  if [ "$(id -u)" -ne 0 ]; then
    :
  elif [ -z "$user" ]; then
    log "building as root (XWALK_PROBE_USER is empty)"
  elif ! id "$user" >/dev/null 2>&1; then
    log "building as root: there is no user $user"
  elif ! command -v setpriv >/dev/null 2>&1; then
    log "building as root: setpriv is missing (util-linux)"
  else
    chown "$user:" "$BUILD"
    if setpriv --reuid="$user" --regid="$(id -g "$user")" --clear-groups test -w "$BUILD" 2>/dev/null; then
      BUILDER=$user
      log "fetching and compiling as $user in $BUILD"
    else
      chown 0:0 "$BUILD"
      log "building as root: $user cannot reach $BUILD (a folder above it is private)"
    fi
  fi
  trap 'rc=$?; if [ $rc -eq 0 ] && [ $WORK_IS_TEMP -eq 1 ]; then rm -rf "$WORK"; elif [ $rc -ne 0 ]; then echo "${PROBE:-probe}: failed (exit $rc); its work folder and logs: $WORK" >&2; fi' EXIT
}

# Runs a command as the builder (in BUILD), or as the caller when there is none. HOME and the caches
# point into BUILD: the builder has no home of its own.
as_builder() {
  if [ -n "$BUILDER" ]; then
    (cd "$BUILD" && HOME="$BUILD" XDG_CACHE_HOME="$BUILD/.cache" setpriv --reuid="$BUILDER" --regid="$(id -g "$BUILDER")" --clear-groups "$@")
  else
    (cd "$BUILD" && "$@")
  fi
}

# The upstream version of a Debian version: no epoch, no Debian revision.
upstream() { local v=${1#*:}; echo "${v%-*}"; }

# `apt-get source PKG=VERSION` into BUILD, as the builder; on failure, once more after apt-get update.
fetch_source() {
  log "apt-get source $1"
  if ! as_builder apt-get source -qq "$1" >"$WORK/source.log" 2>&1; then
    [ $APT_UPDATED -eq 1 ] || apt_update
    as_builder apt-get source -qq "$1" >"$WORK/source.log" 2>&1 \
      || { tail -5 "$WORK/source.log" >&2; die "apt-get source $1 failed (log: $WORK/source.log)"; }
  fi
}

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else die "need root to run: $*"
  fi
}

export DEBIAN_FRONTEND=noninteractive
APT_UPDATED=0
apt_update() {
  log "apt-get update"
  as_root apt-get update -qq >&2 || die "apt-get update failed"
  APT_UPDATED=1
}

# Installs the packages named that are missing.
ensure_packages() {
  local missing=() p
  for p in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
      missing+=("$p")
    fi
  done
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing: ${missing[*]}"
    [ $APT_UPDATED -eq 1 ] || apt_update
    as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 \
      || die "apt-get install ${missing[*]} failed"
  fi
}

have_deb_src() {
  if apt-get indextargets --format '$(IDENTIFIER)' 2>/dev/null | grep -qx 'Sources'; then
    return 0
  fi
  grep -rqsE '^[[:space:]]*(deb-src|Types:.*deb-src)' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null
}

# deb822: repeat each stanza whose Types include "deb", with "Types: deb-src".
derive_from_deb822() {
  awk '
    BEGIN { RS = ""; ORS = "\n\n" }
    {
      n = split($0, lines, "\n"); out = ""; isdeb = 0
      for (i = 1; i <= n; i++) {
        l = lines[i]
        if (l ~ /^[Tt]ypes:/) {
          v = l; sub(/^[Tt]ypes:[ \t]*/, "", v)
          m = split(v, ts, /[ \t]+/)
          for (j = 1; j <= m; j++) if (ts[j] == "deb") isdeb = 1
          l = "Types: deb-src"
        }
        out = out l "\n"
      }
      if (isdeb) { sub(/\n$/, "", out); print out }
    }' "$1"
}

# one-line format: "deb [opts] URI suite [components...]" -> one deb822 stanza per line.
derive_from_oneline() {
  awk '
    function field(k) {
      k = tolower(k)
      if (k == "arch") return "Architectures"
      if (k == "signed-by") return "Signed-By"
      if (k == "trusted") return "Trusted"
      if (k == "lang") return "Languages"
      if (k == "target") return "Targets"
      if (k == "pdiffs") return "PDiffs"
      if (k == "by-hash") return "By-Hash"
      if (k == "check-valid-until") return "Check-Valid-Until"
      if (k == "check-date") return "Check-Date"
      return ""
    }
    /^[ \t]*deb[ \t]/ {
      line = $0; sub(/#.*/, "", line); sub(/^[ \t]*deb[ \t]+/, "", line)
      opts = ""
      if (line ~ /^\[/) {
        o = line; sub(/\].*/, "", o); sub(/^\[/, "", o)
        sub(/^\[[^]]*\][ \t]*/, "", line)
        k = split(o, kv, /[ \t]+/)
        for (j = 1; j <= k; j++) {
          if (kv[j] == "") continue
          split(kv[j], p, "="); f = field(p[1])
          if (f != "") { val = p[2]; gsub(/,/, " ", val); opts = opts f ": " val "\n" }
        }
      }
      m = split(line, w, /[ \t]+/)
      if (m < 2) next
      comps = ""
      for (j = 3; j <= m; j++) if (w[j] != "") comps = comps (comps == "" ? "" : " ") w[j]
      printf "Types: deb-src\nURIs: %s\nSuites: %s\n", w[1], w[2]
      if (comps != "") printf "Components: %s\n", comps
      printf "%s\n", opts
    }' "$1"
}

ensure_deb_src() {
  if have_deb_src; then
    return 0
  fi
  local out=/etc/apt/sources.list.d/xwalk-src.sources content=""
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    log "deriving deb-src entries from /etc/apt/sources.list.d/debian.sources"
    content=$(derive_from_deb822 /etc/apt/sources.list.d/debian.sources)
  elif [ -f /etc/apt/sources.list ]; then
    log "deriving deb-src entries from /etc/apt/sources.list"
    content=$(derive_from_oneline /etc/apt/sources.list)
  fi
  [ -n "$content" ] || die "no 'deb' entries found in /etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list; cannot derive deb-src"
  printf '# Written by xwalk probes/lib.sh: deb-src copies of the system sources.\n%s\n' "$content" \
    | as_root tee "$out" >/dev/null || die "cannot write $out"
  log "wrote $out"
  apt_update
}

