# shellcheck shell=bash
# bench/workflows.sh — the generated workflows every figure runs.
# Sourced by scripts/bench.sh (which sets -euo pipefail and the shared
# variables); not run on its own.

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

# gen_independent N NAME [MAX_PARALLEL] : N independent `true` tasks
# (max_parallel: the default, one per CPU, unless given).
gen_independent() {
  printf 'name: %s\n' "$2"
  [[ -n "${3:-}" ]] && printf 'config: {max_parallel: %s}\n' "$3"
  printf 'tasks:\n'
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
gen_independent 1000 ind1000p4 4 >"${wf}/ind1000p4.yaml"
gen_independent 1 one >"${wf}/one.yaml"
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

