#!/usr/bin/env bash
# release.sh — cross-compile static PicoFlow binaries for edge devices.
#
# PicoFlow needs cgo (mattn/go-sqlite3), so a plain GOOS/GOARCH build is not
# enough: we use zig (scripts/install-zig.sh) as the C cross-compiler and link
# fully static against musl. The result runs on any Linux of that
# architecture, with no libc on the device.
#
# Caches: zig's caches live under ${PICOFLOW_CACHE:-$HOME/.cache/picoflow}
# and GOCACHE stays Go's default, so only the first build of each target
# compiles SQLite and musl (minutes); warm rebuilds take seconds.
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# --- targets -----------------------------------------------------------------
# name -> GOARCH, GOARM, zig target(s), extra C flags for the target CPU.
#
# armv7: the Debian armhf baseline — ARMv7-A, VFPv3-D16, no NEON — which is
# also what GOARM=7 assumes (zig's default for arm assumes NEON). C code is
# compiled as Thumb-2 (zig target thumb-linux-musleabihf; zig ignores the
# -marm that cgo passes), which makes SQLite ~30% smaller than ARM mode.
# Go's own runtime/cgo must stay ARM: gcc_arm.S is ARM-encoded and its
# crosscall1 has no `.type %function`, so a Thumb caller (gcc_linux.c) would
# jump into it without switching mode and crash at the first thread start.
# zig 0.11's Thumb musl is broken too (crti's ARM-mode _init lands on a
# 2-byte boundary: SIGILL at start). The compiler wrapper below therefore uses
# thumb-linux-musleabihf only to compile C (-c) outside runtime/cgo, and
# arm-linux-musleabihf for assembly, runtime/cgo and the final link (so musl
# is ARM code). Go code is always ARM; the linker handles ARM<->Thumb
# interworking for typed function symbols.
target_goarch() {
  case "$1" in
    armv7) echo arm ;;
    arm64) echo arm64 ;;
    amd64) echo amd64 ;;
    *) return 1 ;;
  esac
}
target_goarm() { [[ "$1" == armv7 ]] && echo 7 || echo ""; }
target_zig() {
  case "$1" in
    armv7) [[ "${armv7_thumb}" -eq 1 ]] && echo thumb-linux-musleabihf || echo arm-linux-musleabihf ;;
    arm64) echo aarch64-linux-musl ;;
    amd64) echo x86_64-linux-musl ;;
  esac
}
# zig target for assembly and runtime/cgo sources (defaults to target_zig).
target_zig_asm() {
  case "$1" in
    armv7) echo arm-linux-musleabihf ;;
    *) target_zig "$1" ;;
  esac
}
target_cpu_flags() {
  case "$1" in
    armv7) echo "-mcpu=generic+v7a+vfp3d16-neon-d32" ;;
    *) echo "" ;;
  esac
}

# --- SQLite trimming ---------------------------------------------------------
# Compile-time options for the SQLite amalgamation inside mattn/go-sqlite3.
# Each only removes an API or feature PicoFlow does not use; all were checked
# to build and pass a query round-trip. Notes:
#  * SQLITE_OMIT_LOAD_EXTENSION comes from the build tag
#    sqlite_omit_load_extension, which defines it and drops the driver's Go
#    code that calls the extension API. It is deliberately not in CGO_CFLAGS:
#    a nested `go build` (e.g. in a test) that inherits CGO_CFLAGS but not the
#    tags would then fail to link.
#  * DEFAULT_WAL_SYNCHRONOUS=1, OMIT_DEPRECATED and THREADSAFE=1 are also set
#    by mattn/go-sqlite3; they are repeated here so the list is complete.
#  * SQLITE_DQS=0 makes "double-quoted" string literals an error (identifiers
#    only) — use 'single quotes' for strings in SQL.
#  * SQLITE_OMIT_SHARED_CACHE makes ?cache=shared a no-op.
#  * Do not add SQLITE_OMIT_DECLTYPE or SQLITE_OMIT_AUTHORIZATION: the driver
#    calls sqlite3_column_decltype and sqlite3_set_authorizer.
#  * Left out because PicoFlow's SQL does not use them (grep the SQL before
#    relying on one): date/time functions (DATETIME_FUNCS; CURRENT_TIMESTAMP
#    still works), sqlite3_trace (TRACE; the driver uses it only with its
#    sqlite_trace tag), incremental blob I/O (INCRBLOB), the pragmas
#    function_list/module_list/pragma_list (INTROSPECTION_PRAGMAS), memory-
#    mapped I/O (MAX_MMAP_SIZE=0; off by default, nothing sets mmap_size) and
#    the test hooks (UNTESTABLE).
#  * Do not add SQLITE_OMIT_JSON, SQLITE_OMIT_WINDOWFUNC or
#    SQLITE_OMIT_VIRTUALTABLE: the projector uses json_group_array,
#    json_each (a table-valued function) and ROW_NUMBER() OVER.
#  * Also left out, as PicoFlow's schema and SQL have none of them: EXPLAIN,
#    foreign keys, CHECK and generated columns, AUTOINCREMENT, X'..' blob and
#    0x.. integer literals, PRAGMA integrity_check, case_sensitive_like and
#    the schema pragmas (table_info and kin), auto-vacuum, the INSERT..SELECT
#    transfer shortcut (XFER_OPT) and the LIKE-on-an-index optimisation
#    (the only LIKE is NOT LIKE 'sqlite_%' on sqlite_schema).
#  * The amalgamation's parser is generated with every feature in, so an
#    OMIT whose grammar actions then have no function fails to build or
#    link: TRIGGER and CTE do not compile; ANALYZE, ATTACH, VACUUM, VIEW and
#    REINDEX leave undefined symbols. PicoFlow uses none of them, but they
#    stay. Keep SQLITE_OMIT_DESERIALIZE out too: it removes the memdb VFS
#    that projector.OpenMemory uses, and the flag and pager pragmas
#    (query_only, synchronous, journal_mode, locking_mode, busy_timeout) are
#    what the driver's DSN options run.
sqlite_defines=(
  -DSQLITE_DEFAULT_WAL_SYNCHRONOUS=1
  -DSQLITE_OMIT_DEPRECATED
  -DSQLITE_OMIT_PROGRESS_CALLBACK
  -DSQLITE_OMIT_SHARED_CACHE
  -DSQLITE_DQS=0
  -DSQLITE_THREADSAFE=1
  -DSQLITE_DEFAULT_MEMSTATUS=0
  -DSQLITE_OMIT_COMPLETE
  -DSQLITE_OMIT_GET_TABLE
  -DSQLITE_OMIT_TCL_VARIABLE
  -DSQLITE_OMIT_UTF16
  -DSQLITE_OMIT_COMPILEOPTION_DIAGS
  -DSQLITE_USE_ALLOCA
  -DSQLITE_LIKE_DOESNT_MATCH_BLOBS
  -DSQLITE_MAX_EXPR_DEPTH=0
  -DSQLITE_UNTESTABLE
  -DSQLITE_OMIT_TRACE
  -DSQLITE_OMIT_INTROSPECTION_PRAGMAS
  -DSQLITE_OMIT_INCRBLOB
  -DSQLITE_OMIT_DATETIME_FUNCS
  -DSQLITE_MAX_MMAP_SIZE=0
  -DSQLITE_OMIT_EXPLAIN
  -DSQLITE_OMIT_FOREIGN_KEY
  -DSQLITE_OMIT_CHECK
  -DSQLITE_OMIT_GENERATED_COLUMNS
  -DSQLITE_OMIT_AUTOINCREMENT
  -DSQLITE_OMIT_BLOB_LITERAL
  -DSQLITE_OMIT_HEX_INTEGER
  -DSQLITE_OMIT_INTEGRITY_CHECK
  -DSQLITE_OMIT_CASE_SENSITIVE_LIKE_PRAGMA
  -DSQLITE_OMIT_SCHEMA_PRAGMAS
  -DSQLITE_OMIT_AUTOVACUUM
  -DSQLITE_OMIT_XFER_OPT
  -DSQLITE_OMIT_LIKE_OPTIMIZATION
  -DSQLITE_OMIT_POPEN
)
# mattn/go-sqlite3 turns on FTS3, R*Tree and UPDATE/DELETE ... LIMIT with
# #cgo CFLAGS, which come after CGO_CFLAGS on the compiler command line, so
# -U cannot undo them. A header
# passed with -include is read after all -D/-U options, so it can.
sqlite_trim_header='/* Generated by scripts/release.sh: drop SQLite modules PicoFlow does not use. */
#undef SQLITE_ENABLE_FTS3
#undef SQLITE_ENABLE_FTS3_PARENTHESIS
#undef SQLITE_ENABLE_RTREE
#undef SQLITE_ENABLE_UPDATE_DELETE_LIMIT'
# Build tags, always: pure-Go DNS and user lookup (netgo, osusergo; musl's
# would ignore nsswitch anyway, and this keeps libc's resolver out), and no
# HTTP/2 in net/http (nethttpomithttp2: -500 kB; the http executor and the
# metrics endpoint speak HTTP/1.1, which every server and Prometheus accept).
base_tags="netgo osusergo nethttpomithttp2"
# With the SQLite trimming: no dlopen in a static binary.
sqlite_tags="sqlite_omit_load_extension"
# C size flags besides -Os: no unwind tables (.eh_frame, ~100 kB on amd64 and
# arm64). Nothing reads them: Go does not unwind C frames and there is no C++.
# One section per function and datum, so that the linker's --gc-sections
# (below) drops the SQLite API functions and data nothing calls (armv7: -11 kB).
c_size_flags="-fno-asynchronous-unwind-tables -fno-unwind-tables -ffunction-sections -fdata-sections"
# zig cc reads -Oz as -Os (its ReleaseSmall); -Xclang hands clang's own -Oz
# (optimise for size even where it costs speed) to the compiler, after -Os.
# Only for the zig builds: --print-cgo-env's flags must suit the host's gcc.
# armv7: -57 kB, nearly all SQLite, whose speed the projector does not feel.
zig_c_flags="-Xclang -Oz"
# The linker drops unreferenced sections (see -ffunction-sections above).
link_gc_flags="-Wl,--gc-sections"

usage() {
  cat <<'EOF'
Usage: scripts/release.sh [options]

Cross-compile a static binary per target with zig as the cgo C compiler,
then write SHA256SUMS.

Options:
  --targets "LIST"      targets to build, of: armv7 arm64 amd64 (default: all three)
  --out DIR             output directory (default: <module-dir>/dist)
  --pkg PKG             package to build, relative to the module dir
                        (default: ./cmd/picoflow)
  --module-dir DIR      Go module to build in (default: the repository
                        containing this script)
  --name NAME           binary name prefix (default: picoflow) -> NAME-linux-TARGET
  --version V           version to embed (default: $VERSION, else
                        `git describe --tags --always --dirty`, else "dev")
  --version-symbol SYM  variable set with -X (default:
                        github.com/picoflow/picoflow/cli.version)
  --tags "T1 T2"        extra build tags, added to the release tags
  --no-strip            keep symbols (for scripts/size.sh --breakdown)
  --no-sqlite-opts      plain C flags: mattn/go-sqlite3's defaults and Go's
                        -O2 -g, no SQLite trimming (to measure what it saves)
  --armv7-no-thumb      compile armv7 C code as ARM instead of Thumb-2
                        (bigger; an escape hatch if Thumb ever misbehaves)
  --inline              let the Go compiler inline (by default releases are
                        built with -gcflags=all=-l: about 8% smaller; the
                        orchestrator waits on processes and disks, not CPU)
  --print-cgo-env       print shell-quoted CGO_CFLAGS=... and TAGS=... (tags
                        comma-separated, for GOFLAGS=-tags=...) of the release
                        and exit, to run tests with them:
                        eval "$(scripts/release.sh --print-cgo-env)"
  -h, --help            show this help

Environment: PICOFLOW_CACHE (cache root, default ~/.cache/picoflow), VERSION.
Examples:
  scripts/release.sh
  scripts/release.sh --targets armv7 --out /tmp/dist
  scripts/release.sh --module-dir /tmp/probe --pkg ./cmd/probe --version-symbol main.version
EOF
}

log() { printf 'release: %s\n' "$*" >&2; }
die() { printf 'release: error: %s\n' "$*" >&2; exit 1; }

targets="armv7 arm64 amd64"
out=""
pkg="./cmd/picoflow"
module_dir="$(cd "${script_dir}/.." && pwd)"
name="picoflow"
version="${VERSION:-}"
version_symbol="github.com/picoflow/picoflow/cli.version"
strip=1
sqlite_opts=1
print_cgo_env=0
armv7_thumb=1
inline=0
extra_tags=""

need_arg() { [[ $# -ge 2 && -n "$2" ]] || die "$1 needs a value"; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    --targets) need_arg "$@"; targets="$2"; shift 2 ;;
    --out) need_arg "$@"; out="$2"; shift 2 ;;
    --pkg) need_arg "$@"; pkg="$2"; shift 2 ;;
    --module-dir) need_arg "$@"; module_dir="$2"; shift 2 ;;
    --name) need_arg "$@"; name="$2"; shift 2 ;;
    --version) need_arg "$@"; version="$2"; shift 2 ;;
    --version-symbol) need_arg "$@"; version_symbol="$2"; shift 2 ;;
    --no-strip) strip=0; shift ;;
    --no-sqlite-opts) sqlite_opts=0; shift ;;
    --print-cgo-env) print_cgo_env=1; shift ;;
    --armv7-no-thumb) armv7_thumb=0; shift ;;
    --inline) inline=1; shift ;;
    --tags) need_arg "$@"; extra_tags="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done

gcflags="-gcflags=all=-l"
[[ "${inline}" = 0 ]] || gcflags=""

cache_root="${PICOFLOW_CACHE:-${HOME}/.cache/picoflow}"
mkdir -p "${cache_root}"
cache_root="$(cd "${cache_root}" && pwd)"

# write_if_changed FILE CONTENT: keep the file (and its mtime) when unchanged.
write_if_changed() {
  if [[ ! -f "$1" ]] || [[ "$(cat "$1")" != "$2" ]]; then
    mkdir -p "$(dirname "$1")"
    printf '%s\n' "$2" >"$1.tmp.$$"
    chmod 755 "$1.tmp.$$"
    mv -f "$1.tmp.$$" "$1"
  fi
}

# The trim header must exist at a stable absolute path (it is part of the
# flags, hence of Go's build-cache key). Go hashes the flags, not the
# header's content, so the name carries a hash of the content: a changed
# header is a new key, and builds of other checkouts sharing the cache
# (with another header) cannot swap it under this one.
trim_header="${cache_root}/release/sqlite-trim-$(printf '%s' "${sqlite_trim_header}" | sha256sum | cut -c1-12).h"

if [[ "${sqlite_opts}" -eq 1 ]]; then
  write_if_changed "${trim_header}" "${sqlite_trim_header}"
  cgo_cflags="-Os ${c_size_flags} ${sqlite_defines[*]} -include ${trim_header}"
  tags="${base_tags} ${sqlite_tags}"
  zig_cflags="${zig_c_flags}"
else
  cgo_cflags="-O2 -g"   # Go's default CGO_CFLAGS
  zig_cflags=""
  tags="${base_tags}"
fi

tags="${tags}${extra_tags:+ ${extra_tags}}"

if [[ "${print_cgo_env}" -eq 1 ]]; then
  # Shell-quoted, so that `eval "$(scripts/release.sh --print-cgo-env)"` works.
  printf 'CGO_CFLAGS=%q\n' "${cgo_cflags}"
  printf 'TAGS=%q\n' "$(tr ' ' ',' <<<"${tags}")"
  exit 0
fi

# --- inputs ------------------------------------------------------------------
[[ -d "${module_dir}" ]] || die "module dir not found: ${module_dir}"
module_dir="$(cd "${module_dir}" && pwd)"
[[ -f "${module_dir}/go.mod" ]] || die "no go.mod in ${module_dir}"
[[ -d "${module_dir}/${pkg}" ]] || die "package dir not found: ${module_dir}/${pkg}"
command -v go >/dev/null 2>&1 || die "go not found"

for t in ${targets}; do
  target_goarch "${t}" >/dev/null || die "unknown target '${t}' (want armv7, arm64 or amd64)"
done
[[ -n "${targets// /}" ]] || die "--targets is empty"

if [[ -z "${out}" ]]; then
  out="${module_dir}/dist"
fi
mkdir -p "${out}"
out="$(cd "${out}" && pwd)"

if [[ -z "${version}" ]]; then
  version="$(git -C "${module_dir}" describe --tags --always --dirty 2>/dev/null || true)"
  version="${version:-dev}"
fi

zig="$("${script_dir}/install-zig.sh" | tail -n 1)"
[[ -x "${zig}" ]] || die "install-zig.sh did not give a zig binary"
# CC is split on spaces by the go command, and the wrappers embed the path.
[[ "${zig}" != *[[:space:]]* && "${cache_root}" != *[[:space:]]* ]] \
  || die "zig or cache path contains whitespace (${cache_root}); set PICOFLOW_CACHE to a path without spaces"

# armv7 link-time fix: musl's crti.s/crtn.s, as zig assembles them, give
# .init/.fini an alignment of 1. They hold ARM code, and after Thumb code (or
# lld's Thumb thunks) the section can start on a 2-byte boundary: SIGILL in
# _init before main. An empty .init/.fini with 4-byte alignment, linked in,
# raises the output sections' alignment to 4.
make_align_object() {
  local src obj
  src="${cache_root}/release/cc/arm-init-align.s"
  write_if_changed "${src}" '/* Generated by scripts/release.sh: 4-byte align .init/.fini (ARM code). */
.section .init,"ax",%progbits
.balign 4
.section .fini,"ax",%progbits
.balign 4'
  obj="${cache_root}/release/cc/arm-init-align-$(sha256sum <"${src}" | cut -c1-12).o"
  if [[ ! -f "${obj}" ]]; then
    "${zig}" cc -target arm-linux-musleabihf -c "${src}" -o "${obj}.tmp.$$"
    mv -f "${obj}.tmp.$$" "${obj}"
  fi
  printf '%s\n' "${obj}"
}

# Compiler wrappers, one per target and driver (cc, c++). They keep CC free of
# spaces and carry the armv7 mode selection described at target_zig. The file
# name carries a hash of the content: Go's build cache keys on the CC path,
# not on what a wrapper script does, so a changed wrapper must get a new name
# to force a rebuild.
make_wrapper() {
  local t="$1" driver="$2"
  local cpu zt zt_asm content sum file
  cpu="$(target_cpu_flags "${t}")"
  zt="$(target_zig "${t}")"
  zt_asm="$(target_zig_asm "${t}")"
  if [[ "${zt}" == "${zt_asm}" ]]; then
    content="#!/bin/sh
# Generated by scripts/release.sh: zig ${driver} for the ${t} release target.
exec ${zig} ${driver} -target ${zt}${cpu:+ ${cpu}} \"\$@\""
  else
    content="#!/bin/sh
# Generated by scripts/release.sh: zig ${driver} for the ${t} release target.
# Compile C (-c) as ${zt}; assembly, runtime/cgo and the link
# (hence musl) as ${zt_asm}.
target=${zt_asm}
link=1
for a in \"\$@\"; do
  case \"\$a\" in
    -c) target=${zt}; link=0 ;;
    -E|-S|-M|-MM) link=0 ;;
  esac
done
# go runs the compiler inside the package directory with relative file names.
case \"\$PWD\" in */runtime/cgo) target=${zt_asm} ;; esac
for a in \"\$@\"; do
  case \"\$a\" in *.S|*.s|*.sx|*/runtime/cgo/*) target=${zt_asm} ;; esac
done
if [ \"\$link\" = 1 ]; then
  exec ${zig} ${driver} -target \"\$target\"${cpu:+ ${cpu}} \"\$@\" $(make_align_object)
fi
exec ${zig} ${driver} -target \"\$target\"${cpu:+ ${cpu}} \"\$@\""
  fi
  sum="$(printf '%s' "${content}" | sha256sum | cut -c1-12)"
  file="${cache_root}/release/cc/${t}-${driver}-${sum}"
  write_if_changed "${file}" "${content}"
  printf '%s\n' "${file}"
}

export ZIG_GLOBAL_CACHE_DIR="${cache_root}/zig-cache/global"
export ZIG_LOCAL_CACHE_DIR="${cache_root}/zig-cache/local"
mkdir -p "${ZIG_GLOBAL_CACHE_DIR}" "${ZIG_LOCAL_CACHE_DIR}"

# -s inside -extldflags: with external linking Go's own -s does not strip the
# symbol table that zig's linker writes, so ask the linker too.
ldflags="-X ${version_symbol}=${version} -linkmode external"
if [[ "${strip}" -eq 1 ]]; then
  ldflags="-s -w ${ldflags} -extldflags '-static -s ${link_gc_flags}'"
else
  ldflags="${ldflags} -extldflags '-static ${link_gc_flags}'"
fi

is_static() {
  local f="$1" desc
  if command -v file >/dev/null 2>&1; then
    desc="$(file -b "${f}")"
    log "  file: ${desc}"
    [[ "${desc}" == *"statically linked"* || "${desc}" == *"static-pie linked"* ]] || return 1
  fi
  # No program interpreter means no dynamic loader is needed.
  if command -v readelf >/dev/null 2>&1 && readelf -lW "${f}" | grep -q 'INTERP'; then
    return 1
  fi
  return 0
}

# ARM code in .init/.fini must be 4-byte aligned (see make_align_object).
check_init_alignment() {
  local addrs a
  command -v readelf >/dev/null 2>&1 || return 0
  addrs="$(readelf -SW "$1" | awk '{ sub(/^.*\] */, "") } $1 == ".init" || $1 == ".fini" { print $3 }')"
  for a in ${addrs}; do
    (( 16#${a} % 4 == 0 )) || return 1
  done
}

log "version ${version}; targets: ${targets}; out: ${out}"
log "tags: ${tags}"
log "CGO_CFLAGS: ${cgo_cflags}${zig_cflags:+ ${zig_cflags}}"

for t in ${targets}; do
  goarch="$(target_goarch "${t}")"
  zt="$(target_zig "${t}")"
  cpu="$(target_cpu_flags "${t}")"
  cc="$(make_wrapper "${t}" cc)"
  cxx="$(make_wrapper "${t}" c++)"
  bin="${out}/${name}-linux-${t}"
  tmp="${out}/.${name}-linux-${t}.tmp.$$"
  trap 'rm -f "${tmp}"' EXIT
  log "building ${t} (GOARCH=${goarch}) with zig cc -target ${zt}${cpu:+ ${cpu}}"
  start=${SECONDS}
  (
    cd "${module_dir}"
    # -extld (= CC) is passed explicitly so that it is part of -ldflags: Go's
    # cache key for the final link covers -ldflags but not $CC.
    GOOS=linux GOARCH="${goarch}" GOARM="$(target_goarm "${t}")" \
      CGO_ENABLED=1 CC="${cc}" CXX="${cxx}" CGO_CFLAGS="${cgo_cflags}${zig_cflags:+ ${zig_cflags}}" \
      go build -trimpath ${gcflags} -tags "${tags}" -ldflags "${ldflags} -extld ${cc}" -o "${tmp}" "${pkg}"
  ) || die "build failed for ${t}"
  is_static "${tmp}" || die "${t}: binary is not static"
  [[ "${t}" != armv7 ]] || check_init_alignment "${tmp}" \
    || die "${t}: .init/.fini not 4-byte aligned (would SIGILL at start)"
  mv -f "${tmp}" "${bin}"
  trap - EXIT
  log "  ${bin}: $(wc -c <"${bin}") bytes in $((SECONDS - start))s"
done

# Checksums of every release binary in the output directory.
(
  cd "${out}"
  bins=()
  for t in armv7 arm64 amd64; do
    [[ -f "${name}-linux-${t}" ]] && bins+=("${name}-linux-${t}")
  done
  sha256sum "${bins[@]}" >"SHA256SUMS.tmp.$$"
  mv -f "SHA256SUMS.tmp.$$" SHA256SUMS
)
log "wrote ${out}/SHA256SUMS"
