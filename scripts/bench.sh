#!/usr/bin/env bash
# bench.sh — measure PicoFlow on this machine and write BENCHMARKS.md.
#
# Builds the host binary (stripped, like a release) into a temp dir and
# measures, each figure the median of repeated runs with its baseline taken in
# the same invocation: binary size, idle daemon RSS, peak RSS with 10
# parallel tasks, trigger-to-exec latency, per-task overhead and disk writes,
# parse time, journal recovery, a 10,000-task DAG, and the web UI (page
# server times on 10,000 runs, daemon RSS while serving them). Where
# dist/picoflow-linux-armv7 exists and qemu-arm-static is installed, the RSS
# figures are also taken for the armv7 binary under emulation.
#
# Idempotent: everything it creates lives in a temp dir that is removed on
# exit, except the report (--out), which is replaced as a whole.
set -euo pipefail
export LC_ALL=C

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_dir="$(cd "${script_dir}/.." && pwd)"

usage() {
  cat <<'EOF'
Usage: scripts/bench.sh [--quick] [--out FILE] [--release] [--runs N] [--no-qemu] [--help]

Measure PicoFlow on this machine and write a markdown report (each figure
the median of repeated runs, with its baseline measured in the same run).

Options:
  --quick      3 runs per figure instead of 5, 10 s idle instead of 30 s
  --out FILE   report to write (default: <repo>/BENCHMARKS.md)
  --release    run `make release` first, so dist/ holds fresh cross builds
               (a cold cross build takes minutes); without it, dist/ is used
               as it is, and the host binary stands in when dist/ is empty
  --runs N     runs per figure (overrides the 5 or 3 of --quick)
  --no-qemu    skip the armv7 figures under qemu-arm-static
  -h, --help   show this help

Needs bash >= 5, go, awk, curl or wget; uses /usr/bin/time (Debian package
`time`, see scripts/deps.sh) and strace when present, and says in the
report what it could not measure without them.
EOF
}

log() { printf 'bench: %s\n' "$*" >&2; }
die() { printf 'bench: error: %s\n' "$*" >&2; exit 1; }

quick=0
release=0
qemu=1
runs=""
out="${repo_dir}/BENCHMARKS.md"
need_arg() { [[ $# -ge 2 && -n "$2" ]] || die "$1 needs a value"; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    --quick) quick=1; shift ;;
    --out) need_arg "$@"; out="$2"; shift 2 ;;
    --release) release=1; shift ;;
    --runs) need_arg "$@"; runs="$2"; shift 2 ;;
    --no-qemu) qemu=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done
if [[ -z "${runs}" ]]; then
  runs=5
  [[ "${quick}" -eq 1 ]] && runs=3
fi
[[ "${runs}" =~ ^[1-9][0-9]*$ ]] || die "--runs must be a positive number"
idle_wait=30
[[ "${quick}" -eq 1 ]] && idle_wait=10
[[ "${out}" == /* ]] || out="${PWD}/${out}"

[[ "${BASH_VERSINFO[0]}" -ge 5 ]] || die "needs bash >= 5 (for EPOCHREALTIME)"
command -v go >/dev/null 2>&1 || die "go not found"
gnutime=""
[[ -x /usr/bin/time ]] && gnutime=/usr/bin/time
fetch=()
if command -v curl >/dev/null 2>&1; then fetch=(curl -fsS --max-time 5)
elif command -v wget >/dev/null 2>&1; then fetch=(wget -qO- --timeout=5)
fi

bench_start=${EPOCHREALTIME//[.,]/}
tmp="$(mktemp -d "${TMPDIR:-/tmp}/picoflow-bench.XXXXXX")"
daemon_pids=()
cleanup() {
  local p
  for p in "${daemon_pids[@]}"; do
    kill -KILL "${p}" 2>/dev/null || true
  done
  rm -rf "${tmp}"
}
trap cleanup EXIT

# Every picoflow command reads an empty global config, so that a
# /etc/picoflow/config.yaml on this machine cannot change the defaults.
: >"${tmp}/config.yaml"
export PICOFLOW_CONFIG="${tmp}/config.yaml"
unset PICOFLOW_HOME

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

# --- machine ---------------------------------------------------------------------
cpu_model="$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)"
[[ -n "${cpu_model}" ]] || cpu_model="$(uname -m)"
ncpu="$(nproc)"
kernel="$(uname -sr)"
go_version="$(go version)"
commit="$(git -C "${repo_dir}" rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [[ -n "$(git -C "${repo_dir}" status --porcelain -- '*.go' go.mod go.sum 2>/dev/null)" ]]; then
  commit="${commit} (with uncommitted changes to Go sources)"
fi
load_start="$(cut -d' ' -f1-3 /proc/loadavg)"
mem_total="$(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
log "machine: ${ncpu} x ${cpu_model}, ${kernel}, ${go_version}; load ${load_start}"
log "${runs} runs per figure, ${idle_wait} s idle; temp dir ${tmp}"

# --- build -----------------------------------------------------------------------
if [[ "${release}" -eq 1 ]]; then
  log "make release (cross builds into dist/)"
  make -C "${repo_dir}" release >&2
fi
bin="${tmp}/picoflow"
log "building the host binary (go build -trimpath -ldflags '-s -w')"
(cd "${repo_dir}" && go build -trimpath -ldflags "-s -w" -o "${bin}" ./cmd/picoflow)
host_cmd=("${bin}")

# Work on a snapshot of dist/, which a concurrent `make release` may rewrite.
mkdir -p "${tmp}/dist"
for t in armv7 arm64 amd64; do
  f="${repo_dir}/dist/picoflow-linux-${t}"
  [[ -f "${f}" ]] && cp -p "${f}" "${tmp}/dist/"
done
armv7_bin="${tmp}/dist/picoflow-linux-armv7"
armv7_cmd=()
qemu_note=""
if [[ "${qemu}" -eq 0 ]]; then
  qemu_note="skipped (--no-qemu)"
elif [[ ! -f "${armv7_bin}" ]]; then
  qemu_note="no dist/picoflow-linux-armv7 (run \`make release\` or pass --release)"
elif ! command -v qemu-arm-static >/dev/null 2>&1; then
  qemu_note="qemu-arm-static is not installed (scripts/deps.sh installs it)"
else
  armv7_cmd=(qemu-arm-static "${armv7_bin}")
  if ! "${armv7_cmd[@]}" version >/dev/null 2>&1; then
    qemu_note="dist/picoflow-linux-armv7 does not start under qemu-arm-static"
    armv7_cmd=()
  fi
fi
[[ -n "${qemu_note}" ]] && log "armv7 under qemu: ${qemu_note}"

# --- workflows -------------------------------------------------------------------
wf="${tmp}/wf"
mkdir -p "${wf}/sched" "${wf}/acct"

# The in-band probe: a task started by picoflow gets picoflow's pid as $PPID
# (the task's /bin/sh is picoflow's direct child) and copies its
# /proc/PID/status and cmdline while picoflow is still running.
cat >"${tmp}/probe.sh" <<'EOF'
pp="$1"; out="$2"
cat "/proc/${pp}/status" >"${out}.status"
tr '\0' ' ' <"/proc/${pp}/cmdline" >"${out}.cmdline"
cat "/proc/${pp}/io" >"${out}.io" 2>/dev/null || true
EOF
probe_cmd() { printf "sh '%s' \$PPID '%s'" "${tmp}/probe.sh" "$1"; }

# independent N NAME : N independent `true` tasks.
gen_independent() {
  printf 'name: %s\ntasks:\n' "$2"
  awk -v n="$1" 'BEGIN { for (i = 0; i < n; i++)
    printf "  - {name: t%05d, type: shell, config: {command: \"true\"}}\n", i }'
}
# gen_chain N NAME : N `true` tasks, each depending on the one before.
gen_chain() {
  printf 'name: %s\ntasks:\n' "$2"
  awk -v n="$1" 'BEGIN { for (i = 0; i < n; i++) {
    printf "  - {name: t%05d, type: shell, config: {command: \"true\"}", i
    if (i > 0) printf ", depends_on: [t%05d]", i - 1
    print "}" } }'
}
# gen_dag N NAME PROBE_OUT : N `true` tasks, each depending on up to two
# random earlier ones (fixed seed), and a probe task after every sink.
gen_dag() {
  printf 'name: %s\ntasks:\n' "$2"
  awk -v n="$1" -v probe="$(probe_cmd "$3")" 'BEGIN {
    srand(1)
    for (i = 0; i < n; i++) {
      printf "  - {name: t%05d, type: shell, config: {command: \"true\"}", i
      if (i > 0) {
        a = int(rand() * i); b = int(rand() * i); used[a] = 1; used[b] = 1
        if (a == b) printf ", depends_on: [t%05d]", a
        else printf ", depends_on: [t%05d, t%05d]", a, b
      }
      print "}"
    }
    printf "  - name: probe\n    type: shell\n    config: {command: \"%s\"}\n    depends_on: [", probe
    sep = ""
    for (i = 0; i < n; i++) if (!(i in used)) { printf "%st%05d", sep, i; sep = ", " }
    print "]" }'
}
# gen_par10 PROBE_OUT : 10 parallel `sleep 2`, then the probe.
gen_par10() {
  printf 'name: par10\nconfig: {max_parallel: 10}\ntasks:\n'
  local i deps=""
  for i in $(seq 1 10); do
    printf '  - {name: s%02d, type: shell, config: {command: "sleep 2"}}\n' "${i}"
    deps="${deps:+${deps}, }s$(printf '%02d' "${i}")"
  done
  printf '  - name: probe\n    type: shell\n    depends_on: [%s]\n    config: {command: "%s"}\n' \
    "${deps}" "$(probe_cmd "$1")"
}

for i in $(seq -w 1 20); do
  cat >"${wf}/sched/nightly-${i}.yaml" <<EOF
name: nightly-${i}
schedule: "0 3 * * *"
tasks:
  - {name: fetch, type: shell, config: {command: "true"}}
  - {name: process, type: shell, depends_on: [fetch], config: {command: "true"}}
  - {name: upload, type: shell, depends_on: [process], config: {command: "true"}}
EOF
done
gen_independent 1000 ind1000 >"${wf}/ind1000.yaml"
cp "${wf}/ind1000.yaml" "${wf}/acct/ind1000.yaml"
gen_chain 100 chain100 >"${wf}/chain100.yaml"
gen_dag 10000 dag10000 "${tmp}/probe-dag" >"${wf}/dag10000.yaml"
gen_par10 "${tmp}/probe-par10" >"${wf}/par10.yaml"
# conc10: 10 different workflows of one `sleep 2` each, for a daemon that
# runs them at once (one journal each).
mkdir -p "${wf}/conc10"
for i in $(seq -w 1 10); do
  printf 'name: conc-%s\ntasks:\n  - {name: work, type: shell, config: {command: "sleep 2"}}\n' "${i}" \
    >"${wf}/conc10/conc-${i}.yaml"
done
printf 'name: trigger\ntasks:\n  - {name: first, type: shell, config: {command: "date +%%s%%N > %s"}}\n' \
  "${tmp}/t-exec" >"${wf}/trigger.yaml"
"${bin}" validate "${wf}"/*.yaml "${wf}/sched" "${wf}/conc10" >/dev/null || die "generated workflows do not validate"

# --- run helpers -----------------------------------------------------------------
# run_pf LOG MAXRSS_FILE CMD... : run a picoflow command (CMD is the runner
# array plus arguments) under /usr/bin/time when present; sets last_ms (wall
# time from just before the exec) and last_maxrss (kB, ru_maxrss, or empty).
last_ms=0
last_maxrss=""
run_pf() {
  local logf="$1" rssf="$2"; shift 2
  local s e rc=0
  if [[ -n "${gnutime}" ]]; then
    s=${EPOCHREALTIME//[.,]/}
    "${gnutime}" -f '%M' -o "${rssf}" "$@" >"${logf}" 2>&1 || rc=$?
    e=${EPOCHREALTIME//[.,]/}
    last_maxrss="$(tail -n1 "${rssf}")"
  else
    s=${EPOCHREALTIME//[.,]/}
    "$@" >"${logf}" 2>&1 || rc=$?
    e=${EPOCHREALTIME//[.,]/}
    last_maxrss=""
  fi
  if [[ "${rc}" -ne 0 ]]; then
    tail -n 20 "${logf}" >&2
    die "$* exited ${rc}"
  fi
  last_ms="$(calc '(e - s) / 1000' "e=${e}" "s=${s}")"
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

# === 1. binary size ==============================================================
log "[1/9] binary size"
size_rows=()
for t in armv7 arm64 amd64; do
  f="${tmp}/dist/picoflow-linux-${t}"
  [[ -f "${f}" ]] || continue
  size_rows+=("${t}:$(wc -c <"${f}" | tr -d ' '):dist/picoflow-linux-${t}, built $(date -u -r "${f}" '+%Y-%m-%d %H:%M UTC')")
done
size_rows+=("host build:$(wc -c <"${bin}" | tr -d ' '):$(go env GOOS)/$(go env GOARCH), go build -trimpath -ldflags \"-s -w\" (cgo, dynamically linked)")

# === 2. idle daemon RSS ==========================================================
log "[2/9] idle daemon RSS: ${runs} daemons per binary at once, ${idle_wait} s idle"
declare -A idle_pid
labels=(host)
[[ ${#armv7_cmd[@]} -gt 0 ]] && labels+=(armv7)
for label in "${labels[@]}"; do
  if [[ "${label}" == host ]]; then cmd=("${host_cmd[@]}"); else cmd=("${armv7_cmd[@]}"); fi
  for ((r = 1; r <= runs; r++)); do
    h="${tmp}/idle-${label}-${r}"
    mkdir -p "${h}"
    "${cmd[@]}" daemon --home "${h}" --workflows "${wf}/sched" >"${h}.log" 2>&1 &
    idle_pid["${label}-${r}"]=$!
    daemon_pids+=("$!")
  done
done
for key in "${!idle_pid[@]}"; do
  wait_log "${tmp}/idle-${key}.log" 'daemon ready.*workflows=20' 120 ||
    { cat "${tmp}/idle-${key}.log" >&2; die "daemon ${key} did not get ready with 20 workflows"; }
done
sleep "${idle_wait}"
for key in "${!idle_pid[@]}"; do
  cp "/proc/${idle_pid[${key}]}/status" "${tmp}/idle-${key}.status" 2>/dev/null ||
    { cat "${tmp}/idle-${key}.log" >&2; die "daemon ${key} died while idle"; }
done
for key in "${!idle_pid[@]}"; do
  stop_daemon "${idle_pid[${key}]}" || die "daemon ${key} exited $? on SIGTERM"
done
daemon_pids=()
for label in "${labels[@]}"; do
  rss=() hwm=() anon=() file=()
  for ((r = 1; r <= runs; r++)); do
    s="${tmp}/idle-${label}-${r}.status"
    rss+=("$(status_kb "${s}" VmRSS)"); hwm+=("$(status_kb "${s}" VmHWM)")
    anon+=("$(status_kb "${s}" RssAnon)"); file+=("$(status_kb "${s}" RssFile)")
  done
  R[idle_${label}_rss]="$(med "${rss[@]}")"
  R[idle_${label}_rss_s]="$(spread '%.1f' 1024 "${rss[@]}")"
  R[idle_${label}_hwm_s]="$(spread '%.1f' 1024 "${hwm[@]}")"
  R[idle_${label}_anon]="$(mib "$(med "${anon[@]}")")"
  R[idle_${label}_file]="$(mib "$(med "${file[@]}")")"
done

# Baseline for the RSS figures: `picoflow version` (the same binary started
# and exiting at once; under qemu, the emulator's own share is in it).
for label in "${labels[@]}"; do
  if [[ "${label}" == host ]]; then cmd=("${host_cmd[@]}"); else cmd=("${armv7_cmd[@]}"); fi
  v=()
  for ((r = 1; r <= runs; r++)); do
    x="$(maxrss_version "${cmd[@]}")"
    [[ -n "${x}" ]] && v+=("${x}")
  done
  if [[ ${#v[@]} -gt 0 ]]; then
    R[version_${label}]="$(spread '%.1f' 1024 "${v[@]}") MiB"
  else
    R[version_${label}]="n/a (no /usr/bin/time)"
  fi
done

# === 3. peak RSS with 10 parallel `sleep 2` =======================================
log "[3/9] peak RSS, 10 parallel sleep 2, ${runs} runs per binary"
for label in "${labels[@]}"; do
  if [[ "${label}" == host ]]; then cmd=("${host_cmd[@]}"); else cmd=("${armv7_cmd[@]}"); fi
  hwm=() ru=() wall=()
  for ((r = 1; r <= runs; r++)); do
    rm -f "${tmp}/probe-par10".*
    run_pf "${tmp}/par10.log" "${tmp}/par10.rss" "${cmd[@]}" run --home "${tmp}/par10-${label}-${r}" "${wf}/par10.yaml"
    check_probe "${tmp}/probe-par10" "${cmd[@]}"
    hwm+=("$(status_kb "${tmp}/probe-par10.status" VmHWM)")
    [[ -n "${last_maxrss}" ]] && ru+=("${last_maxrss}")
    wall+=("${last_ms}")
  done
  R[par10_${label}_hwm]="$(med "${hwm[@]}")"
  R[par10_${label}_hwm_s]="$(spread '%.1f' 1024 "${hwm[@]}")"
  if [[ ${#ru[@]} -gt 0 ]]; then
    R[par10_${label}_ru]="$(med "${ru[@]}")"
    R[par10_${label}_ru_s]="$(spread '%.1f' 1024 "${ru[@]}")"
  fi
  R[par10_${label}_wall_s]="$(spread '%.2f' 1000 "${wall[@]}")"
done

# === 3b. daemon RSS, 10 concurrent runs of 10 workflows ==========================
log "[3/8] daemon RSS, 10 concurrent runs of 10 different workflows, ${runs} runs"
conc_rss=() conc_hwm=()
for ((r = 1; r <= runs; r++)); do
  h="${tmp}/conc10-${r}"
  mkdir -p "${h}"
  "${bin}" daemon --home "${h}" --workflows "${wf}/conc10" >"${h}.log" 2>&1 &
  cp_pid=$!
  daemon_pids=("${cp_pid}")
  wait_log "${h}.log" 'daemon ready.*workflows=10' 60 || { cat "${h}.log" >&2; die "conc10 daemon did not get ready"; }
  for i in $(seq -w 1 10); do
    "${bin}" trigger --home "${h}" "conc-${i}" >/dev/null || die "trigger conc-${i} failed"
  done
  peak=0
  for ((i = 0; i < 600; i++)); do
    cur_kb="$(status_kb "/proc/${cp_pid}/status" VmRSS)"
    ((cur_kb > peak)) && peak="${cur_kb}"
    [[ "$(grep -c 'run succeeded' "${h}.log")" -ge 10 ]] && break
    sleep 0.05
  done
  [[ "$(grep -c 'run succeeded' "${h}.log")" -ge 10 ]] || { cat "${h}.log" >&2; die "conc10 runs did not all succeed"; }
  conc_hwm+=("$(status_kb "/proc/${cp_pid}/status" VmHWM)")
  conc_rss+=("${peak}")
  stop_daemon "${cp_pid}" || die "conc10 daemon exited $? on SIGTERM"
  daemon_pids=()
done
R[conc10_hwm]="$(med "${conc_hwm[@]}")"
R[conc10_hwm_s]="$(spread '%.1f' 1024 "${conc_hwm[@]}")"
R[conc10_rss_s]="$(spread '%.1f' 1024 "${conc_rss[@]}")"

# === 4. trigger-to-exec ==========================================================
log "[4/9] trigger-to-exec latency, ${runs} runs fresh and warm"
# exec_latency HOME : µs from just before exec'ing `picoflow run` to the
# first task's `date`.
exec_latency() {
  local s rc=0
  rm -f "${tmp}/t-exec"
  s=${EPOCHREALTIME//[.,]/}
  "${bin}" run --home "$1" "${wf}/trigger.yaml" >"${tmp}/trigger.log" 2>&1 || rc=$?
  [[ "${rc}" -eq 0 ]] || { cat "${tmp}/trigger.log" >&2; die "trigger run exited ${rc}"; }
  echo $(($(cat "${tmp}/t-exec") / 1000 - s))
}
baseline_latency() {
  local s
  rm -f "${tmp}/t-exec"
  s=${EPOCHREALTIME//[.,]/}
  /bin/sh -c "date +%s%N > '${tmp}/t-exec'"
  echo $(($(cat "${tmp}/t-exec") / 1000 - s))
}
fresh=() fresh_total=() warm=() warm_total=() base=()
for ((r = 1; r <= runs; r++)); do
  base+=("$(baseline_latency)")
  fresh+=("$(exec_latency "${tmp}/trig-fresh-${r}")")
done
# The whole wall time of a 1-task run (invocation to exit).
for ((r = 1; r <= runs; r++)); do
  run_pf "${tmp}/trig-total.log" "${tmp}/trig-total.rss" "${bin}" run --home "${tmp}/trig-total-${r}" "${wf}/trigger.yaml"
  fresh_total+=("${last_ms}")
done
log "      preparing a warm home: 100 previous runs"
warm_home="${tmp}/trig-warm"
for ((r = 1; r <= 100; r++)); do
  "${bin}" run --home "${warm_home}" "${wf}/trigger.yaml" >/dev/null 2>&1 || die "warm-up run ${r} failed"
done
warm_journal="$(du -sb "${warm_home}/journal" | cut -f1)"
for ((r = 1; r <= runs; r++)); do
  base+=("$(baseline_latency)")
  warm+=("$(exec_latency "${warm_home}")")
  run_pf "${tmp}/trig-total.log" "${tmp}/trig-total.rss" "${bin}" run --home "${warm_home}" "${wf}/trigger.yaml"
  warm_total+=("${last_ms}")
done
R[trig_fresh]="$(calc 'x / 1000' "x=$(med "${fresh[@]}")")"
R[trig_fresh_s]="$(spread '%.1f' 1000 "${fresh[@]}")"
R[trig_warm]="$(calc 'x / 1000' "x=$(med "${warm[@]}")")"
R[trig_warm_s]="$(spread '%.1f' 1000 "${warm[@]}")"
R[trig_base]="$(calc 'x / 1000' "x=$(med "${base[@]}")")"
R[trig_base_s]="$(spread '%.2f' 1000 "${base[@]}")"
R[trig_fresh_total_s]="$(spread '%.1f' 1 "${fresh_total[@]}")"
R[trig_warm_total_s]="$(spread '%.1f' 1 "${warm_total[@]}")"

# === 5. per-task overhead ========================================================
log "[5/9] per-task overhead: 1,000 independent and a 100-task chain, ${runs} runs each"
# shell_loop N : ms for N sequential `/bin/sh -c true`.
shell_loop() {
  local s e i
  s=${EPOCHREALTIME//[.,]/}
  for ((i = 0; i < $1; i++)); do /bin/sh -c true; done
  e=${EPOCHREALTIME//[.,]/}
  calc '(e - s) / 1000' "e=${e}" "s=${s}"
}
# shell_par N : ms for N `/bin/sh -c true`, nproc at once (xargs -P).
shell_par() {
  local s e
  s=${EPOCHREALTIME//[.,]/}
  seq "$1" | xargs -P "${ncpu}" -I{} /bin/sh -c true
  e=${EPOCHREALTIME//[.,]/}
  calc '(e - s) / 1000' "e=${e}" "s=${s}"
}
ind=() ind_ru=() ind_loop=() ind_par=() chain=() chain_loop=()
for ((r = 1; r <= runs; r++)); do
  ind_loop+=("$(shell_loop 1000)")
  ind_par+=("$(shell_par 1000)")
  run_pf "${tmp}/ind.log" "${tmp}/ind.rss" "${bin}" run --home "${tmp}/ind-${r}" "${wf}/ind1000.yaml"
  ind+=("${last_ms}")
  [[ -n "${last_maxrss}" ]] && ind_ru+=("${last_maxrss}")
  chain_loop+=("$(shell_loop 100)")
  run_pf "${tmp}/chain.log" "${tmp}/chain.rss" "${bin}" run --home "${tmp}/chain-${r}" "${wf}/chain100.yaml"
  chain+=("${last_ms}")
done
R[ind]="$(med "${ind[@]}")"
R[ind_s]="$(spread '%.2f' 1000 "${ind[@]}")"
R[ind_task]="$(calc 'x / 1000' "x=${R[ind]}")"
R[ind_task_s]="$(spread '%.2f' 1000 "${ind[@]}")"
R[ind_loop_task]="$(calc 'x / 1000' "x=$(med "${ind_loop[@]}")")"
R[ind_loop_task_s]="$(spread '%.2f' 1000 "${ind_loop[@]}")"
R[ind_par_task_s]="$(spread '%.2f' 1000 "${ind_par[@]}")"
R[ind_par_task]="$(calc 'x / 1000' "x=$(med "${ind_par[@]}")")"
R[chain_task]="$(calc 'x / 100' "x=$(med "${chain[@]}")")"
R[chain_task_s]="$(spread '%.2f' 100 "${chain[@]}")"
R[chain_loop_task]="$(calc 'x / 100' "x=$(med "${chain_loop[@]}")")"
R[chain_loop_task_s]="$(spread '%.2f' 100 "${chain_loop[@]}")"
if [[ ${#ind_ru[@]} -gt 0 ]]; then
  R[ind_ru]="$(med "${ind_ru[@]}")"
  R[ind_ru_s]="$(spread '%.1f' 1024 "${ind_ru[@]}")"
fi
# What a 1,000-task run leaves in its home (apparent sizes, last run).
last_ind="${tmp}/ind-${runs}"
R[ind_du_journal]="$(du -sb "${last_ind}/journal" | cut -f1)"
R[ind_du_logs]="$(du -sb "${last_ind}/logs" | cut -f1)"
R[ind_du_db]="$(du -cb "${last_ind}"/picoflow.db* | tail -n1 | cut -f1)"

# Accounting run: the same 1,000 tasks triggered in a daemon, whose /metrics
# expose the journal's own counters and whose /proc/PID/io can be read
# before and after.
acct_note=""
if [[ ${#fetch[@]} -eq 0 ]]; then
  acct_note="neither curl nor wget: journal counters not read"
else
  log "      accounting run: 1,000 tasks in a daemon (journal counters, /proc/PID/io)"
  ah="${tmp}/acct"
  mkdir -p "${ah}"
  "${bin}" daemon --home "${ah}" --workflows "${wf}/acct" --listen 127.0.0.1:0 >"${ah}.log" 2>&1 &
  apid=$!
  daemon_pids+=("${apid}")
  wait_log "${ah}.log" 'daemon ready' 60 || { cat "${ah}.log" >&2; die "accounting daemon did not get ready"; }
  addr="$(sed -n 's/.*serving \/metrics.* addr=\([0-9.:]*\).*/\1/p' "${ah}.log" | head -n1)"
  [[ -n "${addr}" ]] || die "no metrics address in the daemon log"
  metric() { awk -v m="$1" '$1 == m { print $2 }' "$2"; }
  io_field() { awk -v f="$1:" '$1 == f { print $2 }' "/proc/${apid}/io" 2>/dev/null || true; }
  "${fetch[@]}" "http://${addr}/metrics" >"${tmp}/m0"
  wb0="$(io_field write_bytes)"
  "${bin}" trigger --home "${ah}" ind1000 >/dev/null
  done_metric='picoflow_runs_total{workflow="ind1000",status="success"}'
  for ((i = 0; i < 3000; i++)); do
    "${fetch[@]}" "http://${addr}/metrics" >"${tmp}/m1"
    [[ "$(metric "${done_metric}" "${tmp}/m1")" == 1 ]] && break
    grep -q 'picoflow_runs_total{workflow="ind1000",status="failed"}' "${tmp}/m1" && die "accounting run failed"
    sleep 0.1
  done
  [[ "$(metric "${done_metric}" "${tmp}/m1")" == 1 ]] || die "accounting run did not finish in 300 s"
  wb1="$(io_field write_bytes)"
  stop_daemon "${apid}" || die "accounting daemon exited $? on SIGTERM"
  daemon_pids=()
  for m in fsyncs_total bytes_written_total entries_total; do
    R[acct_${m}]="$(calc '(b - a) / 1000' "a=$(metric "picoflow_journal_${m}" "${tmp}/m0")" "b=$(metric "picoflow_journal_${m}" "${tmp}/m1")")"
  done
  acct_fsync_bytes="$(fmt '%.2f' "$(calc 'f * 1000 * 4096 / 1e6' "f=${R[acct_fsyncs_total]}")") MB (fsyncs × 4 KiB)"
  if [[ -n "${wb0}" && -n "${wb1}" ]]; then
    R[acct_wb]="$((wb1 - wb0))"
  else
    acct_note="/proc/PID/io is not readable here: write_bytes not measured"
  fi
fi

# All fsync-like calls of a `picoflow run` of the 1,000 tasks, by file.
strace_note=""
if command -v strace >/dev/null 2>&1; then
  log "      strace run: fsync/fdatasync of picoflow run, by file"
  sh_="${tmp}/strace-home"
  if strace -f -qq -y -e trace=fsync,fdatasync,sync_file_range,syncfs -o "${tmp}/strace.txt" \
    "${bin}" run --home "${sh_}" "${wf}/ind1000.yaml" >"${tmp}/strace.log" 2>&1; then
    # "PID fsync(FD</path>..." once per call (resumed halves have no "(").
    R[strace_by_file]="$(grep -oE '(fsync|fdatasync|sync_file_range|syncfs)\([0-9]+<[^>]*>' "${tmp}/strace.txt" |
      awk -v home="${sh_}" '{
        call = $0; sub(/\(.*/, "", call)
        path = $0; sub(/^[^<]*</, "", path); sub(/>$/, "", path)
        if (path == home) f = "the home directory"
        else if (index(path, home "/") == 1) {
          f = substr(path, length(home) + 2)
          if (f ~ /^journal\/[0-9]+$/) f = "journal segment"
          else if (f == "journal") f = "journal directory"
          else if (f ~ /^logs\//) f = "task logs"
        } else f = path
        n[call " " f]++
      }
      END { for (k in n) print n[k], k }' |
      sort -rn | awk '{ c = $1; $1 = ""; sub(/^ /, ""); printf "%s%s × %s", (NR > 1 ? ", " : ""), c, $0 }')"
    R[strace_total]="$(grep -cE '(fsync|fdatasync|sync_file_range|syncfs)\(' "${tmp}/strace.txt" || true)"
  else
    strace_note="strace could not trace here (ptrace refused?)"
  fi
else
  strace_note="strace is not installed: fsyncs outside the journal not counted"
fi

# === 6. parse + validate =========================================================
log "[6/9] parse + validate (go test -bench BenchmarkParse, ${runs} counts)"
(cd "${repo_dir}" && go test ./engine/workflow -run '^$' -bench '^BenchmarkParse(100|1000|10000)$' \
  -benchtime 20x -benchmem -count "${runs}") >"${tmp}/parse.txt" 2>&1 ||
  { cat "${tmp}/parse.txt" >&2; die "parse benchmarks failed"; }
# bench_field FILE NAME UNIT : the values of UNIT on NAME's lines.
bench_field() {
  awk -v n="$2" -v u="$3" '$1 ~ "^" n "(-[0-9]+)?$" { for (i = 2; i <= NF; i++) if ($i == u) print $(i - 1) }' "$1"
}
for n in 100 1000 10000; do
  mapfile -t v < <(bench_field "${tmp}/parse.txt" "BenchmarkParse${n}" ns/op)
  [[ ${#v[@]} -gt 0 ]] || die "no result for BenchmarkParse${n}"
  R[parse_${n}]="$(calc 'x / 1e6' "x=$(med "${v[@]}")")"
  R[parse_${n}_s]="$(spread '%.2f' 1e6 "${v[@]}")"
  mapfile -t v < <(bench_field "${tmp}/parse.txt" "BenchmarkParse${n}" B/op)
  R[parse_${n}_mem]="$(fmt '%.1f' "$(calc 'x / 1048576' "x=$(med "${v[@]}")")")"
done

# === 7. journal ==================================================================
log "[7/9] journal recovery (go test -bench BenchmarkScan10000, ${runs} counts)"
(cd "${repo_dir}" && go test ./journal -run '^$' -bench '^(BenchmarkScan10000|BenchmarkAppendDurable)$' \
  -benchtime 20x -count "${runs}") >"${tmp}/journal.txt" 2>&1 ||
  { cat "${tmp}/journal.txt" >&2; die "journal benchmarks failed"; }
mapfile -t v < <(bench_field "${tmp}/journal.txt" BenchmarkScan10000 ns/op)
[[ ${#v[@]} -gt 0 ]] || die "no result for BenchmarkScan10000"
R[scan]="$(calc 'x / 1e6' "x=$(med "${v[@]}")")"
R[scan_s]="$(spread '%.1f' 1e6 "${v[@]}")"
mapfile -t v < <(bench_field "${tmp}/journal.txt" BenchmarkScan10000 bytes/event)
R[scan_bytes]="$(fmt '%.0f' "$(med "${v[@]}")")"
mapfile -t v < <(bench_field "${tmp}/journal.txt" BenchmarkAppendDurable ns/op)
R[append_s]="$(spread '%.2f' 1e6 "${v[@]}")"

# === 8. 10,000-task DAG ==========================================================
log "[8/9] 10,000-task DAG, ${runs} runs"
dag=() dag_hwm=() dag_ru=() dag_base=()
for ((r = 1; r <= runs; r++)); do
  dag_base+=("$(shell_par 10000)")
  rm -f "${tmp}/probe-dag".*
  run_pf "${tmp}/dag.log" "${tmp}/dag.rss" "${bin}" run --home "${tmp}/dag-${r}" "${wf}/dag10000.yaml"
  grep -q 'success in .*: 10001 succeeded, 0 failed, 0 skipped' "${tmp}/dag.log" ||
    { tail -n 5 "${tmp}/dag.log" >&2; die "the 10,000-task DAG did not succeed"; }
  check_probe "${tmp}/probe-dag" "${bin}"
  dag+=("${last_ms}")
  dag_hwm+=("$(status_kb "${tmp}/probe-dag.status" VmHWM)")
  [[ -n "${last_maxrss}" ]] && dag_ru+=("${last_maxrss}")
  rm -rf "${tmp}/dag-${r}"
done
R[dag_s]="$(spread '%.1f' 1000 "${dag[@]}")"
R[dag_task_s]="$(spread '%.2f' 10000 "${dag[@]}")"
R[dag_base_s]="$(spread '%.1f' 1000 "${dag_base[@]}")"
R[dag_hwm_s]="$(spread '%.1f' 1024 "${dag_hwm[@]}")"
[[ ${#dag_ru[@]} -gt 0 ]] && R[dag_ru_s]="$(spread '%.1f' 1024 "${dag_ru[@]}")"

# === 9. web UI ===================================================================
log "[9/9] web UI: page server times (go test -bench BenchmarkUI, ${runs} counts) and daemon RSS while serving"
uihome="${tmp}/uihome"
(cd "${repo_dir}" && PICOFLOW_UI_BENCH_HOME="${uihome}" go test ./cli -run '^$' -bench '^BenchmarkUI$' \
  -benchtime 20x -count "${runs}") >"${tmp}/ui.txt" 2>&1 ||
  { cat "${tmp}/ui.txt" >&2; die "UI benchmarks failed"; }
for page in workflows runs run-1000-tasks; do
  mapfile -t v < <(bench_field "${tmp}/ui.txt" "BenchmarkUI/${page}" ns/op)
  [[ ${#v[@]} -gt 0 ]] || die "no result for BenchmarkUI/${page}"
  R[ui_${page}]="$(calc 'x / 1e6' "x=$(med "${v[@]}")")"
  R[ui_${page}_s]="$(spread '%.1f' 1e6 "${v[@]}")"
done
# The daemon serves the same home: its projection is brought up to date
# first (as any query command leaves it), then the daemon idles, then each
# page is fetched 20 times; VmHWM is reset (clear_refs 5) once it is idle.
"${bin}" history --home "${uihome}" >/dev/null
mkdir -p "${tmp}/uiwf"
"${bin}" daemon --home "${uihome}" --workflows "${tmp}/uiwf" --listen 127.0.0.1:0 --log-format json \
  >"${tmp}/uidaemon.log" 2>&1 &
uipid=$!
daemon_pids+=("${uipid}")
wait_log "${tmp}/uidaemon.log" '"daemon ready"' 60 || { cat "${tmp}/uidaemon.log" >&2; die "the UI daemon did not start"; }
uiaddr="$(sed -n 's/.*"serving \/metrics.*"addr":"\([^"]*\)".*/\1/p' "${tmp}/uidaemon.log" | head -n1)"
[[ -n "${uiaddr}" ]] || die "the UI daemon's address is not in its log"
[[ ${#fetch[@]} -gt 0 ]] || die "needs curl or wget for the UI figures"
sleep "${idle_wait}"
ui_pages=(/ /runs "/runs/20261201-000000-b1e5" /api/runs)
ui_round() {
  local path
  for path in "${ui_pages[@]}"; do
    "${fetch[@]}" "http://${uiaddr}${path}" >/dev/null || die "GET ${path} failed"
  done
}
ui_hwm_note="VmHWM, reset before"
reset_hwm() { echo 5 >"/proc/${uipid}/clear_refs" 2>/dev/null || ui_hwm_note="VmHWM since start: clear_refs not writable"; }
ui_idle="$(status_kb "/proc/${uipid}/status" VmRSS)"
reset_hwm
ui_round # the first requests open the database (SQLite's code and cache)
ui_warm="$(status_kb "/proc/${uipid}/status" VmRSS)"
ui_open_hwm="$(status_kb "/proc/${uipid}/status" VmHWM)"
reset_hwm
for ((i = 0; i < 20; i++)); do ui_round; done
ui_after="$(status_kb "/proc/${uipid}/status" VmRSS)"
ui_hwm="$(status_kb "/proc/${uipid}/status" VmHWM)"
stop_daemon "${uipid}" || die "the UI daemon did not stop cleanly"
grow() { fmt '%+.1f' "$(calc '(b - a) / 1024' "a=$1" "b=$2")"; }
R[ui_idle]="$(mib "${ui_idle}")"
R[ui_warm]="$(mib "${ui_warm}")"
R[ui_open_peak]="$(grow "${ui_idle}" "${ui_open_hwm}")"
R[ui_peak]="$(grow "${ui_warm}" "${ui_hwm}")"
R[ui_after]="$(grow "${ui_warm}" "${ui_after}")"

# === report ======================================================================
load_end="$(cut -d' ' -f1-3 /proc/loadavg)"
bench_end=${EPOCHREALTIME//[.,]/}
took="$(fmt '%.0f' "$(calc '(e - s) / 1e6' "e=${bench_end}" "s=${bench_start}")")"
log "writing ${out}"

# Budgets and aims (MB = 10^6 bytes, converted to MiB: the stricter reading).
b_idle="$(mb_in_mib 20)" a_idle="$(mb_in_mib 12)"
b_par="$(mb_in_mib 50)" a_par="$(mb_in_mib 25)"
mib_of() { calc 'k / 1024' "k=$1"; }
na="n/a (no /usr/bin/time)"
mode_prefix=""
[[ "${quick}" -eq 1 ]] && mode_prefix="--quick, "

# The report's single-quoted printf formats hold markdown backticks, not
# shell expansions.
# shellcheck disable=SC2016

{
  cat <<EOF
# PicoFlow benchmarks

Generated by \`scripts/bench.sh\` (\`make bench\`); do not edit by hand, run it
again. Each figure is the **median of ${runs} runs**, shown as
\`median (min–max)\`, with its baseline measured in the same invocation
(interleaved with the PicoFlow runs where it is a timing).

**These numbers are noisy.** The machine was shared with other engineers'
builds and tests while they were taken (load average ${load_start} at the
start, ${load_end} at the end, on ${ncpu} cores). Compare a figure with the
baseline next to it rather than with another machine, and re-run before
reading much into a difference of less than ~20 %.

## Machine

| | |
|---|---|
| CPUs (nproc) | ${ncpu} |
| CPU model | ${cpu_model} |
| memory | ${mem_total} |
| kernel | ${kernel} |
| Go | ${go_version} |
| commit | ${commit} |
| date | $(date -u '+%Y-%m-%d %H:%M UTC') |
| mode | ${mode_prefix}${runs} runs per figure, ${idle_wait} s idle; the whole script took ${took} s |

The peer is Dagu v2.6.5 measured on this kind of machine. Budgets and aims
given in MB are read as 10^6 bytes and compared with MiB figures (the
stricter reading). "Verdict" compares the median with the aim, then the budget.

## Results (host binary, native)

| # | figure | PicoFlow | baseline (same run) | budget | aim | Dagu v2.6.5 | verdict |
|---|---|---|---|---|---|---|---|
EOF
  # 1. size
  for row in "${size_rows[@]}"; do
    t="${row%%:*}"; rest="${row#*:}"; bytes="${rest%%:*}"; what="${rest#*:}"
    mb="$(fmt '%.2f' "$(calc 'b / 1e6' "b=${bytes}")")"
    mibs="$(fmt '%.2f' "$(calc 'b / 1048576' "b=${bytes}")")"
    if [[ "${t}" == armv7 ]]; then
      printf '| 1 | binary size, %s (%s) | %s MB (%s MiB) | — | < 10 MB | 8 MB | 114 MB | %s |\n' \
        "${t}" "${what}" "${mb}" "${mibs}" "$(verdict "${mb}" 10 8)"
    else
      printf '| 1 | binary size, %s (%s) | %s MB (%s MiB) | — | (armv7 only) | — | 114 MB | — |\n' \
        "${t}" "${what}" "${mb}" "${mibs}"
    fi
  done
  # 2. idle
  printf '| 2 | daemon idle RSS (VmRSS) with 20 scheduled workflows, after %s s | %s MiB (anon %s, file %s) | %s (`picoflow version`, peak) | 20 MB | 12 MB | 73.7 MiB | %s |\n' \
    "${idle_wait}" "${R[idle_host_rss_s]}" "${R[idle_host_anon]}" "${R[idle_host_file]}" "${R[version_host]}" \
    "$(verdict "$(mib_of "${R[idle_host_rss]}")" "${b_idle}" "${a_idle}")"
  printf '| 2 | daemon peak RSS during start-up and idle (VmHWM) | %s MiB | | | | | |\n' "${R[idle_host_hwm_s]}"
  # 3. par10
  if [[ -n "${R[par10_host_ru]:-}" ]]; then
    p3="${R[par10_host_ru]}"; p3s="${R[par10_host_ru_s]} MiB (whole run)"
  else
    p3="${R[par10_host_hwm]}"; p3s="${R[par10_host_hwm_s]} MiB (probe)"
  fi
  printf '| 3 | peak RSS of the orchestrator, 10 parallel `sleep 2` | %s; %s MiB at the probe task | %s (`picoflow version`, peak) | 50 MB | 25 MB | 77.4 MiB | %s |\n' \
    "${p3s}" "${R[par10_host_hwm_s]}" "${R[version_host]}" "$(verdict "$(mib_of "${p3}")" "${b_par}" "${a_par}")"
  # 3b. conc10
  printf '| 3 | daemon peak RSS (VmHWM), 10 concurrent runs of 10 different workflows (one journal each) | %s MiB; highest VmRSS sampled while they ran %s MiB | %s (`picoflow version`, peak) | — | 25 MB | — | %s |\n' \
    "${R[conc10_hwm_s]}" "${R[conc10_rss_s]}" "${R[version_host]}" "$(verdict "$(mib_of "${R[conc10_hwm]}")" "" 25)"
  # 4. trigger
  printf '| 4 | trigger-to-exec, fresh home (`picoflow run` exec → first task'"'"'s `date`) | %s ms | %s ms (`sh -c date`) | 100 ms | 5 ms | 94.7 ms | %s; PicoFlow'"'"'s share %s ms |\n' \
    "${R[trig_fresh_s]}" "${R[trig_base_s]}" "$(verdict "${R[trig_fresh]}" 100 5)" \
    "$(fmt '%.1f' "$(calc 'a - b' "a=${R[trig_fresh]}" "b=${R[trig_base]}")")"
  printf '| 4 | trigger-to-exec, warm home (journal of 100 earlier runs, %s bytes) | %s ms | (same) | 100 ms | 5 ms | 94.7 ms | %s; PicoFlow'"'"'s share %s ms |\n' \
    "${warm_journal}" "${R[trig_warm_s]}" "$(verdict "${R[trig_warm]}" 100 5)" \
    "$(fmt '%.1f' "$(calc 'a - b' "a=${R[trig_warm]}" "b=${R[trig_base]}")")"
  printf '| 4 | 1-task run, invocation to exit: fresh / warm home | %s / %s ms | | | | | |\n' \
    "${R[trig_fresh_total_s]}" "${R[trig_warm_total_s]}"
  # 5. per task
  printf '| 5 | 1,000 independent `true`, wall time (max_parallel = %s CPUs) | %s s | %s s sequential loop, %s s `xargs -P %s` | — | 3 s | 89 s | %s |\n' \
    "${ncpu}" "${R[ind_s]}" "$(fmt '%.2f' "${R[ind_loop_task]}")" "$(fmt '%.2f' "${R[ind_par_task]}")" "${ncpu}" \
    "$(verdict "$(calc 'x / 1000' "x=${R[ind]}")" "" 3)"
  printf '| 5 | … per task | %s ms | %s ms loop, %s ms `xargs -P` | — | 3 ms | 89 ms | overhead vs `xargs -P %s` (same parallelism) **%s ms**/task, vs the sequential loop %s ms |\n' \
    "${R[ind_task_s]}" "${R[ind_loop_task_s]}" "${R[ind_par_task_s]}" "${ncpu}" \
    "$(fmt '%+.2f' "$(calc 'a - b' "a=${R[ind_task]}" "b=${R[ind_par_task]}")")" \
    "$(fmt '%+.2f' "$(calc 'a - b' "a=${R[ind_task]}" "b=${R[ind_loop_task]}")")"
  printf '| 5 | … peak RSS (whole run) | %s | — | — | — | 159 MiB | — |\n' \
    "$([[ -n "${R[ind_ru_s]:-}" ]] && echo "${R[ind_ru_s]} MiB" || echo "${na}")"
  if [[ -n "${R[acct_wb]:-}" ]]; then
    printf '| 5 | … bytes written by the orchestrator (/proc/PID/io write_bytes, daemon run) | %s MB (%s bytes/task) | — | — | 1 MB | 1.08 GB | %s |\n' \
      "$(fmt '%.2f' "$(calc 'x / 1e6' "x=${R[acct_wb]}")")" "$(fmt '%.0f' "$(calc 'x / 1000' "x=${R[acct_wb]}")")" \
      "$(verdict "$(calc 'x / 1e6' "x=${R[acct_wb]}")" "" 1)"
  fi
  printf '| 5 | … left in the home: journal + logs (du -sb) | %s MB (journal %s, logs %s bytes); SQLite history %s bytes more | — | — | 1 MB | — | %s |\n' \
    "$(fmt '%.2f' "$(calc '(a + b) / 1e6' "a=${R[ind_du_journal]}" "b=${R[ind_du_logs]}")")" \
    "${R[ind_du_journal]}" "${R[ind_du_logs]}" "${R[ind_du_db]}" \
    "$(verdict "$(calc '(a + b) / 1e6' "a=${R[ind_du_journal]}" "b=${R[ind_du_logs]}")" "" 1)"
  printf '| 5 | 100-task chain, per task | %s ms | %s ms (sequential loop) | — | — | 21 ms | overhead **%s ms**/task |\n' \
    "${R[chain_task_s]}" "${R[chain_loop_task_s]}" \
    "$(fmt '%+.2f' "$(calc 'a - b' "a=${R[chain_task]}" "b=${R[chain_loop_task]}")")"
  # 6. parse
  for n in 100 1000 10000; do
    case "${n}" in 100) label=100 ;; 1000) label=1,000 ;; *) label=10,000 ;; esac
    if [[ "${n}" == 100 ]]; then bud="50 ms"; aim="5 ms"; verd="$(verdict "${R[parse_100]}" 50 5)"; else bud="—"; aim="—"; verd="—"; fi
    printf '| 6 | parse + validate, %s tasks (%s MiB allocated) | %s ms | — | %s | %s | — | %s |\n' \
      "${label}" "${R[parse_${n}_mem]}" "${R[parse_${n}_s]}" "${bud}" "${aim}" "${verd}"
  done
  # 7. journal
  if [[ -n "${R[acct_fsyncs_total]:-}" ]]; then
    printf '| 7 | journal fsyncs per task (journal counters, 1,000 tasks) | %s | — | — | — | — | — |\n' \
      "$(fmt '%.3f' "${R[acct_fsyncs_total]}")"
    printf '| 7 | journal bytes per task (framing included) | %s bytes in %s entries | — | — | — | — | — |\n' \
      "$(fmt '%.0f' "${R[acct_bytes_written_total]}")" "$(fmt '%.1f' "${R[acct_entries_total]}")"
  fi
  if [[ -n "${R[strace_total]:-}" ]]; then
    printf '| 7 | all fsync-like calls of `picoflow run`, 1,000 tasks (strace) | %s per task: %s | — | — | — | — | — |\n' \
      "$(fmt '%.3f' "$(calc 'x / 1000' "x=${R[strace_total]}")")" "${R[strace_by_file]}"
  fi
  printf '| 7 | recovery of a 10,000-event journal (Repair + Open + verified Scan; %s bytes/event) | %s ms | %s ms per durable append (1 fsync) on this disk | — | — | — | — |\n' \
    "${R[scan_bytes]}" "${R[scan_s]}" "${R[append_s]}"
  # 8. dag
  printf '| 8 | 10,000-task DAG of `true` (up to 2 deps each): succeeded, wall time | %s s (%s ms/task) | %s s (`xargs -P %s`, no deps) | — | — | — | all %s runs succeeded |\n' \
    "${R[dag_s]}" "${R[dag_task_s]}" "${R[dag_base_s]}" "${ncpu}" "${runs}"
  printf '| 8 | … peak RSS | %s MiB (whole run); %s MiB at the probe task | — | — | — | — | — |\n' \
    "${R[dag_ru_s]:-n/a}" "${R[dag_hwm_s]}"
  # 9. web UI
  printf '| 9 | web UI `/` (workflows), 10,000 runs in history, server time | %s ms | — | 50 ms | — | — | %s |\n' \
    "${R[ui_workflows_s]}" "$(verdict "${R[ui_workflows]}" 50 "")"
  printf '| 9 | web UI `/runs`, 10,000 runs in history, server time | %s ms | — | 50 ms | — | — | %s |\n' \
    "${R[ui_runs_s]}" "$(verdict "${R[ui_runs]}" 50 "")"
  printf '| 9 | web UI `/runs/ID` of a 1,000-task run (DAG, Gantt, journal), server time | %s ms | — | 200 ms | — | — | %s |\n' \
    "${R[ui_run-1000-tasks_s]}" "$(verdict "${R[ui_run-1000-tasks]}" 200 "")"
  printf '| 9 | daemon RSS while serving those pages 20 times each, over its RSS once each was served (%s MiB) | peak %s MiB (%s); VmRSS after %s MiB | — | 5 MiB | — | — | %s |\n' \
    "${R[ui_warm]}" "${R[ui_peak]}" "${ui_hwm_note}" "${R[ui_after]}" "$(verdict "${R[ui_peak]#+}" 5 "")"
  printf '| 9 | … first request of each page (opens the database), over idle (%s MiB) | peak %s MiB (VmHWM) | — | — | — | — | — |\n' \
    "${R[ui_idle]}" "${R[ui_open_peak]}"

  echo
  echo "## armv7 binary under qemu-arm-static"
  echo
  if [[ ${#armv7_cmd[@]} -eq 0 ]]; then
    echo "Not measured: ${qemu_note}."
  else
    cat <<EOF
\`dist/picoflow-linux-armv7\` (a copy taken at the start) run by \`qemu-arm-static\` (user-mode emulation) on
this x86-64 host. **RSS under qemu-user includes the emulator** (its own
code, heap and translated-code cache), so these figures overstate what the
binary needs on a real ARM board; the \`picoflow version\` baseline shows the
emulator's share. **Times under emulation are not meaningful** and are not
reported. Tasks' \`/bin/sh\` are host binaries and run natively.

| # | figure | PicoFlow armv7 (qemu) | baseline (same run) | budget | aim | Dagu v2.6.5 |
|---|---|---|---|---|---|---|
EOF
    printf '| 2 | daemon idle RSS (VmRSS), 20 scheduled workflows, after %s s | %s MiB (anon %s, file %s) | %s (`picoflow version` under qemu, peak) | 20 MB | 12 MB | 73.7 MiB |\n' \
      "${idle_wait}" "${R[idle_armv7_rss_s]}" "${R[idle_armv7_anon]}" "${R[idle_armv7_file]}" "${R[version_armv7]}"
    printf '| 2 | daemon peak RSS during start-up and idle (VmHWM) | %s MiB | | | | |\n' "${R[idle_armv7_hwm_s]}"
    printf '| 3 | peak RSS, 10 parallel `sleep 2` | %s; %s MiB at the probe task | %s | 50 MB | 25 MB | 77.4 MiB |\n' \
      "$([[ -n "${R[par10_armv7_ru_s]:-}" ]] && echo "${R[par10_armv7_ru_s]} MiB (whole run)" || echo "${na}")" \
      "${R[par10_armv7_hwm_s]}" "${R[version_armv7]}"
  fi

  cat <<EOF

## How each figure is measured

1. **Binary size**: \`wc -c\` of the stripped release binaries in \`dist/\`
   (from \`make release\`: static, musl, cross-built with zig; pass
   \`--release\` to rebuild them first) and of the host build the script
   makes. The budget applies to armv7.
2. **Daemon idle RSS**: ${runs} daemons (\`picoflow daemon --home TMP
   --workflows DIR\`, no \`--listen\`) with 20 workflows scheduled
   \`"0 3 * * *"\` (3 chained tasks each) are started at once, each with its
   own home; once every one has logged "daemon ready" the script waits
   ${idle_wait} s and copies each \`/proc/PID/status\` (VmRSS, RssAnon,
   RssFile, VmHWM), then stops them with SIGTERM (each must exit 0).
3. **Peak RSS, 10 × \`sleep 2\`** (max_parallel 10): a probe task that
   depends on the 10 sleeps runs \`sh probe.sh \$PPID\`; its \`/bin/sh\` is
   picoflow's direct child, so \`\$PPID\` is picoflow's pid (the script
   checks \`/proc/\$PPID/cmdline\`) and the probe copies picoflow's
   \`/proc/PID/status\` while it runs: VmHWM of the orchestrator alone. The
   headline figure is \`/usr/bin/time\`'s ru_maxrss at exit, which also
   covers the end of the run after the probe; ru_maxrss is the *maximum*
   of the process and its waited-for children (never a sum), and
   \`sh\`/\`sleep\` are far smaller than picoflow, so it is picoflow's own
   peak. Baseline: ru_maxrss of \`picoflow version\`.
   **Daemon, 10 concurrent runs**: a daemon loads 10 workflows of one
   \`sleep 2\` task each; the script triggers all 10 (\`picoflow
   trigger\` returns once the run is on its journal), samples the daemon's
   VmRSS every 50 ms until its log shows 10 "run succeeded", then reads
   VmHWM (the peak of its whole life, start-up included).
4. **Trigger-to-exec**: the script reads \`\$EPOCHREALTIME\` (bash, no fork)
   right before exec'ing \`picoflow run\`, whose one task runs
   \`date +%s%N > FILE\`; the figure is the difference. Baseline: the same
   from \`/bin/sh -c 'date +%s%N > FILE'\` started by the script, so the
   difference between the two is picoflow's own share. Fresh: a new
   \`--home\` each time (journal and SQLite database created). Warm: a home
   whose journal already holds 100 runs of the same workflow.
5. **Per-task overhead**: wall time of \`picoflow run\` (fresh home) for
   1,000 independent \`true\` tasks (default max_parallel = CPUs) and for a
   100-task chain, against the same number of \`/bin/sh -c true\` in a
   sequential shell loop and (1,000 only) through \`xargs -P ${ncpu}\`,
   interleaved run by run. Bytes: \`du -sb\` of the home after a run, and
   \`write_bytes\` of \`/proc/PID/io\` (page-cache bytes the process
   dirtied: journal, SQLite history, log files) around a run of the same
   workflow triggered in a daemon with \`--listen\`, whose \`/metrics\` also
   give the journal's own fsync, byte and entry counters (this accounting
   run is done once; counters are deterministic). \`write_bytes\` counts a
   page each time it is dirtied again after a writeback, so every journal
   fsync re-counts the journal's partly filled last 4 KiB page; up to
   ${acct_fsync_bytes:-fsyncs × 4 KiB} of the figure is that (and the disk
   does write that page again at each fsync).
6. **Parse + validate**: \`go test ./engine/workflow -bench
   '^BenchmarkParse(100|1000|10000)\$' -benchtime 20x -count ${runs}\`
   (generated DAGs of shell tasks with env and up to two dependencies each).
7. **Journal**: counters from 5; \`strace -f -e
   trace=fsync,fdatasync,sync_file_range,syncfs\` of one \`picoflow run\`
   of the 1,000 tasks for every sync by file; recovery is
   \`go test ./journal -bench '^BenchmarkScan10000\$' -count ${runs}\`
   (Repair, Open and a strict CRC-checked Scan of 10,000 task events), next
   to \`BenchmarkAppendDurable\` (what one fsync costs on this disk).
8. **10,000-task DAG**: each task depends on up to two random earlier ones
   (fixed seed), and a probe task on every sink; success is exit 0 with
   "10001 succeeded, 0 failed, 0 skipped". Peak RSS as in 3. Baseline:
   10,000 \`/bin/sh -c true\` through \`xargs -P ${ncpu}\` (no dependencies).
9. **Web UI**: \`go test ./cli -bench '^BenchmarkUI\$' -benchtime 20x
   -count ${runs}\` serves the pages in-process (handler time, no network)
   from a home whose journal holds 10,000 runs of 3 tasks over 10 workflows
   and one 1,000-task run (every 7th task retried), its projection caught
   up first. The same home is then served by \`picoflow daemon --listen\`:
   after ${idle_wait} s idle its VmRSS is read and VmHWM reset
   (\`clear_refs\`); each of \`/\`, \`/runs\`, the 1,000-task run and
   \`/api/runs\` is fetched once (the first request opens the database:
   SQLite's code is paged in and its cache filled), VmRSS and VmHWM are read
   and VmHWM reset again; then the four pages are fetched 20 times more and
   VmRSS and VmHWM read again. The budget applies to that serving peak.
   (The idle figure of a daemon that replayed a 110,000-entry journal at
   start holds that replay's freed heap until the GC returns it, which the
   first requests trigger, so VmRSS often falls below idle.) The
   binary size the UI adds
   is not measured here: compare \`scripts/release.sh --targets armv7\` of
   this commit and of one without the UI (\`scripts/size.sh\`).

## Not measured
EOF
  if [[ ${#armv7_cmd[@]} -eq 0 ]]; then echo "- armv7 under qemu: ${qemu_note}."; fi
  if [[ -z "${gnutime}" ]]; then
    echo "- ru_maxrss (whole-run peak RSS) and the \`picoflow version\` RSS baseline: /usr/bin/time is not installed (scripts/deps.sh installs it)."
  fi
  if [[ -n "${acct_note}" ]]; then echo "- ${acct_note}."; fi
  if [[ -n "${strace_note}" ]]; then echo "- ${strace_note}."; fi
  echo "- Times of the armv7 binary: under qemu-user they measure the emulator, not the binary; they need a real ARM board (a Raspberry Pi Zero 2 W)."
  echo "- arm64 under emulation: only its size is reported."
  echo "- Parse, journal recovery and per-append fsync have no external baseline: they are in-process Go benchmarks."
} >"${out}.tmp"
mv "${out}.tmp" "${out}"
log "done in ${took} s: ${out}"
