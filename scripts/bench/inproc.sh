# shellcheck shell=bash
# bench/inproc.sh — figures 6–9: parse, journal, 10,000-task DAG, web UI.
# Sourced by scripts/bench.sh (which sets -euo pipefail and the shared
# variables); not run on its own.

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
# shell_par N : ms for N `/bin/sh -c true`, one per CPU at once (xargs -P).
shell_par() { floor_par "$1" "${ncpu}"; echo "${last_ms}"; }
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
R[dag]="$(med "${dag[@]}")"
R[dag_base]="$(med "${dag_base[@]}")"
R[dag_ru]="$([[ ${#dag_ru[@]} -gt 0 ]] && med "${dag_ru[@]}" || true)"
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
    # Up to 60 s: the first request opens the database, and on a loaded
    # machine that has taken more than fetch's 5 s.
    "${slow_fetch[@]}" "http://${uiaddr}${path}" >/dev/null || die "GET ${path} failed"
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


# === where the time goes =========================================================
# A CPU profile of the in-process benchmark of 1,000 independent tasks
# (engine.BenchmarkIndependent1000: the engine, a real journal, real
# /bin/sh children), summarised as the share of PicoFlow's own CPU time
# (user + system of its threads, children excluded) under each function.
log "      CPU profile of BenchmarkIndependent1000"
prof_rows=""
if (cd "${repo_dir}" && go test ./engine -run '^$' -bench '^BenchmarkIndependent1000$' -benchtime 10x \
  -cpuprofile "${tmp}/cpu.prof" -o "${tmp}/engine.test") >"${tmp}/prof.txt" 2>&1 &&
  go tool pprof -top -cum -nodecount=400 "${tmp}/engine.test" "${tmp}/cpu.prof" >"${tmp}/prof.top" 2>/dev/null; then
  # share NAME REGEX : the cum% of the first function matching REGEX.
  share() {
    awk -v re="$2" -v name="$1" '$NF ~ re && !done { printf "| %s | %s |\n", name, $5; done = 1 }
      END { if (!done) printf "| %s | <0.5%% |\n", name }' "${tmp}/prof.top"
  }
  prof_rows="$(
    share 'attempt goroutines (open log, fork/exec, wait, read outputs)' '^github.com/picoflow/picoflow/engine.\(\*runner\).attempt$'
    share '… fork/exec (`syscall.forkExec`)' '^syscall.forkExec$'
    share '… the attempt log (`engine.(*logFiles).open`: reuse a free log, or create one)' '^github.com/picoflow/picoflow/engine.\(\*logFiles\).open$'
    share '… reading outputs (`engine.readOutputs`: the output probe)' '^github.com/picoflow/picoflow/engine.readOutputs$'
    share 'run loop: the batches it writes (`engine.(*runner).flush`: encode, write, fsync when needed)' '^github.com/picoflow/picoflow/engine.\(\*runner\).flush$'
    share '… encoding of events (`journal.encodeEvent`)' '^github.com/picoflow/picoflow/journal.encodeEvent$'
    share 'fsync (`os.(*File).Sync`: the commits that need one, and the sync window'\''s beside the loop)' '^os.\(\*File\).Sync$'
    share 'allocation (`runtime.mallocgc`)' '^runtime.mallocgc$'
    share 'garbage collection (`runtime.gcBgMarkWorker`)' '^runtime.gcBgMarkWorker$'
    share 'scheduler housekeeping (`runtime.sysmon`)' '^runtime.sysmon$'
  )"
  R[prof_total]="$(awk '/^Duration:/ { for (i = 1; i <= NF; i++) if ($i == "samples") print $(i + 2) }' "${tmp}/prof.top")"
else
  prof_rows="| the profile could not be taken (see go test) | — |"
fi
