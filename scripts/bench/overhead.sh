# shellcheck shell=bash
# bench/overhead.sh — figures 4–5: trigger-to-exec, per-task overhead, writes.
# Sourced by scripts/bench.sh (which sets -euo pipefail and the shared
# variables); not run on its own.

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

# === 5. per-task overhead, side by side ==========================================
# Each workload runs, round by round, through its floor (the same processes
# without an orchestrator), PicoFlow (a fresh home each time) and, with
# DAGU set, Dagu (a fresh DAGU_HOME): interleaved, so that the machine's
# load falls on all of them alike. Figures are medians; ratios are of
# medians. The 1,000-task Dagu runs take about 0.1 s per task, so they run
# --peer-runs times (default once).
log "[5/9] per-task overhead side by side: 1 task, 1,000 independent (max_parallel ${ncpu} and 4), a 100-task chain; ${runs} rounds"

# workload KEY PF_FILE DAGU_FILE FLOOR_CMD... : one round of a workload;
# appends to the arrays KEY_{pf,floor,peer}_{ms,cpu,wb,rss}.
declare -A W # "KEY kind metric" -> space-separated values
note_run() { W["$1 $2 ms"]+="${last_ms} "; W["$1 $2 cpu"]+="${last_cpu_ms} "; W["$1 $2 wb"]+="${last_wbytes} "; W["$1 $2 rss"]+="${last_maxrss} "; }
wl_round() {
  local key="$1" pf="$2" dg="$3" r="$4"; shift 4
  "$@"
  note_run "${key}" floor
  run_timed "${tmp}/${key}.log" "${bin}" run --home "${tmp}/${key}-${r}" "${pf}"
  note_run "${key}" pf
  if [[ -n "${peer}" && -n "${dg}" ]]; then
    run_dagu "${tmp}/${key}-dagu.log" "${dg}"
    note_run "${key}" peer
  fi
}
# wm KEY KIND METRIC : the median of what wl_round noted ("" when none).
wm() {
  local v
  read -r -a v <<<"${W["$1 $2 $3"]:-}"
  [[ ${#v[@]} -gt 0 && -n "${v[0]}" ]] && med "${v[@]}"
  return 0
}
# wspread KEY KIND METRIC FORMAT DIV : "median (min–max)" of value/DIV.
wspread() {
  local v
  read -r -a v <<<"${W["$1 $2 $3"]:-}"
  [[ ${#v[@]} -gt 0 && -n "${v[0]}" ]] && spread "$4" "$5" "${v[@]}"
  return 0
}

# A home on tmpfs too, when /dev/shm is one: the difference is what the
# file system costs (the journal's writes and fsyncs, log files).
shm=""
if [[ "$(stat -f -c %T /dev/shm 2>/dev/null)" == tmpfs && -w /dev/shm ]]; then
  shm="$(mktemp -d /dev/shm/picoflow-bench.XXXXXX)"
fi
floor_version() { run_timed "${tmp}/floor.log" "${bin}" version; }
floor_sh() { run_timed "${tmp}/floor.log" /bin/sh -c true; }
for ((r = 1; r <= runs; r++)); do
  # 1 task: against `picoflow version` (the same binary starting and
  # exiting) and `sh -c true`; fresh home, then a warm one (the 1st round's).
  wl_round one "${wf}/one.yaml" "${pwf}/one.yaml" "${r}" floor_version
  floor_sh
  note_run one sh
  run_timed "${tmp}/one-warm.log" "${bin}" run --home "${tmp}/one-1" "${wf}/one.yaml"
  note_run one warm
  wl_round chain "${wf}/chain100.yaml" "${pwf}/chain100.yaml" "${r}" floor_loop 100
  if [[ -n "${shm}" ]]; then
    run_timed "${tmp}/chain-shm.log" "${bin}" run --home "${shm}/chain-${r}" "${wf}/chain100.yaml"
    note_run chain shm
    rm -rf "${shm:?}/chain-${r}"
  fi
  pr=""
  [[ "${r}" -le "${peer_runs}" ]] && pr=1
  wl_round ind "${wf}/ind1000.yaml" "${pr:+${pwf}/ind1000.yaml}" "${r}" floor_par 1000 "${ncpu}"
  floor_loop 1000
  note_run ind loop
  if [[ -n "${shm}" ]]; then # the same run with its home on tmpfs
    run_timed "${tmp}/ind-shm.log" "${bin}" run --home "${shm}/ind-${r}" "${wf}/ind1000.yaml"
    note_run ind shm
    rm -rf "${shm:?}/ind-${r}"
  fi
  wl_round ind4 "${wf}/ind1000p4.yaml" "${pr:+${pwf}/ind1000p4.yaml}" "${r}" floor_par 1000 4
done
[[ -n "${shm}" ]] && rm -rf "${shm}"

# fsync-like calls per run (counts are not noisy: one traced run each).
log "      fsyncs per run (strace -f)"
fs_pf_one_fresh="$(count_fsyncs "${tmp}/fs-one" "${bin}" run --home "${tmp}/fs-one-home" "${wf}/one.yaml")"
fs_pf_one_warm="$(count_fsyncs "${tmp}/fs-one" "${bin}" run --home "${tmp}/fs-one-home" "${wf}/one.yaml")"
fs_pf_ind="$(count_fsyncs "${tmp}/fs-ind" "${bin}" run --home "${tmp}/fs-ind-home" "${wf}/ind1000.yaml")"
fs_pf_ind4="$(count_fsyncs "${tmp}/fs-ind4" "${bin}" run --home "${tmp}/fs-ind4-home" "${wf}/ind1000p4.yaml")"
fs_pf_chain="$(count_fsyncs "${tmp}/fs-chain" "${bin}" run --home "${tmp}/fs-chain-home" "${wf}/chain100.yaml")"
fs_peer_one="" fs_peer_chain=""
if [[ -n "${peer}" ]]; then
  dagu_env=(env DAGU_CHECK_UPDATES=false DAGU_SCHEDULER_PORT=0)
  fs_peer_one="$(count_fsyncs "${tmp}/fs-dagu" "${dagu_env[@]}" DAGU_HOME="${tmp}/fs-dagu-1" "${peer}" start "${pwf}/one.yaml")"
  fs_peer_chain="$(count_fsyncs "${tmp}/fs-dagu" "${dagu_env[@]}" DAGU_HOME="${tmp}/fs-dagu-2" "${peer}" start "${pwf}/chain100.yaml")"
fi

# The keys the main table reads.
R[ind]="$(wm ind pf ms)"
R[ind_s]="$(wspread ind pf ms '%.2f' 1000)"
R[ind_task]="$(calc 'x / 1000' "x=${R[ind]}")"
R[ind_task_s]="$(wspread ind pf ms '%.2f' 1000)"
R[ind_loop_task]="$(calc 'x / 1000' "x=$(wm ind loop ms)")"
R[ind_loop_task_s]="$(wspread ind loop ms '%.2f' 1000)"
R[ind_par_task]="$(calc 'x / 1000' "x=$(wm ind floor ms)")"
R[ind_par_task_s]="$(wspread ind floor ms '%.2f' 1000)"
R[chain_task]="$(calc 'x / 100' "x=$(wm chain pf ms)")"
R[chain_task_s]="$(wspread chain pf ms '%.2f' 100)"
R[chain_loop_task]="$(calc 'x / 100' "x=$(wm chain floor ms)")"
R[chain_loop_task_s]="$(wspread chain floor ms '%.2f' 100)"
if [[ -n "${gnutime}" ]]; then
  R[ind_ru]="$(wm ind pf rss)"
  R[ind_ru_s]="$(wspread ind pf rss '%.1f' 1024)"
fi
# What a 1,000-task run leaves in its home (apparent sizes, last run).
last_ind="${tmp}/ind-${runs}"  # wl_round's home of the last round
R[ind_du_journal]="$(du -sb "${last_ind}/journal" | cut -f1)"
R[ind_du_logs]="$(du -sb "${last_ind}/logs" | cut -f1)"
# (`run` writes no SQLite history: the first query builds it.)
R[ind_du_db]=0
for f in "${last_ind}"/picoflow.db*; do
  [[ -f "${f}" ]] && R[ind_du_db]=$((R[ind_du_db] + $(wc -c <"${f}")))
done

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
          if (f ~ /^journal\/[^\/]+\/[0-9]+$/) f = "journal segment"
          else if (f ~ /^journal\/[^\/]+$/) f = "the workflow journal directory"
          else if (f == "journal") f = "HOME/journal"
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


# --- the side-by-side table -------------------------------------------------------
# ratio A B : A / B with two decimals, or "—" when either is missing.
ratio() {
  if [[ -z "$1" || -z "$2" ]] || [[ "$(calc 'b == 0' "b=$2")" == 1 ]]; then echo "—"; return; fi
  fmt '%.2f' "$(calc 'a / b' "a=$1" "b=$2")"
}
# per_task VALUE N FORMAT : VALUE / N, or "—".
per_task() { [[ -n "$1" ]] && fmt "$3" "$(calc 'v / n' "v=$1" "n=$2")" || echo "—"; }
# sbs_row LABEL KEY N FLOOR_LABEL FLOOR_KEY_KIND PF_KIND FS_PF FS_PEER
sbs_row() {
  local label="$1" key="$2" n="$3" flabel="$4" fkind="$5" pkind="$6" fs_pf="$7" fs_peer="$8"
  local f p d fc pc pw dw
  f="$(wm "${key}" "${fkind}" ms)" p="$(wm "${key}" "${pkind}" ms)" d=""
  fc="$(wm "${key}" "${fkind}" cpu)" pc="$(wm "${key}" "${pkind}" cpu)"
  pw="$(wm "${key}" "${pkind}" wb)" dw=""
  if [[ -n "${peer}" ]]; then d="$(wm "${key}" peer ms)"; dw="$(wm "${key}" peer wb)"; fi
  printf '| %s | %s: %s ms | %s ms | **%s** | %s | %s | %s | %s / %s | %s / %s |\n' \
    "${label}" "${flabel}" "$(wspread "${key}" "${fkind}" ms '%.1f' 1)" \
    "$(wspread "${key}" "${pkind}" ms '%.1f' 1)" "$(ratio "${p}" "${f}")" \
    "$([[ -n "${d}" ]] && echo "$(wspread "${key}" peer ms '%.0f' 1) ms" || echo "${peer_note:-not run}")" \
    "$(ratio "${p}" "${d}")" "$(ratio "${pc}" "${fc}")" \
    "${fs_pf:-—}" "${fs_peer:-—}" "$(per_task "${pw}" "${n}" '%.0f')" "$(per_task "${dw}" "${n}" '%.0f')"
}
# shellcheck disable=SC2016
side_by_side_table() {
  echo "| workload | floor (same run) | PicoFlow | PicoFlow ÷ floor | ${peer_name} | PicoFlow ÷ ${peer_name%% *} | CPU time: PicoFlow ÷ floor | fsyncs per run: PicoFlow / ${peer_name%% *} | bytes written per task: PicoFlow / ${peer_name%% *} |"
  echo "|---|---|---|---|---|---|---|---|---|"
  sbs_row "1 task, fresh home, invocation to exit" one 1 '`picoflow version`' floor pf "${fs_pf_one_fresh}" "${fs_peer_one}"
  sbs_row "1 task, warm home (its journal exists)" one 1 '`picoflow version`' floor warm "${fs_pf_one_warm}" ""
  sbs_row "1,000 independent \`true\`, max_parallel ${ncpu}" ind 1000 "\`xargs -P ${ncpu}\`" floor pf "${fs_pf_ind}" ""
  sbs_row "… the same against a sequential loop" ind 1000 "loop" loop pf "${fs_pf_ind}" ""
  if [[ -n "$(wm ind shm ms)" ]]; then
    sbs_row "… the same with the home on tmpfs (\`/dev/shm\`)" ind 1000 "\`xargs -P ${ncpu}\`" floor shm "" ""
  fi
  sbs_row "1,000 independent \`true\`, max_parallel 4" ind4 1000 '`xargs -P 4`' floor pf "${fs_pf_ind4}" ""
  sbs_row "100-task chain" chain 100 "loop" floor pf "${fs_pf_chain}" "${fs_peer_chain}"
  if [[ -n "$(wm chain shm ms)" ]]; then
    sbs_row "… the same with the home on tmpfs (\`/dev/shm\`)" chain 100 "loop" floor shm "" ""
  fi
  echo
  local step
  step="$(calc '(p - f) / 100' "p=$(wm chain pf ms)" "f=$(wm chain floor ms)")"
  echo "| goal of issue 16 | measured (this run) |"
  echo "|---|---|"
  printf '| 1,000 independent ≤ 1.15 × `xargs -P %s` (wall) | %s ×%s |\n' "${ncpu}" "$(ratio "$(wm ind pf ms)" "$(wm ind floor ms)")" \
    "$([[ -n "$(wm ind shm ms)" ]] && printf '; %s × with the home on tmpfs' "$(ratio "$(wm ind shm ms)" "$(wm ind floor ms)")")"
  printf '| chain ≤ 0.35 ms per step above the loop | %s ms%s |\n' "$(fmt '%.2f' "${step}")" \
    "$([[ -n "$(wm chain shm ms)" ]] && printf '; %s ms with the home on tmpfs' "$(fmt '%.2f' "$(calc '(p - f) / 100' "p=$(wm chain shm ms)" "f=$(wm chain floor ms)")")")"
  printf '| 1-task run ≤ 4 fsyncs | %s warm, %s in a fresh home (four directories gain a name and each is fsynced once, then the segment; strace adds one when the sync window fires first: TestOneTaskRunFsyncs counts 4 + 2 exactly on lazyfs) |\n' "${fs_pf_one_warm:-—}" "${fs_pf_one_fresh:-—}"
  printf '| 1-task run ≤ 1.5 × `picoflow version` (wall) | %s × warm, %s × fresh |\n' \
    "$(ratio "$(wm one warm ms)" "$(wm one floor ms)")" "$(ratio "$(wm one pf ms)" "$(wm one floor ms)")"
  printf '| max_parallel ≥ 4: ≤ 0.5 fsync per task | %s per task (max_parallel 4), %s (max_parallel %s) |\n' \
    "$(per_task "${fs_pf_ind4}" 1000 '%.3f')" "$(per_task "${fs_pf_ind}" 1000 '%.3f')" "${ncpu}"
  printf '| ≤ 2.5 KB written per task | %s bytes (max_parallel 4), %s (max_parallel %s) |\n' \
    "$(per_task "$(wm ind4 pf wb)" 1000 '%.0f')" "$(per_task "$(wm ind pf wb)" 1000 '%.0f')" "${ncpu}"
}
