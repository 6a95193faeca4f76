# shellcheck shell=bash
# bench/memory.sh — figures 1–3: binary size, idle daemon RSS, peak RSS.
# Sourced by scripts/bench.sh (which sets -euo pipefail and the shared
# variables); not run on its own.

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
# Under qemu-user a run can hang for good in a child forked but not yet
# exec'd (qemu emulates Go's vfork with a fork; about 1 run in 100 on a
# loaded host): such a run is killed after qemu_limit seconds, counted in
# par10_armv7_hung and run again, up to `runs` times in all.
log "[3/9] peak RSS, 10 parallel sleep 2, ${runs} runs per binary"
for label in "${labels[@]}"; do
  limit=""
  if [[ "${label}" == host ]]; then cmd=("${host_cmd[@]}"); else cmd=("${armv7_cmd[@]}") limit="${qemu_limit}"; fi
  hwm=() ru=() wall=() hung=0
  for ((r = 1; r <= runs; r++)); do
    rm -f "${tmp}/probe-par10".*
    rc=0
    run_pf_limit "${limit}" "${tmp}/par10.log" "${tmp}/par10.rss" \
      "${cmd[@]}" run --home "${tmp}/par10-${label}-${r}-${hung}" "${wf}/par10.yaml" || rc=$?
    if [[ "${rc}" -eq 124 ]]; then
      hung=$((hung + 1))
      log "par10 run ${r} of the ${label} binary hung; killed after ${limit} s"
      ((hung > runs)) || r=$((r - 1))
      continue
    fi
    [[ "${rc}" -eq 0 ]] || die "par10 run ${r} of the ${label} binary exited ${rc}"
    check_probe "${tmp}/probe-par10" "${cmd[@]}"
    hwm+=("$(status_kb "${tmp}/probe-par10.status" VmHWM)")
    [[ -n "${last_maxrss}" ]] && ru+=("${last_maxrss}")
    wall+=("${last_ms}")
  done
  R[par10_${label}_hung]="${hung}"
  if [[ ${#hwm[@]} -eq 0 ]]; then
    R[par10_${label}_hwm]="" R[par10_${label}_hwm_s]="n/a (every run hung)" R[par10_${label}_wall_s]="n/a"
    continue
  fi
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

