# shellcheck shell=bash
# bench/setup.sh — machine facts, the host build, dist/ snapshot, qemu.
# Sourced by scripts/bench.sh (which sets -euo pipefail and the shared
# variables); not run on its own.

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
# Seconds after which a run under qemu-user is taken for hung (a par10 run
# takes about 10 s there; see bench/memory.sh).
qemu_limit=120
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
if [[ -n "${qemu_note}" ]]; then
  log "armv7 under qemu: ${qemu_note}"
fi

