# shellcheck shell=bash
# bench/lib.sh — number and run helpers of scripts/bench.sh.
# Sourced by scripts/bench.sh (which sets -euo pipefail and the shared
# variables); not run on its own.

# --- number helpers --------------------------------------------------------------

# stats V... : "median min max" of the values.
stats() {
  printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 }
    END { m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
          printf "%.6f %.6f %.6f\n", m, a[1], a[NR] }'
}
# med V... : the median.
med() { stats "$@" | awk '{ print $1 }'; }
# calc EXPR [VAR=VALUE]... : evaluate an awk expression.
calc() {
  local expr="$1"; shift
  local args=() kv
  for kv in "$@"; do args+=(-v "${kv}"); done
  awk "${args[@]}" "BEGIN { print ${expr} }"
}
# fmt FORMAT V : printf with awk (handles floats).
fmt() { awk -v f="$1" -v x="$2" 'BEGIN { printf f, x }'; }
# spread FORMAT DIV V... : "median (min–max)" of V/DIV, or just the value
# when there was one run.
spread() {
  local f="$1" d="$2"; shift 2
  stats "$@" | awk -v f="${f}" -v d="${d}" -v n="$#" '{
    if (n == 1) printf f, $1 / d
    else printf f " (" f "–" f ")", $1 / d, $2 / d, $3 / d }'
}
# verdict V BUDGET AIM : lower is better; empty budget or aim = none.
verdict() {
  awk -v v="$1" -v b="$2" -v a="$3" 'BEGIN {
    if (a != "" && v + 0 <= a + 0) print "aim met"
    else if (b != "" && v + 0 <= b + 0) print "within budget"
    else if (b != "") print "**over budget**"
    else if (a != "") print "aim not met"
    else print "—" }'
}
# status_kb FILE FIELD : a kB field of a /proc/PID/status copy.
status_kb() { awk -v f="$2:" '$1 == f { print $2 }' "$1"; }
mib() { fmt "%.1f" "$(calc 'k / 1024' "k=$1")"; }
# mb_in_mib MB : a budget given in MB (10^6 bytes), in MiB — the stricter reading.
mb_in_mib() { calc 'm * 1000000 / 1048576' "m=$1"; }
# --- run helpers -----------------------------------------------------------------
# run_pf LOG MAXRSS_FILE CMD... : run a picoflow command (CMD is the runner
# array plus arguments) under /usr/bin/time when present; sets last_ms (wall
# time from just before the exec) and last_maxrss (kB, ru_maxrss, or empty).
# A failing command ends the bench.
last_ms=0
last_maxrss=""
run_pf() {
  local rc=0
  run_pf_limit "" "$@" || rc=$?
  [[ "${rc}" -eq 0 ]] || die "${*:3} exited ${rc}"
}
# run_pf_limit SECS LOG MAXRSS_FILE CMD... : run_pf, but with SECS (empty:
# none) the command is killed once it has run that long, with any process
# still left whose command line is CMD's (a child forked but not yet
# exec'd: under qemu-user one now and then deadlocks there, and its parent
# waits for it for ever). Returns 124 then, the command's status if it
# failed (its log's tail on stderr), 0 if it succeeded.
run_pf_limit() {
  local secs="$1" logf="$2" rssf="$3"; shift 3
  local s e rc=0 limit=()
  [[ -z "${secs}" ]] || limit=(timeout -s KILL "${secs}")
  last_maxrss=""
  s=${EPOCHREALTIME//[.,]/}
  if [[ -n "${gnutime}" ]]; then
    "${gnutime}" -f '%M' -o "${rssf}" "${limit[@]}" "$@" >"${logf}" 2>&1 || rc=$?
  else
    "${limit[@]}" "$@" >"${logf}" 2>&1 || rc=$?
  fi
  e=${EPOCHREALTIME//[.,]/}
  last_ms="$(calc '(e - s) / 1000' "e=${e}" "s=${s}")"
  if [[ -n "${secs}" && "${rc}" -ne 0 ]] && (( (e - s) / 1000000 >= secs )); then
    kill_cmdline "$@"
    return 124
  fi
  if [[ "${rc}" -ne 0 ]]; then
    tail -n 20 "${logf}" >&2
    return "${rc}"
  fi
  [[ -z "${gnutime}" ]] || last_maxrss="$(tail -n1 "${rssf}")"
}
# kill_cmdline CMD... : SIGKILL every process whose command line is exactly
# CMD (each by its PID), e.g. what a killed run_pf_limit command left.
kill_cmdline() {
  local want f pid
  want="$(printf '%s\001' "$@")"
  for f in /proc/[0-9]*/cmdline; do
    pid="${f#/proc/}"; pid="${pid%/cmdline}"
    [[ "${pid}" != "$$" && "${pid}" != "${BASHPID}" ]] || continue
    [[ "$({ tr '\0' '\001' <"${f}"; } 2>/dev/null)" == "${want}" ]] || continue
    log "killing PID ${pid}, left by a killed run: $*"
    kill -KILL "${pid}" 2>/dev/null || true
  done
}
# check_probe PREFIX CMD... : the probe ran in a child of CMD's process.
check_probe() {
  local p="$1"; shift
  [[ -s "${p}.status" ]] || die "the probe task did not run (${p}.status missing)"
  [[ "$(cat "${p}.cmdline")" == *"${*} run "* ]] ||
    die "the probe's parent is not picoflow: $(cat "${p}.cmdline")"
}
# maxrss_version CMD... : ru_maxrss (kB) of `picoflow version`, or empty.
maxrss_version() {
  [[ -n "${gnutime}" ]] || return 0
  "${gnutime}" -f '%M' -o "${tmp}/version.rss" "$@" version >/dev/null 2>&1 || return 0
  tail -n1 "${tmp}/version.rss"
}
# wait_log FILE PATTERN SECS : wait until a line of FILE matches.
wait_log() {
  local i
  for ((i = 0; i < $3 * 10; i++)); do
    grep -q -- "$2" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}
# stop_daemon PID : SIGTERM, wait up to 60 s, then SIGKILL; returns its status.
stop_daemon() {
  local p="$1" i rc=0
  kill -TERM "${p}" 2>/dev/null || true
  for ((i = 0; i < 600; i++)); do
    kill -0 "${p}" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "${p}" 2>/dev/null || true
  wait "${p}" || rc=$?
  return "${rc}"
}

declare -A R   # results by key
