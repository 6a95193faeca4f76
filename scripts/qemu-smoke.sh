#!/usr/bin/env bash
# qemu-smoke.sh — run the ARM release binaries under qemu user-mode emulation.
#
# Proves that a cross-compiled static binary starts, parses a workflow,
# runs it (shell tasks, SQLite, journal) and, when the binary has a
# `history` command, lists the run afterwards — on an x86_64 machine with no
# ARM hardware. qemu-user-static is installed with apt-get when missing.
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_dir="$(cd "${script_dir}/.." && pwd)"

usage() {
  cat <<'EOF'
Usage: scripts/qemu-smoke.sh [--binary FILE]... [--version-only] [--timeout SECS] [--help]

For each binary (default: dist/picoflow-linux-armv7 and dist/picoflow-linux-arm64):
  BIN version
  BIN validate WORKFLOW
  BIN run WORKFLOW --home TMP
  BIN history --home TMP --json     (only if `BIN help` mentions history)
The workflow is a 3-task shell workflow (a -> b -> c) written to a temp
dir; task c writes a marker file that the script checks. The emulator
is picked from the binary's architecture (qemu-arm-static, qemu-aarch64-static;
x86-64 binaries run natively).

Options:
  --binary FILE    binary to test; repeat for several
  --version-only   only run `BIN version` (for probes without the other commands)
  --timeout SECS   time limit per command (default: 120)
  -h, --help       show this help
EOF
}

log() { printf 'qemu-smoke: %s\n' "$*" >&2; }
die() { printf 'qemu-smoke: FAIL: %s\n' "$*" >&2; exit 1; }

binaries=()
version_only=0
timeout_secs=120

need_arg() { [[ $# -ge 2 && -n "$2" ]] || die "$1 needs a value"; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    --binary) need_arg "$@"; binaries+=("$2"); shift 2 ;;
    --version-only) version_only=1; shift ;;
    --timeout) need_arg "$@"; timeout_secs="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done
if [[ ${#binaries[@]} -eq 0 ]]; then
  binaries=("${repo_dir}/dist/picoflow-linux-armv7" "${repo_dir}/dist/picoflow-linux-arm64")
fi

# --- emulators -----------------------------------------------------------------
as_root() {
  if [[ "$(id -u)" -eq 0 ]]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else die "need root to run: $*"
  fi
}

ensure_qemu() {
  command -v qemu-arm-static >/dev/null 2>&1 && command -v qemu-aarch64-static >/dev/null 2>&1 && return 0
  log "installing qemu-user-static"
  local apt=(env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user-static)
  if ! as_root "${apt[@]}" >&2; then
    log "install failed; running apt-get update once and retrying"
    as_root apt-get update -qq >&2 || die "apt-get update failed"
    as_root "${apt[@]}" >&2 || die "could not install qemu-user-static"
  fi
  command -v qemu-arm-static >/dev/null 2>&1 || die "qemu-arm-static still missing after install"
}

# Print the command prefix (emulator or nothing) for a binary's architecture.
runner_for() {
  local desc
  desc="$(file -b "$1")"
  case "${desc}" in
    *"ARM aarch64"*|*aarch64*) echo qemu-aarch64-static ;;
    *"32-bit"*ARM*) echo qemu-arm-static ;;
    *x86-64*)
      [[ "$(uname -m)" == x86_64 ]] || die "$1: x86-64 binary on a $(uname -m) host"
      echo "" ;;
    *) die "$1: unsupported binary: ${desc}" ;;
  esac
}

command -v file >/dev/null 2>&1 || as_root apt-get install -y -qq file >&2 || die "need the 'file' command"

for b in "${binaries[@]}"; do
  [[ -f "${b}" ]] || die "binary not found: ${b} (run scripts/release.sh first)"
  [[ -x "${b}" ]] || die "binary not executable: ${b}"
done
ensure_qemu

work="$(mktemp -d)"
trap 'rm -rf "${work}"' EXIT

# write_workflow FILE MARKER: the 3-task smoke workflow; its last task
# writes MARKER, which proves that the tasks really ran.
write_workflow() {
  cat >"$1" <<EOF
name: smoke
tasks:
  - name: a
    type: shell
    config: {command: "echo a"}
  - name: b
    type: shell
    depends_on: [a]
    config: {command: "echo b"}
  - name: c
    type: shell
    depends_on: [b]
    config: {command: "echo c > '$2'"}
EOF
}

# run_step LABEL CMD... : run with a time limit, keep output, fail loudly.
last_out=""
run_step() {
  local label="$1"; shift
  local out="${work}/out.$$"
  log "  \$ ${label}"
  local rc=0
  timeout "${timeout_secs}" "$@" >"${out}" 2>&1 || rc=$?
  if [[ ${rc} -ne 0 ]]; then
    sed 's/^/    | /' "${out}" >&2
    [[ ${rc} -eq 124 ]] && die "${label}: timed out after ${timeout_secs}s"
    die "${label}: exit status ${rc}"
  fi
  sed 's/^/    | /' "${out}" >&2
  last_out="$(cat "${out}")"
}

for b in "${binaries[@]}"; do
  runner="$(runner_for "${b}")"
  cmd=()
  [[ -n "${runner}" ]] && cmd+=("${runner}")
  cmd+=("${b}")
  short="$(basename "${b}")"
  log "${short} (${runner:-native})"

  # Isolate from the caller's PicoFlow setup: --home decides where state goes.
  cmd=(env -u PICOFLOW_HOME -u PICOFLOW_CONFIG "${cmd[@]}")
  run_step "${short} version" "${cmd[@]}" version
  [[ -n "${last_out}" ]] || die "${short} version printed nothing"
  [[ "${version_only}" -eq 1 ]] && continue

  home="${work}/home-${short}"
  workflow="${work}/smoke-${short}.yaml"
  marker="${work}/marker-${short}"
  mkdir -p "${home}"
  write_workflow "${workflow}" "${marker}"
  run_step "${short} validate ${workflow##*/}" "${cmd[@]}" validate "${workflow}"
  run_step "${short} run ${workflow##*/} --home ${home}" "${cmd[@]}" run "${workflow}" --home "${home}"
  [[ "$(cat "${marker}" 2>/dev/null)" == c ]] || die "${short} run exited 0 but task c did not run (no ${marker})"

  help_out="$("${cmd[@]}" help 2>&1 || "${cmd[@]}" --help 2>&1 || true)"
  if grep -qw history <<<"${help_out}"; then
    run_step "${short} history --home ${home} --json" "${cmd[@]}" history --home "${home}" --json
    grep -Eq '"workflow": *"smoke"' <<<"${last_out}" || die "${short} history --json does not list the smoke run"
    grep -Eq '"status": *"success"' <<<"${last_out}" || die "${short} history --json: the smoke run did not succeed"
  else
    log "  (no history command in ${short} help; skipped)"
  fi
done

log "OK: ${#binaries[@]} binaries passed"
