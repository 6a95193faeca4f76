# shellcheck shell=bash
# bench/peers.sh — Dagu side by side, and the floors every workload is
# compared with. Sourced by scripts/bench.sh (which sets -euo pipefail and
# the shared variables); not run on its own.

# The peer: DAGU=/path/to/dagu, run as /work/shared/peers/README.md says (a
# fresh DAGU_HOME per run, no update check, the scheduler port off, type:
# graph, shell: /bin/sh, max_active_steps for the parallelism).
peer=""
peer_name="Dagu"
peer_note="not measured (set DAGU=/path/to/dagu)"
if [[ -n "${DAGU:-}" ]]; then
  [[ -x "${DAGU}" ]] || die "DAGU=${DAGU} is not an executable file"
  peer="${DAGU}"
  peer_name="Dagu $("${peer}" version 2>&1 | tail -n1)"
  peer_note=""
  log "peer: ${peer_name} (${peer})"
fi
pwf="${wf}/dagu"
mkdir -p "${pwf}"

# dagu_independent N MAX_ACTIVE : N independent `true` steps.
dagu_independent() {
  printf 'type: graph\nshell: /bin/sh\nmax_active_steps: %s\nsteps:\n' "$2"
  awk -v n="$1" 'BEGIN { for (i = 0; i < n; i++) printf "  - name: t%05d\n    command: \"true\"\n", i }'
}
# dagu_chain N : N `true` steps, each depending on the one before.
dagu_chain() {
  printf 'type: graph\nshell: /bin/sh\nmax_active_steps: 1\nsteps:\n'
  awk -v n="$1" 'BEGIN { for (i = 0; i < n; i++) {
    printf "  - name: t%05d\n    command: \"true\"\n", i
    if (i > 0) printf "    depends: [t%05d]\n", i - 1 } }'
}
if [[ -n "${peer}" ]]; then
  dagu_independent 1 1 >"${pwf}/one.yaml"
  dagu_independent 1000 "${ncpu}" >"${pwf}/ind1000.yaml"
  dagu_independent 1000 4 >"${pwf}/ind1000p4.yaml"
  dagu_chain 100 >"${pwf}/chain100.yaml"
  for f in "${pwf}"/*.yaml; do
    DAGU_HOME="${tmp}/dagu-validate" DAGU_CHECK_UPDATES=false "${peer}" validate "${f}" >/dev/null 2>&1 ||
      die "Dagu does not accept ${f}"
  done
fi

# run_timed LOG CMD... : run CMD under /usr/bin/time; sets last_ms (wall
# time), last_cpu_ms (user + system of CMD and its children), last_maxrss
# (kB) and last_wbytes (bytes it sent to the file system: ru_oublock × 512,
# the write_bytes of /proc/PID/io summed over the process and its
# children). Without /usr/bin/time only last_ms is set.
last_cpu_ms="" last_wbytes=""
run_timed() {
  local logf="$1" s e rc=0; shift
  s=${EPOCHREALTIME//[.,]/}
  if [[ -n "${gnutime}" ]]; then
    "${gnutime}" -f '%M %O %U %S' -o "${logf}.time" "$@" >"${logf}" 2>&1 || rc=$?
  else
    "$@" >"${logf}" 2>&1 || rc=$?
  fi
  e=${EPOCHREALTIME//[.,]/}
  if [[ "${rc}" -ne 0 ]]; then
    tail -n 20 "${logf}" >&2
    die "$* exited ${rc}"
  fi
  last_ms="$(calc '(e - s) / 1000' "e=${e}" "s=${s}")"
  last_cpu_ms="" last_wbytes="" last_maxrss=""
  if [[ -n "${gnutime}" ]]; then
    read -r last_maxrss last_wbytes last_cpu_ms <<<"$(tail -n1 "${logf}.time" |
      awk '{ printf "%s %d %.1f\n", $1, $2 * 512, ($3 + $4) * 1000 }')"
  fi
}

# run_dagu LOG FILE : one `dagu start FILE` in a fresh DAGU_HOME (timed).
dagu_home_n=0
run_dagu() {
  dagu_home_n=$((dagu_home_n + 1))
  local h="${tmp}/dagu-home-${dagu_home_n}"
  DAGU_HOME="${h}" DAGU_CHECK_UPDATES=false DAGU_SCHEDULER_PORT=0 run_timed "$1" "${peer}" start "$2"
  rm -rf "${h}"
}

# floor_loop N : N sequential `/bin/sh -c true` (timed).
floor_loop() { run_timed "${tmp}/floor.log" bash -c 'for ((i = 0; i < $1; i++)); do /bin/sh -c true; done' _ "$1"; }
# floor_par N P : N `/bin/sh -c true`, P at once through xargs (timed).
floor_par() { run_timed "${tmp}/floor.log" bash -c 'seq "$1" | xargs -P "$2" -I{} /bin/sh -c true' _ "$1" "$2"; }

# count_fsyncs LOG CMD... : fsync-like calls of CMD and its children
# (strace -f); empty when strace cannot trace here. The env of CMD is
# passed through, so `env DAGU_HOME=… dagu start` works too.
count_fsyncs() {
  local logf="$1"; shift
  command -v strace >/dev/null 2>&1 || return 0
  strace -f -qq -e trace=fsync,fdatasync,sync_file_range,syncfs -o "${logf}.strace" "$@" >"${logf}" 2>&1 || return 0
  grep -cE '(fsync|fdatasync|sync_file_range|syncfs)\(' "${logf}.strace" || true
}
