#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# bench.sh — measure PicoFlow on this machine and write BENCHMARKS.md.
#
# Builds the host binary (stripped, like a release) into a temp dir and
# measures, each figure the median of repeated runs with its baseline taken in
# the same invocation: binary size, idle daemon RSS, peak RSS with 10
# parallel tasks, trigger-to-exec latency, per-task overhead and disk writes,
# parse time, journal recovery, a 10,000-task DAG, and the web UI (page
# server times on 10,000 runs, daemon RSS while serving them). Where
# dist/picoflow-linux-armv7 exists and qemu-arm-static is installed, the RSS
# figures are also taken for the armv7 binary under emulation. With
# DAGU=/path/to/dagu the per-task workloads also run through Dagu,
# interleaved with PicoFlow and the floors (xargs -P, a shell loop, sh -c),
# and the report gives the ratios of each pair.
#
# The work is split into pieces under scripts/bench/, sourced in order.
#
# Idempotent: everything it creates lives in a temp dir that is removed on
# exit, except the report (--out), which is replaced as a whole.
set -euo pipefail
export LC_ALL=C

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_dir="$(cd "${script_dir}/.." && pwd)"

usage() {
  cat <<'EOF'
Usage: scripts/bench.sh [--quick] [--out FILE] [--release] [--runs N] [--peer-runs N]
                        [--only overhead] [--no-qemu] [--help]

Measure PicoFlow on this machine and write a markdown report (each figure
the median of repeated runs, with its baseline measured in the same run).

Options:
  --quick      3 runs per figure instead of 5, 10 s idle instead of 30 s
  --out FILE   report to write (default: <repo>/BENCHMARKS.md)
  --release    run `make release` first, so dist/ holds fresh cross builds
               (a cold cross build takes minutes); without it, dist/ is used
               as it is, and the host binary stands in when dist/ is empty
  --runs N     runs per figure (overrides the 5 or 3 of --quick)
  --peer-runs N  runs of Dagu on its 1,000-task workloads (default 1: it
               takes about 0.1 s per task); its other workloads get --runs
  --only overhead  run the side-by-side workloads alone and print their
               table instead of writing the report
  --no-qemu    skip the armv7 figures under qemu-arm-static
  -h, --help   show this help

Environment: DAGU=/path/to/dagu runs the same workloads through Dagu (a
fresh DAGU_HOME per run, DAGU_CHECK_UPDATES=false, DAGU_SCHEDULER_PORT=0,
type: graph, shell: /bin/sh, max_active_steps); without it the peer column
says "not measured". SCALE_REPORT=FILE puts the output of scripts/scale.sh
(peak RSS at 1k/10k/100k tasks; it takes long, so it is run apart) into
the scaling section.

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
peer_runs=1
only=""
out="${repo_dir}/BENCHMARKS.md"
need_arg() { [[ $# -ge 2 && -n "$2" ]] || die "$1 needs a value"; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    --quick) quick=1; shift ;;
    --out) need_arg "$@"; out="$2"; shift 2 ;;
    --release) release=1; shift ;;
    --runs) need_arg "$@"; runs="$2"; shift 2 ;;
    --peer-runs) need_arg "$@"; peer_runs="$2"; shift 2 ;;
    --only) need_arg "$@"; only="$2"; shift 2 ;;
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
[[ "${peer_runs}" =~ ^[1-9][0-9]*$ ]] || die "--peer-runs must be a positive number"
[[ -z "${only}" || "${only}" == overhead ]] || die "--only takes: overhead"
idle_wait=30
[[ "${quick}" -eq 1 ]] && idle_wait=10
[[ "${out}" == /* ]] || out="${PWD}/${out}"

[[ "${BASH_VERSINFO[0]}" -ge 5 ]] || die "needs bash >= 5 (for EPOCHREALTIME)"
command -v go >/dev/null 2>&1 || die "go not found"
gnutime=""
[[ -x /usr/bin/time ]] && gnutime=/usr/bin/time
fetch=()
slow_fetch=()
if command -v curl >/dev/null 2>&1; then fetch=(curl -fsS --max-time 5) slow_fetch=(curl -fsS --max-time 60)
elif command -v wget >/dev/null 2>&1; then fetch=(wget -qO- --timeout=5) slow_fetch=(wget -qO- --timeout=60)
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


# The pieces, in order; each is sourced (they share the variables above and
# the results in R).
declare -A R # results by key
# shellcheck source=bench/lib.sh
source "${script_dir}/bench/lib.sh"
# shellcheck source=bench/setup.sh
source "${script_dir}/bench/setup.sh"
# shellcheck source=bench/workflows.sh
source "${script_dir}/bench/workflows.sh"
# shellcheck source=bench/peers.sh
source "${script_dir}/bench/peers.sh"
if [[ "${only}" == overhead ]]; then
  # shellcheck source=bench/overhead.sh
  source "${script_dir}/bench/overhead.sh"
  side_by_side_table
  exit 0
fi
# shellcheck source=bench/memory.sh
source "${script_dir}/bench/memory.sh"
# shellcheck source=bench/overhead.sh
source "${script_dir}/bench/overhead.sh"
# shellcheck source=bench/inproc.sh
source "${script_dir}/bench/inproc.sh"
# shellcheck source=bench/report.sh
source "${script_dir}/bench/report.sh"
