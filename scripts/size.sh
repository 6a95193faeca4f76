#!/usr/bin/env bash
# size.sh — report release binary sizes and enforce the size budget.
#
# Budget: the armv7 binary (the product's target: a Raspberry Pi Zero 2 W
# class board) must be at most 9,350,000 bytes, the others at most 10 MiB
# (10 * 1024 * 1024 = 10485760 bytes). The PRD's limit is < 10 MB with the
# web UI in; the armv7 budget sits just above what the release weighs
# (9,265,420 bytes after issue 16's third pass; ARCHITECTURE.md, "Binary
# size", says what each raise paid for), so growth is noticed when it
# happens rather than at the PRD's wall. Edge devices often have 32-256 MB of flash, and the binary is
# usually shipped over a slow link.
#
# With --breakdown, build an unstripped armv7 copy (same flags as the release
# minus -s -w) and sum `go tool nm -size` symbol sizes per package, so you can
# see what to cut. The release binaries themselves are stripped and carry no
# symbols.
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
limit=10485760         # 10 MiB: arm64, amd64
limit_armv7=9350000    # the product target: see the budget note above

usage() {
  cat <<'EOF'
Usage: scripts/size.sh [--dist DIR] [--limit BYTES] [--limit-armv7 BYTES] [--breakdown [--top N]] [--help]

Print the size of each dist/picoflow-linux-* binary in bytes and MiB; exit 1
if any is over its budget or none exists. Budgets: armv7 9,350,000 bytes,
arm64 and amd64 10 MiB (10485760 bytes).

Options:
  --dist DIR        directory holding the binaries (default: <repo>/dist)
  --name NAME       binary name prefix (default: picoflow)
  --limit BYTES     size budget of the arm64 and amd64 binaries
                    (default: 10485760)
  --limit-armv7 BYTES
                    size budget of the armv7 binary (default: 9350000)
  --breakdown       also build an unstripped armv7 binary in a temp dir and
                    print the largest packages by summed symbol size
  --top N           packages to show with --breakdown (default: 25)
  --pkg PKG, --module-dir DIR, --version-symbol SYM
                    passed to scripts/release.sh for the --breakdown build
  -h, --help        show this help

Examples:
  scripts/size.sh
  scripts/size.sh --breakdown --top 40
EOF
}

log() { printf 'size: %s\n' "$*" >&2; }
die() { printf 'size: error: %s\n' "$*" >&2; exit 1; }

dist=""
name="picoflow"
breakdown=0
top=25
release_args=()
module_dir="$(cd "${script_dir}/.." && pwd)"

need_arg() { [[ $# -ge 2 && -n "$2" ]] || die "$1 needs a value"; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    --dist) need_arg "$@"; dist="$2"; shift 2 ;;
    --name) need_arg "$@"; name="$2"; release_args+=(--name "$2"); shift 2 ;;
    --limit) need_arg "$@"; limit="$2"; shift 2 ;;
    --limit-armv7) need_arg "$@"; limit_armv7="$2"; shift 2 ;;
    --breakdown) breakdown=1; shift ;;
    --top) need_arg "$@"; top="$2"; shift 2 ;;
    --pkg|--version-symbol) need_arg "$@"; release_args+=("$1" "$2"); shift 2 ;;
    --module-dir) need_arg "$@"; module_dir="$2"; release_args+=("$1" "$2"); shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done
[[ "${limit}" =~ ^[0-9]+$ ]] || die "--limit must be a number of bytes"
[[ "${limit_armv7}" =~ ^[0-9]+$ ]] || die "--limit-armv7 must be a number of bytes"
[[ "${top}" =~ ^[0-9]+$ ]] || die "--top must be a number"
dist="${dist:-${module_dir}/dist}"

mib() { awk -v b="$1" 'BEGIN { printf "%.2f", b / 1048576 }'; }

# --- sizes and budget ----------------------------------------------------------
found=0
over=0
for t in armv7 arm64 amd64; do
  [[ -f "${dist}/${name}-linux-${t}" ]] && found=$((found + 1))
done
[[ "${found}" -gt 0 ]] || die "no ${name}-linux-{armv7,arm64,amd64} in ${dist} (run scripts/release.sh first)"
printf '%-28s %12s %9s %8s  %s\n' binary bytes MiB MB "budget"
for t in armv7 arm64 amd64; do
  f="${dist}/${name}-linux-${t}"
  [[ -f "${f}" ]] || continue
  budget="${limit}"
  [[ "${t}" != armv7 ]] || budget="${limit_armv7}"
  bytes="$(wc -c <"${f}" | tr -d ' ')"
  mb="$(awk -v b="${bytes}" 'BEGIN { printf "%.2f", b / 1000000 }')"
  if [[ "${bytes}" -gt "${budget}" ]]; then
    status="OVER ${budget} by $((bytes - budget)) bytes"
    over=1
  else
    status="ok, ${budget} ($((budget - bytes)) bytes left)"
  fi
  printf '%-28s %12s %9s %8s  %s\n' "${name}-linux-${t}" "${bytes}" "$(mib "${bytes}")" "${mb}" "${status}"
done

# --- breakdown -----------------------------------------------------------------
# Sum symbol sizes per Go package. Symbols in NOBITS sections (.bss,
# .noptrbss, .tbss) take no space in the file and are skipped; go tool nm
# labels some of them 'd'. Sizes are what the linker recorded per symbol, so
# the sum is a little under the file size (headers, pclntab padding, etc.).
breakdown_report() {
  local bin="$1" nobits sections pclntab
  # "start end" (hex, zero-padded to 16) for each NOBITS section.
  nobits="$(readelf -SW "${bin}" | awk '
    function pad(h) { while (length(h) < 16) h = "0" h; return h }
    function hexval(h,   i, n) { n = 0; h = tolower(h)
      for (i = 1; i <= length(h); i++) n = n * 16 + index("0123456789abcdef", substr(h, i, 1)) - 1
      return n }
    function tohex(n,   s, d) { s = ""; if (n == 0) return "0"
      while (n > 0) { d = n % 16; s = substr("0123456789abcdef", d + 1, 1) s; n = (n - d) / 16 }
      return s }
    {
      sub(/^.*\] */, "")             # drop "[Nr] " so fields start at Name
      if ($2 == "NOBITS") print pad($3), pad(tohex(hexval($3) + hexval($5)))
    }')"

  # Sizes of the loaded sections that take file space, largest first.
  sections="$(readelf -SW "${bin}" | awk '
    function hexval(h,   i, n) { n = 0; h = tolower(h)
      for (i = 1; i <= length(h); i++) n = n * 16 + index("0123456789abcdef", substr(h, i, 1)) - 1
      return n }
    { sub(/^.*\] */, "") }
    $2 != "NOBITS" && $2 != "NULL" && $7 ~ /A/ && hexval($5) >= 10000 { print hexval($5), $1 }' | sort -rn)"
  # .gopclntab (function tables for tracebacks and GC) has no sized symbols;
  # it grows with the amount of Go code, so report it as its own bucket.
  pclntab="$(awk '$2 == ".gopclntab" { print $1 }' <<<"${sections}")"
  echo "Loaded sections over 10 kB: $(awk '{ printf "%s%s %.2f MiB", (NR > 1 ? ", " : ""), $2, $1 / 1048576 }' <<<"${sections}")"
  echo

  go tool nm -size -sort size "${bin}" | awk -v top="${top}" -v nobits="${nobits}" -v pclntab="${pclntab:-0}" '
    function pad(h) { while (length(h) < 16) h = "0" h; return h }
    function pkgof(s,   i, head, rest) {
      if (s ~ /^go:/) return "(go: funcdata, strings, itabs)"
      if (s ~ /^type:/) return "(type: runtime type descriptors)"
      i = index(s, "["); if (i > 0) s = substr(s, 1, i - 1)   # generic instantiations
      if (index(s, ".") == 0) return "(C: SQLite, musl libc, cgo glue)"
      head = ""; rest = s
      i = match(s, /.*\//)                    # up to the last slash
      if (i > 0) { head = substr(s, 1, RLENGTH); rest = substr(s, RLENGTH + 1) }
      i = index(rest, "."); if (i > 0) rest = substr(rest, 1, i - 1)
      if (head == "" && rest == "") return "(other)"
      return head rest
    }
    BEGIN {
      n = split(nobits, nb, /[ \n]+/)
      for (i = 1; i + 1 <= n; i += 2) { lo[++ranges] = nb[i]; hi[ranges] = nb[i + 1] }
    }
    $1 ~ /^[0-9a-f]+$/ && $2 ~ /^[0-9]+$/ && $3 ~ /^[TtRrDdBb]$/ {
      if ($2 == 0 || $3 ~ /[Bb]/) next
      a = pad($1)
      for (r = 1; r <= ranges; r++) if (a >= lo[r] && a < hi[r]) next
      sym = $0; sub(/^ *[0-9a-f]+ +[0-9]+ [A-Za-z] /, "", sym)
      p = pkgof(sym); size[p] += $2; total += $2
    }
    END {
      if (pclntab > 0) { size["(Go func tables: .gopclntab section)"] = pclntab; total += pclntab }
      for (p in size) printf "%d\t%s\n", size[p], p
      printf "%d\t%s\n", total, "__TOTAL__"
    }' | sort -rn | awk -v top="${top}" -F '\t' '
      $2 == "__TOTAL__" { total = $1; next }
      { rows[++n] = $0 }
      END {
        printf "%-60s %12s %6s\n", "package (top " top " by summed symbol size)", "bytes", "%"
        shown = 0
        for (i = 1; i <= n && i <= top; i++) {
          split(rows[i], f, "\t")
          printf "%-60s %12d %5.1f%%\n", f[2], f[1], 100 * f[1] / total
          shown += f[1]
        }
        printf "%-60s %12d %5.1f%%\n", "(" (n > top ? n - top : 0) " more packages)", total - shown, 100 * (total - shown) / total
        printf "%-60s %12d\n", "total (symbols + .gopclntab)", total
      }'
}

if [[ "${breakdown}" -eq 1 ]]; then
  command -v readelf >/dev/null 2>&1 || die "readelf not found (apt-get install -y binutils)"
  tmp="$(mktemp -d)"
  trap 'rm -rf "${tmp}"' EXIT
  log "building an unstripped armv7 binary for the breakdown"
  "${script_dir}/release.sh" --targets armv7 --no-strip --out "${tmp}" \
    --module-dir "${module_dir}" "${release_args[@]}" >&2
  bin="${tmp}/${name}-linux-armv7"
  echo
  echo "Breakdown of ${name}-linux-armv7 (unstripped: $(wc -c <"${bin}" | tr -d ' ') bytes;"
  echo "the C bucket is SQLite plus musl plus cgo glue, which have no Go package path):"
  breakdown_report "${bin}"
fi

if [[ "${over}" -ne 0 ]]; then
  die "a binary is over its budget (armv7 ${limit_armv7} bytes, others ${limit} bytes)"
fi
