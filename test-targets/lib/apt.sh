# Shared by the build and probe scripts of test-targets: root, apt, and the
# deb-src entries that `apt-get source` needs, derived from the system's own
# apt sources (never a host name of ours). Source it after defining log and die.

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
  printf '# Written by xwalk test-targets/lib/apt.sh: deb-src copies of the system sources.\n%s\n' "$content" \
    | as_root tee "$out" >/dev/null || die "cannot write $out"
  log "wrote $out"
  apt_update
}


# apt_source PACKAGE VERSION DEST WORK: the source of PACKAGE=VERSION (Debian's patches applied), unpacked as the
# folder DEST, fetched in WORK/.fetch (removed after); its log in WORK/source.log.
apt_source() {
  local pkg=$1 version=$2 dest=$3 work=$4 fetch="$4/.fetch" upstream
  upstream=${version#*:}
  upstream=${upstream%-*}
  rm -rf "$fetch"
  mkdir -p "$fetch"
  # let apt's sandbox user write there (avoids the "unsandboxed as root" warning)
  if [ "$(id -u)" -eq 0 ] && id _apt >/dev/null 2>&1; then chown _apt "$fetch"; fi
  log "apt-get source $pkg=$version"
  if ! (cd "$fetch" && apt-get source -qq "$pkg=$version" >"$work/source.log" 2>&1); then
    [ $APT_UPDATED -eq 1 ] || apt_update
    (cd "$fetch" && apt-get source -qq "$pkg=$version" >"$work/source.log" 2>&1) \
      || { tail -5 "$work/source.log" >&2; die "apt-get source $pkg=$version failed"; }
  fi
  [ -d "$fetch/$pkg-$upstream" ] || die "apt-get source $pkg=$version left no $pkg-$upstream"
  rm -rf "$dest"
  mv "$fetch/$pkg-$upstream" "$dest"
  rm -rf "$fetch"
}
