#!/usr/bin/env bash
# scale.sh — peak memory of `picoflow validate` and `picoflow run` on big
# generated DAGs (issue 16: scale on a 512 MB board).
#
# For each size it generates two workflows of `true` shell tasks, one with
# independent tasks and one chain (each task depends on the one before),
# runs `picoflow validate` and `picoflow run` on each under /usr/bin/time -v
# and prints the peak RSS (maximum resident set size), the peak RSS per
# task, and the growth per task over the smallest size (the slope, which
# leaves out the binary's fixed cost). It also validates a generated file of
# about 5 MB written the way people write tasks (depends_on, env, a command).
# With --history K it also measures `run`, `status` and `history` in a home
# that already holds K finished runs of the same workflow (a DAG run daily).
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "${script_dir}/.." && pwd)"

usage() {
  cat <<'EOF'
Usage: scripts/scale.sh [--sizes "N..."] [--no-run] [--no-5mb] [--history K] [--shapes "S..."]
                        [--bin PATH] [--keep DIR] [--help]

Generate independent and chain workflows of N `true` tasks (default sizes
1000 10000 100000), run `picoflow validate` and `picoflow run` on each under
/usr/bin/time -v, and print peak RSS, peak RSS per task and the RSS growth
per task over the smallest size. Also validates a ~5 MB realistic file.
The workflows run with max_parallel 4 in a fresh home per run; the home's
config.yaml only raises resources.max_workflow_file (64MiB), so the
figures are those of the default memory settings.

Options:
  --sizes "N..."  task counts, smallest first (default: "1000 10000 100000")
  --no-run        only validate (a 100,000-task run of `true` takes 15-60
                  minutes on a busy 2-core machine)
  --no-5mb        skip the ~5 MB validate
  --history K     also run each workflow K times in one home, then measure
                  `run` of it once more, `status` and `history` there (shape
                  SHAPE+Kruns): the cost of the finished runs a home keeps
                  (default 0: off; needs runs)
  --shapes "S..." the shapes to measure (default: "independent chain")
  --bin PATH      picoflow binary to measure (default: build one from the repo)
  --keep DIR      generate files and homes in DIR and keep them
                  (default: a temporary directory, removed at exit)
  -h, --help      show this help

Output: one line per measurement, tab-separated:
  shape  tasks  command  exit  wall_s  peak_rss_KiB  peak_MiB  KiB/task  slope_KiB/task

Examples:
  scripts/scale.sh
  scripts/scale.sh --sizes "1000 10000" --no-run
  scripts/scale.sh --sizes 100000 --shapes independent --history 2 --no-5mb
EOF
}

log() { printf 'scale: %s\n' "$*" >&2; }
die() { printf 'scale: error: %s\n' "$*" >&2; exit 1; }

sizes="1000 10000 100000"
do_run=1
do_5mb=1
bin=""
keep=""
history=0
shapes="independent chain"
need_arg() { [[ $# -ge 2 && -n "$2" ]] || die "$1 needs a value"; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    --sizes) need_arg "$@"; sizes="$2"; shift 2 ;;
    --no-run) do_run=0; shift ;;
    --no-5mb) do_5mb=0; shift ;;
    --history) need_arg "$@"; history="$2"; shift 2 ;;
    --shapes) need_arg "$@"; shapes="$2"; shift 2 ;;
    --bin) need_arg "$@"; bin="$2"; shift 2 ;;
    --keep) need_arg "$@"; keep="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done
for n in ${sizes}; do
  [[ "${n}" =~ ^[1-9][0-9]*$ ]] || die "--sizes: not a positive number: ${n}"
done
[[ "${history}" =~ ^[0-9]+$ ]] || die "--history: not a number: ${history}"
[[ "${history}" -eq 0 || "${do_run}" -eq 1 ]] || die "--history needs runs (drop --no-run)"
for shape in ${shapes}; do
  [[ "${shape}" == independent || "${shape}" == chain ]] || die "--shapes: unknown shape: ${shape} (independent, chain)"
done
[[ -x /usr/bin/time ]] || die "/usr/bin/time (GNU time) is needed: apt-get install time"

if [[ -n "${keep}" ]]; then
  mkdir -p "${keep}"
  dir="$(cd "${keep}" && pwd)"
else
  dir="$(mktemp -d)"
  trap 'rm -rf "${dir}"' EXIT
fi

if [[ -z "${bin}" ]]; then
  bin="${dir}/picoflow"
  log "building ${bin}"
  (cd "${repo}" && go build -trimpath -o "${bin}" ./cmd/picoflow)
fi
[[ -x "${bin}" ]] || die "not an executable: ${bin}"

# gen SHAPE N FILE writes a workflow of N `true` tasks: independent, chain
# (task i depends on task i-1) or mixed (up to two random earlier
# dependencies, an env and a longer command, like hand-written tasks).
gen() {
  awk -v shape="$1" -v n="$2" 'BEGIN {
    srand(1)
    printf "name: scale-%s-%d\nconfig:\n  max_parallel: 4\ntasks:\n", shape, n
    for (i = 0; i < n; i++) {
      printf "  - name: task-%d\n    type: shell\n", i
      if (shape == "chain" && i > 0) printf "    depends_on: [task-%d]\n", i - 1
      if (shape == "mixed") {
        if (i > 0) {
          a = int(rand() * i); c = int(rand() * i)
          if (a == c) printf "    depends_on: [task-%d]\n", a
          else printf "    depends_on: [task-%d, task-%d]\n", a, c
        }
        printf "    env: {STEP: \"%d\"}\n    config:\n      command: \"echo step %d > /tmp/out-%d\"\n", i, i, i
      } else {
        printf "    config: {command: \"true\"}\n"
      }
    }
  }' > "$3"
}

# home DIR makes a fresh home whose config only allows big workflow files.
home() {
  rm -rf "$1"
  mkdir -p "$1"
  printf 'resources:\n  max_workflow_file: 64MiB\n' > "$1/config.yaml"
}

declare -A base_rss=()
declare -A base_n=()

# measure SHAPE N CMD FILE runs `picoflow CMD FILE` in a fresh home and
# prints one result line.
measure() {
  home "${dir}/home"
  measure_in "${dir}/home" "$@"
}

# measure_in HOME SHAPE N CMD [FILE] runs `picoflow CMD [FILE]` in HOME as
# it is and prints one result line.
measure_in() {
  local h="$1" shape="$2" n="$3" cmd="$4" file="${5:-}" tv="${dir}/time.txt" rc=0
  local args=("${cmd}" --home "${h}")
  [[ -n "${file}" ]] && args+=("${file}")
  /usr/bin/time -v -o "${tv}" "${bin}" "${args[@]}" >/dev/null 2>"${dir}/stderr.txt" || rc=$?
  local kib wall key slope
  kib="$(awk -F': ' '/Maximum resident set size/ {print $2}' "${tv}")"
  wall="$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "${tv}" | awk -F: '{ s = 0; for (i = 1; i <= NF; i++) s = s * 60 + $i; print s }')"
  key="${shape}/${cmd}"
  if [[ -z "${base_rss[${key}]:-}" ]]; then
    base_rss[${key}]="${kib}"
    base_n[${key}]="${n}"
    slope="-"
  else
    slope="$(awk -v a="${base_rss[${key}]}" -v b="${kib}" -v na="${base_n[${key}]}" -v nb="${n}" 'BEGIN { printf "%.3f", (b - a) / (nb - na) }')"
  fi
  awk -v s="${shape}" -v n="${n}" -v c="${cmd}" -v rc="${rc}" -v w="${wall}" -v k="${kib}" -v sl="${slope}" \
    'BEGIN { printf "%s\t%d\t%s\t%d\t%s\t%d\t%.1f\t%.3f\t%s\n", s, n, c, rc, w, k, k / 1024, k / n, sl }'
  if [[ "${rc}" -ne 0 ]]; then
    log "${cmd} ${file:-} exited ${rc}:"
    tail -n 5 "${dir}/stderr.txt" >&2
  fi
}

# measure_history SHAPE N FILE runs FILE ${history} times in a fresh home
# (not measured), then measures `run` of it once more, `status` and
# `history` in that home: every command folds or projects the runs the
# home keeps.
measure_history() {
  local shape="$1" n="$2" file="$3" h="${dir}/home-history" i
  home "${h}"
  for ((i = 1; i <= history; i++)); do
    log "${shape} ${n}: run ${i} of ${history} before the measured one"
    "${bin}" run --home "${h}" "${file}" >/dev/null 2>"${dir}/stderr.txt" || die "run ${i} of ${file} failed: $(tail -n 3 "${dir}/stderr.txt")"
  done
  measure_in "${h}" "${shape}+${history}runs" "${n}" run "${file}"
  measure_in "${h}" "${shape}+${history}runs" "${n}" status
  measure_in "${h}" "${shape}+${history}runs" "${n}" history
}

printf 'shape\ttasks\tcommand\texit\twall_s\tpeak_rss_KiB\tpeak_MiB\tKiB/task\tslope_KiB/task\n'
for shape in ${shapes}; do
  for n in ${sizes}; do
    file="${dir}/${shape}-${n}.yaml"
    gen "${shape}" "${n}" "${file}"
    measure "${shape}" "${n}" validate "${file}"
    if [[ "${do_run}" -eq 1 ]]; then
      measure "${shape}" "${n}" run "${file}"
    fi
    if [[ "${history}" -gt 0 ]]; then
      measure_history "${shape}" "${n}" "${file}"
    fi
  done
done

if [[ "${do_5mb}" -eq 1 ]]; then
  file="${dir}/mixed-5mb.yaml"
  gen mixed 30800 "${file}"
  log "5 MB file: $(wc -c < "${file}") bytes, 30800 tasks"
  measure mixed-5MB 30800 validate "${file}"
fi
